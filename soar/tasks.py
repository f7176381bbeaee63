"""Celery entry points of SOAR: thin wrappers around soar.runs. They run on
the respond queue."""

from celery import shared_task
from django.db import OperationalError

from soar import runs

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name="soar.advance_run", **TASK_OPTIONS)
def advance_run(run_id: int) -> str | None:
    return runs.advance_run(run_id)


@shared_task(name="soar.resume_runs", acks_late=True, expires=120)
def resume_runs() -> dict:
    return runs.resume_due()
