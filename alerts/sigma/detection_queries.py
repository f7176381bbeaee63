"""Detection rules: the checks that locate each problem of a selection, and
the conversion of the rule to an SQL condition over its log type's table."""

from functools import lru_cache

import re2
from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.exceptions import (
    SigmaConditionError,
    SigmaError,
    SigmaLogsourceError,
    SigmaModifierError,
    SigmaRegularExpressionError,
)
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaRule

from alerts.sigma.compiled_rule import DetectionQuery, Problem
from alerts.sigma.documents import Document, locate
from alerts.sigma.logsources import (
    LISTS,
    LogSourceSpec,
    UnsupportedLogSource,
    processing_pipeline,
    spec_for,
)
from alerts.sigma.prefilter import condition_anchors

# Time-part modifiers compare a timestamp field; records offer none to rules.
UNSUPPORTED_MODIFIERS = {
    name: "records have no timestamp field that rules can compare"
    for name in ("minute", "hour", "day", "week", "month", "year")
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


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


def _check_detection_items(document: Document, spec: LogSourceSpec | None) -> list[Problem]:
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
            if any(v is None for v in values):
                # The SQL backend has no form for Sigma's null (a missing field).
                problems.append(
                    Problem(
                        f"Selection '{name}': '{field_name}' is compared with null (no value), "
                        "which rules here cannot test; give a value to compare it with.",
                        line,
                    )
                )
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


def _condition_problems(document: Document, text_lines: list[str]) -> list[Problem]:
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
        return [locate(exc, document, text_lines)]
    return []


def _compile(
    document: Document, text_lines: list[str]
) -> tuple[DetectionQuery | None, list[Problem]]:
    problems: list[Problem] = []
    rule = SigmaRule.from_dict(document.data, collect_errors=True)
    problems += [locate(error, document, text_lines) for error in rule.errors]
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
        return None, [locate(exc, document, text_lines)]
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


def compile_detection(
    document: Document, text_lines: list[str]
) -> tuple[DetectionQuery | None, list[Problem]]:
    """The rule's query, or every problem that keeps it from having one."""
    try:
        return _compile(document, text_lines)
    except RecursionError:
        # pySigma parses and copies a condition recursively: a few
        # hundred nested "not"s exhaust Python's stack.
        return None, [
            Problem(
                "The condition is nested too deeply (a long chain of 'not' or of "
                "parentheses); simplify it.",
                document.line("detection", "condition"),
            )
        ]
