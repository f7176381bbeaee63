"""Retention: events, alerts and logs older than the period are deleted, in
bounded batches, by the service, the command and the periodic task."""

import re
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import partitions
from alerts.models import Alert, AlertEntity, Asset, LogRecord
from events import tasks
from events.models import EventAlert, SecurityEvent
from events.retention import purge_expired
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NOW = timezone.now()


def days_ago(days: float):
    return NOW - timedelta(days=days)


@pytest.fixture
def aged(tenancy):
    """Data on both sides of a 30-day period, each named by its age."""
    account, rule = tenancy.account_a, factories.make_rule()
    asset = factories.make_asset(account)
    rows = {"events": {}, "alerts": {}, "logs": {}}
    for age in (400, 45, 31, 29, 1):
        rows["events"][age] = factories.make_event(
            account, rule=rule, first_occurred_at=days_ago(age + 5), last_occurred_at=days_ago(age)
        )
        rows["alerts"][age] = factories.make_alert(account, asset=asset, occurred_at=days_ago(age))
        rows["logs"][age] = factories.make_log_record(account, asset=asset, time=days_ago(age))
    # An event whose first alert is old but which is still active is kept.
    rows["events"]["active"] = factories.make_event(
        account, rule=rule, first_occurred_at=days_ago(60), last_occurred_at=days_ago(2)
    )
    return rows


def expired_ages(days: int) -> set:
    """Which of the aged alerts and logs a purge with this period removes.

    Events go at the cutoff. Alerts and logs on PostgreSQL are partitioned by
    week: a week goes once it lies wholly before the cutoff, so the period is
    rounded up to the end of the week; on SQLite rows go at the cutoff.
    """
    cutoff = NOW - timedelta(days=days)
    if partitions.enabled():
        cutoff = partitions.week_start(cutoff)
    return {age for age in (400, 45, 31, 29, 1) if days_ago(age) < cutoff}


def kept_ages(days: int) -> set:
    return {400, 45, 31, 29, 1} - expired_ages(days)


def remaining(model, rows: dict) -> set:
    ids = set(model.objects.values_list("id", flat=True))
    return {age for age, row in rows.items() if row.id in ids}


def test_it_deletes_only_what_is_older_than_the_period(aged):
    result = purge_expired(days=30, now=NOW)

    gone = len(expired_ages(30))
    assert (result.events, result.alerts, result.logs) == (3, gone, gone)
    assert remaining(SecurityEvent, aged["events"]) == {29, 1, "active"}
    assert remaining(Alert, aged["alerts"]) == kept_ages(30)
    assert remaining(LogRecord, aged["logs"]) == kept_ages(30)
    assert {29, 1} <= kept_ages(30) and {400, 45} <= expired_ages(30)
    assert Asset.objects.count() == 1


def test_it_deletes_in_batches_until_nothing_old_is_left(aged):
    with CaptureQueriesContext(connection) as queries:
        result = purge_expired(days=30, batch_size=2, now=NOW)

    gone = len(expired_ages(30))
    assert (result.events, result.alerts, result.logs) == (3, gone, gone)
    assert remaining(SecurityEvent, aged["events"]) == {29, 1, "active"}
    assert remaining(Alert, aged["alerts"]) == kept_ages(30)
    assert remaining(LogRecord, aged["logs"]) == kept_ages(30)
    if partitions.enabled():
        # Alerts and logs of the weeks made go with their week's table (the
        # 400-day-old ones, from before any week, are deleted as rows).
        return
    deleted_tables = Counter(
        match.group(1)
        for query in queries.captured_queries
        if (match := re.match(r'DELETE FROM "(\w+)" ', query["sql"]))
    )
    # Three old rows of each kind in batches of two: two statements each.
    assert deleted_tables["events_securityevent"] == 2
    assert deleted_tables["alerts_alert"] == 2
    assert deleted_tables["alerts_logrecord"] == 2


def test_it_takes_the_period_from_the_settings_by_default(aged, settings):
    settings.EVENT_RETENTION_DAYS = 40

    result = purge_expired(now=NOW)

    gone = len(expired_ages(40))
    assert (result.events, result.alerts, result.logs) == (2, gone, gone)
    assert remaining(Alert, aged["alerts"]) == kept_ages(40)
    assert {31, 29, 1} <= kept_ages(40)


def test_it_removes_the_links_of_what_it_deletes(tenancy, aged):
    old_event, old_alert = aged["events"][400], aged["alerts"][400]
    EventAlert.objects.create(event=old_event, alert=aged["alerts"][1])
    entity_link = AlertEntity.objects.create(
        alert=old_alert,
        entity=tenancy.account_a.entities.create(
            type="ip",
            value="203.0.113.7",
            digest="d" * 64,
            first_seen_at=days_ago(400),
            last_seen_at=days_ago(400),
        ),
        role="attacker",
    )

    purge_expired(days=30, now=NOW)

    assert not EventAlert.objects.exists()
    assert not AlertEntity.objects.filter(id=entity_link.id).exists()
    assert Alert.objects.filter(id=aged["alerts"][1].id).exists()


def test_it_keeps_an_old_alert_while_an_event_it_belongs_to_is_kept(aged):
    old_alert, active = aged["alerts"][45], aged["events"]["active"]
    kept = EventAlert.objects.create(event=active, alert=old_alert)

    result = purge_expired(days=30, now=NOW)

    assert result.alerts == len(expired_ages(30)) - 1
    assert remaining(Alert, aged["alerts"]) == kept_ages(30) | {45}
    assert list(EventAlert.objects.values_list("id", flat=True)) == [kept.id]


def test_it_finds_nothing_to_delete_the_second_time(aged):
    purge_expired(days=30, now=NOW)

    result = purge_expired(days=30, now=NOW)

    assert (result.events, result.alerts, result.logs) == (0, 0, 0)


def test_it_prints_what_the_command_deleted(aged):
    out = StringIO()

    call_command("purge_expired", "--days", "30", stdout=out)

    gone = len(expired_ages(30))
    assert out.getvalue().strip() == (
        f"Deleted 3 events, {gone} alerts and {gone} log records older than 30 days."
    )
    assert remaining(Alert, aged["alerts"]) == kept_ages(30)


def test_it_purges_from_the_periodic_task(aged, settings):
    settings.EVENT_RETENTION_DAYS = 30

    gone = len(expired_ages(30))
    assert tasks.purge_expired() == {"events": 3, "alerts": gone, "logs": gone}
