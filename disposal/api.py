"""Handling over the API: what an event offers to handle, handling it, the
Disposal Center's policies, tasks and active blocks (with the center's
filters) with Retry, Unblock and policy editing, and the entity page.

The same services and the same scope checks as the pages: an event, policy or
task outside the key's scope is a 404; a key that may not handle is a 403.
Accounts are named by their uid.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from alerts.models import EntityType
from disposal import queries, services
from disposal.center_forms import CenterFilterForm
from disposal.entity_views import entity_summary_or_404, related_alerts
from disposal.errors import HandlingError
from disposal.handling import (
    ActionChoice,
    HandlingRequest,
    NotificationChoice,
    handle_event,
    handling_context,
    preview_message,
)
from disposal.models import Channel, CloudService, HandlingPolicy, HandlingTask
from disposal.scenarios import scenarios_for
from events import feed
from events.models import EventAlert, SecurityEvent
from secops.api_common import FieldsRefused, OffsetQuery, form_errors, offset_page
from secops.models import Account
from secops.scope import get_for_change_or_404, get_in_scope_or_404

router = Router(tags=["handling"])


class ScenarioOut(Schema):
    key: str
    name: str
    entity_type: str
    cloud_service: str
    operation: str
    takes_validity: bool
    default_validity_days: int | None
    per_host: bool


class HandleableEntityOut(Schema):
    type: str
    value: str
    roles: list[str]
    malicious: bool
    malicious_because: list[str]
    hosts: list[str] = Field(description="Names (or uuids) of the hosts it was seen on.")
    accounts: list[str] = Field(description="Uids of the accounts of the key that saw it.")
    recommended_scenario: str | None
    scenarios: list[str]


class HandlingOptionsOut(Schema):
    event: int
    status: str
    entities: list[HandleableEntityOut]


class ActionIn(Schema):
    entity_type: str = Field(description="ip, file or process.")
    value: str = Field(description="The entity's value as the options list it.")
    scenario: str = Field(description="A scenario key (GET /handling/scenarios).")
    accounts: list[str] = Field(
        default_factory=list, description="Uids of the accounts; default: the event's account."
    )
    validity_days: int | None = Field(None, description="For scenarios that take a validity.")


class NotificationIn(Schema):
    channels: list[str] = Field(description="email and/or webhook.")
    recipients: list[str]
    title: str


class HandleIn(Schema):
    status: str = Field(description="unhandled, handling or handled. Failed is refused.")
    description: str = ""
    actions: list[ActionIn] = Field(default_factory=list)
    use_recommended: bool = Field(
        False, description="Add the recommended scenario of every entity that has one."
    )
    notification: NotificationIn | None = None


class TaskOut(Schema):
    id: int
    policy: int
    account: str
    host: str | None
    cloud_service: str
    status: str
    connector: str
    error: str
    retryable: bool
    attempts: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    may_retry: bool
    may_unblock: bool


class TransitionOut(Schema):
    from_status: str
    to_status: str
    cause: str
    message: str
    answer: dict
    at: datetime


class TaskDetailOut(TaskOut):
    transitions: list[TransitionOut]


class PolicyOut(Schema):
    id: int
    entity_type: str
    entity_value: str
    scenario: str
    accounts: list[str]
    validity_days: int | None
    source: str
    source_event: int | None
    source_alert: int | None
    source_run: int | None
    revision: int
    created_at: datetime
    tasks: dict[str, int] = Field(description="Task count by status.")


class HandleOut(Schema):
    event: int
    status: str
    policies: list[PolicyOut]
    tasks: list[TaskOut]
    notifications: list[int]


class Errors(Schema):
    errors: dict[str, list[str]] = Field(description="Messages by field, e.g. actions[0].scope.")


class BodyErrors(Schema):
    """A request without the documented shape, refused before anything is looked at."""

    detail: list[dict] = Field(description="One entry per problem: its type, loc and msg.")


Invalid = Errors | BodyErrors


class Detail(Schema):
    detail: str


def _cause(request) -> feed.Cause:
    api_key = getattr(request, "api_key", None)
    return feed.Cause.by_api_key(api_key) if api_key else feed.Cause.by_user(request.user)


def _uids(request) -> dict[int, str]:
    return dict(Account.objects.in_scope(request.scope).values_list("id", "uid"))


def _task_out(task: HandlingTask, uids: dict[int, str]) -> dict:
    return {
        "id": task.id,
        "policy": task.policy_id,
        "account": uids.get(task.account_id, ""),
        "host": (task.asset.name or task.asset.uuid) if task.asset_id else None,
        "cloud_service": task.cloud_service,
        "status": task.status,
        "connector": task.connector,
        "error": task.error,
        "retryable": task.retryable,
        "attempts": task.attempts,
        "expires_at": task.expires_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "may_retry": services.may_retry(task),
        "may_unblock": services.may_unblock(task),
    }


def _policy_out(policy: HandlingPolicy, uids: dict[int, str]) -> dict:
    counts: dict[str, int] = {}
    for task in policy.tasks.all():
        counts[task.status] = counts.get(task.status, 0) + 1
    return {
        "id": policy.id,
        "entity_type": policy.entity_type,
        "entity_value": policy.entity_value,
        "scenario": policy.scenario.key,
        # A key of one account does not learn the uids of accounts it cannot see.
        "accounts": sorted(uids[a.id] for a in policy.scope_accounts.all() if a.id in uids),
        "validity_days": policy.validity_days,
        "source": policy.source,
        "source_event": policy.source_event_id,
        "source_alert": policy.source_alert_id,
        "source_run": policy.source_run_id,
        "revision": policy.revision,
        "created_at": policy.created_at,
        "tasks": counts,
    }


def _tasks(request):
    return HandlingTask.objects.in_scope(request.scope).select_related("asset", "policy__scenario")


def _policies(request):
    return (
        HandlingPolicy.objects.in_scope(request.scope)
        .select_related("scenario")
        .prefetch_related("scope_accounts", "tasks")
    )


# --- scenarios and an event's options --------------------------------------------


@router.get("/handling/scenarios", response=list[ScenarioOut])
def list_scenarios(request):
    return list(scenarios_for(request.scope))


@router.get("/events/{event_id}/handling", response=HandlingOptionsOut)
def handling_options(request, event_id: int):
    """The event's IPs, files and processes with their scenarios and recommendation."""
    event = get_in_scope_or_404(SecurityEvent, request.scope, id=event_id)
    context = handling_context(request.scope, event)
    return {
        "event": event.id,
        "status": event.status,
        "entities": [
            {
                "type": e.entity_type,
                "value": e.value,
                "roles": list(e.roles),
                "malicious": e.malicious,
                "malicious_because": e.malicious_because,
                "hosts": [h.name or h.uuid for h in e.hosts],
                "accounts": [a.uid for a in e.accounts],
                "recommended_scenario": e.recommended.key if e.recommended else None,
                "scenarios": [s.key for s in e.scenarios],
            }
            for e in context.entities
        ],
    }


