"""The role walk: every state-changing page and API operation, tried by every
kind of caller, against one table of who may do what.

The URLs are discovered by walking the URL configuration (the helpers of
``tests/secops/test_url_coverage.py``) and the API operations by reading the
API's OpenAPI document. A URL is state-changing when its view accepts POST,
PUT, PATCH or DELETE: read from ``require_http_methods`` (``require_POST``,
``require_GET``) or a class-based view's handlers; a view without either takes
every method. Each one must have a row in ``URL_RULES`` or ``API_RULES`` naming
the least role that may do it, and each row a ``Case`` that does it for real:

- console callers: a viewer, an analyst and an administrator of account A, a
  global administrator of the organisation (alice) and an outsider (charlie,
  global administrator and account administrator of another organisation, so
  that only the tenancy rule can stop him);
- API callers: a key of account A (an administrator of that account), an
  organisation key (the organisation's administrator), a key of the other
  organisation, and a console session, which the API does not take (401).

A caller at or above the row's level must get through and the intended row
must change; a caller below it gets 403 (or the refusal the case names) and
nothing of the organisation changes; the outsider gets 404 for anything named
by an object id of the organisation, and otherwise acts on nothing of it.
"""

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.views.generic.base import RedirectView

from alerts.detection_models import DetectionRule
from alerts.detection_rules import DetectionRuleSpec, sync_predefined_rules
from alerts.detection_rules import save_custom_rule as save_sigma_rule
from alerts.models import Alert, LogRecord
from alerts.services import ingest_logs
from cloudsiem.models import AccessKey
from cloudsiem.services import create_access_key
from disposal.models import (
    AccountConnector,
    HandlingPolicy,
    HandlingTask,
    Notification,
    Scenario,
    SimulatedFailure,
)
from events.models import AggregationRule, ExportJob, SecurityEvent, WhitelistGroupOrigin
from events.predefined import PREDEFINED_RULES
from events.predefined import sync_predefined_rules as sync_predefined_aggregation_rules
from secops.enums import Role, View
from secops.models import Account, AccountMembership, ApiKey, OrganisationMembership
from secops.services import SESSION_ACCOUNT, SESSION_VIEW, create_api_key
from soar.models import (
    AutomationRule,
    AutomationSwitch,
    BulkHandlingJob,
    Playbook,
    PlaybookRun,
)
from tests import factories
from tests.alerts.test_sigma_views import VALID_RULE, netcat_log
from tests.conftest import native_alert, organisation_scope
from tests.events.test_rules_views import VALID as AGGREGATION_RULE_FORM
from tests.secops.test_url_coverage import _ROUTE_PARAMETER, ENDPOINTS, sample_path
from whitelist.models import Condition, Revision, RuleGroup
from whitelist.services import ConditionSpec, GroupSpec, save_group

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# --- the table ----------------------------------------------------------------------

# Who may do it, lowest first. READ_ONLY: the URL takes POST but changes nothing;
# every member of the organisation gets it.
READ_ONLY, VIEWER, ANALYST, ADMIN, GLOBAL_ADMIN = (
    "read-only",
    "viewer",
    "analyst",
    "admin",
    "global_admin",
)
RANK = {READ_ONLY: 0, VIEWER: 0, ANALYST: 1, ADMIN: 2, GLOBAL_ADMIN: 3}
# Outside the role model: each such row says why in EXEMPT_REASONS.
EXEMPT = "exempt"

# Every state-changing console URL, by name: the least role that may use it.
URL_RULES = {
    # secops
    "home": READ_ONLY,
    "change_scope": VIEWER,  # the caller's own view; the Global Account View: global admins
    "login": EXEMPT,
    "logout": EXEMPT,
    # alerts: data sources and their API keys
    "alerts:list": READ_ONLY,
    "alerts:detail": READ_ONLY,
    "alerts:data_sources": READ_ONLY,
    "alerts:create_api_key": ADMIN,
    "alerts:revoke_api_key": ADMIN,  # an organisation key: global admins
    # alerts: Sigma detection rules, organisation-wide
    "detection:rules": READ_ONLY,
    "detection:rule_new": GLOBAL_ADMIN,
    "detection:check": GLOBAL_ADMIN,
    "detection:dry_run": GLOBAL_ADMIN,
    "detection:rule_edit": GLOBAL_ADMIN,
    "detection:rule_toggle": GLOBAL_ADMIN,
    "detection:rule_delete": GLOBAL_ADMIN,
    "detection:predefined": READ_ONLY,
    "detection:predefined_toggle": GLOBAL_ADMIN,
    # events
    "events:list": READ_ONLY,
    "events:detail": READ_ONLY,
    "events:add_to_whitelist": ADMIN,
    "events:export_start": ANALYST,
    "events:rules": READ_ONLY,
    "events:rule_create": GLOBAL_ADMIN,
    "events:rule_edit": GLOBAL_ADMIN,
    "events:rule_toggle": GLOBAL_ADMIN,
    "events:rule_delete": GLOBAL_ADMIN,
    # whitelist: an account's groups for its administrators, global groups for global admins
    "whitelist:settings": READ_ONLY,
    "whitelist:scenario": READ_ONLY,
    "whitelist:group_create": ADMIN,
    "whitelist:group_edit": ADMIN,
    "whitelist:group_toggle": ADMIN,
    "whitelist:group_delete": ADMIN,
    "whitelist:preview": READ_ONLY,
    # disposal
    "disposal:connector_settings": ADMIN,
    "disposal:handle": ANALYST,
    "disposal:handle_preview": READ_ONLY,  # renders the message that would be sent
    "disposal:task_retry": ANALYST,
    "disposal:task_unblock": ANALYST,
    "disposal:policy_edit": ANALYST,
    "disposal:simulated_cloud": ADMIN,  # adds an instruction to fail
    "disposal:simulated_failure_remove": ADMIN,
    # soar
    "soar:bulk_start": ANALYST,
    "soar:playbook_new": GLOBAL_ADMIN,
    "soar:playbook_edit": GLOBAL_ADMIN,
    "soar:playbook_run": ANALYST,
    "soar:rule_new": GLOBAL_ADMIN,
    "soar:rule_edit": GLOBAL_ADMIN,
    "soar:rule_delete": GLOBAL_ADMIN,
    "soar:rule_dry_run": GLOBAL_ADMIN,  # reads every account of the organisation
    "soar:automation_pause": GLOBAL_ADMIN,
    "soar:run_rerun": ANALYST,
    "soar:run_approve": ADMIN,
    "soar:run_reject": ADMIN,
    # cloudsiem: every member holds AccessKeys of their own (acting with their own role)
    "cloudsiem:create_access_key": VIEWER,
    "cloudsiem:revoke_access_key": VIEWER,  # the caller's own keys; anyone else's are a 404
    # the API's description (its operations are in API_RULES)
    "api:api-root": EXEMPT,
    "api:openapi-json": EXEMPT,
    "api:openapi-view": EXEMPT,
}

EXEMPT_REASONS = {
    "login": "the login form; throttled and tested in test_login_throttling",
    "logout": "ends the caller's own session, nothing else",
    "api:api-root": "django-ninja's root: a 404 for every method, it only anchors reverse()",
    "api:openapi-json": "the API's description, read-only; access tested in test_api_docs",
    "api:openapi-view": "the API's Swagger page, read-only; access tested in test_api_docs",
}

# Whole namespaces outside the role model, with the reason; every caller is
# still walked through them (test_the_admin_refuses_every_console_caller).
NAMESPACE_RULES = {
    "admin": "Django's admin: for staff users only, which no console role makes",
}

