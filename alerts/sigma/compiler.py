"""Sigma YAML -> what the batch evaluator and the correlation engine run.

A rule file holds one rule that raises alerts. It is either one detection
rule, or a correlation rule together with every rule it refers to (detection
rules, or other correlation rules for chains such as "a logon after a brute
force"), as YAML documents separated by ``---``. References resolve inside
the file, by ``name`` or ``id``.

Compilation collects every problem it can find rather than stopping at the
first, each with the line of the YAML text it is about, so that the editor
can show them all in place: YAML syntax, Sigma's own checks (pySigma),
unknown fields of the log type, unknown or unsupported modifiers, regular
expressions RE2 cannot run, unknown lists, conversion errors of the SQLite
backend, and the correlation features the engine does not offer.
"""

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache

import re2
import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import (
    SigmaConditionError,
    SigmaCorrelationConditionError,
    SigmaCorrelationRuleError,
    SigmaCorrelationTypeError,
    SigmaDateError,
    SigmaDetectionError,
    SigmaError,
    SigmaIdentifierError,
    SigmaLevelError,
    SigmaLogsourceError,
    SigmaModifiedError,
    SigmaModifierError,
    SigmaRegularExpressionError,
    SigmaRuleNotFoundError,
    SigmaStatusError,
    SigmaTagError,
    SigmaTimespanError,
    SigmaTitleError,
)
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaRule

from alerts.sigma.logsources import (
    LISTS,
    WEIGHT,
    LogSourceSpec,
    UnsupportedLogSource,
    processing_pipeline,
    spec_for,
)
from alerts.sigma.prefilter import Anchors, condition_anchors

