"""secops.db.work_lock and the broker settings that bring a dead worker's
messages back: what the fault suites rely on, checked without workers."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from secops.celery import DURABLE_TASK_OPTIONS, redis_transport_options
from secops.db import work_lock
from tests.workers import database_url

on_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="needs PostgreSQL"
)


def broker_options(**env) -> str:
    """The broker transport options settings make from the environment with
    ``env`` (a None value removes the variable)."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "secops.settings", "DEBUG": "true"}
    for name, value in env.items():
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(sorted(settings.CELERY_BROKER_TRANSPORT_OPTIONS.items()))",
        ],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else result.stderr


def test_it_reads_the_visibility_timeout_from_the_environment():
    assert broker_options(CELERY_VISIBILITY_TIMEOUT="45") == str(
        sorted(
            {
                "visibility_timeout": 45,
                "unacked_restore_interval": 4,
                "unacked_restore_throttle": 1,
            }.items()
        )
    )
    assert "('visibility_timeout', 300)" in broker_options(CELERY_VISIBILITY_TIMEOUT=None)
    assert "CELERY_VISIBILITY_TIMEOUT" in broker_options(CELERY_VISIBILITY_TIMEOUT="0")


@pytest.mark.parametrize(("timeout", "interval"), [(1, 1), (5, 1), (30, 3), (300, 10), (3600, 10)])
def test_dead_workers_messages_are_looked_for_often_enough(timeout, interval):
    options = redis_transport_options(timeout)
    assert options["visibility_timeout"] == timeout
    assert options["unacked_restore_interval"] == interval
    # Every sweep looks: kombu's default looks only every tenth time.
    assert options["unacked_restore_throttle"] == 1


def test_durable_tasks_retry_a_lost_database_connection():
    assert set(DURABLE_TASK_OPTIONS["autoretry_for"]) == {OperationalError, InterfaceError}
    assert DURABLE_TASK_OPTIONS["acks_late"] and DURABLE_TASK_OPTIONS["reject_on_worker_lost"]


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_it_waits_for_a_live_holder_and_takes_over_from_a_dead_one():
    holder = psycopg.connect(database_url(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('test.work'), 7)")

    # Held by a live session: waited for, up to the bound.
    with pytest.raises(OperationalError), work_lock("test.work", 7, wait_seconds=0.3):
        pass
    # Other work is not held up.
    with work_lock("test.work", 8, wait_seconds=0.3) as lock:
        assert lock.holder_dead

    # The holder's session ends (its process died): the lock is free at once,
    # and whoever takes it knows a claim on the row is a dead worker's.
    holder.close()
    with work_lock("test.work", 7, wait_seconds=5) as lock:
        assert lock.holder_dead
        other = psycopg.connect(database_url(), autocommit=True)
        taken = other.execute("SELECT pg_try_advisory_lock(hashtext('test.work'), 7)").fetchone()
        assert taken == (False,)
    # Released when the block ends.
    assert other.execute("SELECT pg_try_advisory_lock(hashtext('test.work'), 7)").fetchone() == (
        True,
    )
    other.close()


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="SQLite only"
)
def test_on_sqlite_it_holds_nothing_and_knows_nothing_of_other_claims():
    with work_lock("test.work", 7) as lock:
        assert not lock.holder_dead


@on_postgres
@pytest.mark.django_db
def test_a_wait_that_times_out_leaves_the_callers_transaction_usable():
    holder = psycopg.connect(database_url(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('test.work'), 9)")
    try:
        with pytest.raises(OperationalError), work_lock("test.work", 9, wait_seconds=0.2):
            pass
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            assert cursor.fetchone()[0] == "0"
    finally:
        holder.close()