# Every state-changing API operation, "METHOD /path" as in the OpenAPI document.
# An account key is the administrator of its account; an organisation key is
# the organisation's global administrator. Keys have no other roles.
API_RULES = {
    "POST /api/v1/alerts": ADMIN,  # into the key's own accounts only
    "POST /api/v1/logs": ADMIN,
    "POST /api/v1/aggregation-rules": GLOBAL_ADMIN,
    "PUT /api/v1/aggregation-rules/{rule_id}": GLOBAL_ADMIN,
    "DELETE /api/v1/aggregation-rules/{rule_id}": GLOBAL_ADMIN,
    "POST /api/v1/aggregation-rules/{rule_id}/enabled": GLOBAL_ADMIN,
    "POST /api/v1/whitelist/groups": ADMIN,  # a global group: global admins
    "POST /api/v1/whitelist/groups/preview": READ_ONLY,
    "PUT /api/v1/whitelist/groups/{group_id}": ADMIN,
    "PATCH /api/v1/whitelist/groups/{group_id}": ADMIN,
    "DELETE /api/v1/whitelist/groups/{group_id}": ADMIN,
    "POST /api/v1/events/{event_id}/handle": ANALYST,
    "POST /api/v1/events/exports": ANALYST,
    "PATCH /api/v1/handling/policies/{policy_id}": ANALYST,
    "POST /api/v1/handling/tasks/{task_id}/retry": ANALYST,
    "POST /api/v1/handling/tasks/{task_id}/unblock": ANALYST,
    "POST /api/v1/playbooks": GLOBAL_ADMIN,
    "PUT /api/v1/playbooks/{playbook_id}": GLOBAL_ADMIN,
    "POST /api/v1/playbooks/{playbook_id}/runs": ANALYST,
    "POST /api/v1/playbook-runs/{run_id}/approve": ADMIN,
    "POST /api/v1/playbook-runs/{run_id}/reject": ADMIN,
    "POST /api/v1/playbook-runs/{run_id}/rerun": ANALYST,
    "POST /api/v1/automation-rules": GLOBAL_ADMIN,
    "PUT /api/v1/automation-rules/{automation_rule_id}": GLOBAL_ADMIN,
    "DELETE /api/v1/automation-rules/{automation_rule_id}": GLOBAL_ADMIN,
    "POST /api/v1/automation-rules/{automation_rule_id}/dry-run": READ_ONLY,
    "POST /api/v1/automation/pause": GLOBAL_ADMIN,
    "POST /api/v1/api-keys": ADMIN,  # an organisation key: global admins
    "POST /api/v1/api-keys/{key_id}/revoke": ADMIN,
    "POST /api/v1/detection-rules": GLOBAL_ADMIN,
    "POST /api/v1/detection-rules/check": GLOBAL_ADMIN,  # part of writing a rule, as on the page
    "POST /api/v1/detection-rules/dry-run": GLOBAL_ADMIN,
    "PUT /api/v1/detection-rules/{sigma_id}": GLOBAL_ADMIN,
    "DELETE /api/v1/detection-rules/{sigma_id}": GLOBAL_ADMIN,
    "POST /api/v1/detection-rules/{sigma_id}/enabled": GLOBAL_ADMIN,
    "POST /api/v1/events/{event_id}/whitelist-groups": ADMIN,
    "POST /api/v1/events/{event_id}/handle/preview": READ_ONLY,
    "PUT /api/v1/accounts/{account_id}/connector": ADMIN,
    "POST /api/v1/accounts/{account_id}/connector/check": ADMIN,  # reads the stored secrets
    "POST /api/v1/simulated-cloud/failures": ADMIN,
    "DELETE /api/v1/simulated-cloud/failures/{failure_id}": ADMIN,
    "POST /api/v1/bulk-handling": ANALYST,
}

# --- discovery ----------------------------------------------------------------------

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVERY_METHOD = frozenset({"GET", "HEAD", "OPTIONS", *STATE_CHANGING})


def accepted_methods(callback) -> frozenset[str]:
    """The HTTP methods a view takes: a class-based view's handlers, the list
    of ``require_http_methods`` (``require_POST``, ``require_GET``) on any of its
    decorators, or, without either, every method."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return frozenset(
            method.upper() for method in view_class.http_method_names if hasattr(view_class, method)
        )
    view = callback
    while inspect.isfunction(view):
        allowed = inspect.getclosurevars(view).nonlocals.get("request_method_list")
        if allowed is not None:
            return frozenset(allowed)
        view = getattr(view, "__wrapped__", None)
    return EVERY_METHOD


def _apis() -> list:
    apis = {
        id(api): api
        for endpoint in ENDPOINTS
        if (api := getattr(endpoint.pattern.callback, "keywords", {}).get("api")) is not None
    }
    return list(apis.values())


@functools.cache
def api_operations() -> dict[str, frozenset[str]]:
    """Every path of the project's django-ninja APIs with its methods."""
    operations = {}
    for api in _apis():
        for path, methods in api.get_openapi_schema()["paths"].items():
            operations[path] = frozenset(m.upper() for m in methods)
    return operations


def state_changing_api_operations() -> set[str]:
    return {
        f"{method} {path}"
        for path, methods in api_operations().items()
        for method in methods & STATE_CHANGING
    }


def _openapi_path(endpoint) -> str:
    return "/" + _ROUTE_PARAMETER.sub(r"{\g<parameter>}", endpoint.route)


def console_endpoints() -> list:
    """Every URL pattern but the admin's and the API operations' (walked apart)."""
    operations = api_operations()
    return [
        endpoint
        for endpoint in ENDPOINTS
        if not endpoint.in_admin and _openapi_path(endpoint) not in operations
    ]


def route_name(endpoint) -> str:
    return endpoint.name or f"(unnamed) /{endpoint.route}"


@functools.cache
def state_changing_urls() -> dict[str, frozenset[str]]:
    found = {}
    for endpoint in console_endpoints():
        methods = accepted_methods(endpoint.pattern.callback)
        if methods & STATE_CHANGING:
            found[route_name(endpoint)] = methods
    return found


ENDPOINTS_BY_NAME = {route_name(endpoint): endpoint for endpoint in ENDPOINTS}
ADMIN_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if endpoint.in_admin]
# The admin's own login and logout act on the caller's session only (public
# pages of test_url_coverage); every other admin URL is walked.
ADMIN_SESSION_PAGES = frozenset({"admin:login", "admin:logout"})

# --- callers and the world they act in ----------------------------------------------

CONSOLE_CALLERS = ("viewer", "analyst", "admin", "global_admin", "outsider")
CALLER_LEVEL = {"viewer": VIEWER, "analyst": ANALYST, "admin": ADMIN, "global_admin": GLOBAL_ADMIN}
API_CALLERS = ("account_key", "organisation_key", "outsider_key", "console_session")
KEY_LEVEL = {"account_key": ADMIN, "organisation_key": GLOBAL_ADMIN}


@dataclass
class World:
    """Acme (accounts A, B, C) and Umbrella (account X) with one caller of each kind."""

    tenancy: object
    users: dict
    api_keys: dict = field(default_factory=dict)

    @property
    def org(self):
        return self.tenancy.org

    @property
    def a(self):
        return self.tenancy.account_a

    @property
    def alice(self):
        return self.tenancy.alice

    def console_client(self, caller: str, *, global_view: bool = False) -> Client:
        client = self.tenancy.client_for(self.users[caller])
        if global_view and caller == "global_admin":
            session = client.session
            session[SESSION_VIEW] = View.GLOBAL
            session.save()
        return client

    def api_client(self, caller: str) -> Client:
        if caller == "console_session":
            return self.tenancy.client_for(self.alice)
        return Client(headers={"authorization": f"Bearer {self.api_keys[caller]}"})


@pytest.fixture
def world(tenancy) -> World:
    # Charlie holds every right in his own organisation: only tenancy stops him.
    OrganisationMembership.objects.filter(user=tenancy.charlie).update(is_global_admin=True)
    AccountMembership.objects.filter(user=tenancy.charlie).update(role=Role.ADMIN)
    account = tenancy.account_a
    users = {
        "viewer": factories.make_user(tenancy.org, "vera", accounts=[account], role=Role.VIEWER),
        "analyst": tenancy.bob,
        "admin": factories.make_user(tenancy.org, "dave", accounts=[account], role=Role.ADMIN),
        "global_admin": tenancy.alice,
        "outsider": tenancy.charlie,
    }
    assert AccountMembership.objects.get(user=tenancy.bob).role == Role.ANALYST
    return World(tenancy, users)


@pytest.fixture
def api_world(world) -> World:
    world.api_keys = {
        "account_key": create_api_key(organisation=world.org, account=world.a, name="A")[1],
        "organisation_key": create_api_key(organisation=world.org, account=None, name="Acme")[1],
        "outsider_key": create_api_key(
            organisation=world.tenancy.other_org, account=None, name="Umbrella"
        )[1],
    }
    return world


def organisation_state(organisation) -> dict:
    """Every row of the organisation a request of the walk could change."""
    accounts = Account.objects.filter(organisation=organisation)
    users = get_user_model().objects.filter(organisation_membership__organisation=organisation)

    def opt_outs(model):
        through = model.disabled_by.through
        return sorted(through.objects.filter(organisation=organisation).values_list())

    return {
        "accounts": list(accounts.order_by("id").values_list()),
        "users": list(
            users.order_by("id").values_list(
                "id", "username", "password", "is_active", "is_staff", "is_superuser"
            )
        ),
        "organisation memberships": sorted(
            OrganisationMembership.objects.filter(organisation=organisation).values_list()
        ),
        "account memberships": sorted(
            AccountMembership.objects.filter(account__in=accounts).values_list()
        ),
        # last_used_at changes with every API call.
        "api keys": list(
            ApiKey.objects.filter(organisation=organisation)
            .order_by("id")
            .values_list("id", "account_id", "name", "prefix", "revoked_at")
        ),
        "aggregation rules": list(
            AggregationRule.objects.filter(organisation=organisation).order_by("id").values_list()
        ),
        "aggregation rule opt-outs": opt_outs(AggregationRule),
        "detection rules": list(
            DetectionRule.objects.filter(organisation=organisation).order_by("id").values_list()
        ),
        "detection rule opt-outs": opt_outs(DetectionRule),
        "whitelist groups": list(
            RuleGroup.objects.filter(organisation=organisation).order_by("id").values_list()
        ),
        "whitelist conditions": list(
            Condition.objects.filter(group__organisation=organisation).order_by("id").values_list()
        ),
        "whitelist group accounts": sorted(
            RuleGroup.accounts.through.objects.filter(
                group__organisation=organisation
            ).values_list()
        ),
        "whitelist revision": list(
            Revision.objects.filter(organisation=organisation).values_list("number", flat=True)
        ),
        "whitelist group origins": sorted(
            WhitelistGroupOrigin.objects.filter(group__organisation=organisation).values_list()
        ),
        "export jobs": list(
            ExportJob.objects.filter(organisation=organisation).order_by("id").values_list("id")
        ),
        "bulk handling jobs": list(
            BulkHandlingJob.objects.filter(organisation=organisation)
            .order_by("id")
            .values_list("id")
        ),
        "alerts": list(Alert.objects.filter(account__in=accounts).order_by("id").values_list("id")),
        "log records": list(
            LogRecord.objects.filter(account__in=accounts).order_by("id").values_list("id")
        ),
        "security events": list(
            SecurityEvent.objects.filter(account__in=accounts)
            .order_by("id")
            .values_list("id", "status", "updated_at")
        ),
        "handling policies": list(
            HandlingPolicy.objects.filter(account__in=accounts).order_by("id").values_list()
        ),
        "handling tasks": list(
            HandlingTask.objects.filter(account__in=accounts).order_by("id").values_list()
        ),
        "notifications": list(
            Notification.objects.filter(event__account__in=accounts).order_by("id").values_list()
        ),
        "account connectors": list(
            AccountConnector.objects.filter(account__in=accounts).order_by("id").values_list()
        ),
        "playbooks": list(
            Playbook.objects.filter(organisation=organisation).order_by("id").values_list()
        ),
        "playbook runs": list(
            PlaybookRun.objects.filter(account__in=accounts).order_by("id").values_list()
        ),
        "automation rules": list(
            AutomationRule.objects.filter(organisation=organisation).order_by("id").values_list()
        ),
        "automation switch": list(
            AutomationSwitch.objects.filter(organisation=organisation).values_list("paused")
        ),
        "simulated failures": list(
            SimulatedFailure.objects.filter(account__in=accounts).order_by("id").values_list()
        ),
        # last_used_at changes with every cloud API call.
        "access keys": list(
            AccessKey.objects.filter(user__in=users)
            .order_by("id")
            .values_list("id", "user_id", "access_key_id", "revoked_at")
        ),
    }


