"""The part of a diagram that the event's own alerts give, logs or not.

Every event can be drawn this far: its alerts name hosts, processes, files,
IPs, domains, URLs, users and payloads, and their attributes relate them:

- a process whose ``ppid`` is the ``pid`` of another process of the event on
  the same host was *spawned* by it;
- a file whose path is a process's path on the same host was *executed* as it;
- a logon's ``src_ip`` is where the logon came from (*logon as*);
- a process's command line that names an IP, a domain or a URL of the event
  *names* it, and a URL is served by its host name's domain or IP;
- an attacker's IP *sent* the attack payload of the same alert.

What nothing else relates is tied to the alert's host by the role the alert
gives it (an attacker *attacked* the host, ...), so the diagram is one story
around the event's hosts rather than loose parts.

Nodes use the same keys as the log graph wherever the alert says enough (an
IP by address, a file by hash, a process by host, pid and path), and an
entity found in the logs is that log node: the alerts and the logs then add
to the same nodes, each marked with its sources.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from alerts.models import EntityRole, EntityType
from events.tracing.graph import (
    EXECUTED,
    NODE_TYPE_OF_ENTITY,
    SENT,
    SPAWNED,
    LogGraph,
    NodeType,
    Source,
)
from events.tracing.traces import EventTrace

LOGON_AS = "logon as"
NAMES = "names in its command line"
SERVES = "serves"
RAN = "ran"
STORES = "stores"
LOGON_TO = "logon to"
ATTACKED = "attacked"
BELONGS_TO = "belongs to"
RELATED_TO = "related to"
# Values shorter than this are not looked for in command lines ("10.0.0.1" is
# long enough; a bare "ls" would be found everywhere).
MIN_NAMED_VALUE = 4
_NETWORK_TYPES = (EntityType.IP, EntityType.DOMAIN, EntityType.URL)
_ON_HOST_TYPES = (EntityType.PROCESS, EntityType.FILE, EntityType.USER)


@dataclass(frozen=True)
class _Mention:
    """One entity as one alert of the event names it, on one host."""

    node_id: str
    type: str
    value: str
    host: str  # "" when the alert names no host
    role: str
    attributes: dict
    alert: int


def add_alert_graph(
    graph: LogGraph, trace: EventTrace, entities: list[dict], host_names: dict[str, str]
) -> set[str]:
    """Add what the event's alerts give to ``graph``; returns the nodes of it."""
    builder = _AlertGraph(graph, trace.event.id, host_names)
    for entity in entities:
        builder.add(entity)
    builder.relate()
    return builder.shown()


class _AlertGraph:
    def __init__(self, graph: LogGraph, event_id: int, host_names: dict[str, str]):
        self.graph = graph
        self.event_id = event_id
        self.host_names = host_names
        self.mentions: list[_Mention] = []
        self.nodes: set[str] = set()

    def shown(self) -> set[str]:
        """The nodes to draw: a host that nothing is tied to (the logs explain
        every entity on it) is left out, unless it is all there is."""
        links = self.graph.links
        lone_hosts = {
            n
            for n in self.nodes
            if self.graph.nodes[n].type == NodeType.HOST and links.degree(n) == 0
        }
        return (self.nodes - lone_hosts) or self.nodes

    # -- nodes -------------------------------------------------------------------

    def add(self, entity: dict) -> None:
        matched = entity.get("matched", {}).get(self.event_id, set())
        for link in entity["links"]:
            host = link["host"] or ""
            attributes = link["attributes"]
            found = self._log_nodes_on(matched, host) or {self._node(entity, host, attributes)}
            for node_id in found:
                node = self.graph.nodes[node_id]
                node.sources.add(Source.ALERTS)
                node.alerts.add(link["alert"])
                node.malicious = node.malicious or entity["malicious"]
                self.nodes.add(node_id)
                self.mentions.append(
                    _Mention(
                        node_id,
                        entity["type"],
                        entity["value"],
                        host,
                        link["role"],
                        attributes,
                        link["alert"],
                    )
                )
            if host and entity["type"] != EntityType.HOST:
                self.nodes.add(self._host(host))

    def _log_nodes_on(self, matched: set[str], host: str) -> set[str]:
        """The log nodes an entity was found as, on the host of this alert."""
        nodes = self.graph.nodes
        return {n for n in matched if not host or not nodes[n].hosts or host in nodes[n].hosts}

    def _node(self, entity: dict, host: str, attributes: dict) -> str:
        entity_type, value = entity["type"], entity["value"]
        key, label = self._key_and_label(entity_type, value, host, attributes)
        if entity_type == EntityType.HOST:
            return self._host(value)
        node_type = NODE_TYPE_OF_ENTITY.get(entity_type, NodeType.PAYLOAD)
        node_id, node = self.graph.node(key, node_type, label, None, None, Source.ALERTS)
        for name, item in attributes.items():
            if isinstance(item, str | int | float | bool):
                node.attributes.setdefault(name, item)
        if host and entity_type in _ON_HOST_TYPES:
            node.attributes.setdefault("host", self._host_name(host))
        return node_id

    def _key_and_label(self, entity_type: str, value: str, host: str, attributes: dict):
        if entity_type in (EntityType.IP, EntityType.DOMAIN):
            return (entity_type, value), value
        if entity_type == EntityType.FILE:
            path = attributes.get("path") or value
            file_hash = attributes.get("sha256") or attributes.get("md5")
            key = ("file", "hash", file_hash) if file_hash else ("file", host, path)
            return key, path
        if entity_type == EntityType.PROCESS:
            label = attributes.get("cmdline") or attributes.get("path") or value
            if host and attributes.get("pid") is not None:
                # The key a process record of the same pid and path makes.
                return (
                    "process",
                    host,
                    str(attributes["pid"]),
                    attributes.get("path") or "",
                ), label
            return ("entity", entity_type, host, value), label
        if entity_type == EntityType.USER:
            name = attributes.get("name") or value
            if host:
                return ("user", host, name), f"{name}@{self._host_name(host)}"
            return ("entity", entity_type, "", name), name
        return ("entity", entity_type, value), value

    def _host(self, host: str) -> str:
        name = self._host_name(host)
        node_id, node = self.graph.node(
            ("host", host), NodeType.HOST, name, None, None, Source.ALERTS
        )
        node.attributes.update({"name": name, "uuid": host})
        return node_id

    def _host_name(self, host: str) -> str:
        return self.host_names.get(host) or self.graph.host_name(host)

    def _edge(self, source: str, target: str, relation: str) -> None:
        if source != target:
            # count=0: the count of an edge is of log records; an alert adds none.
            self.graph.edge(source, target, relation, None, None, count=0, origin=Source.ALERTS)

    # -- relations ---------------------------------------------------------------

    def relate(self) -> None:
        of_type: dict[str, list[_Mention]] = {}
        for mention in self.mentions:
            of_type.setdefault(mention.type, []).append(mention)
        processes = of_type.get(EntityType.PROCESS, [])
        network = [m for t in _NETWORK_TYPES for m in of_type.get(t, [])]
        self._process_tree(processes)
        self._executed_files(of_type.get(EntityType.FILE, []), processes)
        self._logons(of_type.get(EntityType.USER, []))
        self._named_in_command_lines(processes, network)
        self._served_urls(of_type.get(EntityType.URL, []), network)
        self._sent_payloads(of_type.get(EntityType.PAYLOAD, []), of_type.get(EntityType.IP, []))
        self._tie_to_hosts()

    def _process_tree(self, processes: list[_Mention]) -> None:
        by_pid: dict[tuple[str, str], set[str]] = {}
        for process in processes:
            if process.host and process.attributes.get("pid") is not None:
                by_pid.setdefault((process.host, str(process.attributes["pid"])), set()).add(
                    process.node_id
                )
        for process in processes:
            ppid = process.attributes.get("ppid")
            if ppid is None:
                continue
            for parent in by_pid.get((process.host, str(ppid)), ()):
                self._edge(parent, process.node_id, SPAWNED)

    def _executed_files(self, files: list[_Mention], processes: list[_Mention]) -> None:
        paths = {}
        for process in processes:
            if process.attributes.get("path"):
                paths.setdefault((process.host, process.attributes["path"]), set()).add(
                    process.node_id
                )
        for file in files:
            path = file.attributes.get("path") or file.value
            for process_id in paths.get((file.host, path), ()):
                self._edge(file.node_id, process_id, EXECUTED)

    def _logons(self, users: list[_Mention]) -> None:
        for user in users:
            source = user.attributes.get("src_ip")
            if source:
                ip_id, _ = self.graph.node(
                    ("ip", source), NodeType.IP, source, None, None, Source.ALERTS
                )
                self.graph.nodes[ip_id].attributes.setdefault("address", source)
                self.nodes.add(ip_id)
                self._edge(ip_id, user.node_id, LOGON_AS)
            if user.host:
                self._edge(user.node_id, self._host(user.host), LOGON_TO)

    def _named_in_command_lines(self, processes: list[_Mention], network: list[_Mention]) -> None:
        # Distinct pairs only: a thousand alerts name the same few entities.
        command_lines = {
            (p.node_id, p.attributes["cmdline"]) for p in processes if p.attributes.get("cmdline")
        }
        values = {(n.node_id, n.value) for n in network if len(n.value) >= MIN_NAMED_VALUE}
        for process_id, cmdline in command_lines:
            for named_id, value in values:
                if value in cmdline:
                    self._edge(process_id, named_id, NAMES)

    def _served_urls(self, urls: list[_Mention], network: list[_Mention]) -> None:
        for url in urls:
            host_name = (urlsplit(url.value).hostname or "").lower().rstrip(".")
            for server in network:
                if server.type != EntityType.URL and server.value == host_name:
                    self._edge(server.node_id, url.node_id, SERVES)

    def _sent_payloads(self, payloads: list[_Mention], ips: list[_Mention]) -> None:
        attackers: dict[int, set[str]] = {}
        for ip in ips:
            if ip.role == EntityRole.ATTACKER:
                attackers.setdefault(ip.alert, set()).add(ip.node_id)
        for payload in payloads:
            for ip_id in attackers.get(payload.alert, ()):
                self._edge(ip_id, payload.node_id, SENT)

    def _tie_to_hosts(self) -> None:
        """Tie what nothing else explains to the alert's host, by the alert's role."""
        links = self.graph.links
        # Decided before tying: an attacker named on two hosts is tied to both.
        has_cause = {n for n in self.nodes if links.pred[n]}
        related = {n for n in self.nodes if links.degree(n)}
        tied = set()
        for mention in self.mentions:
            node_id = mention.node_id
            if not mention.host or mention.type in (EntityType.HOST, EntityType.USER):
                continue
            if (node_id, mention.host, mention.role) in tied:
                continue
            tied.add((node_id, mention.host, mention.role))
            host_id = self._host(mention.host)
            if mention.type in (EntityType.PROCESS, EntityType.FILE):
                # The first cause the alerts know of runs on, or is stored on, the host.
                if node_id not in has_cause:
                    relation = RAN if mention.type == EntityType.PROCESS else STORES
                    self._edge(host_id, node_id, relation)
            elif node_id not in related:
                if mention.role == EntityRole.ATTACKER:
                    self._edge(node_id, host_id, ATTACKED)
                elif mention.role == EntityRole.VICTIM:
                    self._edge(node_id, host_id, BELONGS_TO)
                else:
                    self._edge(host_id, node_id, RELATED_TO)
