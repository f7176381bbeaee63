"""SOAR over the API: playbooks and their versions, running one on an event,
runs with their steps (approve, reject, rerun), automated response rules with
their dry run, and the organisation's kill switch.

Playbooks and rules belong to an organisation: changing them needs an
organisation key (its global administrator), as on the pages.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AwareDatetime, Field

from events.models import SecurityEvent
from secops.api_common import TOTAL_HEADER
from secops.scope import get_in_scope_or_404
from soar import automation, runs
from soar.models import (
    AutomationRule,
    Playbook,
    PlaybookRun,
    RunStatus,
)
from soar.playbooks import PlaybookError, PlaybookSpec, save_playbook

router = Router(tags=["soar"])

MAX_PAGE = 500


class PlaybookStepIn(Schema):
    kind: str
    name: str = ""
    params: dict = Field(default_factory=dict)
    timeout_seconds: int | None = None


class PlaybookIn(Schema):
    name: str
    description: str = ""
    steps: list[PlaybookStepIn]


class PlaybookOut(Schema):
    id: int
    key: str
    name: str
    description: str
    built_in: bool
    enabled: bool
    version: int | None
    steps: list[dict]


class PlaybookVersionOut(Schema):
    number: int
    steps: list[dict]
    created_at: datetime


class PlaybookRunIn(Schema):
    event: int


class RunStepOut(Schema):
    index: int
    kind: str
    name: str
    status: str
    message: str
    output: dict
    started_at: datetime
    finished_at: datetime | None


class PlaybookRunOut(Schema):
    id: int
    event: int
    playbook: int
    version: int
    trigger: str
    rule: int | None
    status: str
    error: str
    created_at: datetime
    finished_at: datetime | None
    steps: list[RunStepOut]


class AutomationRuleIn(Schema):
    name: str
    description: str = ""
    position: int = 0
    enabled: bool = True
    expires_at: AwareDatetime | None = None
    trigger: str = Field(
        description="event_created, alerts_added, status_changed or alert_created."
    )
    conditions: dict = Field(
        default_factory=dict,
        description='{"all"|"any": [{"field", "operator", "value"} or nested groups]}.',
    )
    action: str = Field(description="run_playbook, set_status or set_risk.")
    playbook: int | None = None
    parameters: dict = Field(default_factory=dict)
    require_approval: bool = False
    max_runs_per_minute: int = Field(30, ge=1, le=10_000)


class AutomationRuleOut(AutomationRuleIn):
    id: int


class AutomationDryRunOut(Schema):
    matched: int
    examined: int
    capped: bool
    sample: list[int]


class AutomationSwitchIn(Schema):
    paused: bool


class SoarErrors(Schema):
    errors: dict[str, list[str]]


class SoarBodyErrors(Schema):
    detail: list[dict]


SoarInvalid = SoarErrors | SoarBodyErrors


class SoarDetail(Schema):
    detail: str


def _require_organisation(request) -> None:
    if not request.scope.may_manage_organisation():
        raise HttpError(403, "Only an organisation key changes playbooks and rules.")


def _playbook_out(playbook: Playbook) -> dict:
    version = playbook.current_version
    return {
        "id": playbook.pk,
        "key": playbook.key,
        "name": playbook.name,
        "description": playbook.description,
        "built_in": playbook.built_in,
        "enabled": playbook.enabled,
        "version": version.number if version else None,
        "steps": version.steps if version else [],
    }


def _run_out(run: PlaybookRun) -> dict:
    return {
        "id": run.pk,
        "event": run.event_id,
        "playbook": run.playbook_id,
        "version": run.version.number,
        "trigger": run.trigger,
        "rule": run.rule_id,
        "status": run.status,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "steps": list(run.steps.all()),
    }


def _rule_out(rule: AutomationRule) -> dict:
    return {"id": rule.pk, **automation.rule_data(rule)}


def _playbook(request, playbook_id: int) -> Playbook:
    return get_in_scope_or_404(
        Playbook.objects.select_related("current_version"), request.scope, id=playbook_id
    )


def _run(request, run_id: int) -> PlaybookRun:
    return get_in_scope_or_404(
        PlaybookRun.objects.select_related("version"), request.scope, id=run_id
    )


def _rules(request):
    return AutomationRule.objects.filter(organisation_id=request.scope.organisation_id)


# --- playbooks -------------------------------------------------------------------


@router.get("/playbooks", response=list[PlaybookOut])
def list_playbooks(request):
    return [
        _playbook_out(p)
        for p in Playbook.objects.in_scope(request.scope).select_related("current_version")
    ]


@router.get("/playbooks/{playbook_id}", response=PlaybookOut)
def get_playbook(request, playbook_id: int):
    return _playbook_out(_playbook(request, playbook_id))


@router.get("/playbooks/{playbook_id}/versions", response=list[PlaybookVersionOut])
def list_versions(request, playbook_id: int):
    return list(_playbook(request, playbook_id).versions.all())


def _save(request, payload: PlaybookIn, playbook=None):
    spec = PlaybookSpec(payload.name, payload.description, [s.dict() for s in payload.steps])
    try:
        saved = save_playbook(request.scope, spec, user=None, playbook=playbook)
    except PlaybookError as exc:
        return Status(422, {"errors": {exc.field: [exc.message]}})
    return _playbook_out(saved)


@router.post("/playbooks", response={201: PlaybookOut, 403: SoarDetail, 422: SoarInvalid})
def create_playbook(request, payload: PlaybookIn):
    _require_organisation(request)
    result = _save(request, payload)
    return result if isinstance(result, Status) else Status(201, result)


@router.put(
    "/playbooks/{playbook_id}", response={200: PlaybookOut, 403: SoarDetail, 422: SoarInvalid}
)
def update_playbook(request, playbook_id: int, payload: PlaybookIn):
    playbook = _playbook(request, playbook_id)
    _require_organisation(request)
    if playbook.built_in:
        raise HttpError(403, "Built-in playbooks cannot be changed.")
    return _save(request, payload, playbook)


@router.post(
    "/playbooks/{playbook_id}/runs",
    response={201: PlaybookRunOut, 403: SoarDetail, 409: SoarDetail},
)
def run_playbook(request, playbook_id: int, payload: PlaybookRunIn):
    """Run the playbook on an event of the key's scope."""
    playbook = _playbook(request, playbook_id)
    event = get_in_scope_or_404(SecurityEvent, request.scope, id=payload.event)
    try:
        with transaction.atomic():
            run = runs.start_run_by_user(request.scope, playbook, event, user=None, api=True)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    except runs.RunError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, _run_out(_run(request, run.pk)))


