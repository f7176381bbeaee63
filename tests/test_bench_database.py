"""The bench empties what a previous run left, waiting alert batches included:
a batch an interrupted run left behind would otherwise count as alerts the
next run did not process (its figures then say the run is invalid)."""

import pytest
from django.db import connection

from alerts.models import PendingAlertBatch
from bench.database import empty_touched_tables
from events.models import SecurityEvent
from tests.factories import make_event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench runs on PostgreSQL"),
]


def test_it_empties_the_waiting_batches_with_the_alert_and_event_tables(tenancy):
    PendingAlertBatch.objects.create(alert_ids=[1, 2, 3])
    make_event(tenancy.account_a)
    # The test's transaction still holds the deferred foreign-key checks of
    # those rows, which TRUNCATE refuses to skip; a bench run has none.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    empty_touched_tables()

    assert not PendingAlertBatch.objects.exists()
    assert not SecurityEvent.objects.exists()
