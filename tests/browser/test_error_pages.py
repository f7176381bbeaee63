"""Error pages and shared links in a real browser: the console's own 404 page,
a refusal shown in place of the htmx panel that asked, and a link to an event
of another account that switches the view in one click."""

import re

import pytest
from playwright.sync_api import expect

from secops.enums import RegionGroup, Role
from secops.models import AccountMembership
from tests import factories
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OF_ACCOUNT_B = "Crypto miner on web-02 of Acme Intl"
HANDLE_REFUSAL = "Only analysts and administrators of the event's account handle it."


def log_in(page, username: str):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_an_unknown_address_shows_the_consoles_404_page(page, tenancy, screenshot):
    log_in(page, "bob")

    response = page.goto("/events/987654/")

    assert response.status == 404
    error = page.get_by_test_id("error-page")
    expect(error.get_by_role("heading")).to_contain_text("Page not found")
    expect(error).to_contain_text("Check the link")
    # In the console's layout: the menu and the scope selectors are there.
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_test_id("account-select")).to_be_visible()
    screenshot("404")


def test_a_refusal_shows_in_place_of_the_panel_that_asked(page, tenancy, screenshot):
    event = factories.make_event(tenancy.account_a, name="Webshell on web-01")
    log_in(page, "bob")
    page.goto("/events/")
    page.locator(f'tr[data-event-id="{event.pk}"]').get_by_role("link", name="Handle").click()
    panel = page.get_by_test_id("handle-panel")
    expect(panel.get_by_test_id("handle-ok")).to_be_enabled()
    # His role is lowered while the panel is open.
    AccountMembership.objects.filter(user=tenancy.bob).update(role=Role.VIEWER)

    panel.get_by_test_id("handle-ok").click()

    error = page.locator("#handle-panel").get_by_test_id("error-page")
    expect(error).to_contain_text(HANDLE_REFUSAL)
    expect(error.get_by_role("heading")).to_contain_text("Not allowed")
    # Only the panel changed: the list is still there, and no page was loaded.
    expect(page).to_have_url(re.compile(r"/events/$"))
    expect(page.locator(f'tr[data-event-id="{event.pk}"]')).to_be_visible()
    screenshot("403-in-panel")


def test_a_link_to_an_event_of_another_account_switches_to_it(page, tenancy, screenshot):
    event = factories.make_event(
        tenancy.account_b, region=RegionGroup.OUTSIDE_CHINA, name=OF_ACCOUNT_B
    )
    log_in(page, "alice")  # in the Current Account View of Acme Prod, China

    response = page.goto(f"/events/{event.pk}/")

    assert response.status == 404
    switch = page.get_by_test_id("in-another-view")
    expect(switch.get_by_test_id("object-account")).to_contain_text("Acme Intl")
    expect(switch.get_by_test_id("object-account")).to_contain_text(tenancy.account_b.uid)
    expect(page.locator("body")).not_to_contain_text(OF_ACCOUNT_B)
    screenshot("in-another-view")

    switch.get_by_role("button", name="Switch to Acme Intl and open it").click()

    expect(page).to_have_url(re.compile(rf"/events/{event.pk}/$"))
    expect(page.get_by_role("heading", name=OF_ACCOUNT_B)).to_be_visible()
    expect(page.get_by_test_id("account-select")).to_have_value(str(tenancy.account_b.id))
    expect(page.get_by_test_id("region-select")).to_have_value(RegionGroup.OUTSIDE_CHINA.value)
