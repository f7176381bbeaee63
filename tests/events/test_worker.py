"""The pipeline on a real Celery worker: a ``celery worker`` subprocess reading
the test database and a Redis queue of its own, as in production.

Each test routes every task to a queue named for it and starts the worker
with that queue as its default, so what the worker enqueues itself stays
there too: parallel runs and a developer's worker on the same Redis never see
these messages. Skipped unless REDIS_URL is set and the database is
PostgreSQL (CI sets both).
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings

from alerts.models import PendingAlertBatch
from alerts.services import ingest_alerts
from events.models import EventAlert, SecurityEvent
from events.tasks import process_stale_batches
from secops.scope import Scope
from tests import factories
from tests.workers import blocked_insert, session_ended, table_locked, wait_for

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


def test_it_processes_ingested_alerts_on_the_worker(mining, start_worker):
    account, rule, scope = mining
    first = ingest_alerts(mining_alerts(account, 30), scope=scope)
    second = ingest_alerts(mining_alerts(account, 20), scope=scope)
    alert_ids = first.stored_ids + second.stored_ids
    assert len(alert_ids) == 50
    # Committed and queued, not run here: eager execution is off.
    assert pipeline_result(rule, alert_ids) == ([], 50)

    worker = start_worker(pool="solo")

    wait_for(
        aggregated_into_one_event(rule, alert_ids, 50), process=worker, what="event with 50 alerts"
    )
    event = SecurityEvent.objects.get(rule=rule)
    assert event.name == "Mining on web-01"
    assert EventAlert.objects.filter(event=event).count() == 50


def test_it_redelivers_the_batch_of_a_worker_killed_mid_batch(mining, start_worker):
    account, rule, scope = mining

    # The pipeline's event upsert waits, mid-batch.
    with table_locked(SecurityEvent):
        alert_ids = ingest_alerts(mining_alerts(account, 40), scope=scope).stored_ids
        doomed = start_worker()
        backend = wait_for(
            blocked_insert(SecurityEvent),
            process=doomed,
            what="worker blocked mid-batch on the event upsert",
        )
        doomed.kill()
        wait_for(session_ended(backend), process=doomed, what="end of the killed worker's session")

    # Its transaction died with it: nothing of the batch is committed.
    assert pipeline_result(rule, alert_ids) == ([], 40)

    # The message was never acknowledged (late acks), so Redis hands it to the
    # next worker once its visibility timeout has passed; here 1 s, not 1 h.
    survivor = start_worker(pool="solo", visibility_timeout=1)

    wait_for(
        aggregated_into_one_event(rule, alert_ids, 40),
        process=survivor,
        what="event with the 40 alerts",
    )
    assert EventAlert.objects.filter(event__rule=rule).count() == 40


def test_it_sweeps_batches_whose_task_was_lost(mining, worker_queue, start_worker):
    account, rule, scope = mining
    # Stored and committed, but their task never reached a worker (say the
    # broker was down): the sweeper must find them.
    lost = ingest_alerts(mining_alerts(account, 25), scope=scope).stored_ids
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        assert client.delete(worker_queue) == 1
    PendingAlertBatch.objects.update(created_at=datetime.now(UTC) - timedelta(minutes=5))
    assert pipeline_result(rule, lost) == ([], 25)

    worker = start_worker(pool="solo")
    process_stale_batches.delay(older_than_seconds=60)

    wait_for(
        aggregated_into_one_event(rule, lost, 25),
        process=worker,
        what="event with the 25 swept alerts",
    )
