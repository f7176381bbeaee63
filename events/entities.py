"""The entities of security events: what each event's alerts name, with the
roles they play and how many of the event's alerts name them.

One reader for everything that lists an event's entities (the Excel export
today; handling and entity pages build on it).
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F

from alerts.models import AlertEntity, Entity, EntityType
from secops.scope import Scope

_TYPE_ORDER = {value: index for index, value in enumerate(EntityType.values)}
# Roles in the order the console shows them (attacker, victim, related).
ROLE_ORDER = tuple(value for value, _ in AlertEntity._meta.get_field("role").choices)


@dataclass(frozen=True)
class EventEntity:
    """One entity of an event: its roles in the event's alerts (in ``ROLE_ORDER``)
    and the number of the event's alerts that name it."""

    entity: Entity
    roles: tuple[str, ...]
    alert_count: int


def entities_of_events(scope: Scope, event_ids) -> dict[int, list[EventEntity]]:
    """Event id -> its entities, ordered by type then value; only entities within
    ``scope``. Three queries, whatever the number of events."""
    event_ids = list(event_ids)
    links = AlertEntity.objects.filter(alert__event_links__event_id__in=event_ids)
    alert_counts = {
        (row["event_id"], row["entity_id"]): row["alerts"]
        for row in links.values("entity_id", event_id=F("alert__event_links__event_id"))
        .annotate(alerts=Count("alert", distinct=True))
        .order_by()
    }
    roles = defaultdict(set)
    for row in (
        links.values("entity_id", "role", event_id=F("alert__event_links__event_id"))
        .distinct()
        .order_by()
    ):
        roles[row["event_id"], row["entity_id"]].add(row["role"])
    entity_ids = {entity_id for _, entity_id in alert_counts}
    entities = {
        entity.pk: entity for entity in Entity.objects.in_scope(scope).filter(id__in=entity_ids)
    }

    found: dict[int, list[EventEntity]] = {event_id: [] for event_id in event_ids}
    for (event_id, entity_id), count in alert_counts.items():
        entity = entities.get(entity_id)
        if entity is None:
            continue
        event_roles = roles[event_id, entity_id]
        found[event_id].append(
            EventEntity(entity, tuple(r for r in ROLE_ORDER if r in event_roles), count)
        )
    for listed in found.values():
        listed.sort(key=lambda item: (_TYPE_ORDER.get(item.entity.type, 99), item.entity.value))
    return found
