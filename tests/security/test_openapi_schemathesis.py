"""Schemathesis against our own OpenAPI document: for every operation, requests
generated from the document (valid ones, and ones that break it) never get a
5xx, and every answer with a documented status matches its documented schema.

The document comes from the NinjaAPI object itself, so the test does not depend
on who may read /api/v1/openapi.json. Requests go through Django's WSGI handler
in process, authenticated with an organisation API key of the tenancy fixture.
Each request runs in a savepoint that is rolled back, so every example starts
from the same data: a custom aggregation rule and a whitelist group that the
operations on one object are also aimed at.

Undocumented status codes (401 without a key, 404 for an id outside the scope,
409 for a predefined rule) are not checked here: they are the API's documented
conventions, not part of each operation's schema.
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from events import rules as event_rules
from secops.api import api
from secops.services import create_api_key
from tests import factories
from tests.conftest import organisation_scope
from tests.security.test_hostile_queries import PROBE_VALUES
from whitelist import services as whitelist_services

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# A plain dict: schemathesis walks it, and ninja's document is a dict subclass.
RAW_SCHEMA = json.loads(json.dumps(api.get_openapi_schema()))
SCHEMA = schemathesis.openapi.from_dict(RAW_SCHEMA)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

# Per operation and generation mode; about 7 minutes on PostgreSQL for every operation.
EXAMPLES = 25
EXAMPLE_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _definition(operation) -> dict:
    return RAW_SCHEMA["paths"][operation.path][operation.method.lower()]


def _takes_input(operation) -> bool:
    """Whether the operation has anything a negative case could break."""
    return bool(_definition(operation).get("parameters") or _has_body(operation))


def _has_body(operation) -> bool:
    return "requestBody" in _definition(operation)


CASES = [
    pytest.param(operation, mode, id=f"{mode.value}-{operation.label}")
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _takes_input(operation)
]


@pytest.fixture
def wsgi_application():
    """Django's WSGI handler, keeping the test's database connection open as
    Django's test client does (the handler closes it after each request)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def existing_objects(tenancy) -> dict[str, int]:
    """Path parameters naming objects of the key's organisation."""
    rule = event_rules.save_custom_rule(
        tenancy.org,
        event_rules.AggregationRuleSpec(
            name="Scans of a host",
            group_by=("asset", "attacker_ip"),
            window_seconds=3600,
            event_name_template="Scans of {asset_name} from {attacker_ip}",
        ),
    )
    group = whitelist_services.save_group(
        whitelist_services.GroupSpec(
            name="Known scanner",
            scenario="brute_force",
            conditions=[whitelist_services.ConditionSpec("host_uuid", "equals", "host-web-01")],
        ),
        organisation_scope(tenancy.org),
        allow_global=True,
    )
    return {"rule_id": rule.id, "group_id": group.id}


def _run(operation, mode, key, wsgi_application, path_parameters=None):
    @given(
        case=operation.as_strategy(
            generation_mode=mode,
            headers={"Authorization": f"Bearer {key}"},
            path_parameters=path_parameters,
        )
    )
    @EXAMPLE_SETTINGS
    def send(case):
        with transaction.atomic():
            try:
                case.call_and_validate(app=wsgi_application, checks=CHECKS)
            finally:
                transaction.set_rollback(True)

    send()


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_it_answers_every_generated_request_without_a_server_error_and_as_documented(
    tenancy, wsgi_application, operation, mode
):
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Schemathesis")

    _run(operation, mode, key, wsgi_application)


ON_ONE_OBJECT = [
    pytest.param(operation, mode, id=f"{mode.value}-{operation.label}")
    for operation in OPERATIONS
    if "{" in operation.path
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _has_body(operation)
]


@pytest.mark.parametrize(("operation", "mode"), ON_ONE_OBJECT)
def test_it_answers_generated_requests_on_an_existing_object_as_documented(
    tenancy, wsgi_application, existing_objects, operation, mode
):
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Schemathesis")
    path_parameters = {
        name: value for name, value in existing_objects.items() if f"{{{name}}}" in operation.path
    }

    _run(operation, mode, key, wsgi_application, path_parameters)


