"""Importing threat intelligence: STIX 2.1 bundles and CSV IOC lists become
``ThreatIndicator`` rows (``manage.py import_intel``).

Reading and writing are apart. ``read_stix`` and ``read_csv`` turn one file
into ``IndicatorRow``s and ``Problem``s (the items they could not use, where
they are and why) and raise ``IntelFileError`` only when the file as a whole
cannot be read. ``import_indicators`` upserts the rows in batches on the
indicator's unique key (organisation, entity type, digest, source): a feed
imported again updates its rows instead of adding new ones.

Values are normalised by the alerts' own entity schema (``EntityIn``), so an
indicator's digest is the digest of the entity it describes and the two meet
on (entity type, digest): an IP in its canonical form, hashes lower-case, a
domain lower-case without its final dot, a URL as given.
"""

import csv
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from itertools import batched
from pathlib import Path

import stix2
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from pydantic import ValidationError
from stix2 import patterns as stix_patterns
from stix2.pattern_visitor import STIXPatternVisitorForSTIX21
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser
from stix2patterns.v21.pattern import Pattern

from alerts.models import Entity, EntityType
from alerts.schemas import EntityIn, UnstorableValueError, scrub_nul, storable_json
from disposal.models import ThreatIndicator, Verdict
from secops.models import Organisation

# The entity types an indicator can describe.
INDICATOR_TYPES = (EntityType.IP, EntityType.FILE, EntityType.DOMAIN, EntityType.URL)
STIX_SOURCE = "STIX import"
CSV_SOURCE = "CSV import"
# Rows per statement: a 100,000-line list costs a few hundred round trips, not 100,000.
BATCH_SIZE = 1000
SHOWN_VALUE_LENGTH = 80

_SOURCE_LENGTH = ThreatIndicator._meta.get_field("source").max_length
_EXTERNAL_ID_LENGTH = ThreatIndicator._meta.get_field("external_id").max_length


class IntelFileError(Exception):
    """A file that cannot be read or parsed at all; nothing of it is imported."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class IndicatorRow:
    entity_type: str
    value: str
    digest: str
    verdict: str
    source: str
    confidence: int | None = None
    description: str = ""
    external_id: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.entity_type, self.digest, self.source)


@dataclass(frozen=True)
class Problem:
    """An item left out: where it is (file and STIX id or CSV line) and why."""

    where: str
    message: str

    def __str__(self):
        return f"{self.where}: {self.message}"


@dataclass
class ParsedFile:
    path: str
    format: str
    rows: list[IndicatorRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # STIX objects that are not indicators (observed-data, SCOs, custom objects, ...), by type.
    ignored: Counter = field(default_factory=Counter)


@dataclass
class ImportResult:
    files: list[ParsedFile]
    organisation: Organisation | None
    dry_run: bool
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    # Rows whose key (type, value, source) came again later in the input: the last is kept.
    duplicates: int = 0

    @property
    def problems(self) -> list[Problem]:
        return [problem for parsed in self.files for problem in parsed.problems]

    @property
    def ignored(self) -> Counter:
        total = Counter()
        for parsed in self.files:
            total.update(parsed.ignored)
        return total

    @property
    def skipped(self) -> int:
        return len(self.problems) + self.duplicates


# --- values ----------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
_HASH_BY_LENGTH = {length: kind for kind, length in HASH_LENGTHS.items()}
# Feeds "defang" values so that nobody clicks them: 203.0.113[.]7, hxxps://...
_DEFANGED_DOTS = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.IGNORECASE)
_DEFANGED_SCHEME = re.compile(r"^(?:hxxp|hXXp|h\[tt\]p)(s?)(?:\[:\]|:)//", re.IGNORECASE)
_DOMAIN_FORBIDDEN = re.compile(r"[\s/\\@:?#*\"<>]")


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN_VALUE_LENGTH else value[:SHOWN_VALUE_LENGTH] + "…")


def _refang(value: str) -> str:
    value = _DEFANGED_DOTS.sub(".", value)
    value = _DEFANGED_SCHEME.sub(lambda m: f"http{m.group(1).lower()}://", value)
    return value.replace("[:]", ":").replace("[://]", "://")


def _identity(**fields) -> str:
    """The value as the alerts' ingestion stores an entity with these fields."""
    return EntityIn(**fields).identity()


