"""Every URL of the project, found by walking the URL configuration, is protected.

- An anonymous visitor is sent to a login page, except for the few public
  pages named in ``PUBLIC_PAGES``; API routes answer 401 instead.
- An authenticated outsider asking for an object of another organisation by
  its id gets 404 (or 403) for every method the URL takes, never 200; the
  methods it does not take answer 405.

Pages are discovered, never listed by hand: a new page that forgets
authentication or tenant scoping fails here without anyone writing a test.
"""

import functools
import itertools
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import models
from django.http import Http404
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path, re_path, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone
from django.utils.regex_helper import normalize

from alerts.detection_rules import DetectionRuleSpec, save_custom_rule
from alerts.models import Alert, Asset, DetectionRule, LogRecord
from cloudsiem.models import AccessKey
from cloudsiem.services import create_access_key
from disposal.models import HandlingPolicy, HandlingTask, Scenario, SimulatedFailure
from events import export
from events.forms import EventFilterForm
from events.models import AggregationRule, ExportJob, SecurityEvent
from secops.enums import Role
from secops.models import (
    Account,
    AccountMembership,
    ApiKey,
    AuditEntry,
    OrganisationMembership,
)
from secops.services import build_scope, create_api_key, scope_for_api_key
from soar import bulk
from soar.models import AutomationRule, BulkHandlingJob, Playbook, PlaybookRun
from soar.playbooks import PlaybookSpec, save_playbook
from tests import factories
from whitelist.models import RuleGroup
from whitelist.services import ConditionSpec, GroupSpec, save_group

# Pages anyone may open, by URL name: the status an anonymous visitor gets and
# why the page is public. Keep this short: the whole internet reaches these.
PUBLIC_PAGES = {
    "login": (200, "the login page itself"),
    "healthz": (200, "the orchestrator's health probe"),
    # The test client comes from 127.0.0.1, inside the default allowed networks;
    # tests/secops/test_observability.py checks the refusals.
    "metrics": (200, "Prometheus's scrape: a token or an allowed network, not a login"),
    "favicon": (301, "browsers fetch the icon before anyone logs in"),
    "admin:login": (200, "the admin's own login page"),
    "admin:logout": (302, "logs out whoever asks; sends a visitor to the admin index"),
    "api:api-root": (404, "django-ninja's root: a 404 for everyone, it only anchors reverse()"),
}
# Static files are public; they are served under STATIC_URL when served by Django.
PUBLIC_ROUTE_PREFIXES = (settings.STATIC_URL.lstrip("/"),)
# The HTTP API authenticates with keys and answers 401 instead of redirecting.
API_ROUTE_PREFIX = "api/"
# Pages under the API's prefix that are read in a browser: like console pages,
# they send a visitor to the login page (a console session or an API key opens them).
API_BROWSER_PAGES = {"api:openapi-view"}
# The admin has its own login page and lets only staff in.
ADMIN_NAMESPACE = "admin"

# URL keyword arguments that are numbers but not object ids.
NOT_OBJECT_IDS = frozenset({"page", "year", "month", "day"})

_ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>")
_ID_NAME = re.compile(r"^(pk|id|.+_id|.+_pk)$")


@dataclass(frozen=True)
class Endpoint:
    """One URL pattern with the chain of resolvers above it."""

    chain: tuple
    name: str | None
    namespaces: tuple[str, ...] = ()

    @property
    def pattern(self) -> URLPattern:
        return self.chain[-1]

    @property
    def route(self) -> str:
        """The route as ``ResolverMatch.route`` reports it (Django joins right to left)."""
        route = ""
        for piece in reversed(self.chain):
            outer = str(piece.pattern)
            route = outer + route.removeprefix("^") if outer else route
        return route

    @property
    def in_admin(self) -> bool:
        return self.namespaces[:1] == (ADMIN_NAMESPACE,)

    @property
    def in_api(self) -> bool:
        return self.route.startswith(API_ROUTE_PREFIX) and self.name not in API_BROWSER_PAGES

    @property
    def is_public(self) -> bool:
        return self.name in PUBLIC_PAGES or self.route.startswith(PUBLIC_ROUTE_PREFIXES)

    def parameters(self) -> list[tuple[str, object]]:
        """(name, converter or regex text) of every parameter, outermost first."""
        found = []
        for piece in self.chain:
            pattern = piece.pattern
            if isinstance(pattern, RoutePattern):
                for match in _ROUTE_PARAMETER.finditer(str(pattern)):
                    name = match["parameter"]
                    found.append((name, pattern.converters[name]))
            else:
                for _, names in normalize(str(pattern))[:1]:
                    found.extend((name, str(pattern)) for name in names)
        return found

    def object_id_parameters(self) -> list[str]:
        return [
            name
            for name, kind in self.parameters()
            if name not in NOT_OBJECT_IDS
            and (isinstance(kind, IntConverter) or _ID_NAME.match(name))
        ]

    def format_path(self, values: dict[str, str]) -> str:
        path_text = ""
        for piece in self.chain:
            pattern = piece.pattern
            if isinstance(pattern, RoutePattern):

                def substitute(match, converter=pattern.converters):
                    return converter[match["parameter"]].to_url(values[match["parameter"]])

                path_text += _ROUTE_PARAMETER.sub(substitute, str(pattern))
            else:
                template, names = normalize(str(pattern))[0]
                path_text += template % {name: values[name] for name in names}
        return "/" + path_text

    def __str__(self):
        return f"{self.name or '(unnamed)'} /{self.route}"


