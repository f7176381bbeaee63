"""The seeds of a diagram: the log graph's nodes that its alerts' entities are."""

from urllib.parse import urlsplit

from alerts.models import EntityType
from events.tracing.graph import LogGraph, Source
from events.tracing.limits import MIN_COMMAND_SUBSTRING
from events.tracing.logs import LogIndex, is_ip
from events.tracing.traces import EventTrace


class EntityMatcher:
    """Finds alert entities among the nodes of ``graph``, through ``index``."""

    def __init__(self, graph: LogGraph, index: LogIndex):
        self.graph = graph
        self.index = index

    def seeds(self, entities: list[dict], trace: EventTrace) -> set[str]:
        """The nodes the entities are; each node takes the alerts that name it."""
        seeds: set[str] = set()
        for entity in entities:
            hosts = (entity["hosts"] & trace.hosts.keys()) or trace.hosts.keys()
            matched = self.match(entity, hosts)
            # Kept on the entity for the event nodes of a diagram of several events.
            entity.setdefault("matched", {})[trace.event.id] = matched
            for node_id in matched:
                node = self.graph.nodes[node_id]
                node.alerts.update(entity["alerts"])
                node.malicious = node.malicious or entity["malicious"]
                node.sources.add(Source.ALERTS)
            seeds |= matched
        return seeds

    def match(self, entity: dict, hosts) -> set[str]:
        """The log graph's nodes that an alert entity is."""
        entity_type, value, attributes = entity["type"], entity["value"], entity["attributes"]
        index = self.index
        found: set[str] = set()
        if entity_type in (EntityType.IP, EntityType.DOMAIN):
            found.add(self.graph.id_of((entity_type, value)))
        elif entity_type == EntityType.URL:
            host = (urlsplit(value).hostname or "").lower().rstrip(".")
            found.add(self.graph.id_of(("ip" if is_ip(host) else "domain", host)))
        elif entity_type == EntityType.FILE:
            for file_hash in (attributes.get("sha256"), attributes.get("md5")):
                if file_hash:
                    found |= index.file_by_hash.get(file_hash, set())
            path = attributes.get("path")
            if not found and path:
                found |= {
                    index.file_by_path[(h, path)] for h in hosts if (h, path) in index.file_by_path
                }
        elif entity_type == EntityType.PROCESS:
            found |= self._match_process(attributes, value, hosts)
        elif entity_type == EntityType.USER:
            name = attributes.get("name") or value
            found |= {self.graph.id_of(("user", host, name)) for host in hosts}
        elif entity_type == EntityType.PAYLOAD and len(value) >= MIN_COMMAND_SUBSTRING:
            found |= {
                node_id
                for host, node_id, text, _ in index.payload_texts
                if host in hosts and value in text
            }
        return {node_id for node_id in found if node_id in self.graph.nodes}

    def _match_process(self, attributes: dict, value: str, hosts) -> set[str]:
        nodes = self.graph.nodes
        path, cmdline, pid = (
            attributes.get("path"),
            attributes.get("cmdline"),
            attributes.get("pid"),
        )
        if pid is not None:
            found = set()
            for host in hosts:
                for node_id in self.index.process_keys.get((host, pid), ()):
                    known = nodes[node_id].attributes
                    if (not path or known.get("path") in (path, None)) and (
                        not cmdline or known.get("cmdline") in (cmdline, None)
                    ):
                        found.add(node_id)
            if found:
                return found
        candidates = self.index.process_by_cmdline.get(cmdline or value) or (
            self.index.process_by_path.get(path, set()) if path else set()
        )
        host_names = {self.graph.host_name(h) for h in hosts}
        return {n for n in candidates if nodes[n].attributes.get("host") in host_names}
