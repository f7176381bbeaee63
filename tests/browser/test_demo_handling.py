"""On the demo data, as a new user would: an analyst handles an Unhandled event
with its recommended policy, follows the block into the Disposal Center until
it is Blocked in the simulated cloud, and unblocks it."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from disposal.handling import handling_context
from disposal.models import HandlingTask, SimulatedAction, TaskStatus
from events.models import EventStatus, SecurityEvent
from secops import demo
from secops.services import build_scope

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Quiet-Meadow-Compass-17"


@pytest.fixture
def demo_event(django_user_model):
    """The demo loaded with a few hundred alerts, and the newest Unhandled event
    of the analyst's account whose attacker IP has a recommended block."""
    call_command("seed_demo", alerts=300, analyst_password=PASSWORD, stdout=io.StringIO())
    analyst = django_user_model.objects.get(username=demo.DEMO_ANALYST.username)
    scope = build_scope(analyst, {})
    for event in (
        SecurityEvent.objects.in_scope(scope)
        .filter(status=EventStatus.UNHANDLED)
        .order_by("-last_occurred_at")
    ):
        ips = [e for e in handling_context(scope, event).tabs["ip"] if e.recommended]
        if ips:
            return event, ips[0].value
    pytest.fail("The demo has no Unhandled event with a recommended IP block.")


def test_an_analyst_blocks_a_demo_attacker_and_unblocks_it(page, demo_event, screenshot):
    event, ip = demo_event
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    page.get_by_label("Username").fill(demo.DEMO_ANALYST.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"/events/{event.pk}/")
    page.get_by_test_id("event-action").filter(has_text="Handle").click()
    panel = page.get_by_test_id("handle-panel")
    ip_tab = panel.get_by_test_id("handle-tab-body-ip")
    ip_tab.get_by_role("button", name="Use Recommended Handling Policy").click()
    expect(ip_tab.get_by_test_id("entity-scenario").first).to_have_value(
        "block-ip-cloud-firewall-inbound"
    )
    screenshot("recommended")
    panel.get_by_test_id("handle-ok").click()
    expect(page.locator(".badge.status-handled").first).to_be_visible()

    page.get_by_role("link", name="Disposal Center").click()
    page.get_by_test_id("tab-tasks").click()
    task = HandlingTask.objects.get(policy__source_event=event, policy__entity_value=ip)
    row = page.locator(f"tbody[data-task-id='{task.pk}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Blocked")
    assert SimulatedAction.objects.filter(target=ip, removed_at__isnull=True).exists()
    screenshot("blocked")

    row.get_by_test_id("task-unblock").click()
    expect(row.get_by_test_id("task-status")).to_have_text("Unblocked")
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    assert not SimulatedAction.objects.filter(
        reference=task.external_ref, removed_at__isnull=True
    ).exists()
