"""The log graph: what its nodes and edges are, and how they are added.

A node's id is a digest of its key (a process by host, pid and path, a file by
hash, an IP by address...), so everything that names the same thing, in any
record or alert, adds to the same node.

Every node and edge knows where it comes from (``sources``): the host logs,
the event's alerts, or both. The diagram says so, so that an analyst can tell
what the logs show from what an alert claimed.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import networkx as nx
from django.db import models

from alerts.models import EntityType
from events.tracing.limits import LABEL_LENGTH


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


class Source(models.TextChoices):
    """Where a node or edge of the diagram comes from."""

    ALERTS = "alerts", "The event's alerts"
    LOGS = "logs", "The host logs"


@dataclass
class Node:
    type: str
    label: str
    first_seen: datetime | None
    attributes: dict = field(default_factory=dict)
    records: list[int] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)  # of the records behind it
    alerts: set[int] = field(default_factory=set)
    events: set[int] = field(default_factory=set)
    malicious: bool = False
    sources: set[str] = field(default_factory=set)


@dataclass
class Edge:
    time: datetime | None
    records: list[int] = field(default_factory=list)
    count: int = 0
    sources: set[str] = field(default_factory=set)


class LogGraph:
    """The nodes and edges of one diagram, with the log records behind them."""

    def __init__(self):
        # Only the adjacency is used, to walk from causes to effects and back.
        self.links = nx.MultiDiGraph()
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str, str], Edge] = {}
        self.rows: dict[int, dict] = {}
        self.host_names: dict[str, str] = {}
        self._ids: dict[tuple, str] = {}  # node key -> node id, digested once per build

    def host_name(self, host: str) -> str:
        return self.host_names.get(host, host)

    def id_of(self, key: tuple) -> str:
        node_id = self._ids.get(key)
        if node_id is None:
            node_id = self._ids[key] = _digest(key)
        return node_id

    def node(
        self, key: tuple, node_type: str, label: str, moment, record_id, source=Source.LOGS
    ) -> tuple[str, Node]:
        node_id = self.id_of(key)
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = Node(str(node_type), short_label(label), moment)
            self.links.add_node(node_id)
        node.sources.add(str(source))
        self.seen(node, moment, record_id)
        return node_id, node

    def seen(self, node: Node, moment: datetime | None, record_id: int | None) -> None:
        if moment is not None and (node.first_seen is None or moment < node.first_seen):
            node.first_seen = moment
        if record_id is not None:
            node.records.append(record_id)
            node.hosts.add(self.rows[record_id]["host_uuid"])

    def edge(
        self,
        source: str,
        target: str,
        relation: str,
        moment,
        record_id,
        count=1,
        origin=Source.LOGS,
    ) -> None:
        key = (source, target, relation)
        edge = self.edges.get(key)
        if edge is None:
            edge = self.edges[key] = Edge(moment)
            self.links.add_edge(source, target, key=relation)
        elif moment is not None and (edge.time is None or moment < edge.time):
            edge.time = moment
        edge.sources.add(str(origin))
        edge.count += count
        if record_id is not None:
            edge.records.append(record_id)


def short_label(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1] + "…"


def _digest(key: tuple) -> str:
    digest = hashlib.sha1("\x00".join(map(str, key)).encode(), usedforsecurity=False)
    return f"{key[0]}:{digest.hexdigest()[:16]}"