def normalise(entity_type: str, value: str, hash_kind: str | None = None) -> str:
    """``value`` as an entity of ``entity_type`` holds it, else ValueError saying why.

    For files, ``hash_kind`` says what the value is: "md5", "sha1" or
    "sha256"; "hash" for any of them (told apart by length); "path" for a
    path or file name; None for a hash if the value looks like one, else a path.
    """
    text = scrub_nul(value).strip()
    if not text:
        raise ValueError("the value is empty")
    if entity_type == EntityType.IP:
        return _normalise_ip(_refang(text))
    if entity_type == EntityType.DOMAIN:
        domain = _refang(text).lower().rstrip(".")
        if not domain or _DOMAIN_FORBIDDEN.search(domain) or len(domain) > 253:
            raise ValueError(f"not a domain name: {_shown(text)}")
        try:
            ipaddress.ip_address(domain)
        except ValueError:
            return _identity(type="domain", value=domain)
        raise ValueError(f"{_shown(text)} is an IP address: give it the type ip")
    if entity_type == EntityType.URL:
        url = _refang(text)
        if re.search(r"\s", url):
            raise ValueError(f"not a URL (it holds white space): {_shown(text)}")
        return _identity(type="url", value=url)
    if entity_type == EntityType.FILE:
        return _normalise_file(text, hash_kind)
    raise ValueError(f"a {entity_type} cannot be an indicator")


def _normalise_ip(text: str) -> str:
    if "/" in text:
        # A CIDR naming one address is that address; a range matches no entity.
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address: {_shown(text)}") from None
        if network.num_addresses != 1:
            raise ValueError(f"{_shown(text)} is a network range; indicators name single addresses")
        text = str(network.network_address)
    try:
        return _identity(type="ip", value=text)
    except ValidationError:
        raise ValueError(f"not an IP address: {_shown(text)}") from None


def _normalise_file(text: str, hash_kind: str | None) -> str:
    looks_like_hash = bool(_HEX.fullmatch(text)) and len(text) in _HASH_BY_LENGTH
    if hash_kind == "path" or (hash_kind is None and not looks_like_hash):
        return _identity(type="file", path=text)
    if hash_kind in (None, "hash"):
        if not looks_like_hash:
            raise ValueError(
                f"not an MD5, SHA-1 or SHA-256 hash (32, 40 or 64 hex digits): {_shown(text)}"
            )
        hash_kind = _HASH_BY_LENGTH[len(text)]
    length = HASH_LENGTHS[hash_kind]
    if len(text) != length or not _HEX.fullmatch(text):
        raise ValueError(f"not a {hash_kind.upper()} hash ({length} hex digits): {_shown(text)}")
    if hash_kind == "sha1":
        # Alerts name files by SHA-256 or MD5; a SHA-1 matches a file's sha1 attribute.
        return text.lower()
    return _identity(type="file", **{hash_kind: text})


# Verdict words of STIX's indicator-type vocabulary and of common IOC lists.
# An indicator with several takes the gravest.
_VERDICT_WORDS = {
    Verdict.MALICIOUS: {
        "malicious",
        "malicious-activity",
        "compromised",
        "attribution",
        "malware",
        "bad",
        "block",
    },
    Verdict.SUSPICIOUS: {"suspicious", "anomalous-activity", "anonymization"},
    Verdict.BENIGN: {"benign", "clean", "safe", "good", "allow"},
    Verdict.UNKNOWN: {"unknown"},
}
VERDICT_BY_WORD = {word: verdict for verdict, words in _VERDICT_WORDS.items() for word in words}
_GRAVITY = [Verdict.MALICIOUS, Verdict.SUSPICIOUS, Verdict.BENIGN, Verdict.UNKNOWN]


def verdict_of(words: Iterable[str]) -> str:
    """The gravest verdict the words name; malicious when they name none (an IOC
    list's entries are indicators of compromise unless they say otherwise)."""
    found = {VERDICT_BY_WORD.get(str(word).strip().lower()) for word in words}
    return next((verdict for verdict in _GRAVITY if verdict in found), Verdict.MALICIOUS)


def _confidence(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"confidence must be a whole number from 0 to 100, not {value!r}")
    return value


def _check_validity(valid_from, valid_until) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise ValueError("valid_until is not after valid_from")


def _digest(entity_type: str, value: str) -> str:
    return Entity.digest_for(entity_type, value)


# --- STIX 2.1 --------------------------------------------------------------------

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
        confidence = _confidence(confidence)
    valid_from = _utc(indicator.get("valid_from"))
    valid_until = _utc(indicator.get("valid_until"))
    if indicator.get("revoked"):
        # Withdrawn by its producer: valid no more from its last change, so that
        # importing the feed again retires the indicator instead of keeping it.
        retired = max(filter(None, [valid_from, _utc(indicator["modified"])]))
        valid_until = min(valid_until, retired) if valid_until else retired
    else:
        _check_validity(valid_from, valid_until)
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
                digest=_digest(found.entity_type, value),
                verdict=verdict,
                source=str(source)[:_SOURCE_LENGTH],
                confidence=confidence,
                description=scrub_nul(str(description)),
                external_id=str(indicator["id"])[:_EXTERNAL_ID_LENGTH],
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


