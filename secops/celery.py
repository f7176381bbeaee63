"""The Celery application. Configuration comes from Django settings (CELERY_*)."""

import json
import os

from celery import Celery, Task
from django.db import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "secops.settings")


class JsonArgumentsTask(Task):
    """In eager mode, pass arguments through JSON as a broker would.

    Eager execution would otherwise accept arguments (model instances,
    datetimes, sets) that fail only in production.
    """

    def apply_async(self, args=None, kwargs=None, *rest, **options):
        if self.app.conf.task_always_eager:
            args = json.loads(json.dumps(list(args or ())))
            kwargs = json.loads(json.dumps(kwargs or {}))
        return super().apply_async(args, kwargs, *rest, **options)


# The options of a task whose work must not be lost: acknowledged only once
# done, given back when its worker dies, and retried (with backoff) only on
# errors a retry can cure: lock timeouts, dropped database connections.
DURABLE_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}

app = Celery("secops", task_cls=JsonArgumentsTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
