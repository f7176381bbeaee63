"""The Sigma part of the Detection Rules page: list, editor, check, dry run,
enable/disable, delete, and who may see and change what."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from alerts.detection_models import DetectionRule
from alerts.detection_rules import DetectionRuleSpec, save_custom_rule, sync_predefined_rules
from alerts.detection_run import run_detection
from alerts.services import ingest_logs
from tests.conftest import organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

VALID_RULE = """\
title: Netcat listener
id: 5bdf8986-c19b-426e-8192-5e7c68749f15
status: test
description: Someone opens a netcat listener.
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/nc'
    CommandLine|contains: ' -l'
  condition: selection
level: high
alert_type: suspicious_process
tags:
  - attack.command-and-control
  - attack.t1095
"""

# Line 2: the level; line 9: an unknown field; line 10: an unknown modifier;
# line 11: a time-part modifier, which records cannot serve.
BROKEN_RULE = """\
title: Broken
level: severe
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/nc'
    Commandline|contains: ' -l'
    ParentImage|sounds_like: 'bash'
    User|hour: 3
  condition: selection and filter
"""


def problems_by_line(html: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for number, message in re.findall(r'data-testid="problem">Line (\d+): ([^<]*)<', html):
        found.setdefault(int(number), []).append(message)
    return found


@pytest.fixture
def alice(tenancy):
    return tenancy.client_for(tenancy.alice)


@pytest.fixture
def custom_rule(tenancy):
    return save_custom_rule(tenancy.org, DetectionRuleSpec(VALID_RULE), user=tenancy.alice)


def netcat_log(account, host="host-1", cmdline="nc -lvnp 4444"):
    return {
        "type": "process",
        "account": account.uid,
        "host_uuid": host,
        "time": timezone.now().isoformat(),
        "path": "/usr/bin/nc",
        "cmdline": cmdline,
        "user": "root",
    }


def test_it_lists_predefined_and_custom_rules_with_their_last_run(tenancy, alice, custom_rule):
    sync_predefined_rules()
    ingest_logs([netcat_log(tenancy.account_a)], scope=organisation_scope(tenancy.org))
    run_detection(lag=timedelta(0))

    response = alice.get(reverse("detection:rules"))

    html = response.content.decode()
    custom = re.search(r'data-testid="custom-sigma-rules".*?</table>', html, re.S).group(0)
    predefined = re.search(r'data-testid="predefined-sigma-rules".*?</table>', html, re.S).group(0)
    assert "Netcat listener" in custom
    assert 'High → <span class="badge risk-high">High</span>' in custom
    assert "suspicious_process" in custom
    # last run: one record read, one hit, no error
    row = re.search(rf'data-rule="{custom_rule.key}".*?</tr>', custom, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td.*?</td>", row, re.S)]
    last_run, duration, records, hits, errors = cells[5:10]
    assert last_run.startswith(str(timezone.now().year)) and duration.endswith(" s")
    assert (records, hits, errors) == ("1", "1 / 1", "none")
    assert "Reverse shell command line" in predefined
    assert "Netcat listener" not in predefined


def test_it_saves_a_valid_rule_with_what_it_reads_from_the_yaml(tenancy, alice):
    response = alice.post(reverse("detection:rule_new"), {"yaml": VALID_RULE, "enabled": "on"})

    rule = DetectionRule.objects.get(organisation=tenancy.org)
    assert response.status_code == 302
    assert response["Location"] == reverse("detection:rule_edit", args=[rule.id])
    assert (rule.title, rule.level, rule.kind, rule.alert_type) == (
        "Netcat listener",
        "high",
        "detection",
        "suspicious_process",
    )
    assert (rule.tactic, rule.technique, rule.log_types) == (
        "Command and Control",
        "T1095",
        ["process"],
    )
    assert rule.enabled and rule.created_by == tenancy.alice


def test_it_shows_every_problem_of_a_broken_rule_at_its_line(tenancy, alice):
    response = alice.post(
        reverse("detection:rule_new"), {"yaml": BROKEN_RULE, "alert_type": "suspicious_process"}
    )

    assert response.status_code == 422
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()
    found = problems_by_line(response.content.decode())
    assert "not a valid Sigma rule level" in found[2][0]
    assert found[9][0].startswith("Unknown field &#x27;Commandline&#x27; for the process log type")
    assert found[10][0].startswith("Unknown modifier &#x27;sounds_like&#x27;")
    assert found[11][0].startswith("Unsupported modifier &#x27;hour&#x27;")
    assert "The condition names &#x27;filter&#x27;, which is not a selection" in found[12][0]
    # What was typed stays in the editor.
    assert "ParentImage|sounds_like" in response.content.decode()


def test_it_shows_a_yaml_syntax_error_at_its_line(alice):
    broken = VALID_RULE.replace("  selection:\n", "  selection: [\n")

    response = alice.post(
        reverse("detection:check"),
        {"yaml": broken, "alert_type": "x"},
        headers={"HX-Request": "true"},
    )

    found = problems_by_line(response.content.decode())
    assert list(found) and all(
        message.startswith("YAML syntax") for m in found.values() for message in m
    )


def test_it_asks_for_an_alert_type_when_the_yaml_names_none(tenancy, alice):
    response = alice.post(
        reverse("detection:rule_new"),
        {"yaml": VALID_RULE.replace("alert_type: suspicious_process\n", "")},
    )

    assert response.status_code == 422
    assert 'data-testid="general-problems"' in response.content.decode()
    assert "Alert type: choose" in response.content.decode()


def test_it_checks_a_rule_without_saving_it(tenancy, alice):
    response = alice.post(
        reverse("detection:check"),
        {"yaml": VALID_RULE, "alert_type": ""},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert 'data-testid="check-ok"' in html
    assert "level high → risk High" in html
    assert "<html" not in html
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()


def test_it_uses_an_uploaded_file(tenancy, alice):
    upload = SimpleUploadedFile("netcat.yml", VALID_RULE.encode(), content_type="application/yaml")

    response = alice.post(reverse("detection:rule_new"), {"yaml": "", "upload": upload})

    assert response.status_code == 302
    assert DetectionRule.objects.get(organisation=tenancy.org).yaml == VALID_RULE


def test_it_edits_a_custom_rule(alice, custom_rule):
    changed = VALID_RULE.replace("level: high", "level: low").replace("Netcat listener", "Netcat")

    response = alice.post(
        reverse("detection:rule_edit", args=[custom_rule.id]),
        {"yaml": changed, "alert_type": "malicious_process"},
    )

    custom_rule.refresh_from_db()
    assert response.status_code == 302
    assert (custom_rule.title, custom_rule.level, custom_rule.alert_type) == (
        "Netcat",
        "low",
        "malicious_process",
    )
    assert not custom_rule.enabled  # the box was not ticked


def test_it_dry_runs_over_the_last_day_of_the_views_logs_only(tenancy, alice):
    ingest_logs(
        [
            netcat_log(tenancy.account_a, "host-a1"),
            netcat_log(tenancy.account_a, "host-a2", "nc -l 9000"),
            netcat_log(tenancy.account_a, "host-a3", "nc db 5432"),
        ],
        scope=organisation_scope(tenancy.org),
    )
    ingest_logs(
        [netcat_log(tenancy.account_x, "host-x1")], scope=organisation_scope(tenancy.other_org)
    )

    response = alice.post(
        reverse("detection:dry_run"), {"yaml": VALID_RULE}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert re.search(r'data-testid="dry-run-matches">2<', html)
    assert "among <strong>3</strong> log records" in html
    assert "host-a1" in html and "host-a2" in html
    assert "host-x1" not in html
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()


def test_it_reports_problems_instead_of_dry_running_a_broken_rule(alice):
    response = alice.post(reverse("detection:dry_run"), {"yaml": BROKEN_RULE})

    assert problems_by_line(response.content.decode())[9]


def test_it_disables_and_enables_a_custom_rule(alice, custom_rule):
    alice.post(reverse("detection:rule_toggle", args=[custom_rule.id]), {"enabled": "false"})
    custom_rule.refresh_from_db()
    assert not custom_rule.enabled

    alice.post(reverse("detection:rule_toggle", args=[custom_rule.id]), {"enabled": "true"})
    custom_rule.refresh_from_db()
    assert custom_rule.enabled


def test_it_disables_a_predefined_rule_for_one_organisation_only(tenancy, alice):
    sync_predefined_rules()
    rule = DetectionRule.objects.get(key="reverse-shell-command", organisation=None)

    response = alice.post(
        reverse("detection:predefined_toggle", args=[rule.key]), {"enabled": "false"}
    )

    assert response.status_code == 302
    enabled = set(DetectionRule.objects.enabled_for(tenancy.org.id).values_list("key", flat=True))
    assert rule.key not in enabled
    others = set(
        DetectionRule.objects.enabled_for(tenancy.other_org.id).values_list("key", flat=True)
    )
    assert rule.key in others
    page = alice.get(reverse("detection:predefined", args=[rule.key])).content.decode()
    assert "Enable for my organisation" in page


def test_it_shows_a_predefined_rule_read_only_to_an_analyst(tenancy):
    sync_predefined_rules()
    bob = tenancy.client_for(tenancy.bob)

    page = bob.get(reverse("detection:predefined", args=["ssh-brute-force"]))

    assert page.status_code == 200
    assert "SSH brute force" in page.content.decode()
    assert "for my organisation</button>" not in page.content.decode()


def test_it_deletes_a_custom_rule(alice, custom_rule):
    response = alice.post(reverse("detection:rule_delete", args=[custom_rule.id]))

    assert response.status_code == 302
    assert not DetectionRule.objects.filter(id=custom_rule.id).exists()


def test_it_lets_only_administrators_change_rules(tenancy, custom_rule):
    bob = tenancy.client_for(tenancy.bob)

    assert bob.get(reverse("detection:rules")).status_code == 200
    assert bob.get(reverse("detection:rule_new")).status_code == 403
    assert bob.post(reverse("detection:rule_new"), {"yaml": VALID_RULE}).status_code == 403
    assert (
        bob.post(
            reverse("detection:rule_toggle", args=[custom_rule.id]), {"enabled": "false"}
        ).status_code
        == 403
    )
    assert bob.post(reverse("detection:rule_delete", args=[custom_rule.id])).status_code == 403
    custom_rule.refresh_from_db()
    assert custom_rule.enabled


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("detection:rule_edit", "get"),
        ("detection:rule_edit", "post"),
        ("detection:rule_toggle", "post"),
        ("detection:rule_delete", "post"),
    ],
)
def test_it_hides_another_organisations_rule(tenancy, custom_rule, name, method):
    charlie = tenancy.client_for(tenancy.charlie)
    # Charlie administers his own organisation, so only tenancy can stop him.
    tenancy.charlie.organisation_membership.is_global_admin = True
    tenancy.charlie.organisation_membership.save()

    response = getattr(charlie, method)(
        reverse(name, args=[custom_rule.id]), {"yaml": VALID_RULE, "enabled": "false"}
    )

    assert response.status_code == 404
    custom_rule.refresh_from_db()
    assert custom_rule.enabled and custom_rule.yaml == VALID_RULE


def test_it_leaves_another_organisations_rule_out_of_the_list(tenancy, custom_rule):
    charlie = tenancy.client_for(tenancy.charlie)

    html = charlie.get(reverse("detection:rules")).content.decode()

    assert "Netcat listener" not in html
