"""What a diagram reads: four queries, whatever the number of alerts."""

from collections import defaultdict

from django.db.models import Q

from alerts.facts import own_or_shared_attributes
from alerts.models import Alert, AlertEntity, Entity, EntityRole, LogRecord
from events.models import SecurityEvent
from events.tracing.traces import EventTrace
from secops.scope import Scope


def read_alerts(events: list[SecurityEvent], scope: Scope) -> dict[int, list[dict]]:
    """Each event's alert sources and hosts (one row per combination, not per alert)."""
    alerts = (
        Alert.objects.in_scope(scope)
        .filter(event_links__event__in=events)
        .values("source", "asset__uuid", "asset__name", "event_links__event")
        .order_by()
        .distinct()
    )
    by_event: dict[int, list[dict]] = defaultdict(list)
    for alert in alerts:
        by_event[alert["event_links__event"]].append(alert)
    return by_event


def read_entities(events: list[SecurityEvent], scope: Scope) -> dict[int, list[dict]]:
    """Each event's alert entities, with the hosts and alerts that name them,
    and each alert's own view of them (``links``: alert, host, role and the
    attributes that alert gave, which the diagram drawn from alerts reads).

    The links (one row per alert and entity) and the entities (one row
    each, with their attributes) are read apart: a thousand alerts name
    the same few hundred entities over and over.
    """
    links = AlertEntity.objects.filter(
        alert__event_links__event__in=events,
        alert__account_id__in=scope.account_ids,
    )
    rows = list(
        links.annotate(own_attributes=own_or_shared_attributes())
        .values_list(
            "alert_id",
            "role",
            "entity_id",
            "alert__asset__uuid",
            "alert__event_links__event",
            "own_attributes",
        )
        .order_by("entity_id", "alert_id")
    )
    # The entities by the ids the links named, not by a subquery over the
    # links: while the tables grow faster than their statistics, PostgreSQL
    # took the entity table for the small side of such a semi-join and read
    # the event's links once per entity of the account (minutes for a busy one).
    entities = {
        row["id"]: row
        for row in Entity.objects.in_scope(scope)
        .filter(id__in={entity_id for _, _, entity_id, *_ in rows})
        .values("id", "type", "value", "attributes", "malicious")
    }
    by_event: dict[int, dict[int, dict]] = defaultdict(dict)
    for alert_id, role, entity_id, host, event_id, own_attributes in rows:
        stored = entities.get(entity_id)
        if stored is None:
            continue
        entity = by_event[event_id].get(entity_id)
        if entity is None:
            entity = by_event[event_id][entity_id] = {
                "type": stored["type"],
                "value": stored["value"],
                "attributes": stored["attributes"] or {},
                "malicious": stored["malicious"],
                "hosts": set(),
                "alerts": [],
                "links": [],
            }
        entity["malicious"] = entity["malicious"] or role == EntityRole.ATTACKER
        if host:
            entity["hosts"].add(host)
        entity["alerts"].append(alert_id)
        entity["links"].append(
            {"alert": alert_id, "host": host, "role": role, "attributes": own_attributes or {}}
        )
    return {event_id: list(found.values()) for event_id, found in by_event.items()}


def read_logs(traces: list[EventTrace], scope: Scope, limit: int) -> tuple[list[dict], bool]:
    """The log records of the traces' hosts and windows, by time, at most ``limit``
    of them; and whether there were more."""
    if not traces:
        return [], False
    where = Q()
    for trace in traces:
        where |= Q(
            account_id=trace.event.account_id,
            host_uuid__in=sorted(trace.hosts),
            time__gte=trace.start,
            time__lte=trace.end,
        )
    rows = list(
        LogRecord.objects.in_scope(scope)
        .filter(where)
        .order_by("time", "id")
        .values("id", "host_uuid", "log_type", "time", "fields", "digest")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit
