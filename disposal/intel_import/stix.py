"""STIX 2.1 bundles: the values their indicators' patterns name."""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import stix2
from stix2 import patterns as stix_patterns
from stix2.pattern_visitor import STIXPatternVisitorForSTIX21
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser
from stix2patterns.v21.pattern import Pattern

from alerts.models import EntityType
from alerts.schemas import UnstorableValueError, scrub_nul, storable_json
from disposal.intel_import.rows import (
    EXTERNAL_ID_LENGTH,
    SOURCE_LENGTH,
    STIX_SOURCE,
    IndicatorRow,
    IntelFileError,
    ParsedFile,
    Problem,
)
from disposal.intel_import.values import (
    check_confidence,
    check_validity,
    digest_of,
    normalise,
    verdict_of,
)

# (object type, property) -> (entity type, what a file value is)
_STIX_PROPERTIES = {
    ("ipv4-addr", "value"): (EntityType.IP, None),
    ("ipv6-addr", "value"): (EntityType.IP, None),
    ("domain-name", "value"): (EntityType.DOMAIN, None),
    ("url", "value"): (EntityType.URL, None),
    ("file", "name"): (EntityType.FILE, "path"),
}
# Hash names as patterns spell them ('SHA-256', SHA256, ...), upper-case without "-" or "_".
_STIX_HASHES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256"}
_STIX_ESCAPE = re.compile(r"\\(['\\])")
_COMPARISONS = (
    stix_patterns.EqualityComparisonExpression,
    stix_patterns.GreaterThanComparisonExpression,
    stix_patterns.GreaterThanEqualComparisonExpression,
    stix_patterns.LessThanComparisonExpression,
    stix_patterns.LessThanEqualComparisonExpression,
    stix_patterns.InComparisonExpression,
    stix_patterns.LikeComparisonExpression,
    stix_patterns.MatchesComparisonExpression,
    stix_patterns.IsSubsetComparisonExpression,
    stix_patterns.IsSupersetComparisonExpression,
)
# Observations that must all be seen (AND) or be seen in order (FOLLOWEDBY).
_ALL_OF_OBSERVATIONS = (
    stix_patterns.AndObservationExpression,
    stix_patterns.FollowedByObservationExpression,
)


class _PatternReader(STIXPatternVisitorForSTIX21):
    """stix2's reader of STIX 2.1 patterns, keeping every NOT.

    stix2 3.0 drops the NOT of ``NOT IN``, ``NOT LIKE``, ``NOT MATCHES`` and
    the subset tests, and reads ``NOT !=`` as ``!=``: a feed's
    ``[ipv4-addr:value NOT IN (...)]`` would be read as the list itself.
    """

    def __init__(self):
        super().__init__(STIXPatternParser, "", "")

    @staticmethod
    def _negated(expression, negated: bool):
        expression.negated = negated
        return expression

    def visitPropTestEqual(self, ctx):
        negated = (ctx.NOT() is not None) != (ctx.NEQ() is not None)
        return self._negated(super().visitPropTestEqual(ctx), negated)

    def visitPropTestSet(self, ctx):
        return self._negated(super().visitPropTestSet(ctx), ctx.NOT() is not None)

    def visitPropTestLike(self, ctx):
        return self._negated(super().visitPropTestLike(ctx), ctx.NOT() is not None)

    def visitPropTestRegex(self, ctx):
        return self._negated(super().visitPropTestRegex(ctx), ctx.NOT() is not None)

    def visitPropTestIsSubset(self, ctx):
        return self._negated(super().visitPropTestIsSubset(ctx), ctx.NOT() is not None)

    def visitPropTestIsSuperset(self, ctx):
        return self._negated(super().visitPropTestIsSuperset(ctx), ctx.NOT() is not None)


class _Unusable(Exception):
    """A part of a pattern that names no value an entity can have."""


@dataclass(frozen=True)
class PatternValue:
    entity_type: str
    value: str
    hash_kind: str | None


def _path_text(path: stix_patterns.ObjectPath) -> str:
    steps = [getattr(step, "property_name", "?") for step in path.property_path]
    return f"{path.object_type_name}:{'.'.join(map(str, steps))}"


def _target(path: stix_patterns.ObjectPath) -> tuple[str, str | None]:
    steps = path.property_path
    names = [getattr(step, "property_name", None) for step in steps]
    plain = all(type(step) is stix_patterns.BasicObjectPathComponent for step in steps)
    if plain and len(names) == 1 and (path.object_type_name, names[0]) in _STIX_PROPERTIES:
        return _STIX_PROPERTIES[path.object_type_name, names[0]]
    if plain and path.object_type_name == "file" and len(names) == 2 and names[0] == "hashes":
        kind = _STIX_HASHES.get(str(names[1]).upper().replace("-", "").replace("_", ""))
        if kind:
            return EntityType.FILE, kind
        raise _Unusable(f"{_path_text(path)}: only MD5, SHA-1 and SHA-256 hashes match files")
    raise _Unusable(f"{_path_text(path)} is not a value an alert's entity has")


