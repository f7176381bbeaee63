"""The Audit Log page in a real browser: what an administrator did shows up,
filtered, with its changes, and exports."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from secops.enums import RegionGroup
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, username: str, password: str = PASSWORD):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_an_admin_reads_filters_and_exports_the_audit_log(page, tenancy, screenshot):
    # A failed login of bob, then alice logs in and switches region.
    log_in(page, "bob", "not-his-password")
    expect(page.locator("body")).to_contain_text("enter a correct username and password")
    log_in(page, "alice")
    expect(page.get_by_test_id("scope-summary")).to_be_visible()
    page.get_by_test_id("region-select").select_option(RegionGroup.OUTSIDE_CHINA.value)
    expect(page.get_by_test_id("scope-summary")).to_contain_text("Outside China")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit Log").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))
    rows = page.get_by_test_id("audit-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("View switch")
    expect(rows.nth(1)).to_contain_text("Login")
    expect(rows.nth(2)).to_contain_text("Failed login")
    expect(rows.nth(2)).to_contain_text("bob")
    screenshot("list")

    # Only the failed logins.
    page.get_by_label("Action").select_option("login.failure")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("bob")
    expect(page).to_have_url(re.compile(r"action=login.failure"))

    # The export follows the filters.
    with page.expect_download() as download:
        page.get_by_test_id("audit-export-csv").click()
    content = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "login.failure" in content and "view.switch" not in content

    # The view switch's entry shows the region before and after.
    page.get_by_role("link", name="Reset").click()
    rows.nth(0).get_by_test_id("audit-detail-link").click()
    changes = page.get_by_test_id("audit-changes")
    expect(changes).to_contain_text("region")
    expect(changes).to_contain_text(RegionGroup.OUTSIDE_CHINA.value)
    screenshot("detail")


def test_an_analyst_has_no_link_and_is_refused(page, tenancy):
    log_in(page, "bob")
    expect(page.get_by_test_id("scope-summary")).to_be_visible()
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Audit Log")).to_have_count(0)
    response = page.goto("/audit/")
    assert response.status == 403
