"""Incident Source Tracing: the event tracing diagram, reproduced from host logs.

The diagram of an event is a provenance graph of the hosts its Security Center
alerts name. Every log record of those hosts around the event becomes nodes
and edges of one directed graph, pointing from cause to effect:

- a parent process *spawned* a child (``pid``/``ppid`` on the same host);
- a process *created*, *wrote*, *deleted*, ... a file, and a file was
  *executed* as a process (an ``execute`` record, or a process started from a
  path that was written before);
- a process *connected to* an IP (an inbound connection points the other way),
  *resolved* a domain, and the domain *resolves to* IPs;
- an IP *sent* an HTTP request (an attack payload), and a request *triggered*
  the process whose command it carried (a web shell or command injection);
- an IP *logged on as* (or *failed to log on as*) a user of the host.

The entities of the event's alerts (IPs, processes, files, domains, logons,
payloads) are looked up in that graph: these are the seeds. The diagram is
the seeds, their causes (ancestors), their effects (descendants) and the
direct non-process effects of every cause (the download a parent made, the
other requests of the attacker's IP), because that is the attack's story
without the host's unrelated activity.

Everything read is bounded: only the logs of the event's hosts within
[first occurrence - window, last occurrence + window], at most
``max_log_records`` of them, and at most ``max_nodes`` nodes, nearest to the
seeds first, with ``truncated`` set when nodes were left out. Four queries
read it all, whatever the number of alerts: the events' alert sources and
hosts, the entities of their alerts, the links between the two, and the logs.

Availability follows the product documentation: the event must have alerts
reported by Security Center (its host agent is where the contextual logs come
from; alerts of other sources in the same event still contribute their
entities), and the diagram must be reproducible from the contextual logs,
which is to say at least one entity of its alerts is found in them.

Several events on one graph: each event becomes a node linked to the entities
of its alerts, keyed by their normalised value, so events that share an IP,
a file hash or a process meet at that node; the log graphs of the events that
can be traced hang off the same nodes.
"""

import hashlib
import ipaddress
import json
import re
from bisect import bisect_left
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import networkx as nx
from django.db import models
from django.db.models import Q
from django.urls import reverse

from alerts.models import (
    Alert,
    AlertEntity,
    AlertSource,
    Entity,
    EntityRole,
    EntityType,
    LogRecord,
    LogType,
)
from events.models import SecurityEvent
from secops.pagination import Page
from secops.params import positive_int
from secops.scope import Scope

DEFAULT_CONTEXT_WINDOW = timedelta(hours=1)
MAX_LOG_RECORDS = 20_000
MAX_NODES = 300
MAX_EVENTS_ON_ONE_GRAPH = 10
# References of the records behind one node or edge sent to the browser; the preview
# table shows all of them.
RECORD_IDS_PER_ELEMENT = 50
ALERT_IDS_PER_NODE = 20
LABEL_LENGTH = 60
PREVIEW_PER_PAGE = 25
# A request triggers the process carrying its command only if that process
# starts this soon after it.
PAYLOAD_TO_PROCESS = timedelta(seconds=60)
# Shorter commands ("id", "ls") are compared with whole parameter values only:
# as substrings they would be found in any URL.
MIN_COMMAND_SUBSTRING = 12


class NodeType(models.TextChoices):
    """What a node of the diagram is; the labels make the legend."""

    PROCESS = "process", "Process"
    FILE = "file", "File"
    IP = "ip", "IP address"
    DOMAIN = "domain", "Domain"
    USER = "user", "Logon (user)"
    PAYLOAD = "payload", "Attack payload"
    URL = "url", "URL"
    HOST = "host", "Host"
    EVENT = "event", "Security event"


NODE_TYPE_OF_ENTITY = {
    EntityType.IP: NodeType.IP,
    EntityType.FILE: NodeType.FILE,
    EntityType.PROCESS: NodeType.PROCESS,
    EntityType.HOST: NodeType.HOST,
    EntityType.DOMAIN: NodeType.DOMAIN,
    EntityType.URL: NodeType.URL,
    EntityType.USER: NodeType.USER,
    EntityType.PAYLOAD: NodeType.PAYLOAD,
}

FILE_OPERATIONS = {
    "create": "created",
    "write": "wrote",
    "delete": "deleted",
    "chmod": "changed the mode of",
    "rename": "renamed",
    "read": "read",
}
SPAWNED = "spawned"
EXECUTED = "executed"
CONNECTED_TO = "connected to"
RESOLVED = "resolved"
RESOLVES_TO = "resolves to"
SENT = "sent"
TRIGGERED = "triggered"
LOGGED_ON_AS = "logged on as"
FAILED_TO_LOG_ON_AS = "failed to log on as"
NAMED_IN_ALERTS = "named in its alerts"
SEEN_IN_LOGS_AS = "seen in the logs as"

