"""Security Event Handling, the event details tabs and the live Alert page in a
real browser: filtering without a reload, shareable URLs, tabs, the asset
tooltip, an alert's information panel, and a new alert arriving live."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.services import ingest_alerts
from events.models import EventAlert
from secops.enums import RegionGroup, RiskLevel
from tests import factories
from tests.conftest import PASSWORD, native_alert, organisation_scope

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TARGET = "Webshell on web-01"
OTHER_HIGH = "Webshell on db-01"
OF_ACCOUNT_B = "Webshell on web-02 of Acme Intl"
MEDIUM_ON_TARGET_HOST = "Mining on web-01"
LOW_ON_TARGET_HOST = "Port scan of web-01"
# Survives htmx swaps, vanishes on a full page load.
MARKER = "window.__noReloadMarker"


@pytest.fixture
def incident(tenancy):
    """A High Risk event of A in China with two alerts on one asset, and its neighbours."""
    a = tenancy.account_a
    now = timezone.now()
    rule = factories.make_rule(name="Same host", group_by=["asset"])
    web = factories.make_asset(
        a, name="web-01", public_ip="198.51.100.10", private_ip="10.0.0.10", os="Ubuntu 22.04"
    )
    event = factories.make_event(
        a,
        rule=rule,
        name=TARGET,
        description="A web shell was uploaded and used.",
        risk=RiskLevel.HIGH,
        first_occurred_at=now - timedelta(hours=1),
        last_occurred_at=now,
        alert_count=2,
        group_values={
            "fields": {"asset": web.uuid},
            "display": {"asset": "web-01"},
            "window_seconds": 3600,
        },
    )
    event.affected_assets.add(web)
    for name, tactic, minutes in (
        ("Exploit of /upload", "Initial Access", 60),
        ("Web shell command", "Execution", 30),
    ):
        alert = factories.make_alert(
            a,
            asset=web,
            name=name,
            tactic=tactic,
            occurred_at=now - timedelta(minutes=minutes),
            raw={"cmd": "<b>id</b>"},
        )
        EventAlert.objects.create(event=event, alert=alert)
    factories.make_event(a, name=OTHER_HIGH, risk=RiskLevel.HIGH)
    factories.make_event(a, name=MEDIUM_ON_TARGET_HOST, risk=RiskLevel.MEDIUM)
    factories.make_event(a, name=LOW_ON_TARGET_HOST, risk=RiskLevel.LOW)
    factories.make_event(
        tenancy.account_b, region=RegionGroup.CHINA, name=OF_ACCOUNT_B, risk=RiskLevel.HIGH
    )
    factories.make_event(tenancy.account_x, name="Umbrella's webshell", risk=RiskLevel.HIGH)
    return event


def log_in_as_global_admin(page):
    page.goto("/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("view-global").click()
    expect(page.get_by_test_id("scope-summary")).to_contain_text("Global Account View")


def set_marker(page):
    page.evaluate(f"{MARKER} = 'still here'")


def marker(page):
    return page.evaluate(f"{MARKER} || null")


def test_it_filters_the_event_list_without_reloading(page, tenancy, incident, screenshot):
    table = page.get_by_test_id("event-table")
    log_in_as_global_admin(page)

    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Security Event Handling"
    ).click()
    expect(page.get_by_role("heading", name="Security Event Handling")).to_be_visible()
    for name in (TARGET, OTHER_HIGH, OF_ACCOUNT_B, MEDIUM_ON_TARGET_HOST, LOW_ON_TARGET_HOST):
        expect(table).to_contain_text(name)
    expect(table).not_to_contain_text("Umbrella")
    expect(table.get_by_role("columnheader", name="Account", exact=True)).to_have_count(1)
    set_marker(page)

    page.get_by_label("High Risk").check()
    expect(table).not_to_contain_text(MEDIUM_ON_TARGET_HOST)
    expect(table).not_to_contain_text(LOW_ON_TARGET_HOST)
    expect(table).to_contain_text(OF_ACCOUNT_B)
    expect(page.get_by_test_id("count-risk-low")).to_have_text("0")
    page.get_by_test_id("filter-name").press_sequentially("web-01")
    expect(table).not_to_contain_text(OTHER_HIGH)
    expect(table).not_to_contain_text(OF_ACCOUNT_B)
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text(TARGET)
    expect(page).to_have_url(re.compile(r"[?&]risk=3(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]name=web-01(&|$)"))
    assert marker(page) == "still here"
    screenshot("filtered")

    page.reload()
    assert marker(page) is None
    expect(page.get_by_label("High Risk")).to_be_checked()
    expect(page.get_by_label("Low Risk")).not_to_be_checked()
    expect(page.get_by_test_id("filter-name")).to_have_value("web-01")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text(TARGET)


def test_it_walks_through_the_tabs_of_an_event(page, tenancy, incident, screenshot):
    log_in_as_global_admin(page)
    page.goto(f"/events/?risk={RiskLevel.HIGH}&name=web-01")
    page.get_by_role("row", name=TARGET).get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name=TARGET)).to_be_visible()
    set_marker(page)

    panel = page.locator("#tab")
    tabs = {
        "info": ("Incident Information", page.get_by_test_id("why-grouped")),
        "timeline": ("Attack Timeline", page.get_by_test_id("timeline")),
        "alerts": ("Alert", page.get_by_test_id("event-alerts")),
        "tracing": ("Incident Source Tracing", page.get_by_test_id("tracing")),
    }
    for key in ("timeline", "alerts", "tracing", "info"):
        label, content = tabs[key]
        page.get_by_role("tab", name=label, exact=True).click()
        expect(panel).to_have_attribute("data-tab", key)
        expect(content).to_be_visible()
        expect(page.get_by_test_id(f"tab-{key}")).to_have_attribute("aria-selected", "true")
        for other in tabs.keys() - {key}:
            expect(page.get_by_test_id(f"tab-{other}")).not_to_have_attribute(
                "aria-selected", "true"
            )
        expect(page).to_have_url(re.compile(rf"\?tab={key}(&list=[^&]+)?$"))
        screenshot(f"tab-{key}")
    assert marker(page) == "still here"

    expect(page.get_by_test_id("why-grouped")).to_contain_text("same host web-01 within 1 h")
    tooltip = page.get_by_test_id("affected-assets").get_by_role("tooltip")
    details = page.get_by_test_id("affected-assets").get_by_role("button", name="Details")
    expect(tooltip).to_be_hidden()
    details.hover()
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("web-01")
    expect(tooltip).to_contain_text("Public IP: 198.51.100.10")
    expect(tooltip).to_contain_text("Private IP: 10.0.0.10")
    expect(tooltip).to_contain_text("OS: Ubuntu 22.04")
    screenshot("asset-tooltip")
    page.mouse.move(0, 0)
    expect(tooltip).to_be_hidden()
    details.focus()
    expect(tooltip).to_be_visible()


def test_it_shows_an_alert_s_information_from_the_timeline_and_the_alert_tab(
    page, tenancy, incident, screenshot
):
    log_in_as_global_admin(page)
    page.goto(f"/events/{incident.pk}/?tab=timeline")
    side_panel = page.locator("#alert-panel")

    stages = page.get_by_test_id("timeline").locator(".stage-name")
    expect(stages).to_have_text([re.compile("Initial Access"), re.compile("Execution")])
    page.get_by_test_id("timeline-alert").filter(has_text="Web shell command").click()
    expect(side_panel.get_by_test_id("alert-detail")).to_contain_text("Web shell command")
    expect(side_panel).to_contain_text("Occurrence Time")
    expect(side_panel).to_contain_text("Account Receiving Alert")
    # The payload shows as text, never as markup.
    expect(side_panel.get_by_test_id("original-data")).to_contain_text('"cmd": "<b>id</b>"')
    screenshot("timeline-alert")

    page.get_by_test_id("tab-alerts").click()
    page.get_by_role("row", name="Exploit of /upload").get_by_test_id("alert-details").click()
    expect(side_panel.get_by_test_id("alert-detail")).to_contain_text("Exploit of /upload")


def test_it_shows_a_new_alert_on_the_alert_page_without_reloading(
    page, tenancy, incident, screenshot
):
    table = page.get_by_test_id("alert-table")
    log_in_as_global_admin(page)
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Alert", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Alert", exact=True)).to_be_visible()
    expect(table).to_contain_text("Web shell command")
    set_marker(page)

    result = ingest_alerts(
        [
            native_alert(
                tenancy.account_b,
                name="Freshly arrived reverse shell",
                occurred_at=timezone.now().isoformat(),
                asset={"uuid": "host-web-02", "name": "web-02", "region": "cn-hangzhou"},
            ),
            native_alert(tenancy.account_x, name="Umbrella's fresh alert"),
        ],
        scope=organisation_scope(tenancy.org),
        partial=True,
    )
    assert result.accepted == 1

    fresh_row = table.get_by_role("row", name=re.compile("Freshly arrived reverse shell"))
    expect(fresh_row).to_be_visible(timeout=10_000)
    expect(fresh_row).to_contain_text("Acme Intl")
    expect(table.locator("tbody tr").first).to_contain_text("Freshly arrived reverse shell")
    expect(table).not_to_contain_text("Umbrella")
    assert marker(page) == "still here"
    screenshot("live-alert")


def test_it_drops_the_empty_table_note_when_the_first_alert_arrives(page, tenancy, screenshot):
    table = page.get_by_test_id("alert-table")
    log_in_as_global_admin(page)
    page.goto("/alerts/")
    expect(table).to_contain_text("No alerts match these filters.")

    ingest_alerts(
        [
            native_alert(
                tenancy.account_a, name="First alert ever", occurred_at=timezone.now().isoformat()
            )
        ],
        scope=organisation_scope(tenancy.org),
    )

    expect(table.get_by_role("row", name=re.compile("First alert ever"))).to_be_visible(
        timeout=10_000
    )
    screenshot("first-alert")
    expect(table).not_to_contain_text("No alerts match these filters.")
