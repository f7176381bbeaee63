"""Custom aggregation rules: the validation of ``save_custom_rule`` and the
/api/v1/aggregation-rules endpoints (list, read, create, update, enable, delete)."""

import json
from dataclasses import replace

import pytest
from django.test import Client

from events.models import AggregationRule
from events.rules import (
    AggregationRuleSpec,
    PredefinedRuleError,
    RuleValidationError,
    delete_custom_rule,
    save_custom_rule,
)
from secops.enums import RiskLevel
from secops.services import create_api_key
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

PREDEFINED_COUNT = 13


def rule_data(**changes) -> AggregationRuleSpec:
    """A valid custom rule."""
    spec = AggregationRuleSpec(
        name="Port scans of a host",
        description="Scans seen by the firewall.",
        match_sources=("cloud_firewall",),
        match_types=("port_scan", "host_scan"),
        match_levels=(RiskLevel.MEDIUM, RiskLevel.HIGH),
        name_pattern=r"scan",
        group_by=("asset", "attacker_ip"),
        window_seconds=3600,
        event_name_template="Scans of {asset_name} from {attacker_ip}",
    )
    return replace(spec, **changes)


# --- save_custom_rule -----------------------------------------------------------


def test_it_saves_a_custom_rule_for_the_organisation(tenancy):
    rule = save_custom_rule(tenancy.org, rule_data())

    rule.refresh_from_db()
    assert rule.organisation == tenancy.org
    assert rule.key.startswith("custom-")
    assert rule.match_types == ["port_scan", "host_scan"]
    assert rule.match_levels == [RiskLevel.MEDIUM, RiskLevel.HIGH]
    assert rule.group_by == ["asset", "attacker_ip"]
    assert rule.risk is None
    assert not rule.is_predefined


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name_pattern": "([unclosed"}, "name_pattern", "Invalid regular expression: "),
        (
            {"group_by": ["asset", "attacker_ip", "user", "domain"]},
            "group_by",
            "Group by at most 3 fields.",
        ),
        ({"group_by": ["alert", "asset"]}, "group_by", '"alert" makes one event per alert'),
        ({"group_by": ["asset", "hostname"]}, "group_by", "Select a valid choice. hostname"),
        ({"group_by": []}, "group_by", "This field is required."),
        (
            {"event_name_template": "Scan of {hostname}"},
            "event_name_template",
            "Unknown placeholder {hostname}; known: ",
        ),
        (
            {"event_description_template": "{__class__}"},
            "event_description_template",
            "Unknown placeholder {__class__}",
        ),
        (
            {"window_seconds": 59},
            "window_seconds",
            "The window must be between 60 seconds and 30 days.",
        ),
        (
            {"window_seconds": 30 * 86400 + 1},
            "window_seconds",
            "The window must be between 60 seconds and 30 days.",
        ),
        (
            {"match_types": ("port_scan", "Port Scan")},
            "match_types",
            "Not an alert type key: Port Scan (lowercase letters, digits, underscores).",
        ),
        ({"match_sources": ["antivirus"]}, "match_sources", "Select a valid choice. antivirus"),
        ({"risk": 7}, "risk", "Select a valid choice. 7"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_it_refuses_an_invalid_rule_naming_the_field(tenancy, changes, field, message):
    with pytest.raises(RuleValidationError) as refused:
        save_custom_rule(tenancy.org, rule_data(**changes))

    assert list(refused.value.errors) == [field]
    assert refused.value.errors[field][0].startswith(message)
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()


def test_it_refuses_to_edit_a_predefined_rule(tenancy):
    mining = AggregationRule.objects.get(key="mining-on-host", organisation=None)

    with pytest.raises(PredefinedRuleError):
        save_custom_rule(tenancy.org, rule_data(), mining)

    mining.refresh_from_db()
    assert (mining.name, mining.organisation) == ("Cryptomining on a host", None)


def test_it_retires_a_custom_rule_that_made_events_instead_of_deleting_it(tenancy):
    rule = save_custom_rule(tenancy.org, rule_data())
    factories.make_event(tenancy.account_a, rule=rule)

    delete_custom_rule(rule)

    rule.refresh_from_db()
    assert rule.enabled is False


# --- the API ----------------------------------------------------------------------


@pytest.fixture
def api(tenancy):
    """Clients of Acme (organisation key), Acme's account A and Umbrella."""
    _, acme = create_api_key(organisation=tenancy.org, account=None, name="Acme")
    _, prod = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="Prod")
    _, umbrella = create_api_key(organisation=tenancy.other_org, account=None, name="Umbrella")
    return {
        name: Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        for name, key in (("acme", acme), ("prod", prod), ("umbrella", umbrella))
    }


def api_rule(**changes) -> dict:
    """A valid body for POST/PUT /api/v1/aggregation-rules."""
    body = {
        "name": "Port scans of a host",
        "match_sources": ["cloud_firewall"],
        "match_types": ["port_scan"],
        "match_levels": [2, 3],
        "group_by": ["asset"],
        "window_seconds": 3600,
        "event_name_template": "Scans of {asset_name}",
    }
    body.update(changes)
    return body


def send(client, method: str, path: str, body=None):
    return getattr(client, method)(
        f"/api/v1/aggregation-rules{path}",
        json.dumps(body) if body is not None else None,
        content_type="application/json",
    )


def predefined(key: str = "mining-on-host") -> AggregationRule:
    return AggregationRule.objects.get(key=key, organisation=None)


def test_it_refuses_the_rules_api_without_a_key(tenancy):
    response = Client().get("/api/v1/aggregation-rules")

    assert response.status_code == 401


def test_it_lists_the_predefined_rules_and_the_organisations_own(tenancy, api):
    own = save_custom_rule(tenancy.org, rule_data(name="Acme scans"))
    save_custom_rule(tenancy.other_org, rule_data(name="Umbrella scans"))

    response = api["acme"].get("/api/v1/aggregation-rules")

    assert response.status_code == 200
    rules = response.json()
    assert len(rules) == PREDEFINED_COUNT + 1
    custom = [r for r in rules if not r["predefined"]]
    assert [(r["id"], r["name"]) for r in custom] == [(own.id, "Acme scans")]
    assert {r["key"] for r in rules if r["predefined"]} == set(
        AggregationRule.objects.filter(organisation=None).values_list("key", flat=True)
    )


def test_it_creates_a_custom_rule(tenancy, api):
    response = send(api["acme"], "post", "", api_rule())

    assert response.status_code == 201
    body = response.json()
    rule = AggregationRule.objects.get(id=body["id"])
    assert rule.organisation == tenancy.org
    assert (body["predefined"], body["enabled"], body["match_types"], body["risk"]) == (
        False,
        True,
        ["port_scan"],
        None,
    )
    assert body["match_levels"] == [2, 3]


def test_it_refuses_rule_changes_through_an_account_key(tenancy, api):
    response = send(api["prod"], "post", "", api_rule(risk=3))

    assert response.status_code == 403
    assert "organisation API key" in response.json()["detail"]
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()


def test_it_lets_an_account_key_read_its_organisations_rules(tenancy, api):
    response = send(api["prod"], "get", "")

    assert response.status_code == 200
    assert {rule["key"] for rule in response.json()} >= {"mining-on-host"}


def test_it_answers_422_with_the_fields_at_fault(tenancy, api):
    response = send(
        api["acme"],
        "post",
        "",
        api_rule(window_seconds=10, name_pattern="(", match_types=["Port Scan"]),
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"window_seconds", "name_pattern", "match_types"}
    assert errors["window_seconds"] == ["The window must be between 60 seconds and 30 days."]
    assert not AggregationRule.objects.filter(organisation__isnull=False).exists()


def test_it_answers_422_to_a_body_missing_required_fields(tenancy, api):
    response = send(api["acme"], "post", "", {"name": "No grouping"})

    assert response.status_code == 422
    assert not AggregationRule.objects.filter(organisation__isnull=False).exists()


def test_it_reads_one_rule(tenancy, api):
    rule = save_custom_rule(tenancy.org, rule_data())

    response = api["acme"].get(f"/api/v1/aggregation-rules/{rule.id}")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["window_seconds"]) == (rule.id, 3600)


def test_it_updates_a_custom_rule(tenancy, api):
    rule = save_custom_rule(tenancy.org, rule_data())

    response = send(
        api["acme"],
        "put",
        f"/{rule.id}",
        api_rule(name="Renamed", group_by=["attacker_ip"], risk=RiskLevel.HIGH),
    )

    assert response.status_code == 200
    rule.refresh_from_db()
    assert (rule.name, rule.group_by, rule.risk, rule.key) == (
        "Renamed",
        ["attacker_ip"],
        RiskLevel.HIGH,
        rule.key,
    )
    assert response.json()["name"] == "Renamed"


def test_it_answers_422_to_an_invalid_update_and_keeps_the_rule(tenancy, api):
    rule = save_custom_rule(tenancy.org, rule_data())

    response = send(api["acme"], "put", f"/{rule.id}", api_rule(group_by=["nope"]))

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["group_by"]
    rule.refresh_from_db()
    assert rule.group_by == ["asset", "attacker_ip"]


def test_it_answers_409_to_an_edit_of_a_predefined_rule(tenancy, api):
    response = send(api["acme"], "put", f"/{predefined().id}", api_rule(name="Mine"))

    assert response.status_code == 409
    assert predefined().name == "Cryptomining on a host"


def test_it_answers_409_to_deleting_a_predefined_rule(tenancy, api):
    response = send(api["acme"], "delete", f"/{predefined().id}")

    assert response.status_code == 409
    assert predefined().enabled


def test_it_disables_and_enables_a_custom_rule(tenancy, api):
    rule = save_custom_rule(tenancy.org, rule_data())

    disabled = send(api["acme"], "post", f"/{rule.id}/enabled", {"enabled": False})
    rule.refresh_from_db()
    assert (disabled.status_code, disabled.json()["enabled"], rule.enabled) == (200, False, False)

    enabled = send(api["acme"], "post", f"/{rule.id}/enabled", {"enabled": True})
    rule.refresh_from_db()
    assert (enabled.status_code, enabled.json()["enabled"], rule.enabled) == (200, True, True)


def test_it_disables_a_predefined_rule_for_the_callers_organisation_only(tenancy, api):
    mining = predefined()

    response = send(api["acme"], "post", f"/{mining.id}/enabled", {"enabled": False})

    assert response.status_code == 200
    assert response.json()["enabled"] is False
    mining.refresh_from_db()
    assert mining.enabled is True  # the rule itself stays on for everyone
    assert list(mining.disabled_by.all()) == [tenancy.org]
    seen_by = {
        name: next(
            r for r in api[name].get("/api/v1/aggregation-rules").json() if r["id"] == mining.id
        )["enabled"]
        for name in ("acme", "umbrella")
    }
    assert seen_by == {"acme": False, "umbrella": True}


def test_it_deletes_a_custom_rule(tenancy, api):
    rule = save_custom_rule(tenancy.org, rule_data())

    response = send(api["acme"], "delete", f"/{rule.id}")

    assert response.status_code == 204
    assert not AggregationRule.objects.filter(id=rule.id).exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/{id}", None),
        ("put", "/{id}", api_rule(name="Hijacked")),
        ("post", "/{id}/enabled", {"enabled": False}),
        ("delete", "/{id}", None),
    ],
)
def test_it_answers_404_for_another_organisations_custom_rule(tenancy, api, method, path, body):
    theirs = save_custom_rule(tenancy.other_org, rule_data(name="Umbrella scans"))

    response = send(api["acme"], method, path.format(id=theirs.id), body)

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.enabled) == ("Umbrella scans", True)


def test_it_answers_404_for_a_rule_that_does_not_exist(tenancy, api):
    response = api["acme"].get("/api/v1/aggregation-rules/999999")

    assert response.status_code == 404
