"""Conditions compiled to predicates, and rule sets compiled per organisation.

Compiling validates: a bad regex, CIDR block, IP or port raises
``ConditionError`` with a message for the form or the API. Regular
expressions run on RE2, whose matching time is linear in the input, so no
pattern can stall the pipeline (the time bound); inputs are also capped.
"""

import functools
import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from alerts.facts import AlertFacts
from secops.regex import RegexError, compile_linear_time
from whitelist.models import Operator
from whitelist.scenarios import FOLDED, IP, OBJECTS, PORT, scenario

MAX_LIST_ENTRIES = 1_000
MAX_VALUE_LENGTH = 4_000
# An In list as a whole (up to MAX_LIST_ENTRIES entries).
MAX_LIST_LENGTH = 200_000
# RE2 reads at most this much of a value: a megabyte-long command line cannot
# make one condition slow.
MAX_MATCHED_LENGTH = 16_384
_LIST_SEPARATORS = re.compile(r"[\r\n]+")

OPERATORS_BY_KIND = {
    "text": [
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.CONTAINS,
        Operator.NOT_CONTAINS,
        Operator.STARTS_WITH,
        Operator.REGEX,
        Operator.IN_LIST,
    ],
    FOLDED: [
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.CONTAINS,
        Operator.NOT_CONTAINS,
        Operator.STARTS_WITH,
        Operator.REGEX,
        Operator.IN_LIST,
    ],
    IP: [
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.IN_CIDR,
        Operator.IN_LIST,
        Operator.STARTS_WITH,
        Operator.REGEX,
    ],
    PORT: [Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN_LIST],
}


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message names the problem."""


def list_entries(value: str) -> list[str]:
    """Entries of an In list / In CIDR value: one per line (commas also split
    entries of IPs, ports and CIDR blocks, which never contain one)."""
    return [entry.strip() for entry in _LIST_SEPARATORS.split(value) if entry.strip()]


def _split_commas(entries: list[str]) -> list[str]:
    return [part.strip() for entry in entries for part in entry.split(",") if part.strip()]


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConditionError(f"“{text}” is not an IP address.") from None


def _port(text: str) -> str:
    # isdigit() alone also accepts "²", which int() refuses, and int() refuses
    # digit strings longer than 4,300 characters.
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        raise ConditionError(f"“{text}” is not a port (0 to 65535).")
    return str(int(text))


def _network(text: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConditionError(f"“{text}” is not a CIDR block (e.g. 10.0.0.0/8).") from None


def _regex(pattern: str, *, ignore_case: bool = False):
    # For folded objects, whose values are compared lower-cased, the engine
    # ignores case (see secops.regex).
    try:
        return compile_linear_time(pattern, ignore_case=ignore_case)
    except RegexError as exc:
        raise ConditionError(str(exc)) from None


@functools.lru_cache(maxsize=65_536)
def _address(value: str) -> tuple[int, int] | None:
    """(IP version, integer) of an address, or None; cached because a batch
    tests the same few addresses against many CIDR conditions."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return address.version, int(address)


def _address_in(networks) -> Callable[[str], bool]:
    ranges = [(n.version, int(n.network_address), int(n.broadcast_address)) for n in networks]

    def test(value: str) -> bool:
        parsed = _address(value)
        if parsed is None:
            return False
        version, number = parsed
        return any(v == version and low <= number <= high for v, low, high in ranges)

    return test


class CompiledCondition(NamedTuple):
    key: str
    # The test on one of the alert's values of the object.
    test: Callable[[str], bool]
    # Met when no value passes the test (and the alert has the object).
    negative: bool
    # Values compared lower-cased.
    fold: bool
    # Equal to / In list: exactly the values that meet the condition, so the
    # groups of a batch can be looked up by an alert's values.
    literals: frozenset[str] | None = None