def _handling_request(request, event: SecurityEvent, payload: HandleIn) -> HandlingRequest:
    """The body as ``handle_event`` takes it; an account the key cannot reach is a 422."""
    by_uid = {uid: pk for pk, uid in _uids(request).items()}
    actions = []
    for index, action in enumerate(payload.actions):
        unknown = [uid for uid in action.accounts if uid not in by_uid]
        if unknown:
            raise FieldsRefused(
                {f"actions[{index}].accounts": [f"No account {unknown[0]!r} in scope."]}
            )
        account_ids = tuple(by_uid[uid] for uid in action.accounts) or (event.account_id,)
        actions.append(
            ActionChoice(
                action.entity_type,
                action.value,
                action.scenario,
                account_ids,
                action.validity_days,
            )
        )
    if payload.use_recommended:
        chosen = {(a.entity_type, a.value) for a in actions}
        for entity in handling_context(request.scope, event).entities:
            if entity.recommended and (entity.entity_type, entity.value) not in chosen:
                actions.append(
                    ActionChoice(
                        entity.entity_type,
                        entity.value,
                        entity.recommended.key,
                        (event.account_id,),
                    )
                )
    notification = (
        NotificationChoice(
            tuple(payload.notification.channels),
            tuple(payload.notification.recipients),
            payload.notification.title,
        )
        if payload.notification
        else None
    )
    return HandlingRequest(
        status=payload.status.lower(),
        description=payload.description,
        actions=tuple(actions),
        notification=notification,
    )


