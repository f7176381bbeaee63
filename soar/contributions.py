"""What the soar app adds to the pages of the apps below it (registered in
SoarConfig.ready)."""

from django.template.loader import render_to_string

from events.extensions import EventSection
from soar.bulk import MAX_EVENTS, SETTABLE_STATUSES, runnable_playbooks
from soar.models import BulkAction

# The names of the form's fields (soar.forms.BulkHandlingForm, prefix "bulk").
FIELD_PREFIX = "bulk"


def bulk_handling_bar(request, matching: int) -> EventSection | None:
    """Handle the selected events, or all ``matching`` ones, at once: above the
    table of Security Event Handling, for those who may handle events."""
    if not request.scope.may_handle():
        return None
    query = request.GET.copy()
    query.pop("page", None)
    # A rendered template is safe HTML already: every value in it was escaped.
    html = render_to_string(
        "soar/_bulk_bar.html",
        {
            "matching": matching,
            "max_events": MAX_EVENTS,
            "actions": BulkAction.choices,
            "set_status": BulkAction.SET_STATUS,
            "statuses": [(status.value, status.label) for status in SETTABLE_STATUSES],
            "playbooks": runnable_playbooks(request.scope),
            "list_query": query.urlencode(),
        },
        request=request,
    )
    return EventSection("Bulk handling", html, "bulk-bar")
