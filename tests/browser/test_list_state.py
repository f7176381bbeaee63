"""State that lives in the URL, in a real browser: a filter the event list
cannot use is marked next to its field while the others apply, and the event
details tab and the tracing diagram's layout survive a reload, Back and a
shared link."""

import re

import pytest
from playwright.sync_api import expect

from alerts.models import EntityType
from secops.enums import RiskLevel
from tests import factories
from tests.browser import test_event_pages, test_tracing
from tests.browser.test_event_pages import (
    LOW_ON_TARGET_HOST,
    MEDIUM_ON_TARGET_HOST,
    OF_ACCOUNT_B,
    OTHER_HIGH,
    TARGET,
    log_in_as_global_admin,
)
from tests.browser.test_tracing import drawn_diagram
from tests.events.test_tracing import C2, IMPLANT, alert_in, entity, make_event, web_exploit_logs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The event list's neighbours of one incident; the diagram library must be vendored
# (test_tracing skips without it, and so does this module).
incident = test_event_pages.incident
vendored_cytoscape = test_tracing.vendored_cytoscape


def test_it_marks_a_filter_it_cannot_use_and_applies_the_others(
    page, tenancy, incident, screenshot
):
    table = page.get_by_test_id("event-table")
    log_in_as_global_admin(page)

    page.goto(f"/events/?risk={RiskLevel.HIGH}&event_id=-5")

    event_id = page.get_by_test_id("filter-event-id")
    message = page.get_by_test_id("error-event_id")
    expect(message).to_have_text("Event ID must be a positive number.")
    # Next to its field: in the same label, and named by the input.
    expect(page.locator("label", has=event_id).get_by_test_id("error-event_id")).to_be_visible()
    expect(event_id).to_have_attribute("aria-describedby", "error-event_id")
    expect(event_id).to_have_value("-5")
    expect(page.get_by_test_id("filters-left-out")).to_be_visible()
    # The risk filter applies to the list and to the counters.
    expect(page.get_by_label("High Risk")).to_be_checked()
    for name in (TARGET, OTHER_HIGH, OF_ACCOUNT_B):
        expect(table).to_contain_text(name)
    expect(table).not_to_contain_text(MEDIUM_ON_TARGET_HOST)
    expect(table).not_to_contain_text(LOW_ON_TARGET_HOST)
    expect(page.get_by_test_id("count-risk-high")).to_have_text("3")
    expect(page.get_by_test_id("count-risk-medium")).to_have_text("0")
    screenshot("invalid-event-id")

    # Correcting it updates the list and clears the message without a reload.
    event_id.fill(str(incident.pk))
    event_id.press("Enter")
    expect(message).to_have_text("")
    expect(message).to_be_hidden()
    expect(page.get_by_test_id("filters-left-out")).to_have_count(0)
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text(TARGET)
    expect(page).to_have_url(re.compile(rf"[?&]event_id={incident.pk}(&|$)"))

    # Typing a bad value again marks the field again, and the list keeps the risk filter.
    event_id.fill("abc")
    event_id.press("Enter")
    expect(message).to_have_text("Event ID must be a positive number.")
    expect(table.locator("tbody tr")).to_have_count(3)


def test_it_keeps_the_details_tab_through_a_reload_and_back(page, tenancy, incident, screenshot):
    log_in_as_global_admin(page)
    page.goto(f"/events/{incident.pk}/")
    panel = page.locator("#tab")
    expect(panel).to_have_attribute("data-tab", "info")

    page.get_by_test_id("tab-alerts").click()
    expect(panel).to_have_attribute("data-tab", "alerts")
    expect(page).to_have_url(re.compile(r"\?tab=alerts$"))

    page.reload()
    expect(panel).to_have_attribute("data-tab", "alerts")
    expect(page.get_by_test_id("tab-alerts")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("event-alerts")).to_contain_text("Web shell command")
    screenshot("alerts-after-reload")

    page.go_back()
    expect(page).to_have_url(re.compile(rf"/events/{incident.pk}/$"))
    expect(panel).to_have_attribute("data-tab", "info")
    expect(page.get_by_test_id("tab-info")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("why-grouped")).to_be_visible()

    page.go_forward()
    expect(panel).to_have_attribute("data-tab", "alerts")
    expect(page.get_by_test_id("tab-alerts")).to_have_attribute("aria-selected", "true")


@pytest.fixture
def traced(tenancy):
    """An event of A whose host has logs, so that its diagram can be drawn."""
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    event = make_event(account, name="Malicious file on web-01")
    alert_in(
        event,
        web,
        entity(account, EntityType.PROCESS, IMPLANT, pid=3003, path="/tmp/kw", cmdline=IMPLANT),
        entity(account, EntityType.IP, C2),
    )
    return event


def test_it_opens_a_shared_link_on_its_tab_and_layout(page, tenancy, traced, screenshot):
    log_in_as_global_admin(page)

    page.goto(f"/events/{traced.pk}/?tab=tracing&layout=grid")

    layout = page.get_by_test_id("tracing-layout")
    expect(page.locator("#tab")).to_have_attribute("data-tab", "tracing")
    expect(page.get_by_test_id("tab-tracing")).to_have_attribute("aria-selected", "true")
    expect(layout).to_have_value("grid")
    drawn_diagram(page)
    screenshot("shared-grid")

    # Another layout replaces the URL's (no new history entry) and survives a reload.
    layout.select_option("circle")
    expect(page).to_have_url(re.compile(r"\?tab=tracing&layout=circle$"))
    page.reload()
    expect(layout).to_have_value("circle")
    drawn_diagram(page)

    # Back from another tab shows the diagram with the layout last chosen.
    page.get_by_test_id("tab-timeline").click()
    expect(page.locator("#tab")).to_have_attribute("data-tab", "timeline")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?tab=tracing&layout=circle$"))
    expect(page.locator("#tab")).to_have_attribute("data-tab", "tracing")
    expect(layout).to_have_value("circle")
    drawn_diagram(page)


def test_it_ignores_a_layout_it_does_not_know(page, tenancy, traced):
    log_in_as_global_admin(page)

    page.goto(f"/events/{traced.pk}/?tab=tracing&layout=%3Cscript%3E")

    expect(page.get_by_test_id("tracing-layout")).to_have_value("breadthfirst")
    drawn_diagram(page)
