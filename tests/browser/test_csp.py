"""Every page of the console works under its Content-Security-Policy in a real
browser: no violation is reported, nothing is logged to the console, and what
used to be inline handlers (auto-submitting selects, confirmation prompts, the
Sigma file upload) still works."""

import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.detection_rules import sync_predefined_rules
from alerts.models import AlertSource, EntityType
from alerts.services import ingest_alerts, ingest_logs
from events import tasks
from secops.celery import app as celery_app
from secops.models import ApiKey
from secops.services import create_api_key
from tests import factories
from tests.alerts.test_sigma_views import VALID_RULE
from tests.conftest import PASSWORD, native_alert, organisation_scope
from tests.events.test_tracing import (
    C2,
    IMPLANT,
    alert_in,
    entity,
    make_event,
    process,
    web_exploit_logs,
)
from whitelist.models import RuleGroup
from whitelist.services import ConditionSpec, GroupSpec, save_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts: each CSP violation the browser
# reports is handed to the test.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} refused ${event.blockedURI || "inline code"} ` +
    `in ${event.documentURI} (${event.sourceFile}:${event.lineNumber}) ${event.sample}`
  );
});
"""
# Console messages that are not problems, each with the reason.
EXPECTED_CONSOLE_MESSAGES = {
    "You have set a custom wheel sensitivity": "tracing.js slows Cytoscape's wheel zoom on purpose",
}


@pytest.fixture
def problems(page):
    """What the browser reports while the test drives it: CSP violations,
    console errors and warnings, uncaught exceptions."""
    found: list[str] = []
    page.context.expose_function("reportCspViolation", lambda text: found.append(f"CSP: {text}"))
    page.context.add_init_script(REPORT_VIOLATIONS)

    def on_console(message):
        if message.type not in ("error", "warning"):
            return
        if any(text in message.text for text in EXPECTED_CONSOLE_MESSAGES):
            return
        found.append(f"console {message.type}: {message.text} ({page.url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.append(f"uncaught: {error} ({page.url})"))
    return found


@pytest.fixture
def intrusion(tenancy):
    """An event of account A whose tracing diagram has nodes, and its alerts."""
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    process(account, web, 6, 3004, 3003, "/bin/sh", "sh -c id", "/tmp/kw", IMPLANT)
    event = make_event(account, name="Malicious file on web-01")
    alert_in(
        event,
        web,
        entity(account, EntityType.PROCESS, IMPLANT, pid=3003, path="/tmp/kw", cmdline=IMPLANT),
        entity(account, EntityType.IP, C2),
    )
    return event


@pytest.fixture
def held_exports(monkeypatch, settings, tmp_path):
    """Export jobs the page queues, run by the test (no worker reads the broker)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    queued = []
    monkeypatch.setattr(celery_app.tasks["events.export_events"], "delay", queued.append)
    return queued


def log_in(page, username="alice"):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("scope-summary")).to_be_visible()


def wait_until_settled(page):
    """Let late requests (htmx polls, swapped-in scripts) report what they would."""
    page.wait_for_load_state("networkidle")


