"""Security events: the list with its filters, one event, counts by threat level.

Read through ``events.queries``, the list page's own query, so the API and the
Security Event Handling page agree on what an event filter means.
"""

import json
from collections import Counter, defaultdict
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from alerts.models import AlertEntity
from cloudsiem.protocol import (
    EVENT_STATUS_CODES,
    EVENT_STATUS_OF_CODE,
    PRODUCT_CODES,
    Call,
    Params,
    account_number,
    event_id,
    invalid,
    operation,
    page_info,
    risks,
    threat_level,
    time_text,
)
from events import queries
from events.forms import EVENT_VISIBLE_DAYS
from events.models import ChangeCause, EventAlert, EventStatusChange, SecurityEvent
from secops.enums import RiskLevel
from secops.scope import get_in_scope_or_404

# ATT&CK tactic ids by the names alerts carry.
TACTIC_IDS = {
    "Reconnaissance": "TA0043",
    "Resource Development": "TA0042",
    "Initial Access": "TA0001",
    "Execution": "TA0002",
    "Persistence": "TA0003",
    "Privilege Escalation": "TA0004",
    "Defense Evasion": "TA0005",
    "Credential Access": "TA0006",
    "Discovery": "TA0007",
    "Lateral Movement": "TA0008",
    "Collection": "TA0009",
    "Command and Control": "TA0011",
    "Exfiltration": "TA0010",
    "Impact": "TA0040",
}
# OrderField -> the event column it sorts by.
ORDER_FIELDS = {
    "GmtModified": "last_occurred_at",
    "GmtCreate": "first_occurred_at",
    "ThreatScore": "risk",
    "ThreatLevel": "risk",
    "AlertNum": "alert_count",
}


def date_range(params: Params, default_days: int = EVENT_VISIBLE_DAYS):
    """(start, end) of StartTime/EndTime (epoch ms); by default the last days."""
    end = params.epoch_ms("EndTime") or timezone.now()
    start = params.epoch_ms("StartTime") or end - timedelta(days=default_days)
    if start > end:
        raise invalid("StartTime", "must not be after EndTime.")
    return start, end


def _events(call: Call):
    """The scope's events matching the request, through the list page's filters."""
    params = call.params
    start, end = date_range(params)
    filters = {
        "start": timezone.localdate(start),
        "end": timezone.localdate(end),
        "risk": risks(params, "ThreadLevel"),
        "status": [],
        "name": params.text("EventName", max_length=255),
        "event_id": event_id(params, required=False) if "IncidentUuid" in params else None,
        "asset": params.text("AssetId", max_length=64),
    }
    status = params.integer("Status", maximum=100)
    if status is not None:
        if status not in EVENT_STATUS_OF_CODE:
            raise invalid("Status", "0 (unhandled), 1 (handling), 5 (failed) or 10 (handled).")
        filters["status"] = [EVENT_STATUS_OF_CODE[status]]
    events = queries.filtered_events(call.scope, filters)
    # The page filters by whole days; the API's times are exact.
    events = events.filter(last_occurred_at__gte=start, first_occurred_at__lte=end)
    entity = params.text("EntityUuid", max_length=64)
    if entity:
        events = events.filter(
            id__in=EventAlert.objects.filter(
                alert__in=AlertEntity.objects.filter(entity__digest=entity).values("alert_id")
            ).values("event_id")
        )
    return events


def _order(params: Params) -> str:
    field = params.text("OrderField", max_length=40) or "GmtModified"
    if field not in ORDER_FIELDS:
        raise invalid("OrderField", f"one of {', '.join(ORDER_FIELDS)}.")
    direction = (params.text("Order", max_length=4) or "desc").lower()
    if direction not in ("asc", "desc"):
        raise invalid("Order", "asc or desc.")
    return ("-" if direction == "desc" else "") + ORDER_FIELDS[field]


def event_rows(events: list[SecurityEvent]) -> list[dict]:
    """The events as the API's event model, with what their alerts add: assets,
    ATT&CK stages and techniques, data sources; a few queries for a page."""
    ids = [e.id for e in events]
    assets = dict(
        SecurityEvent.affected_assets.through.objects.filter(event_id__in=ids)
        .values("event_id")
        .annotate(n=Count("asset_id"))
        .values_list("event_id", "n")
    )
    tactics, techniques, sources = defaultdict(Counter), defaultdict(set), defaultdict(set)
    for row in (
        EventAlert.objects.filter(event_id__in=ids)
        .values("event_id", "alert__tactic", "alert__technique", "alert__source")
        .annotate(n=Count("alert_id"))
        .order_by()
    ):
        if row["alert__tactic"]:
            tactics[row["event_id"]][row["alert__tactic"]] += row["n"]
        if row["alert__technique"]:
            techniques[row["event_id"]].add(row["alert__technique"])
        sources[row["event_id"]].add(PRODUCT_CODES.get(row["alert__source"], row["alert__source"]))
    remarks = remarks_of(ids)
    return [
        event_row(e, assets.get(e.id, 0), tactics[e.id], techniques[e.id], sources[e.id], remarks)
        for e in events
    ]


