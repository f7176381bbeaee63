"""Conditions on an alert's objects, and rule sets compiled per organisation.

The operators, their validation and messages, and the rule for an object
with several values or none are the shared ones of ``secops.conditions``;
this module adds the whitelist's objects and scenarios, the AND of a group
and the index of a batch's groups by value.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from alerts.facts import AlertFacts
from secops import conditions as engine

# Re-exported: the whitelist's services, API, views and tests read the limits
# and the operators of each kind here.
from secops.conditions import MAX_MATCHED_LENGTH as MAX_MATCHED_LENGTH
from secops.conditions import MAX_VALUE_LENGTH as MAX_VALUE_LENGTH
from secops.conditions import OPERATORS_BY_KIND as OPERATORS_BY_KIND
from secops.conditions import ConditionError, holds
from whitelist.scenarios import OBJECTS, scenario


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
        raise ConditionError(f"Unknown object “{object_key}”.", "object")
    if scenario_key is not None and object_key not in scenario(scenario_key).objects:
        raise ConditionError(
            f"{obj.label} is not an object of the scenario “{scenario(scenario_key).label}”.",
            "object",
        )
    compiled = engine.compile_condition(obj.kind, operator, value, label=obj.label)
    return CompiledCondition(
        object_key, compiled.test, compiled.negative, compiled.fold, compiled.literals
    )


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
            if not holds(test, negative, values.get(key, fold)):
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
