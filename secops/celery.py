"""The Celery application. Configuration comes from Django settings (CELERY_*)."""

import json
import os

from celery import Celery, Task, signals
from django.db import InterfaceError, OperationalError

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
# errors a retry can cure: lock timeouts, a database that restarts or drops
# the connection (OperationalError on the query that meets it, InterfaceError
# on a connection already closed). Before the retry runs, Celery's Django
# fixup closes the broken connection, so the retry opens a new one.
DURABLE_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


def redis_transport_options(visibility_timeout: int) -> dict:
    """kombu's Redis transport options for a visibility timeout in seconds.

    Unacknowledged messages older than the timeout are put back on their queue
    by a sweep every worker runs; kombu runs it about every 100 s (every 10th
    call of a 10 s timer). Here it runs every tenth of the timeout, between 1
    and 10 s, so a dead worker's message is delivered again within the timeout
    plus at most 10 s. The sweep is one sorted-set range query on Redis.
    """
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": max(1, min(10, visibility_timeout // 10)),
        "unacked_restore_throttle": 1,
    }


app = Celery("secops", task_cls=JsonArgumentsTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# --- log context and metrics of tasks ---------------------------------------------
# Log lines written inside a task carry its id and name (secops.logs); every
# task's states are counted (secops.metrics). Imported lazily: the worker
# loads Django before the first task.
_log_contexts: dict[str, tuple] = {}
# The message header that carries the id of the request that queued a task.
REQUEST_ID_HEADER = "request_id"


@signals.before_task_publish.connect
def _task_names_its_request(headers=None, **_):
    """A task queued while a request is served carries the request's id in
    its message, so a worker's lines about it name the request too."""
    from secops.logs import request_id_var

    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **_):
    from secops.logs import task_started
    from secops.metrics import task_state

    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    _log_contexts[task_id] = task_started(task_id, task.name, request_id)
    task_state(task.name, "started")


@signals.task_postrun.connect
def _task_ended(task_id=None, task=None, **_):
    from secops.logs import task_finished

    task_finished(_log_contexts.pop(task_id, None))


@signals.task_success.connect
def _task_succeeded(sender=None, **_):
    from secops.metrics import task_state

    task_state(getattr(sender, "name", None), "succeeded")


@signals.task_failure.connect
def _task_failed(sender=None, **_):
    from secops.metrics import task_state

    task_state(getattr(sender, "name", None), "failed")


@signals.task_retry.connect
def _task_retried(sender=None, **_):
    from secops.metrics import task_state

    task_state(getattr(sender, "name", None), "retried")


@signals.task_rejected.connect
def _task_rejected(message=None, **_):
    from secops.metrics import task_state

    headers = getattr(message, "headers", None) or {}
    task_state(headers.get("task"), "rejected")


@signals.task_revoked.connect
def _task_revoked(sender=None, **_):
    from secops.metrics import task_state

    task_state(getattr(sender, "name", None), "revoked")


@signals.after_task_publish.connect
def _task_queued(sender=None, **_):
    from secops.metrics import task_state

    task_state(sender, "queued")


@signals.worker_init.connect
def _worker_starting(**_):
    from secops.metrics import clear_multiprocess_dir

    clear_multiprocess_dir()


@signals.worker_ready.connect
def _worker_ready(**_):
    from django.conf import settings

    from secops.metrics import serve_worker_metrics

    if settings.WORKER_METRICS_PORT:
        serve_worker_metrics(settings.WORKER_METRICS_PORT)


@signals.worker_process_shutdown.connect
def _worker_process_ended(pid=None, **_):
    from secops.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())
