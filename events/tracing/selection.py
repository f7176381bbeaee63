"""What a diagram shows of the log graph: the attack's story around the
alerts' entities, without the host's unrelated activity, and capped."""

from collections import deque

import networkx as nx

from events.tracing.graph import LogGraph, NodeType
from events.tracing.joins import add_event_nodes
from events.tracing.traces import EventTrace


def neighbourhood(graph: LogGraph, seeds: set[str], hosts) -> set[str]:
    """The seeds, their causes, their effects, and the direct non-process
    effects of every cause, on the event's own hosts: an IP that two hosts
    talk to does not bring one host's processes into the other's event."""
    hosts = set(hosts)
    nodes = graph.nodes

    def on_hosts(node_id: str) -> bool:
        node_hosts = nodes[node_id].hosts
        return not node_hosts or not node_hosts.isdisjoint(hosts)

    ancestors = _reach(graph.links.pred, seeds, on_hosts)
    descendants = _reach(graph.links.succ, seeds, on_hosts)
    effects = {
        successor
        for node_id in ancestors
        for successor in graph.links.succ[node_id]
        if nodes[successor].type != NodeType.PROCESS and on_hosts(successor)
    }
    return ancestors | descendants | effects


def choose_nodes(
    graph: LogGraph,
    traces: dict[int, EventTrace],
    relevant_by_event: dict[int, set[str]],
    entities: dict[int, list[dict]],
    *,
    with_event_nodes: bool,
    max_nodes: int,
    from_alerts: set[str] = frozenset(),
) -> tuple[list[str], int]:
    """Every node to show, nearest to the alerts' entities first, capped; and
    how many there were before the cap. ``from_alerts``: the nodes the alerts
    themselves give, where distances start too."""
    nodes = graph.nodes
    relevant: set[str] = set().union(*relevant_by_event.values())
    for event_id, relevant_nodes in relevant_by_event.items():
        for node_id in relevant_nodes:
            nodes[node_id].events.add(event_id)
    pinned: list[str] = []
    entity_nodes: set[str] = set()
    if with_event_nodes:
        pinned, entity_nodes = add_event_nodes(graph, traces, entities)
        relevant |= {n for n in nodes if nodes[n].events} - set(pinned)
    seeds = set().union(*(trace.seeds for trace in traces.values()))
    # In a diagram of several events, the alerts' own entities are where
    # distances start too, whether or not the logs mention them.
    distance = _distances(graph.links, seeds | entity_nodes | from_alerts, relevant)
    shared = {n for n in relevant if len(nodes[n].events) > 1}

    def priority(node_id):
        node = nodes[node_id]
        first = node.first_seen.timestamp() if node.first_seen else 0.0
        return (node_id not in shared, distance.get(node_id, len(relevant)), first, node_id)

    ordered = sorted(relevant, key=priority)
    node_total = len(pinned) + len(ordered)
    return pinned + ordered[: max(max_nodes - len(pinned), 0)], node_total


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


def _distances(links: nx.MultiDiGraph, sources: set[str], within: set[str]) -> dict[str, int]:
    """Hops from the nearest source, ignoring direction, inside ``within``."""
    distance = {node_id: 0 for node_id in sources if node_id in within}
    queue = deque(distance)
    while queue:
        node_id = queue.popleft()
        for neighbour in (*links.succ[node_id], *links.pred[node_id]):
            if neighbour in within and neighbour not in distance:
                distance[neighbour] = distance[node_id] + 1
                queue.append(neighbour)
    return distance
