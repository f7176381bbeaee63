"""Sigma correlation rules over a stream of batches.

A correlation groups the matches of the rules it names by its ``group-by``
fields, and always by account: records of two accounts never meet. For each
group it keeps the events of the last ``timespan`` (by record time) in a
state that outlives the batch, so a brute force whose attempts arrive in two
batches is one brute force. The caller stores the state in the same
transaction as the batch's alerts and watermark.

Semantics, for the window of one ``timespan`` ending at each event in time
order:

- ``event_count``: the events (a merged login record counts as its number
  of attempts) reach the threshold;
- ``value_count``: the distinct values of the condition's field reach it;
- ``temporal``: every named rule has an event in the window;
- ``temporal_ordered``: the named rules' events occur in the listed order.

When a window qualifies, the correlation fires once for it: its events are
consumed and the group stays quiet for one timespan (its events are dropped),
so a long attack gives one alert per timespan, not one per event. A firing
is an event for the correlations that name this one (chains such as "a logon
after a brute force"), at the window's end, with the window's records.
"""

import hashlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol

from alerts.sigma.compiled_rule import CompiledRule, CorrelationSpec

# What a group keeps at most; the oldest events go first.
MAX_EVENTS_PER_GROUP = 5_000
# Record ids a chained event carries at most into the next correlation.
MAX_RECORDS_PER_FIRING = 500


@dataclass(frozen=True)
class Event:
    time: float  # epoch seconds of the record (or of the window's end, for a firing)
    record_ids: tuple[int, ...]
    source: str  # the name of the rule that matched
    value: str | None = None
    weight: int = 1

    def as_json(self) -> list:
        return [self.time, list(self.record_ids), self.source, self.value, self.weight]

    @classmethod
    def from_json(cls, data: list) -> "Event":
        time, record_ids, source, value, weight = data
        return cls(float(time), tuple(record_ids), source, value, int(weight))


@dataclass
class GroupState:
    events: list[Event] = field(default_factory=list)
    quiet_until: float | None = None

    def as_json(self) -> dict:
        return {
            "events": [event.as_json() for event in self.events],
            "quiet_until": self.quiet_until,
        }

    @classmethod
    def from_json(cls, data: dict) -> "GroupState":
        return cls(
            events=[Event.from_json(item) for item in data.get("events", [])],
            quiet_until=data.get("quiet_until"),
        )


@dataclass(frozen=True)
class Observation:
    """Something a correlation counts: a match of a rule it names (the
    evaluator's ``Match`` has the same attributes) or a firing of another
    correlation. Its account, the values the correlation reads (by key), when
    it happened and the records behind it."""

    account_id: int
    fields: dict
    time: float
    record_ids: tuple[int, ...]
    weight: int = 1


@dataclass(frozen=True)
class Firing:
    correlation: str
    account_id: int
    group: dict[str, str | None]
    window_start: float
    window_end: float
    events: tuple[Event, ...]
    count: int

    @property
    def record_ids(self) -> list[int]:
        seen = dict.fromkeys(rid for event in self.events for rid in event.record_ids)
        return list(seen)


# A group: the account and the values of the correlation's group-by fields,
# in their order (None for a field the record lacks).
Group = tuple[int, tuple[str | None, ...]]


def group_key(values: tuple[str | None, ...]) -> str:
    """A group's values as a fixed-length key for the database (the repr of a
    tuple of strings and Nones is unambiguous, and cheap)."""
    return hashlib.sha256(repr(tuple(values)).encode()).hexdigest()


class StateStore(Protocol):
    """Where group states live between batches (the database, or memory for a dry run)."""

    def load(self, spec: CorrelationSpec, groups: set[Group]) -> dict[Group, GroupState]: ...

    def save(self, spec: CorrelationSpec, states: dict[Group, GroupState]) -> None: ...

    def groups_with_state(self, spec: CorrelationSpec) -> set[Group]: ...


class MemoryStore:
    def __init__(self):
        self.states: dict[tuple[str, Group], GroupState] = {}

    def load(self, spec, groups):
        found = {}
        for group in groups:
            state = self.states.get((spec.name, group))
            if state is not None:
                found[group] = state
        return found

    def save(self, spec, states):
        for group, state in states.items():
            if state.events or state.quiet_until is not None:
                self.states[(spec.name, group)] = state
            else:
                self.states.pop((spec.name, group), None)

    def groups_with_state(self, spec):
        return {group for name, group in self.states if name == spec.name}


class _Window:
    """The events of the current window and the figure the correlation counts."""

    def __init__(self, spec: CorrelationSpec):
        self.spec = spec
        self.events: deque[Event] = deque()
        self.weight = 0
        self.values: Counter = Counter()
        self.sources: Counter = Counter()

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.weight += event.weight
        if event.value is not None:
            self.values[event.value] += 1
        self.sources[event.source] += 1

    def drop_before(self, time: float) -> None:
        while self.events and self.events[0].time < time:
            event = self.events.popleft()
            self.weight -= event.weight
            if event.value is not None:
                self.values[event.value] -= 1
                if not self.values[event.value]:
                    del self.values[event.value]
            self.sources[event.source] -= 1
            if not self.sources[event.source]:
                del self.sources[event.source]

    def count(self) -> int:
        kind = self.spec.type
        if kind == "event_count":
            return self.weight
        if kind == "value_count":
            return len(self.values)
        if kind == "temporal":
            return len(self.sources)
        # temporal_ordered: how much of the listed sequence occurs in order.
        position = 0
        for event in self.events:
            if position < len(self.spec.sources) and event.source == self.spec.sources[position]:
                position += 1
        return position