def _constant(constant) -> str:
    if not isinstance(constant, stix_patterns.StringConstant):
        raise _Unusable(f"{constant} is not a text value")
    return _STIX_ESCAPE.sub(r"\1", constant.value)


def _comparison_values(node) -> list[PatternValue]:
    if isinstance(node, stix_patterns.ParentheticalExpression):
        return _comparison_values(node.expression)
    if isinstance(node, stix_patterns.OrBooleanExpression):
        return _union(node.operands, _comparison_values)
    if isinstance(node, stix_patterns.AndBooleanExpression):
        return _file_hashes_of(node)
    if isinstance(node, _COMPARISONS):
        if node.negated:
            raise _Unusable(f"a negated comparison of {_path_text(node.lhs)} names no value")
        entity_type, kind = _target(node.lhs)
        if isinstance(node, stix_patterns.EqualityComparisonExpression):
            values = [_constant(node.rhs)]
        elif isinstance(node, stix_patterns.InComparisonExpression):
            values = [_constant(item) for item in node.rhs.value]
        else:
            raise _Unusable(
                f"{_path_text(node.lhs)} {node.operator} ...: only = and IN name values"
            )
        return [PatternValue(entity_type, value, kind) for value in values]
    raise _Unusable(f"cannot read {node}")


def _file_hashes_of(node) -> list[PatternValue]:
    """``[file:hashes.MD5 = '…' AND file:hashes.'SHA-256' = '…']`` names one file by
    each of its hashes: every hash is a value (a size or name beside them only
    narrows what the hashes identify). Other conjunctions need all their parts
    at once, which no single value can stand for."""
    operands, pending = [], list(node.operands)
    while pending:
        operand = pending.pop(0)
        if isinstance(operand, stix_patterns.ParentheticalExpression):
            pending.insert(0, operand.expression)
        elif isinstance(operand, stix_patterns.AndBooleanExpression):
            pending[:0] = operand.operands
        else:
            operands.append(operand)
    hashes = []
    if all(
        isinstance(operand, _COMPARISONS) and operand.lhs.object_type_name == "file"
        for operand in operands
    ):
        for operand in operands:
            try:
                found = _comparison_values(operand)
            except _Unusable:
                continue
            hashes.extend(value for value in found if value.hash_kind in _STIX_HASHES.values())
    if not hashes:
        raise _Unusable(
            "comparisons joined by AND must all hold at once, so no single value stands for them"
        )
    return hashes


def _observation_values(node) -> list[PatternValue]:
    if isinstance(node, stix_patterns.ObservationExpression):
        return _comparison_values(node.operand)
    if isinstance(node, stix_patterns.ParentheticalExpression):
        return _observation_values(node.expression)
    if isinstance(node, stix_patterns.QualifiedObservationExpression):
        # WITHIN, REPEATS and START/STOP say when the values count; the values stay.
        return _observation_values(node.observation_expression)
    if isinstance(node, stix_patterns.OrObservationExpression):
        return _union(node.operands, _observation_values)
    if isinstance(node, _ALL_OF_OBSERVATIONS):
        raise _Unusable(
            f"observations joined by {node.operator} must all be seen, "
            "so no single value stands for them"
        )
    raise _Unusable(f"cannot read {node}")


class _PartlyUsable(Exception):
    def __init__(self, values, reasons):
        super().__init__("; ".join(reasons))
        self.values = values
        self.reasons = reasons


def _union(operands, read) -> list[PatternValue]:
    """The values of alternatives joined by OR: each alternative is a value of
    its own, so what can be used is, and the rest is reported."""
    values, reasons = [], []
    for operand in operands:
        try:
            values.extend(read(operand))
        except _PartlyUsable as partly:
            values.extend(partly.values)
            reasons.extend(partly.reasons)
        except _Unusable as exc:
            reasons.append(str(exc))
    if not values:
        raise _Unusable("; ".join(reasons))
    if reasons:
        raise _PartlyUsable(values, reasons)
    return values


