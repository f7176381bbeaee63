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
import logging
import re
from dataclasses import replace
from functools import lru_cache

from alerts.sigma.compiled_rule import (
    CompiledRule,
    CorrelationSpec,
    DetectionQuery,
    Problem,
    RuleProblems,
)
from alerts.sigma.correlation_specs import compile_correlation, references_ready
from alerts.sigma.detection_queries import compile_detection
from alerts.sigma.documents import Document, parse_documents
from alerts.sigma.logsources import WEIGHT
from alerts.sigma.shapes import shape_problems
from secops import attck

logger = logging.getLogger(__name__)

# pySigma trusts the shape of what it is handed; ``shapes`` checks what is
# known to upset it. Anything else it trips over is still a problem of the
# rule to report, never an error page.
_PYSIGMA_FAILURES = (TypeError, AttributeError, ValueError, KeyError, IndexError)
UNREADABLE = (
    "This rule could not be read: check that each key holds the kind of value the "
    "Sigma specification gives it."
)

LEVELS = ("informational", "low", "medium", "high", "critical")

# ATT&CK tactics by the tag Sigma gives them ("attack.initial-access").
TACTICS = {name.lower().replace(" ", "-"): name for name in attck.TACTIC_NAMES}


def _attck(tags: list[str]) -> tuple[str, str]:
    """The rule's first ATT&CK technique and, of its tactics, the first one
    that technique belongs to (a rule may tag tactics of several techniques)."""
    tactics, techniques = [], []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace != "attack":
            continue
        if re.fullmatch(r"t\d{4}(\.\d{3})?", name):
            techniques.append(name.upper())
        elif name.replace("_", "-") in TACTICS:
            tactics.append(TACTICS[name.replace("_", "-")])
    technique = techniques[0] if techniques else ""
    own = [tactic for tactic in tactics if tactic in attck.tactics_of(technique)]
    tactic = (own or tactics or [""])[0]
    return tactic, technique


def compile_rule(text: str) -> CompiledRule:
    """Compile a rule file, or raise RuleProblems listing everything wrong with it."""
    documents, names, problems = _distinct(parse_documents(text))
    # A key holding the wrong kind of value makes pySigma fail rather than
    # report: such a file is reported on its shape alone.
    shapes = [problem for document in documents for problem in shape_problems(document)]
    if shapes:
        raise RuleProblems(problems + shapes)
    text_lines = text.splitlines()
    queries, found = _compile_detections(documents, text_lines)
    problems += found
    correlations, found = _compile_correlations(documents, text_lines, names, queries)
    problems += found
    if problems:
        raise RuleProblems(problems)
    output = _output(documents, correlations)
    data = output.data
    level = _level(output)
    alert_type = _alert_type(output)
    tags = tuple(str(tag).lower() for tag in data.get("tags") or () if isinstance(tag, str))
    tactic, technique = _attck(list(tags))
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
        generating=frozenset({output.key} | _generated(documents, correlations)),
        queries=_with_columns(queries, correlations),
        correlations=tuple(correlations.values()),
        titles={d.key: str(d.data.get("title") or d.key) for d in documents},
    )


def _distinct(
    documents: list[Document],
) -> tuple[list[Document], dict[str, str], list[Problem]]:
    """The documents with a key of their own, what each can be referred to
    by (name, id or key) -> its key, and a problem for each repeated key."""
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
    return unique, names, problems


def _compile_detections(
    documents: list[Document], text_lines: list[str]
) -> tuple[dict[str, DetectionQuery], list[Problem]]:
    problems: list[Problem] = []
    queries: dict[str, DetectionQuery] = {}
    for document in documents:
        if "correlation" not in document.data:
            try:
                query, found = compile_detection(document, text_lines)
            except _PYSIGMA_FAILURES:
                logger.warning("pySigma failed on rule %r", document.key, exc_info=True)
                query, found = None, [Problem(UNREADABLE, document.first_line)]
            problems += found
            if query is not None:
                queries[document.key] = query
    return queries, problems


def _compile_correlations(
    documents: list[Document],
    text_lines: list[str],
    names: dict[str, str],
    queries: dict[str, DetectionQuery],
) -> tuple[dict[str, CorrelationSpec], list[Problem]]:
    """Correlations in dependency order, whatever order the file lists them in:
    each round compiles those whose rules are all compiled."""
    problems: list[Problem] = []
    correlations: dict[str, CorrelationSpec] = {}
    pending = [d for d in documents if "correlation" in d.data]
    failed: set[str] = set()
    while pending:
        ready = [d for d in pending if references_ready(d, names, queries, correlations, failed)]
        if not ready:
            ready = pending  # unresolvable references: let each report its own
        for document in ready:
            try:
                spec, found = compile_correlation(
                    document, text_lines, names, queries, correlations
                )
            except _PYSIGMA_FAILURES:
                logger.warning("pySigma failed on rule %r", document.key, exc_info=True)
                spec, found = None, [Problem(UNREADABLE, document.first_line)]
            problems += found
            if spec is None:
                failed.add(document.key)
            else:
                correlations[document.key] = spec
        pending = [d for d in pending if d not in ready]
    return correlations, problems


def _output(documents: list[Document], correlations: dict[str, CorrelationSpec]) -> Document:
    """The one document no other refers to: the rule that raises alerts."""
    referenced = {source for spec in correlations.values() for source in spec.sources}
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
    return outputs[0]


def _level(output: Document) -> str:
    level = str(output.data.get("level") or "").lower()
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
    return level


def _alert_type(output: Document) -> str:
    alert_type = str(output.data.get("alert_type") or "")
    if alert_type and not re.fullmatch(r"[a-z0-9_]{1,64}", alert_type):
        raise RuleProblems(
            [
                Problem(
                    "alert_type: lower-case letters, digits and underscores, up to 64.",
                    output.line("alert_type"),
                )
            ]
        )
    return alert_type


def _generated(documents: list[Document], correlations: dict[str, CorrelationSpec]) -> set[str]:
    """The rules that raise alerts of their own because a correlation naming
    them says ``generate: true``."""
    generate: set[str] = set()
    for document in documents:
        correlation = document.data.get("correlation")
        if isinstance(correlation, dict) and correlation.get("generate") is True:
            generate |= (
                set(correlations[document.key].sources) if document.key in correlations else set()
            )
    return generate


def _with_columns(
    queries: dict[str, DetectionQuery], correlations: dict[str, CorrelationSpec]
) -> dict[str, DetectionQuery]:
    """The queries, each with the columns the correlations referring to it read."""
    columns_needed: dict[str, set[str]] = {name: set() for name in queries}
    for spec in correlations.values():
        for source in spec.sources:
            if source in queries:
                columns_needed[source] |= {WEIGHT, *spec.keys[source].values()}
                if source in spec.value_keys:
                    columns_needed[source].add(spec.value_keys[source])
    return {
        name: replace(query, columns=tuple(sorted(columns_needed[name])))
        for name, query in queries.items()
    }


@lru_cache(maxsize=512)
def _compile_cached(digest: str, text: str) -> CompiledRule:
    return compile_rule(text)


def compiled(text: str) -> CompiledRule:
    """``compile_rule`` once per distinct text in this process (compiling takes milliseconds,
    runs happen every minute)."""
    return _compile_cached(hashlib.sha256(text.encode()).hexdigest(), text)
