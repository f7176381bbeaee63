"""Metrics and logs across real processes: queue depth read from Redis, a
Celery worker's prefork pool and gunicorn's workers adding up their samples
(multiprocess mode), the worker's JSON log lines.

Skipped unless REDIS_URL is set and the database is PostgreSQL: the worker
and gunicorn read the test database, as in production.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from secops import metrics
from secops.celery import app as celery_app
from secops.logs import request_id_var

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.REDIS_URL
        or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs REDIS_URL and PostgreSQL",
    ),
]

BIN = Path(sys.executable).parent
TOKEN = "process-test-token-0123456789"
WAIT_SECONDS = 40


def database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{quote(db['NAME'])}"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def delete_redis_keys(queue: str) -> None:
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
        deadlines = "_kombu.binding_deadlines"
        members = [m for m, _ in client.zscan_iter(deadlines, match=f"*{queue}*")]
        if members:
            client.zrem(deadlines, *members)


@pytest.fixture
def queue():
    """A queue of this test's own; messages are sent to the broker, not run here."""
    name = f"test-metrics-{uuid.uuid4().hex[:12]}"
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield name
    finally:
        celery_app.conf.task_always_eager = eager
        delete_redis_keys(name)


def scrape(url: str, token: str | None = TOKEN) -> dict[tuple[str, frozenset], float]:
    request = urllib.request.Request(url)  # noqa: S310 (a local test server)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a local test server)
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def wait_for(condition, *, process, log: Path, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"the process exited before {what}:\n{log.read_text()[-5000:]}")
        time.sleep(0.3)
    pytest.fail(f"no {what} after {WAIT_SECONDS} s:\n{log.read_text()[-5000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def environment(tmp_path: Path, **extra) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
        "DATA_DIR": str(tmp_path / "data"),
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


@pytest.mark.django_db
def test_queue_depth_is_the_length_of_the_queues_redis_lists(settings, queue):
    settings.WORKER_QUEUES = (queue, "ingest")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    for _ in range(3):
        celery_app.send_task("tests.metrics.never_run", queue=queue)
    celery_app.send_task("tests.metrics.never_run", queue=queue, priority=9)
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        assert client.llen(queue) == 3
    depths = metrics.queue_depths()
    assert depths[queue] == 4
    families = {f.name: f for f in metrics.QueueDepthCollector().collect()}
    samples = {s.labels["queue"]: s.value for s in families["secops_celery_queue_depth"].samples}
    assert samples[queue] == 4
    assert families["secops_celery_broker_up"].samples[0].value == 1


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_serves_the_task_states_of_its_whole_pool(tmp_path, queue):
    port = free_port()
    log = tmp_path / "worker.log"
    env = environment(
        tmp_path,
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        METRICS_ALLOWED_NETWORKS="192.0.2.0/24",
    )
    command = [
        str(BIN / "celery"),
        "-A",
        "secops",
        "worker",
        "--pool=prefork",
        "--concurrency=2",
        "-Q",
        queue,
        f"--hostname={queue}@%h",
        "--loglevel=info",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "worker_enable_remote_control=False",
        f"task_default_queue={queue}",
        f"task_routes=(json){json.dumps({'*': {'queue': queue}})}",
        "broker_transport_options=(json)"
        + json.dumps({"unacked_key": f"{queue}:unacked", "unacked_index_key": f"{queue}:ui"}),
    ]
    with log.open("ab") as out:
        worker = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: scrape(url), process=worker, log=log, what="metrics endpoint")
        # Queued while a request is served: the worker's lines name that request.
        request = request_id_var.set("page-request-0001")
        try:
            sent = [
                celery_app.send_task("events.process_stale_batches", queue=queue).id
                for _ in range(6)
            ]
        finally:
            request_id_var.reset(request)
        name = "secops_celery_tasks_total"
        labels = frozenset({"task": "events.process_stale_batches", "state": "succeeded"}.items())
        wait_for(
            lambda: scrape(url).get((name, labels)) == 6,
            process=worker,
            log=log,
            what="six tasks counted",
        )
        # Loopback is outside the allowed networks here: only the token opens it.
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(url, token=None)
        assert refused.value.code == 403
    finally:
        stop(worker)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    task_lines = [line for line in lines if line.get("task_id") in sent]
    assert task_lines, log.read_text()[-3000:]
    assert {line["task_name"] for line in task_lines} == {"events.process_stale_batches"}
    assert {line.get("request_id") for line in task_lines} == {"page-request-0001"}
    # More than one process of the pool ran them, and their files are there.
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_add_up_their_page_latency_samples(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    directory = tmp_path / "metrics"
    directory.mkdir()
    # Samples of an earlier start are not added in.
    (directory / "counter_999999.db").write_bytes(b"stale")
    env = environment(tmp_path, ALLOWED_HOSTS="127.0.0.1", PROMETHEUS_MULTIPROC_DIR=str(directory))
    with log.open("ab") as out:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "secops.wsgi",
                "--config",
                "python:secops.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "3",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200,  # noqa: S310
            process=server,
            log=log,
            what="gunicorn answering",
        )
        # Another page than the probe above, whose early tries may be answered late.
        opener = urllib.request.build_opener(NoRedirects)
        for _ in range(30):
            # A new connection each time, so that the workers share them out.
            with pytest.raises(urllib.error.HTTPError, match="301"):
                opener.open(f"{base}/favicon.ico", timeout=5)
        samples = scrape(f"{base}/metrics")
    finally:
        stop(server)
    key = (
        "secops_http_request_duration_seconds_count",
        frozenset({"view": "favicon", "method": "GET", "status": "3xx"}.items()),
    )
    assert samples[key] == 30
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "secops.access"]
    assert len({line["request_id"] for line in access}) == len(access) >= 31
    assert not (directory / "counter_999999.db").exists()
    # Each worker that answered wrote its own file.
    assert len(list(directory.glob("histogram_*.db"))) >= 2