class MessagePreviewOut(Schema):
    channels: list[str] = Field(description="The channels chosen, by their labels.")
    recipients: list[str]
    title: str
    body: str = Field(description="The message, as the notification would carry it.")


@router.post(
    "/events/{event_id}/handle/preview",
    response={200: MessagePreviewOut, 404: Detail, 422: Invalid},
)
def preview_handling_message(request, event_id: int, payload: HandleIn):
    """The Message Preview: the notification that handling the event with this
    body would send, rendered by the function that renders the sent one.
    Nothing is handled or sent."""
    event = get_in_scope_or_404(SecurityEvent, request.scope, id=event_id)
    handling = _handling_request(request, event, payload)
    notification = handling.notification
    chosen = notification.channels if notification else ()
    return {
        "channels": [label for value, label in Channel.choices if value in chosen],
        "recipients": list(notification.recipients) if notification else [],
        "title": notification.title if notification else "",
        "body": preview_message(handling_context(request.scope, event), handling),
    }


@router.post(
    "/events/{event_id}/handle",
    response={201: HandleOut, 403: Detail, 422: Invalid},
)
def handle(request, event_id: int, payload: HandleIn):
    """Set the event's status and create its handling policies, tasks and
    notifications in one transaction; the tasks run in the background."""
    event = get_in_scope_or_404(SecurityEvent, request.scope, id=event_id)
    request_ = _handling_request(request, event, payload)
    try:
        result = handle_event(request.scope, event, request_, cause=_cause(request))
    except HandlingError as exc:
        return Status(422, {"errors": {exc.field: [exc.message]}})
    except PermissionDenied as exc:
        return Status(403, {"detail": str(exc)})
    uids = _uids(request)
    policies = _policies(request).filter(id__in=[p.id for p in result.policies])
    tasks = _tasks(request).filter(policy__in=policies)
    return Status(
        201,
        {
            "event": result.event.id,
            "status": result.event.status,
            "policies": [_policy_out(p, uids) for p in policies],
            "tasks": [_task_out(t, uids) for t in tasks],
            "notifications": [n.id for n in result.notifications],
        },
    )


# --- the Disposal Center ---------------------------------------------------------


class CenterFilters(Schema):
    """The Disposal Center's filters, named as in its URL; its filter form reads them."""

    entity_type: str | None = Field(None, description="ip, file or process.")
    scenario: str | None = Field(None, description="A scenario key (GET /handling/scenarios).")
    account: str | None = Field(None, description="An account's id (GET /accounts).")
    created: str | None = Field(None, description="1d, 7d, 30d or 90d; none for any time.")
    start: str | None = Field(None, description="Created from this day, 2026-11-01.")
    end: str | None = Field(None, description="Created until this day.")


class PolicyFilters(CenterFilters):
    event: int | None = Field(None, description="Made by handling this event.")


class TaskFilters(CenterFilters):
    status: str | None = Field(None, description="One of the task statuses.")
    policy: str | None = Field(None, description="The tasks of this policy.")
    cloud_service: CloudService | None = None


def _center_filters(request) -> dict:
    """The center's filter form bound to the query string: its filters, or a
    422 naming each one it refused (the page leaves such a filter out)."""
    scope = request.scope
    form = CenterFilterForm(
        request.GET,
        scenarios=scenarios_for(scope),
        accounts=list(Account.objects.in_scope(scope)),
    )
    filters = form.filters()
    if form.errors:
        raise FieldsRefused(form_errors(form))
    return filters


