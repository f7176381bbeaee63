""" "Add to Whitelist" on an event: a whitelist group drafted from the event's alerts.

Whitelist works on alerts only; this module is where an event becomes the
alerts to draft from, and where the group remembers the event it came from.
"""

from alerts.facts import AlertFacts, load_alert_facts
from events.models import EventAlert, SecurityEvent, WhitelistGroupOrigin
from whitelist import services as whitelist

# The draft reads the event's latest alerts, no more.
DRAFT_ALERTS = 500


def latest_alert_facts(event: SecurityEvent) -> list[AlertFacts]:
    alert_ids = list(
        EventAlert.objects.filter(event=event)
        .order_by("-alert__occurred_at")
        .values_list("alert_id", flat=True)[:DRAFT_ALERTS]
    )
    return [facts for facts, _ in load_alert_facts(alert_ids)]


def draft_for_event(event: SecurityEvent, facts: list[AlertFacts]) -> whitelist.GroupSpec:
    """A group limited to the event's account, matching what its alerts share."""
    return whitelist.draft_from_alerts(
        facts,
        name=f"Whitelist: {event.name}",
        description=f"Made from event #{event.id}.",
        account_id=event.account_id,
    )


def record_origin(group, event: SecurityEvent) -> WhitelistGroupOrigin:
    origin, _ = WhitelistGroupOrigin.objects.get_or_create(group=group, defaults={"event": event})
    return origin
