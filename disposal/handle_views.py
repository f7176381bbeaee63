"""The Handle panel of a security event and its Message Preview.

The panel opens beside Security Event Handling and the event details (htmx
puts the partial in the page's side panel) or on a page of its own. Everything
it does is ``disposal.handling``: the view reads the form, calls
``handle_event`` and shows the outcome.
"""

import json
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views.decorators.http import require_http_methods, require_POST

from disposal.errors import HandlingError
from disposal.forms import HandleForm
from disposal.handling import HandlingResult, handle_event, handling_context, preview_message
from events import feed
from events.models import SecurityEvent
from secops.scope import get_in_scope_or_404, require

# Sent with a successful htmx answer, for pages that show the event to refresh.
HANDLED_TRIGGER = "eventHandled"


def _event_or_404(request, event_id: int) -> SecurityEvent:
    return get_in_scope_or_404(
        SecurityEvent.objects.select_related("account"), request.scope, id=event_id
    )


@require_http_methods(["GET", "POST"])
def handle(request, event_id: int):
    event = _event_or_404(request, event_id)
    may_handle = request.scope.may_handle([event.account_id])
    recommend = request.POST.get("recommend") or request.GET.get("recommend")
    context = handling_context(request.scope, event)
    if request.method == "GET":
        form = HandleForm(context, recommend=recommend, read_only=not may_handle)
        return _panel(request, event, form, may_handle)

    require(may_handle, "Only analysts and administrators of the event's account handle it.")
    form = HandleForm(context, request.POST, recommend=recommend)
    if recommend or not form.is_valid():
        return _panel(request, event, form, may_handle)
    try:
        result = handle_event(
            request.scope,
            event,
            form.handling_request(),
            cause=feed.Cause.by_user(request.user),
        )
    except HandlingError as exc:
        form.add_handling_error(exc)
        return _panel(request, event, form, may_handle)
    return _handled(request, result)


@require_POST
def handle_preview(request, event_id: int):
    """The Message Preview for the panel's current values: the message OK would
    send, rendered by the function that renders the sent one."""
    event = _event_or_404(request, event_id)
    form = HandleForm(handling_context(request.scope, event), request.POST)
    return render(request, "disposal/_message_preview.html", {"preview": _preview(form)})


def _preview(form: HandleForm) -> dict:
    return {
        "channels": [label for value, label in form.channel_choices if value in form.channels],
        "recipients": form.recipients,
        "title": form.title,
        "body": preview_message(form.context, form.handling_request()),
    }


def _panel(request, event, form: HandleForm, may_handle: bool):
    template = "disposal/handle.html"
    if request.htmx and not request.htmx.boosted:
        template = "disposal/_handle_panel.html"
    context = {
        "event": event,
        "form": form,
        "may_handle": may_handle,
        "preview": _preview(form),
    }
    for row in form.rows:
        row.url = _entity_url(row.entity)
    return render(request, template, context)


def _handled(request, result: HandlingResult):
    event = result.event
    # The tasks may have run already (the simulated cloud answers at once).
    event.refresh_from_db(fields=["status"])
    message = f"Event #{event.pk} is {event.get_status_display()}: {_summary(result)}."
    detail_url = reverse("events:detail", args=[event.pk])
    list_url = _list_page(request) if request.htmx else None
    if list_url is None:
        # A plain form, the event details or the panel's own page: show the event.
        messages.success(request, message)
        if not request.htmx:
            return redirect(detail_url)
        response = HttpResponse()
        response["HX-Redirect"] = detail_url
    else:
        # Beside the list: the panel says what was done and the list reloads.
        response = render(
            request,
            "disposal/_handle_done.html",
            {"event": event, "message": message, "refresh_url": list_url},
        )
    response["HX-Trigger"] = json.dumps(
        {HANDLED_TRIGGER: {"event": event.pk, "status": event.status}}
    )
    return response


def _summary(result: HandlingResult) -> str:
    parts = []
    if result.policies:
        parts.append(_count(len(result.policies), "policy", "policies"))
        parts.append(_count(len(result.tasks), "task", "tasks") + " queued")
    if result.notifications:
        parts.append(_count(len(result.notifications), "notification", "notifications") + " queued")
    return ", ".join(parts) or "no handling action, no notification"


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _list_page(request) -> str | None:
    """The address of the Security Event Handling list the panel was opened
    beside (with its filters), or None when it was opened elsewhere."""
    current = request.htmx.current_url_abs_path
    if not current:
        return None
    path = urlsplit(current).path
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return current if match.view_name == "events:list" else None


def _entity_url(entity) -> str | None:
    """The entity page, once the app offers one."""
    try:
        return reverse("disposal:entity", args=[entity.entity_type, entity.digest])
    except NoReverseMatch:
        return None
