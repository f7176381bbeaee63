"""How much one diagram reads from the logs and shows."""

from dataclasses import dataclass
from datetime import timedelta

DEFAULT_CONTEXT_WINDOW = timedelta(hours=1)
MAX_LOG_RECORDS = 20_000
MAX_NODES = 300
MAX_EVENTS_ON_ONE_GRAPH = 10
# References of the records behind one node or edge sent to the browser; the preview
# table shows all of them.
RECORD_IDS_PER_ELEMENT = 50
ALERT_IDS_PER_NODE = 20
LABEL_LENGTH = 60
# A request triggers the process carrying its command only if that process
# starts this soon after it.
PAYLOAD_TO_PROCESS = timedelta(seconds=60)
# Shorter commands ("id", "ls") are compared with whole parameter values only:
# as substrings they would be found in any URL.
MIN_COMMAND_SUBSTRING = 12


@dataclass(frozen=True)
class TracingBounds:
    context_window: timedelta = DEFAULT_CONTEXT_WINDOW
    max_log_records: int = MAX_LOG_RECORDS
    max_nodes: int = MAX_NODES


DEFAULT_BOUNDS = TracingBounds()
