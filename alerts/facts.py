"""What the pipeline knows of an alert, loaded set-wise as plain values.

Whitelist matching and aggregation both read alerts this way: one query for
a batch's alerts with their asset, one for their entities, no model instances.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import JSONField, Value
from django.db.models.functions import Coalesce, NullIf

from alerts.models import Alert, AlertEntity


@dataclass(frozen=True)
class AlertFacts:
    """What the pipeline knows of one alert, loaded set-wise for a batch."""

    id: int
    account_id: int
    region: str
    source: str
    type: str
    name: str
    level: int
    occurred_at: object
    asset_id: int | None
    asset_uuid: str | None
    asset_name: str | None
    asset_public_ip: str | None
    asset_private_ip: str | None = None
    # (type, role, value, attributes) of each linked entity
    entities: tuple = ()

    def entity_value(self, entity_type: str, role: str | None = None, attribute: str | None = None):
        for etype, erole, value, attributes in self.entities:
            if etype == entity_type and (role is None or erole == role):
                if attribute is None:
                    return value
                if attributes.get(attribute):
                    return attributes[attribute]
        return None


def own_or_shared_attributes():
    """An alert entity link's attributes as that alert gave them; links stored
    before they were kept per alert fall back to the entity's (its first
    alert's). One JSON value per link."""
    return Coalesce(NullIf("attributes", Value({}, output_field=JSONField())), "entity__attributes")


def load_alert_facts(alert_ids) -> list[tuple[AlertFacts, int]]:
    """The batch's alerts with what rules need, as plain values (no model
    instances: this runs for every alert that arrives)."""
    rows = Alert.objects.filter(id__in=alert_ids).values_list(
        "id",
        "account_id",
        "region",
        "source",
        "type",
        "name",
        "level",
        "occurred_at",
        "asset_id",
        "asset__uuid",
        "asset__name",
        "asset__public_ip",
        "asset__private_ip",
        "account__organisation_id",
    )
    rows = list(rows)
    entities = defaultdict(list)
    for alert_id, role, etype, value, attributes in (
        AlertEntity.objects.filter(alert_id__in=alert_ids)
        .annotate(own_attributes=own_or_shared_attributes())
        .values_list("alert_id", "role", "entity__type", "entity__value", "own_attributes")
    ):
        entities[alert_id].append((etype, role, value, attributes or {}))
    return [
        (
            AlertFacts(
                id=pk,
                account_id=account_id,
                region=region,
                source=source,
                type=alert_type,
                name=name,
                level=level,
                occurred_at=occurred_at,
                asset_id=asset_id,
                asset_uuid=asset_uuid,
                asset_name=(asset_name or asset_uuid) if asset_id else None,
                asset_public_ip=public_ip,
                asset_private_ip=private_ip,
                entities=tuple(entities.get(pk, ())),
            ),
            organisation_id,
        )
        for (
            pk,
            account_id,
            region,
            source,
            alert_type,
            name,
            level,
            occurred_at,
            asset_id,
            asset_uuid,
            asset_name,
            public_ip,
            private_ip,
            organisation_id,
        ) in rows
    ]
