"""Alerts: of one event, of the whole scope (the Alert page's filters), and
the products an event's alerts came from."""

import json
from collections import defaultdict
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from alerts.models import Alert, AlertEntity, AlertSource
from alerts.services import exception_rows, filtered_alerts
from cloudsiem.operations.events import date_range, get_event
from cloudsiem.protocol import (
    PRODUCT_CODES,
    SOURCE_OF_PRODUCT,
    Call,
    account_number,
    invalid,
    operation,
    page_info,
    paged,
    risks,
    threat_level,
    time_text,
)
from events.models import EventAlert

# An alert's status in the cloud's words: 0 pending, 1 handled, 2 being
# handled, 3 whitelisted; alerts here follow the status of their event.
ALERT_STATUS_OF_EVENT = {"unhandled": "0", "failed": "0", "handled": "1", "handling": "2"}
WHITELISTED = "3"


def _source(call: Call) -> str | None:
    value = call.params.text("Source", max_length=40)
    if value is None:
        return None
    source = SOURCE_OF_PRODUCT.get(value, value)
    if source not in AlertSource.values:
        raise invalid("Source", f"one of {', '.join(PRODUCT_CODES.values())}.")
    return source


def _narrow(call: Call, alerts):
    """The filters both alert lists take."""
    params = call.params
    levels = risks(params, "Level")
    if levels:
        alerts = alerts.filter(level__in=levels)
    for field, lookup in (
        ("AlertName", "name__icontains"),
        ("AlertTitle", "name__icontains"),
        ("AlertType", "type"),
        ("AlertUuid", "source_uuid"),
        ("AssetName", "asset__name__icontains"),
    ):
        value = params.text(field, max_length=255)
        if value:
            alerts = alerts.filter(**{lookup: value})
    asset = params.text("AssetId", max_length=64)
    if asset:
        alerts = alerts.filter(Q(asset__instance_id=asset) | Q(asset__uuid=asset))
    entity_id = params.integer("EntityId", minimum=1) if "EntityId" in params else None
    if entity_id:
        alerts = alerts.filter(entity_links__entity_id=entity_id)
    entity_name = params.text("EntityName", max_length=1000)
    if entity_name:
        alerts = alerts.filter(entity_links__entity__value=entity_name)
    account = params.text("SubUserId", max_length=32)
    if account:
        alerts = alerts.filter(account__uid=account)
    # Whether a product blocked the threat is not recorded: no alert is "blocked".
    if params.text("IsDefend", max_length=4) == "1":
        alerts = alerts.none()
    if "StartTime" in params or "EndTime" in params:
        start, end = date_range(params)
        alerts = alerts.filter(occurred_at__gte=start, occurred_at__lte=end)
    return alerts.distinct()


def alert_rows(alerts: list[Alert], event=None) -> list[dict]:
    ids = [a.id for a in alerts]
    entities = defaultdict(list)
    for link in AlertEntity.objects.filter(alert_id__in=ids).select_related("entity"):
        entities[link.alert_id].append(
            {"type": link.entity.type, "value": link.entity.value, "role": link.role}
        )
    events = {}
    if event is None:
        for link in (
            EventAlert.objects.filter(alert_id__in=ids).select_related("event").order_by("event_id")
        ):
            events[link.alert_id] = link.event
    return [alert_row(a, entities[a.id], event or events.get(a.id)) for a in alerts]


def alert_row(alert: Alert, entities: list[dict], event) -> dict:
    asset = alert.asset
    if alert.whitelisted:
        status = WHITELISTED
    else:
        status = ALERT_STATUS_OF_EVENT.get(event.status, "0") if event else "0"
    occurred = time_text(alert.occurred_at)
    return {
        "Id": alert.id,
        "AlertUuid": alert.source_uuid,
        "AlertName": alert.name,
        "AlertNameEn": alert.name,
        "AlertNameCode": "",
        "AlertTitle": alert.name,
        "AlertTitleEn": alert.name,
        "AlertType": alert.type,
        "AlertTypeEn": alert.type,
        "AlertTypeCode": alert.type,
        "AlertDesc": alert.description,
        "AlertDescEn": alert.description,
        "AlertDescCode": "",
        "AlertLevel": threat_level(alert.level),
        "AlertSrcProd": PRODUCT_CODES.get(alert.source, alert.source),
        "AlertSrcProdModule": "",
        "AlertStatus": status,
        # The original data, verbatim: attacker-controlled text, only encoded here.
        "AlertDetail": json.dumps(alert.raw, ensure_ascii=False, sort_keys=True),
        "AlertInfoList": [
            {"Key": name, "KeyName": name, "Values": value}
            for name, value in exception_rows(alert.exceptions)
        ],
        "AssetList": json.dumps(
            [
                {
                    "uuid": asset.uuid,
                    "instance_id": asset.instance_id,
                    "name": asset.name,
                    "public_ip": asset.public_ip,
                    "private_ip": asset.private_ip,
                }
            ]
            if asset
            else []
        ),
        "EntityList": json.dumps(entities, ensure_ascii=False),
        "AttCk": alert.technique or alert.tactic,
        "CloudCode": "aliyun",
        "VendorId": "aliyun",
        "DetectionRuleId": "",
        "ExtendContent": json.dumps({"tactic": alert.tactic, "technique": alert.technique}),
        "GmtCreate": time_text(alert.received_at),
        "GmtModified": time_text(alert.received_at),
        "IncidentUuid": str(event.id) if event else "",
        "InvestigationReport": "",
        "IsDefend": "0",
        "LogTime": occurred,
        "LogUuid": "",
        "OccurTime": occurred,
        "StartTime": occurred,
        "EndTime": occurred,
        "MainUserId": account_number(alert.account.uid),
        "SubUserId": account_number(alert.account.uid),
        "SubUserName": alert.account.name,
        "ProductId": "",
    }


@operation("DescribeAlertsWithEvent")
def describe_alerts_with_event(call: Call):
    event = get_event(call)
    number, size = call.params.page()
    alerts = Alert.objects.in_scope(call.scope).filter(event_links__event=event)
    source = _source(call)
    if source:
        alerts = alerts.filter(source=source)
    alerts = (
        _narrow(call, alerts).select_related("account", "asset").order_by("-occurred_at", "-id")
    )
    rows, total = paged(alerts, number, size)
    return {"PageInfo": page_info(number, size, total), "ResponseData": alert_rows(rows, event)}


@operation("DescribeAlerts")
def describe_alerts(call: Call):
    params = call.params
    number, size = params.page()
    start = params.epoch_ms("StartTime") or timezone.now() - timedelta(days=180)
    filters = {"since": start, "source": _source(call)}
    statuses = set(params.strings("AlertStatus"))
    if statuses and WHITELISTED not in statuses:
        filters["whitelisted"] = "no"
    elif statuses == {WHITELISTED}:
        filters["whitelisted"] = "yes"
    alerts = _narrow(call, filtered_alerts(call.scope, filters))
    alerts = alerts.select_related("account", "asset").order_by("-occurred_at", "-id")
    rows, total = paged(alerts, number, size)
    return {"PageInfo": page_info(number, size, total), "ResponseData": alert_rows(rows)}


@operation("DescribeAlertSourceWithEvent")
def describe_alert_sources(call: Call):
    event = get_event(call)
    sources = (
        Alert.objects.in_scope(call.scope)
        .filter(event_links__event=event)
        .values_list("source", flat=True)
        .distinct()
        .order_by("source")
    )
    labels = dict(AlertSource.choices)
    return [
        {"Source": PRODUCT_CODES.get(source, source), "SourceName": labels.get(source, source)}
        for source in sources
    ]
