"""Log records become nodes and edges of the log graph, one reader per log type."""

import ipaddress
import re
from collections import defaultdict
from datetime import datetime
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from alerts.models import LogType
from events.tracing.graph import (
    CONNECTED_TO,
    EXECUTED,
    FAILED_TO_LOG_ON_AS,
    FILE_OPERATIONS,
    LOGGED_ON_AS,
    RESOLVED,
    RESOLVES_TO,
    SENT,
    SPAWNED,
    LogGraph,
    Node,
    NodeType,
    short_label,
)
from events.tracing.inference import link_payloads_to_processes, link_written_files_to_processes


class LogIndex:
    """Lookup tables for finding alert entities among the log graph's nodes."""

    def __init__(self):
        self.process_keys: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.process_by_cmdline: dict[str, set[str]] = defaultdict(set)
        self.process_by_path: dict[str, set[str]] = defaultdict(set)
        self.file_by_hash: dict[str, set[str]] = defaultdict(set)
        self.file_by_path: dict[tuple[str, str], str] = {}
        # (host, node id, decoded request line, decoded parameter values)
        self.payload_texts: list[tuple[str, str, str, set[str]]] = []


def add_log_records(graph: LogGraph, rows: list[dict]) -> LogIndex:
    """Add ``rows`` (time-ordered) to ``graph``; returns where to find alert entities."""
    reader = _LogReader(graph)
    reader.add(rows)
    return reader.index


