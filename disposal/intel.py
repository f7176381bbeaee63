"""Threat intelligence: what outside sources say about an entity.

Indicators (``ThreatIndicator``) are imported from STIX 2.1 bundles and CSV IOC
lists (``manage.py import_intel``). An indicator with the verdict malicious,
valid now, marks matching entities malicious for the handling recommendations.
"""

from django.db.models import Q
from django.utils import timezone

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
