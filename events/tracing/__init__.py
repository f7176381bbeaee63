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

Every event gets a diagram: what its own alerts give (see ``alert_graph``:
hosts, processes, files, IPs, domains, URLs, logons and payloads, related by
their attributes) is drawn whether or not there are logs, and the log graph
adds to it. Logs are read for the hosts of the event's Security Center alerts
(its host agent is where the contextual logs come from), and they add to the
diagram when at least one entity of its alerts is found in them; otherwise
the diagram says why they add nothing. Every node and edge carries its
sources: the alerts, the logs, or both.

Several events on one graph: each event becomes a node linked to the entities
of its alerts, keyed by their normalised value, so events that share an IP,
a file hash or a process meet at that node; the log graphs of the events that
can be traced hang off the same nodes.
"""

from events.tracing.diagram import TracingGraph
from events.tracing.graph import NodeType
from events.tracing.limits import MAX_EVENTS_ON_ONE_GRAPH, TracingBounds
from events.tracing.tracer import TooManyEvents, parse_event_ids, trace_event, trace_events
from events.tracing.traces import EventTrace, Unavailable

__all__ = [
    "MAX_EVENTS_ON_ONE_GRAPH",
    "EventTrace",
    "NodeType",
    "TooManyEvents",
    "TracingBounds",
    "TracingGraph",
    "Unavailable",
    "parse_event_ids",
    "trace_event",
    "trace_events",
]