def compile_condition(
    object_key: str, operator: str, value: str, scenario_key: str | None = None
) -> CompiledCondition:
    """The condition ready to test alerts; ``ConditionError`` if anything is wrong."""
    obj = OBJECTS.get(object_key)
    if obj is None:
        raise ConditionError(f"Unknown object “{object_key}”.")
    if scenario_key is not None and object_key not in scenario(scenario_key).objects:
        raise ConditionError(
            f"{obj.label} is not an object of the scenario “{scenario(scenario_key).label}”."
        )
    if operator not in OPERATORS_BY_KIND[obj.kind]:
        allowed = ", ".join(Operator(o).label for o in OPERATORS_BY_KIND[obj.kind])
        raise ConditionError(f"{obj.label} takes these conditions: {allowed}.")
    value = (value or "").strip()
    if not value:
        raise ConditionError("Enter a condition value.")
    if len(value) > MAX_VALUE_LENGTH and operator != Operator.IN_LIST:
        raise ConditionError(f"The value is longer than {MAX_VALUE_LENGTH} characters.")
    if len(value) > MAX_LIST_LENGTH:
        raise ConditionError(f"The list is longer than {MAX_LIST_LENGTH} characters.")
    fold = obj.kind == FOLDED
    if fold and operator != Operator.REGEX:
        value = value.lower()
    canonical = {IP: _ip, PORT: _port}.get(obj.kind)
    literals = None

    if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        expected = canonical(value) if canonical else value
        literals = frozenset({expected})

        def test(v):
            return v == expected

    elif operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):

        def test(v):
            return value in v

    elif operator == Operator.STARTS_WITH:

        def test(v):
            return v.startswith(value)

    elif operator == Operator.REGEX:
        pattern = _regex(value, ignore_case=fold)

        def test(v):
            return pattern.search(v[:MAX_MATCHED_LENGTH]) is not None

    elif operator == Operator.IN_CIDR:
        entries = _split_commas(list_entries(value))
        if not entries:
            raise ConditionError("Enter at least one CIDR block.")
        if len(entries) > MAX_LIST_ENTRIES:
            raise ConditionError(f"At most {MAX_LIST_ENTRIES} CIDR blocks.")
        test = _address_in([_network(entry) for entry in entries])
    elif operator == Operator.IN_LIST:
        entries = list_entries(value)
        if canonical:
            entries = [canonical(e) for e in _split_commas(entries)]
        if not entries:
            raise ConditionError("Enter at least one entry.")
        if len(entries) > MAX_LIST_ENTRIES:
            raise ConditionError(f"At most {MAX_LIST_ENTRIES} entries in a list.")
        allowed_values = literals = frozenset(entries)

        def test(v):
            return v in allowed_values

    else:  # pragma: no cover - guarded by OPERATORS_BY_KIND
        raise ConditionError(f"Unknown condition “{operator}”.")
    negative = operator in Operator.negative()
    return CompiledCondition(object_key, test, negative, fold, None if negative else literals)


@dataclass
class CompiledGroup:
    id: int
    name: str
    scenario: str
    enabled: bool
    expires_at: datetime | None
    # None: every account of the organisation.
    account_ids: frozenset[int] | None
    conditions: list = field(default_factory=list)
    # A group with a condition that no longer compiles never matches.
    broken: bool = False

    @property
    def needs_raw(self) -> bool:
        return any(OBJECTS[c.key].needs_raw for c in self.conditions)

    @property
    def index_condition(self) -> CompiledCondition | None:
        """The most selective Equal to / In list condition on a value the alert
        carries (not the port, read later): the group can only match alerts
        that have one of its values."""
        indexable = [
            c for c in self.conditions if c.literals is not None and not OBJECTS[c.key].needs_raw
        ]
        return min(indexable, key=lambda c: len(c.literals), default=None)

    def active(self, now: datetime) -> bool:
        return (
            self.enabled and not self.broken and (self.expires_at is None or self.expires_at > now)
        )

    def applies_to(self, account_id: int) -> bool:
        return self.account_ids is None or account_id in self.account_ids

    def matches(self, alert: AlertFacts, ports: tuple[str, ...] = (), values=None) -> bool:
        """Every condition met (AND). A condition on an object the alert does
        not have is never met, whatever its operator: a whitelist must not
        hide an alert it was not written for.

        ``values`` is an ``AlertValues`` of the alert, shared by every group
        tested against it so each object is read once."""
        if not self.conditions:
            return False
        values = values or AlertValues(alert, ports)
        for key, test, negative, fold, _ in self.conditions:
            found = values.get(key, fold)
            if not found:
                return False
            if negative:
                if any(test(v) for v in found):
                    return False
            elif not any(test(v) for v in found):
                return False
        return True


