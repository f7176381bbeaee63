"""How stored alerts reach the pipeline without alerts knowing who consumes them.

Ingestion records each stored batch as a ``PendingAlertBatch`` row in its own
transaction, so a batch is durable exactly when its alerts are. Once that
transaction commits, ``alert_batch_stored`` is sent as a wake-up; the events
app connects its pipeline task to it in ``EventsConfig.ready()``. The signal
carries no data that is not in the row: a lost wake-up (a broker outage, a
crash between commit and send) only delays a batch until the sweeper finds it
with ``stale_batch_ids``.
"""

from datetime import timedelta

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from alerts.models import PendingAlertBatch

# Sent after commit with ``batch_id``.
alert_batch_stored = Signal()


def hand_off(alert_ids: list[int]) -> PendingAlertBatch:
    """Queue newly stored alerts as one batch, in the caller's transaction."""
    batch = PendingAlertBatch.objects.create(alert_ids=list(alert_ids))
    # robust: a failing wake-up must not turn a committed ingestion into an
    # error; the batch row is already safe.
    transaction.on_commit(
        lambda: alert_batch_stored.send(sender=PendingAlertBatch, batch_id=batch.id), robust=True
    )
    return batch


def claim_batch(batch_id: int) -> PendingAlertBatch | None:
    """Lock a waiting batch for the caller's transaction, or None when it is
    gone. Delete it in the same transaction as the work it leads to, so it is
    consumed exactly once.

    When another consumer holds it, wait for that one's outcome: None once it
    commits, the batch if it dies (its transaction rolls back). Skipping it
    instead would let a second copy of the message (a task that outran the
    broker's visibility timeout) be acknowledged while the only consumer left
    may yet be killed, leaving the batch to the sweeper minutes later.
    """
    return PendingAlertBatch.objects.select_for_update().filter(id=batch_id).first()


def claim_waiting_batches(taken: list[int], alert_limit: int) -> list[PendingAlertBatch]:
    """More waiting batches that no other transaction holds, oldest first,
    locked for the caller's transaction, as long as their alerts stay within
    ``alert_limit`` in all.

    A worker that falls behind takes what waits together with the batch it
    was given: a transaction of a few thousand alerts costs far less per
    alert than many of a hundred. Their own messages later find them gone.
    """
    claimed: list[PendingAlertBatch] = []
    taken = list(taken)
    room = alert_limit
    while room > 0:
        # One at a time, so that at most one batch is locked without being
        # taken (the first that does not fit), and only until the commit.
        batch = (
            PendingAlertBatch.objects.select_for_update(skip_locked=True)
            .exclude(id__in=taken)
            .order_by("id")
            .first()
        )
        if batch is None or len(batch.alert_ids) > room:
            break
        claimed.append(batch)
        taken.append(batch.id)
        room -= len(batch.alert_ids)
    return claimed


def stale_batch_ids(older_than: timedelta, limit: int) -> list[int]:
    """Batches waiting longer than a wake-up should take (a lost message, a crashed worker)."""
    cutoff = timezone.now() - older_than
    return list(
        PendingAlertBatch.objects.filter(created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def waiting_batch_ids() -> list[int]:
    """Every waiting batch, oldest first."""
    return list(PendingAlertBatch.objects.order_by("id").values_list("id", flat=True))
