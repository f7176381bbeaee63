"""PostgreSQL restarted in the middle of ingestion: the client's retries and
the pipeline tasks' retries carry everything through, and no alert is lost
or stored twice.

A PostgreSQL cluster of the test's own (initdb into a temporary directory,
on a free port) holds the console's database; a redis-server of the test's
own is the broker. An ingesting client process (tests/faults/ingest_client.py)
and a Celery worker run against them while the cluster is restarted.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from alerts.models import Alert, AlertKey, PendingAlertBatch
from events.models import EventAlert, SecurityEvent
from tests.workers import PostgresCluster, Process, Worker, wait_for

# Whatever database the suite runs on: this test brings its own.
pytestmark = pytest.mark.faults

BATCHES = 40
SIZE = 50


@pytest.fixture
def cluster(tmp_path):
    """A migrated console database on a private cluster."""
    cluster = PostgresCluster().init()
    try:
        cluster.start()
        cluster.create_database("secops")
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DEBUG": "true", "DATABASE_URL": cluster.url("secops")},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield cluster
    finally:
        cluster.remove()


def count(session, query: str, *models, params=()) -> int:
    """``query`` with each ``{}`` standing for the table of a model, in order."""
    statement = sql.SQL(query).format(*(sql.Identifier(m._meta.db_table) for m in models))
    return session.execute(statement, params).fetchone()[0]


def test_ingestion_survives_a_postgresql_restart(cluster, private_redis, tmp_path):
    env = {"DATABASE_URL": cluster.url("secops"), "REDIS_URL": private_redis.url(0)}
    worker = Worker(tmp_path / "worker.log", env=env).start()
    client = Process(
        [sys.executable, "-m", "tests.faults.ingest_client", str(BATCHES), str(SIZE)],
        tmp_path / "client.log",
        {"DEBUG": "true", **env},
    ).start()
    try:

        def batches_sent() -> int:
            return sum('"accepted"' in line for line in client.log().splitlines())

        wait_for(lambda: batches_sent() >= 8, process=client, what="eight batches ingested")
        # A pipeline task is held mid-transaction (its event upsert waits on a
        # lock) when the server goes down, so that the task meets the restart.
        locker = psycopg.connect(cluster.url("secops"))
        locker.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.Identifier(SecurityEvent._meta.db_table)
            )
        )
        with cluster.connect("secops") as session:
            wait_for(
                lambda: count(
                    session,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    params=[f'INSERT INTO "{SecurityEvent._meta.db_table}"%'],
                ),
                process=worker,
                what="a pipeline task mid-transaction",
            )
        restart_started = time.monotonic()
        cluster.restart("fast")
        restart_seconds = time.monotonic() - restart_started
        sent_at_restart = batches_sent()
        with contextlib.suppress(psycopg.Error):
            locker.close()

        wait_for(lambda: client.has_exited(), process=client, what="the client done", seconds=240)
        assert client.process.returncode == 0, client.log()[-5000:]
        lines = [json.loads(line) for line in client.log().splitlines() if line.startswith("{")]
        rule_id = lines[0]["rule"]
        totals = lines[-1]
        assert totals["done"] and totals["accepted"] + totals["duplicates"] == BATCHES * SIZE
        # The restart came mid-ingestion: the client's session was cut and it sent again.
        assert sent_at_restart < BATCHES and totals["retries"] >= 1

        expected = BATCHES * SIZE
        with cluster.connect("secops") as session:
            wait_for(
                lambda: count(session, "SELECT count(*) FROM {}", PendingAlertBatch) == 0,
                process=worker,
                what="every batch through the pipeline",
                seconds=240,
            )
            caught_up = time.monotonic() - restart_started
            # Nothing lost, nothing twice: every alert stored once, in one event once.
            assert count(session, "SELECT count(*) FROM {}", Alert) == expected
            assert count(session, "SELECT count(DISTINCT source_uuid) FROM {}", Alert) == expected
            assert count(session, "SELECT count(*) FROM {}", AlertKey) == expected
            # Predefined rules may take the alerts too; the test's rule took each once.
            of_rule = "FROM {} WHERE event_id IN (SELECT id FROM {} WHERE rule_id = %s)"
            assert (
                count(
                    session,
                    f"SELECT count(*) {of_rule}",
                    EventAlert,
                    SecurityEvent,
                    params=[rule_id],
                )
                == expected
            )
            assert (
                count(
                    session,
                    f"SELECT count(DISTINCT alert_id) {of_rule}",
                    EventAlert,
                    SecurityEvent,
                    params=[rule_id],
                )
                == expected
            )
            assert (
                count(
                    session,
                    "SELECT sum(alert_count) FROM {} WHERE rule_id = %s",
                    SecurityEvent,
                    params=[rule_id],
                )
                == expected
            )
    finally:
        client.stop()
        worker.stop()

    client_retries = totals["retries"]
    task_retries = worker.log().count(" retry: Retry in ")
    # The held task met the restart and was retried.
    assert task_retries >= 1, worker.log()[-5000:]
    print(
        f"\nPostgreSQL restart took {restart_seconds:.1f} s after {sent_at_restart} of {BATCHES} "
        f"batches; client retries {client_retries}, pipeline task retries {task_retries}; "
        f"pipeline caught up {caught_up:.1f} s after the restart began; "
        f"{expected} alerts stored once each"
    )