class _LogReader:
    def __init__(self, graph: LogGraph):
        self.graph = graph
        self.index = LogIndex()
        self.process_starts: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self.written_files: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
        self.hash_of_path: dict[tuple[str, str], str] = {}

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            self.graph.rows[row["id"]] = row
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
        # The inferred links look processes up by start time.
        for starts in self.process_starts.values():
            starts.sort()
        link_payloads_to_processes(self.graph, self.index.payload_texts, self.process_starts)
        link_written_files_to_processes(self.graph, self.process_starts, self.written_files)

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
        node_id, node = self.graph.node(key, NodeType.FILE, path, moment, record_id)
        attributes = node.attributes
        _add_to_list(attributes, "paths", path)
        _add_to_list(attributes, "hosts", self.graph.host_name(host))
        for value in (file_hash, known_hash):
            if value:
                _add_to_list(attributes, "hashes", value)
                self.index.file_by_hash[value].add(node_id)
        self.index.file_by_path[(host, path)] = node_id
        return node_id, node

    def _process_node(self, host: str, pid, path, moment, record_id, cmdline=None):
        """The node of process ``pid`` on ``host``; a reference without a path
        resolves to the one process of that pid, when there is only one."""
        index = self.index
        if not path:
            known = index.process_keys.get((host, pid), [])
            if len(known) == 1:
                node = self.graph.nodes[known[0]]
                self.graph.seen(node, moment, record_id)
                return known[0], node
        key = ("process", host, str(pid), path or "")
        node_id = self.graph.id_of(key)
        if node_id not in self.graph.nodes:
            index.process_keys[(host, pid)].append(node_id)
        label = cmdline or path or f"pid {pid}"
        node_id, node = self.graph.node(key, NodeType.PROCESS, label, moment, record_id)
        attributes = node.attributes
        attributes.setdefault("host", self.graph.host_name(host))
        attributes.setdefault("pid", pid)
        if path:
            attributes.setdefault("path", path)
            index.process_by_path[path].add(node_id)
        if cmdline:
            if "cmdline" not in attributes:
                node.label = short_label(cmdline)
            attributes.setdefault("cmdline", cmdline)
            index.process_by_cmdline[cmdline].add(node_id)
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
            attributes["started"] = moment.isoformat()
            self.process_starts[host].append((moment, node_id))
        ppid = fields.get("ppid")
        if ppid is not None and (fields.get("parent_path") or fields.get("parent_cmdline")):
            # The child's record is the evidence of its parent too.
            parent_id, _ = self._process_node(
                host, ppid, fields.get("parent_path"), None, record_id, fields.get("parent_cmdline")
            )
            self.graph.edge(parent_id, node_id, SPAWNED, moment, record_id)

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
            self.graph.edge(file_id, process_id, EXECUTED, moment, record_id)
            return
        relation = FILE_OPERATIONS.get(operation, "touched")
        self.graph.edge(process_id, file_id, relation, moment, record_id)
        if operation in ("create", "write"):
            self.written_files[(row["host_uuid"], path)].append((moment, file_id))

    def _ip_node(self, address: str, moment, record_id) -> tuple[str, Node]:
        node_id, node = self.graph.node(("ip", address), NodeType.IP, address, moment, record_id)
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
            self.graph.edge(ip_id, local, CONNECTED_TO, moment, record_id)
        else:
            self.graph.edge(local, ip_id, CONNECTED_TO, moment, record_id)

    def _host_node(self, host: str, moment, record_id) -> str:
        name = self.graph.host_name(host)
        node_id, node = self.graph.node(("host", host), NodeType.HOST, name, moment, record_id)
        node.attributes.update({"name": name, "uuid": host})
        return node_id

    def _dns_record(self, row) -> None:
        fields, moment, record_id = row["fields"], row["time"], row["id"]
        domain = (fields.get("domain") or "").lower().rstrip(".")
        if not domain:
            return
        domain_id, node = self.graph.node(
            ("domain", domain), NodeType.DOMAIN, domain, moment, record_id
        )
        node.attributes.setdefault("name", domain)
        process_id = self._acting_process(row)
        if process_id:
            self.graph.edge(process_id, domain_id, RESOLVED, moment, record_id)
        for answer in re.split(r"[\s,;]+", fields.get("answer") or ""):
            if is_ip(answer):
                _add_to_list(node.attributes, "answers", answer, limit=20)
                ip_id, _ = self._ip_node(answer, moment, record_id)
                self.graph.edge(domain_id, ip_id, RESOLVES_TO, moment, record_id)

    def _login_record(self, row) -> None:
        fields, moment, record_id, host = row["fields"], row["time"], row["id"], row["host_uuid"]
        name = fields.get("user")
        if not name:
            return
        host_name = self.graph.host_name(host)
        user_id, node = self.graph.node(
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
            self.graph.edge(ip_id, user_id, relation, moment, record_id, count=count)

    def _http_record(self, row) -> None:
        fields, moment, record_id, host = row["fields"], row["time"], row["id"], row["host_uuid"]
        method, path = fields.get("method") or "GET", fields.get("path") or "/"
        vhost = fields.get("host") or ""
        key = ("payload", host, method, vhost, path)
        is_new = self.graph.id_of(key) not in self.graph.nodes
        payload_id, node = self.graph.node(
            key, NodeType.PAYLOAD, f"{method} {path}", moment, record_id
        )
        attributes = node.attributes
        attributes.update({"method": method, "host": vhost, "path": path})
        attributes["requests"] = attributes.get("requests", 0) + 1
        if fields.get("status") is not None:
            _add_to_list(attributes, "statuses", fields["status"])
        if fields.get("user_agent"):
            _add_to_list(attributes, "user_agents", fields["user_agent"], limit=5)
        if is_new:
            values = {v.strip() for _, v in parse_qsl(urlsplit(path).query, keep_blank_values=True)}
            self.index.payload_texts.append((host, payload_id, unquote_plus(path), values))
        if fields.get("src_ip"):
            ip_id, _ = self._ip_node(fields["src_ip"], moment, record_id)
            self.graph.edge(ip_id, payload_id, SENT, moment, record_id)


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _add_to_list(attributes: dict, name: str, value, limit: int = 10) -> None:
    values = attributes.setdefault(name, [])
    if value not in values and len(values) < limit:
        values.append(value)