def discover(resolver=None, chain=(), namespaces=()) -> list[Endpoint]:
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            found.extend(discover(entry, (*chain, entry), inner))
        else:
            name = ":".join((*namespaces, entry.name)) if entry.name else None
            found.append(Endpoint((*chain, entry), name, namespaces))
    return found


def _regex_group_choices(regex_text: str, name: str) -> list[str]:
    """The literal alternatives of a group such as ``(?P<app_label>auth|secops)``."""
    group = re.search(rf"\(\?P<{re.escape(name)}>([^()]*)\)", regex_text)
    if group and re.fullmatch(r"[\w-]+(\|[\w-]+)*", group[1]):
        return group[1].split("|")
    return []


def candidate_values(endpoint: Endpoint, ids: dict[str, str]) -> list[dict[str, str]]:
    """Sample values for the endpoint's parameters, one dict per combination to try."""
    per_parameter = []
    for name, kind in endpoint.parameters():
        if name in ids:
            choices = [ids[name]]
        elif isinstance(kind, IntConverter) or _ID_NAME.match(name):
            choices = ["1"]
        elif isinstance(kind, UUIDConverter):
            choices = [str(uuid.uuid4())]
        elif isinstance(kind, str):
            choices = [*_regex_group_choices(kind, name), "1", "sample"]
        else:
            choices = ["sample"]
        per_parameter.append([(name, choice) for choice in choices])
    return [dict(combination) for combination in itertools.product(*per_parameter)]


def sample_path(endpoint: Endpoint, ids: dict[str, str] | None = None, resolver=None) -> str:
    """A concrete path that resolves to this endpoint's route.

    Several patterns may share one route (django-ninja adds one per operation,
    and the first one answers every method): the path then tests whichever
    view really answers it.
    """
    resolver = resolver or get_resolver()
    for values in candidate_values(endpoint, ids or {}):
        candidate = endpoint.format_path(values)
        try:
            match = resolver.resolve(candidate)
        except Http404:
            continue
        if match.route == endpoint.route:
            return candidate
    raise AssertionError(
        f"cannot build a path for {endpoint}: teach candidate_values() a sample value "
        "for its parameters"
    )


ENDPOINTS = discover()


def _ids(endpoints):
    return [str(endpoint) for endpoint in endpoints]


# --- the walker itself ----------------------------------------------------------


def _view(request, **kwargs):
    raise AssertionError("never called")


def test_it_discovers_nested_patterns_and_their_object_ids():
    inner = [
        path("<int:pk>/", _view, name="detail"),
        re_path(r"^(?P<event_id>[0-9]+)/handle/$", _view, name="handle"),
        path("by-name/<slug:name>/", _view, name="by_name"),
        path("list/<int:page>/", _view, name="page"),
    ]
    resolver = URLResolver(
        RegexPattern(r"^/"),
        [path("", _view, name="home"), path("events/", include((inner, "events")))],
    )

    found = {endpoint.name: endpoint for endpoint in discover(resolver)}

    assert set(found) == {"home", "events:detail", "events:handle", "events:by_name", "events:page"}
    assert found["events:detail"].object_id_parameters() == ["pk"]
    assert found["events:handle"].object_id_parameters() == ["event_id"]
    assert found["events:by_name"].object_id_parameters() == []
    assert found["events:page"].object_id_parameters() == []
    assert sample_path(found["events:handle"], {"event_id": "42"}, resolver) == "/events/42/handle/"
    assert sample_path(found["events:by_name"], resolver=resolver) == "/events/by-name/sample/"


