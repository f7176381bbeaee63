"""Automated response in a real browser: a global administrator writes the rule
"High risk with an attacker IP: block on Cloud Firewall for 1 day" on the rules
page; alerts then arrive through the API, and the attacker is blocked in the
Disposal Center with nobody clicking Handle."""

import json
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from disposal.models import HandlingTask, TaskStatus
from secops.services import create_api_key
from soar.models import AutomationRule, PlaybookRun, RunTrigger
from tests.browser.test_bulk_handling import held_jobs  # noqa: F401 (fixture)
from tests.browser.test_csp import log_in, problems  # noqa: F401 (fixture)
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ATTACKER = "198.18.7.7"
CONDITIONS = {
    "all": [
        {"field": "risk", "operator": "equals", "value": "high"},
        {"field": "entity_type", "operator": "equals", "value": "ip"},
    ]
}

# One alert makes events of two predefined rules; the gated rule acts on one.
GATED_CONDITIONS = {
    "all": [
        *CONDITIONS["all"],
        {"field": "event_name", "operator": "starts_with", "value": "brute force and logon"},
    ]
}


def test_a_rule_blocks_a_new_high_risk_attacker_with_nobody_in_the_loop(
    page,
    problems,  # noqa: F811
    tenancy,
    screenshot,
):
    page.goto("/")
    page.get_by_label("Username").fill(tenancy.alice.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="SOAR").click()
    page.get_by_role("link", name="Automated Response Rules").click()
    page.get_by_role("link", name="New rule").click()
    page.locator("[name=name]").fill("High risk with an attacker IP: block for 1 day")
    page.locator("[name=trigger]").select_option("event_created")
    page.locator("[name=conditions]").fill(json.dumps(CONDITIONS))
    page.locator("[name=action]").select_option("run_playbook")
    page.locator("[name=playbook]").select_option(
        label="Block inbound traffic from the IP on Cloud Firewall"
    )
    page.locator("[name=validity_days]").fill("1")
    screenshot("rule-form")
    page.locator("form button[type=submit]").last.click()
    expect(page.get_by_test_id("rule-conditions")).to_have_text(
        "risk equal to high AND entity_type equal to ip"
    )
    rule = AutomationRule.objects.get()

    # Alerts arrive through the API, as a client's forwarder sends them.
    _, key = create_api_key(organisation=tenancy.org, account=None, name="forwarder")
    alert = {
        "source": "security_center",
        "uuid": "forwarded-1",
        "account": tenancy.account_a.uid,
        "type": "brute_force",
        "name": "SSH brute force",
        "level": "high",
        "occurred_at": datetime.now(UTC).isoformat(),
        "asset": {"uuid": "host-web-01", "name": "web-01"},
        "entities": [{"type": "ip", "role": "attacker", "value": ATTACKER}],
    }
    answer = page.request.post(
        "/api/v1/alerts",
        data=json.dumps({"alerts": [alert]}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.text()

    page.get_by_role("link", name="Disposal Center").click()
    page.get_by_test_id("tab-tasks").click()
    task = HandlingTask.objects.get(policy__entity_value=ATTACKER, account=tenancy.account_a)
    row = page.locator(f"tbody[data-task-id='{task.pk}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Blocked")
    screenshot("blocked")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.policy.validity_days == 1
    run = PlaybookRun.objects.get(pk=task.policy.source_run_id)
    assert run.rule == rule and run.trigger == RunTrigger.RULE
    assert problems == []


def _forward(page, tenancy, alerts):
    """Alerts through the API, as a client's forwarder sends them."""
    _, key = create_api_key(organisation=tenancy.org, account=None, name=f"fwd-{len(alerts)}")
    answer = page.request.post(
        "/api/v1/alerts",
        data=json.dumps({"alerts": alerts}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.text()


def _brute_force(tenancy, uuid, attacker, host="web-01"):
    return {
        "source": "security_center",
        "uuid": uuid,
        "account": tenancy.account_a.uid,
        "type": "brute_force",
        "name": "SSH brute force",
        "level": "high",
        "occurred_at": datetime.now(UTC).isoformat(),
        "asset": {"uuid": f"host-{host}", "name": host},
        "entities": [{"type": "ip", "role": "attacker", "value": attacker}],
    }


def test_an_approval_gated_rule_waits_until_an_administrator_approves(
    page,
    problems,  # noqa: F811
    tenancy,
    screenshot,
    settings,
    live_server,
):
    """The rule's run waits on Pending Approvals, nothing is blocked meanwhile;
    the administrator follows the link of the approval request and approves;
    only then is the attacker blocked."""
    from disposal.models import Notification
    from soar.models import RunStatus

    settings.CONSOLE_URL = live_server.url
    tenancy.alice.email = "alice@example.test"
    tenancy.alice.save()
    log_in(page, "alice")
    page.goto("/soar/rules/new/")
    page.locator("[name=name]").fill("High risk attacker: block after approval")
    page.locator("[name=trigger]").select_option("event_created")
    page.locator("[name=conditions]").fill(json.dumps(GATED_CONDITIONS))
    page.locator("[name=action]").select_option("run_playbook")
    page.locator("[name=playbook]").select_option(
        label="Block inbound traffic from the IP on Cloud Firewall"
    )
    page.locator("[name=validity_days]").fill("1")
    page.locator("[name=require_approval]").check()
    page.get_by_test_id("save-rule").click()
    expect(page.locator(".messages .success")).to_contain_text("Saved the rule")

    _forward(page, tenancy, [_brute_force(tenancy, "gated-1", ATTACKER)])

    page.get_by_role("link", name="Pending Approvals").click()
    run = PlaybookRun.objects.get()
    row = page.get_by_test_id(f"approval-{run.pk}")
    expect(row).to_contain_text("High risk attacker: block after approval")
    screenshot("pending")
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert not HandlingTask.objects.exists()

    # The approval request names the run's page; the administrator opens it.
    request = Notification.objects.get(event=run.event, title__startswith="Approval needed")
    assert request.recipients == ["alice@example.test"]
    link = next(line for line in request.body.splitlines() if line.startswith(live_server.url))
    page.goto(link)
    expect(page.get_by_test_id("run-status")).to_have_text("Awaiting approval")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded")
    screenshot("approved")

    page.get_by_role("link", name="Disposal Center").click()
    page.get_by_test_id("tab-tasks").click()
    task = HandlingTask.objects.get(policy__entity_value=ATTACKER)
    expect(
        page.locator(f"tbody[data-task-id='{task.pk}']").get_by_test_id("task-status")
    ).to_have_text("Blocked")
    page.goto("/soar/approvals/")
    expect(page.get_by_test_id("approvals")).to_contain_text("No run awaits approval.")
    run.refresh_from_db()
    assert run.decided_by == tenancy.alice
    page.wait_for_load_state("networkidle")
    assert problems == []


def test_bulk_handling_runs_a_playbook_on_each_filtered_event(
    page,
    problems,  # noqa: F811
    tenancy,
    screenshot,
    held_jobs,  # noqa: F811
):
    """An analyst filters the list down to the brute-force events, runs the
    Cloud Firewall block playbook on all of them, follows the progress, and
    finds one run and one blocked attacker per event."""
    from soar import tasks
    from tests.browser.test_bulk_handling import wait_for

    attackers = [f"198.18.9.{n}" for n in range(1, 4)]
    _forward(
        page,
        tenancy,
        [_brute_force(tenancy, f"bulk-{n}", ip, host=f"web-{n}") for n, ip in enumerate(attackers)]
        + [
            {
                **_brute_force(tenancy, "other-1", "198.18.9.99"),
                "type": "webshell",
                "name": "Webshell",
                "level": "medium",
            }
        ],
    )
    log_in(page, "bob")
    page.goto("/events/?name=Brute+force+and+logon")
    table = page.get_by_test_id("event-table")
    expect(table.get_by_test_id("select-event")).to_have_count(3)
    bar = page.get_by_test_id("bulk-form")
    expect(bar.get_by_test_id("bulk-all")).to_have_text("Handle all 3 matching")
    bar.get_by_test_id("bulk-action").select_option("run_playbook")
    expect(bar.get_by_test_id("bulk-status")).to_be_hidden()
    bar.get_by_test_id("bulk-playbook").select_option(
        label="Block inbound traffic from the IP on Cloud Firewall"
    )
    bar.get_by_test_id("bulk-all").click()
    panel = page.get_by_test_id("bulk-panel")
    expect(panel.get_by_test_id("bulk-summary")).to_contain_text("3 events")
    panel.get_by_test_id("bulk-confirm").click()

    status = page.get_by_test_id("bulk-status")
    expect(status).to_contain_text("Queued: 3 events")
    screenshot("queued")
    tasks.run_bulk_handling(wait_for(held_jobs))
    expect(status.get_by_test_id("bulk-done")).to_be_visible()
    expect(status.get_by_test_id("bulk-progress")).to_have_attribute("value", "100")
    expect(status.get_by_test_id("bulk-handled")).to_have_text("3")
    expect(status.get_by_test_id("bulk-failed")).to_have_text("0")
    screenshot("done")

    runs = PlaybookRun.objects.filter(trigger=RunTrigger.BULK)
    assert runs.count() == 3 and {r.status for r in runs} == {"succeeded"}
    page.goto("/soar/runs/")
    expect(page.get_by_test_id("runs").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("runs")).to_contain_text("Bulk handling")
    blocked = sorted(
        HandlingTask.objects.filter(status="succeeded").values_list(
            "policy__entity_value", flat=True
        )
    )
    assert blocked == attackers
    page.wait_for_load_state("networkidle")
    assert problems == []
