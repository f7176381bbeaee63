"""The pipeline under concurrent workers, on PostgreSQL: one Unhandled event per
group and exact alert counts however the batches interleave, and an alert
processed by two workers at once aggregated once."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count

from alerts.models import PendingAlertBatch
from events.models import (
    EventAlert,
    EventStatus,
    EventStatusChange,
    SecurityEvent,
)
from events.pipeline import process_alerts, process_batch
from events.services import change_event_status
from secops.enums import RiskLevel
from tests import factories

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers"
    ),
    pytest.mark.django_db(transaction=True),
]

WORKERS = 4
ROUNDS = 5
ALERTS_PER_WORKER = 3


@pytest.fixture
def host(db):
    account = factories.make_account(factories.make_organisation())
    return factories.make_asset(account)


def stored_mining_alerts(asset, count: int) -> list[int]:
    """Alerts of one group ("Cryptomining on a host"), stored without the pipeline."""
    return [
        factories.make_alert(asset.account, asset=asset, type="mining", level=RiskLevel.LOW).id
        for _ in range(count)
    ]


def pending_batch(asset, count: int) -> int:
    """A batch of stored alerts waiting for the pipeline (its task not run)."""
    return PendingAlertBatch.objects.create(alert_ids=stored_mining_alerts(asset, count)).id


def run_at_once(calls) -> list:
    """Run each call in its own thread (and database connection), all released together."""
    barrier = threading.Barrier(len(calls))
    results, failures = [None] * len(calls), []

    def worker(position, call):
        try:
            barrier.wait(timeout=10)
            results[position] = call()
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    return results


def mining_events(asset):
    return SecurityEvent.objects.filter(account=asset.account, rule__key="mining-on-host")


def each_alert_linked_once(event) -> bool:
    counts = EventAlert.objects.filter(event=event).values("alert").annotate(n=Count("id"))
    return {row["n"] for row in counts} == {1}


def test_it_keeps_one_unhandled_event_with_an_exact_count_under_concurrent_batches(host):
    total = 0
    for _ in range(ROUNDS):
        batches = [pending_batch(host, ALERTS_PER_WORKER) for _ in range(WORKERS)]

        run_at_once([lambda batch=batch: process_batch(batch) for batch in batches])

        total += WORKERS * ALERTS_PER_WORKER
        event = mining_events(host).get(status=EventStatus.UNHANDLED)
        assert event.alert_count == total
        assert event.alerts.count() == total
        assert each_alert_linked_once(event)

    assert mining_events(host).count() == 1
    assert EventStatusChange.objects.filter(event__in=mining_events(host)).count() == 1


def test_it_opens_exactly_one_new_event_when_concurrent_batches_find_the_old_one_closed(host):
    process_alerts(stored_mining_alerts(host, 2))
    old = mining_events(host).get()
    change_event_status(old, EventStatus.HANDLED)
    batches = [pending_batch(host, ALERTS_PER_WORKER) for _ in range(WORKERS)]

    run_at_once([lambda batch=batch: process_batch(batch) for batch in batches])

    old.refresh_from_db()
    assert (old.status, old.alert_count) == (EventStatus.HANDLED, 2)
    new = mining_events(host).get(status=EventStatus.UNHANDLED)
    assert new.alert_count == new.alerts.count() == WORKERS * ALERTS_PER_WORKER
    assert mining_events(host).count() == 2


def test_it_aggregates_a_batch_given_to_two_workers_at_once_only_once(host):
    for _ in range(ROUNDS):
        batch = pending_batch(host, 20)
        ids = PendingAlertBatch.objects.get(id=batch).alert_ids

        run_at_once([lambda batch=batch: process_batch(batch)] * 2)

        assert EventAlert.objects.filter(alert_id__in=ids).count() == len(ids)
        assert not PendingAlertBatch.objects.filter(id=batch).exists()
    event = mining_events(host).get()
    assert event.alert_count == event.alerts.count() == ROUNDS * 20
    assert each_alert_linked_once(event)


def test_it_leaves_a_waiting_batch_another_worker_holds(host):
    given, held, free = (pending_batch(host, 2) for _ in range(3))
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                PendingAlertBatch.objects.select_for_update().get(id=held)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        process_batch(given)
        waiting = set(PendingAlertBatch.objects.values_list("id", flat=True))
    finally:
        release.set()
        holder.join(timeout=30)

    assert waiting == {held}
    assert free not in waiting
    assert mining_events(host).get().alert_count == 4