def test_it_finds_the_projects_pages():
    names = {endpoint.name for endpoint in ENDPOINTS}

    assert {"home", "change_scope", "healthz", "login", "logout", "admin:index"} <= names
    assert any(endpoint.object_id_parameters() for endpoint in ENDPOINTS if endpoint.in_admin)


def test_it_names_only_existing_public_pages():
    names = {endpoint.name for endpoint in ENDPOINTS}

    assert set(PUBLIC_PAGES) <= names


# --- anonymous visitors ---------------------------------------------------------

# Every URL is tried with each method; those it does not take answer 405.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _assert_redirects_to_login(response, login_urls, requested_path):
    assert response.status_code == 302, (
        f"{requested_path} answered {response.status_code} instead of a login redirect"
    )
    location = urlsplit(response["Location"])
    assert location.path in login_urls
    assert parse_qs(location.query).get("next") == [requested_path]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_it_sends_anonymous_visitors_to_a_login_page(db, endpoint):
    requested_path = sample_path(endpoint)
    client = Client()

    response = client.get(requested_path)

    if endpoint.name in PUBLIC_PAGES:
        expected_status, _reason = PUBLIC_PAGES[endpoint.name]
        assert response.status_code == expected_status
    elif endpoint.is_public:
        assert response.status_code == 200
    elif endpoint.in_api:
        answers = {
            method: client.generic(method, requested_path, "{}", content_type="application/json")
            for method in METHODS
        }
        taken = {method: r.status_code for method, r in answers.items() if r.status_code != 405}
        assert taken, f"{requested_path} takes no method"
        assert set(taken.values()) == {401}, f"{requested_path}: {taken}"
    elif endpoint.in_admin:
        # The admin site's own pages send visitors to the admin login; the
        # pages of each model are stopped earlier by the console's login
        # requirement. Both are login pages.
        login_urls = {resolve_url(settings.LOGIN_URL), reverse("admin:login")}
        _assert_redirects_to_login(response, login_urls, requested_path)
    else:
        _assert_redirects_to_login(response, {resolve_url(settings.LOGIN_URL)}, requested_path)


# --- authenticated outsiders ----------------------------------------------------


SIGMA_RULE = """\
title: Netcat listener
status: test
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/nc'
    CommandLine|contains: ' -l'
  condition: selection
level: high
"""


@pytest.fixture
def alice_api_key(tenancy):
    return create_api_key(organisation=tenancy.org, account=None, name="alice")


@pytest.fixture
def objects_of_account_a(tenancy, alice_api_key):
    return make_objects_of_account_a(tenancy, alice_api_key)