# --- what each case does ------------------------------------------------------------


@dataclass
class Attempt:
    """One request and how to tell that it did what it is for."""

    method: str
    path: str
    data: dict | None = None
    # Whether the intended change (or, for a request that changes nothing, the
    # intended answer) happened in the organisation under test.
    check: Callable = lambda response: response.status_code == 200


# What an outsider gets: 404 when the request names an object of the
# organisation by id; otherwise either nothing of the organisation is touched
# (the check stays false), or, for a request that names nothing of it, the same
# answer he gets in his own organisation.
HIDDEN, NOTHING, OWN = "404", "acts on nothing of the organisation", "his own organisation's answer"


@dataclass(frozen=True)
class Case:
    route: str
    level: str
    build: Callable[[World], Attempt]
    variant: str = ""
    outsider: str = HIDDEN
    # What callers below the level get instead of 403, with the reason beside it.
    refusals: Mapping[str, int] = MappingProxyType({})
    # The global admin makes the request in the Global Account View.
    global_view: bool = False
    # Nothing of the organisation may change, even for callers who may use it.
    changes_nothing: bool = False
    # A GET shows the form only to those who may send it (else: a page for everyone).
    form_page: bool = True
    # ``build`` takes the caller too: for what each caller holds of their own.
    per_caller: bool = False

    def attempt(self, world: "World", caller: str) -> "Attempt":
        return self.build(world, caller) if self.per_caller else self.build(world)

    @property
    def id(self) -> str:
        return f"{self.route} [{self.variant}]" if self.variant else self.route


def _group_form(name, *, scenario="webshell", account=None, value="Webshell detected") -> dict:
    """A POST of the whitelist group editor: one condition, limited to ``account``
    (or global without one)."""
    data = {
        "name": name,
        "scenario": scenario,
        "enabled": "on",
        "condition_object": ["alert_name"],
        "condition_operator": ["equals"],
        "condition_value": [value],
        "applies_to": "global" if account is None else "accounts",
    }
    if account is not None:
        data["accounts"] = [str(account.id)]
    return data


def _group(w: World, *, is_global=False, also_b=False) -> RuleGroup:
    """A group limited to account A (and B), or a global one."""
    accounts = [w.a.id, w.tenancy.account_b.id] if also_b else [w.a.id]
    spec = GroupSpec(
        name="Known webshell scanner",
        scenario="webshell",
        conditions=[ConditionSpec("alert_name", "equals", "Webshell detected")],
        is_global=is_global,
        account_ids=[] if is_global else accounts,
    )
    return save_group(spec, organisation_scope(w.org), allow_global=True, user=w.alice)


def _group_where(group: RuleGroup, **fields) -> Callable:
    return lambda response: RuleGroup.objects.filter(id=group.id, **fields).exists()


def _group_gone(group: RuleGroup) -> Callable:
    return lambda response: not RuleGroup.objects.filter(id=group.id).exists()


def _sigma_rule(w: World) -> DetectionRule:
    return save_sigma_rule(w.org, DetectionRuleSpec(VALID_RULE), user=w.alice)


def _predefined_sigma_key() -> str:
    sync_predefined_rules()
    return DetectionRule.objects.predefined().order_by("key").values_list("key", flat=True)[0]


def _predefined_aggregation_rule() -> AggregationRule:
    sync_predefined_aggregation_rules()
    return AggregationRule.objects.get(organisation=None, key=PREDEFINED_RULES[0]["key"])


def _contains(text: str) -> Callable:
    return lambda response: response.status_code == 200 and text in response.content.decode()


# Console: read-only pages, POSTed to.


def _page(name, *args_of: Callable[[World], object]):
    def build(w: World) -> Attempt:
        return Attempt("POST", reverse(name, args=[arg(w) for arg in args_of]), {"x": "1"})

    return build


def _alert_id(w):
    return factories.make_alert(w.a).id


def _event_id(w):
    return factories.make_event(w.a).id


# Console: the caller's own view.


def _change_account(w):
    def stored(response):
        return response.wsgi_request.session.get(SESSION_ACCOUNT) == w.a.id

    return Attempt("POST", reverse("change_scope"), {"account": str(w.a.id), "next": "/"}, stored)


def _change_to_global_view(w):
    def stored(response):
        return response.wsgi_request.session.get(SESSION_VIEW) == View.GLOBAL

    return Attempt("POST", reverse("change_scope"), {"view": View.GLOBAL, "next": "/"}, stored)


# Console: API keys.


def _create_api_key(w):
    def created(response):
        return ApiKey.objects.filter(organisation=w.org, name="Role walk").exists()

    return Attempt("POST", reverse("alerts:create_api_key"), {"name": "Role walk"}, created)


def _revoke_api_key(account):
    def build(w):
        key, _ = create_api_key(organisation=w.org, account=account(w), name="To revoke")
        return Attempt(
            "POST",
            reverse("alerts:revoke_api_key", args=[key.id]),
            check=lambda response: ApiKey.objects.get(id=key.id).revoked_at is not None,
        )

    return build


# Console: AccessKeys of the cloud SIEM API, each caller's own.


def _create_access_key(w):
    def created(response):
        return AccessKey.objects.filter(
            user=response.wsgi_request.user,
            user__organisation_membership__organisation=w.org,
            name="Role walk",
        ).exists()

    return Attempt("POST", reverse("cloudsiem:create_access_key"), {"name": "Role walk"}, created)


def _revoke_own_access_key(w, caller):
    key, _ = create_access_key(w.users[caller])
    return Attempt(
        "POST",
        reverse("cloudsiem:revoke_access_key", args=[key.id]),
        check=lambda response: AccessKey.objects.get(id=key.id).revoked_at is not None,
    )


def _connector_settings(w):
    return Attempt(
        "POST",
        reverse("disposal:connector_settings", args=[w.a.id]),
        {
            "kind": "webhook",
            "webhook_url": "https://hooks.example.com/secops",
            "webhook_secret": "s3cret-s3cret",
        },
        lambda response: AccountConnector.objects.filter(account=w.a, kind="webhook").exists(),
    )


def _handle(w):
    event = factories.make_event(w.a, name="Brute force")
    return Attempt(
        "POST",
        reverse("disposal:handle", args=[event.id]),
        {"status": "handled", "description": "False positive"},
        lambda response: SecurityEvent.objects.get(id=event.id).status == "handled",
    )


def _handle_preview(w):
    event = factories.make_event(w.a, name="Brute force from 203.0.113.7")
    return Attempt(
        "POST",
        reverse("disposal:handle_preview", args=[event.id]),
        {"status": "handled", "description": "False positive"},
        _contains("Brute force from 203.0.113.7"),
    )


def _task_retry(w):
    task = _handling_task(w, "failed")
    return Attempt(
        "POST", reverse("disposal:task_retry", args=[task.id]), check=_task_status(task, "pending")
    )


def _task_unblock(w):
    task = _handling_task(w, "succeeded")
    return Attempt(
        "POST",
        reverse("disposal:task_unblock", args=[task.id]),
        check=_task_status(task, "unblocking"),
    )


def _policy_edit(w):
    policy = _handling_task(w, "succeeded").policy
    return Attempt(
        "POST",
        reverse("disposal:policy_edit", args=[policy.id]),
        {"accounts": [w.a.id], "validity_days": 30},
        lambda response: HandlingPolicy.objects.get(id=policy.id).validity_days == 30,
    )


def _simulated_failure_add(w):
    return Attempt(
        "POST",
        reverse("disposal:simulated_cloud"),
        {"account": w.a.id, "target": "203.0.113.7", "percent": "100", "message": "Refused"},
        lambda response: SimulatedFailure.objects.filter(account=w.a, message="Refused").exists(),
    )


