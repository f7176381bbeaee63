"""Retention: events, alerts and logs older than the retention period are removed.

On PostgreSQL alerts (with their entity links) and logs are partitioned by
week (alerts.partitions): a week wholly past the retention period is dropped
whole, so they are kept for the retention period rounded up to the end of
their week. Rows outside the weekly partitions (the default partition's) and
weeks that must stay for an event still kept are deleted row by row.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from alerts import partitions
from alerts.models import Alert, AlertKey, LogRecord
from events.models import EventAlert, SecurityEvent


@dataclass
class PurgeResult:
    events: int = 0
    alerts: int = 0
    logs: int = 0


def _delete_in_batches(queryset, batch_size: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            queryset.model.objects.filter(id__in=ids).delete()
        deleted += len(ids)


def _drop_alert_week(start) -> int | None:
    """Drop one week of alerts and their links; the alerts dropped, or None
    when an event still kept holds one of them."""
    alerts_name, links_name = partitions.alert_week_names(start)
    with transaction.atomic(), connection.cursor() as cursor:
        # Nothing reads or writes the week from here to the drop.
        count = partitions.lock_and_count(cursor, alerts_name)
        partitions.lock_and_count(cursor, links_name)
        if EventAlert.objects.filter(alert_id__in=partitions.alerts_of(alerts_name)).exists():
            return None
        partitions.release_references(alerts_name)
        partitions.drop(cursor, links_name)
        partitions.drop(cursor, alerts_name)
    return count


def _drop_log_week(partition) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        count = partitions.lock_and_count(cursor, partition.name)
        partitions.drop(cursor, partition.name)
    return count


def purge_expired(*, days: int | None = None, batch_size: int = 1_000, now=None) -> PurgeResult:
    """Delete events, alerts and logs older than the retention period, in bounded batches."""
    days = days or settings.EVENT_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    result = PurgeResult(
        events=_delete_in_batches(
            SecurityEvent.objects.filter(last_occurred_at__lt=cutoff), batch_size
        )
    )
    # Rows newer than this go with their week.
    row_cutoff = cutoff
    if partitions.enabled():
        row_cutoff = min(cutoff, partitions.week_start(cutoff))
        for start in partitions.expired_alert_weeks(cutoff):
            result.alerts += _drop_alert_week(start) or 0
        for partition in partitions.expired_log_weeks(cutoff):
            result.logs += _drop_log_week(partition)
    # An old alert of an event that is still kept stays with it, so the event's
    # count, first occurrence and timeline remain true until the event goes.
    old_alerts = Alert.objects.filter(occurred_at__lt=row_cutoff).exclude(
        event_links__event__last_occurred_at__gte=cutoff
    )
    result.alerts += _delete_in_batches(old_alerts, batch_size)
    result.logs += _delete_in_batches(LogRecord.objects.filter(time__lt=row_cutoff), batch_size)
    # An alert's identity is forgotten once the alert is gone.
    gone = AlertKey.objects.filter(occurred_at__lt=cutoff).exclude(
        Exists(
            Alert.objects.filter(
                account_id=OuterRef("account_id"),
                source=OuterRef("source"),
                source_uuid=OuterRef("source_uuid"),
            )
        )
    )
    _delete_in_batches(gone, batch_size)
    # The weeks to come exist before their alerts arrive.
    partitions.ensure_partitions(now=now, days=days)
    return result