def remarks_of(event_ids) -> dict[int, str]:
    """The latest remark a person (or a key) gave with a status change of each
    event; the system's own notes ("every task succeeded") are no remarks."""
    remarks = {}
    for event_id_, note in (
        EventStatusChange.objects.filter(
            event_id__in=event_ids, cause__in=(ChangeCause.USER, ChangeCause.API_KEY)
        )
        .exclude(note="")
        .order_by("created_at", "id")
        .values_list("event_id", "note")
    ):
        remarks[event_id_] = note
    return remarks


def event_row(event, asset_count, tactics, techniques, sources, remarks) -> dict:
    single = list((event.group_values or {}).get("fields", {})) == ["alert"]
    return {
        "IncidentUuid": str(event.id),
        "IncidentName": event.name,
        "IncidentNameEn": event.name,
        "Description": event.description,
        "DescriptionEn": event.description,
        "ThreatLevel": threat_level(event.risk),
        # Events have a risk level, not a score.
        "ThreatScore": 0.0,
        "Status": EVENT_STATUS_CODES[event.status],
        "AlertNum": event.alert_count,
        "AssetNum": asset_count,
        "Aliuid": account_number(event.account.uid),
        "ReferAccount": event.account.uid,
        "AttCkLabels": sorted(techniques),
        "AttckStages": [
            {"TacticId": TACTIC_IDS.get(name, ""), "TacticName": name, "AlertNum": n}
            for name, n in sorted(tactics.items(), key=lambda item: (-item[1], item[0]))
        ],
        "DataSources": sorted(sources),
        "GmtCreate": time_text(event.first_occurred_at),
        "GmtModified": time_text(event.last_occurred_at),
        "IncidentType": "singleToSingle" if single else "allToSingle",
        "RuleId": str(event.rule.key),
        "Remark": remarks.get(event.id, ""),
        "ExtContent": json.dumps({"grouping": queries.grouping_explanation(event)}),
    }


def get_event(call: Call, *, required=True) -> SecurityEvent | None:
    """The event named by IncidentUuid, within the scope (else EntityNotExist)."""
    number = event_id(call.params, required=required)
    if number is None:
        return None
    return get_in_scope_or_404(
        SecurityEvent.objects.select_related("account", "rule"), call.scope, id=number
    )


@operation("DescribeCloudSiemEvents")
def describe_events(call: Call):
    number, size = call.params.page()
    events = _events(call).select_related("account", "rule")
    order = _order(call.params)
    total = events.count()
    rows = []
    if (number - 1) * size < total:
        page = queries.events_page(events, order, number, size)
        rows = event_rows(page.items)
    return {"PageInfo": page_info(number, size, total), "ResponseData": rows}


@operation("DescribeCloudSiemEventDetail")
def describe_event_detail(call: Call):
    return event_rows([get_event(call)])[0]


@operation("DescribeEventCountByThreatLevel")
def count_by_threat_level(call: Call):
    start, end = date_range(call.params, default_days=7)
    events = queries.filtered_events(
        call.scope, {"start": timezone.localdate(start), "end": timezone.localdate(end)}
    ).filter(last_occurred_at__gte=start, first_occurred_at__lte=end)
    tallies = queries.event_tallies(events)
    counts = queries.event_counts(tallies)
    by_risk = {level: n for level, n in counts["risk"]}
    unhandled = dict(counts["status"]).get("unhandled", 0)
    daily, undealt = Counter(), Counter()
    for day, _risk, status, n in tallies:
        daily[day] += n
        if status == "unhandled":
            undealt[day] += n
    return {
        "EventNum": sum(by_risk.values()),
        "HighLevelEventNum": by_risk.get(RiskLevel.HIGH, 0),
        "MediumLevelEventNum": by_risk.get(RiskLevel.MEDIUM, 0),
        "LowLevelEventNum": by_risk.get(RiskLevel.LOW, 0),
        # Three levels here; the cloud's "serious" and "info" extremes have none.
        "SeriousLevelEventNum": 0,
        "InfoLevelEventNum": 0,
        "UndealEventNum": unhandled,
        "EventDailyNum": [
            {"Date": day.isoformat(), "EventNum": daily[day], "UndealEventNum": undealt[day]}
            for day in sorted(daily)
        ],
    }
