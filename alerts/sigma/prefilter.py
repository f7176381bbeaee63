"""The literal prefilter: which records of a batch can possibly match.

Almost no log record matches a detection rule, and copying every record into
SQLite costs more than evaluating the rules there. So each rule's condition
is read for the literals a matching record must contain: a rule
``CommandLine|contains: '/dev/tcp/'`` can only match a record whose JSON text
contains ``/dev/tcp/``. Only the records that contain what some rule needs
go on to SQLite, where the rules' own SQL decides.

A rule's needs are a conjunction of clauses, each a set of literals of which
the record must contain one: ``User: [www-data, nginx]`` and
``Image|endswith: ['/whoami', '/id']`` give two clauses, both required. Two
passes of RE2 (linear-time automata) find the records meeting them:

1. one pass over the batch's JSON texts of a log type finds those containing
   a literal of some rule's most selective clause;
2. a set of automata, one per clause, says which clauses each of those meets;
   it goes on if that is every clause of one of its log type's rules.

When a sample of the batch shows that most texts of a log type pass the
first step anyway (every logon names its result), the first step is skipped
for that type: reporting a match costs more than the set's look at a text.

The prefilter may let through records that do not match (a literal found in
another field), never the other way round:

- a condition that is not a literal comparison on a field stored verbatim
  (regular expressions, CIDR ranges, numeric comparisons, ``exists``,
  derived fields such as ``Initiated``) has no literal, and a rule without
  any sends every record of its log type to SQLite;
- ``a or b`` needs a literal of either branch (one clause: their union),
  ``a and b`` the clauses of both, ``not a`` nothing;
- a literal is used only when the JSON text must spell it the same way on
  every database (printable ASCII without quotes or backslashes, which JSON
  never escapes), and is compared without case, as Sigma compares strings;
- where a value must start or end a field holding a JSON string (equality,
  ``startswith``, ``endswith``), the literal takes the quote that delimits
  it: ``User: nginx`` looks for ``"nginx"``, not every command line
  mentioning nginx, and ``Image|endswith: '/id'`` for ``/id"``.
"""

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.types import Placeholder, SigmaExpansion, SigmaNumber, SigmaString

from alerts.sigma.logsources import LISTS, LogSourceSpec

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# How many texts of a log type show whether most of them would pass the first
# step (more than this share), which is then skipped.
SAMPLE_SIZE = 200
DENSE = 0.25
# A literal must be spelled identically in PostgreSQL's and Python's JSON text.
_SAFE_LITERAL = re.compile(r"[ !#-\[\]-~]+")


@dataclass(frozen=True)
class Clause:
    """Literals (lower case) one of which a matching record contains, and the
    lists whose values count as such literals."""

    literals: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()

    def __or__(self, other: "Clause") -> "Clause":
        return Clause(self.literals | other.literals, self.lists | other.lists)

    def cost(self) -> tuple[int, int]:
        """Short literals are everywhere ('/sh' is in most process records, ' -c '
        says no more than '-c'): prefer the clause whose shortest literal is
        longest, then the one with fewest literals."""
        shortest = min((len(literal.strip(' "')) for literal in self.literals), default=8)
        if self.lists:
            shortest = min(shortest, 7)  # an IPv4 address is 7 to 15 characters
        return (-shortest, len(self.literals) + 10 * len(self.lists))

    def resolved(self, list_values: dict[str, set[str]]) -> frozenset[str]:
        literals = set(self.literals)
        for name in self.lists:
            literals |= {value.lower() for value in list_values.get(name, ())}
        return frozenset(literals)


@dataclass(frozen=True)
class Anchors:
    """What a matching record contains: a literal of each clause. The first
    clause is the most selective."""

    clauses: tuple[Clause, ...]

    @property
    def literals(self) -> frozenset[str]:
        return self.clauses[0].literals

    @property
    def lists(self) -> frozenset[str]:
        return frozenset().union(*(clause.lists for clause in self.clauses))


def _string_clause(value: SigmaString, whole: bool) -> Clause | None:
    """The longest literal run of a string; in a ``whole`` string field, with
    the quote before it when it starts the value and after it when it ends it."""
    parts = value.s
    if len(parts) == 1 and isinstance(parts[0], Placeholder):
        return Clause(lists=frozenset({parts[0].name})) if parts[0].name in LISTS else None
    runs, current = [], ""
    for part in parts:
        if isinstance(part, str):
            current += part
        else:
            runs.append(current)
            current = ""
    runs.append(current)
    position = max(range(len(runs)), key=lambda i: len(runs[i]))
    literal = runs[position].lower()
    if not literal or not _SAFE_LITERAL.fullmatch(literal):
        return None
    if whole and position == 0:
        literal = '"' + literal
    if whole and position == len(runs) - 1:
        literal += '"'
    return Clause(literals=frozenset({literal}))


def _value_clause(value, whole: bool) -> Clause | None:
    if isinstance(value, SigmaString):
        return _string_clause(value, whole)
    if isinstance(value, SigmaNumber):
        return Clause(literals=frozenset({str(value.number).lower()}))
    if isinstance(value, SigmaExpansion):
        return _either([_value_clause(v, whole) for v in value.values])
    return None


def _either(clauses: list[Clause | None]) -> Clause | None:
    if any(clause is None for clause in clauses):
        return None
    result = Clause()
    for clause in clauses:
        result = result | clause
    return result