# "/bin/sh -c <command>" and its relatives: the command is what a web request carries.
_SHELL_COMMAND = re.compile(
    r"^(?:\S*/)?(?:sh|bash|dash|zsh|ash)\s+-c\s+(?P<command>.+)$"
    r"|^(?:\S*\\)?(?:cmd(?:\.exe)?\s+/c|powershell(?:\.exe)?\s+-c(?:ommand)?)\s+(?P<win>.+)$",
    re.IGNORECASE | re.DOTALL,
)


class Unavailable:
    """Why an event cannot be traced; each reason is shown to the analyst."""

    NO_ALERTS = "The event has no alerts in the current view."
    NOT_SECURITY_CENTER = (
        "None of the event's alerts were reported by Security Center. Source tracing "
        "follows the host logs behind Security Center alerts."
    )
    NO_HOST = "The event's Security Center alerts name no host, so there are no host logs to trace."
    NO_LOGS = "No contextual logs were received from {hosts} between {start} and {end}."
    NOT_REPRODUCIBLE = (
        "The contextual logs of {hosts} between {start} and {end} mention none of the "
        "entities of the event's alerts (IP addresses, processes, files, logons, attack "
        "payloads), so the diagram cannot be reproduced from them."
    )


@dataclass(frozen=True)
class TracingBounds:
    context_window: timedelta = DEFAULT_CONTEXT_WINDOW
    max_log_records: int = MAX_LOG_RECORDS
    max_nodes: int = MAX_NODES


class TooManyEvents(ValueError):
    """More events were chosen than one diagram shows."""


@dataclass
class EventTrace:
    """One event of a diagram: whether it can be traced, and why not."""

    event: SecurityEvent
    hosts: dict[str, str] = field(default_factory=dict)  # host uuid -> name
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""
    # Node ids of the log graph that its alerts' entities were found as.
    seeds: set[str] = field(default_factory=set)

    @property
    def available(self) -> bool:
        return not self.reason

    def as_dict(self) -> dict:
        return {
            "id": self.event.id,
            "name": self.event.name,
            "url": reverse("events:detail", args=[self.event.id]),
            "available": self.available,
            "reason": self.reason,
            "hosts": [{"uuid": u, "name": n} for u, n in sorted(self.hosts.items())],
            "window": {
                "start": _iso(self.start) if self.start else None,
                "end": _iso(self.end) if self.end else None,
            },
        }


@dataclass
class _Node:
    type: str
    label: str
    first_seen: datetime | None
    attributes: dict = field(default_factory=dict)
    records: list[int] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)  # of the records behind it
    alerts: set[int] = field(default_factory=set)
    events: set[int] = field(default_factory=set)
    malicious: bool = False


@dataclass
class _Edge:
    time: datetime | None
    records: list[int] = field(default_factory=list)
    count: int = 0


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
        return any(trace.available for trace in self.traces)

    @property
    def reason(self) -> str:
        """Why the diagram cannot be shown (for a single event)."""
        if self.available:
            return ""
        return " ".join(dict.fromkeys(trace.reason for trace in self.traces))

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


# --- entry points -------------------------------------------------------------


def trace_event(
    event: SecurityEvent, scope: Scope, bounds: TracingBounds = TracingBounds()
) -> TracingGraph:
    """The tracing diagram of one event (already fetched within ``scope``)."""
    return _Tracer([event], scope, bounds, with_event_nodes=False).build()


def trace_events(
    events: list[SecurityEvent], scope: Scope, bounds: TracingBounds = TracingBounds()
) -> TracingGraph:
    """One diagram of several events (already fetched within ``scope``), joined
    where their alerts name the same IP, file hash, process, domain or user."""
    if len(events) > MAX_EVENTS_ON_ONE_GRAPH:
        raise TooManyEvents(
            f"Choose at most {MAX_EVENTS_ON_ONE_GRAPH} events for one diagram; "
            f"{len(events)} were chosen."
        )
    return _Tracer(events, scope, bounds, with_event_nodes=True).build()


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


# --- the builder --------------------------------------------------------------


