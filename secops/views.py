from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count
from django.http import (
    HttpResponse,
    HttpResponseForbidden,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from alerts.models import Alert
from events.models import EventStatus, SecurityEvent
from secops import health, metrics, services
from secops.enums import RiskLevel
from secops.models import Account
from secops.params import positive_int


@never_cache
@login_not_required
@require_GET
def healthz(request):
    database = health.database_state()
    broker = health.broker_state()
    status = 200 if database == "ok" else 503
    return JsonResponse(
        {
            "status": "ok" if status == 200 else "unavailable",
            "database": database,
            "broker": broker,
        },
        status=status,
    )


@never_cache
@login_not_required
@require_GET
def prometheus_metrics(request):
    """Prometheus's scrape: a bearer token or an allowed network, no login."""
    if not metrics.request_allowed(request):
        # Says nothing of what the metrics are or how to get in.
        return HttpResponseForbidden("Forbidden\n", content_type="text/plain")
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


@login_not_required
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on their own, before anyone logs in (and
    for pages without a <link rel=icon>, such as a JSON answer): point them to
    the console's icon among the static files."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


# Never a valid account id: a malformed one is reported as "not a member".
NO_SUCH_ACCOUNT = 0


@require_POST
def change_scope(request):
    account = request.POST.get("account") or None
    change = services.ScopeChange(
        view=request.POST.get("view") or None,
        account_id=None if account is None else (positive_int(account) or NO_SUCH_ACCOUNT),
        region=request.POST.get("region") or None,
    )
    errors = services.change_scope(request.user, request.session, change)
    for error in errors:
        messages.error(request, error)
    # Back to the page the switcher was on: a path of this site, nothing else
    # (not a URL name either, which redirect() would try to reverse).
    next_url = request.POST.get("next", "")
    if not next_url.startswith("/") or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("home")
    return HttpResponseRedirect(next_url)


def home(request):
    """The overview of the current scope: what is there and what needs attention."""
    scope = request.scope
    since = timezone.now() - timezone.timedelta(days=30)
    events = SecurityEvent.objects.in_scope(scope)
    status_counts = dict(
        events.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    risk_counts = dict(
        events.filter(status=EventStatus.UNHANDLED)
        .values_list("risk")
        .annotate(n=Count("id"))
        .values_list("risk", "n")
    )
    alerts = Alert.objects.in_scope(scope).filter(occurred_at__gte=since)
    source_counts = dict(
        alerts.values_list("source").annotate(n=Count("id")).values_list("source", "n")
    )
    accounts = list(Account.objects.in_scope(scope).order_by("name"))
    context = {
        "accounts": accounts,
        # The accounts whose connector settings the caller may change (linked from the table).
        "configurable_ids": {a.id for a in accounts if scope.may_configure([a.id])},
        "status_counts": [(s, status_counts.get(s.value, 0)) for s in EventStatus],
        "unhandled_by_risk": [
            (r, risk_counts.get(r.value, 0)) for r in sorted(RiskLevel, reverse=True)
        ],
        "alert_total": sum(source_counts.values()),
        "source_counts": source_counts,
        "recent_events": events.select_related("account").order_by("-last_occurred_at")[:10],
    }
    return render(request, "secops/home.html", context)
