"""Automated response rules: the consumer of the event change feed that fires
them, their conditions, rate limit and the organisation's kill switch, and the
dry run over the last days.

The feed hands changes over inside its delivery transaction, so what a rule
does (a run started, a status changed, a firing recorded) commits together
with the changes' removal from the queue: a worker that dies in between loses
no trigger and, thanks to the unique firing per rule and change, a change
delivered again fires nothing twice.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from events import feed
from events.models import ChangeCause, ChangeKind, EventChange, SecurityEvent
from events.services import EventStatusError, change_event_risk, change_event_status
from secops import audit
from secops.conditions import ConditionError
from secops.models import AuditAction
from soar.facts import compile_event_conditions, event_facts
from soar.models import (
    AutomationRule,
    AutomationSwitch,
    FiringOutcome,
    Playbook,
    PlaybookRun,
    RuleAction,
    RuleFiring,
    RunTrigger,
    Trigger,
)
from soar.runs import RunError, start_run

logger = logging.getLogger(__name__)

CONSUMER = "soar.automation"

_TRIGGER_OF_KIND = {
    ChangeKind.CREATED: Trigger.EVENT_CREATED,
    ChangeKind.ALERTS_ADDED: Trigger.ALERTS_ADDED,
    ChangeKind.STATUS_CHANGED: Trigger.STATUS_CHANGED,
}


def _enabled_unexpired(now):
    return AutomationRule.objects.filter(enabled=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def active_rules(organisation_id: int, now=None):
    now = now or timezone.now()
    return (
        _enabled_unexpired(now)
        .filter(organisation_id=organisation_id)
        .select_related("playbook")
        .prefetch_related("accounts")
        .order_by("position", "id")
    )


def is_paused(organisation_id: int) -> bool:
    return AutomationSwitch.objects.filter(organisation_id=organisation_id, paused=True).exists()


def set_paused(scope, paused: bool, *, user) -> AutomationSwitch:
    from secops.scope import require

    require(scope.may_manage_organisation(), "Only global administrators pause automation.")
    with transaction.atomic():
        was = is_paused(scope.organisation_id)
        switch, _ = AutomationSwitch.objects.update_or_create(
            organisation_id=scope.organisation_id, defaults={"paused": paused, "changed_by": user}
        )
        if was != paused:
            audit.record(
                AuditAction.AUTOMATION_PAUSE,
                target_type="automation",
                target_label="Automation of the organisation",
                organisation=scope.organisation_id,
                changes={"paused": [was, paused]},
            )
    return switch


class RuleInvalid(Exception):
    """A rule that cannot be saved; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# The fields of a rule that validate_rule reads and the API shows.
RULE_FIELDS = (
    "name",
    "description",
    "position",
    "enabled",
    "expires_at",
    "trigger",
    "conditions",
    "action",
    "playbook",
    "parameters",
    "require_approval",
    "max_runs_per_minute",
)


def rule_data(rule: AutomationRule) -> dict:
    """A saved rule as validate_rule takes it: the starting point of a change
    that names only some fields."""
    data = {name: getattr(rule, name) for name in RULE_FIELDS if name != "playbook"}
    return {**data, "playbook": rule.playbook_id}


