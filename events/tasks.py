"""Celery entry points of the pipeline, the change feed and exports. Thin: the work is in
events.services, events.feed and events.export."""

import dataclasses
from datetime import timedelta

from celery import shared_task

from alerts import handoff
from events import export, feed, pipeline, retention
from secops.celery import DURABLE_TASK_OPTIONS


@shared_task(name="events.process_alert_batch", **DURABLE_TASK_OPTIONS)
def process_alert_batch(batch_id: int) -> int:
    return len(pipeline.process_batch(batch_id))


def process_stored_batch(sender, batch_id: int, **kwargs) -> None:
    """Wake the pipeline for a batch alerts has just stored (connected in EventsConfig.ready)."""
    process_alert_batch.delay(batch_id)


# --- the event change feed ---------------------------------------------------------


@shared_task(name="events.deliver_changes", **DURABLE_TASK_OPTIONS)
def deliver_changes(consumer: str) -> int:
    """Hand one consumer its waiting changes, a batch at a time, until none wait."""
    delivered = 0
    while taken := feed.deliver(consumer):
        delivered += taken
    return delivered


def wake_consumers(sender, consumers: list[str], **kwargs) -> None:
    """Wake every consumer of changes just committed (connected in EventsConfig.ready)."""
    for name in consumers:
        deliver_changes.delay(name)


@shared_task(name="events.sweep_change_feed", acks_late=True, expires=120)
def sweep_change_feed(older_than_seconds: int = 30) -> list[str]:
    """Wake consumers whose changes have waited too long (a lost wake-up)."""
    names = feed.consumers_with_waiting_changes(timedelta(seconds=older_than_seconds))
    for name in names:
        deliver_changes.delay(name)
    return names


@shared_task(name="events.process_stale_batches", acks_late=True, expires=120)
def process_stale_batches(older_than_seconds: int = 120, limit: int = 100) -> int:
    ids = handoff.stale_batch_ids(timedelta(seconds=older_than_seconds), limit)
    for batch_id in ids:
        process_alert_batch.delay(batch_id)
    return len(ids)


@shared_task(name="events.purge_expired", acks_late=True, expires=3600)
def purge_expired() -> dict:
    result = retention.purge_expired()
    return {"events": result.events, "alerts": result.alerts, "logs": result.logs}


# An export is claimed before any work, so a redelivered message (acks_late,
# a worker lost mid-run) does nothing; the cleanup fails a job whose worker
# died. The time limit ends a run well before the cleanup would call it stalled
# (export.STALLED_AFTER). The export service queues this task by its name.
@shared_task(
    name=export.EXPORT_TASK, acks_late=True, reject_on_worker_lost=True, soft_time_limit=1200
)
def export_events(job_id: int) -> bool:
    return export.run_export_job(job_id)


@shared_task(name="events.cleanup_exports", acks_late=True, expires=600)
def cleanup_exports() -> dict:
    return dataclasses.asdict(export.cleanup_exports())