# --- CSV -------------------------------------------------------------------------

# Header names (lower-case, "-" and " " read as "_") -> the column they fill.
_CSV_COLUMNS = {
    "type": "type",
    "indicator_type": "type",
    "ioc_type": "type",
    "value": "value",
    "indicator": "value",
    "ioc": "value",
    "observable": "value",
    "verdict": "verdict",
    "confidence": "confidence",
    "source": "source",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "valid_to": "valid_until",
    "expires": "valid_until",
    "description": "description",
    "comment": "description",
}
# Type names of IOC lists -> (entity type, what a file value is; see ``normalise``).
CSV_TYPES = {
    "ip": (EntityType.IP, None),
    "ipv4": (EntityType.IP, None),
    "ipv6": (EntityType.IP, None),
    "ip_address": (EntityType.IP, None),
    "ipv4_addr": (EntityType.IP, None),
    "ipv6_addr": (EntityType.IP, None),
    "ip_addr": (EntityType.IP, None),
    "domain": (EntityType.DOMAIN, None),
    "domain_name": (EntityType.DOMAIN, None),
    "hostname": (EntityType.DOMAIN, None),
    "fqdn": (EntityType.DOMAIN, None),
    "url": (EntityType.URL, None),
    "uri": (EntityType.URL, None),
    "md5": (EntityType.FILE, "md5"),
    "sha1": (EntityType.FILE, "sha1"),
    "sha_1": (EntityType.FILE, "sha1"),
    "sha256": (EntityType.FILE, "sha256"),
    "sha_256": (EntityType.FILE, "sha256"),
    "hash": (EntityType.FILE, "hash"),
    "file_hash": (EntityType.FILE, "hash"),
    "filehash": (EntityType.FILE, "hash"),
    "file": (EntityType.FILE, None),
    "file_name": (EntityType.FILE, "path"),
    "filename": (EntityType.FILE, "path"),
    "file_path": (EntityType.FILE, "path"),
    "path": (EntityType.FILE, "path"),
}
# Confidence words of STIX's "None, Low, Med, High" scale.
_CONFIDENCE_WORDS = {"none": 0, "low": 15, "med": 50, "medium": 50, "high": 85}


