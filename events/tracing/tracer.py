"""The tracing diagram of one event, or of several on one graph."""

from events.models import SecurityEvent
from events.tracing.alert_graph import add_alert_graph
from events.tracing.diagram import TracingGraph, make_diagram
from events.tracing.graph import LogGraph
from events.tracing.limits import DEFAULT_BOUNDS, MAX_EVENTS_ON_ONE_GRAPH, TracingBounds
from events.tracing.logs import add_log_records
from events.tracing.queries import read_alerts, read_entities, read_logs
from events.tracing.seeds import EntityMatcher
from events.tracing.selection import choose_nodes, neighbourhood
from events.tracing.traces import EventTrace, Unavailable
from secops.params import positive_int
from secops.scope import Scope


class TooManyEvents(ValueError):
    """More events were chosen than one diagram shows."""


def trace_event(
    event: SecurityEvent, scope: Scope, bounds: TracingBounds = DEFAULT_BOUNDS
) -> TracingGraph:
    """The tracing diagram of one event (already fetched within ``scope``)."""
    return _build([event], scope, bounds, with_event_nodes=False)


def trace_events(
    events: list[SecurityEvent], scope: Scope, bounds: TracingBounds = DEFAULT_BOUNDS
) -> TracingGraph:
    """One diagram of several events (already fetched within ``scope``), joined
    where their alerts name the same IP, file hash, process, domain or user."""
    if len(events) > MAX_EVENTS_ON_ONE_GRAPH:
        raise TooManyEvents(
            f"Choose at most {MAX_EVENTS_ON_ONE_GRAPH} events for one diagram; "
            f"{len(events)} were chosen."
        )
    return _build(events, scope, bounds, with_event_nodes=True)


def parse_event_ids(values: list[str]) -> list[int]:
    """Event ids from ``?ids=1,2,3`` and/or repeated ``?ids=`` parameters, in order.

    Raises ValueError for anything that is not a positive integer.
    """
    ids: dict[int, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            number = positive_int(part)
            if number is None:
                raise ValueError(f"not an event id: {part!r}")
            ids[number] = None
    return list(ids)


def _build(
    events: list[SecurityEvent], scope: Scope, bounds: TracingBounds, *, with_event_nodes: bool
) -> TracingGraph:
    events = list(events)
    traces = {event.id: EventTrace(event) for event in events}
    alerts = read_alerts(events, scope)
    entities = read_entities(events, scope)
    graph = LogGraph()
    for trace in traces.values():
        trace.decide_hosts(alerts.get(trace.event.id, []), bounds.context_window)
        graph.host_names.update(trace.hosts)
    readable = [trace for trace in traces.values() if not trace.reason]
    rows, logs_truncated = read_logs(readable, scope, bounds.max_log_records)
    matcher = EntityMatcher(graph, add_log_records(graph, rows))

    relevant_by_event: dict[int, set[str]] = {}
    for trace in traces.values():
        if trace.reason:
            continue
        if not any(row["host_uuid"] in trace.hosts for row in rows):
            trace.reason = Unavailable.NO_LOGS.format(**trace.where())
            continue
        trace.seeds = matcher.seeds(entities.get(trace.event.id, []), trace)
        if not trace.seeds:
            trace.reason = Unavailable.NOT_REPRODUCIBLE.format(**trace.where())
            continue
        relevant_by_event[trace.event.id] = neighbourhood(graph, trace.seeds, trace.hosts)

    from_alerts: set[str] = set()
    if not with_event_nodes:
        # One event: what its alerts give is drawn whether or not the logs add to it.
        for event_id, trace in traces.items():
            host_names = {
                alert["asset__uuid"]: alert["asset__name"] or alert["asset__uuid"]
                for alert in alerts.get(event_id, [])
                if alert["asset__uuid"]
            }
            drawn = add_alert_graph(graph, trace, entities.get(event_id, []), host_names)
            relevant_by_event[event_id] = relevant_by_event.get(event_id, set()) | drawn
            from_alerts |= drawn

    shown, node_total = choose_nodes(
        graph,
        traces,
        relevant_by_event,
        entities,
        with_event_nodes=with_event_nodes,
        max_nodes=bounds.max_nodes,
        from_alerts=from_alerts,
    )
    return make_diagram(
        graph,
        list(traces.values()),
        shown,
        node_total=node_total,
        bounds=bounds,
        logs_read=len(rows),
        logs_truncated=logs_truncated,
        with_event_nodes=with_event_nodes,
    )