class _Tracer:
    """Reads the events' alerts, entities and logs (four queries) and builds the diagram."""

    def __init__(self, events, scope, bounds, *, with_event_nodes):
        self.events = list(events)
        self.scope = scope
        self.bounds = bounds
        self.with_event_nodes = with_event_nodes
        self.graph = nx.MultiDiGraph()
        self.nodes: dict[str, _Node] = {}
        self.edges: dict[tuple[str, str, str], _Edge] = {}
        self.rows: dict[int, dict] = {}
        self.host_names: dict[str, str] = {}
        # Lookup tables for finding alert entities among the log graph's nodes.
        self.process_keys: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.process_by_cmdline: dict[str, set[str]] = defaultdict(set)
        self.process_by_path: dict[str, set[str]] = defaultdict(set)
        self.file_by_hash: dict[str, set[str]] = defaultdict(set)
        self.file_by_path: dict[tuple[str, str], str] = {}
        # (host, node id, decoded request line, decoded parameter values)
        self.payload_texts: list[tuple[str, str, str, set[str]]] = []
        self.process_starts: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self.written_files: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
        self.hash_of_path: dict[tuple[str, str], str] = {}
        self.node_total = 0
        self.entity_nodes: set[str] = set()
        self.ids: dict[tuple, str] = {}  # node key -> node id, digested once per build

    # -- reading ------------------------------------------------------------

    def build(self) -> TracingGraph:
        traces = {event.id: EventTrace(event) for event in self.events}
        alerts = self._read_alerts()
        entities = self._read_entities()
        for trace in traces.values():
            self._decide_hosts(trace, alerts.get(trace.event.id, []))
        rows, logs_truncated = self._read_logs([t for t in traces.values() if not t.reason])
        self._add_log_records(rows)

        relevant_by_event: dict[int, set[str]] = {}
        for trace in traces.values():
            if trace.reason:
                continue
            if not any(row["host_uuid"] in trace.hosts for row in rows):
                trace.reason = Unavailable.NO_LOGS.format(**self._where(trace))
                continue
            trace.seeds = self._seeds(entities.get(trace.event.id, []), trace)
            if not trace.seeds:
                trace.reason = Unavailable.NOT_REPRODUCIBLE.format(**self._where(trace))
                continue
            relevant_by_event[trace.event.id] = self._neighbourhood(trace.seeds, trace.hosts)

        shown = self._choose_nodes(traces, relevant_by_event, entities)
        return self._result(list(traces.values()), shown, len(rows), logs_truncated)

    def _read_alerts(self) -> dict[int, list[dict]]:
        """Each event's alert sources and hosts (one row per combination, not per alert)."""
        alerts = (
            Alert.objects.in_scope(self.scope)
            .filter(event_links__event__in=self.events)
            .values("source", "asset__uuid", "asset__name", "event_links__event")
            .order_by()
            .distinct()
        )
        by_event: dict[int, list[dict]] = defaultdict(list)
        for alert in alerts:
            by_event[alert["event_links__event"]].append(alert)
        return by_event

    def _read_entities(self) -> dict[int, list[dict]]:
        """Each event's alert entities, with the hosts and alerts that name them.

        The links (one row per alert and entity) and the entities (one row
        each, with their attributes) are read apart: a thousand alerts name
        the same few hundred entities over and over.
        """
        links = AlertEntity.objects.filter(
            alert__event_links__event__in=self.events,
            alert__account_id__in=self.scope.account_ids,
        )
        entities = {
            row["id"]: row
            for row in Entity.objects.in_scope(self.scope)
            .filter(id__in=links.values("entity_id"))
            .values("id", "type", "value", "attributes", "malicious")
        }
        by_event: dict[int, dict[int, dict]] = defaultdict(dict)
        for alert_id, role, entity_id, host, event_id in links.values_list(
            "alert_id", "role", "entity_id", "alert__asset__uuid", "alert__event_links__event"
        ).order_by("entity_id", "alert_id"):
            stored = entities.get(entity_id)
            if stored is None:
                continue
            entity = by_event[event_id].get(entity_id)
            if entity is None:
                entity = by_event[event_id][entity_id] = {
                    "type": stored["type"],
                    "value": stored["value"],
                    "attributes": stored["attributes"] or {},
                    "malicious": stored["malicious"],
                    "hosts": set(),
                    "alerts": [],
                }
            entity["malicious"] = entity["malicious"] or role == EntityRole.ATTACKER
            if host:
                entity["hosts"].add(host)
            entity["alerts"].append(alert_id)
        return {event_id: list(found.values()) for event_id, found in by_event.items()}

    def _decide_hosts(self, trace: EventTrace, alerts: list[dict]) -> None:
        """The hosts and time window to read, or the reason there are none."""
        if not alerts:
            trace.reason = Unavailable.NO_ALERTS
            return
        security_center = [a for a in alerts if a["source"] == AlertSource.SECURITY_CENTER]
        if not security_center:
            trace.reason = Unavailable.NOT_SECURITY_CENTER
            return
        for alert in security_center:
            if alert["asset__uuid"]:
                name = alert["asset__name"] or alert["asset__uuid"]
                trace.hosts[alert["asset__uuid"]] = name
                self.host_names[alert["asset__uuid"]] = name
        window = self.bounds.context_window
        trace.start = trace.event.first_occurred_at - window
        trace.end = trace.event.last_occurred_at + window
        if not trace.hosts:
            trace.reason = Unavailable.NO_HOST

    def _read_logs(self, traces: list[EventTrace]) -> tuple[list[dict], bool]:
        if not traces:
            return [], False
        where = Q()
        for trace in traces:
            where |= Q(
                account_id=trace.event.account_id,
                host_uuid__in=sorted(trace.hosts),
                time__gte=trace.start,
                time__lte=trace.end,
            )
        limit = self.bounds.max_log_records
        rows = list(
            LogRecord.objects.in_scope(self.scope)
            .filter(where)
            .order_by("time", "id")
            .values("id", "host_uuid", "log_type", "time", "fields", "digest")[: limit + 1]
        )
        return rows[:limit], len(rows) > limit

    def _where(self, trace: EventTrace) -> dict:
        return {
            "hosts": ", ".join(sorted(trace.hosts.values())),
            "start": f"{trace.start:%Y-%m-%d %H:%M}",
            "end": f"{trace.end:%Y-%m-%d %H:%M} UTC",
        }

    # -- the log graph ----------------------------------------------------------

    def _node(self, key: tuple, node_type: str, label: str, moment, record_id) -> tuple[str, _Node]:
        node_id = self._id(key)
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = _Node(str(node_type), _cut(label), moment)
            self.graph.add_node(node_id)
        self._seen(node, moment, record_id)
        return node_id, node

    def _id(self, key: tuple) -> str:
        node_id = self.ids.get(key)
        if node_id is None:
            node_id = self.ids[key] = _node_id(key)
        return node_id

    def _seen(self, node: _Node, moment: datetime | None, record_id: int | None) -> None:
        if moment is not None and (node.first_seen is None or moment < node.first_seen):
            node.first_seen = moment
        if record_id is not None:
            node.records.append(record_id)
            node.hosts.add(self.rows[record_id]["host_uuid"])

    def _edge(self, source: str, target: str, relation: str, moment, record_id, count=1) -> None:
        key = (source, target, relation)
        edge = self.edges.get(key)
        if edge is None:
            edge = self.edges[key] = _Edge(moment)
            self.graph.add_edge(source, target, key=relation)
        elif moment is not None and (edge.time is None or moment < edge.time):
            edge.time = moment
        edge.count += count
        if record_id is not None:
            edge.records.append(record_id)

    def _add_log_records(self, rows: list[dict]) -> None:
        for row in rows:
            self.rows[row["id"]] = row
        # Files first (a path's hash decides its node), then processes (so that
        # references by pid alone find them), then everything else.
        self._index_file_hashes(rows)
        for row in rows:
            if row["log_type"] == LogType.PROCESS:
                self._process_record(row)
        handlers = {
            LogType.FILE: self._file_record,
            LogType.NETWORK: self._network_record,
            LogType.DNS: self._dns_record,
            LogType.LOGIN: self._login_record,
            LogType.HTTP: self._http_record,
        }
        for row in rows:
            handler = handlers.get(row["log_type"])
            if handler:
                handler(row)
        self._link_payloads_to_processes()
        self._link_written_files_to_processes()

    def _index_file_hashes(self, rows) -> None:
        hashes: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in rows:
            fields = row["fields"]
            if row["log_type"] == LogType.FILE and fields.get("path") and fields.get("hash"):
                hashes[(row["host_uuid"], fields["path"])].add(fields["hash"])
        # A path with one known content is keyed by its hash, so the same file
        # on several hosts (or events) is one node; a path rewritten with other
        # contents keeps one node per host and path.
        self.hash_of_path = {
            key: next(iter(found)) for key, found in hashes.items() if len(found) == 1
        }

    def _file_node(self, host: str, path: str, moment, record_id, file_hash=None):
        known_hash = self.hash_of_path.get((host, path))
        key = ("file", "hash", known_hash) if known_hash else ("file", host, path)
        node_id, node = self._node(key, NodeType.FILE, path, moment, record_id)
        attributes = node.attributes
        _add_to_list(attributes, "paths", path)
        _add_to_list(attributes, "hosts", self.host_names.get(host, host))
        for value in (file_hash, known_hash):
            if value:
                _add_to_list(attributes, "hashes", value)
                self.file_by_hash[value].add(node_id)
        self.file_by_path[(host, path)] = node_id
        return node_id, node

    def _process_node(self, host: str, pid, path, moment, record_id, cmdline=None):
        """The node of process ``pid`` on ``host``; a reference without a path
        resolves to the one process of that pid, when there is only one."""
        if not path:
            known = self.process_keys.get((host, pid), [])
            if len(known) == 1:
                node = self.nodes[known[0]]
                self._seen(node, moment, record_id)
                return known[0], node
        key = ("process", host, str(pid), path or "")
        node_id = self._id(key)
        if node_id not in self.nodes:
            self.process_keys[(host, pid)].append(node_id)
        label = cmdline or path or f"pid {pid}"
        node_id, node = self._node(key, NodeType.PROCESS, label, moment, record_id)
        attributes = node.attributes
        attributes.setdefault("host", self.host_names.get(host, host))
        attributes.setdefault("pid", pid)
        if path:
            attributes.setdefault("path", path)
            self.process_by_path[path].add(node_id)
        if cmdline:
            if "cmdline" not in attributes:
                node.label = _cut(cmdline)
            attributes.setdefault("cmdline", cmdline)
            self.process_by_cmdline[cmdline].add(node_id)
        return node_id, node

    def _process_record(self, row) -> None:
        host, fields, moment, record_id = row["host_uuid"], row["fields"], row["time"], row["id"]
        pid = fields.get("pid")
        if pid is None:
            return
        node_id, node = self._process_node(
            host, pid, fields.get("path"), moment, record_id, fields.get("cmdline")
        )
        attributes = node.attributes
        for name in ("ppid", "user", "hash"):
            if fields.get(name) is not None:
                attributes.setdefault(name, fields[name])
        if "started" not in attributes:
            attributes["started"] = _iso(moment)
            self.process_starts[host].append((moment, node_id))
        ppid = fields.get("ppid")
        if ppid is not None and (fields.get("parent_path") or fields.get("parent_cmdline")):
            # The child's record is the evidence of its parent too.
            parent_id, _ = self._process_node(
                host, ppid, fields.get("parent_path"), None, record_id, fields.get("parent_cmdline")
            )
            self._edge(parent_id, node_id, SPAWNED, moment, record_id)

    def _acting_process(self, row):
        fields = row["fields"]
        if fields.get("pid") is None:
            return None
        node_id, _ = self._process_node(
            row["host_uuid"], fields["pid"], fields.get("process_path"), None, row["id"]
        )
        return node_id

    def _file_record(self, row) -> None:
        fields = row["fields"]
        path = fields.get("path")
        if not path:
            return
        moment, record_id = row["time"], row["id"]
        file_id, node = self._file_node(
            row["host_uuid"], path, moment, record_id, fields.get("hash")
        )
        operation = fields.get("operation")
        if operation:
            _add_to_list(node.attributes, "operations", operation)
        process_id = self._acting_process(row)
        if process_id is None:
            return
        if operation == "execute":
            self._edge(file_id, process_id, EXECUTED, moment, record_id)
            return
        relation = FILE_OPERATIONS.get(operation, "touched")
        self._edge(process_id, file_id, relation, moment, record_id)
        if operation in ("create", "write"):
            self.written_files[(row["host_uuid"], path)].append((moment, file_id))

    def _ip_node(self, address: str, moment, record_id):
        node_id, node = self._node(("ip", address), NodeType.IP, address, moment, record_id)
        node.attributes.setdefault("address", address)
        return node_id, node

    def _network_record(self, row) -> None:
        fields, moment, record_id = row["fields"], row["time"], row["id"]
        inbound = fields.get("direction") == "in"
        remote = fields.get("src_ip") if inbound else fields.get("dst_ip")
        if not remote:
            return
        ip_id, ip = self._ip_node(remote, moment, record_id)
        port = fields.get("dst_port")
        if port is not None:
            _add_to_list(ip.attributes, "ports", port, limit=20)
        local = self._acting_process(row) or self._host_node(row["host_uuid"], moment, record_id)
        if inbound:
            self._edge(ip_id, local, CONNECTED_TO, moment, record_id)
        else:
            self._edge(local, ip_id, CONNECTED_TO, moment, record_id)

    def _host_node(self, host: str, moment, record_id) -> str:
        name = self.host_names.get(host, host)
        node_id, node = self._node(("host", host), NodeType.HOST, name, moment, record_id)
        node.attributes.update({"name": name, "uuid": host})
        return node_id

    def _dns_record(self, row) -> None:
        fields, moment, record_id = row["fields"], row["time"], row["id"]
        domain = (fields.get("domain") or "").lower().rstrip(".")
        if not domain:
            return
        domain_id, node = self._node(("domain", domain), NodeType.DOMAIN, domain, moment, record_id)
        node.attributes.setdefault("name", domain)
        process_id = self._acting_process(row)
        if process_id:
            self._edge(process_id, domain_id, RESOLVED, moment, record_id)
        for answer in re.split(r"[\s,;]+", fields.get("answer") or ""):
            if _is_ip(answer):
                _add_to_list(node.attributes, "answers", answer, limit=20)
                ip_id, _ = self._ip_node(answer, moment, record_id)
                self._edge(domain_id, ip_id, RESOLVES_TO, moment, record_id)

    def _login_record(self, row) -> None:
        fields, moment, record_id, host = row["fields"], row["time"], row["id"], row["host_uuid"]
        name = fields.get("user")
        if not name:
            return
        host_name = self.host_names.get(host, host)
        user_id, node = self._node(
            ("user", host, name), NodeType.USER, f"{name}@{host_name}", moment, record_id
        )
        attributes = node.attributes
        attributes.setdefault("name", name)
        attributes.setdefault("host", host_name)
        count = fields.get("count") or 1
        failed = fields.get("result") == "failure"
        tally = "failed_logons" if failed else "logons"
        attributes[tally] = attributes.get(tally, 0) + count
        if fields.get("method"):
            _add_to_list(attributes, "methods", fields["method"])
        if fields.get("src_ip"):
            ip_id, _ = self._ip_node(fields["src_ip"], moment, record_id)
            relation = FAILED_TO_LOG_ON_AS if failed else LOGGED_ON_AS
            self._edge(ip_id, user_id, relation, moment, record_id, count=count)

    def _http_record(self, row) -> None:
        fields, moment, record_id, host = row["fields"], row["time"], row["id"], row["host_uuid"]
        method, path = fields.get("method") or "GET", fields.get("path") or "/"
        vhost = fields.get("host") or ""
        key = ("payload", host, method, vhost, path)
        is_new = self._id(key) not in self.nodes
        payload_id, node = self._node(key, NodeType.PAYLOAD, f"{method} {path}", moment, record_id)
        attributes = node.attributes
        attributes.update({"method": method, "host": vhost, "path": path})
        attributes["requests"] = attributes.get("requests", 0) + 1
        if fields.get("status") is not None:
            _add_to_list(attributes, "statuses", fields["status"])
        if fields.get("user_agent"):
            _add_to_list(attributes, "user_agents", fields["user_agent"], limit=5)
        if is_new:
            values = {v.strip() for _, v in parse_qsl(urlsplit(path).query, keep_blank_values=True)}
            self.payload_texts.append((host, payload_id, unquote_plus(path), values))
        if fields.get("src_ip"):
            ip_id, _ = self._ip_node(fields["src_ip"], moment, record_id)
            self._edge(ip_id, payload_id, SENT, moment, record_id)

    def _link_payloads_to_processes(self) -> None:
        """A request triggered the first process, started right after it on the
        same host, whose command the request carried (a web shell, an injection)."""
        for starts in self.process_starts.values():
            starts.sort()
        commands: dict[str, set[str]] = {}
        for host, payload_id, text, values in self.payload_texts:
            starts = self.process_starts.get(host)
            if not starts:
                continue
            for moment in sorted(self._request_times(payload_id)):
                for _, process_id in _between(starts, moment, moment + PAYLOAD_TO_PROCESS):
                    if process_id not in commands:
                        commands[process_id] = _commands_of(self.nodes[process_id].attributes)
                    if _carries_command(text, values, commands[process_id]):
                        self._edge(payload_id, process_id, TRIGGERED, moment, None)
                        break

    def _request_times(self, payload_id: str) -> set:
        return {self.rows[record_id]["time"] for record_id in self.nodes[payload_id].records}

    def _link_written_files_to_processes(self) -> None:
        """A process started from a path written earlier on the same host ran that file."""
        for host, starts in self.process_starts.items():
            for started, process_id in starts:
                path = self.nodes[process_id].attributes.get("path")
                for written, file_id in self.written_files.get((host, path), ()):
                    if written <= started and (file_id, process_id, EXECUTED) not in self.edges:
                        self._edge(file_id, process_id, EXECUTED, started, None)
                        break

    # -- the entities of the alerts ----------------------------------------------

    def _seeds(self, entities: list[dict], trace: EventTrace) -> set[str]:
        seeds: set[str] = set()
        for entity in entities:
            hosts = (entity["hosts"] & trace.hosts.keys()) or trace.hosts.keys()
            matched = self._match(entity, hosts)
            entity.setdefault("matched", {})[trace.event.id] = matched
            for node_id in matched:
                node = self.nodes[node_id]
                node.alerts.update(entity["alerts"])
                node.malicious = node.malicious or entity["malicious"]
            seeds |= matched
        return seeds

    def _match(self, entity: dict, hosts) -> set[str]:
        """The log graph's nodes that an alert entity is."""
        entity_type, value, attributes = entity["type"], entity["value"], entity["attributes"]
        found: set[str] = set()
        if entity_type in (EntityType.IP, EntityType.DOMAIN):
            found.add(self._id((entity_type, value)))
        elif entity_type == EntityType.URL:
            host = (urlsplit(value).hostname or "").lower().rstrip(".")
            found.add(self._id(("ip" if _is_ip(host) else "domain", host)))
        elif entity_type == EntityType.FILE:
            for file_hash in (attributes.get("sha256"), attributes.get("md5")):
                if file_hash:
                    found |= self.file_by_hash.get(file_hash, set())
            path = attributes.get("path")
            if not found and path:
                found |= {
                    self.file_by_path[(h, path)] for h in hosts if (h, path) in self.file_by_path
                }
        elif entity_type == EntityType.PROCESS:
            found |= self._match_process(attributes, value, hosts)
        elif entity_type == EntityType.USER:
            name = attributes.get("name") or value
            found |= {self._id(("user", host, name)) for host in hosts}
        elif entity_type == EntityType.PAYLOAD and len(value) >= MIN_COMMAND_SUBSTRING:
            found |= {
                node_id
                for host, node_id, text, _ in self.payload_texts
                if host in hosts and value in text
            }
        return {node_id for node_id in found if node_id in self.nodes}

    def _match_process(self, attributes: dict, value: str, hosts) -> set[str]:
        path, cmdline, pid = (
            attributes.get("path"),
            attributes.get("cmdline"),
            attributes.get("pid"),
        )
        if pid is not None:
            found = set()
            for host in hosts:
                for node_id in self.process_keys.get((host, pid), ()):
                    known = self.nodes[node_id].attributes
                    if (not path or known.get("path") in (path, None)) and (
                        not cmdline or known.get("cmdline") in (cmdline, None)
                    ):
                        found.add(node_id)
            if found:
                return found
        candidates = self.process_by_cmdline.get(cmdline or value) or (
            self.process_by_path.get(path, set()) if path else set()
        )
        host_names = {self.host_names.get(h, h) for h in hosts}
        return {n for n in candidates if self.nodes[n].attributes.get("host") in host_names}

    # -- choosing what to show ----------------------------------------------------

    def _neighbourhood(self, seeds: set[str], hosts) -> set[str]:
        """The seeds, their causes, their effects, and the direct non-process
        effects of every cause, on the event's own hosts: an IP that two hosts
        talk to does not bring one host's processes into the other's event."""
        hosts = set(hosts)

        def on_hosts(node_id: str) -> bool:
            node_hosts = self.nodes[node_id].hosts
            return not node_hosts or not node_hosts.isdisjoint(hosts)

        ancestors = _reach(self.graph.pred, seeds, on_hosts)
        descendants = _reach(self.graph.succ, seeds, on_hosts)
        effects = {
            successor
            for node_id in ancestors
            for successor in self.graph.succ[node_id]
            if self.nodes[successor].type != NodeType.PROCESS and on_hosts(successor)
        }
        return ancestors | descendants | effects

    def _choose_nodes(self, traces, relevant_by_event, entities) -> list[str]:
        """Every node to show, nearest to the alerts' entities first, capped."""
        relevant: set[str] = set().union(*relevant_by_event.values())
        for event_id, nodes in relevant_by_event.items():
            for node_id in nodes:
                self.nodes[node_id].events.add(event_id)
        pinned: list[str] = []
        if self.with_event_nodes:
            pinned = self._add_event_nodes(traces, entities)
            relevant |= {n for n in self.nodes if self.nodes[n].events} - set(pinned)
        seeds = set().union(*(trace.seeds for trace in traces.values()))
        # In a diagram of several events, the alerts' own entities are where
        # distances start too, whether or not the logs mention them.
        distance = _distances(self.graph, seeds | self.entity_nodes, relevant)
        shared = {n for n in relevant if len(self.nodes[n].events) > 1}

        def priority(node_id):
            node = self.nodes[node_id]
            first = node.first_seen.timestamp() if node.first_seen else 0.0
            return (node_id not in shared, distance.get(node_id, len(relevant)), first, node_id)

        ordered = sorted(relevant, key=priority)
        self.node_total = len(pinned) + len(ordered)
        return pinned + ordered[: max(self.bounds.max_nodes - len(pinned), 0)]

    def _add_event_nodes(self, traces, entities) -> list[str]:
        """An event node per event, linked to the entities of its alerts.

        Entities are keyed by their normalised value, so two events naming the
        same IP, file hash, domain, process command line or user meet at one node.
        """
        event_ids = []
        for trace in traces.values():
            event = trace.event
            event_id, node = self._node(
                ("event", str(event.id)), NodeType.EVENT, f"#{event.id} {event.name}", None, None
            )
            node.first_seen = event.first_occurred_at
            node.events.add(event.id)
            node.attributes.update(
                {
                    "event": event.id,
                    "name": event.name,
                    "risk": event.get_risk_display(),
                    "status": event.get_status_display(),
                    "first_occurred": _iso(event.first_occurred_at),
                    "last_occurred": _iso(event.last_occurred_at),
                    "traced": trace.available,
                }
            )
            if trace.reason:
                node.attributes["not_traced_because"] = trace.reason
            event_ids.append(event_id)
            for entity in entities.get(event.id, []):
                entity_id = self._entity_node(entity)
                self.nodes[entity_id].events.add(event.id)
                self._edge(event_id, entity_id, NAMED_IN_ALERTS, None, None, len(entity["alerts"]))
                for matched in entity.get("matched", {}).get(event.id, ()):
                    if matched != entity_id:
                        self._edge(entity_id, matched, SEEN_IN_LOGS_AS, None, None)
        return event_ids

    def _entity_node(self, entity: dict) -> str:
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
        node_id, node = self._node(key, node_type, label, None, None)
        for name, item in attributes.items():
            if isinstance(item, str | int | float | bool):
                node.attributes.setdefault(name, item)
        node.alerts.update(entity["alerts"])
        node.malicious = node.malicious or entity["malicious"]
        self.entity_nodes.add(node_id)
        return node_id

    # -- the result -----------------------------------------------------------------

    def _result(self, traces, shown: list[str], logs_read: int, logs_truncated) -> TracingGraph:
        shown_set = set(shown)
        shown_edges = [
            (key, edge)
            for key, edge in self.edges.items()
            if key[0] in shown_set and key[1] in shown_set
        ]
        shown_edges.sort(key=lambda item: (_sort_time(item[1].time), item[0]))
        nodes = [self._node_dict(node_id) for node_id in shown]
        edges = [
            {
                "id": f"{source}>{target}>{relation}",
                "source": source,
                "target": target,
                "relation": relation,
                "time": _iso(edge.time) if edge.time else None,
                "count": edge.count,
                "log_records": self._references(edge.records),
            }
            for (source, target, relation), edge in shown_edges
        ]
        behind: set[int] = set()
        records_by_node: dict[str, list[int]] = {}
        for node_id in shown:
            records_by_node[node_id] = self.nodes[node_id].records
            behind.update(self.nodes[node_id].records)
        for _, edge in shown_edges:
            behind.update(edge.records)
        rows = sorted((self.rows[i] for i in behind), key=lambda r: (r["time"], r["id"]))
        host_names = dict(self.host_names)
        joins = self._joins(shown_set) if self.with_event_nodes else []
        return TracingGraph(
            traces=traces,
            nodes=nodes,
            edges=edges,
            node_total=self.node_total,
            bounds=self.bounds,
            logs_read=logs_read,
            logs_truncated=logs_truncated,
            records=rows,
            host_names=host_names,
            records_by_node=records_by_node,
            joins=joins,
        )

    def _references(self, record_ids: list[int]) -> list[str]:
        """What the browser is told of the records behind a node or edge."""
        return [
            LogRecord.reference_for(self.rows[record_id]["digest"])
            for record_id in sorted(set(record_ids))[:RECORD_IDS_PER_ELEMENT]
        ]

    def _node_dict(self, node_id: str) -> dict:
        node = self.nodes[node_id]
        data = {
            "id": node_id,
            "type": node.type,
            "label": node.label,
            "malicious": node.malicious,
            "attributes": node.attributes,
            "first_seen": _iso(node.first_seen) if node.first_seen else None,
            "log_records": self._references(node.records),
            "log_record_count": len(node.records),
            "alerts": sorted(node.alerts)[:ALERT_IDS_PER_NODE],
            "alert_count": len(node.alerts),
        }
        if self.with_event_nodes:
            data["events"] = sorted(node.events)
        return data

    def _joins(self, shown: set[str]) -> list[dict]:
        """The entities several events share: where their diagrams join."""
        return [
            {"node": node_id, "label": self.nodes[node_id].label, "events": sorted(events)}
            for node_id in sorted(shown)
            if self.nodes[node_id].type != NodeType.EVENT
            and len(events := self.nodes[node_id].events) > 1
        ]


