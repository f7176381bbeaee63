"""Celery entry points of handling: thin wrappers around disposal.services and
disposal.notifications. They run on the respond queue."""

from celery import shared_task

from disposal import notifications, services
from secops.celery import DURABLE_TASK_OPTIONS


@shared_task(name="disposal.run_task", **DURABLE_TASK_OPTIONS)
def run_task(task_id: int) -> str | None:
    return services.run_task(task_id)


@shared_task(name="disposal.undo_task", **DURABLE_TASK_OPTIONS)
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
