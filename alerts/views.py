import json
from datetime import timedelta

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alerts import services
from alerts.extensions import attach_whitelist_notes
from alerts.forms import AlertFilterForm, ApiKeyForm
from alerts.models import Alert, IngestionRejection
from secops import services as secops_services
from secops.models import Account, ApiKey
from secops.pagination import page_of
from secops.scope import get_in_scope_or_404, require

STATS_DAYS = services.ARRIVAL_DAYS


def data_sources(request, new_key=None):
    scope = request.scope
    days, rows = services.arrivals(scope, STATS_DAYS)
    context = {
        "days": days,
        "arrivals": rows,
        "rejections": IngestionRejection.objects.in_scope(scope)
        .select_related("account")
        .order_by("-created_at", "id")[:50],
        "api_keys": ApiKey.objects.in_scope(scope).select_related("account", "created_by"),
        "can_manage": scope.may_configure(),
        "new_key": new_key,
    }
    return render(request, "alerts/data_sources.html", context)


@require_POST
def create_api_key(request):
    scope = request.scope
    require(scope.may_configure(), "Only administrators can create API keys.")
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        for error in form.errors["name"]:
            messages.error(request, f"API key name: {error}")
        return redirect("alerts:data_sources")
    account = None if scope.is_global else Account.objects.in_scope(scope).get(id=scope.account_id)
    api_key, secret = secops_services.create_api_key_in_scope(
        scope, account=account, name=form.cleaned_data["name"], created_by=request.user
    )
    messages.success(request, f"API key {api_key.name} created.")
    return data_sources(request, new_key=secret)


@require_POST
def revoke_api_key(request, key_id: int):
    api_key = secops_services.get_api_key_for_change_or_404(request.scope, key_id)
    secops_services.revoke_api_key(api_key)
    messages.success(request, f"API key {api_key.name} ({api_key.prefix}…) revoked.")
    return redirect("alerts:data_sources")


def alert_detail(request, alert_id: int):
    alert = get_in_scope_or_404(
        Alert.objects.select_related("account", "asset"), request.scope, id=alert_id
    )
    attach_whitelist_notes([alert])
    context = {
        "alert": alert,
        "entity_links": alert.entity_links.select_related("entity").order_by("role", "id"),
        "exceptions": services.exception_rows(alert.exceptions),
        # Pretty-printed here, escaped by the template: payloads are attacker-controlled.
        "raw": json.dumps(alert.raw, indent=2, ensure_ascii=False, sort_keys=True),
    }
    template = "alerts/_alert_detail.html" if request.htmx else "alerts/alert_detail.html"
    return render(request, template, context)


ALERTS_PER_PAGE = 30
LIVE_LIMIT = 50
LIVE_LOOKBACK = timedelta(seconds=30)


def alert_list(request):
    """Every alert in scope, newest first; page 1 polls for new arrivals."""
    form = AlertFilterForm(request.GET)
    # Every usable filter applies; an unusable one is marked in the form.
    filters = form.filters()
    alerts = services.filtered_alerts(request.scope, filters).select_related("account", "asset")
    query = request.GET.copy()
    for key in ("page", "after"):
        query.pop(key, None)
    if filters.get("after") is not None and request.htmx:
        # Live update: alerts newer than the newest the page shows, and, since
        # ids are taken at insert but become visible at commit, any received in
        # the last moments; the browser drops rows it already shows.
        recent = timezone.now() - LIVE_LOOKBACK
        fresh = attach_whitelist_notes(
            alerts.filter(Q(id__gt=filters["after"]) | Q(received_at__gte=recent)).order_by("-id")[
                :LIVE_LIMIT
            ]
        )
        newest = max([a.id for a in fresh], default=filters["after"])
        return render(
            request,
            "alerts/alert_list.html#live",
            {"fresh": fresh, "newest": newest, "query": query.urlencode()},
        )
    # The newest id first: an alert stored while the page is read is then
    # either on the page or in the next poll.
    newest = (
        Alert.objects.in_scope(request.scope).order_by("-id").values_list("id", flat=True).first()
    )
    page = page_of(alerts.order_by("-occurred_at", "-id"), filters["page"], ALERTS_PER_PAGE)
    page.items = attach_whitelist_notes(page.items)
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "newest": newest or 0,
    }
    template = "alerts/alert_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
        # The form is not re-rendered: its fields' messages travel out of band.
        context["oob_errors"] = True
    return render(request, template, context)
