"""Security events over the API, as the Security Event Handling pages show
them: the list with the page's filters, its counts, an event's details,
alerts, attack timeline, entities and tracing graph, and Excel exports; and
aggregation rules: list, read, create, update, enable/disable, delete.

Every event is read within the key's scope: one outside it is a 404.
"""

import json
from datetime import date, datetime
from typing import Any

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from alerts.api import AlertOut, AlertPageOut, AssetOut, alert_out, asset_out
from alerts.models import Alert
from events import export, queries, rules, whitelisting
from events.entities import entities_of_events
from events.forms import EventFilterForm
from events.models import AggregationRule, ExportJob, ExportStatus, SecurityEvent
from events.tracing.tracer import TooManyEvents, parse_event_ids, trace_event, trace_events
from events.views import TIMELINE_LIMIT
from secops.api_common import (
    CursorQuery,
    FieldsRefused,
    Message,
    Refused,
    cleaned_filters,
    cursor_page_or_422,
)
from secops.models import Organisation
from secops.params import MAX_PAGE_NUMBER
from secops.scope import get_in_scope_or_404, require
from whitelist.api import (
    WhitelistGroupIn,
    WhitelistGroupOut,
    WhitelistInvalid,
    condition_out,
    create_group_answer,
)
from whitelist.services import object_values

router = Router(tags=["aggregation rules"])


class RuleOut(Schema):
    id: int
    key: str
    predefined: bool
    name: str
    description: str
    enabled: bool
    match_sources: list[str]
    match_types: list[str]
    match_levels: list[int]
    name_pattern: str
    group_by: list[str]
    window_seconds: int
    event_name_template: str
    event_description_template: str
    risk: int | None


class RuleIn(Schema):
    name: str
    description: str = ""
    enabled: bool = True
    match_sources: list[str] = Field(default_factory=list)
    match_types: list[str] = Field(default_factory=list)
    match_levels: list[int] = Field(default_factory=list)
    name_pattern: str = ""
    group_by: list[str]
    window_seconds: int = 24 * 3600
    event_name_template: str
    event_description_template: str = ""
    risk: int | None = None


class EnabledIn(Schema):
    enabled: bool


def _out(rule: AggregationRule) -> dict:
    """A rule read by ``_rules``: "enabled" is whether it applies to the caller's organisation."""
    return {
        **{f: getattr(rule, f) for f in RuleOut.model_fields if hasattr(rule, f)},
        "predefined": rule.is_predefined,
        "enabled": rule.enabled_for_organisation,
    }


def _rules(request):
    scope = request.scope
    return AggregationRule.objects.in_scope(scope).with_enabled_for(scope.organisation_id)


def _get(request, rule_id: int) -> AggregationRule:
    return get_object_or_404(_rules(request), id=rule_id)


def _organisation(request) -> Organisation:
    return Organisation.objects.get(id=request.scope.organisation_id)


def _require_organisation_key(request) -> None:
    """Custom rules belong to the whole organisation: only an organisation-wide
    key may change them; an account's key reads them."""
    if not request.scope.may_manage_organisation():
        raise HttpError(
            403, "Aggregation rules apply to the whole organisation: use an organisation API key."
        )


def _spec(payload: RuleIn) -> rules.AggregationRuleSpec:
    return rules.AggregationRuleSpec(**payload.dict())


@router.get("/aggregation-rules", response=list[RuleOut])
def list_rules(request):
    return [_out(rule) for rule in _rules(request)]


@router.get("/aggregation-rules/{rule_id}", response=RuleOut)
def get_rule(request, rule_id: int):
    return _out(_get(request, rule_id))


@router.post("/aggregation-rules", response={201: RuleOut, 422: dict})
def create_rule(request, payload: RuleIn):
    _require_organisation_key(request)
    try:
        rule = rules.save_custom_rule(_organisation(request), _spec(payload))
    except rules.RuleValidationError as exc:
        return Status(422, {"errors": exc.errors})
    return Status(201, _out(_get(request, rule.id)))


@router.put("/aggregation-rules/{rule_id}", response={200: RuleOut, 422: dict})
def update_rule(request, rule_id: int, payload: RuleIn):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    try:
        rules.save_custom_rule(_organisation(request), _spec(payload), rule)
    except rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    except rules.RuleValidationError as exc:
        return Status(422, {"errors": exc.errors})
    return Status(200, _out(_get(request, rule_id)))


