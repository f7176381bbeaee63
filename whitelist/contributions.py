"""What the whitelist app adds to the pages of alerts (registered in WhitelistConfig.ready)."""

from django.urls import reverse

from alerts.extensions import WhitelistNote
from whitelist.models import Match


def whitelist_notes(alert_ids) -> dict[int, WhitelistNote]:
    """Which group whitelisted each alert, with a link to it while it exists."""
    return {
        alert_id: WhitelistNote(
            group_name=group_name,
            matched_at=matched_at,
            url=f"{reverse('whitelist:scenario', args=[alert_type])}#group-{group_id}"
            if group_id
            else None,
        )
        for alert_id, group_id, group_name, matched_at, alert_type in Match.objects.filter(
            alert_id__in=alert_ids
        ).values_list("alert_id", "group_id", "group_name", "matched_at", "alert__type")
    }
