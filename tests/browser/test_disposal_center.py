"""The Disposal Center in a real browser: a block that failed on the simulated
cloud's instruction, the instruction removed on the simulated cloud's page,
Retry (confirmed) blocking the IP, then Unblock lifting it."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.services import ingest_alerts
from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import HandlingPolicy, HandlingTask, SimulatedFailure, TaskStatus
from events import feed
from events.models import EventStatus, SecurityEvent
from secops.services import build_scope
from tests.conftest import PASSWORD, native_alert, organisation_scope

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ATTACKER = "203.0.113.66"


@pytest.fixture
def failed_block(tenancy):
    """An event of account A handled by blocking its attacker IP, which the
    simulated cloud refused."""
    alert = native_alert(
        tenancy.account_a,
        type="brute_force",
        name="SSH brute force",
        level="medium",
        occurred_at=timezone.now().isoformat(),
        asset={"uuid": "host-bastion-01", "name": "bastion-01", "public_ip": "198.51.100.20"},
        entities=[{"type": "ip", "role": "attacker", "value": ATTACKER}],
    )
    result = ingest_alerts([alert], scope=organisation_scope(tenancy.org))
    assert result.errors == []
    event = SecurityEvent.objects.get(account=tenancy.account_a)
    SimulatedFailure.objects.create(
        account=tenancy.account_a, target=ATTACKER, message="Quota exceeded"
    )
    handle_event(
        build_scope(tenancy.alice, {}),
        event,
        HandlingRequest(
            status=EventStatus.HANDLING,
            actions=(
                ActionChoice(
                    "ip", ATTACKER, "block-ip-cloud-firewall-inbound", (tenancy.account_a.id,)
                ),
            ),
        ),
        cause=feed.Cause.by_user(tenancy.alice),
    )
    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED
    return event, task


def log_in(page, username="alice"):
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_it_retries_a_failed_block_and_unblocks_it(page, tenancy, failed_block, screenshot):
    event, task = failed_block
    page.on("dialog", lambda dialog: dialog.accept())
    # A refused inline style or script (the CSP) is logged as a console error.
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page)

    page.get_by_role("link", name="Disposal Center").click()
    page.get_by_test_id("tab-tasks").click()
    row = page.locator(f"tbody[data-task-id='{task.pk}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Block failed")
    expect(row.get_by_test_id("task-error")).to_contain_text("Quota exceeded")
    screenshot("failed")

    page.get_by_test_id("simulated-cloud-link").click()
    expect(page.get_by_test_id("simulated-banner")).to_contain_text("nothing leaves the console")
    screenshot("simulated-cloud")
    page.get_by_test_id("failure-row").get_by_test_id("remove-failure").click()
    expect(page.get_by_test_id("failure-row")).to_have_count(0)

    page.goto("/disposal/?tab=tasks")
    row.get_by_test_id("task-retry").click()
    expect(row.get_by_test_id("task-status")).to_have_text("Blocked")
    expect(row.get_by_test_id("task-error")).to_have_text("—")
    event.refresh_from_db()
    assert event.status == EventStatus.HANDLED
    row.get_by_test_id("task-details").click()
    history = page.get_by_test_id("task-transitions")
    expect(history).to_contain_text("Blocking → Block failed")
    expect(history).to_contain_text("Block failed → Pending")
    expect(history.locator("tr").last).to_contain_text("Blocking → Blocked")

    row.get_by_test_id("task-unblock").click()
    expect(row.get_by_test_id("task-status")).to_have_text("Unblocked")
    expect(row.get_by_test_id("task-unblock")).to_have_count(0)
    screenshot("unblocked")
    page.get_by_test_id("tab-policies").click()
    expect(page.get_by_test_id("policy-tasks")).to_have_text("1 unblocked")
    page.get_by_test_id("edit-policy").click()
    page.get_by_test_id("validity-days").fill("3")
    screenshot("edit")
    page.get_by_test_id("save-policy").click()
    expect(page.get_by_test_id("policy-filter")).to_contain_text(ATTACKER)
    expect(page.locator(".messages")).to_contain_text("changed")
    assert HandlingPolicy.objects.get().validity_days == 3
    assert problems == []
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