@router.post("/aggregation-rules/{rule_id}/enabled", response=RuleOut)
def set_enabled(request, rule_id: int, payload: EnabledIn):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    rules.set_rule_enabled(rule, payload.enabled, _organisation(request))
    return _out(_get(request, rule_id))


@router.delete("/aggregation-rules/{rule_id}", response={204: None})
def delete_rule(request, rule_id: int):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    try:
        rules.delete_custom_rule(rule)
    except rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(204, None)


# --- Security Event Handling: the list ---------------------------------------------

EVENT_TAGS = ["events"]


class EventFilterQuery(Schema):
    """The filters of the Security Event Handling list, named as in its URL;
    the page's filter form reads them, so both refuse the same values."""

    occurred: str | None = Field(
        None, description="Occurred Within: 1d, 7d (default), 30d, 90d, 180d or custom."
    )
    start: str | None = Field(None, description="With occurred=custom: the first day, 2026-11-01.")
    end: str | None = Field(None, description="With occurred=custom: the last day.")
    risk: list[str] = Field(
        default_factory=list, description="Repeat for several: 3 high, 2 medium, 1 low."
    )
    status: list[str] = Field(
        default_factory=list,
        description="Repeat for several: unhandled, handling, handled, failed.",
    )
    name: str | None = Field(None, description="Part of the event's name.")
    event_id: str | None = Field(None, description="One event's ID.")
    asset: str | None = Field(None, description="An affected asset's instance ID or UUID.")
    sort: str | None = Field(None, description=", ".join(queries.SORTS) + " (default -last).")


class EventOut(Schema):
    id: int
    name: str
    description: str
    risk: int = Field(description="1 low, 2 medium, 3 high.")
    risk_label: str
    status: str
    account: str = Field(description="The account's uid.")
    region: str
    rule: int = Field(description="The aggregation rule that made it.")
    first_occurred_at: datetime
    last_occurred_at: datetime
    alert_count: int
    continues: int | None = Field(description="The full event this one continues.")
    created_at: datetime
    updated_at: datetime


class EventPageOut(Schema):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class RiskCountOut(Schema):
    risk: int
    label: str
    count: int


class StatusCountOut(Schema):
    status: str
    label: str
    count: int


class DayCountOut(Schema):
    day: date
    high: int
    medium: int
    low: int


class EventCountsOut(Schema):
    total: int
    risk: list[RiskCountOut]
    status: list[StatusCountOut]
    new_per_day: list[DayCountOut] = Field(
        description="Events that began on each day of the range, per risk (the page's chart)."
    )


def _filtered(request) -> tuple[dict, Any]:
    filters = cleaned_filters(EventFilterForm(request.GET))
    return filters, queries.filtered_events(request.scope, filters)


def _event_out(event: SecurityEvent) -> dict:
    """An event read with ``select_related("account")``."""
    return {
        "id": event.id,
        "name": event.name,
        "description": event.description,
        "risk": event.risk,
        "risk_label": event.get_risk_display(),
        "status": event.status,
        "account": event.account.uid,
        "region": event.region,
        "rule": event.rule_id,
        "first_occurred_at": event.first_occurred_at,
        "last_occurred_at": event.last_occurred_at,
        "alert_count": event.alert_count,
        "continues": event.continues_id,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
    }


@router.get("/events", response={200: EventPageOut, 422: Refused}, tags=EVENT_TAGS)
def list_events(request, filters: Query[EventFilterQuery], paging: Query[CursorQuery]):
    """The events of the key's accounts that the filters match, in the chosen
    order; read page after page with `cursor`. `GET /events/counts` counts them."""
    chosen, events = _filtered(request)
    ordering = (queries.SORTS[chosen["sort"]][0], "-id")
    page = cursor_page_or_422(events.select_related("account"), ordering, paging)
    return {"items": [_event_out(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/events/counts", response={200: EventCountsOut, 422: Refused}, tags=EVENT_TAGS)
def count_events(request, filters: Query[EventFilterQuery]):
    """What the list's filters match: counts by risk and status, and new events per day."""
    chosen, events = _filtered(request)
    tallies = queries.event_tallies(events)
    counts = queries.event_counts(tallies)
    return {
        "total": sum(n for *_, n in tallies),
        "risk": [
            {"risk": level.value, "label": level.label, "count": n} for level, n in counts["risk"]
        ],
        "status": [
            {"status": status.value, "label": status.label, "count": n}
            for status, n in counts["status"]
        ],
        "new_per_day": queries.new_events_per_day(tallies, chosen["start"], chosen["end"]),
    }


# --- one event ---------------------------------------------------------------------


class StatusChangeOut(Schema):
    from_status: str
    to_status: str
    cause: str = Field(description="user, api_key, automated_rule, playbook_run, pipeline, system.")
    changed_by: str | None = Field(description="The user's name, for a change by a user.")
    note: str
    at: datetime


class EventDetailOut(EventOut):
    why: str = Field(description="Why its alerts are together.")
    affected_assets: list[AssetOut]
    continuations: list[int] = Field(description="Events that continue this one.")
    history: list[StatusChangeOut]


class TimelineStageOut(Schema):
    tactic: str
    order: int | None = Field(description="Its place in the ATT&CK kill chain, 1 to 14.")
    alerts: list[AlertOut]


class TimelineOut(Schema):
    stages: list[TimelineStageOut]
    truncated: bool = Field(description=f"The event has more than {TIMELINE_LIMIT} alerts.")
    limit: int


class EventEntityOut(Schema):
    type: str
    value: str
    digest: str = Field(description="Names the entity in /api/v1/entities/{type}/{digest}.")
    account: str
    roles: list[str]
    alert_count: int = Field(description="How many of the event's alerts name it.")
    malicious: bool


def _event(request, event_id: int) -> SecurityEvent:
    return get_in_scope_or_404(
        SecurityEvent.objects.select_related("account"), request.scope, id=event_id
    )


def _alerts_of(request, event: SecurityEvent):
    return Alert.objects.in_scope(request.scope).filter(event_links__event=event)


@router.get(
    "/events/{event_id}/alerts",
    response={200: AlertPageOut, 404: Message, 422: Refused},
    tags=EVENT_TAGS,
)
def list_event_alerts(request, event_id: int, paging: Query[CursorQuery]):
    """The event's alerts, newest first (an event holds up to 10,000)."""
    alerts = _alerts_of(request, _event(request, event_id)).select_related("account", "asset")
    page = cursor_page_or_422(alerts, ("-occurred_at", "-id"), paging)
    return {"items": [alert_out(a) for a in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/events/{event_id}/timeline", response={200: TimelineOut, 404: Message}, tags=EVENT_TAGS
)
def event_timeline(request, event_id: int):
    """The Attack Timeline: the alerts in time order, in runs of one ATT&CK tactic."""
    alerts = list(
        _alerts_of(request, _event(request, event_id))
        .select_related("account", "asset")
        .order_by("occurred_at", "id")[: TIMELINE_LIMIT + 1]
    )
    stages = queries.timeline_stages(alerts[:TIMELINE_LIMIT])
    return {
        "stages": [
            {
                "tactic": stage["tactic"],
                "order": stage["order"],
                "alerts": [alert_out(a) for a in stage["alerts"]],
            }
            for stage in stages
        ],
        "truncated": len(alerts) > TIMELINE_LIMIT,
        "limit": TIMELINE_LIMIT,
    }


@router.get(
    "/events/{event_id}/entities",
    response={200: list[EventEntityOut], 404: Message},
    tags=EVENT_TAGS,
)
def list_event_entities(request, event_id: int):
    """What the event's alerts name, by type then value, with their roles."""
    event = _event(request, event_id)
    found = entities_of_events(request.scope, [event.id])[event.id]
    uids = {event.account_id: event.account.uid}
    return [
        {
            "type": item.entity.type,
            "value": item.entity.value,
            "digest": item.entity.digest,
            "account": uids.get(item.entity.account_id, ""),
            "roles": list(item.roles),
            "alert_count": item.alert_count,
            "malicious": item.entity.malicious,
        }
        for item in found
    ]


# --- Incident Source Tracing -------------------------------------------------------


class TracedHostOut(Schema):
    uuid: str
    name: str


class TracingWindowOut(Schema):
    start: datetime | None
    end: datetime | None


class TracedEventOut(Schema):
    id: int
    name: str
    url: str = Field(description="The event's page in the console.")
    available: bool
    reason: str
    hosts: list[TracedHostOut]
    window: TracingWindowOut


class TracingNodeOut(Schema):
    id: str
    type: str
    label: str
    malicious: bool
    attributes: dict[str, Any]
    first_seen: datetime | None
    log_records: list[str] = Field(description="References of the log records behind it.")
    log_record_count: int
    alerts: list[int]
    alert_count: int
    events: list[int] | None = Field(None, description="On a graph of several events.")


class TracingEdgeOut(Schema):
    id: str
    source: str
    target: str
    relation: str
    time: datetime | None
    count: int
    log_records: list[str]


class TracingLogsReadOut(Schema):
    read: int
    limit: int
    truncated: bool
    behind_graph: int


class TracingLegendOut(Schema):
    type: str
    label: str


class TracingJoinOut(Schema):
    node: str
    label: str
    events: list[int]


class TracingOut(Schema):
    available: bool
    reason: str
    events: list[TracedEventOut]
    nodes: list[TracingNodeOut]
    edges: list[TracingEdgeOut]
    truncated: bool
    node_total: int
    node_limit: int
    log_records: TracingLogsReadOut
    legend: list[TracingLegendOut]
    joins: list[TracingJoinOut] = Field(description="Nodes shared by several events.")


class TracingLogOut(Schema):
    ref: str
    time: datetime
    host: str
    log_type: str
    fields: dict[str, Any] = Field(description="The record's fields, as received.")


class TracingEventsQuery(Schema):
    ids: list[str] = Field(description="Event ids: ids=1,2,3 or ids=1&ids=2.")


class TracingLogsQuery(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE_NUMBER)
    node: str = Field("", max_length=512, description="A node's id: only the records behind it.")


class TracingLogsOut(Schema):
    items: list[TracingLogOut]
    page: int
    has_next: bool


@router.get(
    "/events/tracing",
    response={200: TracingOut, 404: Message, 422: Refused},
    tags=EVENT_TAGS,
)
def trace_several_events(request, chosen: Query[TracingEventsQuery]):
    """Several events on one diagram, joined where their alerts name the same
    IP, file, process, domain or user. Any id outside the key's scope is a 404."""
    try:
        event_ids = parse_event_ids(request.GET.getlist("ids"))
    except ValueError as exc:
        raise FieldsRefused({"ids": [str(exc)]}) from None
    if not event_ids:
        raise FieldsRefused({"ids": ["Name at least one event."]})
    found = SecurityEvent.objects.in_scope(request.scope).filter(id__in=event_ids).in_bulk()
    if len(found) != len(event_ids):
        raise HttpError(404, "No security event matches the given query.")
    try:
        graph = trace_events([found[i] for i in event_ids], request.scope)
    except TooManyEvents as exc:
        raise FieldsRefused({"ids": [str(exc)]}) from None
    return graph.as_dict()


@router.get("/events/{event_id}/tracing", response={200: TracingOut, 404: Message}, tags=EVENT_TAGS)
def trace_one_event(request, event_id: int):
    """The Incident Source Tracing graph of the event, as the page draws it."""
    return trace_event(_event(request, event_id), request.scope).as_dict()


@router.get(
    "/events/{event_id}/tracing/logs",
    response={200: TracingLogsOut, 404: Message, 422: Refused},
    tags=EVENT_TAGS,
)
def event_tracing_logs(request, event_id: int, chosen: Query[TracingLogsQuery]):
    """One page of the log records behind the event's graph."""
    graph = trace_event(_event(request, event_id), request.scope)
    shown = graph.preview(chosen.page, chosen.node or None)
    return {
        "items": [{**row, "fields": json.loads(row["fields"])} for row in shown.items],
        "page": shown.number,
        "has_next": shown.has_next,
    }


# --- Excel exports -----------------------------------------------------------------


class ExportOut(Schema):
    id: int
    status: str = Field(description="pending, running, done or failed.")
    progress: int = Field(description="Percent.")
    error: str
    row_count: int = Field(description="Events in the file.")
    filters: dict[str, Any] = Field(description="The filters, with the date range resolved.")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime = Field(description="The file is served until then.")
    download: str | None = Field(description="Where to fetch the file once it is done.")


def _export_out(job: ExportJob) -> dict:
    ready = job.status == ExportStatus.DONE and not export.is_expired(job)
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "error": job.error,
        "row_count": job.row_count,
        "filters": job.filters,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "download": reverse("api:download_export", args=[job.id]) if ready else None,
    }


def _export_job(request, export_id: int) -> ExportJob:
    return export.get_export_job_for_api_key_or_404(request.scope, request.api_key, export_id)


@router.post(
    "/events/exports",
    response={202: ExportOut, 403: Message, 422: Refused},
    tags=EVENT_TAGS,
)
def start_export(request, filters: Query[EventFilterQuery]):
    """Export the events the list's filters (in the query string) match to
    Excel, at most 1,000: a job that a worker runs. Poll it, then download."""
    require(request.scope.may_handle(), "Only analysts and administrators can export events.")
    chosen = cleaned_filters(EventFilterForm(request.GET))
    try:
        job = export.start_export(api_key=request.api_key, scope=request.scope, filters=chosen)
    except export.ExportRefused as refusal:
        raise FieldsRefused({"filters": [str(refusal)]}) from None
    job.refresh_from_db()  # without a broker the export ran already
    return Status(202, _export_out(job))


@router.get("/events/exports/{export_id}", response={200: ExportOut, 404: Message}, tags=EVENT_TAGS)
def get_export(request, export_id: int):
    """An export this key started: its progress, and the download once done."""
    return _export_out(_export_job(request, export_id))


@router.get(
    "/events/exports/{export_id}/download",
    response={404: Message, 409: Message, 410: Message},
    url_name="download_export",
    tags=EVENT_TAGS,
    openapi_extra={
        "responses": {
            "200": {
                "description": "The workbook.",
                "content": {
                    export.XLSX_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
def download_export(request, export_id: int):
    """The Excel file of a finished export: 409 while it runs, 410 once expired."""
    job = _export_job(request, export_id)
    if job.is_active:
        raise HttpError(409, "The export is not finished yet: download it once it is done.")
    if job.status == ExportStatus.FAILED:
        raise HttpError(409, f"The export failed and has no file: {job.error}")
    try:
        handle = export.open_export_file(job)
    except export.ExportGone as gone:
        raise HttpError(410, str(gone)) from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=export.download_name(job),
        content_type=export.XLSX_CONTENT_TYPE,
    )


# --- Add to Whitelist ----------------------------------------------------------------


class WhitelistDraftOut(Schema):
    group: WhitelistGroupIn = Field(
        description="The group the console's Add to Whitelist starts from: limited to the "
        "event's account, matching what its alerts share. Edit it, then POST it to "
        "/events/{event_id}/whitelist-groups."
    )
    suggestions: dict[str, list[str]] = Field(
        description="Values of the event's alerts by object label, for editing the conditions."
    )


@router.get(
    "/events/{event_id}/whitelist-draft",
    response={200: WhitelistDraftOut, 404: Message},
    tags=EVENT_TAGS,
)
def whitelist_draft(request, event_id: int):
    """Add to Whitelist: a whitelist group drafted from the event's latest
    alerts, as the console's editor opens it. Nothing is stored."""
    event = _event(request, event_id)
    facts = whitelisting.latest_alert_facts(event)
    draft = whitelisting.draft_for_event(event, facts)
    return {
        "group": {
            "name": draft.name,
            "scenario": draft.scenario,
            "description": draft.description,
            "enabled": draft.enabled,
            "expires_at": draft.expires_at,
            "accounts": [event.account.uid] if draft.account_ids else [],
            "is_global": draft.is_global,
            "conditions": [condition_out(c) for c in draft.conditions],
        },
        "suggestions": object_values(facts),
    }


@router.post(
    "/events/{event_id}/whitelist-groups",
    response={201: WhitelistGroupOut, 403: Message, 404: Message, 422: WhitelistInvalid},
    tags=EVENT_TAGS,
)
def add_to_whitelist(request, event_id: int, payload: WhitelistGroupIn):
    """Add to Whitelist: create the group (typically the edited draft) as
    POST /whitelist/groups does, remembering the event it was made from
    (its `source_event`). The event itself stays as it is."""
    event = _event(request, event_id)
    return create_group_answer(
        request, payload, on_saved=lambda group: whitelisting.record_origin(group, event)
    )


# Last: django-ninja makes no integer converter of {event_id}, so this path
# would take /events/tracing and /events/exports if it came before them.
@router.get("/events/{event_id}", response={200: EventDetailOut, 404: Message}, tags=EVENT_TAGS)
def get_event(request, event_id: int):
    """Incident Information: the event, its assets, why its alerts are together
    and its status history."""
    event = get_in_scope_or_404(
        SecurityEvent.objects.select_related("account", "rule"), request.scope, id=event_id
    )
    return {
        **_event_out(event),
        "why": queries.grouping_explanation(event),
        "affected_assets": [asset_out(a) for a in event.affected_assets.order_by("name", "id")],
        "continuations": list(event.continuations.order_by("id").values_list("id", flat=True)),
        "history": [
            {
                "from_status": change.from_status,
                "to_status": change.to_status,
                "cause": change.cause,
                "changed_by": change.changed_by.get_username() if change.changed_by else None,
                "note": change.note,
                "at": change.created_at,
            }
            for change in event.status_changes.select_related("changed_by")
        ],
    }
