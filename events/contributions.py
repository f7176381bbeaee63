"""What the events app adds to the pages of the apps below it (registered in EventsConfig.ready)."""

from django.urls import reverse

from alerts.extensions import RelatedLinks
from events.models import SecurityEvent, WhitelistGroupOrigin
from secops.extensions import Link
from whitelist.extensions import GroupOrigin


def events_of_alert(scope, alert) -> RelatedLinks:
    """The security events (in scope) an alert was aggregated into."""
    events = (
        SecurityEvent.objects.in_scope(scope)
        .filter(alert_links__alert=alert)
        .order_by("-id")
        .only("id", "name")
    )
    return RelatedLinks(
        label="Security events",
        links=[Link(f"#{e.pk} {e.name}", reverse("events:detail", args=[e.pk])) for e in events],
    )


def aggregation_rules_page() -> Link:
    return Link("Aggregation rules", reverse("events:rules"), "decide which alerts form one event.")


def whitelist_group_origins(group_ids) -> dict[int, GroupOrigin]:
    """The event each group was made from by "Add to Whitelist"."""
    return {
        group_id: GroupOrigin(
            object_id=event_id,
            link=Link(f"event #{event_id}", reverse("events:detail", args=[event_id])),
        )
        for group_id, event_id in WhitelistGroupOrigin.objects.filter(
            group_id__in=group_ids
        ).values_list("group_id", "event_id")
    }