def test_it_notices_a_violation_when_there_is_one(page, problems, db):
    page.goto("/login/")

    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injectedScriptRan = true";
            document.body.append(script);
            return window.injectedScriptRan === true;
        }"""
    )
    page.wait_for_timeout(200)

    assert ran is False
    assert any(problem.startswith("CSP: script-src") for problem in problems), problems


def test_it_shows_the_event_pages_without_a_violation(
    page, problems, tenancy, intrusion, held_exports, tmp_path
):
    factories.make_event(tenancy.account_a, name="Port scan of web-01")
    log_in(page)
    wait_until_settled(page)

    # Event list: the filters apply through htmx as they change.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Security Event Handling"
    ).click()
    table = page.get_by_test_id("event-table")
    expect(table).to_contain_text("Port scan of web-01")
    page.get_by_test_id("filter-occurred").select_option("30d")
    expect(page).to_have_url(re.compile(r"occurred=30d"))
    page.get_by_test_id("filter-name").press_sequentially("Malicious")
    expect(page).to_have_url(re.compile(r"name=Malicious"))
    expect(table).not_to_contain_text("Port scan of web-01")
    expect(table).to_contain_text("Malicious file on web-01")
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-status")).to_contain_text("Export of 1 event")
    deadline = time.monotonic() + 10
    while not held_exports:
        assert time.monotonic() < deadline, "the page queued no export"
        time.sleep(0.05)
    tasks.export_events(held_exports[0])
    expect(page.get_by_test_id("export-download")).to_be_visible()

    # The scope selectors submit themselves when a new value is picked.
    page.get_by_test_id("region-select").select_option("intl")
    expect(page.get_by_test_id("region-select")).to_have_value("intl")
    expect(table).not_to_contain_text("web-01")
    page.get_by_test_id("region-select").select_option("cn")
    expect(table).to_contain_text("Port scan of web-01")
    wait_until_settled(page)

    # Event details, every tab, the tracing diagram drawn and downloaded.
    page.goto(f"/events/{intrusion.id}/")
    for tab in ("timeline", "alerts", "tracing", "info"):
        page.get_by_test_id(f"tab-{tab}").click()
        expect(page.locator("#tab")).to_have_attribute("data-tab", tab)
        if tab == "tracing":
            expect(page.get_by_test_id("tracing-graph")).to_have_attribute("data-ready", "true")
            for kind in ("png", "svg"):
                with page.expect_download() as download:
                    page.get_by_test_id(f"tracing-download-{kind}").click()
                download.value.save_as(tmp_path / f"diagram.{kind}")
                assert (tmp_path / f"diagram.{kind}").stat().st_size > 0
            page.get_by_test_id("tracing-layout").select_option("cose")
            expect(page.get_by_test_id("tracing-graph")).to_have_attribute("data-ready", "true")
    page.goto(f"/events/tracing/?ids={intrusion.id}")
    expect(page.get_by_test_id("tracing-graph")).to_have_attribute("data-ready", "true")

    # The Alert page, its live rows, and an alert's own page.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Alert", exact=True
    ).click()
    ingest_alerts(
        [
            native_alert(
                tenancy.account_a, name="Fresh alert", occurred_at=timezone.now().isoformat()
            )
        ],
        scope=organisation_scope(tenancy.org),
    )
    expect(page.get_by_test_id("alert-table")).to_contain_text("Fresh alert", timeout=10_000)
    page.goto(f"/alerts/{intrusion.alerts.first().id}/")
    wait_until_settled(page)

    assert not problems, "\n".join(problems)


def test_it_shows_the_rule_and_whitelist_pages_without_a_violation(
    page, problems, tenancy, tmp_path
):
    sync_predefined_rules()
    group = save_group(
        GroupSpec(
            name="Known scanner",
            scenario="brute_force",
            conditions=[ConditionSpec("source_ip", "equals", "192.0.2.1")],
        ),
        organisation_scope(tenancy.org),
        allow_global=True,
    )
    log_in(page)

    page.goto("/detection-rules/")
    page.get_by_test_id("new-rule").click()
    wait_until_settled(page)

    # The Sigma editor: a chosen file fills the editor, Check answers in place.
    page.goto("/detection-rules/sigma/")
    page.get_by_test_id("predefined-sigma-rules").get_by_role("link").first.click()
    expect(page.get_by_test_id("yaml-view")).to_be_visible()
    page.goto("/detection-rules/sigma/new/")
    rule_file = tmp_path / "netcat.yml"
    rule_file.write_text(VALID_RULE)
    page.get_by_test_id("upload").set_input_files(rule_file)
    expect(page.get_by_test_id("yaml")).to_have_value(VALID_RULE)
    page.get_by_test_id("check").click()
    expect(page.get_by_test_id("check-ok")).to_be_visible()

    # Whitelist settings: picking a scenario shows it without a button.
    page.goto("/whitelist/")
    page.get_by_test_id("scenario-select").select_option("brute_force")
    expect(page).to_have_url(re.compile(r"/whitelist/\?scenario=brute_force$"))
    page.goto("/whitelist/scenarios/brute_force/")
    expect(page.get_by_test_id("group-table")).to_contain_text("Known scanner")

    # Deleting a group asks first; saying no keeps it.
    dialogs = []

    def answer(dialog, accept):
        dialogs.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_test_id("delete-group").click()
    page.wait_for_timeout(300)
    assert RuleGroup.objects.filter(pk=group.pk).exists()
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_test_id("delete-group").click()
    expect(page.get_by_test_id("group-table")).to_contain_text("No policy groups yet.")
    assert dialogs == ["Delete this policy group?"] * 2
    assert not RuleGroup.objects.filter(pk=group.pk).exists()

    # The group editor previews its matches as it is filled in.
    page.goto("/whitelist/groups/new/?scenario=brute_force")
    page.get_by_test_id("group-name").fill("Office")
    page.get_by_test_id("condition-object").first.select_option("source_ip")
    page.get_by_test_id("condition-value").first.fill("192.0.2.7")
    expect(page.get_by_test_id("preview")).to_contain_text("7 days")
    wait_until_settled(page)

    assert not problems, "\n".join(problems)


def test_it_shows_data_sources_and_api_keys_without_a_violation(page, problems, tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_alerts([native_alert(tenancy.account_a, source=AlertSource.WAF)], scope=scope)
    ingest_logs(
        [{"type": "login", "account": tenancy.account_a.uid, "time": timezone.now().isoformat()}],
        scope=scope,
    )
    create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="Log shipper")
    log_in(page)

    page.goto("/data-sources/")
    expect(page.get_by_test_id("arrivals").locator("svg.bars").first).to_be_visible()
    keys = page.get_by_test_id("api-keys")
    page.once("dialog", lambda dialog: dialog.dismiss())
    keys.get_by_role("button", name="Revoke").click()
    page.wait_for_timeout(300)
    assert ApiKey.objects.get(name="Log shipper").is_active
    page.once("dialog", lambda dialog: dialog.accept())
    keys.get_by_role("button", name="Revoke").click()
    expect(keys).to_contain_text("Revoked")
    assert not ApiKey.objects.get(name="Log shipper").is_active
    wait_until_settled(page)

    assert not problems, "\n".join(problems)


def test_it_shows_the_lockout_and_the_admin_without_a_violation(page, problems, tenancy, settings):
    settings.AXES_FAILURE_LIMIT = 2
    tenancy.alice.is_staff = tenancy.alice.is_superuser = True
    tenancy.alice.save()
    page.goto("/login/")
    for attempt in range(2):
        page.get_by_label("Username").fill("bob")
        page.get_by_label("Password").fill(f"wrong-{attempt}")
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-locked")).to_contain_text("locked for 15 minutes")

    log_in(page)
    page.goto("/admin/")
    page.goto("/admin/axes/accessattempt/")
    expect(page.locator("#result_list")).to_contain_text("bob")
    wait_until_settled(page)

    # The login page answers 429 on a lockout; Chromium logs that status as an
    # error, which is the page doing its job.
    assert [p for p in problems if "status of 429" not in p] == []


def test_it_shows_pages_in_debug_mode_without_a_violation(page, problems, tenancy, settings):
    # Debug mode adds django-htmx's script, which shows error pages in place.
    settings.DEBUG = True
    event = factories.make_event(tenancy.account_a, name="Port scan of web-01")
    log_in(page)

    page.goto("/events/")
    page.get_by_test_id("filter-name").press_sequentially("Port")
    expect(page).to_have_url(re.compile(r"name=Port"))
    page.goto(f"/events/{event.id}/")
    for tab in ("timeline", "alerts", "info"):
        page.get_by_test_id(f"tab-{tab}").click()
        expect(page.locator("#tab")).to_have_attribute("data-tab", tab)
    scripts = page.locator("script[src*='django-htmx']")
    expect(scripts).to_have_count(1)
    wait_until_settled(page)

    assert not problems, "\n".join(problems)