def make_objects_of_account_a(tenancy, alice_api_key) -> dict:
    """One object of each kind in account A, where alice's default view looks."""
    account = tenancy.account_a
    asset = factories.make_asset(account)
    alert = factories.make_alert(account, asset=asset)
    rule = factories.make_rule(organisation=tenancy.org)
    event = factories.make_event(account, rule=rule)
    alice_scope = build_scope(tenancy.alice, {})
    job = export.start_export(
        owner=tenancy.alice, scope=alice_scope, filters=EventFilterForm.default_filters()
    )
    export.run_export_job(job.id)  # a finished job: its download answers alice
    # The API serves an export to the key that started it, not to a user.
    api_job = export.start_export(
        api_key=alice_api_key[0],
        scope=scope_for_api_key(alice_api_key[0]),
        filters=EventFilterForm.default_filters(),
    )
    export.run_export_job(api_job.id)
    bulk_job = bulk.start_bulk_handling(
        owner=tenancy.alice,
        scope=alice_scope,
        plan=bulk.plan_selected(alice_scope, [event.id]),
        request=bulk.BulkRequest("set_status", "handling"),
    )
    # The API serves a bulk handling job to the key that started it, as an export.
    api_scope = scope_for_api_key(alice_api_key[0])
    api_bulk_job = bulk.start_bulk_handling(
        api_key=alice_api_key[0],
        scope=api_scope,
        plan=bulk.plan_selected(api_scope, [event.id]),
        request=bulk.BulkRequest("set_status", "handling"),
    )
    sigma_rule = save_custom_rule(
        tenancy.org, DetectionRuleSpec(SIGMA_RULE, "suspicious_process"), user=tenancy.alice
    )
    whitelist_group = save_group(
        GroupSpec(
            name="Known scanner",
            scenario="web_attack",
            conditions=[ConditionSpec("source_ip", "equals", "192.0.2.1")],
            is_global=False,
            account_ids=[account.id],
        ),
        alice_scope,
        allow_global=True,
    )
    policy = HandlingPolicy.objects.create(
        account=account,
        entity_type="ip",
        entity_value="203.0.113.7",
        entity_digest="d" * 64,
        scenario=Scenario.objects.get(key="block-ip-cloud-firewall-inbound"),
        validity_days=7,
        source="event",
        source_event=event,
    )
    policy.scope_accounts.set([account])
    task = HandlingTask.objects.create(
        policy=policy, account=account, cloud_service=policy.scenario.cloud_service
    )
    playbook = save_playbook(
        alice_scope,
        PlaybookSpec("Raise risk", "", [{"kind": "set_risk", "params": {"risk": 3}}]),
        user=tenancy.alice,
    )
    return {
        Playbook: playbook,
        PlaybookRun: PlaybookRun.objects.create(
            account=account,
            event=event,
            playbook=playbook,
            version=playbook.current_version,
            trigger="user",
            status="failed",
        ),
        AutomationRule: AutomationRule.objects.create(
            organisation=tenancy.org,
            name="Raise",
            trigger="event_created",
            action="set_risk",
            parameters={"risk": 3},
        ),
        HandlingPolicy: policy,
        HandlingTask: task,
        SimulatedFailure: SimulatedFailure.objects.create(account=account, target="203.0.113.7"),
        Account: account,
        Asset: asset,
        RuleGroup: whitelist_group,
        Alert: alert,
        AggregationRule: rule,
        SecurityEvent: event,
        ExportJob: job,
        API_EXPORT: api_job,
        BulkHandlingJob: bulk_job,
        API_BULK_JOB: api_bulk_job,
        DetectionRule: sigma_rule,
        LogRecord: factories.make_log_record(account, asset=asset),
        ApiKey: alice_api_key[0],
        AccessKey: create_access_key(tenancy.alice)[0],
        AuditEntry: AuditEntry.objects.create(
            when=timezone.now(),
            actor_name="alice",
            actor_kind="user",
            organisation=tenancy.org,
            account=account,
            action="whitelist.update",
        ),
    }


@pytest.fixture
def clients(tenancy, alice_api_key):
    """Alice's and charlie's clients: by session for pages, by organisation key for the API.

    Charlie holds every right in his own organisation, so that only the
    tenancy rule can stop him.
    """
    OrganisationMembership.objects.filter(user=tenancy.charlie).update(is_global_admin=True)
    AccountMembership.objects.filter(user=tenancy.charlie).update(role=Role.ADMIN)
    _, charlie_key = create_api_key(organisation=tenancy.other_org, account=None, name="charlie")
    return {
        ("owner", False): tenancy.client_for(tenancy.alice),
        ("outsider", False): tenancy.client_for(tenancy.charlie),
        ("owner", True): Client(headers={"authorization": f"Bearer {alice_api_key[1]}"}),
        ("outsider", True): Client(headers={"authorization": f"Bearer {charlie_key}"}),
    }


# The sample export started with alice's API key (the API's ``export_id``).
API_EXPORT = "export job of an API key"
# The sample bulk handling job started with it (the API's ``bulk_handling_id``).
API_BULK_JOB = "bulk handling job of an API key"

# Which sample object an id keyword stands for, by the keyword's name and,
# for a bare ``pk``/``id``, by the words in the URL name or its namespace.
OBJECT_WORDS = {
    "audit_entry": AuditEntry,
    # Before "rule": an automated response rule is no aggregation rule.
    "automation_rule": AutomationRule,
    "playbook": Playbook,
    "run": PlaybookRun,
    "account": Account,
    "asset": Asset,
    "alert": Alert,
    "rule": AggregationRule,
    "event": SecurityEvent,
    "log": LogRecord,
    # Before "key": an AccessKey of the cloud SIEM API is no API key.
    "access_key": AccessKey,
    "key": ApiKey,
    "bulk_job": BulkHandlingJob,
    "bulk_handling": API_BULK_JOB,
    "export": API_EXPORT,
    "job": ExportJob,
    "sigma": DetectionRule,
    "group": RuleGroup,
    "task": HandlingTask,
    "policy": HandlingPolicy,
    "failure": SimulatedFailure,
}
NAMESPACE_MODELS = {"alerts": Alert, "events": SecurityEvent}