def pattern_values(pattern: str) -> tuple[list[PatternValue], list[str]]:
    """The values a STIX pattern names (one per comparison joined by OR) and the
    reasons for any part it could not use. Raises ValueError when it names none."""
    try:
        expression = Pattern(pattern).visit(_PatternReader())
    except Exception as exc:  # stix2-patterns raises several kinds for bad syntax
        raise ValueError(f"the pattern cannot be parsed: {exc}") from None
    try:
        values = _observation_values(expression)
    except _PartlyUsable as partly:
        return partly.values, partly.reasons
    except _Unusable as exc:
        raise ValueError(f"the pattern names no usable value: {exc}") from None
    return values, []


def read_stix(path, *, source: str | None = None) -> ParsedFile:
    """The indicators of a STIX 2.1 bundle. Objects other than indicators are
    counted as ignored; an indicator that cannot be used is a ``Problem``."""
    name = Path(path).name
    bundle = _load_json(path)
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise IntelFileError(path, "not a STIX bundle (a JSON object with type 'bundle')")
    if "spec_version" in bundle:
        # STIX 2.0 bundles carry a spec_version; 2.1 bundles carry none.
        raise IntelFileError(
            path,
            f"a STIX {bundle['spec_version']} bundle; import_intel reads STIX 2.1 bundles",
        )
    objects = bundle.get("objects", [])
    if not isinstance(objects, list):
        raise IntelFileError(path, "the bundle's objects are not a list")
    parsed = ParsedFile(str(path), "stix")
    identities = {
        obj.get("id"): obj.get("name")
        for obj in objects
        if isinstance(obj, dict) and obj.get("type") == "identity"
    }
    for index, obj in enumerate(objects):
        where = f"{name}: object {index}"
        if not isinstance(obj, dict):
            parsed.problems.append(Problem(where, "not a JSON object"))
            continue
        if obj.get("type") != "indicator":
            parsed.ignored[str(obj.get("type", "object without a type"))[:64]] += 1
            continue
        where = f"{name}: {str(obj.get('id') or where)[:100]}"
        try:
            parsed.rows.extend(_indicator_rows(obj, identities, source, where, parsed.problems))
        except ValueError as exc:
            parsed.problems.append(Problem(where, str(exc)))
    return parsed


def _load_json(path):
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except OSError as exc:
        raise IntelFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IntelFileError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise IntelFileError(path, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise IntelFileError(path, "not valid JSON: nested too deeply") from None


def _indicator_rows(obj, identities, source, where, problems) -> list[IndicatorRow]:
    spec_version = obj.get("spec_version", "2.1")
    if spec_version != "2.1":
        raise ValueError(f"a STIX {spec_version!s:.10} object; only STIX 2.1 is read")
    try:
        storable_json(obj)
        indicator = stix2.parse(obj, allow_custom=True, version="2.1")
    except UnstorableValueError as exc:
        raise ValueError(f"{exc.field}: {exc.message}") from None
    except Exception as exc:  # stix2 reports invalid objects with many exception types
        raise ValueError(f"not a valid STIX 2.1 indicator: {exc}") from None
    pattern_type = indicator.get("pattern_type", "stix")
    if pattern_type != "stix":
        raise ValueError(f"pattern_type {pattern_type!r}: only STIX patterns are read")
    values, reasons = pattern_values(indicator["pattern"])
    if reasons:
        problems.append(Problem(where, "part of the pattern was left out: " + "; ".join(reasons)))
    confidence = indicator.get("confidence")
    if confidence is not None:
        confidence = check_confidence(confidence)
    valid_from = _utc(indicator.get("valid_from"))
    valid_until = _utc(indicator.get("valid_until"))
    if indicator.get("revoked"):
        # Withdrawn by its producer: valid no more from its last change, so that
        # importing the feed again retires the indicator instead of keeping it.
        retired = max(filter(None, [valid_from, _utc(indicator["modified"])]))
        valid_until = min(valid_until, retired) if valid_until else retired
    else:
        check_validity(valid_from, valid_until)
    source = source or identities.get(indicator.get("created_by_ref")) or STIX_SOURCE
    verdict = verdict_of([*indicator.get("indicator_types", []), *indicator.get("labels", [])])
    description = indicator.get("description") or indicator.get("name") or ""
    rows, seen = [], set()
    for found in values:
        try:
            value = normalise(found.entity_type, found.value, found.hash_kind)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        if (found.entity_type, value) in seen:
            continue
        seen.add((found.entity_type, value))
        rows.append(
            IndicatorRow(
                entity_type=found.entity_type,
                value=value,
                digest=digest_of(found.entity_type, value),
                verdict=verdict,
                source=str(source)[:SOURCE_LENGTH],
                confidence=confidence,
                description=scrub_nul(str(description)),
                external_id=str(indicator["id"])[:EXTERNAL_ID_LENGTH],
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
    return rows


def _utc(value) -> datetime | None:
    """A plain aware datetime in UTC (stix2 gives its own datetime subclass)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)
