"""Several events on one diagram: a node per event, linked to the entities of
its alerts, and the entities where the events' diagrams join."""

from alerts.models import EntityType
from events.tracing.graph import (
    NAMED_IN_ALERTS,
    NODE_TYPE_OF_ENTITY,
    SEEN_IN_LOGS_AS,
    LogGraph,
    NodeType,
    Source,
)
from events.tracing.traces import EventTrace


def add_event_nodes(
    graph: LogGraph, traces: dict[int, EventTrace], entities: dict[int, list[dict]]
) -> tuple[list[str], set[str]]:
    """An event node per event, linked to the entities of its alerts; returns
    the event nodes and the entity nodes.

    Entities are keyed by their normalised value, so two events naming the
    same IP, file hash, domain, process command line or user meet at one node.
    """
    event_ids = []
    entity_nodes: set[str] = set()
    for trace in traces.values():
        event = trace.event
        event_id, node = graph.node(
            ("event", str(event.id)),
            NodeType.EVENT,
            f"#{event.id} {event.name}",
            None,
            None,
            Source.ALERTS,
        )
        node.first_seen = event.first_occurred_at
        node.events.add(event.id)
        node.attributes.update(
            {
                "event": event.id,
                "name": event.name,
                "risk": event.get_risk_display(),
                "status": event.get_status_display(),
                "first_occurred": event.first_occurred_at.isoformat(),
                "last_occurred": event.last_occurred_at.isoformat(),
                "traced": trace.available,
            }
        )
        if trace.reason:
            node.attributes["not_traced_because"] = trace.reason
        event_ids.append(event_id)
        for entity in entities.get(event.id, []):
            entity_id = _entity_node(graph, entity)
            entity_nodes.add(entity_id)
            graph.nodes[entity_id].events.add(event.id)
            graph.edge(
                event_id,
                entity_id,
                NAMED_IN_ALERTS,
                None,
                None,
                len(entity["alerts"]),
                origin=Source.ALERTS,
            )
            for matched in entity.get("matched", {}).get(event.id, ()):
                if matched != entity_id:
                    graph.edge(entity_id, matched, SEEN_IN_LOGS_AS, None, None)
    return event_ids, entity_nodes


def _entity_node(graph: LogGraph, entity: dict) -> str:
    entity_type, value, attributes = entity["type"], entity["value"], entity["attributes"]
    if entity_type in (EntityType.IP, EntityType.DOMAIN):
        key = (entity_type, value)
    elif entity_type == EntityType.FILE and (attributes.get("sha256") or attributes.get("md5")):
        key = ("file", "hash", attributes.get("sha256") or attributes.get("md5"))
    else:
        key = ("entity", entity_type, value)
    label = value
    if entity_type == EntityType.FILE and attributes.get("path"):
        label = attributes["path"]
    node_type = NODE_TYPE_OF_ENTITY.get(entity_type, NodeType.PAYLOAD)
    node_id, node = graph.node(key, node_type, label, None, None, Source.ALERTS)
    for name, item in attributes.items():
        if isinstance(item, str | int | float | bool):
            node.attributes.setdefault(name, item)
    node.alerts.update(entity["alerts"])
    node.malicious = node.malicious or entity["malicious"]
    return node_id


def joins(graph: LogGraph, shown: set[str]) -> list[dict]:
    """The entities several events share: where their diagrams join."""
    return [
        {"node": node_id, "label": graph.nodes[node_id].label, "events": sorted(events)}
        for node_id in sorted(shown)
        if graph.nodes[node_id].type != NodeType.EVENT
        and len(events := graph.nodes[node_id].events) > 1
    ]
