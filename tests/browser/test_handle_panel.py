"""The Handle panel in a real browser: an analyst opens it beside Security Event
Handling, uses the recommended policy, watches the Message Preview follow the
form, clicks OK, and sees the event's status change in the list."""

import re

import pytest
from playwright.sync_api import expect

from disposal.models import CloudService, HandlingTask, Notification, Operation, Scenario
from events.models import EventStatus
from tests.conftest import PASSWORD
from tests.disposal.conftest import (
    ATTACKER_IP,
    brute_force_event,  # noqa: F401 (the handling suites' fixture, used by ``incident``)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each CSP violation the browser reports is handed to the test.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} refused ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def problems(page):
    found: list[str] = []
    page.context.expose_function("reportCspViolation", lambda text: found.append(f"CSP: {text}"))
    page.context.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: found.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


WATCH = "watch-ip"


@pytest.fixture
def incident(request):
    """An event whose attacker IP the alerts call malicious (``brute_force_event``),
    and a custom IP scenario of the organisation without a validity period."""
    handled = request.getfixturevalue("brute_force_event")
    Scenario.objects.create(
        key=WATCH,
        name="Put the IP on the watch list",
        entity_type="ip",
        cloud_service=CloudService.CLOUD_FIREWALL,
        operation=Operation.BLOCK_IP,
        built_in=False,
        organisation=handled.event.account.organisation,
        position=99,
    )
    return handled


def log_in(page, username):
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_an_analyst_handles_an_event_with_the_recommended_policy(
    page, incident, problems, screenshot
):
    event = incident.event
    log_in(page, incident.analyst.username)
    # The fixture's alerts are from a fixed day, a couple of weeks back.
    page.goto("/events/?occurred=30d")
    row = page.locator(f'tr[data-event-id="{event.pk}"]')
    expect(row.locator(".badge[class*=status-]")).to_have_text("Unhandled")

    row.get_by_role("link", name="Handle").click()

    panel = page.get_by_test_id("handle-panel")
    expect(panel.get_by_role("heading", name="Handle security event")).to_be_visible()
    expect(panel).to_contain_text(event.name)
    ip_tab = panel.get_by_test_id("handle-tab-body-ip")
    expect(ip_tab).to_be_visible()
    expect(ip_tab.get_by_test_id("entity-value")).to_have_text(ATTACKER_IP)
    # Nothing is chosen until the analyst asks; the scenario waits for the tick.
    expect(ip_tab.get_by_test_id("entity-select")).not_to_be_checked()
    expect(ip_tab.get_by_test_id("entity-scenario")).to_be_hidden()

    # The file tab has no recommendation, and says so.
    panel.get_by_test_id("handle-tab-file").click()
    file_tab = panel.get_by_test_id("handle-tab-body-file")
    file_tab.get_by_role("button", name="Use Recommended Handling Policy").click()
    expect(file_tab.get_by_test_id("recommend-note")).to_contain_text("No policy is recommended")

    panel.get_by_test_id("handle-tab-ip").click()
    ip_tab.get_by_role("button", name="Use Recommended Handling Policy").click()
    expect(ip_tab.get_by_test_id("recommend-note")).to_contain_text("filled in for 1 entity")
    expect(ip_tab.get_by_test_id("entity-select")).to_be_checked()
    expect(ip_tab.get_by_test_id("entity-scenario")).to_have_value(
        "block-ip-cloud-firewall-inbound"
    )
    expect(ip_tab.get_by_test_id("entity-validity")).to_have_value("7")

    # A scenario without a validity period hides the field; the block shows it again.
    ip_tab.get_by_test_id("entity-scenario").select_option(WATCH)
    expect(ip_tab.get_by_test_id("entity-validity")).to_be_hidden()
    expect(ip_tab.get_by_test_id("entity-validity")).to_be_disabled()
    ip_tab.get_by_test_id("entity-scenario").select_option("block-ip-cloud-firewall-inbound")
    expect(ip_tab.get_by_test_id("entity-validity")).to_be_enabled()
    expect(ip_tab.get_by_test_id("entity-validity")).to_have_value("7")

    preview = panel.get_by_test_id("message-preview")
    panel.get_by_test_id("notify-email").check()
    panel.get_by_test_id("notify-recipients").fill("soc@example.com")
    expect(preview.get_by_test_id("preview-recipients")).to_have_text("soc@example.com")
    expect(preview.get_by_test_id("message-body")).to_contain_text(
        f"Block inbound traffic from the IP on Cloud Firewall: IP address {ATTACKER_IP} "
        "for 7 days, in 1 account (Acme Prod)"
    )
    expect(preview.get_by_test_id("message-body")).to_contain_text("Status: Handling")
    screenshot("filled-in")

    panel.get_by_test_id("handle-ok").click()

    expect(panel.get_by_test_id("handle-done")).to_contain_text("1 policy, 1 task queued")
    # The list reloads: the simulated cloud acted at once, so the event is done.
    expect(row.locator(".badge[class*=status-]")).to_have_text(re.compile(r"^Handl(ing|ed)$"))
    screenshot("handled")
    assert HandlingTask.objects.filter(policy__source_event=event).count() == 1
    assert Notification.objects.filter(event=event).count() == 1
    event.refresh_from_db()
    assert event.status in (EventStatus.HANDLING, EventStatus.HANDLED)

    panel.get_by_role("link", name="Close").first.click()
    expect(panel).to_have_count(0)
    assert problems == []


def test_an_analyst_marks_an_event_handled_from_its_details(page, incident, problems):
    event = incident.event
    log_in(page, incident.analyst.username)
    page.goto(f"/events/{event.pk}/")

    page.get_by_test_id("event-action").filter(has_text="Handle").click()
    panel = page.locator("#alert-panel").get_by_test_id("handle-panel")
    panel.get_by_test_id("status-handled").check()
    panel.get_by_label("Description").fill("A test by the red team")
    expect(panel.get_by_test_id("message-body")).to_contain_text("Status: Handled")
    panel.get_by_test_id("handle-ok").click()

    # The details are shown again, with the new status and what was done.
    expect(page.locator(".messages")).to_contain_text(
        "is Handled: no handling action, no notification."
    )
    expect(page.locator(".page-head .badge.status-handled")).to_have_text("Handled")
    expect(page.get_by_test_id("status-history")).to_contain_text("A test by the red team")
    assert problems == []