def _simulated_failure_remove(w):
    failure = SimulatedFailure.objects.create(account=w.a, target="203.0.113.7")
    return Attempt(
        "POST",
        reverse("disposal:simulated_failure_remove", args=[failure.id]),
        check=lambda response: not SimulatedFailure.objects.filter(id=failure.id).exists(),
    )


def _page_playbook_save(w, edit):
    playbook = _playbook(w) if edit else None
    url = (
        reverse("soar:playbook_edit", args=[playbook.id]) if edit else reverse("soar:playbook_new")
    )
    data = {
        "name": "Walked",
        "description": "",
        "step_count": "1",
        "step-0-position": "1",
        "step-0-kind": "set_risk",
        "step-0-risk": "2",
    }
    return Attempt(
        "POST",
        url,
        data,
        lambda response: Playbook.objects.filter(organisation=w.org, name="Walked").exists(),
    )


def _page_playbook_run(w):
    playbook = _playbook(w)
    event = factories.make_event(w.a, name="Brute force")
    return Attempt(
        "POST",
        reverse("soar:playbook_run", args=[playbook.id]),
        {"event": str(event.id)},
        lambda response: PlaybookRun.objects.filter(event=event).exists(),
    )


RULE_FORM = {
    "name": "Walked rule",
    "position": "0",
    "enabled": "on",
    "trigger": "event_created",
    "conditions": "",
    "action": "set_risk",
    "risk": "3",
    "max_runs_per_minute": "30",
}


def _page_rule_save(w, edit):
    rule = _rule(w) if edit else None
    url = reverse("soar:rule_edit", args=[rule.id]) if edit else reverse("soar:rule_new")
    return Attempt(
        "POST",
        url,
        RULE_FORM,
        lambda response: AutomationRule.objects.filter(
            organisation=w.org, name="Walked rule"
        ).exists(),
    )


def _page_rule_delete(w):
    rule = _rule(w)
    return Attempt(
        "POST",
        reverse("soar:rule_delete", args=[rule.id]),
        check=lambda response: not AutomationRule.objects.filter(id=rule.id).exists(),
    )


def _page_rule_dry_run(w):
    rule = _rule(w)
    return Attempt(
        "POST",
        reverse("soar:rule_dry_run", args=[rule.id]),
        check=lambda response: (
            response.status_code == 200 and b"would have acted" in response.content
        ),
    )


def _page_pause(w):
    return Attempt(
        "POST",
        reverse("soar:automation_pause"),
        {"paused": "yes"},
        lambda response: AutomationSwitch.objects.filter(organisation=w.org, paused=True).exists(),
    )


def _page_run_rerun(w):
    run = _run(w, "failed")
    return Attempt(
        "POST",
        reverse("soar:run_rerun", args=[run.id]),
        check=lambda response: PlaybookRun.objects.filter(rerun_of=run).exists(),
    )


def _page_run_decision(decision, status):
    def build(w):
        run = _run(w, "awaiting_approval")
        return Attempt(
            "POST",
            reverse(f"soar:run_{decision}", args=[run.id]),
            check=lambda response: PlaybookRun.objects.get(id=run.id).status == status,
        )

    return build


def _bulk_start(w):
    event = factories.make_event(w.a, name="Port scan")
    return Attempt(
        "POST",
        reverse("soar:bulk_start"),
        {
            "bulk-action": "set_status",
            "bulk-status": "handled",
            "bulk-target": "selected",
            "ids": str(event.id),
            "confirmed": "yes",
        },
        # The job is queued when the request commits: pending until a worker runs it.
        lambda response: BulkHandlingJob.objects.filter(
            organisation=w.org, event_ids=[event.id]
        ).exists(),
    )


# Console: Sigma rules.


def _sigma_new(w):
    return Attempt(
        "POST",
        reverse("detection:rule_new"),
        {"yaml": VALID_RULE, "enabled": "on"},
        lambda response: DetectionRule.objects.filter(organisation=w.org).exists(),
    )


def _sigma_check(w):
    return Attempt(
        "POST",
        reverse("detection:check"),
        {"yaml": VALID_RULE},
        _contains('data-testid="check-ok"'),
    )


def _sigma_dry_run(w):
    # One log record of account A that the rule matches: the dry run of a
    # caller who sees account A counts it.
    ingest_logs([netcat_log(w.a)], scope=organisation_scope(w.org))
    return Attempt(
        "POST",
        reverse("detection:dry_run"),
        {"yaml": VALID_RULE},
        _contains('data-testid="dry-run-matches">1<'),
    )


def _sigma_edit(w):
    rule = _sigma_rule(w)
    edited = VALID_RULE.replace("title: Netcat listener", "title: Netcat listener, edited")
    return Attempt(
        "POST",
        reverse("detection:rule_edit", args=[rule.id]),
        {"yaml": edited, "enabled": "on"},
        lambda response: DetectionRule.objects.get(id=rule.id).title.endswith("edited"),
    )


def _sigma_toggle(w):
    rule = _sigma_rule(w)
    return Attempt(
        "POST",
        reverse("detection:rule_toggle", args=[rule.id]),
        {"enabled": "false"},
        lambda response: not DetectionRule.objects.get(id=rule.id).enabled,
    )


def _sigma_delete(w):
    rule = _sigma_rule(w)
    return Attempt(
        "POST",
        reverse("detection:rule_delete", args=[rule.id]),
        check=lambda response: not DetectionRule.objects.filter(id=rule.id).exists(),
    )


def _sigma_predefined_toggle(w):
    key = _predefined_sigma_key()
    return Attempt(
        "POST",
        reverse("detection:predefined_toggle", args=[key]),
        {"enabled": "false"},
        lambda response: (
            DetectionRule.objects.get(key=key, organisation=None)
            .disabled_by.filter(id=w.org.id)
            .exists()
        ),
    )


# Console: events.


def _add_to_whitelist(w):
    event = factories.make_event(w.a)
    return Attempt(
        "POST",
        reverse("events:add_to_whitelist", args=[event.id]),
        _group_form("From the event", account=w.a),
        lambda response: WhitelistGroupOrigin.objects.filter(
            event=event, group__name="From the event"
        ).exists(),
    )


def _export_start(w):
    factories.make_event(w.a)
    return Attempt(
        "POST",
        reverse("events:export_start"),
        {"occurred": "7d"},
        lambda response: ExportJob.objects.filter(organisation=w.org).exists(),
    )


def _aggregation_create(w):
    return Attempt(
        "POST",
        reverse("events:rule_create"),
        AGGREGATION_RULE_FORM,
        lambda response: AggregationRule.objects.filter(
            organisation=w.org, name=AGGREGATION_RULE_FORM["name"]
        ).exists(),
    )


def _aggregation_edit(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "POST",
        reverse("events:rule_edit", args=[rule.id]),
        AGGREGATION_RULE_FORM,
        lambda response: (
            AggregationRule.objects.get(id=rule.id).name == AGGREGATION_RULE_FORM["name"]
        ),
    )


def _aggregation_toggle(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "POST",
        reverse("events:rule_toggle", args=[rule.id]),
        {"enabled": "false"},
        lambda response: not AggregationRule.objects.get(id=rule.id).enabled,
    )


def _aggregation_predefined_toggle(w):
    rule = _predefined_aggregation_rule()
    return Attempt(
        "POST",
        reverse("events:rule_toggle", args=[rule.id]),
        {"enabled": "false"},
        lambda response: rule.disabled_by.filter(id=w.org.id).exists(),
    )


def _aggregation_delete(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "POST",
        reverse("events:rule_delete", args=[rule.id]),
        check=lambda response: not AggregationRule.objects.filter(id=rule.id).exists(),
    )


# Console: whitelist groups.


def _group_create(is_global):
    def build(w):
        return Attempt(
            "POST",
            reverse("whitelist:group_create"),
            _group_form("New group", account=None if is_global else w.a),
            lambda response: RuleGroup.objects.filter(
                organisation=w.org, name="New group", is_global=is_global
            ).exists(),
        )

    return build


def _group_edit(is_global, also_b=False):
    def build(w):
        group = _group(w, is_global=is_global, also_b=also_b)
        return Attempt(
            "POST",
            reverse("whitelist:group_edit", args=[group.id]),
            _group_form("Renamed group", account=None if is_global else w.a),
            _group_where(group, name="Renamed group"),
        )

    return build


def _group_toggle(is_global):
    def build(w):
        group = _group(w, is_global=is_global)
        return Attempt(
            "POST",
            reverse("whitelist:group_toggle", args=[group.id]),
            {"enabled": ""},
            _group_where(group, enabled=False),
        )

    return build


def _group_delete(is_global):
    def build(w):
        group = _group(w, is_global=is_global)
        return Attempt(
            "POST", reverse("whitelist:group_delete", args=[group.id]), check=_group_gone(group)
        )

    return build


def _whitelist_preview(w):
    # An alert of account A that the group matches: a preview over account A finds it.
    factories.make_alert(w.a, name="Webshell detected")
    return Attempt(
        "POST",
        reverse("whitelist:preview"),
        _group_form("", account=w.a),
        _contains('<p data-testid="preview-count"><strong>1</strong> of 1 alert '),
    )


# An account administrator is not refused with 403 here, and why.
ACCOUNT_ADMIN_GETS_A_FORM_ERROR = MappingProxyType({"admin": 200})  # "choose accounts instead"

