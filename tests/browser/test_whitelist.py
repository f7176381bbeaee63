"""Whitelisting from an event row in a real browser: "Add to Whitelist" opens
the editor pre-filled from the event, the analyst narrows it, the preview
counts, and the next matching alert stays out of events, visibly."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.services import ingest_alerts
from events.models import SecurityEvent, WhitelistGroupOrigin
from tests.conftest import PASSWORD, native_alert, organisation_scope
from whitelist.models import RuleGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCANNER = "10.0.5.5"  # the ops team's vulnerability scanner
INTRUDER = "203.0.113.9"


def brute_force(tenancy, attacker: str, name="SSH brute force") -> dict:
    return native_alert(
        tenancy.account_a,
        type="brute_force",
        name=name,
        level="medium",
        occurred_at=timezone.now().isoformat(),
        asset={"uuid": "host-bastion-01", "name": "bastion-01", "public_ip": "198.51.100.20"},
        entities=[{"type": "ip", "role": "attacker", "value": attacker}],
    )


def send(tenancy, *alerts):
    result = ingest_alerts(list(alerts), scope=organisation_scope(tenancy.org))
    assert result.errors == [] and result.accepted == len(alerts)


def log_in(page, username="alice"):
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_it_whitelists_from_an_event_row_and_keeps_the_next_alert_out(page, tenancy, screenshot):
    send(tenancy, brute_force(tenancy, SCANNER, name="SSH brute force by the scanner"))
    event = SecurityEvent.objects.get(account=tenancy.account_a)
    log_in(page)

    page.get_by_role("link", name="Security Event Handling").click()
    row = page.locator(f"tr[data-event-id='{event.id}']")
    row.get_by_test_id("add-to-whitelist").click()

    expect(page.get_by_role("heading", name=f"Add to Whitelist: event #{event.id}")).to_be_visible()
    expect(page.get_by_test_id("group-scenario")).to_have_value("brute_force")
    first = page.get_by_test_id("condition-row").first
    expect(first.get_by_test_id("condition-object")).to_have_value("source_ip")
    expect(first.get_by_test_id("condition-value")).to_have_value(SCANNER)
    expect(page.get_by_test_id("preview-count")).to_contain_text("1 of 1 alert")

    # Narrow the object list to the scenario's objects, the conditions to the object's kind.
    first.get_by_test_id("condition-operator").select_option("in_cidr")
    first.get_by_test_id("condition-value").fill("10.9.0.0/16")
    expect(page.get_by_test_id("preview-count")).to_contain_text("0 of 1 alert")
    first.get_by_test_id("condition-value").fill("10.0.5.0/33")
    expect(page.get_by_test_id("preview-message")).to_contain_text("is not a CIDR block")
    first.get_by_test_id("condition-value").fill("10.0.5.0/24")
    page.get_by_test_id("add-condition").click()
    second = page.get_by_test_id("condition-row").nth(1)
    assert second.locator("option[value='url']").is_disabled()  # not a brute-force object
    second.get_by_test_id("condition-object").select_option("destination_port")
    assert second.locator("option[value='contains']").is_disabled()  # ports are compared whole
    second.get_by_role("button", name="Remove condition").click()
    expect(page.get_by_test_id("condition-row")).to_have_count(1)
    expect(page.get_by_test_id("preview-count")).to_contain_text("1 of 1 alert")
    page.get_by_test_id("group-name").fill("Ops vulnerability scanner")
    screenshot("editor")
    page.get_by_test_id("save-group").click()

    expect(page.get_by_role("heading", name=re.compile("Brute force"))).to_be_visible()
    group_row = page.get_by_test_id("group-table").get_by_role(
        "row", name=re.compile("Ops vulnerability scanner")
    )
    expect(group_row).to_contain_text("Source IP")
    expect(group_row).to_contain_text("10.0.5.0/24")
    expect(group_row.get_by_test_id("group-state")).to_have_text("Enabled")
    expect(group_row.get_by_test_id("group-hits")).to_have_text("0")

    # The scanner again, and a real intruder.
    send(
        tenancy,
        brute_force(tenancy, SCANNER, name="SSH brute force by the scanner"),
        brute_force(tenancy, INTRUDER, name="SSH brute force by an intruder"),
    )

    page.goto("/events/")
    expect(page.locator(f"tr[data-event-id='{event.id}']")).to_contain_text("1")
    table = page.get_by_test_id("event-table")
    expect(table).to_contain_text(INTRUDER)
    assert SecurityEvent.objects.get(id=event.id).alert_count == 1
    assert SecurityEvent.objects.count() == 2

    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Alert", exact=True
    ).click()
    alert_row = page.get_by_test_id("alert-table").get_by_role(
        "row", name=re.compile("SSH brute force by the scanner whitelisted")
    )
    expect(alert_row).to_have_count(1)
    alert_row.get_by_test_id("alert-details").click()
    expect(page.get_by_test_id("alert-whitelisted")).to_contain_text(
        "by policy group Ops vulnerability scanner"
    )
    screenshot("alert")

    page.goto("/whitelist/scenarios/brute_force/")
    expect(
        page.get_by_test_id("group-table")
        .get_by_role("row", name=re.compile("Ops vulnerability scanner"))
        .get_by_test_id("group-hits")
    ).to_have_text("1")
    assert WhitelistGroupOrigin.objects.get(group=RuleGroup.objects.get()).event_id == event.id


def test_it_does_not_offer_add_to_whitelist_to_an_analyst(page, tenancy):
    send(tenancy, brute_force(tenancy, SCANNER))
    log_in(page, "bob")

    page.goto("/events/")

    expect(page.get_by_test_id("event-table")).to_contain_text("1")
    expect(page.get_by_test_id("add-to-whitelist")).to_have_count(0)
    page.get_by_test_id("whitelist-settings").click()
    expect(page.get_by_role("heading", name="Incident Whitelist Settings")).to_be_visible()
    expect(page.get_by_test_id("create-group")).to_have_count(0)