class PortsNeeded(Exception):
    """A condition needs the destination port, which is read from the
    original data only for the alerts that get that far."""


class AlertValues:
    """An alert's values per object, read on first use (lower-cased on request).

    ``ports`` None: not loaded yet; a condition on the port raises ``PortsNeeded``."""

    __slots__ = ("_alert", "_ports", "_read")

    def __init__(self, alert: AlertFacts, ports: tuple[str, ...] | None = ()):
        self._alert = alert
        self._ports = ports
        self._read: dict = {}

    def get(self, key: str, fold: bool = False) -> tuple[str, ...]:
        cached = self._read.get((key, fold))
        if cached is None:
            if fold:
                cached = tuple(v.lower() for v in self.get(key))
            elif key == "destination_port":
                if self._ports is None:
                    raise PortsNeeded
                cached = self._ports
            else:
                cached = OBJECTS[key].read(self._alert)
            self._read[(key, fold)] = cached
        return cached


class GroupIndex:
    """The active groups of one scenario in a batch, found by an alert's values.

    A group with an Equal to / In list condition is filed under that
    condition's values and is tested only against alerts carrying one of them;
    the others are tested against every alert. Candidates come back in id
    order, so the first group that matches is the same as without the index."""

    def __init__(self, groups: Iterable[CompiledGroup]):
        self.unindexed: list[CompiledGroup] = []
        self.by_value: dict[tuple[str, bool], dict[str, list[CompiledGroup]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for group in groups:
            condition = group.index_condition
            if condition is None:
                self.unindexed.append(group)
                continue
            table = self.by_value[(condition.key, condition.fold)]
            for value in condition.literals:
                table[value].append(group)

    def __bool__(self) -> bool:
        return bool(self.unindexed or self.by_value)

    def candidates(self, values: "AlertValues") -> list[CompiledGroup]:
        found = {group.id: group for group in self.unindexed}
        for (key, fold), table in self.by_value.items():
            for value in values.get(key, fold):
                for group in table.get(value, ()):
                    found[group.id] = group
        return [found[group_id] for group_id in sorted(found)]


def compile_group(group, conditions: Iterable, account_ids) -> CompiledGroup:
    compiled = CompiledGroup(
        id=group.id,
        name=group.name,
        scenario=group.scenario,
        enabled=group.enabled,
        expires_at=group.expires_at,
        account_ids=None if group.is_global else frozenset(account_ids),
    )
    for condition in conditions:
        try:
            compiled.conditions.append(
                compile_condition(condition.object, condition.operator, condition.value)
            )
        except ConditionError:
            compiled.broken = True
    # AND is order-free: test what the alert carries first, and the port,
    # which costs a read of the original data, only when all else holds.
    compiled.conditions.sort(key=lambda condition: OBJECTS[condition.key].needs_raw)
    return compiled


@dataclass
class CompiledRuleSet:
    """An organisation's groups by scenario."""

    revision: int
    by_scenario: dict[str, list[CompiledGroup]] = field(default_factory=lambda: defaultdict(list))

    def add(self, group: CompiledGroup) -> None:
        groups = self.by_scenario[group.scenario]
        groups.append(group)
        groups.sort(key=lambda g: g.id)  # the first matching group by id wins

    def candidates(self, alert_type: str) -> list[CompiledGroup]:
        return self.by_scenario.get(alert_type, [])

    @property
    def needs_raw(self) -> bool:
        return any(g.needs_raw for groups in self.by_scenario.values() for g in groups)
