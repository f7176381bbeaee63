"""The business operations on security events that people and automation call.

Today: changing an event's status, with the rules the product sets (Failed is
never set by hand; reopening cannot break "one Unhandled event per group").
Each change is recorded in the event change feed with its cause.
"""

from django.db import IntegrityError, transaction

from events import feed
from events.models import (
    ChangeKind,
    EventStatus,
    EventStatusChange,
    SecurityEvent,
)
from secops import audit
from secops.enums import RiskLevel
from secops.models import AuditAction


class EventStatusError(Exception):
    """A status change the product's rules do not allow; the message says why."""


# --- status -------------------------------------------------------------------


def _set_status(
    event: SecurityEvent, status: str, *, cause: feed.Cause, note: str, audited: bool = False
):
    with transaction.atomic():
        locked = SecurityEvent.objects.select_for_update().get(pk=event.pk)
        if locked.status == status:
            return locked
        previous = locked.status
        locked.status = status
        try:
            with transaction.atomic():
                locked.save(update_fields=["status", "updated_at"])
        except IntegrityError:
            raise EventStatusError(
                "Another Unhandled event already collects this group's new alerts; "
                "handle that event instead of reopening this one."
            ) from None
        EventStatusChange.objects.create(
            event=locked,
            from_status=previous,
            to_status=status,
            changed_by=cause.user,
            cause=cause.kind,
            cause_ref=cause.ref,
            note=note,
        )
        feed.record(
            [
                feed.Change(
                    locked.id,
                    locked.account_id,
                    ChangeKind.STATUS_CHANGED,
                    {"from": previous, "to": status},
                )
            ],
            cause,
        )
        if audited:
            record_event_change(
                AuditAction.HANDLING_STATUS,
                locked,
                cause,
                {"status": [previous, status]},
                details={"note": note} if note else None,
            )
    event.status = locked.status
    return locked


def record_event_change(action, event, cause, changes, *, details=None) -> None:
    """An audit entry for a handling action on ``event``."""
    audit.record(
        action,
        target=event,
        target_type="security_event",
        account=event.account_id,
        cause=cause,
        changes=changes,
        details=details,
    )


def change_event_status(
    event: SecurityEvent,
    status: str,
    *,
    user=None,
    cause: feed.Cause | None = None,
    note: str = "",
    audited: bool = True,
) -> SecurityEvent:
    """A status change by a person (``user``) or by automation (``cause``).
    Failed is never set this way. The change is written to the audit log
    unless ``audited`` is false (the caller writes its own entry)."""
    if status not in EventStatus.manually_settable():
        raise EventStatusError(
            "Failed is set only when a handling action fails."
            if status == EventStatus.FAILED
            else f"Unknown status {status!r}."
        )
    if cause is None:
        cause = feed.Cause.by_user(user) if user is not None else feed.Cause.system()
    return _set_status(event, status, cause=cause, note=note, audited=audited)


def mark_event_failed(
    event: SecurityEvent, *, note: str, cause: feed.Cause | None = None
) -> SecurityEvent:
    """The system's own path: a handling action for the event failed."""
    return _set_status(event, EventStatus.FAILED, cause=cause or feed.Cause.system(), note=note)


# --- risk ---------------------------------------------------------------------


def change_event_risk(event: SecurityEvent, risk: int, *, cause: feed.Cause) -> SecurityEvent:
    """Set the event's risk level (automation and people), recorded in the feed."""
    if risk not in RiskLevel.values:
        raise EventStatusError(f"Unknown risk level {risk!r}.")
    with transaction.atomic():
        locked = SecurityEvent.objects.select_for_update().get(pk=event.pk)
        if locked.risk == risk:
            return locked
        previous, locked.risk = locked.risk, risk
        locked.save(update_fields=["risk", "updated_at"])
        feed.record(
            [
                feed.Change(
                    locked.id,
                    locked.account_id,
                    ChangeKind.RISK_CHANGED,
                    {"from": previous, "to": risk},
                )
            ],
            cause,
        )
        record_event_change(AuditAction.HANDLING_RISK, locked, cause, {"risk": [previous, risk]})
    event.risk = locked.risk
    return locked