URL_CASES = [
    # read-only pages: a POST renders them and changes nothing
    Case("home", READ_ONLY, _page("home"), outsider=OWN),
    Case("alerts:list", READ_ONLY, _page("alerts:list"), outsider=OWN),
    Case("alerts:detail", READ_ONLY, _page("alerts:detail", _alert_id)),
    Case("alerts:data_sources", READ_ONLY, _page("alerts:data_sources"), outsider=OWN),
    Case("detection:rules", READ_ONLY, _page("detection:rules"), outsider=OWN),
    # A predefined rule is shared by every organisation: its key names nothing of Acme.
    Case(
        "detection:predefined",
        READ_ONLY,
        _page("detection:predefined", lambda w: _predefined_sigma_key()),
        outsider=OWN,
    ),
    Case("events:list", READ_ONLY, _page("events:list"), outsider=OWN),
    Case("events:detail", READ_ONLY, _page("events:detail", _event_id)),
    Case("events:rules", READ_ONLY, _page("events:rules"), outsider=OWN),
    Case("whitelist:settings", READ_ONLY, _page("whitelist:settings"), outsider=OWN),
    Case(
        "whitelist:scenario",
        READ_ONLY,
        _page("whitelist:scenario", lambda w: "webshell"),
        outsider=OWN,
    ),
    Case("whitelist:preview", READ_ONLY, _whitelist_preview, outsider=NOTHING),
    # the caller's own view
    Case("change_scope", VIEWER, _change_account, outsider=NOTHING),
    Case(
        "change_scope",
        GLOBAL_ADMIN,
        _change_to_global_view,
        variant="Global Account View",
        # The Global Account View of his own organisation, which he administers.
        outsider=OWN,
        # Refused with a message on the page the switcher was on, the view unchanged.
        refusals=MappingProxyType({"viewer": 302, "analyst": 302, "admin": 302}),
    ),
    # API keys
    Case("alerts:create_api_key", ADMIN, _create_api_key, outsider=NOTHING),
    Case("alerts:revoke_api_key", ADMIN, _revoke_api_key(lambda w: w.a)),
    Case(
        "alerts:revoke_api_key",
        GLOBAL_ADMIN,
        _revoke_api_key(lambda w: None),
        variant="organisation key",
        global_view=True,
        # An organisation key is listed only in the Global Account View, which
        # only global administrators have: for anyone else it does not exist.
        refusals=MappingProxyType({"viewer": 404, "analyst": 404, "admin": 404}),
    ),
    Case("cloudsiem:create_access_key", VIEWER, _create_access_key, outsider=NOTHING),
    # His own key, in his own organisation; another's is a 404 (tests/cloudsiem).
    Case(
        "cloudsiem:revoke_access_key",
        VIEWER,
        _revoke_own_access_key,
        outsider=OWN,
        per_caller=True,
    ),
    Case("disposal:connector_settings", ADMIN, _connector_settings),
    # Everyone who sees the event sees the panel; viewers read-only.
    Case("disposal:handle", ANALYST, _handle, form_page=False),
    Case("disposal:handle_preview", READ_ONLY, _handle_preview, changes_nothing=True),
    Case("disposal:task_retry", ANALYST, _task_retry),
    Case("disposal:task_unblock", ANALYST, _task_unblock),
    Case("disposal:policy_edit", ANALYST, _policy_edit),
    # The page shows every member what the simulated cloud holds; only its form
    # (a POST) is for administrators, so it is no form page of FORM_CASES.
    Case(
        "disposal:simulated_cloud", ADMIN, _simulated_failure_add, outsider=NOTHING, form_page=False
    ),
    Case("disposal:simulated_failure_remove", ADMIN, _simulated_failure_remove),
    # bulk handling: the selected ids are looked up in the caller's own view
    Case("soar:bulk_start", ANALYST, _bulk_start, outsider=NOTHING),
    Case(
        "soar:playbook_new", GLOBAL_ADMIN, lambda w: _page_playbook_save(w, False), outsider=NOTHING
    ),
    Case("soar:playbook_edit", GLOBAL_ADMIN, lambda w: _page_playbook_save(w, True)),
    Case("soar:playbook_run", ANALYST, _page_playbook_run, form_page=False),
    Case("soar:rule_new", GLOBAL_ADMIN, lambda w: _page_rule_save(w, False), outsider=NOTHING),
    Case("soar:rule_edit", GLOBAL_ADMIN, lambda w: _page_rule_save(w, True)),
    Case("soar:rule_delete", GLOBAL_ADMIN, _page_rule_delete),
    Case("soar:rule_dry_run", GLOBAL_ADMIN, _page_rule_dry_run, changes_nothing=True),
    Case("soar:automation_pause", GLOBAL_ADMIN, _page_pause, outsider=OWN),
    Case("soar:run_rerun", ANALYST, _page_run_rerun),
    Case("soar:run_approve", ADMIN, _page_run_decision("approve", "pending")),
    Case("soar:run_reject", ADMIN, _page_run_decision("reject", "rejected")),
    # Sigma rules
    Case("detection:rule_new", GLOBAL_ADMIN, _sigma_new, outsider=NOTHING),
    # Checking a rule reads nothing of any organisation.
    Case("detection:check", GLOBAL_ADMIN, _sigma_check, outsider=OWN, changes_nothing=True),
    Case("detection:dry_run", GLOBAL_ADMIN, _sigma_dry_run, outsider=NOTHING, changes_nothing=True),
    Case("detection:rule_edit", GLOBAL_ADMIN, _sigma_edit),
    Case("detection:rule_toggle", GLOBAL_ADMIN, _sigma_toggle),
    Case("detection:rule_delete", GLOBAL_ADMIN, _sigma_delete),
    # The outsider switches the shared rule off for his own organisation only.
    Case("detection:predefined_toggle", GLOBAL_ADMIN, _sigma_predefined_toggle, outsider=NOTHING),
    # events
    Case("events:add_to_whitelist", ADMIN, _add_to_whitelist),
    Case("events:export_start", ANALYST, _export_start, outsider=NOTHING),
    Case("events:rule_create", GLOBAL_ADMIN, _aggregation_create, outsider=NOTHING),
    Case("events:rule_edit", GLOBAL_ADMIN, _aggregation_edit),
    Case("events:rule_toggle", GLOBAL_ADMIN, _aggregation_toggle),
    Case(
        "events:rule_toggle",
        GLOBAL_ADMIN,
        _aggregation_predefined_toggle,
        variant="predefined rule",
        outsider=NOTHING,
    ),
    Case("events:rule_delete", GLOBAL_ADMIN, _aggregation_delete),
    # whitelist groups
    Case("whitelist:group_create", ADMIN, _group_create(False), outsider=NOTHING),
    Case(
        "whitelist:group_create",
        GLOBAL_ADMIN,
        _group_create(True),
        variant="global group",
        outsider=NOTHING,
        refusals=ACCOUNT_ADMIN_GETS_A_FORM_ERROR,
    ),
    Case("whitelist:group_edit", ADMIN, _group_edit(False)),
    Case("whitelist:group_edit", GLOBAL_ADMIN, _group_edit(True), variant="global group"),
    # Changed only by someone whose view covers every account it applies to:
    # alice in the Global Account View, not an administrator of account A alone.
    Case(
        "whitelist:group_edit",
        GLOBAL_ADMIN,
        _group_edit(False, also_b=True),
        variant="group of accounts A and B",
        global_view=True,
    ),
    Case("whitelist:group_toggle", ADMIN, _group_toggle(False)),
    Case("whitelist:group_toggle", GLOBAL_ADMIN, _group_toggle(True), variant="global group"),
    Case("whitelist:group_delete", ADMIN, _group_delete(False)),
    Case("whitelist:group_delete", GLOBAL_ADMIN, _group_delete(True), variant="global group"),
]

# --- API cases ----------------------------------------------------------------------

API_RULE_BODY = {
    "name": "Role walk scans",
    "group_by": ["asset"],
    "event_name_template": "Scans of {asset_name}",
}


def _api_ingest_alert(account):
    def build(w):
        alert = native_alert(account(w))
        return Attempt(
            "POST",
            "/api/v1/alerts",
            {"alerts": [alert]},
            lambda response: Alert.objects.filter(source_uuid=alert["uuid"]).exists(),
        )

    return build


def _api_ingest_log(w):
    return Attempt(
        "POST",
        "/api/v1/logs",
        {"logs": [netcat_log(w.a)]},
        lambda response: LogRecord.objects.filter(account=w.a).exists(),
    )


def _api_rule_create(w):
    return Attempt(
        "POST",
        "/api/v1/aggregation-rules",
        API_RULE_BODY,
        lambda response: AggregationRule.objects.filter(
            organisation=w.org, name=API_RULE_BODY["name"]
        ).exists(),
    )


def _api_rule_update(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "PUT",
        f"/api/v1/aggregation-rules/{rule.id}",
        API_RULE_BODY,
        lambda response: AggregationRule.objects.get(id=rule.id).name == API_RULE_BODY["name"],
    )


def _api_rule_delete(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "DELETE",
        f"/api/v1/aggregation-rules/{rule.id}",
        check=lambda response: not AggregationRule.objects.filter(id=rule.id).exists(),
    )


def _api_rule_enabled(w):
    rule = factories.make_rule(organisation=w.org, name="Acme scans")
    return Attempt(
        "POST",
        f"/api/v1/aggregation-rules/{rule.id}/enabled",
        {"enabled": False},
        lambda response: not AggregationRule.objects.get(id=rule.id).enabled,
    )