# --- small pieces --------------------------------------------------------------


def _node_id(key: tuple) -> str:
    digest = hashlib.sha1("\x00".join(map(str, key)).encode(), usedforsecurity=False)
    return f"{key[0]}:{digest.hexdigest()[:16]}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _sort_time(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


def _cut(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1] + "…"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _add_to_list(attributes: dict, name: str, value, limit: int = 10) -> None:
    values = attributes.setdefault(name, [])
    if value not in values and len(values) < limit:
        values.append(value)


def _reach(adjacency, sources: set[str], allowed) -> set[str]:
    """Every ``allowed`` node reachable from ``sources`` along ``adjacency``
    (sources included)."""
    seen = set(sources)
    queue = deque(sources)
    while queue:
        for neighbour in adjacency[queue.popleft()]:
            if neighbour not in seen and allowed(neighbour):
                seen.add(neighbour)
                queue.append(neighbour)
    return seen


def _distances(graph: nx.MultiDiGraph, sources: set[str], within: set[str]) -> dict[str, int]:
    """Hops from the nearest source, ignoring direction, inside ``within``."""
    distance = {node_id: 0 for node_id in sources if node_id in within}
    queue = deque(distance)
    while queue:
        node_id = queue.popleft()
        for neighbour in (*graph.succ[node_id], *graph.pred[node_id]):
            if neighbour in within and neighbour not in distance:
                distance[neighbour] = distance[node_id] + 1
                queue.append(neighbour)
    return distance


def _between(starts: list[tuple[datetime, str]], start: datetime, end: datetime):
    """The (time, process) pairs of a time-sorted list with start <= time <= end."""
    index = bisect_left(starts, (start, ""))
    while index < len(starts) and starts[index][0] <= end:
        yield starts[index]
        index += 1


def _commands_of(attributes: dict) -> set[str]:
    cmdline = (attributes.get("cmdline") or "").strip()
    if not cmdline:
        return set()
    commands = {cmdline}
    match = _SHELL_COMMAND.match(cmdline)
    if match:
        commands.add((match["command"] or match["win"]).strip())
    return commands


def _carries_command(text: str, parameter_values: set[str], commands: set[str]) -> bool:
    for command in commands:
        if command in parameter_values:
            return True
        if len(command) >= MIN_COMMAND_SUBSTRING and command in text:
            return True
    return False
