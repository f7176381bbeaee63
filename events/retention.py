"""Retention: events, alerts and logs older than the retention period are removed."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, LogRecord
from events.models import (
    SecurityEvent,
)


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


def purge_expired(*, days: int | None = None, batch_size: int = 1_000, now=None) -> PurgeResult:
    """Delete events, alerts and logs older than the retention period, in bounded batches."""
    days = days or settings.EVENT_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    events = _delete_in_batches(
        SecurityEvent.objects.filter(last_occurred_at__lt=cutoff), batch_size
    )
    # An old alert of an event that is still kept stays with it, so the event's
    # count, first occurrence and timeline remain true until the event goes.
    old_alerts = Alert.objects.filter(occurred_at__lt=cutoff).exclude(
        event_links__event__last_occurred_at__gte=cutoff
    )
    return PurgeResult(
        events=events,
        alerts=_delete_in_batches(old_alerts, batch_size),
        logs=_delete_in_batches(LogRecord.objects.filter(time__lt=cutoff), batch_size),
    )