def _header_name(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _guess_type(value: str) -> tuple[str, str | None]:
    """The type of a value in a list without a type column: an IP, a hash, a URL
    or else a domain."""
    text = _refang(value.strip())
    try:
        ipaddress.ip_address(text)
        return EntityType.IP, None
    except ValueError:
        pass
    if _HEX.fullmatch(text) and len(text) in _HASH_BY_LENGTH:
        return EntityType.FILE, "hash"
    if "://" in text:
        return EntityType.URL, None
    return EntityType.DOMAIN, None


def _csv_time(text: str, column: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        parsed = parse_datetime(text.replace("Z", "+00:00"))
        if parsed is None and (day := parse_date(text)) is not None:
            parsed = datetime.combine(day, time.min)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{column}: not an ISO-8601 date or time: {_shown(text)}")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _csv_confidence(text: str) -> int | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in _CONFIDENCE_WORDS:
        return _CONFIDENCE_WORDS[text]
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"confidence must be a whole number from 0 to 100, not {_shown(text)}")
    return _confidence(int(text))


def _csv_lines(handle) -> Iterator[str]:
    """The file's lines without comment lines (``#``), which many IOC lists start with."""
    for line in handle:
        if not line.lstrip().startswith("#"):
            yield line


def read_csv(path, *, source: str | None = None) -> ParsedFile:
    """The indicators of a CSV IOC list with a header row. A row that cannot be
    used is a ``Problem`` naming its line."""
    name = Path(path).name
    parsed = ParsedFile(str(path), "csv")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            numbered = _NumberedLines(handle)
            reader = csv.reader(numbered, delimiter=_delimiter(path))
            header = next((cells for cells in reader if any(c.strip() for c in cells)), None)
            if header is None:
                raise IntelFileError(path, "the file is empty: a header row is needed")
            columns = _csv_header(path, header)
            for cells in reader:
                line = numbered.line
                if not any(cell.strip() for cell in cells):
                    continue
                record = {columns[i]: cells[i] for i in columns if i < len(cells)}
                try:
                    parsed.rows.append(_csv_row(record, source))
                except ValueError as exc:
                    parsed.problems.append(Problem(f"{name} line {line}", str(exc)))
    except OSError as exc:
        raise IntelFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IntelFileError(path, "not UTF-8 text") from None
    except csv.Error as exc:
        raise IntelFileError(path, f"not a readable CSV file: {exc}") from None
    return parsed


class _NumberedLines:
    """Lines of a file minus comment lines, knowing the number of the last line given."""

    def __init__(self, handle):
        self._handle = handle
        self.line = 0

    def __iter__(self):
        for number, line in enumerate(self._handle, start=1):
            if line.lstrip().startswith("#"):
                continue
            self.line = number
            yield line


def _delimiter(path) -> str:
    """Comma, or the semicolon, tab or bar the header row is split by."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(_csv_lines(handle), "")
    counts = {d: header.count(d) for d in ",;\t|"}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_header(path, header: list[str]) -> dict[int, str]:
    columns = {}
    for index, text in enumerate(header):
        column = _CSV_COLUMNS.get(_header_name(text))
        if column and column not in columns.values():
            columns[index] = column
    if "value" not in columns.values():
        raise IntelFileError(
            path,
            "the header row names no value column (value, indicator or ioc); "
            f"it reads {', '.join(repr(h) for h in header[:10])}",
        )
    return columns


def _csv_row(record: dict[str, str], source: str | None) -> IndicatorRow:
    record = {key: scrub_nul(text) for key, text in record.items()}
    raw_value = record.get("value", "")
    if not raw_value.strip():
        raise ValueError("the value is empty")
    type_name = _header_name(record.get("type", ""))
    if not type_name:
        entity_type, hash_kind = _guess_type(raw_value)
    elif type_name in CSV_TYPES:
        entity_type, hash_kind = CSV_TYPES[type_name]
    else:
        raise ValueError(
            f"unknown type {_shown(record['type'].strip())}; "
            "use ip, domain, url, md5, sha1, sha256, hash or file"
        )
    value = normalise(entity_type, raw_value, hash_kind)
    verdict_text = record.get("verdict", "").strip().lower()
    if verdict_text and verdict_text not in VERDICT_BY_WORD:
        raise ValueError(
            f"unknown verdict {_shown(verdict_text)}; use malicious, suspicious, benign or unknown"
        )
    valid_from = _csv_time(record.get("valid_from", ""), "valid_from")
    valid_until = _csv_time(record.get("valid_until", ""), "valid_until")
    _check_validity(valid_from, valid_until)
    return IndicatorRow(
        entity_type=entity_type,
        value=value,
        digest=_digest(entity_type, value),
        verdict=verdict_of([verdict_text]),
        source=(source or record.get("source", "").strip() or CSV_SOURCE)[:_SOURCE_LENGTH],
        confidence=_csv_confidence(record.get("confidence", "")),
        description=record.get("description", "").strip(),
        valid_from=valid_from,
        valid_until=valid_until,
    )


# --- writing ---------------------------------------------------------------------

FORMATS = ("stix", "csv")
_READERS = {"stix": read_stix, "csv": read_csv}


def format_of(path) -> str:
    """stix or csv, by the file's extension, else by its first character."""
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".stix"):
        return "stix"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            start = handle.read(64).lstrip()
    except OSError as exc:
        raise IntelFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    return "stix" if start.startswith("{") else "csv"


