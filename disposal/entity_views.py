"""The entity page: what is known about one entity (an IP, a file, a domain, ...)
across the accounts of the viewer's scope.

An entity is named by its type and digest (``alerts.models.Entity.digest_for``),
which are the same in every account; the page gathers the account rows of the
entity that the scope reaches. Without one it does not exist for the viewer
(404), whatever other tenants have seen. Alerts and events follow the region
selector as on their own pages.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import Count, Prefetch
from django.http import Http404
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from alerts.models import Alert, AlertEntity, Asset, Entity, EntityRole, EntityType
from disposal.intel import IndicatorMatch, indicators_for_entity
from disposal.models import HandlingPolicy, HandlingTask, TaskStatus
from events.models import EventAlert, SecurityEvent
from secops.models import Account
from secops.pagination import page_of
from secops.params import page_wanted
from secops.scope import NotInScope, Scope

_DIGEST = re.compile(r"[0-9a-f]{64}")
ALERTS_PER_PAGE = 20
EVENTS_SHOWN = 50
HOSTS_SHOWN = 50
ATTRIBUTES_SHOWN = 30


@dataclass
class EntitySummary:
    """The entity as the scope sees it: its rows in the scope's accounts, summed up."""

    entity_type: str
    digest: str
    value: str
    entities: list[Entity]
    accounts: list[Account]
    first_seen_at: datetime
    last_seen_at: datetime
    # An alert named it as the attacker (``Entity.malicious``).
    named_attacker: bool
    intel: list[IndicatorMatch] = field(default_factory=list)

    @property
    def type_label(self) -> str:
        return EntityType(self.entity_type).label

    @property
    def intel_sources(self) -> list[str]:
        """The sources that call it malicious now."""
        return sorted({m.indicator.source for m in self.intel if m.names_it_malicious})

    @property
    def malicious(self) -> bool:
        return self.named_attacker or bool(self.intel_sources)

    @property
    def attributes(self) -> list[tuple[str, str]]:
        """What alerts told of it (a file's path and hashes, a process's user, ...),
        first value per name over its accounts; plain values other than the
        entity's own value only."""
        found: dict[str, str] = {}
        for entity in self.entities:
            for name, value in (entity.attributes or {}).items():
                if name in found or isinstance(value, dict | list) or value in (None, ""):
                    continue
                if str(value) != self.value:
                    found[str(name)] = str(value)
        return sorted(found.items())[:ATTRIBUTES_SHOWN]


def entity_summary_or_404(scope: Scope, entity_type: str, digest: str) -> EntitySummary:
    if entity_type not in EntityType.values or not _DIGEST.fullmatch(digest):
        raise Http404("No such entity.")
    entities = list(
        Entity.objects.in_scope(scope)
        .filter(type=entity_type, digest=digest)
        .select_related("account")
        .order_by("account__name", "account_id")
    )
    if not entities:
        raise NotInScope(Entity.objects.all(), {"type": entity_type, "digest": digest})
    summary = EntitySummary(
        entity_type=entity_type,
        digest=digest,
        value=entities[0].value,
        entities=entities,
        accounts=[entity.account for entity in entities],
        first_seen_at=min(entity.first_seen_at for entity in entities),
        last_seen_at=max(entity.last_seen_at for entity in entities),
        named_attacker=any(entity.malicious for entity in entities),
    )
    summary.intel = indicators_for_entity(
        scope, entity_type, digest, [entity.attributes for entity in entities]
    )
    return summary


def related_alerts(scope: Scope, summary: EntitySummary):
    """The alerts in scope (and region) that name the entity, newest first."""
    links = AlertEntity.objects.filter(entity_id__in=[e.id for e in summary.entities])
    return (
        Alert.objects.in_scope(scope)
        .filter(id__in=links.values("alert_id"))
        .order_by("-occurred_at", "-id")
    )


def _roles(summary: EntitySummary, alerts) -> list[tuple[str, int]]:
    """(role label, number of alerts) for each role the entity played, attacker first."""
    counts = {
        row["role"]: row["alerts"]
        for row in AlertEntity.objects.filter(
            entity_id__in=[e.id for e in summary.entities], alert_id__in=alerts.values("id")
        )
        .values("role")
        .annotate(alerts=Count("alert", distinct=True))
        .order_by()
    }
    return [(role.label, counts[role]) for role in EntityRole if role in counts]


def _alerts_page(summary: EntitySummary, alerts, number: int | str):
    page = page_of(alerts.select_related("account", "asset"), number, ALERTS_PER_PAGE)
    roles: dict[int, set[str]] = {}
    for alert_id, role in AlertEntity.objects.filter(
        alert_id__in=[alert.id for alert in page.items],
        entity_id__in=[e.id for e in summary.entities],
    ).values_list("alert_id", "role"):
        roles.setdefault(alert_id, set()).add(role)
    for alert in page.items:
        alert.entity_roles = [role.label for role in EntityRole if role in roles.get(alert.id, ())]
    return page


def disposal_center_url(policy: HandlingPolicy) -> str | None:
    """The Disposal Center's Handling Tasks tab showing this policy's tasks, or
    None while the project has no Disposal Center page."""
    try:
        center = reverse("disposal:center")
    except NoReverseMatch:
        return None
    return f"{center}?{urlencode({'tab': 'tasks', 'policy': policy.pk})}"


def _policies(scope: Scope, summary: EntitySummary) -> list[HandlingPolicy]:
    tasks = HandlingTask.objects.in_scope(scope).select_related("account", "asset")
    policies = list(
        HandlingPolicy.objects.in_scope(scope)
        .filter(entity_type=summary.entity_type, entity_digest=summary.digest)
        .select_related("scenario", "source_event", "source_alert", "created_by")
        .prefetch_related(
            Prefetch("tasks", queryset=tasks.order_by("account__name", "id"), to_attr="shown")
        )
    )
    labels = dict(TaskStatus.choices)
    for policy in policies:
        counts = Counter(task.status for task in policy.shown)
        policy.status_counts = [(status, labels[status], counts[status]) for status in counts]
        policy.center_url = disposal_center_url(policy)
    return policies


@require_GET
def entity_detail(request, entity_type: str, digest: str):
    scope = request.scope
    summary = entity_summary_or_404(scope, entity_type, digest)
    alerts = related_alerts(scope, summary)
    alert_page = _alerts_page(summary, alerts, page_wanted(request.GET.get("page")))
    if request.htmx and not request.htmx.boosted:
        # The pager of Related alerts asks for its next page only.
        return render(
            request, "disposal/_entity_alerts.html", {"summary": summary, "page": alert_page}
        )
    events = SecurityEvent.objects.in_scope(scope).filter(
        id__in=EventAlert.objects.filter(alert__in=alerts.values("id")).values("event_id")
    )
    hosts = Asset.objects.in_scope(scope).filter(id__in=alerts.values("asset_id"))
    shown_hosts = list(hosts.order_by("name", "uuid")[:HOSTS_SHOWN])
    context = {
        "summary": summary,
        "roles": _roles(summary, alerts),
        "hosts": shown_hosts,
        "more_hosts": hosts.count() - len(shown_hosts) if len(shown_hosts) == HOSTS_SHOWN else 0,
        "page": alert_page,
        "alert_count": alerts.count(),
        "events": list(
            events.select_related("account").order_by("-last_occurred_at", "-id")[:EVENTS_SHOWN]
        ),
        "event_count": events.count(),
        "policies": _policies(scope, summary),
    }
    return render(request, "disposal/entity.html", context)
