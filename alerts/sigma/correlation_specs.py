"""Correlation rules, resolved against the rules of the file they refer to."""

from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError

from alerts.sigma.compiled_rule import CorrelationSpec, DetectionQuery, Problem
from alerts.sigma.documents import Document, locate

SUPPORTED_CORRELATIONS = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
}
# Correlation state is kept for one timespan; a day bounds what it holds.
MAX_TIMESPAN_SECONDS = 24 * 3600


def compile_correlation(
    document: Document,
    text_lines: list[str],
    names: dict[str, str],
    queries: dict[str, DetectionQuery],
    correlations: dict[str, CorrelationSpec],
) -> tuple[CorrelationSpec | None, list[Problem]]:
    try:
        rule = SigmaCorrelationRule.from_dict(document.data, collect_errors=True)
    except SigmaError as exc:
        # Some errors (a type it does not know, a condition it cannot read)
        # are raised even when pySigma is asked to collect them.
        return None, [locate(exc, document, text_lines)]
    problems = [locate(error, document, text_lines) for error in rule.errors]
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


def references_ready(document, names, queries, correlations, failed) -> bool:
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