def validate_rule(scope, data: dict) -> dict:
    """The fields of an automated response rule of the scope's organisation,
    checked (for the rule pages and the API alike); raises ``RuleInvalid``."""
    errors = {}
    name = (data.get("name") or "").strip()
    if not name:
        errors["name"] = ["A name is required."]
    elif len(name) > 200:
        errors["name"] = ["A name of at most 200 characters."]
    trigger, action = data.get("trigger"), data.get("action")
    if trigger not in Trigger.values:
        errors["trigger"] = [f"One of {', '.join(Trigger.values)}."]
    if action not in RuleAction.values:
        errors["action"] = [f"One of {', '.join(RuleAction.values)}."]
    conditions = data.get("conditions") or {}
    if not isinstance(conditions, dict):
        errors["conditions"] = ["The conditions are an object."]
    else:
        try:
            compile_event_conditions(conditions)
        except ConditionError as exc:
            errors[exc.path or "conditions"] = [exc.message]
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        errors["parameters"] = ["The parameters are an object."]
        parameters = {}
    playbook = None
    if action == RuleAction.RUN_PLAYBOOK:
        playbook_id = data.get("playbook")
        if isinstance(playbook_id, Playbook):
            playbook_id = playbook_id.pk
        if isinstance(playbook_id, int):
            playbook = Playbook.objects.in_scope(scope).filter(id=playbook_id).first()
        if playbook is None:
            errors["playbook"] = ["Choose a playbook."]
    elif action == RuleAction.SET_STATUS and parameters.get("status") not in (
        "unhandled",
        "handling",
        "handled",
    ):
        errors["parameters.status"] = ["unhandled, handling or handled (never failed)."]
    elif action == RuleAction.SET_RISK and parameters.get("risk") not in (1, 2, 3):
        errors["parameters.risk"] = ["1 (low), 2 (medium) or 3 (high)."]
    max_runs = data.get("max_runs_per_minute", 30)
    if not isinstance(max_runs, int) or not 1 <= max_runs <= 10_000:
        errors["max_runs_per_minute"] = ["A number from 1 to 10000."]
    position = data.get("position", 0)
    if not isinstance(position, int) or not 0 <= position <= 1_000_000:
        errors["position"] = ["A number from 0 to 1000000."]
    if errors:
        raise RuleInvalid(errors)
    return {
        "name": name,
        "description": data.get("description") or "",
        "position": position,
        "enabled": bool(data.get("enabled", True)),
        "expires_at": data.get("expires_at"),
        "trigger": trigger,
        "conditions": conditions,
        "action": action,
        "playbook": playbook,
        "parameters": parameters,
        "require_approval": bool(data.get("require_approval")),
        "max_runs_per_minute": max_runs,
    }