def _api_predefined_rule_enabled(w):
    rule = _predefined_aggregation_rule()
    return Attempt(
        "POST",
        f"/api/v1/aggregation-rules/{rule.id}/enabled",
        {"enabled": False},
        lambda response: rule.disabled_by.filter(id=w.org.id).exists(),
    )


def _group_body(w, name, *, is_global=False):
    return {
        "name": name,
        "scenario": "webshell",
        "accounts": [] if is_global else [w.a.uid],
        "conditions": [
            {"object": "alert_name", "operator": "equals", "value": "Webshell detected"}
        ],
    }


def _api_group_create(is_global):
    def build(w):
        return Attempt(
            "POST",
            "/api/v1/whitelist/groups",
            _group_body(w, "API group", is_global=is_global),
            lambda response: RuleGroup.objects.filter(
                organisation=w.org, name="API group", is_global=is_global
            ).exists(),
        )

    return build


def _api_group_preview(w):
    factories.make_alert(w.a, name="Webshell detected")
    return Attempt(
        "POST",
        "/api/v1/whitelist/groups/preview",
        _group_body(w, ""),
        lambda response: response.status_code == 200 and response.json()["matched"] == 1,
    )


def _api_group_replace(is_global, also_b=False):
    def build(w):
        group = _group(w, is_global=is_global, also_b=also_b)
        return Attempt(
            "PUT",
            f"/api/v1/whitelist/groups/{group.id}",
            _group_body(w, "Replaced group", is_global=is_global),
            _group_where(group, name="Replaced group"),
        )

    return build


def _api_group_change(is_global):
    def build(w):
        group = _group(w, is_global=is_global)
        return Attempt(
            "PATCH",
            f"/api/v1/whitelist/groups/{group.id}",
            {"name": "Changed group"},
            _group_where(group, name="Changed group"),
        )

    return build


def _api_group_delete(is_global):
    def build(w):
        group = _group(w, is_global=is_global)
        return Attempt("DELETE", f"/api/v1/whitelist/groups/{group.id}", check=_group_gone(group))

    return build


def _handling_task(w, status):
    """A task of a block of account A's attacker IP, in ``status``."""
    event = factories.make_event(w.a, name="Brute force")
    policy = HandlingPolicy.objects.create(
        account=w.a,
        entity_type="ip",
        entity_value="203.0.113.7",
        entity_digest="d" * 64,
        scenario=Scenario.objects.get(key="block-ip-cloud-firewall-inbound"),
        validity_days=7,
        source="event",
        source_event=event,
    )
    policy.scope_accounts.set([w.a])
    return HandlingTask.objects.create(
        policy=policy, account=w.a, cloud_service=policy.scenario.cloud_service, status=status
    )


def _task_status(task, status) -> Callable:
    return lambda response: HandlingTask.objects.get(id=task.id).status == status


def _api_handle(w):
    event = factories.make_event(w.a, name="Brute force")
    return Attempt(
        "POST",
        f"/api/v1/events/{event.id}/handle",
        {"status": "handled", "description": "False positive"},
        lambda response: SecurityEvent.objects.get(id=event.id).status == "handled",
    )


def _api_task_retry(w):
    task = _handling_task(w, "failed")
    # The retried task is queued when the request commits: pending until a worker runs it.
    return Attempt(
        "POST", f"/api/v1/handling/tasks/{task.id}/retry", check=_task_status(task, "pending")
    )


def _api_task_unblock(w):
    task = _handling_task(w, "succeeded")
    return Attempt(
        "POST",
        f"/api/v1/handling/tasks/{task.id}/unblock",
        check=_task_status(task, "unblocking"),
    )


def _api_export_start(w):
    factories.make_event(w.a)
    return Attempt(
        "POST",
        "/api/v1/events/exports?occurred=7d",
        check=lambda response: ExportJob.objects.filter(organisation=w.org).exists(),
    )


def _api_policy_change(w):
    policy = _handling_task(w, "succeeded").policy
    return Attempt(
        "PATCH",
        f"/api/v1/handling/policies/{policy.id}",
        {"accounts": [w.a.uid], "validity_days": 30},
        lambda response: HandlingPolicy.objects.get(id=policy.id).validity_days == 30,
    )


PLAYBOOK_BODY = {"name": "Walked", "steps": [{"kind": "set_risk", "params": {"risk": 2}}]}
RULE_BODY = {
    "name": "Walked rule",
    "trigger": "event_created",
    "action": "set_risk",
    "parameters": {"risk": 3},
}


def _playbook(w):
    from soar.playbooks import PlaybookSpec, save_playbook

    return save_playbook(
        organisation_scope(w.org),
        PlaybookSpec("Raise risk", "", [{"kind": "set_risk", "params": {"risk": 3}}]),
        user=None,
    )


def _run(w, status):
    playbook = _playbook(w)
    return PlaybookRun.objects.create(
        account=w.a,
        event=factories.make_event(w.a, name="Brute force"),
        playbook=playbook,
        version=playbook.current_version,
        trigger="user",
        status=status,
    )


def _rule(w):
    return AutomationRule.objects.create(
        organisation=w.org,
        name="Raise",
        trigger="event_created",
        action="set_risk",
        parameters={"risk": 3},
    )


def _api_playbook_create(w):
    return Attempt(
        "POST",
        "/api/v1/playbooks",
        PLAYBOOK_BODY,
        lambda response: Playbook.objects.filter(organisation=w.org, name="Walked").exists(),
    )


def _api_playbook_update(w):
    playbook = _playbook(w)
    return Attempt(
        "PUT",
        f"/api/v1/playbooks/{playbook.id}",
        PLAYBOOK_BODY,
        lambda response: Playbook.objects.get(id=playbook.id).name == "Walked",
    )


def _api_playbook_run(w):
    playbook = _playbook(w)
    event = factories.make_event(w.a, name="Brute force")
    return Attempt(
        "POST",
        f"/api/v1/playbooks/{playbook.id}/runs",
        {"event": event.id},
        lambda response: PlaybookRun.objects.filter(event=event).exists(),
    )


def _api_run_decision(decision, status):
    def build(w):
        run = _run(w, "awaiting_approval")
        return Attempt(
            "POST",
            f"/api/v1/playbook-runs/{run.id}/{decision}",
            check=lambda response: PlaybookRun.objects.get(id=run.id).status == status,
        )

    return build


def _api_run_rerun(w):
    run = _run(w, "failed")
    return Attempt(
        "POST",
        f"/api/v1/playbook-runs/{run.id}/rerun",
        check=lambda response: PlaybookRun.objects.filter(rerun_of=run).exists(),
    )


def _api_rule_create_soar(w):
    return Attempt(
        "POST",
        "/api/v1/automation-rules",
        RULE_BODY,
        lambda response: AutomationRule.objects.filter(
            organisation=w.org, name="Walked rule"
        ).exists(),
    )


def _api_rule_update_soar(w):
    rule = _rule(w)
    return Attempt(
        "PUT",
        f"/api/v1/automation-rules/{rule.id}",
        RULE_BODY,
        lambda response: AutomationRule.objects.get(id=rule.id).name == "Walked rule",
    )


def _api_rule_delete_soar(w):
    rule = _rule(w)
    return Attempt(
        "DELETE",
        f"/api/v1/automation-rules/{rule.id}",
        check=lambda response: not AutomationRule.objects.filter(id=rule.id).exists(),
    )


def _api_rule_dry_run(w):
    rule = _rule(w)
    return Attempt(
        "POST",
        f"/api/v1/automation-rules/{rule.id}/dry-run",
        check=lambda response: response.status_code == 200 and "matched" in response.json(),
    )


def _api_pause(w):
    return Attempt(
        "POST",
        "/api/v1/automation/pause",
        {"paused": True},
        lambda response: AutomationSwitch.objects.filter(organisation=w.org, paused=True).exists(),
    )


def _api_key_create(account):
    def build(w):
        body = {"name": "Walked key"}
        if account is not None:
            body["account"] = account(w).uid
        return Attempt(
            "POST",
            "/api/v1/api-keys",
            body,
            lambda response: ApiKey.objects.filter(organisation=w.org, name="Walked key").exists(),
        )

    return build


def _api_key_revoke(w):
    key, _ = create_api_key(organisation=w.org, account=w.a, name="To revoke")
    return Attempt(
        "POST",
        f"/api/v1/api-keys/{key.id}/revoke",
        check=lambda response: ApiKey.objects.get(id=key.id).revoked_at is not None,
    )


SIGMA_BODY = {"yaml": VALID_RULE.replace("Netcat listener", "Walked Sigma rule")}


def _api_sigma_create(w):
    return Attempt(
        "POST",
        "/api/v1/detection-rules",
        SIGMA_BODY,
        lambda response: DetectionRule.objects.filter(
            organisation=w.org, title="Walked Sigma rule"
        ).exists(),
    )


def _api_sigma_check(path):
    def build(w):
        return Attempt(
            "POST",
            path,
            SIGMA_BODY,
            lambda response: response.status_code == 200 and "kind" in response.json(),
        )

    return build


def _api_sigma_update(w):
    rule = _sigma_rule(w)
    return Attempt(
        "PUT",
        f"/api/v1/detection-rules/{rule.id}",
        SIGMA_BODY,
        lambda response: DetectionRule.objects.get(id=rule.id).title == "Walked Sigma rule",
    )