def _with_task_relations(tasks):
    return tasks.select_related("asset", "policy__scenario")


@router.get(
    "/handling/policies",
    response={200: list[PolicyOut], 422: Invalid},
    tags=["disposal center"],
)
def list_policies(
    request, response: HttpResponse, filters: Query[PolicyFilters], paging: Query[OffsetQuery]
):
    """Handling Policies, newest first, with the center's filters; the total
    is in the X-Total-Count header."""
    policies = queries.filtered_policies(request.scope, _center_filters(request))
    if filters.event:
        policies = policies.filter(source_event_id=filters.event)
    page = offset_page(
        policies.select_related("scenario").prefetch_related("scope_accounts", "tasks"),
        paging,
        response,
    )
    uids = _uids(request)
    return [_policy_out(p, uids) for p in page]


@router.get(
    "/handling/tasks",
    response={200: list[TaskOut], 422: Invalid},
    tags=["disposal center"],
)
def list_tasks(
    request, response: HttpResponse, filters: Query[TaskFilters], paging: Query[OffsetQuery]
):
    """Handling Tasks, newest first, with the center's filters; the total is
    in the X-Total-Count header."""
    tasks = queries.filtered_tasks(request.scope, _center_filters(request))
    if filters.cloud_service:
        tasks = tasks.filter(cloud_service=filters.cloud_service)
    uids = _uids(request)
    return [_task_out(t, uids) for t in offset_page(_with_task_relations(tasks), paging, response)]


@router.get(
    "/handling/active-blocks",
    response={200: list[TaskOut], 422: Invalid},
    tags=["disposal center"],
)
def list_active_blocks(
    request, response: HttpResponse, filters: Query[CenterFilters], paging: Query[OffsetQuery]
):
    """What is in force in the cloud (the Active blocks tab), by account and
    cloud service; the total is in the X-Total-Count header."""
    tasks = queries.active_tasks(request.scope, _center_filters(request))
    uids = _uids(request)
    return [_task_out(t, uids) for t in offset_page(_with_task_relations(tasks), paging, response)]


class PolicyChangeIn(Schema):
    accounts: list[str] = Field(description="Uids of the accounts of its scope.")
    validity_days: int | None = Field(None, description="For scenarios that take a validity.")


# A HandlingError of edit_policy names the service's field; the API's is this one.
_POLICY_FIELDS = {"scope": "accounts"}


@router.get(
    "/handling/policies/{policy_id}",
    response={200: PolicyOut, 404: Detail},
    tags=["disposal center"],
)
def get_policy(request, policy_id: int):
    return _policy_out(
        get_in_scope_or_404(_policies(request), request.scope, id=policy_id), _uids(request)
    )


@router.patch(
    "/handling/policies/{policy_id}",
    response={200: PolicyOut, 403: Detail, 404: Detail, 422: Invalid},
    tags=["disposal center"],
)
def change_policy(request, policy_id: int, payload: PolicyChangeIn):
    """Change a policy's scope or validity (Edit in the Disposal Center): tasks
    of new accounts are made, those of removed accounts dropped or unblocked."""
    policy = get_for_change_or_404(
        HandlingPolicy.objects.select_related("scenario"),
        request.scope,
        queries.may_edit_policy,
        "Only analysts and administrators of every account of a policy may change it.",
        id=policy_id,
    )
    by_uid = {uid: pk for pk, uid in _uids(request).items()}
    unknown = [uid for uid in payload.accounts if uid not in by_uid]
    if unknown:
        return Status(422, {"errors": {"accounts": [f"No account {unknown[0]!r} in scope."]}})
    accounts = list(Account.objects.in_scope(request.scope).filter(uid__in=payload.accounts))
    try:
        services.edit_policy(
            request.scope,
            policy,
            accounts=accounts,
            validity_days=payload.validity_days,
            cause=_cause(request),
        )
    except HandlingError as exc:
        return Status(422, {"errors": {_POLICY_FIELDS.get(exc.field, exc.field): [exc.message]}})
    return _policy_out(_policies(request).get(id=policy_id), _uids(request))


