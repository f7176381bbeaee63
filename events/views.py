from urllib.parse import urlencode

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts.models import Alert, AlertSource
from events import queries, tracing_views
from events import rules as rule_services
from events.extensions import event_actions, event_sections
from events.forms import AggregationRuleForm, EventFilterForm
from events.grouping import GROUPING_FIELDS, describe_window
from events.models import AggregationRule, SecurityEvent
from secops.enums import RiskLevel
from secops.models import Organisation
from secops.pagination import Total, page_of
from secops.params import page_wanted
from secops.rules import get_rule_for_change_or_404, require_rule_manager
from secops.scope import get_in_scope_or_404

RULES_NAME = "aggregation rules"


def _describe(rule: AggregationRule) -> dict:
    sources = dict(AlertSource.choices)
    return {
        "rule": rule,
        "enabled": rule.enabled_for_organisation,
        "sources": [sources.get(s, s) for s in rule.match_sources] or ["any source"],
        "types": rule.match_types or ["any type"],
        "levels": [RiskLevel(level).label for level in rule.match_levels] or ["any level"],
        "group_by": [
            GROUPING_FIELDS[k].label if k in GROUPING_FIELDS else k for k in rule.group_by
        ],
        "window": describe_window(rule.window_seconds),
        "risk": RiskLevel(rule.risk).label if rule.risk else "highest of its alerts",
    }


def rules(request):
    scope = request.scope
    all_rules = (
        AggregationRule.objects.in_scope(scope)
        .with_enabled_for(scope.organisation_id)
        .order_by("name")
    )
    context = {
        "predefined": [_describe(r) for r in all_rules if r.is_predefined],
        "custom": [_describe(r) for r in all_rules if not r.is_predefined],
        "can_manage": scope.may_manage_organisation(),
    }
    return render(request, "events/rules.html", context)


def rule_form(request, rule_id: int | None = None):
    if rule_id is None:
        rule = None
        require_rule_manager(request.scope, RULES_NAME)
    else:
        rule = get_rule_for_change_or_404(AggregationRule, request.scope, RULES_NAME, id=rule_id)
    if rule is not None and rule.is_predefined:
        messages.error(request, "Predefined rules cannot be edited; disable it and add your own.")
        return redirect("events:rules")
    if request.method == "POST":
        form = AggregationRuleForm(request.POST, instance=rule)
        if form.is_valid():
            organisation = Organisation.objects.get(id=request.scope.organisation_id)
            saved = rule_services.save_custom_rule(organisation, form.spec, rule)
            messages.success(request, f"Aggregation rule “{saved.name}” saved.")
            return redirect("events:rules")
    else:
        form = AggregationRuleForm(instance=rule)
    return render(request, "events/rule_form.html", {"form": form, "rule": rule})


@require_POST
def rule_toggle(request, rule_id: int):
    rule = get_rule_for_change_or_404(AggregationRule, request.scope, RULES_NAME, id=rule_id)
    enabled = request.POST.get("enabled") == "true"
    organisation = Organisation.objects.get(id=request.scope.organisation_id)
    rule_services.set_rule_enabled(rule, enabled, organisation)
    messages.success(request, f"“{rule.name}” {'enabled' if enabled else 'disabled'}.")
    return redirect("events:rules")


@require_POST
def rule_delete(request, rule_id: int):
    rule = get_rule_for_change_or_404(AggregationRule, request.scope, RULES_NAME, id=rule_id)
    try:
        rule_services.delete_custom_rule(rule)
    except rule_services.PredefinedRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{rule.name}” removed.")
    return redirect("events:rules")


# --- Security Event Handling -------------------------------------------------------


def _svg_number(value: float) -> str:
    """A coordinate in SVG's number syntax.

    Given as text so the template never localises it: a decimal comma is not
    SVG, and localising the ~2,000 numbers of a 180-day chart costs tens of ms.
    """
    return f"{value:.1f}"


