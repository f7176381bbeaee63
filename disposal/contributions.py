"""What the disposal app adds to the pages of the apps below it (registered in
DisposalConfig.ready)."""

from collections import Counter, defaultdict

from django.template.loader import render_to_string
from django.urls import reverse

from disposal.models import HandlingPolicy, HandlingTask, Notification, TaskStatus
from events.extensions import EventSection
from secops.extensions import Link


def handle_action(scope, event) -> Link:
    """Handle, in the Actions column and the event's head. Everyone who sees the
    event opens the panel; those who may not handle it see it read-only."""
    return Link("Handle", reverse("disposal:handle", args=[event.pk]))


def event_handling_section(request, event) -> EventSection | None:
    """The event's handling policies and notifications, on Incident Information."""
    scope = request.scope
    policies = list(
        HandlingPolicy.objects.in_scope(scope)
        .filter(source_event=event)
        .select_related("scenario")
        .prefetch_related("scope_accounts")
        .order_by("created_at", "id")
    )
    notifications = list(
        Notification.objects.in_scope(scope).filter(event=event).order_by("created_at", "id")
    )
    if not policies and not notifications:
        return None

    # Tasks of the accounts in view only: the others are not this reader's to count.
    counts: dict[int, Counter] = defaultdict(Counter)
    for policy_id, status in (
        HandlingTask.objects.in_scope(scope)
        .filter(policy__in=policies)
        .values_list("policy_id", "status")
    ):
        counts[policy_id][status] += 1
    rows = []
    for policy in policies:
        accounts = list(policy.scope_accounts.all())
        visible = [a for a in accounts if a.id in scope.account_ids]
        rows.append(
            {
                "policy": policy,
                "accounts": visible,
                "hidden_accounts": len(accounts) - len(visible),
                "tasks": [
                    {"status": status, "label": label, "count": counts[policy.id][status]}
                    for status, label in TaskStatus.choices
                    if counts[policy.id][status]
                ],
            }
        )
    # A rendered template is safe HTML already: every value in it was escaped.
    html = render_to_string(
        "disposal/_event_handling_section.html",
        {"policies": rows, "notifications": notifications},
        request=request,
    )
    return EventSection("Handling", html, "event-handling")
