"""Celery entry points of the SIEM detection. Thin: the work is in alerts.detection_run."""

from celery import shared_task
from django.db import OperationalError

from alerts import detection_run, partitions


@shared_task(
    name="alerts.run_detection",
    acks_late=True,
    reject_on_worker_lost=True,
    # Only errors a retry can cure: lock timeouts, dropped connections.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=3,
    # Beat sends one every minute: a run that waited longer than that is
    # superseded by the next one, which reads the same logs.
    expires=55,
)
def run_detection() -> dict:
    return detection_run.run_detection().as_dict()


@shared_task(
    name="alerts.maintain_partitions",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=3000,
)
def maintain_partitions() -> list[str]:
    return partitions.ensure_partitions()