def _chart(days: list[dict]) -> dict:
    """Geometry of the stacked bar chart of new events per day (drawn as SVG)."""
    width, height, pad = 1000, 150, 18
    peak = max((d["high"] + d["medium"] + d["low"] for d in days), default=0) or 1
    slot = (width - 2 * pad) / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        x = pad + index * slot
        y = height - pad
        stack = []
        for risk in ("low", "medium", "high"):
            h = (height - 2 * pad) * day[risk] / peak
            if day[risk]:
                stack.append(
                    {
                        "risk": risk,
                        "x": _svg_number(x + 1),
                        "y": _svg_number(y - h),
                        "w": _svg_number(max(slot - 2, 1)),
                        "h": _svg_number(h),
                    }
                )
            y -= h
        bars.append(
            {
                "day": day,
                "stack": stack,
                "total": day["high"] + day["medium"] + day["low"],
                "x": _svg_number(x),
                "label_x": _svg_number(x + slot / 2),
            }
        )
    step = max(1, len(days) // 8)
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "peak": peak,
        "bars": bars,
        "labels": bars[::step],
    }


def event_list(request):
    form = EventFilterForm(request.GET)
    # Every usable filter applies; an unusable one is marked in the form.
    filters = form.filters()
    events = queries.filtered_events(request.scope, filters)
    tallies = queries.event_tallies(events)
    # The tallies count every matching event already: no second count for the pager.
    matching = sum(n for *_, n in tallies)
    page = queries.events_page(
        events, queries.SORTS[filters["sort"]][0], filters["page"], total=Total(matching)
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        # Details links carry the list's filters so "back" returns to the same list.
        "list_query": request.GET.urlencode(),
        "counts": queries.event_counts(tallies),
        # How many events the filters match, for the tools above the table.
        "matching": matching,
        "chart": _chart(queries.new_events_per_day(tallies, filters["start"], filters["end"])),
        "can_export": request.scope.may_handle(),
        # "Add to Whitelist" creates a policy group: administrators only.
        "can_whitelist": request.scope.may_configure(),
    }
    template = "events/event_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
        # The form is not re-rendered: its fields' messages travel out of band.
        context["oob_errors"] = True
    return render(request, template, context)


# --- event details -----------------------------------------------------------------

DETAIL_TABS = [
    ("info", "Incident Information"),
    ("timeline", "Attack Timeline"),
    ("alerts", "Alert"),
    ("tracing", "Incident Source Tracing"),
]
TIMELINE_LIMIT = 500
ALERTS_PER_PAGE = 20


def event_detail(request, event_id: int):
    event = get_in_scope_or_404(
        SecurityEvent.objects.select_related("account", "rule", "continues"),
        request.scope,
        id=event_id,
    )
    tab = request.GET.get("tab", "info")
    if tab not in dict(DETAIL_TABS):
        tab = "info"
    # The list's filters, passed along by the list's links: re-encoded, so only
    # a query string can come back out of it.
    list_query = QueryDict(request.GET.get("list", "")).urlencode()
    context = {
        "event": event,
        "tab": tab,
        "tabs": DETAIL_TABS,
        "list_query": list_query,
        "can_whitelist": request.scope.may_configure(),
        "actions": event_actions.collect(request.scope, event),
    }
    alerts = Alert.objects.filter(event_links__event=event)
    if tab == "info":
        context.update(
            history=event.status_changes.select_related("changed_by"),
            assets=event.affected_assets.order_by("name"),
            why=queries.grouping_explanation(event),
            continuations=event.continuations.order_by("id").only("id", "name"),
            sections=event_sections.collect(request, event),
        )
    elif tab == "timeline":
        timeline = list(
            alerts.order_by("occurred_at", "id").only(
                "id", "name", "level", "occurred_at", "source", "tactic", "technique", "type"
            )[: TIMELINE_LIMIT + 1]
        )
        stages = queries.timeline_stages(timeline[:TIMELINE_LIMIT])
        context.update(
            stages=stages,
            # The legend of the stage numbers, marking the stages this event reached.
            stage_names=queries.ATTACK_STAGES,
            present_stages={stage["tactic"] for stage in stages},
            truncated=len(timeline) > TIMELINE_LIMIT,
            limit=TIMELINE_LIMIT,
        )
    elif tab == "alerts":
        context["page"] = page_of(
            alerts.select_related("asset").order_by("-occurred_at", "-id"),
            page_wanted(request.GET.get("page")),
            ALERTS_PER_PAGE,
        )
        # The pager's links stay on this tab and keep the way back to the list.
        context["pager_query"] = urlencode(
            {"tab": "alerts", **({"list": list_query} if list_query else {})}
        )
    elif tab == "tracing":
        context.update(tracing_views.tab_context(request, event))
    template = "events/event_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#tab"
    return render(request, template, context)
