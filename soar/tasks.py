"""Celery entry points of SOAR: thin wrappers around soar.bulk and soar.runs.
They run on the respond queue."""

import dataclasses

from celery import shared_task

from secops.celery import DURABLE_TASK_OPTIONS
from soar import bulk, runs


# A job is claimed before any work, so a redelivered message (acks_late, a
# worker lost mid-run) does nothing; the clean-up fails a job whose worker
# died. The time limit ends a run well before the clean-up would call it
# stalled (bulk.STALLED_AFTER). The service queues this task by its name.
@shared_task(name=bulk.BULK_TASK, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600)
def run_bulk_handling(job_id: int) -> bool:
    return bulk.run_bulk_job(job_id)


@shared_task(name="soar.cleanup_bulk_handling", acks_late=True, expires=600)
def cleanup_bulk_handling() -> dict:
    return dataclasses.asdict(bulk.cleanup_bulk_jobs())


@shared_task(name="soar.advance_run", **DURABLE_TASK_OPTIONS)
def advance_run(run_id: int) -> str | None:
    return runs.advance_run(run_id)


@shared_task(name="soar.resume_runs", acks_late=True, expires=120)
def resume_runs() -> dict:
    return runs.resume_due()
