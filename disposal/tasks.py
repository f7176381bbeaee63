"""Celery entry points of handling: thin wrappers around disposal.services and
disposal.notifications. They run on the respond queue."""

from celery import shared_task
from django.db import OperationalError

from disposal import notifications, services

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    # Database hiccups only; connector failures are recorded on the task itself.
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name="disposal.run_task", **TASK_OPTIONS)
def run_task(task_id: int) -> str | None:
    return services.run_task(task_id)


@shared_task(name="disposal.undo_task", **TASK_OPTIONS)
def undo_task(task_id: int) -> str | None:
    return services.undo_task(task_id)


@shared_task(name="disposal.expire_due", acks_late=True, expires=120)
def expire_due() -> int:
    return services.expire_due()


@shared_task(name="disposal.sweep_tasks", acks_late=True, expires=120)
def sweep_tasks() -> dict:
    return services.sweep_tasks()


@shared_task(name="disposal.send_notification", acks_late=True)
def send_notification(notification_id: int) -> str | None:
    return notifications.send(notification_id)


@shared_task(name="disposal.retry_notifications", acks_late=True, expires=120)
def retry_notifications() -> int:
    return notifications.retry_due()