def model_for(endpoint: Endpoint, parameter: str) -> type[models.Model] | None:
    view_class = getattr(endpoint.pattern.callback, "view_class", None)
    if parameter in ("pk", "id") and getattr(view_class, "model", None):
        return view_class.model
    words = parameter.removesuffix("_id").removesuffix("_pk")
    if parameter in ("pk", "id"):
        words = (endpoint.name or "").rpartition(":")[2]
    for word, model in OBJECT_WORDS.items():
        if word in words:
            return model
    if parameter in ("pk", "id") and endpoint.namespaces:
        return NAMESPACE_MODELS.get(endpoint.namespaces[-1])
    return None


def id_choices(endpoint: Endpoint, objects: dict) -> tuple[list[dict[str, str]], bool]:
    """Keyword values naming objects of account A, and whether every id was mapped."""
    per_parameter = []
    mapped = True
    for parameter in endpoint.object_id_parameters():
        model = model_for(endpoint, parameter)
        if model in objects:
            per_parameter.append([(parameter, str(objects[model].pk))])
        else:
            # Unknown kind: try the id of every sample object.
            mapped = False
            ids = sorted({str(obj.pk) for obj in objects.values()})
            per_parameter.append([(parameter, value) for value in ids])
    return [dict(values) for values in itertools.product(*per_parameter)], mapped


OBJECT_ENDPOINTS = [
    endpoint
    for endpoint in ENDPOINTS
    if endpoint.object_id_parameters() and not endpoint.in_admin and not endpoint.is_public
]
ADMIN_ENDPOINTS = [
    endpoint for endpoint in ENDPOINTS if endpoint.in_admin and not endpoint.is_public
]


@functools.cache
def _api_documents() -> list[dict]:
    """The OpenAPI documents of the project's django-ninja APIs, found through their URLs."""
    apis = {
        id(api): api
        for endpoint in ENDPOINTS
        if (api := getattr(endpoint.pattern.callback, "keywords", {}).get("api")) is not None
    }
    return [api.get_openapi_schema() for api in apis.values()]


def _example(schema: dict, components: dict):
    """The smallest value the schema accepts, so that the view itself runs."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rpartition("/")[2]], components)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [option for option in schema.get(key, []) if option.get("type") != "null"]
        if options:
            return _example(options[0], components)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _example(properties[name], components) for name in schema.get("required", [])}
    return {"array": [], "string": "sample", "integer": 1, "number": 1, "boolean": True}.get(kind)


def api_body(endpoint: Endpoint, method: str) -> str:
    openapi_path = "/" + _ROUTE_PARAMETER.sub(r"{\g<parameter>}", endpoint.route)
    for document in _api_documents():
        operation = document["paths"].get(openapi_path, {}).get(method.lower(), {})
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if schema:
            components = document.get("components", {}).get("schemas", {})
            return json.dumps(_example(schema["schema"], components))
    return "{}"


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=_ids(OBJECT_ENDPOINTS))
def test_it_hides_other_organisations_objects_from_an_outsider(
    objects_of_account_a, clients, endpoint
):
    owner = clients["owner", endpoint.in_api]
    outsider = clients["outsider", endpoint.in_api]
    choices, mapped = id_choices(endpoint, objects_of_account_a)

    for ids in choices:
        requested_path = sample_path(endpoint, ids)
        if mapped:
            # The ids must reach the page for its owner, or a 404 below proves nothing.
            assert owner.get(requested_path).status_code != 404, (
                f"{requested_path} is 404 for alice too: map its id keyword in OBJECT_WORDS"
            )
        answered = []
        for method in METHODS:
            if endpoint.in_api:
                body, content_type = api_body(endpoint, method), "application/json"
            else:
                body, content_type = "", "application/x-www-form-urlencoded"
            response = outsider.generic(method, requested_path, body, content_type=content_type)
            if response.status_code == 405:
                continue
            answered.append(method)
            refusals = (403, 404)
            if endpoint.in_api and method not in ("GET", "DELETE"):
                # A body the example could not satisfy is refused before the
                # view runs: that reads nothing either.
                refusals = (403, 404, 422)
            assert response.status_code in refusals, f"{method} {requested_path}: {response}"
        assert answered, f"{requested_path} accepts no method"


@pytest.mark.parametrize("endpoint", ADMIN_ENDPOINTS, ids=_ids(ADMIN_ENDPOINTS))
def test_it_keeps_non_staff_users_out_of_the_admin(tenancy, objects_of_account_a, endpoint):
    outsider = tenancy.client_for(tenancy.charlie)
    ids = {
        parameter: str(objects_of_account_a[Account].pk)
        for parameter in endpoint.object_id_parameters()
    }
    requested_path = sample_path(endpoint, ids)

    response = outsider.get(requested_path)

    _assert_redirects_to_login(response, {reverse("admin:login")}, requested_path)
