"""Reading security events for the pages, the API and the export: filters,
pages, counts, the chart, the attack timeline and why alerts are together."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from alerts.models import alert_type_label
from events.grouping import GROUPING_FIELDS, describe_window
from events.models import (
    EventStatus,
    SecurityEvent,
)
from secops import attck
from secops.enums import RiskLevel
from secops.pagination import Page, page_of

# The orders the event list offers: key -> (ORDER BY, label).
SORTS = {
    "-last": ("-last_occurred_at", "Last occurred, newest first"),
    "last": ("last_occurred_at", "Last occurred, oldest first"),
    "-first": ("-first_occurred_at", "First occurred, newest first"),
    "-risk": ("-risk", "Risk, highest first"),
    "-alerts": ("-alert_count", "Most alerts first"),
}


def grouping_explanation(event: SecurityEvent) -> str:
    """Why these alerts are together, e.g. "same attacker IP 203.0.113.7 within 24 h"."""
    fields = (event.group_values or {}).get("fields", {})
    window = (event.group_values or {}).get("window_seconds", event.rule.window_seconds)
    if list(fields) == ["alert"]:
        return "a single alert that opens an event on its own"
    display = (event.group_values or {}).get("display", {})
    # An alert type reads by its name; other values as the alerts gave them.
    display = {"alert_type": alert_type_label(fields.get("alert_type")), **display}
    parts = [
        f"same {GROUPING_FIELDS[k].label if k in GROUPING_FIELDS else k} {display.get(k, v)}"
        for k, v in fields.items()
    ]
    return f"{' and '.join(parts)} within {describe_window(window)}"


EVENTS_PER_PAGE = 20


def _day_bounds(start, end):
    tz = timezone.get_current_timezone()
    begin = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    finish = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return begin, finish


def filtered_events(scope, filters: dict):
    """The events of the scope that match the Security Event Handling filters.

    ``filters`` is the cleaned data of ``EventFilterForm``. An event is in a
    date range when any part of it (first to last occurrence) falls inside.
    """
    from alerts.services import assets_named

    begin, finish = _day_bounds(filters["start"], filters["end"])
    events = SecurityEvent.objects.in_scope(scope).filter(
        last_occurred_at__gte=begin, first_occurred_at__lt=finish
    )
    if filters.get("risk"):
        events = events.filter(risk__in=filters["risk"])
    if filters.get("status"):
        events = events.filter(status__in=filters["status"])
    if filters.get("name"):
        events = events.filter(name__icontains=filters["name"])
    if filters.get("event_id"):
        events = events.filter(id=filters["event_id"])
    if filters.get("asset"):
        assets = assets_named(scope, filters["asset"])
        events = events.filter(
            id__in=SecurityEvent.affected_assets.through.objects.filter(asset__in=assets).values(
                "event_id"
            )
        )
    return events


def events_page(
    events, order_by: str, number: int | str, size: int = EVENTS_PER_PAGE, *, total=None
) -> Page:
    """One page of a filtered event queryset in the chosen order (``order_by``, then
    newest id first), its rows with their account; ``total`` is the number of
    events when the caller has counted them already (``event_tallies``).

    Read in two steps: the ids of the page first, then those rows whole. The
    ids are ordered within the index ``event_scope_overview_idx`` (it holds the
    range, every sort key and the id), so sorting the tens of thousands of
    events of 180 days to show 20 reads the index, not every whole row.
    """
    ids = page_of(
        events.order_by(order_by, "-id").values_list("id", flat=True), number, size, total=total
    )
    rows = events.select_related("account").in_bulk(ids.items)
    # An event deleted between the two reads (retention) is left out.
    ids.items = [rows[event_id] for event_id in ids.items if event_id in rows]
    return ids


def event_tallies(events) -> list[tuple]:
    """How many of a filtered event queryset began on each day, per risk and status.

    One grouped query whose rows feed both the counts at the top of the list
    (``event_counts``) and the chart (``new_events_per_day``), so a wide range
    is read once rather than once per figure. Unless the name filter is used,
    every column it reads is in the index ``event_scope_overview_idx``, so
    PostgreSQL answers from the index alone.
    """
    return list(
        events.order_by()
        .annotate(day=TruncDate("first_occurred_at"))
        .values_list("day", "risk", "status")
        # risk is never null, so this counts rows, from a column the index holds.
        .annotate(n=Count("risk"))
    )


def event_counts(tallies) -> dict:
    """Counts by risk and by status, from ``event_tallies``."""
    by_risk, by_status = Counter(), Counter()
    for _day, risk, status, n in tallies:
        by_risk[risk] += n
        by_status[status] += n
    return {
        "risk": [(level, by_risk[level.value]) for level in sorted(RiskLevel, reverse=True)],
        "status": [(status, by_status[status.value]) for status in EventStatus],
    }


def new_events_per_day(tallies, start, end) -> list[dict]:
    """New events (by first occurrence) per day and risk, from ``event_tallies``, for the chart.

    Events that began before ``start`` and lasted into the range are counted
    above but have no bar: they are not new in it.
    """
    counts = defaultdict(Counter)
    for day, risk, _status, n in tallies:
        counts[day][risk] += n
    days = []
    day = start
    while day <= end:
        days.append({"day": day, **{r.label.lower(): counts[day][r.value] for r in RiskLevel}})
        day += timedelta(days=1)
    return days


# ATT&CK tactics in kill-chain order, for the Attack Timeline.
ATTACK_STAGES = list(attck.TACTIC_NAMES)


def timeline_stages(alerts) -> list[dict]:
    """The event's alerts in time order, cut into consecutive runs of one ATT&CK stage.

    Consecutive alerts of the same tactic form one stage; an alert without a
    tactic joins an "Unclassified" run. The order stays chronological, so a
    stage may appear twice when the attack went back to it.
    """
    stages: list[dict] = []
    for alert in alerts:
        # Products send a tactic by id (TA0001) or by name: one stage either way.
        tactic = attck.tactic_name(alert.tactic) or "Unclassified"
        if not stages or stages[-1]["tactic"] != tactic:
            stages.append(
                {
                    "tactic": tactic,
                    "order": ATTACK_STAGES.index(tactic) + 1 if tactic in ATTACK_STAGES else None,
                    "alerts": [],
                }
            )
        stages[-1]["alerts"].append(alert)
    return stages
