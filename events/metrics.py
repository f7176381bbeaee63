"""Prometheus metrics of the aggregation pipeline (served by ``secops.metrics``)."""

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from alerts.models import PendingAlertBatch
from secops.metrics import add_scrape_collector

PIPELINE_LAG = Histogram(
    "secops_pipeline_lag_seconds",
    "Seconds from an alert batch's ingestion to its alerts being in their events "
    "(one observation per batch).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
PIPELINE_ALERTS = Counter(
    "secops_pipeline_alerts_total",
    "Alerts taken through the pipeline (whitelisted or aggregated into events).",
)


def batch_done(received_at, alert_count: int) -> None:
    PIPELINE_LAG.observe(max((timezone.now() - received_at).total_seconds(), 0.0))
    PIPELINE_ALERTS.inc(alert_count)


class WaitingBatchesCollector:
    """Read from the database at each scrape: alert batches stored and not yet
    through the pipeline, and how long the oldest has waited (the lag of
    alerts still on their way, which the histogram only sees once they arrive)."""

    def collect(self):
        waiting = PendingAlertBatch.objects.aggregate(count=Count("id"), oldest=Min("created_at"))
        batches = GaugeMetricFamily(
            "secops_pipeline_waiting_batches", "Alert batches waiting for the pipeline."
        )
        batches.add_metric([], waiting["count"])
        oldest = GaugeMetricFamily(
            "secops_pipeline_oldest_waiting_seconds",
            "How long the oldest alert batch waiting for the pipeline has waited (0: none).",
        )
        age = (timezone.now() - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0
        oldest.add_metric([], max(age, 0.0))
        yield batches
        yield oldest


add_scrape_collector(WaitingBatchesCollector())