# --- runs ------------------------------------------------------------------------


@router.get("/playbook-runs", response={200: list[PlaybookRunOut], 422: SoarBodyErrors})
def list_runs(
    request,
    response: HttpResponse,
    status: RunStatus | None = None,
    limit: int = 100,
    offset: int = 0,
):
    """Runs, newest first (``?status=awaiting_approval``: the Approvals page).
    The total is in the X-Total-Count header."""
    limit, offset = max(1, min(limit, MAX_PAGE)), max(0, min(offset, 1_000_000))
    qs = PlaybookRun.objects.in_scope(request.scope).select_related("version")
    if status:
        qs = qs.filter(status=status)
    response[TOTAL_HEADER] = str(qs.count())
    return [_run_out(r) for r in qs.prefetch_related("steps")[offset : offset + limit]]


@router.get("/playbook-runs/{run_id}", response=PlaybookRunOut)
def get_run(request, run_id: int):
    return _run_out(_run(request, run_id))


def _decide(request, run_id: int, approve: bool):
    run = _run(request, run_id)
    try:
        run = runs.decide(request.scope, run, approve=approve, user=None)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    except runs.RunError as exc:
        raise HttpError(409, str(exc)) from None
    return _run_out(_run(request, run.pk))


@router.post(
    "/playbook-runs/{run_id}/approve",
    response={200: PlaybookRunOut, 403: SoarDetail, 409: SoarDetail},
)
def approve_run(request, run_id: int):
    return _decide(request, run_id, True)


@router.post(
    "/playbook-runs/{run_id}/reject",
    response={200: PlaybookRunOut, 403: SoarDetail, 409: SoarDetail},
)
def reject_run(request, run_id: int):
    return _decide(request, run_id, False)


@router.post(
    "/playbook-runs/{run_id}/rerun",
    response={201: PlaybookRunOut, 403: SoarDetail, 409: SoarDetail},
)
def rerun_run(request, run_id: int):
    run = _run(request, run_id)
    try:
        again = runs.rerun(request.scope, run, user=None)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    except runs.RunError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, _run_out(_run(request, again.pk)))


# --- automated response rules ----------------------------------------------------


@router.get("/automation-rules", response=list[AutomationRuleOut])
def list_rules(request):
    return [_rule_out(r) for r in _rules(request)]


@router.get("/automation-rules/{automation_rule_id}", response=AutomationRuleOut)
def get_rule(request, automation_rule_id: int):
    return _rule_out(_get_rule(request, automation_rule_id))


def _get_rule(request, automation_rule_id: int) -> AutomationRule:
    rule = _rules(request).filter(id=automation_rule_id).first()
    if rule is None:
        raise HttpError(404, "No automated response rule matches the given query.")
    return rule


@router.post(
    "/automation-rules", response={201: AutomationRuleOut, 403: SoarDetail, 422: SoarInvalid}
)
def create_rule(request, payload: AutomationRuleIn):
    _require_organisation(request)
    try:
        rule = automation.save_rule(request.scope, payload.dict())
    except automation.RuleInvalid as exc:
        return Status(422, {"errors": exc.errors})
    return Status(201, _rule_out(rule))


@router.put(
    "/automation-rules/{automation_rule_id}",
    response={200: AutomationRuleOut, 403: SoarDetail, 422: SoarInvalid},
)
def update_rule(request, automation_rule_id: int, payload: AutomationRuleIn):
    rule = _get_rule(request, automation_rule_id)
    _require_organisation(request)
    try:
        rule = automation.save_rule(request.scope, payload.dict(), rule=rule)
    except automation.RuleInvalid as exc:
        return Status(422, {"errors": exc.errors})
    return _rule_out(rule)


@router.delete("/automation-rules/{automation_rule_id}", response={204: None, 403: SoarDetail})
def delete_rule(request, automation_rule_id: int):
    rule = _get_rule(request, automation_rule_id)
    _require_organisation(request)
    automation.delete_rule(rule)
    return Status(204, None)


@router.post("/automation-rules/{automation_rule_id}/dry-run", response=AutomationDryRunOut)
def dry_run_rule(request, automation_rule_id: int):
    """How many events of the last 7 days the rule would have acted on."""
    result = automation.dry_run(_get_rule(request, automation_rule_id))
    return {**result, "sample": [e.pk for e in result["sample"]]}


@router.post("/automation/pause", response={200: AutomationSwitchIn, 403: SoarDetail})
def pause_automation(request, payload: AutomationSwitchIn):
    """The kill switch: pause (or resume) every rule of the organisation."""
    try:
        switch = automation.set_paused(request.scope, payload.paused, user=None)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    return {"paused": switch.paused}