def _api_sigma_delete(w):
    rule = _sigma_rule(w)
    return Attempt(
        "DELETE",
        f"/api/v1/detection-rules/{rule.id}",
        check=lambda response: not DetectionRule.objects.filter(id=rule.id).exists(),
    )


def _api_sigma_enabled(w):
    rule = _sigma_rule(w)
    return Attempt(
        "POST",
        f"/api/v1/detection-rules/{rule.id}/enabled",
        {"enabled": False},
        lambda response: not DetectionRule.objects.get(id=rule.id).enabled,
    )


def _api_add_to_whitelist(w):
    event = factories.make_event(w.a, name="Webshell")
    return Attempt(
        "POST",
        f"/api/v1/events/{event.id}/whitelist-groups",
        _group_body(w, "From the event"),
        lambda response: WhitelistGroupOrigin.objects.filter(
            event=event, group__name="From the event"
        ).exists(),
    )


def _api_handle_preview(w):
    event = factories.make_event(w.a, name="Brute force from 203.0.113.7")
    return Attempt(
        "POST",
        f"/api/v1/events/{event.id}/handle/preview",
        {"status": "handled", "description": "False positive"},
        lambda response: (
            response.status_code == 200
            and "Brute force from 203.0.113.7" in response.json()["body"]
        ),
    )


def _api_connector_change(w):
    return Attempt(
        "PUT",
        f"/api/v1/accounts/{w.a.id}/connector",
        {
            "kind": "webhook",
            "webhook_url": "https://hooks.example.com/secops",
            "webhook_secret": "s3cret-s3cret",
        },
        lambda response: AccountConnector.objects.filter(account=w.a, kind="webhook").exists(),
    )


def _api_connector_check(w):
    return Attempt(
        "POST",
        f"/api/v1/accounts/{w.a.id}/connector/check",
        check=lambda response: response.status_code == 200 and response.json()["ok"],
    )


def _api_simulated_failure_add(w):
    return Attempt(
        "POST",
        "/api/v1/simulated-cloud/failures",
        {"account": w.a.uid, "target": "203.0.113.7", "message": "Refused"},
        lambda response: SimulatedFailure.objects.filter(account=w.a, message="Refused").exists(),
    )


def _api_simulated_failure_remove(w):
    failure = SimulatedFailure.objects.create(account=w.a, target="203.0.113.7")
    return Attempt(
        "DELETE",
        f"/api/v1/simulated-cloud/failures/{failure.id}",
        check=lambda response: not SimulatedFailure.objects.filter(id=failure.id).exists(),
    )


def _api_bulk_start(w):
    event = factories.make_event(w.a)
    return Attempt(
        "POST",
        "/api/v1/bulk-handling",
        {
            "action": "set_status",
            "status": "handled",
            "target": "selected",
            "event_ids": [event.id],
        },
        lambda response: BulkHandlingJob.objects.filter(organisation=w.org).exists(),
    )


# An account key that names what only an organisation key may: the body is
# refused with an error about the field (422), nothing is stored.
ACCOUNT_KEY_GETS_A_FIELD_ERROR = MappingProxyType({"account_key": 422})

API_CASES = [
    Case("POST /api/v1/alerts", ADMIN, _api_ingest_alert(lambda w: w.a), outsider=NOTHING),
    Case(
        "POST /api/v1/alerts",
        GLOBAL_ADMIN,
        _api_ingest_alert(lambda w: w.tenancy.account_b),
        variant="another account of the organisation",
        outsider=NOTHING,
        refusals=ACCOUNT_KEY_GETS_A_FIELD_ERROR,
    ),
    Case("POST /api/v1/logs", ADMIN, _api_ingest_log, outsider=NOTHING),
    Case("POST /api/v1/aggregation-rules", GLOBAL_ADMIN, _api_rule_create, outsider=NOTHING),
    Case("PUT /api/v1/aggregation-rules/{rule_id}", GLOBAL_ADMIN, _api_rule_update),
    Case("DELETE /api/v1/aggregation-rules/{rule_id}", GLOBAL_ADMIN, _api_rule_delete),
    Case("POST /api/v1/aggregation-rules/{rule_id}/enabled", GLOBAL_ADMIN, _api_rule_enabled),
    Case(
        "POST /api/v1/aggregation-rules/{rule_id}/enabled",
        GLOBAL_ADMIN,
        _api_predefined_rule_enabled,
        variant="predefined rule",
        outsider=NOTHING,
    ),
    Case("POST /api/v1/whitelist/groups", ADMIN, _api_group_create(False), outsider=NOTHING),
    Case(
        "POST /api/v1/whitelist/groups",
        GLOBAL_ADMIN,
        _api_group_create(True),
        variant="global group",
        outsider=NOTHING,
        refusals=ACCOUNT_KEY_GETS_A_FIELD_ERROR,
    ),
    Case(
        "POST /api/v1/whitelist/groups/preview",
        READ_ONLY,
        _api_group_preview,
        outsider=NOTHING,
    ),
    Case("PUT /api/v1/whitelist/groups/{group_id}", ADMIN, _api_group_replace(False)),
    Case(
        "PUT /api/v1/whitelist/groups/{group_id}",
        GLOBAL_ADMIN,
        _api_group_replace(True),
        variant="global group",
    ),
    # A key of account A does not cover account B.
    Case(
        "PUT /api/v1/whitelist/groups/{group_id}",
        GLOBAL_ADMIN,
        _api_group_replace(False, also_b=True),
        variant="group of accounts A and B",
    ),
    Case("PATCH /api/v1/whitelist/groups/{group_id}", ADMIN, _api_group_change(False)),
    Case(
        "PATCH /api/v1/whitelist/groups/{group_id}",
        GLOBAL_ADMIN,
        _api_group_change(True),
        variant="global group",
    ),
    Case("DELETE /api/v1/whitelist/groups/{group_id}", ADMIN, _api_group_delete(False)),
    Case(
        "DELETE /api/v1/whitelist/groups/{group_id}",
        GLOBAL_ADMIN,
        _api_group_delete(True),
        variant="global group",
    ),
    Case("POST /api/v1/events/{event_id}/handle", ANALYST, _api_handle),
    Case("POST /api/v1/events/exports", ANALYST, _api_export_start, outsider=NOTHING),
    Case("PATCH /api/v1/handling/policies/{policy_id}", ANALYST, _api_policy_change),
    Case("POST /api/v1/handling/tasks/{task_id}/retry", ANALYST, _api_task_retry),
    Case("POST /api/v1/handling/tasks/{task_id}/unblock", ANALYST, _api_task_unblock),
    Case("POST /api/v1/playbooks", GLOBAL_ADMIN, _api_playbook_create, outsider=NOTHING),
    Case("PUT /api/v1/playbooks/{playbook_id}", GLOBAL_ADMIN, _api_playbook_update),
    Case("POST /api/v1/playbooks/{playbook_id}/runs", ANALYST, _api_playbook_run),
    Case(
        "POST /api/v1/playbook-runs/{run_id}/approve",
        ADMIN,
        _api_run_decision("approve", "pending"),
    ),
    Case(
        "POST /api/v1/playbook-runs/{run_id}/reject", ADMIN, _api_run_decision("reject", "rejected")
    ),
    Case("POST /api/v1/playbook-runs/{run_id}/rerun", ANALYST, _api_run_rerun),
    Case("POST /api/v1/automation-rules", GLOBAL_ADMIN, _api_rule_create_soar, outsider=NOTHING),
    Case("PUT /api/v1/automation-rules/{automation_rule_id}", GLOBAL_ADMIN, _api_rule_update_soar),
    Case(
        "DELETE /api/v1/automation-rules/{automation_rule_id}", GLOBAL_ADMIN, _api_rule_delete_soar
    ),
    Case(
        "POST /api/v1/automation-rules/{automation_rule_id}/dry-run",
        READ_ONLY,
        _api_rule_dry_run,
        changes_nothing=True,
    ),
    Case("POST /api/v1/automation/pause", GLOBAL_ADMIN, _api_pause, outsider=OWN),
    Case("POST /api/v1/api-keys", ADMIN, _api_key_create(lambda w: w.a), outsider=NOTHING),
    Case(
        "POST /api/v1/api-keys",
        GLOBAL_ADMIN,
        _api_key_create(None),
        variant="organisation key",
        outsider=NOTHING,
    ),
    Case("POST /api/v1/api-keys/{key_id}/revoke", ADMIN, _api_key_revoke),
    Case("POST /api/v1/detection-rules", GLOBAL_ADMIN, _api_sigma_create, outsider=NOTHING),
    Case(
        "POST /api/v1/detection-rules/check",
        GLOBAL_ADMIN,
        _api_sigma_check("/api/v1/detection-rules/check"),
        outsider=OWN,
        changes_nothing=True,
    ),
    Case(
        "POST /api/v1/detection-rules/dry-run",
        GLOBAL_ADMIN,
        _api_sigma_check("/api/v1/detection-rules/dry-run"),
        outsider=OWN,
        changes_nothing=True,
    ),
    Case("PUT /api/v1/detection-rules/{sigma_id}", GLOBAL_ADMIN, _api_sigma_update),
    Case("DELETE /api/v1/detection-rules/{sigma_id}", GLOBAL_ADMIN, _api_sigma_delete),
    Case("POST /api/v1/detection-rules/{sigma_id}/enabled", GLOBAL_ADMIN, _api_sigma_enabled),
    Case("POST /api/v1/events/{event_id}/whitelist-groups", ADMIN, _api_add_to_whitelist),
    Case(
        "POST /api/v1/events/{event_id}/handle/preview",
        READ_ONLY,
        _api_handle_preview,
        changes_nothing=True,
    ),
    Case("PUT /api/v1/accounts/{account_id}/connector", ADMIN, _api_connector_change),
    Case(
        "POST /api/v1/accounts/{account_id}/connector/check",
        ADMIN,
        _api_connector_check,
        changes_nothing=True,
    ),
    Case(
        "POST /api/v1/simulated-cloud/failures",
        ADMIN,
        _api_simulated_failure_add,
        outsider=NOTHING,
    ),
    Case(
        "DELETE /api/v1/simulated-cloud/failures/{failure_id}",
        ADMIN,
        _api_simulated_failure_remove,
    ),
    Case("POST /api/v1/bulk-handling", ANALYST, _api_bulk_start, outsider=NOTHING),
]