def import_intel(
    paths: Iterable,
    *,
    organisation: Organisation | None = None,
    source: str | None = None,
    format: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Read every file, then import what they hold in one transaction.

    Every file is read before anything is written: a file that cannot be read
    at all raises ``IntelFileError`` and nothing is imported. Indicators
    without an organisation are shared by every organisation.
    """
    source = (source or "").strip() or None
    files = [_READERS[format or format_of(path)](path, source=source) for path in paths]
    result = ImportResult(files, organisation, dry_run)
    merged: dict[tuple[str, str, str], IndicatorRow] = {}
    for parsed in files:
        for row in parsed.rows:
            if row.key in merged:
                result.duplicates += 1
                del merged[row.key]  # re-inserted: the last one keeps its place
            merged[row.key] = row
    organisation_id = organisation.id if organisation else None
    with transaction.atomic():
        for batch in batched(merged.values(), BATCH_SIZE):
            existing = _existing_keys(organisation_id, batch)
            for row in batch:
                (result.updated if row.key in existing else result.created)[row.entity_type] += 1
            if not dry_run:
                _upsert(organisation_id, batch)
    return result


def _existing_keys(organisation_id, rows) -> set[tuple[str, str, str]]:
    """The keys of ``rows`` that are stored already; one query per entity type.

    The owner is compared as the unique index spells it (COALESCE), so that the
    index serves the query even while a large import leaves the table's
    statistics behind.
    """
    owned = ThreatIndicator.objects.alias(owner=Coalesce("organisation", Value(0))).filter(
        owner=organisation_id or 0
    )
    digests: dict[str, set[str]] = {}
    for row in rows:
        digests.setdefault(row.entity_type, set()).add(row.digest)
    found = set()
    for entity_type, of_type in digests.items():
        found.update(
            owned.filter(entity_type=entity_type, digest__in=of_type).values_list(
                "entity_type", "digest", "source"
            )
        )
    return found


_WRITTEN = (
    "organisation",
    "entity_type",
    "value",
    "digest",
    "verdict",
    "source",
    "confidence",
    "description",
    "external_id",
    "valid_from",
    "valid_until",
    "imported_at",
)
_KEY = ("entity_type", "digest", "source")
_UPDATED = [name for name in _WRITTEN if name not in ("organisation", *_KEY)]


def _upsert(organisation_id, rows: Iterable[IndicatorRow]) -> None:
    """INSERT a batch, updating the stored row where a key exists.

    Written by hand because the key is an expression index
    (``one_indicator_per_source``, with COALESCE so that shared indicators,
    without an organisation, are unique too), which
    ``bulk_create(update_conflicts=...)`` cannot name; the conflict target
    below must stay that index's expressions. On PostgreSQL the batch is one
    statement whose columns travel as arrays (a VALUES list of thousands of
    parameters costs more to build and parse than it saves); SQLite runs the
    one-row statement per row in-process.
    """
    meta = ThreatIndicator._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in _WRITTEN]

    def column(name):
        return quote(meta.get_field(name).column)

    target = ", ".join([f"(COALESCE({column('organisation')}, 0))", *map(column, _KEY)])
    updates = ", ".join(f"{column(name)} = EXCLUDED.{column(name)}" for name in _UPDATED)
    # Only identifiers and types from the model's metadata are interpolated;
    # values are parameters.
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(column, _WRITTEN))})"
    tail = f"ON CONFLICT ({target}) DO UPDATE SET {updates}"
    postgres = connection.vendor == "postgresql"
    prepare_time = meta.get_field("imported_at").get_db_prep_save

    def when(value):
        if value is None or postgres:
            return value
        return prepare_time(value, connection)

    now = when(timezone.now())
    params = [
        (
            organisation_id,
            row.entity_type,
            row.value,
            row.digest,
            row.verdict,
            row.source,
            row.confidence,
            row.description,
            row.external_id,
            when(row.valid_from),
            when(row.valid_until),
            now,
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        if postgres:
            arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
            columns = [list(values) for values in zip(*params, strict=True)]
            cursor.execute(f"{head} SELECT * FROM unnest({arrays}) {tail}", columns)  # noqa: S608
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"{head} VALUES ({placeholders}) {tail}", params)


def summary_lines(result: ImportResult, *, listed: int = 20) -> list[str]:
    """What the command prints: per file, per type, and the first ``listed`` problems."""
    lines = []
    for parsed in result.files:
        line = f"{parsed.path} ({parsed.format.upper()}): {len(parsed.rows)} values"
        if parsed.ignored:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(parsed.ignored.items()))
            line += f"; ignored {sum(parsed.ignored.values())} objects that are not indicators ({kinds})"
        lines.append(line)
    verb = ("would be created", "would be updated") if result.dry_run else ("created", "updated")
    if result.organisation:
        lines.append(f"Indicators of organisation {result.organisation.name}:")
    else:
        lines.append("Shared indicators (every organisation):")
    for entity_type in INDICATOR_TYPES:
        created, updated = result.created[entity_type], result.updated[entity_type]
        if created or updated:
            lines.append(f"  {entity_type:<7} {created} {verb[0]}, {updated} {verb[1]}")
    created, updated = sum(result.created.values()), sum(result.updated.values())
    lines.append(f"  {'total':<7} {created} {verb[0]}, {updated} {verb[1]}")
    lines.append(f"Skipped: {result.skipped}")
    if result.duplicates:
        lines.append(
            f"  {result.duplicates} repeated an earlier type, value and source; the last one counts"
        )
    problems = result.problems
    for problem in problems[:listed]:
        lines.append(f"  {problem}")
    if len(problems) > listed:
        lines.append(f"  ... and {len(problems) - listed} more")
    if result.dry_run:
        lines.append("Dry run: nothing was written.")
    return lines
