"""The "Add to Whitelist" page of an event: the whitelist editor with a draft."""

from django.urls import reverse

from events import whitelisting
from events.models import SecurityEvent
from secops.extensions import Link
from secops.scope import get_in_scope_or_404
from whitelist.services import object_values
from whitelist.views import DraftOrigin, group_editor


def add_to_whitelist(request, event_id: int):
    event = get_in_scope_or_404(SecurityEvent, request.scope, id=event_id)
    facts = whitelisting.latest_alert_facts(event)
    origin = DraftOrigin(
        title=f"Add to Whitelist: event #{event.pk}",
        back_url=reverse("events:list"),
        source=Link(
            event.name,
            reverse("events:detail", args=[event.pk]),
            "Edit the values so the group matches only what you know to be harmless; new "
            "alerts that match are kept out of events, this event stays as it is.",
        ),
        draft=whitelisting.draft_for_event(event, facts),
        suggestions=object_values(facts),
        suggestions_heading=f"Values in event #{event.pk}",
        on_saved=lambda group: whitelisting.record_origin(group, event),
    )
    return group_editor(request, origin=origin)