def advance(spec: CorrelationSpec, state: GroupState, new_events: list[Event]):
    """Fold new events into a group's state; returns (new state, firings as
    (window start, window end, events, count))."""
    events = sorted([*state.events, *new_events], key=lambda e: (e.time, e.record_ids))
    quiet_until = state.quiet_until
    window = _Window(spec)
    fired = []
    for event in events:
        if quiet_until is not None and event.time <= quiet_until:
            continue
        window.add(event)
        window.drop_before(event.time - spec.timespan)
        count = window.count()
        if count >= spec.minimum:
            members = tuple(window.events)
            fired.append((members[0].time, event.time, members, count))
            quiet_until = event.time + spec.timespan
            window = _Window(spec)
    if not events:
        return GroupState(quiet_until=quiet_until), fired
    latest = events[-1].time
    kept = [e for e in window.events if e.time >= latest - spec.timespan]
    if spec.type == "temporal_ordered":
        # Events before the first event of the first rule can never start the
        # sequence: a logon is only suspicious after a brute force, not before.
        first = next((i for i, e in enumerate(kept) if e.source == spec.sources[0]), len(kept))
        kept = kept[first:]
    kept = kept[-MAX_EVENTS_PER_GROUP:]
    if quiet_until is not None and quiet_until < latest:
        quiet_until = None
    return GroupState(events=kept, quiet_until=quiet_until), fired


def _can_start(spec: CorrelationSpec, events: list[Event]) -> bool:
    """Whether a group without state can begin with these events: an ordered
    sequence needs its first rule (most groups of "a logon after a brute
    force" are logons alone, and stay stateless)."""
    if spec.type != "temporal_ordered":
        return True
    return any(event.source == spec.sources[0] for event in events)


def _ordered(group: Group):
    account, values = group
    return (account, tuple("" if value is None else value for value in values))


class CorrelationEngine:
    """Runs the correlations of one compiled rule over the matches of a batch."""

    def __init__(self, rule: CompiledRule, store: StateStore):
        self.rule = rule
        self.store = store

    def process(self, observations: dict[str, list[Observation]]) -> list[Firing]:
        """``observations``: per detection rule of the file, its matches in the
        batch. Returns the firings of every correlation, in dependency order."""
        produced: dict[str, list[Observation]] = dict(observations)
        firings: list[Firing] = []
        for spec in self.rule.correlations:
            grouped = self._grouped(spec, produced)
            if not grouped:
                continue
            states = self.store.load(spec, set(grouped))
            updated: dict[Group, GroupState] = {}
            own: list[Observation] = []
            for group in sorted(grouped, key=_ordered):
                events = grouped[group]
                if group not in states and not _can_start(spec, events):
                    continue
                state, fired = advance(spec, states.get(group, GroupState()), events)
                updated[group] = state
                values = dict(zip(spec.group_by, group[1], strict=True))
                for start, end, members, count in fired:
                    firing = Firing(
                        correlation=spec.name,
                        account_id=group[0],
                        group=values,
                        window_start=start,
                        window_end=end,
                        events=members,
                        count=count,
                    )
                    firings.append(firing)
                    own.append(
                        Observation(
                            group[0],
                            dict(values),
                            firing.window_end,
                            tuple(firing.record_ids[:MAX_RECORDS_PER_FIRING]),
                        )
                    )
            self.store.save(spec, updated)
            produced[spec.name] = own
        return firings

    def _grouped(self, spec: CorrelationSpec, produced) -> dict[Group, list[Event]]:
        """The batch's events of the correlation, by group.

        An ordered sequence only goes on in groups where it has begun: the
        groups of its first rule's events in this batch, and those with state
        (a state always holds an event of the first rule). Events of other
        groups (most logons are not after a brute force) are left out before
        anything is built for them.
        """
        grouped: dict[Group, list[Event]] = {}
        live = None
        for position, source in enumerate(spec.sources):
            if spec.type == "temporal_ordered" and position == 1:
                live = set(grouped) | self.store.groups_with_state(spec)
            keys = [spec.keys[source][name] for name in spec.group_by]
            value_key = spec.value_keys.get(source)
            for observation in produced.get(source, ()):
                fields = observation.fields
                group = (
                    observation.account_id,
                    tuple([None if (v := fields.get(key)) is None else str(v) for key in keys]),
                )
                if live is not None and group not in live:
                    continue
                value = fields.get(value_key) if value_key is not None else None
                event = Event(
                    observation.time,
                    observation.record_ids,
                    source,
                    None if value is None else str(value),
                    observation.weight,
                )
                found = grouped.get(group)
                if found is None:
                    grouped[group] = [event]
                else:
                    found.append(event)
        return grouped
