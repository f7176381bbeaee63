"""The durable event change feed.

Every change to a security event is written as an ``EventChange`` row in the
transaction that makes it, with its cause, and fanned out to every registered
consumer as an ``EventChangeDelivery`` row. Consumers (automated response,
notifications, the cloud API's change queries) register in their
``AppConfig.ready()`` and handle their changes in ``deliver``: rows are claimed
with FOR UPDATE SKIP LOCKED and deleted in the handler's transaction, so each
consumer handles each change once, and a handler that fails leaves its rows
for the next try.

``event_changes_recorded`` is only a wake-up, sent after commit. A crash
between commit and send, a broker outage or a failing receiver delays
delivery until the sweeper (``consumers_with_waiting_changes``) finds the rows;
it never loses a change.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from events.models import ChangeCause, ChangeKind, EventChange, EventChangeDelivery
from secops import db
from secops.models import Account

logger = logging.getLogger(__name__)

# Sent after a transaction that recorded changes commits; carries no data.
event_changes_recorded = Signal()

# How many changes a consumer takes in one transaction.
DELIVERY_BATCH = 500


@dataclass(frozen=True)
class Cause:
    """Who or what made a change. Build it with the constructors below."""

    kind: str
    ref: str = ""
    user: object = None

    @classmethod
    def pipeline(cls, batch_id: int | None = None) -> "Cause":
        return cls(ChangeCause.PIPELINE, "" if batch_id is None else f"batch:{batch_id}")

    @classmethod
    def by_user(cls, user) -> "Cause":
        return cls(ChangeCause.USER, f"user:{user.pk}", user)

    @classmethod
    def bulk(cls, job_id: int, user) -> "Cause":
        """A change a user made to many events at once, by a bulk handling job."""
        return cls(ChangeCause.USER, f"bulk:{job_id}", user)

    @classmethod
    def bulk_by_api_key(cls, job_id: int) -> "Cause":
        """Changes to many events at once, by a bulk handling job an API key
        started (the job names the key)."""
        return cls(ChangeCause.API_KEY, f"bulk:{job_id}")

    @classmethod
    def by_api_key(cls, api_key) -> "Cause":
        return cls(ChangeCause.API_KEY, f"api_key:{api_key.pk}")

    @classmethod
    def automated_rule(cls, rule_id: int) -> "Cause":
        return cls(ChangeCause.AUTOMATED_RULE, f"automated_rule:{rule_id}")

    @classmethod
    def playbook_run(cls, run_id: int) -> "Cause":
        return cls(ChangeCause.PLAYBOOK_RUN, f"playbook_run:{run_id}")

    @classmethod
    def system(cls, what: str = "") -> "Cause":
        return cls(ChangeCause.SYSTEM, what[:64])


@dataclass(frozen=True)
class Change:
    event_id: int
    account_id: int
    kind: ChangeKind
    details: dict = field(default_factory=dict)


# --- consumers -------------------------------------------------------------------

Handler = Callable[[list[EventChange]], None]
_consumers: dict[str, Handler] = {}


def register_consumer(name: str, handler: Handler) -> None:
    """Have ``handler`` receive every change recorded from now on.

    It is called inside the delivery's transaction with a list of changes
    (oldest first): what it writes commits together with their removal from
    the consumer's queue, and an exception leaves them queued.
    """
    if not name or len(name) > 64:
        raise ValueError("A consumer's name is 1 to 64 characters.")
    _consumers[name] = handler


def unregister_consumer(name: str) -> None:
    _consumers.pop(name, None)


def consumer_names() -> list[str]:
    return sorted(_consumers)


# --- recording -------------------------------------------------------------------


def record(changes: list[Change], cause: Cause) -> list[int]:
    """Write ``changes`` and their deliveries in the caller's transaction;
    returns the ids of the changes, in the order given."""
    if not changes:
        return []
    now = timezone.now()
    # The organisation of each change from its account: one small query for
    # the batch rather than one over every event it names.
    organisation_of = dict(
        Account.objects.filter(id__in={c.account_id for c in changes}).values_list(
            "id", "organisation_id"
        )
    )
    user_id = cause.user.pk if cause.user is not None else None
    # A batch of the pipeline records thousands of changes: written as rows
    # rather than model instances, whose construction cost more than the insert.
    with transaction.atomic():
        written = db.insert_on_conflict(
            EventChange,
            [
                {
                    "organisation_id": organisation_of.get(c.account_id),
                    "event_id": c.event_id,
                    "account_id": c.account_id,
                    "kind": c.kind,
                    "cause": cause.kind,
                    "cause_ref": cause.ref,
                    "user_id": user_id,
                    "details": c.details,
                    "created_at": now,
                }
                for c in changes
            ],
            conflict_fields=None,
            returning=("id", "organisation_id"),
        )
        written.sort()  # ids were drawn in the order the rows were given
        names = consumer_names()
        if names:
            db.insert_on_conflict(
                EventChangeDelivery,
                [
                    {
                        "organisation_id": organisation_id,
                        "consumer": name,
                        "change_id": change_id,
                        "created_at": now,
                    }
                    for change_id, organisation_id in written
                    for name in names
                ],
                conflict_fields=None,
                returning=(),
            )
        transaction.on_commit(
            lambda: event_changes_recorded.send(sender=EventChange, consumers=names), robust=True
        )
    return [change_id for change_id, _ in written]


# --- delivering ------------------------------------------------------------------


def deliver(consumer: str, limit: int = DELIVERY_BATCH) -> int:
    """Hand the consumer up to ``limit`` of its waiting changes; returns how many.

    Another worker delivering to the same consumer skips the rows this one
    holds and takes the next ones.
    """
    handler = _consumers.get(consumer)
    if handler is None:
        return 0
    with transaction.atomic():
        claimed = list(
            EventChangeDelivery.objects.select_for_update(skip_locked=True)
            .filter(consumer=consumer)
            .order_by("change_id")
            .values_list("id", "change_id")[:limit]
        )
        if not claimed:
            return 0
        handler(list(EventChange.objects.filter(id__in=[c for _, c in claimed]).order_by("id")))
        EventChangeDelivery.objects.filter(id__in=[d for d, _ in claimed]).delete()
    return len(claimed)


def consumers_with_waiting_changes(older_than: timedelta = timedelta(0)) -> list[str]:
    """Registered consumers with a change waiting longer than ``older_than``."""
    cutoff = timezone.now() - older_than
    waiting = (
        EventChangeDelivery.objects.filter(created_at__lte=cutoff)
        .values_list("consumer", flat=True)
        .distinct()
    )
    return sorted(set(waiting) & set(_consumers))
