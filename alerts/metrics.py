"""Prometheus metrics of ingestion (served by ``secops.metrics``)."""

from prometheus_client import Counter

from alerts.models import AlertSource, IngestionKind, LogType

INGESTED = Counter(
    "secops_ingested_total",
    "Items stored by ingestion (duplicates not counted), by kind (alert, log) and "
    "source (an alert's source, a log's type).",
    ["kind", "source"],
)
REJECTED = Counter(
    "secops_ingest_rejected_total",
    "Items refused by ingestion (invalid, or naming an account out of scope), by kind "
    "and source as the item named it (other: none or an unknown one).",
    ["kind", "source"],
)

# Sources are named by clients: only known ones become label values, so that
# a client cannot make up series without end.
_KNOWN_SOURCES = {
    IngestionKind.ALERT: frozenset(AlertSource.values),
    IngestionKind.LOG: frozenset(LogType.values),
}


def source_label(kind: str, source) -> str:
    return source if source in _KNOWN_SOURCES.get(kind, ()) else "other"


def count_stored(kind: str, counts: dict[str, int]) -> None:
    for source, count in counts.items():
        if count:
            INGESTED.labels(kind, source_label(kind, source)).inc(count)


def count_rejected(kind: str, items: list, errors: list[dict]) -> None:
    """One per refused item (an item may have several errors)."""
    for index in {error["index"] for error in errors}:
        item = items[index] if index < len(items) else None
        source = None
        if isinstance(item, dict):
            source = item.get("source") if kind == IngestionKind.ALERT else item.get("type")
        REJECTED.labels(kind, source_label(kind, source)).inc()
