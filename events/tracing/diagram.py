"""The diagram as the page and its JSON show it, with the log records behind it."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from alerts.models import LogRecord
from events.tracing.graph import LogGraph, NodeType
from events.tracing.joins import joins
from events.tracing.limits import ALERT_IDS_PER_NODE, RECORD_IDS_PER_ELEMENT, TracingBounds
from events.tracing.traces import EventTrace
from secops.pagination import Page

PREVIEW_PER_PAGE = 25


@dataclass
class TracingGraph:
    """The diagram, ready for JSON, with the log records behind it."""

    traces: list[EventTrace]
    nodes: list[dict]
    edges: list[dict]
    node_total: int
    bounds: TracingBounds
    logs_read: int
    logs_truncated: bool
    records: list[dict]  # the log records behind the shown nodes and edges, by time
    host_names: dict[str, str]
    records_by_node: dict[str, list[int]]
    joins: list[dict] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether there is anything to draw: the alerts' part or the logs'."""
        return bool(self.nodes)

    @property
    def from_logs(self) -> bool:
        """Whether the host logs add to the diagram (for at least one event)."""
        return any(trace.available for trace in self.traces)

    @property
    def logs_note(self) -> str:
        """Why the host logs add nothing, when they do not."""
        if self.from_logs:
            return ""
        return " ".join(dict.fromkeys(trace.reason for trace in self.traces))

    @property
    def reason(self) -> str:
        """Why there is no diagram at all (an event without alerts in the view)."""
        return "" if self.available else self.logs_note

    @property
    def truncated(self) -> bool:
        return self.node_total > len(self.nodes)

    def legend(self) -> list[tuple[str, str]]:
        present = {node["type"] for node in self.nodes}
        return [(value, label) for value, label in NodeType.choices if value in present]

    def as_dict(self) -> dict:
        return {
            "available": self.available,
            "reason": self.reason,
            "from_logs": self.from_logs,
            "logs_note": self.logs_note,
            "events": [trace.as_dict() for trace in self.traces],
            "nodes": self.nodes,
            "edges": self.edges,
            "truncated": self.truncated,
            "node_total": self.node_total,
            "node_limit": self.bounds.max_nodes,
            "log_records": {
                "read": self.logs_read,
                "limit": self.bounds.max_log_records,
                "truncated": self.logs_truncated,
                "behind_graph": len(self.records),
            },
            "legend": [{"type": value, "label": label} for value, label in self.legend()],
            "joins": self.joins,
        }

    def preview(self, page: int = 1, node_id: str | None = None) -> Page:
        """One page of the log records behind the diagram, or behind one node of it."""
        records = self.records
        if node_id:
            wanted = set(self.records_by_node.get(node_id, ()))
            records = [record for record in records if record["id"] in wanted]
        start = (page - 1) * PREVIEW_PER_PAGE
        return Page(
            items=[self._shown_record(row) for row in records[start : start + PREVIEW_PER_PAGE]],
            number=page,
            has_previous=page > 1,
            has_next=len(records) > start + PREVIEW_PER_PAGE,
        )

    def _shown_record(self, row: dict) -> dict:
        return {
            "ref": LogRecord.reference_for(row["digest"]),
            "time": row["time"],
            "host": self.host_names.get(row["host_uuid"], row["host_uuid"]),
            "log_type": row["log_type"],
            "fields": json.dumps(row["fields"], sort_keys=True, ensure_ascii=False),
        }


def make_diagram(
    graph: LogGraph,
    traces: list[EventTrace],
    shown: list[str],
    *,
    node_total: int,
    bounds: TracingBounds,
    logs_read: int,
    logs_truncated: bool,
    with_event_nodes: bool,
) -> TracingGraph:
    """The diagram of the ``shown`` nodes of ``graph`` and the edges between them."""
    shown_set = set(shown)
    shown_edges = [
        (key, edge)
        for key, edge in graph.edges.items()
        if key[0] in shown_set and key[1] in shown_set
    ]
    shown_edges.sort(key=lambda item: (_sort_time(item[1].time), item[0]))
    nodes = [_node_dict(graph, node_id, with_event_nodes) for node_id in shown]
    edges = [
        {
            "id": f"{source}>{target}>{relation}",
            "source": source,
            "target": target,
            "relation": relation,
            "time": edge.time.isoformat() if edge.time else None,
            # An edge the alerts alone give counts once.
            "count": max(edge.count, 1),
            "sources": sorted(edge.sources),
            "log_records": _references(graph, edge.records),
        }
        for (source, target, relation), edge in shown_edges
    ]
    behind: set[int] = set()
    records_by_node: dict[str, list[int]] = {}
    for node_id in shown:
        records_by_node[node_id] = graph.nodes[node_id].records
        behind.update(graph.nodes[node_id].records)
    for _, edge in shown_edges:
        behind.update(edge.records)
    rows = sorted((graph.rows[i] for i in behind), key=lambda r: (r["time"], r["id"]))
    return TracingGraph(
        traces=traces,
        nodes=nodes,
        edges=edges,
        node_total=node_total,
        bounds=bounds,
        logs_read=logs_read,
        logs_truncated=logs_truncated,
        records=rows,
        host_names=dict(graph.host_names),
        records_by_node=records_by_node,
        joins=joins(graph, shown_set) if with_event_nodes else [],
    )


def _references(graph: LogGraph, record_ids: list[int]) -> list[str]:
    """What the browser is told of the records behind a node or edge."""
    return [
        LogRecord.reference_for(graph.rows[record_id]["digest"])
        for record_id in sorted(set(record_ids))[:RECORD_IDS_PER_ELEMENT]
    ]


def _node_dict(graph: LogGraph, node_id: str, with_event_nodes: bool) -> dict:
    node = graph.nodes[node_id]
    data = {
        "id": node_id,
        "type": node.type,
        "label": node.label,
        "malicious": node.malicious,
        "sources": sorted(node.sources),
        "attributes": node.attributes,
        "first_seen": node.first_seen.isoformat() if node.first_seen else None,
        "log_records": _references(graph, node.records),
        "log_record_count": len(node.records),
        "alerts": sorted(node.alerts)[:ALERT_IDS_PER_NODE],
        "alert_count": len(node.alerts),
    }
    if with_event_nodes:
        data["events"] = sorted(node.events)
    return data


def _sort_time(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0
