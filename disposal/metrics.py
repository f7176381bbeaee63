"""Prometheus metrics of handling (served by ``secops.metrics``)."""

from prometheus_client import Counter

CONNECTOR_ERRORS = Counter(
    "secops_connector_errors_total",
    "Failed connector calls of handling tasks and their undoing, by connector "
    "(simulated, webhook, alibaba), operation (perform, undo) and kind "
    "(retryable, permanent, unexpected: an error the connector did not expect).",
    ["connector", "operation", "kind"],
)
_CONNECTORS = frozenset({"simulated", "webhook", "alibaba"})


def connector_error(connector: str, operation: str, kind: str) -> None:
    CONNECTOR_ERRORS.labels(
        connector if connector in _CONNECTORS else "other", operation, kind
    ).inc()


def kind_of(error) -> str:
    retryable = getattr(error, "retryable", None)
    if retryable is None:
        return "unexpected"
    return "retryable" if retryable else "permanent"
