"""What compiling a rule file gives: the queries and correlation specs the
evaluator and the correlation engine run, or every problem found in the file."""

from dataclasses import dataclass, field

from alerts.sigma.logsources import LogSourceSpec
from alerts.sigma.prefilter import Anchors


@dataclass(frozen=True)
class Problem:
    """Something wrong with a rule, and the line (1-based) of the YAML it is about."""

    message: str
    line: int | None = None


class RuleProblems(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class DetectionQuery:
    """One detection rule of the file: an SQL condition over its log type's table."""

    name: str
    title: str
    spec: LogSourceSpec
    condition: str
    anchors: Anchors | None
    lists: frozenset[str]
    # Columns its condition reads.
    reads: frozenset[str] = frozenset()
    # Columns the correlations referring to this rule read (group-by, value).
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorrelationSpec:
    """One correlation rule of the file, resolved against the rules it names.

    ``keys``: per referenced rule, each group-by name -> the key of that
    rule's events holding its value (a column for a detection rule, a
    group-by name for a correlation rule). ``value_keys`` likewise for the
    ``value_count`` field.
    """

    name: str
    title: str
    type: str
    sources: tuple[str, ...]
    group_by: tuple[str, ...]
    keys: dict[str, dict[str, str]]
    timespan: int
    minimum: int
    value_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledRule:
    title: str
    description: str
    level: str
    status: str
    sigma_id: str
    tags: tuple[str, ...]
    tactic: str
    technique: str
    # The document that raises alerts, and every document that does (a
    # correlation's ``generate: true`` makes the rules it names raise too).
    # The alert type the file proposes (``alert_type:``), if any.
    alert_type: str
    output: str
    generating: frozenset[str]
    queries: dict[str, DetectionQuery]
    correlations: tuple[CorrelationSpec, ...]
    titles: dict[str, str]

    @property
    def kind(self) -> str:
        return "correlation" if self.output not in self.queries else "detection"

    @property
    def log_types(self) -> list[str]:
        return sorted({query.spec.log_type for query in self.queries.values()})

    @property
    def lists(self) -> frozenset[str]:
        return frozenset().union(*(query.lists for query in self.queries.values()))
