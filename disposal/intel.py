"""Threat intelligence: what outside sources say about an entity.

Indicators (``ThreatIndicator``) are imported from STIX 2.1 bundles and CSV IOC
lists (``manage.py import_intel``, ``disposal.intel_import``). An indicator with
the verdict malicious, valid now, marks matching entities malicious for the
handling recommendations; the entity page lists every indicator about an entity.
"""

from dataclasses import dataclass

from django.db.models import Q, TextChoices
from django.utils import timezone

from alerts.models import Entity, EntityType
from disposal.models import ThreatIndicator, Verdict
from secops.scope import Scope


def valid_now(queryset, now=None):
    now = now or timezone.now()
    return queryset.filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=now),
        Q(valid_until__isnull=True) | Q(valid_until__gt=now),
    )


def malicious_sources(scope: Scope, pairs) -> dict[tuple[str, str], list[str]]:
    """(entity type, digest) -> the sources that call it malicious now; one query."""
    pairs = set(pairs)
    if not pairs:
        return {}
    found: dict[tuple[str, str], list[str]] = {}
    rows = valid_now(ThreatIndicator.objects.in_scope(scope)).filter(
        verdict=Verdict.MALICIOUS, digest__in={digest for _, digest in pairs}
    )
    for entity_type, digest, source in rows.values_list("entity_type", "digest", "source"):
        if (entity_type, digest) in pairs:
            found.setdefault((entity_type, digest), []).append(source)
    return found


# --- what the entity page shows -------------------------------------------------

# The attributes of a file entity that hold its hashes, as alerts send them.
HASH_ATTRIBUTES = {"sha256": 64, "md5": 32, "sha1": 40}
_HEX_DIGITS = frozenset("0123456789abcdef")


class Validity(TextChoices):
    VALID = "valid", "Valid"
    PENDING = "pending", "Not yet valid"
    EXPIRED = "expired", "Expired"


@dataclass(frozen=True)
class IndicatorMatch:
    indicator: ThreatIndicator
    # What it matched: "value" (the entity's value) or, for a file named by its
    # path, the hash attribute whose value it names ("md5", "sha256", "sha1").
    matched_by: str
    validity: str

    @property
    def validity_label(self) -> str:
        return Validity(self.validity).label

    @property
    def names_it_malicious(self) -> bool:
        return self.validity == Validity.VALID and self.indicator.verdict == Verdict.MALICIOUS


def validity_of(indicator: ThreatIndicator, now=None) -> str:
    now = now or timezone.now()
    if indicator.valid_until is not None and indicator.valid_until <= now:
        return Validity.EXPIRED
    if indicator.valid_from is not None and indicator.valid_from > now:
        return Validity.PENDING
    return Validity.VALID


def file_hash_digests(attribute_sets) -> dict[str, str]:
    """Digest -> attribute name of every well-formed hash among a file entity's
    attributes: an indicator of the hash matches the file even when alerts name
    it by its path (or by another of its hashes)."""
    found: dict[str, str] = {}
    for attributes in attribute_sets:
        for name, length in HASH_ATTRIBUTES.items():
            value = attributes.get(name) if isinstance(attributes, dict) else None
            if not isinstance(value, str):
                continue
            value = value.strip().lower()
            if len(value) == length and set(value) <= _HEX_DIGITS:
                found.setdefault(Entity.digest_for(EntityType.FILE, value), name)
    return found


_VERDICT_ORDER = {verdict: index for index, verdict in enumerate(Verdict.values)}
_VALIDITY_ORDER = {Validity.VALID: 0, Validity.PENDING: 1, Validity.EXPIRED: 2}


def indicators_for_entity(
    scope: Scope, entity_type: str, digest: str, attribute_sets=(), now=None
) -> list[IndicatorMatch]:
    """The indicators in scope about one entity (by its type and digest and, for
    files, by the hashes among its attributes): valid ones first, gravest first."""
    digests = {digest: "value"}
    if entity_type == EntityType.FILE:
        for hashed, name in file_hash_digests(attribute_sets).items():
            digests.setdefault(hashed, name)
    now = now or timezone.now()
    matches = [
        IndicatorMatch(indicator, digests[indicator.digest], validity_of(indicator, now))
        for indicator in ThreatIndicator.objects.in_scope(scope).filter(
            entity_type=entity_type, digest__in=digests
        )
    ]
    matches.sort(
        key=lambda m: (
            _VALIDITY_ORDER[m.validity],
            _VERDICT_ORDER.get(m.indicator.verdict, 99),
            -(m.indicator.confidence or 0),
            m.indicator.source,
        )
    )
    return matches
