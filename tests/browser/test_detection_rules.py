"""The Sigma part of the Detection Rules page, driven through a real browser:
write a rule, see its problems at their lines, dry run it, save it, switch it
off; upload a rule from a file."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.detection_rules import sync_predefined_rules
from alerts.services import ingest_logs
from tests.conftest import PASSWORD, organisation_scope

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROKEN = """\
title: Netcat listener
level: high
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/nc'
    Commandline|contains: ' -l'
  condition: selection
alert_type: suspicious_process
"""
FIXED = BROKEN.replace("Commandline", "CommandLine")


@pytest.fixture
def logs(tenancy):
    now = timezone.now().isoformat()
    ingest_logs(
        [
            {
                "type": "process",
                "account": tenancy.account_a.uid,
                "host_uuid": f"host-{n}",
                "time": now,
                "path": "/usr/bin/nc",
                "cmdline": cmdline,
            }
            for n, cmdline in enumerate(["nc -lvnp 4444", "nc -l 9001", "nc db 5432"])
        ],
        scope=organisation_scope(tenancy.org),
    )


def log_in(page, username: str):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("scope-summary")).to_be_visible()


def test_it_writes_checks_dry_runs_and_saves_a_rule(page, tenancy, logs, screenshot):
    sync_predefined_rules()
    log_in(page, "alice")
    page.goto("/detection-rules/sigma/")
    expect(page.get_by_test_id("predefined-sigma-rules")).to_contain_text(
        "Reverse shell command line"
    )

    page.get_by_test_id("new-sigma-rule").click()
    page.get_by_test_id("yaml").fill(BROKEN)
    page.get_by_test_id("check").click()

    problem = page.get_by_test_id("problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("Line 9: Unknown field 'Commandline' for the process log type")
    expect(page.locator("li.has-problem")).to_have_attribute("data-line", "9")
    screenshot("problems")

    page.get_by_test_id("yaml").fill(FIXED)
    page.get_by_test_id("check").click()
    expect(page.get_by_test_id("check-ok")).to_contain_text("level high → risk High")

    page.get_by_test_id("dry-run-button").click()
    expect(page.get_by_test_id("dry-run-matches")).to_have_text("2")
    sample = page.get_by_test_id("dry-run-sample")
    expect(sample).to_contain_text("nc -lvnp 4444")
    expect(sample).not_to_contain_text("nc db 5432")
    screenshot("dry-run")

    page.get_by_test_id("save").click()
    expect(page.locator(".messages")).to_contain_text("Detection rule “Netcat listener” saved.")

    page.goto("/detection-rules/sigma/")
    row = page.get_by_test_id("custom-sigma-rules").locator("tr", has_text="Netcat listener")
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("Suspicious process")
    row.get_by_role("button", name="Disable").click()
    row = page.get_by_test_id("custom-sigma-rules").locator("tr", has_text="Netcat listener")
    expect(row).to_contain_text("Disabled")
    screenshot("list")


def test_it_loads_an_uploaded_file_into_the_editor(page, tenancy, tmp_path):
    rule_file = tmp_path / "netcat.yml"
    rule_file.write_text(FIXED)
    log_in(page, "alice")
    page.goto("/detection-rules/sigma/new/")

    page.get_by_test_id("upload").set_input_files(str(rule_file))

    expect(page.get_by_test_id("yaml")).to_have_value(re.compile(r"CommandLine\|contains"))
    page.get_by_test_id("save").click()
    expect(page.locator(".messages")).to_contain_text("saved")
