"""The pipeline on a real Celery worker: a ``celery worker`` subprocess reading
the test database and a Redis queue of its own, as in production.

Each test routes every task to a queue named for it and starts the worker
with that queue as its default, so what the worker enqueues itself stays
there too: parallel runs and a developer's worker on the same Redis never see
these messages. Skipped unless REDIS_URL is set and the database is
PostgreSQL (CI sets both).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings

from alerts.models import PendingAlertBatch
from alerts.services import ingest_alerts
from events.models import EventAlert, SecurityEvent
from events.tasks import process_stale_batches
from secops.celery import app as celery_app
from secops.scope import Scope
from tests import factories
from tests.workers import (
    blocked_insert,
    database_url,
    delete_redis_keys,
    session_ended,
    table_locked,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.REDIS_URL
        or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs REDIS_URL and PostgreSQL",
    ),
    # The worker is another process: it sees only committed rows.
    pytest.mark.django_db(transaction=True),
]

WAIT_SECONDS = 30
CELERY = Path(sys.executable).with_name("celery")


# --- the worker ---------------------------------------------------------------


class Worker:
    """``celery worker`` with one process on one queue, logging to a file.

    The solo pool runs tasks in the worker's own process. It also holds back
    every acknowledgement until the task is done (they go through the event
    loop, which a running task blocks), so a test of when messages are
    acknowledged needs the prefork pool, production's default.
    """

    def __init__(self, queue: str, log_path: Path, *, pool: str = "solo", **transport_options):
        self.queue = queue
        self.log_path = log_path
        self.pool = pool
        # Messages a worker has taken but not acknowledged wait in a hash that
        # every worker on the Redis database sweeps; this test's have their own.
        self.transport_options = {
            "unacked_key": f"{queue}:unacked",
            "unacked_index_key": f"{queue}:unacked_index",
            "unacked_mutex_key": f"{queue}:unacked_mutex",
            **transport_options,
        }
        self.process: subprocess.Popen | None = None
        self.killed = False

    def start(self) -> "Worker":
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "true",
            # A session blocked on a lock notices a vanished client only when
            # it next writes to it; this makes the server check every 200 ms,
            # as a crashed worker's session would end once TCP gives up.
            "PGOPTIONS": "-c client_connection_check_interval=200",
        }
        command = [
            str(CELERY),
            "-A",
            "secops",
            "worker",
            f"--pool={self.pool}",
            "--concurrency=1",
            "-Q",
            self.queue,
            f"--hostname={self.queue}@%h",
            "--loglevel=info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            # No remote-control mailbox: it would leave a binding in Redis.
            "worker_enable_remote_control=False",
            # Extra arguments are Celery settings: tasks the worker enqueues
            # itself (the sweeper's batches) go to this queue as well.
            f"task_default_queue={self.queue}",
            f"task_routes=(json){json.dumps({'*': {'queue': self.queue}})}",
            f"broker_transport_options=(json){json.dumps(self.transport_options)}",
        ]
        with self.log_path.open("ab") as log:
            # A session of its own, so that a kill reaches the pool's child too.
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def has_exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL to every process of the worker, as when its container dies:
        no shutdown, no acknowledgement, no rollback sent to the database."""
        self.killed = True
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.has_exited():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(condition, *, worker: Worker, what: str, seconds: float = WAIT_SECONDS):
    """Poll ``condition`` until it returns something truthy, and return that.

    Gives up early when ``worker`` is meant to be running and has exited.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker.has_exited() and not worker.killed:
            pytest.fail(f"the worker exited before {what}:\n{worker.log()[-5000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} after {seconds} s; worker log:\n{worker.log()[-5000:]}")


@pytest.fixture
def queue():
    """A queue of this test's own, where every task of this process goes."""
    name = f"test-worker-{uuid.uuid4().hex[:12]}"
    previous = {
        "task_routes": celery_app.conf.task_routes,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.update(task_routes={"*": {"queue": name}}, task_always_eager=False)
    try:
        yield name
    finally:
        celery_app.conf.update(previous)
        delete_redis_keys(name)


@pytest.fixture
def workers(queue, tmp_path):
    """Starts workers on the test's queue; every one is stopped at the end."""
    started: list[Worker] = []

    def start(*, pool: str = "solo", **transport_options) -> Worker:
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        worker = Worker(queue, log_path, pool=pool, **transport_options)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


# --- data -----------------------------------------------------------------------


@pytest.fixture
def mining():
    """An account and a custom rule that groups its mining alerts by host."""
    organisation = factories.make_organisation()
    account = factories.make_account(organisation)
    rule = factories.make_rule(
        organisation=organisation,
        match_types=["mining"],
        group_by=["asset"],
        event_name_template="Mining on {asset_name}",
    )
    scope = Scope.for_accounts(organisation.id, [account.id])
    return account, rule, scope


def mining_alerts(account, count: int, *, host: str = "web-01") -> list[dict]:
    # One moment for all: the alerts share the rule's 24-hour window.
    occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return [
        {
            "source": "security_center",
            "uuid": f"{uuid.uuid4()}",
            "account": account.uid,
            "type": "mining",
            "name": "Cryptomining program",
            "level": "medium",
            "occurred_at": occurred_at,
            "asset": {"uuid": f"uuid-{host}", "name": host},
            "entities": [
                {"type": "process", "path": "/tmp/xmrig", "cmdline": f"/tmp/xmrig -t {n}"}
            ],
        }
        for n in range(count)
    ]


def pipeline_result(rule, alert_ids) -> tuple[list[int], int]:
    """(alert_count of the rule's events, alerts still waiting in a pending batch)."""
    counts = list(SecurityEvent.objects.filter(rule=rule).values_list("alert_count", flat=True))
    waiting = {pk for batch in PendingAlertBatch.objects.all() for pk in batch.alert_ids}
    return counts, len(waiting & set(alert_ids))


def aggregated_into_one_event(rule, alert_ids, expected: int):
    def check():
        counts, unprocessed = pipeline_result(rule, alert_ids)
        return counts == [expected] and unprocessed == 0

    return check


# --- tests ----------------------------------------------------------------------


def test_it_processes_ingested_alerts_on_the_worker(mining, workers):
    account, rule, scope = mining
    first = ingest_alerts(mining_alerts(account, 30), scope=scope)
    second = ingest_alerts(mining_alerts(account, 20), scope=scope)
    alert_ids = first.stored_ids + second.stored_ids
    assert len(alert_ids) == 50
    # Committed and queued, not run here: eager execution is off.
    assert pipeline_result(rule, alert_ids) == ([], 50)

    worker = workers()

    wait_for(
        aggregated_into_one_event(rule, alert_ids, 50), worker=worker, what="event with 50 alerts"
    )
    event = SecurityEvent.objects.get(rule=rule)
    assert event.name == "Mining on web-01"
    assert EventAlert.objects.filter(event=event).count() == 50


def test_it_redelivers_the_batch_of_a_worker_killed_mid_batch(mining, workers):
    account, rule, scope = mining

    # The pipeline's event upsert waits, mid-batch.
    with table_locked(SecurityEvent):
        alert_ids = ingest_alerts(mining_alerts(account, 40), scope=scope).stored_ids
        doomed = workers(pool="prefork")
        backend = wait_for(
            blocked_insert(SecurityEvent),
            worker=doomed,
            what="worker blocked mid-batch on the event upsert",
        )
        doomed.kill()
        wait_for(session_ended(backend), worker=doomed, what="end of the killed worker's session")

    # Its transaction died with it: nothing of the batch is committed.
    assert pipeline_result(rule, alert_ids) == ([], 40)

    # The message was never acknowledged (late acks), so Redis hands it to the
    # next worker once its visibility timeout has passed; here 1 s, not 1 h.
    survivor = workers(visibility_timeout=1, unacked_restore_interval=1, unacked_restore_throttle=1)

    wait_for(
        aggregated_into_one_event(rule, alert_ids, 40),
        worker=survivor,
        what="event with the 40 alerts",
    )
    assert EventAlert.objects.filter(event__rule=rule).count() == 40


def test_it_sweeps_batches_whose_task_was_lost(mining, queue, workers):
    account, rule, scope = mining
    # Stored and committed, but their task never reached a worker (say the
    # broker was down): the sweeper must find them.
    lost = ingest_alerts(mining_alerts(account, 25), scope=scope).stored_ids
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        assert client.delete(queue) == 1
    PendingAlertBatch.objects.update(created_at=datetime.now(UTC) - timedelta(minutes=5))
    assert pipeline_result(rule, lost) == ([], 25)

    worker = workers()
    process_stale_batches.delay(older_than_seconds=60)

    wait_for(
        aggregated_into_one_event(rule, lost, 25),
        worker=worker,
        what="event with the 25 swept alerts",
    )
