"""A rule file's YAML, loaded safely, and the lines its problems are about.

Every problem carries the line of the YAML text it is about so that the
editor can show it in place; pySigma's errors say which part of a rule they
concern by their class, or by quoting the text.
"""

import re

import yaml
from pyparsing import ParseException
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
    SigmaRuleNotFoundError,
    SigmaStatusError,
    SigmaTagError,
    SigmaTimespanError,
    SigmaTitleError,
)

from alerts.sigma import condition_errors
from alerts.sigma.compiled_rule import Problem, RuleProblems

MAX_YAML_CHARACTERS = 100_000
MAX_DOCUMENTS = 20
# Far beyond what a rule needs (a few levels, a few hundred values), well
# within what the parser, pySigma and the editor handle in milliseconds.
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 20_000

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
_UNDEFINED_SELECTION = re.compile(r"^Detection '(.*)' not defined in detections$")


class Document:
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


def _condition_message(error: SigmaConditionError, document: Document) -> str | None:
    """pySigma's condition errors in plain words; None keeps its own message."""
    cause = error.__context__
    if isinstance(cause, ParseException):
        return condition_errors.explain(cause.pstr, cause.col)
    message = str(error).strip()
    if message.startswith("The pipe syntax"):
        return (
            "The condition uses '|' (count(), near, ...), which Sigma has replaced by "
            "correlation rules: write the aggregation as a correlation rule in this file."
        )
    undefined = _UNDEFINED_SELECTION.match(message)
    if undefined:
        detection = document.data.get("detection")
        names = (
            [str(n) for n in detection if n != "condition"] if isinstance(detection, dict) else []
        )
        known = f" (its selections: {', '.join(names)})" if names else ""
        return (
            f"The condition names '{undefined.group(1)}', which is not a selection of the "
            f"detection{known}."
        )
    return None


def locate(error: SigmaError, document: Document, text_lines: list[str]) -> Problem:
    message = str(error).strip()
    if isinstance(error, SigmaConditionError):
        message = _condition_message(error, document) or message
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


def parse_documents(text: str) -> list[Document]:
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
        if "unhashable key" in detail:
            detail = "a key must be a plain value, not a list or a mapping"
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
        Document(index, data, node) for index, (data, node) in enumerate(parsed) if data is not None
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
