"""Conditions on facts, shared by every app: one operator set, one compiler.

A condition is (operator, value) on a fact of a known kind; compiling it
validates and gives a predicate. The whitelist tests an alert's objects with
it; automated response rules combine conditions on an event's facts with AND
and OR (``compile_tree``).

Compiling validates: a bad regex, CIDR block, IP, port or choice raises
``ConditionError`` with a message for the form or the API. Regular
expressions run on RE2, whose matching time is linear in the input, so no
pattern can stall the pipeline (the time bound); inputs are also capped.

A fact has zero, one or several values (an event has several entities, alert
types, data sources). The one rule for all of them:

- a positive operator holds when **any** value matches;
- a negative operator (Not equal to, Does not include) holds when **no**
  value matches;
- a fact with no value (None, "", an empty list) never holds, whatever the
  operator: a rule must not act on something it was not written for (the
  whitelist's rule since its first version).
"""

import functools
import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from django.db import models

from secops.regex import RegexError, compile_linear_time

# Kinds of values.
TEXT = "text"
IP = "ip"
PORT = "port"
# Values compared without regard to case: the pipeline stores them lower-cased.
FOLDED = "folded"
# One of a fixed set of values (a risk level, a status): see ``Choice``.
CHOICE = "choice"

MAX_LIST_ENTRIES = 1_000
MAX_VALUE_LENGTH = 4_000
# An In list as a whole (up to MAX_LIST_ENTRIES entries).
MAX_LIST_LENGTH = 200_000
# RE2 reads at most this much of a value: a megabyte-long command line cannot
# make one condition slow.
MAX_MATCHED_LENGTH = 16_384
# An AND/OR tree: groups inside groups, and conditions in all.
MAX_TREE_DEPTH = 4
MAX_TREE_LEAVES = 50
_LIST_SEPARATORS = re.compile(r"[\r\n]+")


class Operator(models.TextChoices):
    EQUALS = "equals", "Equal to"
    NOT_EQUALS = "not_equals", "Not equal to"
    CONTAINS = "contains", "Includes"
    NOT_CONTAINS = "not_contains", "Does not include"
    STARTS_WITH = "starts_with", "Starts with"
    REGEX = "regex", "Matches regex"
    IN_CIDR = "in_cidr", "In CIDR"
    IN_LIST = "in_list", "In list"

    @classmethod
    def negative(cls) -> frozenset[str]:
        # Met when the fact has a value and none of its values matches.
        return frozenset({cls.NOT_EQUALS, cls.NOT_CONTAINS})


_TEXT_OPERATORS = [
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.CONTAINS,
    Operator.NOT_CONTAINS,
    Operator.STARTS_WITH,
    Operator.REGEX,
    Operator.IN_LIST,
]
OPERATORS_BY_KIND = {
    TEXT: _TEXT_OPERATORS,
    FOLDED: list(_TEXT_OPERATORS),
    IP: [
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.IN_CIDR,
        Operator.IN_LIST,
        Operator.STARTS_WITH,
        Operator.REGEX,
    ],
    PORT: [Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN_LIST],
    # "Risk at least Medium" is In list "medium, high".
    CHOICE: [Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN_LIST],
}


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message names the problem.

    ``path`` says where: the part of a condition (``operator``, ``value``) or,
    in a tree, the full path such as ``conditions.any[1].all[0].value``."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path