@router.get("/handling/tasks/{task_id}", response=TaskDetailOut)
def get_task(request, task_id: int):
    task = get_in_scope_or_404(_tasks(request), request.scope, id=task_id)
    return {
        **_task_out(task, _uids(request)),
        "transitions": list(task.transitions.all()),
    }


def _task_action(request, task_id: int, action):
    task = get_in_scope_or_404(_tasks(request), request.scope, id=task_id)
    try:
        task = action(request.scope, task, cause=_cause(request))
    except services.TaskActionError as exc:
        raise HttpError(409, str(exc)) from None
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    task = _tasks(request).get(id=task.id)
    return _task_out(task, _uids(request))


@router.post("/handling/tasks/{task_id}/retry", response={200: TaskOut, 403: Detail, 409: Detail})
def retry_task(request, task_id: int):
    """Run a failed task again (or one whose policy changed since it ran)."""
    return _task_action(request, task_id, services.retry_task)


@router.post("/handling/tasks/{task_id}/unblock", response={200: TaskOut, 403: Detail, 409: Detail})
def unblock_task(request, task_id: int):
    """Lift a block in force."""
    return _task_action(request, task_id, services.unblock_task)


# --- the entity page -------------------------------------------------------------

ENTITY_EVENTS_SHOWN = 50


class EntityAttributeOut(Schema):
    name: str
    value: str


class EntitySummaryOut(Schema):
    type: str
    digest: str
    value: str
    accounts: list[str] = Field(description="Uids of the key's accounts that saw it.")
    first_seen_at: datetime
    last_seen_at: datetime
    malicious: bool = Field(description="Named as attacker, or malicious by threat intelligence.")
    named_attacker: bool
    intel_sources: list[str] = Field(
        description="Threat-intelligence sources calling it malicious."
    )
    attributes: list[EntityAttributeOut]
    alert_count: int
    events: list[int] = Field(
        description=f"The latest {ENTITY_EVENTS_SHOWN} events whose alerts name it."
    )
    policies: list[int] = Field(description="Handling policies of it.")


class EntityPath(Schema):
    entity_type: EntityType
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="Entity.digest_for(type, value).")


@router.get(
    "/entities/{entity_type}/{digest}",
    response={200: EntitySummaryOut, 404: Detail, 422: Invalid},
    tags=["alerts"],
)
def get_entity(request, path: Path[EntityPath]):
    """An IP, file, process, ... across the key's accounts (the entity page),
    named by its type and digest as alerts and events list them."""
    scope = request.scope
    summary = entity_summary_or_404(scope, path.entity_type, path.digest)
    alerts = related_alerts(scope, summary)
    events = SecurityEvent.objects.in_scope(scope).filter(
        id__in=EventAlert.objects.filter(alert__in=alerts.values("id")).values("event_id")
    )
    policies = HandlingPolicy.objects.in_scope(scope).filter(
        entity_type=summary.entity_type, entity_digest=summary.digest
    )
    return {
        "type": summary.entity_type,
        "digest": summary.digest,
        "value": summary.value,
        "accounts": [a.uid for a in summary.accounts],
        "first_seen_at": summary.first_seen_at,
        "last_seen_at": summary.last_seen_at,
        "malicious": summary.malicious,
        "named_attacker": summary.named_attacker,
        "intel_sources": summary.intel_sources,
        "attributes": [{"name": n, "value": v} for n, v in summary.attributes],
        "alert_count": alerts.count(),
        "events": list(
            events.order_by("-last_occurred_at", "-id").values_list("id", flat=True)[
                :ENTITY_EVENTS_SHOWN
            ]
        ),
        "policies": list(policies.order_by("-created_at", "-id").values_list("id", flat=True)),
    }