def condition_anchors(condition, spec: LogSourceSpec) -> Anchors | None:
    """The anchors of a parsed Sigma condition (before field mapping), or None
    when a record without any literal could still match."""
    if isinstance(condition, ConditionOR):
        children = [condition_anchors(arg, spec) for arg in condition.args]
        # Either branch will do: one clause, the union of each branch's best one.
        clause = _either([child.clauses[0] if child else None for child in children])
        return Anchors((clause,)) if clause is not None else None
    if isinstance(condition, ConditionAND):
        clauses = {
            clause
            for child in (condition_anchors(arg, spec) for arg in condition.args)
            if child is not None
            for clause in child.clauses
        }
        return Anchors(tuple(sorted(clauses, key=Clause.cost))) if clauses else None
    if isinstance(condition, ConditionNOT):
        return None
    if isinstance(condition, ConditionFieldEqualsValueExpression):
        column = spec.column_for_field(condition.field) if condition.field else None
        if column is None or not spec.is_verbatim(column):
            return None
        clause = _value_clause(condition.value, spec.is_whole_string(column))
        return Anchors((clause,)) if clause is not None else None
    return None


@dataclass
class Prefilter:
    """Picks the records of a batch that some rule may match.

    ``anchors_by_type``: per log type, the anchors of each of its rules; a
    None among them (a rule without literals) lets every record of the type
    through. ``list_values``: the values of each list, in any account.
    """

    anchors_by_type: dict[str, list[Anchors | None]]
    list_values: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.open_types: set[str] = set()
        # Per log type: an automaton for the first clause of all its rules (a
        # literal of a network rule says nothing about process records), a set
        # with one automaton per distinct clause, and each rule's clauses as
        # indexes into that set.
        self.first_patterns = {}
        self.clause_sets = {}
        self.rule_clauses: dict[str, list[frozenset[int]]] = {}
        for log_type, rules in self.anchors_by_type.items():
            if any(anchors is None for anchors in rules):
                self.open_types.add(log_type)
                continue
            resolved = [
                [clause.resolved(self.list_values) for clause in anchors.clauses]
                for anchors in rules
            ]
            everything = {lit for clauses in resolved for clause in clauses for lit in clause}
            if any(not _SAFE_LITERAL.fullmatch(literal.strip('"')) for literal in everything):
                # A list value the JSON text may spell differently: no shortcut.
                self.open_types.add(log_type)
                continue
            first = frozenset().union(*(clauses[0] for clauses in resolved))
            if not first:
                continue  # no rule of the type can match anything
            self.first_patterns[log_type] = _pattern(first)
            distinct = list(dict.fromkeys(c for clauses in resolved for c in clauses if c))
            self.clause_sets[log_type] = _clause_set(tuple(distinct))
            self.rule_clauses[log_type] = [
                frozenset(distinct.index(c) if c else -1 for c in clauses) for clauses in resolved
            ]

    def candidates(self, rows: list[tuple], *, type_index: int, text_index: int) -> list[tuple]:
        """The rows that may match; ``rows`` hold a log type and a JSON text."""
        kept = []
        checked: dict[str, list[tuple]] = {log_type: [] for log_type in self.first_patterns}
        for row in rows:
            log_type = row[type_index]
            if log_type in self.open_types:
                kept.append(row)
            elif log_type in checked:
                checked[log_type].append(row)
        for log_type, group in checked.items():
            if not group:
                continue
            texts = _Texts([row[text_index] for row in group])
            first = self.first_patterns[log_type]
            sample = range(0, len(group), max(len(group) // SAMPLE_SIZE, 1))
            if sum(1 for i in sample if first.search(texts.lowered(i))) > len(sample) * DENSE:
                hits = range(len(group))
            else:
                hits = sorted(texts.containing(first))
            clause_set = self.clause_sets[log_type]
            rules = self.rule_clauses[log_type]
            for i in hits:
                met = set(clause_set.Match(texts.lowered(i)) or ())
                if any(clauses <= met for clauses in rules):
                    kept.append(group[i])
        return kept


@lru_cache(maxsize=256)
def _pattern(literals: frozenset[str]):
    """An automaton over UTF-8 bytes: byte offsets need no conversion back to
    character offsets (which costs more than the search), and the literals are
    ASCII."""
    # The rest of the line goes with the match: one match per text at most,
    # whatever else it contains.
    alternatives = b"|".join(re2.escape(lit.encode()) for lit in sorted(literals))
    return re2.compile(b"(?:" + alternatives + rb")[^\n]*", _RE2_OPTIONS)


@lru_cache(maxsize=64)
def _clause_set(clauses: tuple[frozenset[str], ...]):
    """One automaton per clause, run together: which clauses a text meets."""
    automata = re2.Set.SearchSet(_RE2_OPTIONS)
    for clause in clauses:
        automata.Add(b"|".join(re2.escape(lit.encode()) for lit in sorted(clause)))
    automata.Compile()
    return automata


class _Texts:
    """JSON texts searched together: one pass of an automaton over all of them."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        lowered = "\n".join(texts).lower()
        # Positions map back to texts only where a character is a byte: outside
        # ASCII, a batch is searched text by text.
        self.whole = lowered.isascii()
        if self.whole:
            self.data = lowered.encode("ascii")
            self.starts = list(accumulate((len(t) + 1 for t in texts[:-1]), initial=0))

    def lowered(self, index: int) -> bytes:
        """One text, lower case, as UTF-8."""
        if not self.whole:
            return self.texts[index].lower().encode()
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.data)
        return self.data[self.starts[index] : end]

    def containing(self, pattern) -> set[int]:
        """Indexes of the texts in which the pattern occurs (without case)."""
        if not self.whole:
            return {i for i, text in enumerate(self.texts) if pattern.search(text.lower().encode())}
        # JSON text never holds a raw newline, so no literal spans two texts.
        return {bisect_right(self.starts, m.start()) - 1 for m in pattern.finditer(self.data)}
