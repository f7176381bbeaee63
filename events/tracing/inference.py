"""Edges no single log record shows, inferred from records of the same host.

``process_starts`` maps each host to the (start time, process node) pairs of
its processes, sorted by time.
"""

import re
from bisect import bisect_left
from datetime import datetime

from events.tracing.graph import EXECUTED, TRIGGERED, LogGraph
from events.tracing.limits import MIN_COMMAND_SUBSTRING, PAYLOAD_TO_PROCESS

# "/bin/sh -c <command>" and its relatives: the command is what a web request carries.
_SHELL_COMMAND = re.compile(
    r"^(?:\S*/)?(?:sh|bash|dash|zsh|ash)\s+-c\s+(?P<command>.+)$"
    r"|^(?:\S*\\)?(?:cmd(?:\.exe)?\s+/c|powershell(?:\.exe)?\s+-c(?:ommand)?)\s+(?P<win>.+)$",
    re.IGNORECASE | re.DOTALL,
)


def link_payloads_to_processes(
    graph: LogGraph,
    payload_texts: list[tuple[str, str, str, set[str]]],
    process_starts: dict[str, list[tuple[datetime, str]]],
) -> None:
    """A request triggered the first process, started right after it on the
    same host, whose command the request carried (a web shell, an injection)."""
    commands: dict[str, set[str]] = {}
    for host, payload_id, text, values in payload_texts:
        starts = process_starts.get(host)
        if not starts:
            continue
        for moment in sorted(_request_times(graph, payload_id)):
            for _, process_id in _between(starts, moment, moment + PAYLOAD_TO_PROCESS):
                if process_id not in commands:
                    commands[process_id] = _commands_of(graph.nodes[process_id].attributes)
                if _carries_command(text, values, commands[process_id]):
                    graph.edge(payload_id, process_id, TRIGGERED, moment, None)
                    break


def link_written_files_to_processes(
    graph: LogGraph,
    process_starts: dict[str, list[tuple[datetime, str]]],
    written_files: dict[tuple[str, str], list[tuple[datetime, str]]],
) -> None:
    """A process started from a path written earlier on the same host ran that file."""
    for host, starts in process_starts.items():
        for started, process_id in starts:
            path = graph.nodes[process_id].attributes.get("path")
            for written, file_id in written_files.get((host, path), ()):
                if written <= started and (file_id, process_id, EXECUTED) not in graph.edges:
                    graph.edge(file_id, process_id, EXECUTED, started, None)
                    break


def _request_times(graph: LogGraph, payload_id: str) -> set:
    return {graph.rows[record_id]["time"] for record_id in graph.nodes[payload_id].records}


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
