"""An aggregation rule's name pattern runs on RE2: a pattern that would make a
backtracking engine take hours on an alert name an attacker chose cannot slow
the pipeline, and what RE2 cannot run (look-around, back-references) is refused
in the form and the API, naming the field."""

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from events.models import AggregationRule, SecurityEvent
from events.rules import AggregationRuleSpec, save_custom_rule
from secops.services import create_api_key
from tests import factories
from tests.conftest import native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# Nested quantifiers: on a name of n 'a's and one other character a
# backtracking engine tries about 2 ** n ways before failing.
CATASTROPHIC = r"^(a+)+$"
HOSTILE_NAME = "a" * 40 + "!"
REFUSED = "Look-around and back-references are not supported"
FORM = {
    "name": "Names of a's",
    "enabled": "on",
    "group_by": ["asset"],
    "window_seconds": "3600",
    "event_name_template": "Alerts named {alert_name}",
    "risk": "",
}


def test_it_aggregates_a_batch_of_hostile_names_quickly(tenancy, ingest_and_aggregate):
    rule = save_custom_rule(
        tenancy.org,
        AggregationRuleSpec(
            name="Names of a's",
            group_by=("asset",),
            window_seconds=3600,
            event_name_template="Alerts named {alert_name}",
            name_pattern=CATASTROPHIC,
        ),
    )
    batch = [native_alert(tenancy.account_a, name=HOSTILE_NAME) for _ in range(50)]
    # Matched case-insensitively, as before.
    batch.append(native_alert(tenancy.account_a, name="AAAA"))

    started = time.perf_counter()
    result = ingest_and_aggregate(batch, scope=organisation_scope(tenancy.org))
    seconds = time.perf_counter() - started

    assert result.errors == [] and result.accepted == len(batch)
    assert seconds < 1.0
    grouped = SecurityEvent.objects.filter(rule=rule)
    assert [(event.name, event.alert_count) for event in grouped] == [("Alerts named AAAA", 1)]


def test_it_skips_a_stored_pattern_that_re2_cannot_run_and_aggregates_the_rest(
    tenancy, ingest_and_aggregate
):
    # A pattern saved when patterns were still compiled by Python's re.
    factories.make_rule(organisation=tenancy.org, name_pattern=r"(?<=x)y")
    webshell = AggregationRule.objects.get(key="webshell-and-reverse-shell", organisation=None)

    result = ingest_and_aggregate(
        [native_alert(tenancy.account_a, type="webshell", level="high", name="xy")],
        scope=organisation_scope(tenancy.org),
    )

    assert result.errors == []
    assert SecurityEvent.objects.filter(rule=webshell).count() == 1


@pytest.mark.parametrize("pattern", [r"(?=admin)", r"(?<!x)y", r"(a)\1"])
def test_it_refuses_a_pattern_re2_cannot_run_in_the_form(tenancy, pattern):
    response = tenancy.client_for(tenancy.alice).post(
        reverse("events:rule_create"), FORM | {"name_pattern": pattern}
    )

    assert response.status_code == 200
    errors = response.content.decode().split('data-field="name_pattern"')[1].split("</ul>")[0]
    assert "Invalid regular expression" in errors and REFUSED in errors
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()


@pytest.mark.parametrize("pattern", [r"(?=admin)", r"(a)\1"])
def test_it_refuses_a_pattern_re2_cannot_run_over_the_api(tenancy, pattern):
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Acme")
    body = {
        "name": "Names",
        "name_pattern": pattern,
        "group_by": ["asset"],
        "event_name_template": "Alerts named {alert_name}",
    }

    response = Client(HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/api/v1/aggregation-rules", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["name_pattern"]
    assert (
        errors["name_pattern"][0].startswith("Invalid regular expression")
        and REFUSED in (errors["name_pattern"][0])
    )
    assert not AggregationRule.objects.filter(organisation=tenancy.org).exists()