# --- what the runs found, pinned down ------------------------------------------------------


@pytest.fixture
def client(tenancy):
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Collector")
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.parametrize("offset", [str(10**25), str(2**63), str(2**63 - 1), "1000001"])
def test_it_refuses_an_offset_past_the_bound_naming_it(client, offset):
    response = client.get(f"/api/v1/whitelist/groups?offset={offset}")

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "offset"]


@pytest.mark.parametrize(("name", "value"), [("limit", str(10**25)), ("offset", "-1")])
def test_it_refuses_a_limit_or_offset_out_of_range_naming_it(client, name, value):
    response = client.get(f"/api/v1/whitelist/groups?{name}={value}")

    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [["query", name]]


def test_it_still_pages_within_the_bound(client, existing_objects):
    response = client.get("/api/v1/whitelist/groups?offset=1000000&limit=500")

    assert response.status_code == 200
    assert response.json() == []


def test_it_refuses_a_scenario_filter_that_is_no_alert_type(client):
    response = client.get("/api/v1/whitelist/groups?scenario=brute%00force")

    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [["query", "scenario"]]


@pytest.mark.parametrize("path", ["/api/v1/whitelist/groups", "/api/v1/whitelist/groups/preview"])
def test_it_reports_an_account_uid_holding_a_nul_as_unknown(client, path):
    group = {
        "name": "Known scanner",
        "scenario": "brute_force",
        "accounts": ["1111\x001111"],
        "conditions": [{"object": "host_uuid", "operator": "equals", "value": "h"}],
    }

    response = client.post(path, group, content_type="application/json")

    assert response.status_code == 422
    assert "Unknown accounts" in response.json()["errors"]["accounts"][0]


def test_it_documents_the_answer_to_a_body_without_the_documented_shape(client):
    response = client.post("/api/v1/whitelist/groups", {}, content_type="application/json")
    documented = RAW_SCHEMA["paths"]["/api/v1/whitelist/groups"]["post"]["responses"]["422"]

    assert response.status_code == 422
    assert "detail" in response.json()
    shapes = documented["content"]["application/json"]["schema"]["anyOf"]
    assert any("detail" in shape.get("properties", {}) for shape in _resolved(shapes))


def _resolved(shapes: list[dict]) -> list[dict]:
    definitions = RAW_SCHEMA["components"]["schemas"]
    return [definitions[s["$ref"].rsplit("/", 1)[1]] if "$ref" in s else s for s in shapes]


# --- hostile values in every documented query parameter -------------------------------


def _query_operations() -> list[tuple[str, list[str]]]:
    """(path, names of its query parameters) of every GET that reads a query
    string, on no object or on an event."""
    found = []
    for path, methods in RAW_SCHEMA["paths"].items():
        if "{" in path.replace("{event_id}", ""):
            continue
        parameters = methods.get("get", {}).get("parameters", [])
        names = [p["name"] for p in parameters if p["in"] == "query"]
        if names:
            found.append((path, names))
    return found


QUERY_OPERATIONS = _query_operations()


@pytest.mark.parametrize(("path", "names"), QUERY_OPERATIONS, ids=[p for p, _ in QUERY_OPERATIONS])
def test_it_answers_hostile_query_values_without_a_server_error(tenancy, client, path, names):
    """The values that broke the pages' parsing, in each query parameter of the
    API alone and in all at once: refused (4xx) or read, never a 5xx."""
    event = factories.make_event(tenancy.account_a)
    concrete = path.replace("{event_id}", str(event.id))
    problems = []
    for value in PROBE_VALUES:
        for query in [{name: value} for name in names] + [dict.fromkeys(names, value)]:
            response = client.get(concrete, query)
            if response.status_code >= 500:
                problems.append(f"{sorted(query)} = {value[:20]!r}: {response.status_code}")

    assert not problems, "\n".join(problems)