# --- the table is complete ----------------------------------------------------------


def test_every_state_changing_route_is_classified():
    urls = state_changing_urls()
    operations = state_changing_api_operations()
    problems = []
    for name in sorted(set(urls) - set(URL_RULES)):
        methods = ", ".join(sorted(urls[name] & STATE_CHANGING))
        problems.append(f"URL {name} takes {methods}: add a row to URL_RULES")
    for name in sorted(set(URL_RULES) - set(urls)):
        problems.append(f"URL_RULES names {name}, which is no state-changing URL: remove it")
    for operation in sorted(operations - set(API_RULES)):
        problems.append(f"API operation {operation}: add a row to API_RULES")
    for operation in sorted(set(API_RULES) - operations):
        problems.append(f"API_RULES names {operation}, which is no API operation: remove it")
    namespaces = {endpoint.namespaces[0] for endpoint in ADMIN_ENDPOINTS}
    problems += [
        f"namespace {n} has no row in NAMESPACE_RULES" for n in namespaces - set(NAMESPACE_RULES)
    ]
    problems += [
        f"NAMESPACE_RULES names {n}, which has no URL" for n in set(NAMESPACE_RULES) - namespaces
    ]

    assert not problems, "\n".join(problems)


def test_every_row_is_walked():
    """Each row has a case at its level (an exempt row, a reason), and each case
    uses a method its route takes."""
    urls = state_changing_urls()
    operations = api_operations()
    problems = []
    for rules, cases in ((URL_RULES, URL_CASES), (API_RULES, API_CASES)):
        for route, level in rules.items():
            if level == EXEMPT:
                if not EXEMPT_REASONS.get(route):
                    problems.append(f"{route} is exempt without a reason")
                continue
            if not any(c.route == route and not c.variant and c.level == level for c in cases):
                problems.append(f"{route}: no case without a variant at level {level}")
        for case in cases:
            if case.route not in rules:
                problems.append(f"case {case.id} is for a route without a row")
    assert set(EXEMPT_REASONS) <= {r for r, level in URL_RULES.items() if level == EXEMPT}
    assert len({case.id for case in URL_CASES + API_CASES}) == len(URL_CASES + API_CASES)
    # The method each case sends is one its route takes.
    problems += [
        f"{case.id}: {case.route} does not take POST"
        for case in URL_CASES
        if case.route in urls and "POST" not in urls[case.route]
    ]
    for case in API_CASES:
        method, _, path = case.route.partition(" ")
        if method not in operations.get(path, ()):
            problems.append(f"{case.id}: no such operation")

    assert not problems, "\n".join(problems)


def test_it_reads_the_methods_a_view_takes():
    takes = {
        name: accepted_methods(ENDPOINTS_BY_NAME[name].pattern.callback)
        for name in ENDPOINTS_BY_NAME
    }

    assert takes["healthz"] == {"GET"}
    assert takes["events:export_start"] == {"POST"}
    assert takes["events:export_download"] == {"GET"}
    assert "POST" in takes["logout"] and "GET" not in takes["logout"]
    assert takes["whitelist:group_edit"] == EVERY_METHOD
    assert "POST /api/v1/alerts" in state_changing_api_operations()
    assert "GET /api/v1/whitelist/groups" not in state_changing_api_operations()


# --- the walk -----------------------------------------------------------------------


def _expected(case: Case, level: str | None) -> str:
    if level is None:
        return case.outsider
    return "allowed" if RANK[level] >= RANK[case.level] else "refused"


def _assert_outcome(case, caller, expected, attempt, response, before, after):
    status = response.status_code
    where = f"{caller}: {attempt.method} {attempt.path} answered {status}"
    done = attempt.check(response)
    if expected == "allowed":
        assert status not in (401, 403, 404, 405) and status < 500, where
        assert done, f"{where}, but did not do what it is for"
    elif expected == "refused":
        assert status == case.refusals.get(caller, 403), where
        assert not done, f"{where}, and yet did it"
    elif expected == HIDDEN:
        assert status == 404, where
        assert not done, where
    elif expected == NOTHING:
        assert status < 500, where
        assert not done, f"{where}: it reached the organisation"
    else:  # OWN: what he gets in his own organisation
        assert status not in (401, 403, 404, 405) and status < 500, where
    if expected != "allowed" or case.changes_nothing or case.level == READ_ONLY:
        assert after == before, f"{where} and changed the organisation"


@pytest.mark.parametrize("caller", CONSOLE_CALLERS)
@pytest.mark.parametrize("case", URL_CASES, ids=[case.id for case in URL_CASES])
def test_a_console_caller_gets_what_his_role_allows(world, case, caller):
    attempt = case.attempt(world, caller)
    client = world.console_client(caller, global_view=case.global_view)
    before = organisation_state(world.org)

    response = client.post(attempt.path, attempt.data or {})

    after = organisation_state(world.org)
    expected = _expected(case, CALLER_LEVEL.get(caller))
    _assert_outcome(case, caller, expected, attempt, response, before, after)


@pytest.mark.parametrize("caller", API_CALLERS)
@pytest.mark.parametrize("case", API_CASES, ids=[case.id for case in API_CASES])
def test_an_api_caller_gets_what_his_key_allows(api_world, case, caller):
    attempt = case.build(api_world)
    client = api_world.api_client(caller)
    before = organisation_state(api_world.org)

    body = json.dumps(attempt.data) if attempt.data is not None else None
    response = client.generic(attempt.method, attempt.path, body, content_type="application/json")

    after = organisation_state(api_world.org)
    if caller == "console_session":
        # The API authenticates keys only: a console session is no key.
        assert response.status_code == 401, f"{attempt.method} {attempt.path}: {response}"
        assert after == before
        return
    expected = _expected(case, KEY_LEVEL.get(caller))
    _assert_outcome(case, caller, expected, attempt, response, before, after)


FORM_CASES = [
    case
    for case in URL_CASES
    if not case.variant and case.form_page and case.level not in (READ_ONLY, VIEWER)
]


@pytest.mark.parametrize("caller", CONSOLE_CALLERS)
@pytest.mark.parametrize("case", FORM_CASES, ids=[case.id for case in FORM_CASES])
def test_a_form_page_is_shown_only_to_those_who_may_send_it(world, case, caller):
    """A GET of a state-changing URL: 405 where the view takes POST only; an
    editor page is refused (403) to callers below the level, as its POST is,
    and is a 404 for the outsider when it names an object of the organisation."""
    attempt = case.attempt(world, caller)
    client = world.console_client(caller, global_view=case.global_view)

    response = client.get(attempt.path)

    methods = state_changing_urls()[case.route]
    expected = _expected(case, CALLER_LEVEL.get(caller))
    if "GET" not in methods:
        assert response.status_code == 405
    elif expected == "refused":
        assert response.status_code == 403
    elif expected == HIDDEN:
        assert response.status_code == 404
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("caller", CONSOLE_CALLERS)
def test_the_admin_refuses_every_console_caller(world, caller):
    """No console role is staff: every admin URL sends each caller to the
    admin's login (or, for the admin's old object URLs, on to their new address,
    which does so), and nothing changes."""
    client = world.console_client(caller)
    account_id = str(world.a.id)
    admin_login = reverse("admin:login")
    before = organisation_state(world.org)
    wrong = []

    for endpoint in ADMIN_ENDPOINTS:
        if endpoint.name in ADMIN_SESSION_PAGES:
            continue
        path = sample_path(endpoint, dict.fromkeys(endpoint.object_id_parameters(), account_id))
        response = client.post(path, {"username": "mallory", "is_superuser": "on"})
        view_class = getattr(endpoint.pattern.callback, "view_class", None)
        sent_to_login = (
            response.status_code == 302 and urlsplit(response["Location"]).path == admin_login
        )
        moved = view_class is not None and issubclass(view_class, RedirectView)
        if not (sent_to_login or (moved and response.status_code in (301, 302))):
            wrong.append(f"{path}: {response.status_code}")

    assert not wrong, "\n".join(wrong)
    assert organisation_state(world.org) == before


@pytest.mark.parametrize(("caller", "shown"), [("viewer", False), ("analyst", True)])
def test_the_export_button_is_shown_to_those_who_may_export(world, caller, shown):
    page = world.console_client(caller).get(reverse("events:list")).content.decode()

    assert ('data-testid="export-form"' in page) is shown
