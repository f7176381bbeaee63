"""The aggregation part of the Detection Rules page."""

import pytest
from django.urls import reverse

from events.models import AggregationRule
from secops.enums import Role
from secops.models import AccountMembership
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

RULES = reverse("events:rules")
NEW = reverse("events:rule_create")

VALID = {
    "name": "Port scans",
    "description": "Scans of one host",
    "enabled": "on",
    "match_types": "port_scan",
    "group_by": ["asset"],
    "window_seconds": "3600",
    "event_name_template": "Port scans of {asset_name}",
    "risk": "",
}


def test_it_lists_predefined_and_own_rules_only(tenancy):
    factories.make_rule(organisation=tenancy.org, name="Acme rule")
    factories.make_rule(organisation=tenancy.other_org, name="Umbrella rule")

    html = tenancy.client_for(tenancy.bob).get(RULES).content.decode()

    assert "Acme rule" in html and "Cryptomining on a host" in html
    assert "Umbrella rule" not in html


def test_it_creates_a_custom_rule_from_the_form(tenancy):
    response = tenancy.client_for(tenancy.alice).post(NEW, VALID)

    assert response.status_code == 302
    rule = AggregationRule.objects.get(organisation=tenancy.org)
    assert (rule.match_types, rule.group_by, rule.window_seconds) == (
        ["port_scan"],
        ["asset"],
        3600,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name_pattern", "(", "Invalid regular expression"),
        ("group_by", ["asset", "user", "domain", "url"], "at most 3"),
        ("event_name_template", "Scan {nope}", "Unknown placeholder {nope}"),
        ("window_seconds", "10", "between 60 seconds and 30 days"),
        ("match_types", "Port Scan", "Not an alert type key"),
    ],
)
def test_it_shows_each_error_next_to_its_field(tenancy, field, value, message):
    response = tenancy.client_for(tenancy.alice).post(NEW, VALID | {field: value})

    html = response.content.decode()
    assert response.status_code == 200
    error_list = html.split(f'data-field="{field}"')[1].split("</ul>")[0]
    assert message in error_list
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()


def test_it_switches_a_predefined_rule_off_for_the_organisation_only(tenancy):
    rule = AggregationRule.objects.get(key="mining-on-host")

    tenancy.client_for(tenancy.alice).post(
        reverse("events:rule_toggle", args=[rule.id]), {"enabled": "false"}
    )

    assert not AggregationRule.objects.enabled_for(tenancy.org.id).filter(pk=rule.pk).exists()
    assert AggregationRule.objects.enabled_for(tenancy.other_org.id).filter(pk=rule.pk).exists()


def test_it_refuses_changes_to_an_analyst(tenancy):
    rule = factories.make_rule(organisation=tenancy.org)
    client = tenancy.client_for(tenancy.bob)

    assert client.get(NEW).status_code == 403
    assert client.post(reverse("events:rule_delete", args=[rule.id])).status_code == 403
    assert AggregationRule.objects.filter(id=rule.id).exists()


def test_it_refuses_changes_to_an_account_admin(tenancy):
    # Rules apply to every account of the organisation, not only to the one bob administers.
    AccountMembership.objects.filter(user=tenancy.bob).update(role=Role.ADMIN)

    assert tenancy.client_for(tenancy.bob).post(NEW, VALID).status_code == 403
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()


def test_it_hides_another_tenants_rule(tenancy):
    rule = factories.make_rule(organisation=tenancy.org)
    client = tenancy.client_for(tenancy.charlie)
    AccountMembership.objects.filter(user=tenancy.charlie).update(role=Role.ADMIN)

    assert client.get(reverse("events:rule_edit", args=[rule.id])).status_code == 404
    assert client.post(reverse("events:rule_delete", args=[rule.id])).status_code == 404
    assert AggregationRule.objects.filter(id=rule.id).exists()


def test_it_disables_instead_of_deleting_a_rule_with_events(tenancy):
    rule = factories.make_rule(organisation=tenancy.org)
    factories.make_event(tenancy.account_a, rule=rule)

    tenancy.client_for(tenancy.alice).post(reverse("events:rule_delete", args=[rule.id]))

    rule.refresh_from_db()
    assert rule.enabled is False
