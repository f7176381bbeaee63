"""Playbooks: the built-in ones (one per built-in scenario), an organisation's
own, their steps and how each step's parameters are checked, and versions.

A playbook's steps are JSON on its version:
``{"kind": StepKind, "name": str, "params": {...}, "timeout_seconds": int}``.
``validate_steps`` returns them normalised or raises ``PlaybookError`` naming
the step and field (``steps[2].params.validity_days``), for the step editor and
the API alike.
"""

from dataclasses import dataclass

from django.db import transaction

from disposal.models import Channel, Scenario
from disposal.scenarios import MAX_VALIDITY_DAYS, scenarios_for
from events.models import EventStatus
from secops import audit
from secops.enums import RiskLevel
from secops.models import AuditAction
from soar.models import Playbook, PlaybookVersion, StepKind

MAX_STEPS = 30
DEFAULT_STEP_TIMEOUT = 300
MAX_STEP_TIMEOUT = 3600
MAX_WAIT_MINUTES = 24 * 60
MAX_APPROVAL_MINUTES = 7 * 24 * 60
DEFAULT_APPROVAL_MINUTES = 24 * 60
# Which of an event's entities an action step acts on.
ENTITY_SELECTIONS = ("malicious", "attacker", "all")
SCOPES = ("event_account", "seen_accounts")


class PlaybookError(Exception):
    """Steps or a playbook that cannot be saved; ``field`` names where."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class PlaybookSpec:
    name: str
    description: str
    steps: list


def _int(where: str, value, low: int, high: int, default=None) -> int:
    if value in (None, "") and default is not None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PlaybookError(where, "Enter a whole number.") from None
    if not low <= number <= high:
        raise PlaybookError(where, f"Enter a number from {low} to {high}.")
    return number


def _step_params(scope, where: str, kind: str, params: dict) -> dict:
    from secops.conditions import ConditionError
    from soar.facts import compile_event_conditions

    p = f"{where}.params"
    if kind == StepKind.ACTION:
        key = params.get("scenario")
        scenario = scenarios_for(scope).filter(key=key).first() if key else None
        if scenario is None:
            raise PlaybookError(f"{p}.scenario", "Choose a scenario.")
        entities = params.get("entities") or "malicious"
        if entities not in ENTITY_SELECTIONS:
            raise PlaybookError(f"{p}.entities", "Choose malicious, attacker or all entities.")
        handled_scope = params.get("scope") or "event_account"
        if handled_scope not in SCOPES:
            raise PlaybookError(f"{p}.scope", "Choose the event's account or every account.")
        result = {"scenario": scenario.key, "entities": entities, "scope": handled_scope}
        if scenario.takes_validity:
            result["validity_days"] = _int(
                f"{p}.validity_days",
                params.get("validity_days"),
                1,
                MAX_VALIDITY_DAYS,
                scenario.default_validity_days,
            )
        return result
    if kind == StepKind.CONDITION:
        try:
            compile_event_conditions(params.get("conditions") or {}, path=f"{p}.conditions")
        except ConditionError as exc:
            raise PlaybookError(exc.path or f"{p}.conditions", exc.message) from None
        on_false = params.get("on_false") or "stop"
        if on_false not in ("stop", "skip_next"):
            raise PlaybookError(f"{p}.on_false", "Choose stop or skip the next step.")
        return {"conditions": params.get("conditions") or {}, "on_false": on_false}
    if kind == StepKind.SET_STATUS:
        status = params.get("status")
        if status not in (EventStatus.UNHANDLED, EventStatus.HANDLING, EventStatus.HANDLED):
            raise PlaybookError(
                f"{p}.status", "Choose Unhandled, Handling or Handled (never Failed)."
            )
        return {"status": status}
    if kind == StepKind.SET_RISK:
        return {"risk": _int(f"{p}.risk", params.get("risk"), min(RiskLevel), max(RiskLevel))}
    if kind == StepKind.NOTIFY:
        channels = [c for c in params.get("channels") or [] if c]
        if not channels or any(c not in Channel.values for c in channels):
            raise PlaybookError(f"{p}.channels", "Choose e-mail and/or webhook.")
        recipients = [r.strip() for r in params.get("recipients") or [] if r and r.strip()]
        if not recipients:
            raise PlaybookError(f"{p}.recipients", "Name at least one recipient.")
        title = (params.get("title") or "").strip()
        if not title or len(title) > 200:
            raise PlaybookError(f"{p}.title", "A title of 1 to 200 characters.")
        return {"channels": channels, "recipients": recipients, "title": title}
    if kind == StepKind.WAIT:
        return {"minutes": _int(f"{p}.minutes", params.get("minutes"), 1, MAX_WAIT_MINUTES)}
    if kind == StepKind.APPROVAL:
        return {
            "timeout_minutes": _int(
                f"{p}.timeout_minutes",
                params.get("timeout_minutes"),
                1,
                MAX_APPROVAL_MINUTES,
                DEFAULT_APPROVAL_MINUTES,
            )
        }
    raise PlaybookError(f"{where}.kind", f"Unknown step kind {kind!r}.")


def validate_steps(scope, steps) -> list[dict]:
    if not isinstance(steps, list) or not steps:
        raise PlaybookError("steps", "A playbook has at least one step.")
    if len(steps) > MAX_STEPS:
        raise PlaybookError("steps", f"A playbook has at most {MAX_STEPS} steps.")
    normalised = []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            raise PlaybookError(where, "Each step is an object with a kind and parameters.")
        kind = step.get("kind")
        if kind not in StepKind.values:
            raise PlaybookError(f"{where}.kind", "Choose what the step does.")
        params = step.get("params") or {}
        if not isinstance(params, dict):
            raise PlaybookError(f"{where}.params", "The parameters are an object.")
        normalised.append(
            {
                "kind": kind,
                "name": str(step.get("name") or StepKind(kind).label)[:200],
                "params": _step_params(scope, where, kind, params),
                "timeout_seconds": _int(
                    f"{where}.timeout_seconds",
                    step.get("timeout_seconds"),
                    1,
                    MAX_STEP_TIMEOUT,
                    DEFAULT_STEP_TIMEOUT,
                ),
            }
        )
    return normalised


def save_playbook(scope, spec: PlaybookSpec, *, user, playbook: Playbook | None = None) -> Playbook:
    """Create a playbook of the scope's organisation, or a new version of one."""
    name = spec.name.strip()
    if not name or len(name) > 200:
        raise PlaybookError("name", "A name of 1 to 200 characters.")
    steps = validate_steps(scope, spec.steps)
    before = None
    with transaction.atomic():
        if playbook is None:
            playbook = Playbook.objects.create(
                organisation_id=scope.organisation_id,
                key=_free_key(scope.organisation_id, name),
                name=name,
                description=spec.description.strip(),
                created_by=user,
            )
            number = 1
        else:
            if playbook.built_in:
                raise PlaybookError("name", "Built-in playbooks cannot be changed.")
            playbook = Playbook.objects.select_for_update().get(pk=playbook.pk)
            latest = playbook.versions.order_by("-number").first()
            before = _audited(playbook, latest)
            playbook.name, playbook.description = name, spec.description.strip()
            if latest is not None and latest.steps == steps:
                playbook.save(update_fields=["name", "description", "updated_at"])
                _record(playbook, before, _audited(playbook, latest))
                return playbook
            number = (latest.number if latest else 0) + 1
        version = PlaybookVersion.objects.create(
            playbook=playbook, number=number, steps=steps, created_by=user
        )
        playbook.current_version = version
        playbook.save()
        _record(playbook, before, _audited(playbook, version))
    return playbook


