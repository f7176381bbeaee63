"""The top bar's scope switch, driven through a real browser."""

import re

import pytest
from playwright.sync_api import expect

from secops.enums import RegionGroup
from tests import factories
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVENT_OF_A_IN_CHINA = "Webshell on Acme Prod"
EVENT_OF_B_OUTSIDE_CHINA = "Mining on Acme Intl"
EVENT_OF_X = "Secret of Umbrella"


@pytest.fixture
def events(tenancy):
    factories.make_event(tenancy.account_a, region=RegionGroup.CHINA, name=EVENT_OF_A_IN_CHINA)
    factories.make_event(
        tenancy.account_b, region=RegionGroup.OUTSIDE_CHINA, name=EVENT_OF_B_OUTSIDE_CHINA
    )
    factories.make_event(tenancy.account_x, name=EVENT_OF_X)


def log_in(page, username: str):
    page.goto("/")
    # Anonymous visitors land on the login form.
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("scope-summary")).to_be_visible()


def test_it_switches_region_account_and_view(page, live_server, tenancy, events, screenshot):
    summary = page.get_by_test_id("scope-summary")
    recent_events = page.get_by_test_id("recent-events")
    account_column = recent_events.get_by_role("columnheader", name="Account", exact=True)

    log_in(page, "alice")

    expect(summary).to_contain_text("Current Account View")
    expect(summary).to_contain_text("China")
    expect(recent_events).to_contain_text(EVENT_OF_A_IN_CHINA)
    expect(page.locator("body")).not_to_contain_text(EVENT_OF_B_OUTSIDE_CHINA)
    expect(page.locator("body")).not_to_contain_text(EVENT_OF_X)

    # Region: the selector submits itself on change.
    page.get_by_test_id("region-select").select_option(RegionGroup.OUTSIDE_CHINA.value)
    expect(summary).to_contain_text("Outside China")
    expect(page.get_by_text("No security events in this view.")).to_be_visible()
    expect(recent_events).to_have_count(0)

    # Account: B holds an event outside China.
    page.get_by_test_id("account-select").select_option(str(tenancy.account_b.id))
    expect(recent_events).to_contain_text(EVENT_OF_B_OUTSIDE_CHINA)
    expect(summary).to_contain_text("Current Account View")
    expect(summary).to_contain_text("Outside China")
    expect(account_column).to_have_count(0)

    # Global Account View: every managed account, with an Account column.
    page.get_by_test_id("view-global").click()
    expect(summary).to_contain_text("Global Account View")
    expect(summary).to_contain_text("2 managed accounts")
    expect(page.get_by_test_id("view-global")).to_have_attribute("aria-pressed", "true")
    expect(account_column).to_have_count(1)
    expect(recent_events.get_by_role("row", name=EVENT_OF_B_OUTSIDE_CHINA)).to_contain_text(
        "Acme Intl"
    )
    expect(page.get_by_test_id("account-select")).to_contain_text("All managed accounts (2)")
    expect(page.locator("body")).not_to_contain_text(EVENT_OF_A_IN_CHINA)
    expect(page.locator("body")).not_to_contain_text(EVENT_OF_X)
    screenshot("global-view")

    # Back to the Current Account View of the account picked last.
    page.get_by_test_id("view-current").click()
    expect(summary).not_to_contain_text("Global Account View")
    expect(summary).to_contain_text("Current Account View")
    expect(page.get_by_test_id("view-current")).to_have_attribute("aria-pressed", "true")
    expect(account_column).to_have_count(0)
    expect(recent_events).to_contain_text(EVENT_OF_B_OUTSIDE_CHINA)


def test_it_offers_an_analyst_no_global_view(page, tenancy, events, screenshot):
    log_in(page, "bob")

    expect(page.get_by_test_id("region-select")).to_be_visible()
    expect(page.get_by_test_id("account-select").locator("option")).to_have_count(1)
    expect(page.get_by_test_id("view-global")).to_have_count(0)
    expect(page.get_by_test_id("view-current")).to_have_count(0)
    expect(page.get_by_test_id("recent-events")).to_contain_text(EVENT_OF_A_IN_CHINA)
    screenshot("analyst")


def test_it_serves_the_console_s_static_files(page, live_server, tenancy):
    log_in(page, "bob")

    stylesheet = page.request.get(f"{live_server.url}/static/css/console.css")
    assert stylesheet.status == 200
    assert "text/css" in stylesheet.headers["content-type"]
    # The stylesheet is applied: the top bar takes its dark background from it.
    background = page.locator(".topbar").evaluate("node => getComputedStyle(node).backgroundColor")
    assert background == "rgb(20, 27, 38)"
    # htmx comes from django-htmx's own static files.
    assert page.evaluate("typeof window.htmx") == "object"
