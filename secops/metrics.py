"""Prometheus metrics: the core ones, the registry served at ``/metrics`` and
who may read it.

Each app declares its own metrics in its ``metrics.py`` (imported when the
apps are ready, ``SecopsConfig.ready``); metrics read from the database or the
broker at scrape time are collectors added with ``add_scrape_collector``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn's workers, Celery's pool),
every process writes its samples to files in that directory and a scrape adds
them up (``secops/gunicorn_conf.py`` marks a dead worker's files). Without it
the process's own registry is served.
"""

import hmac
import ipaddress
import logging
import os
import threading
import time

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from secops.login_throttling import client_ip_address

logger = logging.getLogger(__name__)
# One line per request answered, with its request id (secops.logs).
access_logger = logging.getLogger("secops.access")
# No "_created" series beside every counter and histogram: nothing reads them.
disable_created_metrics()

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# --- page latency -------------------------------------------------------------

REQUEST_LATENCY = Histogram(
    "secops_http_request_duration_seconds",
    "Time to answer an HTTP request, by view (URL name or route, never the raw path), "
    "method and status class.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def view_label(request) -> str:
    """A bounded name for what answered ``request``: the URL pattern's name (or
    its route when unnamed), never the path, which holds ids and is chosen by
    the client."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    if request.headers.get("x-acs-action"):
        return "cloudsiem"
    return "unmatched"


class RequestLatencyMiddleware:
    """Observes every response's latency and logs the request on
    ``secops.access``. Placed early in ``MIDDLEWARE``, so that the time of the
    middleware after it counts too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        view = view_label(request)
        REQUEST_LATENCY.labels(view, method, f"{response.status_code // 100}xx").observe(elapsed)
        access_logger.info(
            "%s %s %s %.1f ms",
            method,
            # Escaped as Django escapes paths in its own lines: one request, one line.
            request.path.encode("unicode_escape").decode("ascii"),
            response.status_code,
            elapsed * 1000,
            extra={
                "view": view,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
        return response


# --- Celery tasks -------------------------------------------------------------

TASK_STATES = Counter(
    "secops_celery_tasks_total",
    "Celery tasks by name and state: queued (sent by this process), started, "
    "succeeded, failed, retried, rejected, revoked.",
    ["task", "state"],
)


def task_state(task_name: str | None, state: str) -> None:
    TASK_STATES.labels(task_name or "unknown", state).inc()


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each declared Celery queue (Redis list lengths); 0
    on the embedded default, None for every queue when Redis cannot be read."""
    queues = list(settings.WORKER_QUEUES)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return dict.fromkeys(queues, 0)
    import redis

    # kombu keeps a queue's messages of priority 0 under its name, and others
    # under the name, a separator and the priority step.
    steps = [0, 3, 6, 9]
    keys = [(q, q if step == 0 else f"{q}\x06\x16{step}") for q in queues for step in steps]
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        with client.pipeline(transaction=False) as pipe:
            for _, key in keys:
                pipe.llen(key)
            lengths = pipe.execute()
    except redis.RedisError:
        return dict.fromkeys(queues, None)
    depths = dict.fromkeys(queues, 0)
    for (queue, _), length in zip(keys, lengths, strict=True):
        depths[queue] += length
    return depths


class QueueDepthCollector:
    def collect(self):
        depth = GaugeMetricFamily(
            "secops_celery_queue_depth",
            "Messages waiting in a Celery queue (Redis list length; 0 with tasks run eagerly).",
            labels=["queue"],
        )
        up = GaugeMetricFamily(
            "secops_celery_broker_up", "1 when the broker's queues could be read, else 0."
        )
        depths = queue_depths()
        for queue, length in depths.items():
            if length is not None:
                depth.add_metric([queue], length)
        up.add_metric([], 0 if None in depths.values() else 1)
        yield depth
        yield up


# --- the scrape -----------------------------------------------------------------

_scrape_collectors: list = []


def add_scrape_collector(collector) -> None:
    """Adds a collector (an object with ``collect()``) run at every scrape of
    this process's ``/metrics``; for values read from the database or the broker."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


add_scrape_collector(QueueDepthCollector())


class _Scrape:
    def __init__(self, base):
        self.base = base

    def collect(self):
        yield from self.base.collect()
        for collector in _scrape_collectors:
            # A database or broker that cannot be read leaves its metrics out
            # of this scrape rather than failing the others.
            try:
                families = list(collector.collect())
            except Exception:
                logger.warning(
                    "Metrics of %s left out of this scrape", type(collector).__name__, exc_info=True
                )
                continue
            yield from families


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    if MULTIPROCESS_DIR:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    return generate_latest(_Scrape(base)), CONTENT_TYPE_LATEST


# --- who may read them ------------------------------------------------------------


def scrape_allowed(authorization: str, address: str | None) -> bool:
    """Whether a scrape may read the metrics: it carries ``METRICS_TOKEN`` as a
    bearer token (compared in constant time), or comes from an address inside
    ``METRICS_ALLOWED_NETWORKS``."""
    token = settings.METRICS_TOKEN
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
    try:
        client = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped:
        client = client.ipv4_mapped
    return any(client in network for network in settings.METRICS_ALLOWED_NETWORKS)


def request_allowed(request) -> bool:
    return scrape_allowed(request.headers.get("Authorization", ""), client_ip_address(request))


# --- a Celery worker's own endpoint --------------------------------------------------


def worker_metrics_app(environ, start_response):
    """The WSGI application a worker serves on ``WORKER_METRICS_PORT``: the
    same metrics and the same access rules as the console's ``/metrics``."""
    allowed = scrape_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR"))
    if not allowed:
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"Forbidden\n"]
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found\n"]
    body, content_type = exposition()
    start_response("200 OK", [("Content-Type", content_type)])
    return [body]


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> threading.Thread | None:  # noqa: S104
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # scrapes every few seconds: no access log
            pass

    try:
        server = make_server(address, port, worker_metrics_app, handler_class=QuietHandler)
    except OSError as exc:  # the port is taken: the worker works on, unobserved
        logger.error("Worker metrics are not served on port %s: %s", port, exc)
        return None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return thread


def mark_process_dead(pid: int) -> None:
    """Drops the live gauges of a process that ended (multiprocess mode only)."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(pid)


def clear_multiprocess_dir() -> None:
    """Removes the samples of processes of an earlier start, at start-up."""
    if MULTIPROCESS_DIR and os.path.isdir(MULTIPROCESS_DIR):
        for name in os.listdir(MULTIPROCESS_DIR):
            if name.endswith(".db"):
                os.unlink(os.path.join(MULTIPROCESS_DIR, name))
