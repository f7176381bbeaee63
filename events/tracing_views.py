"""Incident Source Tracing pages: the tab of the event details, its JSON, the
preview of the log records behind the diagram, and several events on one diagram.

Every event is fetched within the request's scope; one outside it is a 404,
for the multi-event diagram too (any foreign id among the chosen ones).
"""

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from events.models import SecurityEvent
from events.tracing.diagram import TracingGraph
from events.tracing.tracer import TooManyEvents, parse_event_ids, trace_event, trace_events
from secops.params import page_number
from secops.scope import get_in_scope_or_404

# The diagram's layouts ("Image style"), the first the default. The one chosen
# is in the page's URL (?layout=), so a shared link or Back shows it again.
TRACING_LAYOUTS = [
    ("breadthfirst", "Tree"),
    ("cose", "Force-directed"),
    ("concentric", "Concentric"),
    ("circle", "Circle"),
    ("grid", "Grid"),
]


def tracing_layout(request) -> str:
    """The layout the URL names, or the default for anything else."""
    chosen = request.GET.get("layout", "")
    return chosen if chosen in dict(TRACING_LAYOUTS) else TRACING_LAYOUTS[0][0]


def _page_number(request, name: str = "page") -> int:
    return page_number(request.GET.get(name))


def _logs_links(logs_url: str) -> dict:
    return {
        "tracing_logs_url": logs_url,
        # What a page number is appended to.
        "tracing_logs_prefix": logs_url + ("&" if "?" in logs_url else "?"),
    }


def _diagram_context(graph: TracingGraph, *, logs_url: str, filename: str, layout: str) -> dict:
    return {
        "tracing": graph,
        "tracing_layouts": TRACING_LAYOUTS,
        "tracing_layout": layout,
        "tracing_data": graph.as_dict(),
        "tracing_filename": filename,
        "preview": graph.preview(1),
        "preview_node": "",
        **_logs_links(logs_url),
    }


def tab_context(request, event: SecurityEvent) -> dict:
    """What the "Incident Source Tracing" tab of ``event_detail`` renders."""
    graph = trace_event(event, request.scope)
    return _diagram_context(
        graph,
        logs_url=reverse("events:tracing_logs", args=[event.id]),
        filename=f"event-{event.id}-tracing",
        layout=tracing_layout(request),
    )


def _event_or_404(request, event_id: int) -> SecurityEvent:
    return get_in_scope_or_404(SecurityEvent, request.scope, id=event_id)


@require_GET
def tracing_json(request, event_id: int):
    graph = trace_event(_event_or_404(request, event_id), request.scope)
    return JsonResponse(graph.as_dict())


def _render_preview(request, graph: TracingGraph, logs_url: str):
    node_id = request.GET.get("node", "")
    context = {
        "preview": graph.preview(_page_number(request), node_id or None),
        "preview_node": node_id,
        **_logs_links(logs_url),
    }
    return render(request, "events/_tracing.html#logs", context)


@require_GET
def tracing_logs(request, event_id: int):
    """One page of the log records behind an event's diagram (``?page=``, ``?node=``)."""
    graph = trace_event(_event_or_404(request, event_id), request.scope)
    return _render_preview(request, graph, reverse("events:tracing_logs", args=[event_id]))


def _events_or_404(request) -> list[SecurityEvent]:
    try:
        ids = parse_event_ids(request.GET.getlist("ids"))
    except ValueError:
        raise Http404("Not an event id.") from None
    if not ids:
        return []
    found = SecurityEvent.objects.in_scope(request.scope).filter(id__in=ids).in_bulk()
    if len(found) != len(ids):
        raise Http404("No security event matches the given query.")
    return [found[event_id] for event_id in ids]


@require_GET
def tracing_multi(request):
    """Several events on one diagram: ``?ids=1,2,3`` (or ``?ids=1&ids=2``)."""
    events = _events_or_404(request)
    if not events:
        return render(request, "events/tracing_multi.html", {"events": [], "problem": ""})
    try:
        graph = trace_events(events, request.scope)
    except TooManyEvents as exc:
        context = {"events": events, "problem": str(exc)}
        return render(request, "events/tracing_multi.html", context, status=400)
    ids = ",".join(str(event.id) for event in events)
    logs_url = f"{reverse('events:tracing_multi')}?ids={ids}&part=logs"
    if request.GET.get("part") == "logs":
        return _render_preview(request, graph, logs_url)
    context = _diagram_context(
        graph,
        logs_url=logs_url,
        filename=f"events-{ids.replace(',', '-')}",
        layout=tracing_layout(request),
    )
    context.update(events=events, problem="")
    return render(request, "events/tracing_multi.html", context)