def save_rule(scope, data: dict, *, rule: AutomationRule | None = None, user=None):
    """Create an automated response rule of the scope's organisation, or change
    one of its own (fields checked by ``validate_rule``; raises ``RuleInvalid``)."""
    fields = validate_rule(scope, data)
    before = _audited(rule) if rule is not None else None
    with transaction.atomic():
        if rule is None:
            rule = AutomationRule(
                organisation_id=scope.organisation_id,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
        for name, value in fields.items():
            setattr(rule, name, value)
        rule.save()
        after = _audited(rule)
        changes = audit.changes_between(before, after)
        if before is None:
            action = AuditAction.AUTOMATED_RULE_CREATE
        elif set(changes) == {"enabled"}:
            action = AuditAction.AUTOMATED_RULE_ENABLE
        else:
            action = AuditAction.AUTOMATED_RULE_UPDATE
        if before is None or changes:
            _record_rule(action, rule, changes)
    return rule


def set_rule_enabled(rule: AutomationRule, enabled: bool) -> None:
    """Switch a rule on or off (the cloud SIEM API's status change)."""
    with transaction.atomic():
        if rule.enabled == enabled:
            return
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
        _record_rule(AuditAction.AUTOMATED_RULE_ENABLE, rule, {"enabled": [not enabled, enabled]})


def delete_rule(rule: AutomationRule) -> None:
    with transaction.atomic():
        _record_rule(
            AuditAction.AUTOMATED_RULE_DELETE, rule, audit.changes_between(_audited(rule), None)
        )
        rule.delete()


def _audited(rule: AutomationRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS if name != "playbook"} | {
        "playbook": rule.playbook_id
    }


def _record_rule(action: str, rule: AutomationRule, changes: dict) -> None:
    audit.record(
        action,
        target=rule,
        target_type="automated_rule",
        organisation=rule.organisation_id,
        changes=changes,
    )


def caused_by_rule(change: EventChange, rule: AutomationRule) -> bool:
    """Whether the change came from this rule, directly or through its run."""
    if change.cause == ChangeCause.AUTOMATED_RULE:
        return change.cause_ref == f"automated_rule:{rule.pk}"
    if change.cause == ChangeCause.PLAYBOOK_RUN:
        run_id = change.cause_ref.partition(":")[2]
        return run_id.isdigit() and PlaybookRun.objects.filter(pk=int(run_id), rule=rule).exists()
    return False


def _triggers(change: EventChange) -> list[tuple[str, list[int] | None]]:
    """(trigger, alert ids or None) that a change stands for."""
    found = []
    trigger = _TRIGGER_OF_KIND.get(change.kind)
    if trigger:
        found.append((trigger, None))
    if change.kind in (ChangeKind.CREATED, ChangeKind.ALERTS_ADDED):
        alert_ids = (change.details or {}).get("alert_ids") or []
        if alert_ids:
            found.append((Trigger.ALERT_CREATED, list(alert_ids)))
    return found


def handle_changes(changes: list[EventChange]) -> None:
    """The feed consumer: fire every rule whose trigger and conditions hold."""
    # Most organisations automate little or nothing: their changes cost one
    # query per delivery instead of loading the events behind them.
    now = timezone.now()
    automating = set(
        _enabled_unexpired(now)
        .filter(organisation_id__in={c.organisation_id for c in changes})
        .values_list("organisation_id", flat=True)
        .distinct()
    )
    changes = [c for c in changes if c.organisation_id in automating]
    if not changes:
        return
    events = {
        e.pk: e
        for e in SecurityEvent.objects.select_related("account").filter(
            pk__in={c.event_id for c in changes}
        )
    }
    rules_of: dict[int, list[AutomationRule]] = {}
    for change in changes:
        event = events.get(change.event_id)
        if event is None:
            continue
        organisation_id = event.account.organisation_id
        if organisation_id not in rules_of:
            rules_of[organisation_id] = list(active_rules(organisation_id, now))
        for trigger, alert_ids in _triggers(change):
            for rule in rules_of[organisation_id]:
                if rule.trigger != trigger:
                    continue
                limited = {a.id for a in rule.accounts.all()}
                if limited and event.account_id not in limited:
                    continue
                if caused_by_rule(change, rule):
                    continue
                try:
                    holds = compile_event_conditions(rule.conditions)(
                        event_facts(event, alert_ids=alert_ids)
                    )
                except Exception:
                    logger.exception("Conditions of automated rule %s failed", rule.pk)
                    holds = False
                if holds:
                    fire(rule, event, change)


def fire(rule: AutomationRule, event: SecurityEvent, change: EventChange) -> RuleFiring | None:
    """Record the firing and do the rule's action, unless paused or over its rate."""
    now = timezone.now()
    outcome, message, run = FiringOutcome.ACTED, "", None
    if is_paused(rule.organisation_id):
        outcome, message = FiringOutcome.PAUSED, "Automation of the organisation is paused."
    elif (
        RuleFiring.objects.filter(
            rule=rule, outcome=FiringOutcome.ACTED, at__gte=now - timedelta(minutes=1)
        ).count()
        >= rule.max_runs_per_minute
    ):
        outcome = FiringOutcome.RATE_LIMITED
        message = f"More than {rule.max_runs_per_minute} firings in a minute; not acted on."
    try:
        with transaction.atomic():
            firing = RuleFiring.objects.create(
                rule=rule, event=event, change_id=change.pk, outcome=outcome, message=message
            )
            if outcome != FiringOutcome.ACTED:
                return firing
            try:
                with audit.acting_as_automation(f'automated rule "{rule.name}"'):
                    run = _act(rule, event)
            except (RunError, EventStatusError) as exc:
                firing.outcome, firing.message = FiringOutcome.FAILED, str(exc)
            firing.run = run
            firing.save()
            return firing
    except IntegrityError:
        return None  # this change fired this rule before (delivered again)


def _act(rule: AutomationRule, event: SecurityEvent) -> PlaybookRun | None:
    cause = feed.Cause.automated_rule(rule.pk)
    if rule.action == RuleAction.RUN_PLAYBOOK:
        return start_run(
            rule.playbook,
            event,
            trigger=RunTrigger.RULE,
            rule=rule,
            options={k: v for k, v in rule.parameters.items() if k in ("validity_days", "scope")},
            require_approval=rule.require_approval,
        )
    if rule.action == RuleAction.SET_STATUS:
        change_event_status(event, rule.parameters["status"], cause=cause, note=f"Rule {rule.name}")
    elif rule.action == RuleAction.SET_RISK:
        change_event_risk(event, int(rule.parameters["risk"]), cause=cause)
    return None


def dry_run(rule: AutomationRule, days: int = 7, limit: int = 5000) -> dict:
    """How many events of the last ``days`` the rule would have acted on."""
    since = timezone.now() - timedelta(days=days)
    predicate = compile_event_conditions(rule.conditions)
    events = SecurityEvent.objects.select_related("account").filter(
        account__organisation_id=rule.organisation_id, last_occurred_at__gte=since
    )
    limited = list(rule.accounts.values_list("id", flat=True))
    if limited:
        events = events.filter(account_id__in=limited)
    matched, examined, sample = 0, 0, []
    for event in events.order_by("-last_occurred_at")[:limit]:
        examined += 1
        if predicate(event_facts(event)):
            matched += 1
            if len(sample) < 20:
                sample.append(event)
    return {"matched": matched, "examined": examined, "capped": examined >= limit, "sample": sample}
