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
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ATTACKER = "198.18.7.7"
CONDITIONS = {
    "all": [
        {"field": "risk", "operator": "equals", "value": "high"},
        {"field": "entity_type", "operator": "equals", "value": "ip"},
    ]
}


def test_a_rule_blocks_a_new_high_risk_attacker_with_nobody_in_the_loop(page, tenancy, screenshot):
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda error: problems.append(str(error)))
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
