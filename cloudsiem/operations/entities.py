"""Entities of an event (IPs, files, processes, hosts, ...) and one entity's
information with what threat intelligence says of it."""

import json

from django.db.models import Count

from alerts.models import Entity
from cloudsiem.operations.events import get_event
from cloudsiem.protocol import (
    Call,
    account_number,
    invalid,
    not_found,
    operation,
    page_info,
    time_text,
)
from disposal import intel
from events.entities import entities_of_events
from events.models import EventAlert
from secops.scope import get_in_scope_or_404


def digests(call: Call, name: str) -> list[str]:
    """Entity uuids (our entities' digests) given as a JSON array or comma-separated."""
    values = call.params.strings(name)
    if len(values) == 1 and "," in values[0]:
        values = [v.strip() for v in values[0].split(",")]
    return values


def _true(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise invalid("IsMalwareEntity", "true or false.")


@operation("ListEntities")
def list_entities(call: Call):
    event = get_event(call)
    params = call.params
    number, size = params.page()
    listed = entities_of_events(call.scope, [event.id])[event.id]
    entity_type = params.text("EntityType", max_length=16)
    name = params.text("EntityName", max_length=1000)
    wanted = set(digests(call, "EntityUuids"))
    if params.text("EntityUuid", max_length=64):
        wanted.add(params.text("EntityUuid", max_length=64))
    malicious = _true(params.text("IsMalwareEntity", max_length=8))
    listed = [
        item
        for item in listed
        if (not entity_type or item.entity.type == entity_type)
        and (not name or name.lower() in item.entity.value.lower())
        and (not wanted or item.entity.digest in wanted)
        and (malicious is None or item.entity.malicious == malicious)
    ]
    page = listed[(number - 1) * size : number * size]
    event_counts = dict(
        EventAlert.objects.filter(
            alert__entity_links__entity_id__in=[item.entity.id for item in page]
        )
        .values("alert__entity_links__entity_id")
        .annotate(n=Count("event_id", distinct=True))
        .values_list("alert__entity_links__entity_id", "n")
    )
    rows = []
    for item in page:
        entity = item.entity
        rows.append(
            {
                "Id": entity.id,
                "EntityId": str(entity.id),
                "EntityUuid": entity.digest,
                "EntityName": entity.value,
                "EntityType": entity.type,
                "EntityInfo": json.dumps(
                    {"value": entity.value, "roles": list(item.roles), **entity.attributes},
                    ensure_ascii=False,
                ),
                "AlertNum": item.alert_count,
                "EventNum": event_counts.get(entity.id, 0),
                "AlertUuid": "",
                "IncidentUuid": str(event.id),
                "Aliuid": account_number(event.account.uid),
                "SubUserId": account_number(event.account.uid),
                "CloudCode": "aliyun",
                "IsAsset": "true" if entity.type == "host" else "false",
                "IsMalware": "true" if entity.malicious else "false",
                "MalwareType": "",
                "Tags": "[]",
                "GmtCreate": time_text(entity.first_seen_at),
                "GmtModified": time_text(entity.last_seen_at),
                "AgentAnalysisReason": "",
                "AgentConfidence": "",
                "AgentDisposalMethod": "",
                "AgentDisposalPlaybookUuid": "",
                "AgentDisposalReason": "",
                "AgentDisposalSuggestion": "",
                "AgentDisposes": [],
            }
        )
    return {"PageInfo": page_info(number, size, len(listed)), "ResponseData": rows}


@operation("DescribeEntityInfo")
def describe_entity(call: Call):
    params = call.params
    entity_id = params.integer("EntityId", minimum=1) if "EntityId" in params else None
    identity = params.text("EntityIdentity", max_length=4000)
    entities = Entity.objects.in_scope(call.scope)
    event = get_event(call, required=False)
    if event is not None:
        entities = entities.filter(alerts__event_links__event=event).distinct()
    if entity_id is not None:
        entity = get_in_scope_or_404(entities, call.scope, id=entity_id)
    elif identity:
        entity = (
            entities.filter(value=identity).first()
            or entities.filter(value__icontains=identity).order_by("id").first()
        )
        if entity is None:
            raise not_found(f"Entity {identity!r}")
    else:
        raise invalid("EntityId", "name the entity by EntityId or EntityIdentity.")
    sources = intel.malicious_sources(call.scope, {(entity.type, entity.digest)})
    found = sources.get((entity.type, entity.digest), [])
    return {
        "EntityId": entity.id,
        "EntityType": entity.type,
        "EntityInfo": {
            "value": entity.value,
            "uuid": entity.digest,
            "malicious": entity.malicious,
            "first_seen": time_text(entity.first_seen_at),
            "last_seen": time_text(entity.last_seen_at),
            "attributes": entity.attributes,
        },
        "TipInfo": {"malicious": bool(found), "sources": found},
    }
