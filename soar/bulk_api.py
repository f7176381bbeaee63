"""Bulk handling over the API: start a job on a list of events or on every
event the Security Event Handling list's filters match, poll it, and read
the events it could not handle.

The job belongs to the API key that started it, as an Excel export does: a
job of a user or of another key is a 404. The work, the rules and the
refusals are those of the list's Bulk handling (``soar.bulk``).
"""

from datetime import datetime
from typing import Any, Literal

from django.http import HttpResponse, QueryDict
from ninja import Query, Router, Schema, Status
from pydantic import Field

from events.api import EventFilterQuery
from events.forms import EventFilterForm
from secops.api_common import (
    FieldsRefused,
    Message,
    OffsetQuery,
    Refused,
    cleaned_filters,
    form_errors,
    offset_page,
)
from secops.scope import require
from soar import bulk
from soar.forms import ALL_MATCHING, PREFIX, SELECTED, BulkHandlingForm
from soar.models import BulkAction, BulkHandlingJob

router = Router(tags=["bulk handling"])


class BulkHandlingIn(Schema):
    action: str = Field(description=", ".join(BulkAction.values) + ".")
    status: str = Field("", description="With set_status: unhandled, handling or handled.")
    description: str = Field("", description="Recorded with each event's status change.")
    playbook: int | None = Field(None, description="With run_playbook: the playbook's id.")
    target: Literal["selected", "all"] = Field(
        description="selected: the events of `event_ids`; all: every event the list's filters "
        "(in the query string) match, at most 10,000."
    )
    event_ids: list[int] = Field(default_factory=list, description="With target=selected.")


class BulkItemOut(Schema):
    event: int
    event_name: str
    outcome: str = Field(description="handled, failed or skipped.")
    message: str
    at: datetime


class BulkJobOut(Schema):
    id: int
    status: str = Field(description="pending, running, done or failed.")
    progress: int = Field(description="Percent.")
    error: str
    summary: str = Field(description='What the job does, e.g. "Set 3 events to Handled".')
    action: str
    status_to_set: str
    description: str
    playbook: int | None
    selection: str = Field(description="selected or filter.")
    filters: dict[str, Any] = Field(description="With selection=filter: the list's filters.")
    event_count: int
    handled: int
    failed: int
    skipped: int
    left_out: int = Field(
        0, description="Selected ids that were no events of the key (only when started)."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime


def _job_out(job: BulkHandlingJob, left_out: int = 0) -> dict:
    tally = bulk.tally(job)
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "error": job.error,
        "summary": bulk.describe_job(job),
        "action": job.action,
        "status_to_set": job.target_status,
        "description": job.description,
        "playbook": job.playbook_id,
        "selection": job.selection,
        "filters": job.filters,
        "event_count": job.event_count,
        "handled": tally.handled,
        "failed": tally.failed,
        "skipped": tally.skipped,
        "left_out": left_out,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
    }


def _job(request, job_id: int) -> BulkHandlingJob:
    return bulk.get_bulk_job_for_api_key_or_404(request.scope, request.api_key, job_id)


def _form(request, payload: BulkHandlingIn) -> BulkHandlingForm:
    """The list's own form, bound to the body: it refuses what the page refuses."""
    data = QueryDict(mutable=True)
    for name in ("action", "status", "description", "target"):
        data[f"{PREFIX}-{name}"] = getattr(payload, name)
    if payload.playbook is not None:
        data[f"{PREFIX}-playbook"] = str(payload.playbook)
    form = BulkHandlingForm(data, scope=request.scope)
    if not form.is_valid():
        raise FieldsRefused(form_errors(form))
    return form


def _plan(request, payload: BulkHandlingIn) -> bulk.BulkPlan:
    if payload.target == ALL_MATCHING:
        filters = cleaned_filters(EventFilterForm(request.GET))
        try:
            return bulk.plan_matching(request.scope, filters)
        except bulk.BulkRefused as refusal:
            raise FieldsRefused({"filters": [str(refusal)]}) from None
    try:
        return bulk.plan_selected(request.scope, payload.event_ids)
    except bulk.BulkRefused as refusal:
        raise FieldsRefused({"event_ids": [str(refusal)]}) from None


@router.post("/bulk-handling", response={202: BulkJobOut, 403: Message, 422: Refused})
def start_bulk_job(request, payload: BulkHandlingIn, filters: Query[EventFilterQuery]):
    """Handle many events at once, in the background: set their status, handle
    each with its recommended handling policies, or run a playbook on each.
    The events are resolved now: the selected ones of the key's accounts, or
    every one the filters in the query string match. Poll the job for its progress."""
    require(request.scope.may_handle(), "Only analysts and administrators handle events.")
    handling = _form(request, payload).bulk_request()
    try:
        handling.check()
    except bulk.BulkRefused as refusal:
        raise FieldsRefused({"action": [str(refusal)]}) from None
    if payload.target == SELECTED and not payload.event_ids:
        raise FieldsRefused({"event_ids": ["Name at least one event."]})
    plan = _plan(request, payload)
    try:
        job = bulk.start_bulk_handling(
            api_key=request.api_key, scope=request.scope, plan=plan, request=handling
        )
    except bulk.BulkRefused as refusal:
        field = "playbook" if handling.action == BulkAction.RUN_PLAYBOOK else "action"
        raise FieldsRefused({field: [str(refusal)]}) from None
    job.refresh_from_db()  # without a broker the job ran already
    return Status(202, _job_out(job, plan.left_out))


@router.get("/bulk-handling/{bulk_handling_id}", response={200: BulkJobOut, 404: Message})
def get_bulk_handling(request, bulk_handling_id: int):
    """A job this key started: its status, progress and counts by outcome."""
    return _job_out(_job(request, bulk_handling_id))


@router.get(
    "/bulk-handling/{bulk_handling_id}/failures",
    response={200: list[BulkItemOut], 404: Message, 422: Refused},
)
def list_bulk_handling_failures(
    request, bulk_handling_id: int, response: HttpResponse, paging: Query[OffsetQuery]
):
    """The events the job could not handle, in the order it tried them, each
    with the reason; the total is in the X-Total-Count header."""
    job = _job(request, bulk_handling_id)
    return [
        {
            "event": item.event_id,
            "event_name": item.event_name,
            "outcome": item.outcome,
            "message": item.message,
            "at": item.created_at,
        }
        for item in offset_page(bulk.failures(job), paging, response)
    ]
