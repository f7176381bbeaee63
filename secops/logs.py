"""Log lines that say which request or task wrote them.

A request's id (``RequestIdMiddleware``) and a Celery task's id and name (set
by the task signals connected in ``secops.celery``) are kept in context
variables; ``ContextFilter`` copies them onto every record, and
``JsonFormatter`` writes one JSON object per line (``LOG_FORMAT=json``).

Loaded while logging is configured, before the apps are: import no models here.
"""

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")
task_name_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_name", default="")

REQUEST_ID_HEADER = "X-Request-ID"
# What a client or proxy may choose as a request id: short, and nothing that
# could break a log line or a header (no spaces, quotes or control characters).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")

# Attributes every LogRecord has; anything else on a record was passed as
# ``extra=`` and goes into the JSON object too.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
    "task_name",
    "request",
    "server_time",
}


def valid_request_id(value: str | None) -> str | None:
    """``value`` if it is usable as a request id, else None."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return None


class RequestIdMiddleware:
    """Gives every request an id: the client's ``X-Request-ID`` when it is a
    valid one (a proxy's, so that its logs and ours join), else a new one.
    The id is on ``request.request_id``, in every log line written while the
    request is served, and in the response's ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        request.request_id = request_id
        # Left set when the response leaves this middleware: Django logs an
        # error response ("Not Found: ...") after the middleware, and that line
        # belongs to the request too. request_finished clears it.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def clear_request_id(**_) -> None:
    request_id_var.set("")


def task_started(task_id: str, task_name: str, request_id: str | None = None) -> tuple:
    """Marks the log lines that follow as written by the task, and by the
    request that queued it when its message names one; returns what
    ``task_finished`` needs to restore the context."""
    request_token = None
    if valid_request_id(request_id):
        request_token = request_id_var.set(request_id)
    return (
        task_id_var.set(task_id or ""),
        task_name_var.set(task_name or ""),
        request_token,
    )


def task_finished(tokens: tuple | None) -> None:
    if tokens:
        id_token, name_token, request_token = tokens
        task_id_var.reset(id_token)
        task_name_var.reset(name_token)
        if request_token is not None:
            request_id_var.reset(request_token)


class ContextFilter(logging.Filter):
    """Copies the current request id and task id and name onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request and
    task ids when there are any, the exception's traceback, and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "task_id", "task_name"):
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