LEVELS = ("informational", "low", "medium", "high", "critical")
SUPPORTED_CORRELATIONS = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
}
# Correlation state is kept for one timespan; a day bounds what it holds.
MAX_TIMESPAN_SECONDS = 24 * 3600
MAX_YAML_CHARACTERS = 100_000
MAX_DOCUMENTS = 20
# Far beyond what a rule needs (a few levels, a few hundred values), well
# within what the parser, pySigma and the editor handle in milliseconds.
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 20_000
# Time-part modifiers compare a timestamp field; records offer none to rules.
UNSUPPORTED_MODIFIERS = {
    name: "records have no timestamp field that rules can compare"
    for name in ("minute", "hour", "day", "week", "month", "year")
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

# Where in a document each kind of pySigma error is about.
_ERROR_PATHS = [
    (SigmaTitleError, ("title",)),
    (SigmaIdentifierError, ("id",)),
    (SigmaLevelError, ("level",)),
    (SigmaStatusError, ("status",)),
    (SigmaDateError, ("date",)),
    (SigmaModifiedError, ("modified",)),
    (SigmaTagError, ("tags",)),
    (SigmaLogsourceError, ("logsource",)),
    (SigmaConditionError, ("detection", "condition")),
    (SigmaDetectionError, ("detection",)),
    (SigmaTimespanError, ("correlation", "timespan")),
    (SigmaCorrelationConditionError, ("correlation", "condition")),
    (SigmaCorrelationTypeError, ("correlation", "type")),
    (SigmaRuleNotFoundError, ("correlation", "rules")),
    (SigmaCorrelationRuleError, ("correlation",)),
]
_QUOTED = re.compile(r"'([^'\n]{2,80})'")


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


# --- locating problems in the YAML text -------------------------------------------


class _Document:
    """One YAML document of the file, its parsed value and where its keys are."""

    def __init__(self, index: int, data, node):
        self.index = index
        self.data = data
        self.lines: dict[tuple, int] = {}
        self.first_line = node.start_mark.line + 1 if node is not None else 1
        self.last_line = node.end_mark.line + 1 if node is not None else 1
        if node is not None:
            self._index(node, ())

    def _index(self, node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self._index(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                self._index(item, (*path, position))

    def line(self, *path) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, self.first_line)

    def line_of_text(self, text_lines: list[str], needle: str) -> int | None:
        for number in range(self.first_line, min(self.last_line, len(text_lines)) + 1):
            if needle in text_lines[number - 1]:
                return number
        return None

    @property
    def key(self) -> str:
        return str(self.data.get("name") or self.data.get("id") or f"rule {self.index + 1}")


def _locate(error: SigmaError, document: _Document, text_lines: list[str]) -> Problem:
    message = str(error).strip()
    if isinstance(error, SigmaModifierError):
        for quoted in _QUOTED.findall(message):
            line = document.line_of_text(text_lines, f"|{quoted}")
            if line:
                return Problem(message, line)
    for error_class, path in _ERROR_PATHS:
        if isinstance(error, error_class):
            return Problem(message, document.line(*path))
    for quoted in _QUOTED.findall(message):
        line = document.line_of_text(text_lines, quoted)
        if line:
            return Problem(message, line)
    return Problem(message, document.first_line)


class _RefusedYAML(Exception):
    """YAML that is valid but not accepted in a rule; the message says why."""

    def __init__(self, message: str, mark):
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else None


class _RuleLoader(yaml.SafeLoader):
    """The safe loader, refusing what lets a small text cost a lot.

    An alias repeats the value of its anchor: ten aliases per level, eight
    levels deep, make a few hundred bytes stand for a billion values
    that pySigma and the editor would walk one by one. Sigma rules never
    need them. Deep nesting would make the composer (and everything that
    walks the rule afterwards) recurse past Python's stack.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        # An alias event carries the anchor it refers to.
        if event.anchor is not None:
            raise _RefusedYAML(
                "YAML aliases and anchors (*name, &name) are not allowed in rules.",
                event.start_mark,
            )
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise _RefusedYAML(
                f"The rule holds more than {MAX_YAML_NODES:,} YAML values.", event.start_mark
            )
        if self.depth >= MAX_YAML_DEPTH:
            raise _RefusedYAML(
                f"The YAML is nested more than {MAX_YAML_DEPTH} levels deep.", event.start_mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _load_all(text: str) -> list[tuple[object, yaml.Node]]:
    """(value, node) of each YAML document of the text, parsed once.

    pySigma is handed these values (``from_dict``), never the text, so that
    its own loader, which accepts aliases, never sees the rule.
    """
    loader = _RuleLoader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            documents.append((loader.construct_document(node), node))
        return documents
    finally:
        loader.dispose()


def _parse_documents(text: str) -> list[_Document]:
    if not text.strip():
        raise RuleProblems([Problem("The rule is empty: paste or upload Sigma YAML.", 1)])
    if len(text) > MAX_YAML_CHARACTERS:
        raise RuleProblems(
            [Problem(f"The rule is longer than {MAX_YAML_CHARACTERS:,} characters.", 1)]
        )
    try:
        parsed = _load_all(text)
    except _RefusedYAML as exc:
        raise RuleProblems([Problem(str(exc), exc.line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise RuleProblems(
            [Problem(f"YAML syntax: {detail}", mark.line + 1 if mark else None)]
        ) from None
    except yaml.YAMLError as exc:
        raise RuleProblems([Problem(f"YAML syntax: {exc}", None)]) from None
    except ValueError as exc:
        # A well-formed value the loader cannot build: a date such as
        # 2026-02-30, or an integer of more than 4,300 digits.
        raise RuleProblems([Problem(f"YAML value: {exc}.", None)]) from None
    documents = [
        _Document(index, data, node)
        for index, (data, node) in enumerate(parsed)
        if data is not None
    ]
    problems = [
        Problem("Each YAML document must be a Sigma rule (a mapping).", d.first_line)
        for d in documents
        if not isinstance(d.data, dict)
    ]
    if not documents:
        problems.append(Problem("The rule is empty: paste or upload Sigma YAML.", 1))
    if len(documents) > MAX_DOCUMENTS:
        problems.append(Problem(f"At most {MAX_DOCUMENTS} rules fit in one file.", 1))
    if problems:
        raise RuleProblems(problems)
    return documents


# --- detection rules -----------------------------------------------------------------


def _selection_items(selection):
    """(field key, value) of every item of a detection selection."""
    if isinstance(selection, dict):
        yield from selection.items()
    elif isinstance(selection, list):
        for position, entry in enumerate(selection):
            if isinstance(entry, dict):
                for key, value in entry.items():
                    yield key, value, position
            else:
                yield None, entry, position


def _check_detection_items(document: _Document, spec: LogSourceSpec | None) -> list[Problem]:
    """Fields the log type does not have, modifiers Sigma or we do not know,
    regular expressions RE2 refuses, lists we do not keep, keyword searches."""
    problems = []
    detection = document.data.get("detection")
    if not isinstance(detection, dict):
        return problems
    for name, selection in detection.items():
        if name == "condition":
            continue
        for item in _selection_items(selection):
            key, value = item[0], item[1]
            path = ("detection", name, *item[2:], *((key,) if key is not None else ()))
            line = document.line(*path)
            if key is None or not str(key).split("|")[0]:
                problems.append(
                    Problem(
                        f"Selection '{name}': keyword search (values without a field) is not "
                        "supported; compare a field, e.g. CommandLine|contains.",
                        line,
                    )
                )
                continue
            field_name, *modifiers = str(key).split("|")
            if spec is not None and spec.column_for_field(field_name) is None:
                problems.append(
                    Problem(
                        f"Unknown field '{field_name}' for the {spec.log_type} log type; its "
                        f"fields are {', '.join(spec.known_fields())}.",
                        line,
                    )
                )
            for modifier in modifiers:
                if modifier not in modifier_mapping:
                    problems.append(
                        Problem(
                            f"Unknown modifier '{modifier}' on '{field_name}'; Sigma's are "
                            f"{', '.join(sorted(modifier_mapping))}.",
                            line,
                        )
                    )
                elif modifier in UNSUPPORTED_MODIFIERS:
                    problems.append(
                        Problem(
                            f"Unsupported modifier '{modifier}' on '{field_name}': "
                            f"{UNSUPPORTED_MODIFIERS[modifier]}.",
                            line,
                        )
                    )
            values = value if isinstance(value, list) else [value]
            if "re" in modifiers:
                for pattern in values:
                    try:
                        re2.compile(str(pattern), _RE2_OPTIONS)
                    except re2.error as exc:
                        reason = exc.args[0] if exc.args else exc
                        if isinstance(reason, bytes):
                            reason = reason.decode(errors="replace")
                        problems.append(
                            Problem(
                                f"Regular expression {str(pattern)[:60]!r} on '{field_name}' "
                                f"cannot run here (RE2 syntax, no look-around or "
                                f"back-references): {reason}.",
                                line,
                            )
                        )
            if "expand" in modifiers:
                for placeholder in values:
                    list_name = str(placeholder).strip("%")
                    if list_name not in LISTS:
                        problems.append(
                            Problem(
                                f"Unknown list {placeholder!r} on '{field_name}'; the lists are "
                                + ", ".join(f"%{n}% ({d})" for n, d in LISTS.items())
                                + ".",
                                line,
                            )
                        )
    return problems


@lru_cache(maxsize=1)
def _pipeline():
    return processing_pipeline()


def _convert(rule: SigmaRule) -> tuple[str, str]:
    """(table, SQL condition) of one detection rule, through the pipeline and the backend."""
    backend = sqliteBackend(processing_pipeline=_pipeline(), collect_errors=False)
    rule._output = True
    queries = backend.convert_rule(rule)
    if len(queries) != 1:
        raise SigmaConditionError("A rule needs exactly one condition.")
    prefix = "SELECT * FROM "
    query = queries[0]
    table, _, condition = query.removeprefix(prefix).partition(" WHERE ")
    return table.strip('"`'), condition


def _columns_read(condition, spec: LogSourceSpec, category: str | None) -> frozenset[str]:
    """The columns a parsed condition compares (and the operation a file
    category is restricted to)."""
    found = set()
    stack = [condition]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "args", []))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            for name in (node.field, getattr(node.value, "field", None)):
                column = spec.column_for_field(name) if isinstance(name, str) else None
                if column is not None:
                    found.add(column)
    if category in spec.operations:
        found.add("operation")
    return frozenset(found)


def _lists_in(condition) -> set[str]:
    found = set()
    stack = [condition]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "args", []))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            parts = getattr(node.value, "s", ())
            found |= {getattr(p, "name", None) for p in parts} & set(LISTS)
    return found


def _condition_problems(document: _Document, text_lines: list[str]) -> list[Problem]:
    """The condition's own errors (bad syntax, a selection it names that is not
    defined), found on a skeleton of the detection so that they show even
    when the selections themselves have problems."""
    detection = document.data.get("detection")
    if not isinstance(detection, dict):
        return []  # pySigma reports the missing or malformed detection
    if "condition" not in detection:
        return [Problem("The detection needs a condition.", document.line("detection"))]
    skeleton = {
        "title": "condition check",
        "logsource": {"category": "process_creation"},
        "detection": {
            **{str(name): {"Image": "x"} for name in detection if name != "condition"},
            "condition": detection["condition"],
        },
    }
    try:
        for condition in SigmaRule.from_dict(skeleton).detection.parsed_condition:
            condition.parsed  # noqa: B018 - parsing is what reports the errors
    except SigmaError as exc:
        return [_locate(exc, document, text_lines)]
    return []


def _compile_detection(
    document: _Document, text_lines: list[str]
) -> tuple[DetectionQuery | None, list[Problem]]:
    problems: list[Problem] = []
    rule = SigmaRule.from_dict(document.data, collect_errors=True)
    problems += [_locate(error, document, text_lines) for error in rule.errors]
    spec = None
    if not any(isinstance(error, SigmaLogsourceError) for error in rule.errors):
        try:
            spec = spec_for(rule.logsource)
        except UnsupportedLogSource as exc:
            problems.append(Problem(f"Log source: {exc}.", document.line("logsource")))
    item_problems = _check_detection_items(document, spec)
    # pySigma reports unknown modifiers and bad regular expressions too, less
    # precisely: keep ours.
    own_lines = {p.line for p in item_problems}
    problems = [
        p
        for p, error in zip(problems, rule.errors, strict=False)
        if not (
            isinstance(error, SigmaModifierError | SigmaRegularExpressionError)
            and p.line in own_lines
        )
    ] + problems[len(rule.errors) :]
    problems += item_problems
    problems += _condition_problems(document, text_lines)
    if problems:
        return None, problems
    try:
        parsed = rule.detection.parsed_condition
        if len(parsed) != 1:
            raise SigmaConditionError("A rule needs exactly one condition.")
        anchors = condition_anchors(parsed[0].parsed, spec)
        lists = _lists_in(parsed[0].parsed)
        reads = _columns_read(parsed[0].parsed, spec, rule.logsource.category)
        # The pipeline rewrites the rule in place: convert a fresh copy.
        table, condition = _convert(SigmaRule.from_dict(document.data))
    except SigmaError as exc:
        return None, [_locate(exc, document, text_lines)]
    if table != spec.table:
        return None, [Problem("Log source: no log type serves it.", document.line("logsource"))]
    query = DetectionQuery(
        name=document.key,
        title=rule.title,
        spec=spec,
        condition=condition,
        anchors=anchors,
        lists=frozenset(lists),
        reads=reads,
    )
    return query, []


# --- correlation rules ---------------------------------------------------------------


def _compile_correlation(
    document: _Document,
    text_lines: list[str],
    names: dict[str, str],
    queries: dict[str, DetectionQuery],
    correlations: dict[str, CorrelationSpec],
) -> tuple[CorrelationSpec | None, list[Problem]]:
    rule = SigmaCorrelationRule.from_dict(document.data, collect_errors=True)
    problems = [_locate(error, document, text_lines) for error in rule.errors]
    if problems:
        return None, problems
    kind = SUPPORTED_CORRELATIONS.get(rule.type)
    if kind is None:
        return None, [
            Problem(
                f"Correlation type {rule.type.name.lower()!r} is not supported; use "
                f"{', '.join(SUPPORTED_CORRELATIONS.values())}.",
                document.line("correlation", "type"),
            )
        ]
    sources = []
    for position, reference in enumerate(rule.rules):
        target = names.get(str(reference.reference))
        if target is None or (target not in queries and target not in correlations):
            problems.append(
                Problem(
                    f"Correlation refers to {reference.reference!r}, which is not a valid "
                    "rule of this file (by name or id).",
                    document.line("correlation", "rules", position),
                )
            )
        else:
            sources.append(target)
    timespan = rule.timespan.seconds
    if timespan > MAX_TIMESPAN_SECONDS:
        problems.append(
            Problem("The timespan may be at most 24h.", document.line("correlation", "timespan"))
        )
    condition = rule.condition
    if kind in ("event_count", "value_count"):
        if condition.op not in (
            SigmaCorrelationConditionOperator.GTE,
            SigmaCorrelationConditionOperator.GT,
        ):
            problems.append(
                Problem(
                    "Only thresholds reached from below (gte, gt) are supported: the rule "
                    "fires when the count gets there.",
                    document.line("correlation", "condition"),
                )
            )
        minimum = condition.count + (
            1 if condition.op == SigmaCorrelationConditionOperator.GT else 0
        )
    elif kind == "temporal":
        # pySigma's default condition for temporal is "all of them".
        minimum = min(condition.count, len(set(sources))) if condition else len(set(sources))
    else:
        minimum = len(sources)
    group_by = tuple(rule.group_by or ())
    keys: dict[str, dict[str, str]] = {}
    value_keys: dict[str, str] = {}
    aliases = {alias.alias: alias for alias in rule.aliases} if rule.aliases else {}
    for source in sources:
        reference_names = {n for n, target in names.items() if target == source}
        keys[source] = {}
        for group_name in group_by:
            field_name = group_name
            alias = aliases.get(group_name)
            if alias is not None:
                mapped = [f for ref, f in alias.mapping.items() if ref.reference in reference_names]
                field_name = mapped[0] if mapped else group_name
            key = _key_for(field_name, source, queries, correlations)
            if key is None:
                problems.append(
                    Problem(
                        f"Group-by field {field_name!r} is not a field of the rule {source!r}.",
                        document.line("correlation", "group-by"),
                    )
                )
            else:
                keys[source][group_name] = key
        if kind == "value_count":
            value_field = condition.fieldref
            key = _key_for(value_field, source, queries, {}) if value_field else None
            if key is None:
                problems.append(
                    Problem(
                        f"value_count needs a field of the rule {source!r} to count "
                        f"(condition field {value_field!r}).",
                        document.line("correlation", "condition"),
                    )
                )
            else:
                value_keys[source] = key
    if problems:
        return None, problems
    return (
        CorrelationSpec(
            name=document.key,
            title=rule.title,
            type=kind,
            sources=tuple(sources),
            group_by=group_by,
            keys=keys,
            timespan=timespan,
            minimum=minimum,
            value_keys=value_keys,
        ),
        [],
    )


def _references_ready(document, names, queries, correlations, failed) -> bool:
    """Whether every rule the correlation names is compiled (or has failed)."""
    correlation = document.data.get("correlation")
    references = correlation.get("rules") if isinstance(correlation, dict) else None
    if not isinstance(references, list):
        return True
    done = set(queries) | set(correlations) | failed | {document.key}
    targets = {names.get(str(reference)) for reference in references} - {None}
    return targets <= done


def _key_for(field_name, source, queries, correlations) -> str | None:
    if source in queries:
        return queries[source].spec.column_for_field(str(field_name))
    if source in correlations:
        return str(field_name) if field_name in correlations[source].group_by else None
    return None


# --- the whole file ------------------------------------------------------------------


# ATT&CK tactics by the tag Sigma gives them.
TACTICS = {
    "reconnaissance": "Reconnaissance",
    "resource-development": "Resource Development",
    "initial-access": "Initial Access",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege-escalation": "Privilege Escalation",
    "defense-evasion": "Defense Evasion",
    "credential-access": "Credential Access",
    "discovery": "Discovery",
    "lateral-movement": "Lateral Movement",
    "collection": "Collection",
    "command-and-control": "Command and Control",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}


def _attck(tags: list[str]) -> tuple[str, str]:
    """The first ATT&CK tactic and technique among a rule's tags."""
    tactic = technique = ""
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace != "attack":
            continue
        if re.fullmatch(r"t\d{4}(\.\d{3})?", name):
            technique = technique or name.upper()
        elif name.replace("_", "-") in TACTICS:
            tactic = tactic or TACTICS[name.replace("_", "-")]
    return tactic, technique


def compile_rule(text: str) -> CompiledRule:
    """Compile a rule file, or raise RuleProblems listing everything wrong with it."""
    documents = _parse_documents(text)
    text_lines = text.splitlines()
    problems: list[Problem] = []
    names: dict[str, str] = {}
    keys: set[str] = set()
    unique = []
    for document in documents:
        if document.key in keys:
            problems.append(
                Problem(
                    f"Two rules of this file are called {document.key!r}.", document.line("name")
                )
            )
            continue
        keys.add(document.key)
        unique.append(document)
        for alias in (document.data.get("name"), document.data.get("id"), document.key):
            if alias:
                names[str(alias)] = document.key
    queries: dict[str, DetectionQuery] = {}
    for document in unique:
        if "correlation" not in document.data:
            try:
                query, found = _compile_detection(document, text_lines)
            except RecursionError:
                # pySigma parses and copies a condition recursively: a few
                # hundred nested "not"s exhaust Python's stack.
                query, found = (
                    None,
                    [
                        Problem(
                            "The condition is nested too deeply (a long chain of 'not' or of "
                            "parentheses); simplify it.",
                            document.line("detection", "condition"),
                        )
                    ],
                )
            problems += found
            if query is not None:
                queries[document.key] = query
    # Correlations in dependency order, whatever order the file lists them in:
    # each round compiles those whose rules are all compiled.
    correlations: dict[str, CorrelationSpec] = {}
    pending = [d for d in unique if "correlation" in d.data]
    failed: set[str] = set()
    while pending:
        ready = [d for d in pending if _references_ready(d, names, queries, correlations, failed)]
        if not ready:
            ready = pending  # unresolvable references: let each report its own
        for document in ready:
            spec, found = _compile_correlation(document, text_lines, names, queries, correlations)
            problems += found
            if spec is None:
                failed.add(document.key)
            else:
                correlations[document.key] = spec
        pending = [d for d in pending if d not in ready]
    referenced = {source for spec in correlations.values() for source in spec.sources}
    generate: set[str] = set()
    for document in unique:
        correlation = document.data.get("correlation")
        if isinstance(correlation, dict) and correlation.get("generate") is True:
            generate |= (
                set(correlations[document.key].sources) if document.key in correlations else set()
            )
    documents = unique
    if problems:
        raise RuleProblems(problems)

    outputs = [d for d in documents if d.key not in referenced]
    if len(outputs) != 1:
        raise RuleProblems(
            [
                Problem(
                    "A file holds one rule that raises alerts: one detection rule, or one "
                    "correlation rule with the rules it refers to. Unreferenced here: "
                    + ", ".join(repr(d.key) for d in outputs)
                    + ".",
                    outputs[-1].first_line if outputs else 1,
                )
            ]
        )
    output = outputs[0]
    data = output.data
    level = str(data.get("level") or "").lower()
    if level not in LEVELS:
        raise RuleProblems(
            [
                Problem(
                    "The rule needs a level (informational, low, medium, high or critical): "
                    "it sets the risk of the alerts it raises.",
                    output.line("level"),
                )
            ]
        )
    alert_type = str(data.get("alert_type") or "")
    if alert_type and not re.fullmatch(r"[a-z0-9_]{1,64}", alert_type):
        raise RuleProblems(
            [
                Problem(
                    "alert_type: lower-case letters, digits and underscores, up to 64.",
                    output.line("alert_type"),
                )
            ]
        )
    tags = tuple(str(tag).lower() for tag in data.get("tags") or () if isinstance(tag, str))
    tactic, technique = _attck(list(tags))
    columns_needed: dict[str, set[str]] = {name: set() for name in queries}
    for spec in correlations.values():
        for source in spec.sources:
            if source in queries:
                columns_needed[source] |= {WEIGHT, *spec.keys[source].values()}
                if source in spec.value_keys:
                    columns_needed[source].add(spec.value_keys[source])
    queries = {
        name: DetectionQuery(
            name=q.name,
            title=q.title,
            spec=q.spec,
            condition=q.condition,
            anchors=q.anchors,
            lists=q.lists,
            reads=q.reads,
            columns=tuple(sorted(columns_needed[name])),
        )
        for name, q in queries.items()
    }
    return CompiledRule(
        title=str(data.get("title") or "").strip()[:255],
        description=str(data.get("description") or "").strip(),
        level=level,
        status=str(data.get("status") or "").lower(),
        sigma_id=str(data.get("id") or ""),
        tags=tags,
        tactic=tactic,
        technique=technique,
        alert_type=alert_type,
        output=output.key,
        generating=frozenset({output.key} | generate),
        queries=queries,
        correlations=tuple(correlations.values()),
        titles={d.key: str(d.data.get("title") or d.key) for d in documents},
    )


@lru_cache(maxsize=512)
def _compile_cached(digest: str, text: str) -> CompiledRule:
    return compile_rule(text)


def compiled(text: str) -> CompiledRule:
    """``compile_rule`` once per distinct text in this process (compiling takes milliseconds,
    runs happen every minute)."""
    return _compile_cached(hashlib.sha256(text.encode()).hexdigest(), text)