def _audited(playbook: Playbook, version) -> dict:
    """What the audit log compares of a playbook."""
    return {
        "name": playbook.name,
        "description": playbook.description,
        "version": version.number if version else None,
        "steps": version.steps if version else [],
    }


def _record(playbook: Playbook, before: dict | None, after: dict) -> None:
    changes = audit.changes_between(before, after)
    if before is not None and not changes:
        return
    audit.record(
        AuditAction.PLAYBOOK_CREATE if before is None else AuditAction.PLAYBOOK_UPDATE,
        target=playbook,
        target_type="playbook",
        organisation=playbook.organisation_id,
        changes=changes,
    )


def _free_key(organisation_id, name: str) -> str:
    from django.utils.text import slugify

    base = slugify(name)[:50] or "playbook"
    key, n = base, 1
    while Playbook.objects.filter(organisation_id=organisation_id, key=key).exists():
        n += 1
        key = f"{base}-{n}"
    return key


def sync_builtin_playbooks(**_kwargs) -> None:
    """One built-in playbook per built-in scenario: its action on the event's
    malicious entities of that type, in the event's account."""
    for scenario in Scenario.objects.filter(built_in=True, organisation__isnull=True):
        steps = [
            {
                "kind": StepKind.ACTION,
                "name": scenario.name,
                "params": {
                    "scenario": scenario.key,
                    "entities": "malicious",
                    "scope": "event_account",
                    **(
                        {"validity_days": scenario.default_validity_days}
                        if scenario.takes_validity
                        else {}
                    ),
                },
                "timeout_seconds": DEFAULT_STEP_TIMEOUT,
            }
        ]
        playbook, _ = Playbook.objects.get_or_create(
            organisation=None,
            key=scenario.key,
            defaults={"name": scenario.name, "built_in": True, "description": scenario.description},
        )
        latest = playbook.versions.order_by("-number").first()
        if latest is None or latest.steps != steps:
            latest = PlaybookVersion.objects.create(
                playbook=playbook, number=(latest.number + 1 if latest else 1), steps=steps
            )
        Playbook.objects.filter(pk=playbook.pk).update(
            current_version=latest, name=scenario.name, description=scenario.description
        )