class Choice:
    """The kind of a field whose values are among ``values`` (compared exactly).

    Its values never contain a comma: an In list may separate them by commas."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable):
        self.values = tuple(str(value) for value in values)
        if not self.values or any(not v or "," in v or v != v.strip() for v in self.values):
            raise ValueError(f"Choices must be non-empty words without commas: {self.values!r}")

    def __repr__(self):
        return f"Choice({self.values!r})"

    def check(self, text: str) -> str:
        if text not in self.values:
            raise ConditionError(f"“{text}” is not one of: {', '.join(self.values)}.", "value")
        return text


Kind = str | Choice


def list_entries(value: str) -> list[str]:
    """Entries of an In list / In CIDR value: one per line (commas also split
    entries of IPs, ports, CIDR blocks and choices, which never contain one)."""
    return [entry.strip() for entry in _LIST_SEPARATORS.split(value) if entry.strip()]


def _split_commas(entries: list[str]) -> list[str]:
    return [part.strip() for entry in entries for part in entry.split(",") if part.strip()]


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConditionError(f"“{text}” is not an IP address.", "value") from None


def _port(text: str) -> str:
    # isdigit() alone also accepts "²", which int() refuses, and int() refuses
    # digit strings longer than 4,300 characters.
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        raise ConditionError(f"“{text}” is not a port (0 to 65535).", "value")
    return str(int(text))


def _network(text: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConditionError(f"“{text}” is not a CIDR block (e.g. 10.0.0.0/8).", "value") from None


def _regex(pattern: str, *, ignore_case: bool = False):
    # For folded values, which are compared lower-cased, the engine ignores
    # case (see secops.regex).
    try:
        return compile_linear_time(pattern, ignore_case=ignore_case)
    except RegexError as exc:
        raise ConditionError(str(exc), "value") from None


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


def holds(test: Callable[[str], bool], negative: bool, values: Collection[str]) -> bool:
    """The rule for a fact's values (see the module docstring): any value
    passes ``test`` (a positive operator), or none does (a negative one), and
    never for a fact without a value."""
    if not values:
        return False
    if negative:
        return not any(test(v) for v in values)
    return any(test(v) for v in values)


def _canonical_ip(text: str) -> str:
    # No address is longer: a long text is left as it is, and out of the cache.
    return _canonical_short_ip(text) if len(text) <= 64 else text


@functools.lru_cache(maxsize=65_536)
def _canonical_short_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _fact_port(value) -> str:
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 5:
        return str(int(text))
    return text


_PREPARE = {
    FOLDED: lambda value: str(value).lower(),
    IP: lambda value: _canonical_ip(str(value).strip()),
    PORT: _fact_port,
}


def fact_values(kind: str, fact) -> tuple[str, ...]:
    """The values of a fact as a condition of ``kind`` compares them: a
    single value or a list, tuple or set of them; None and "" are no value.
    Folded values are lower-cased, IPs and ports put in canonical form."""
    if fact is None:
        return ()
    items = fact if isinstance(fact, list | tuple | set | frozenset) else (fact,)
    prepare = _PREPARE.get(kind, str)
    return tuple(prepare(item) for item in items if item is not None and item != "")


@dataclass(frozen=True, slots=True)
class ConditionTest:
    """A compiled condition; called with a fact (a value, a list of values or
    None), says whether it holds."""

    kind: str
    # The test on one value, as ``fact_values`` gives it.
    test: Callable[[str], bool]
    # Met when no value passes the test (and the fact has a value).
    negative: bool
    # Equal to / In list: exactly the values that meet the condition (None for
    # the other operators), so callers can index conditions by value.
    literals: frozenset[str] | None = None

    @property
    def fold(self) -> bool:
        """Values are compared lower-cased."""
        return self.kind == FOLDED

    def __call__(self, fact) -> bool:
        return holds(self.test, self.negative, fact_values(self.kind, fact))


def compile_condition(
    kind: Kind, operator: str, value: str, *, label: str = "This field"
) -> ConditionTest:
    """The condition ready to test facts of ``kind``; ``ConditionError`` (with
    ``path`` "operator" or "value") if anything is wrong. ``label`` names the
    field in the messages."""
    choice = kind if isinstance(kind, Choice) else None
    if choice is not None:
        kind = CHOICE
    elif kind == CHOICE:
        raise TypeError("A choice kind is given as Choice(values).")
    if operator not in OPERATORS_BY_KIND[kind]:
        allowed = ", ".join(Operator(o).label for o in OPERATORS_BY_KIND[kind])
        raise ConditionError(f"{label} takes these conditions: {allowed}.", "operator")
    value = (value or "").strip()
    if not value:
        raise ConditionError("Enter a condition value.", "value")
    if len(value) > MAX_VALUE_LENGTH and operator != Operator.IN_LIST:
        raise ConditionError(f"The value is longer than {MAX_VALUE_LENGTH} characters.", "value")
    if len(value) > MAX_LIST_LENGTH:
        raise ConditionError(f"The list is longer than {MAX_LIST_LENGTH} characters.", "value")
    fold = kind == FOLDED
    if fold and operator != Operator.REGEX:
        value = value.lower()
    canonical = {IP: _ip, PORT: _port}.get(kind) or (choice.check if choice else None)
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
            raise ConditionError("Enter at least one CIDR block.", "value")
        if len(entries) > MAX_LIST_ENTRIES:
            raise ConditionError(f"At most {MAX_LIST_ENTRIES} CIDR blocks.", "value")
        test = _address_in([_network(entry) for entry in entries])
    elif operator == Operator.IN_LIST:
        entries = list_entries(value)
        if canonical:
            entries = [canonical(e) for e in _split_commas(entries)]
        if not entries:
            raise ConditionError("Enter at least one entry.", "value")
        if len(entries) > MAX_LIST_ENTRIES:
            raise ConditionError(f"At most {MAX_LIST_ENTRIES} entries in a list.", "value")
        allowed_values = literals = frozenset(entries)

        def test(v):
            return v in allowed_values

    else:  # pragma: no cover - guarded by OPERATORS_BY_KIND
        raise ConditionError(f"Unknown condition “{operator}”.", "operator")
    negative = operator in Operator.negative()
    return ConditionTest(kind, test, negative, None if negative else literals)


# --- AND/OR trees ------------------------------------------------------------------
#
# {"all": [node, ...]} holds when every node holds, {"any": [node, ...]} when
# one does; a node is such a group or a condition
# {"field": name, "operator": operator, "value": text}. The value may also be
# a number or a list of texts and numbers (for In list / In CIDR: one entry each).

GROUP_KEYS = ("all", "any")
LEAF_KEYS = ("field", "operator", "value")
_SHAPE = 'Expected a group {"all": [...]} or {"any": [...]}'


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: str
    field: str
    operator: str
    value: str
    condition: ConditionTest

    def holds(self, facts: Mapping) -> bool:
        return self.condition(facts.get(self.field))

    def leaves(self):
        yield self


@dataclass(frozen=True, slots=True)
class _Group:
    every: bool  # "all"; else "any"
    children: tuple

    def holds(self, facts: Mapping) -> bool:
        results = (child.holds(facts) for child in self.children)
        return all(results) if self.every else any(results)

    def leaves(self):
        for child in self.children:
            yield from child.leaves()


@dataclass(frozen=True, slots=True)
class LeafOutcome:
    path: str
    field: str
    operator: str
    value: str
    held: bool


@dataclass(frozen=True, slots=True)
class Explanation:
    held: bool
    # Every condition of the tree in order, each tested (no short cut).
    leaves: tuple[LeafOutcome, ...]


class Predicate:
    """A compiled AND/OR tree: ``predicate(facts)`` says whether it holds for
    the facts, a mapping of field name to a value or a list of values (a field
    not in the mapping has no value)."""

    __slots__ = ("_root",)

    def __init__(self, root: _Group):
        self._root = root

    def __call__(self, facts: Mapping) -> bool:
        return self._root.holds(facts)

    def explain(self, facts: Mapping) -> Explanation:
        outcomes = tuple(
            LeafOutcome(leaf.path, leaf.field, leaf.operator, leaf.value, leaf.holds(facts))
            for leaf in self._root.leaves()
        )
        return Explanation(self(facts), outcomes)


class _TreeCompiler:
    def __init__(self, fields: Mapping[str, Kind], root_path: str):
        self.fields = fields
        self.root_path = root_path
        self.errors: list[ConditionError] = []
        self.leaf_count = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConditionError(message, path))

    def group(self, node, path: str, depth: int) -> _Group | None:
        if not isinstance(node, dict) or not any(key in node for key in GROUP_KEYS):
            self.error(path, f"{_SHAPE}.")
            return None
        if len(node) != 1:
            self.error(path, 'A group has exactly one key: "all" or "any".')
            return None
        if depth > MAX_TREE_DEPTH:
            self.error(path, f"Groups nest at most {MAX_TREE_DEPTH} deep.")
            return None
        ((key, children),) = node.items()
        path = f"{path}.{key}"
        if not isinstance(children, list):
            self.error(path, "Expected a list.")
            return None
        if not children:
            self.error(path, "Add at least one condition.")
            return None
        compiled = []
        for index, child in enumerate(children):
            child_path = f"{path}[{index}]"
            if isinstance(child, dict) and any(k in child for k in GROUP_KEYS):
                compiled.append(self.group(child, child_path, depth + 1))
            else:
                compiled.append(self.leaf(child, child_path))
        return _Group(key == "all", tuple(compiled))

    def leaf(self, node, path: str) -> _Leaf | None:
        if not isinstance(node, dict) or not any(key in node for key in LEAF_KEYS):
            self.error(path, f'{_SHAPE} or a condition {{"field", "operator", "value"}}.')
            return None
        self.leaf_count += 1
        if self.leaf_count == MAX_TREE_LEAVES + 1:
            self.error(self.root_path, f"At most {MAX_TREE_LEAVES} conditions.")
        found = len(self.errors)
        for key in node:
            if key not in LEAF_KEYS:
                self.error(path, f"Unknown key “{key}”.")
        for key in LEAF_KEYS:
            if key not in node:
                self.error(f"{path}.{key}", "Required.")
        if len(self.errors) > found:
            return None
        field, operator, value = node["field"], node["operator"], node["value"]
        if not isinstance(field, str) or field not in self.fields:
            self.error(f"{path}.field", f"Unknown field “{field}”.")
            return None
        if not isinstance(operator, str):
            self.error(f"{path}.operator", "Expected a text.")
            return None
        value = _value_text(value)
        if value is None:
            self.error(f"{path}.value", "Expected a text, a number or a list of them.")
            return None
        try:
            condition = compile_condition(self.fields[field], operator, value, label=f"“{field}”")
        except ConditionError as exc:
            self.error(f"{path}.{exc.path}", exc.message)
            return None
        return _Leaf(path, field, operator, value, condition)


def _value_text(value) -> str | None:
    def scalar(item) -> str | None:
        if isinstance(item, str):
            return item
        if isinstance(item, int) and not isinstance(item, bool):
            return str(item)
        return None

    if isinstance(value, list):
        entries = [scalar(item) for item in value]
        return None if None in entries else "\n".join(entries)
    return scalar(value)


def tree_errors(
    tree, fields: Mapping[str, Kind], *, path: str = "conditions"
) -> list[ConditionError]:
    """Every problem of a tree (none: it compiles), each with its path."""
    compiler = _TreeCompiler(fields, path)
    compiler.group(tree, path, depth=1)
    return compiler.errors


def compile_tree(tree, fields: Mapping[str, Kind], *, path: str = "conditions") -> Predicate:
    """The predicate of an AND/OR tree (parsed JSON) over the ``fields``, a
    mapping of each field a condition may test to its kind (TEXT, FOLDED, IP,
    PORT or a ``Choice``). Raises the first of ``tree_errors``."""
    compiler = _TreeCompiler(fields, path)
    root = compiler.group(tree, path, depth=1)
    if compiler.errors:
        raise compiler.errors[0]
    return Predicate(root)


def explain(tree, fields: Mapping[str, Kind], facts: Mapping) -> Explanation:
    """Whether the tree holds for the facts and which of its conditions do
    (for a dry run); ``ConditionError`` for a tree that does not compile."""
    return compile_tree(tree, fields).explain(facts)
