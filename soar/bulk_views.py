"""Bulk handling from the Security Event Handling list: confirm, start, progress.

The work is in ``soar.bulk``. ``bulk_start`` first answers with a
confirmation that says what will be done to how many events; the confirmed
post starts the job and sends the browser to its page, which polls its
status with htmx until the job has ended and then lists the failures (and
the runs a Run a playbook job started).
"""

from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from events.forms import EventFilterForm
from secops.pagination import page_of
from secops.params import page_wanted
from secops.scope import require
from soar import bulk
from soar.forms import ALL_MATCHING, BulkHandlingForm, InvalidEventIds, event_ids
from soar.models import BulkAction, BulkSelection

START_TEMPLATE = "soar/bulk_start.html"
JOB_TEMPLATE = "soar/bulk_job.html"
FAILURES_PER_PAGE = 50
# The runs a Run a playbook job started, listed with links on its page.
RUNS_SHOWN = 50


def _render_start(request, context: dict):
    # htmx swaps only 2xx answers: a refusal is a 200 that says so.
    template = f"{START_TEMPLATE}#panel" if request.htmx else START_TEMPLATE
    return render(request, template, context)


def _plan(request, target: str) -> bulk.BulkPlan:
    if target == ALL_MATCHING:
        # The list's filters as the bar was rendered with them (it is refreshed
        # with the list whenever a filter changes).
        form = EventFilterForm(QueryDict(request.POST.get("query", "")))
        if not form.is_valid():
            raise bulk.BulkRefused(
                "Correct the list's filters before handling all matching events."
            )
        return bulk.plan_matching(request.scope, form.cleaned_data)
    try:
        ids = event_ids(request.POST.getlist("ids"))
    except InvalidEventIds:
        raise bulk.BulkRefused("Select the events in the list.") from None
    return bulk.plan_selected(request.scope, ids)


@require_POST
def bulk_start(request):
    require(request.scope.may_handle(), "Only analysts and administrators handle events.")
    form = BulkHandlingForm(request.POST, scope=request.scope)
    context = {"form": form, "query": request.POST.get("query", "")}
    if not form.is_valid():
        return _render_start(request, {**context, "refusal": "Nothing was started."})
    handling = form.bulk_request()
    try:
        handling.check()
        plan = _plan(request, form.cleaned_data["target"])
    except bulk.BulkRefused as refusal:
        return _render_start(request, {**context, "refusal": str(refusal)})
    if request.POST.get("confirmed") != "yes":
        # The confirmation posts the selected events again (all matching ones
        # are looked up again from the filters when the job is started).
        selected = plan.selection == BulkSelection.SELECTED
        return _render_start(
            request,
            {
                **context,
                "plan": plan,
                "summary": handling.describe(len(plan.event_ids)),
                "ids": ",".join(map(str, plan.event_ids)) if selected else "",
            },
        )
    job = bulk.start_bulk_handling(
        owner=request.user, scope=request.scope, plan=plan, request=handling
    )
    url = reverse("soar:bulk_job", args=[job.id])
    if request.htmx:
        return HttpResponse(headers={"HX-Redirect": url})
    return redirect(url)


@never_cache
@require_GET
def bulk_job(request, bulk_job_id: int):
    job = bulk.get_bulk_job_for_user_or_404(request.scope, request.user, bulk_job_id)
    failed = page_of(bulk.failures(job), page_wanted(request.GET.get("page")), FAILURES_PER_PAGE)
    context = {
        "job": job,
        "summary": bulk.describe_job(job),
        "tally": bulk.tally(job),
        "failed": failed,
        "runs_shown": RUNS_SHOWN,
    }
    if job.action == BulkAction.RUN_PLAYBOOK:
        context["runs"] = bulk.started_runs(job, RUNS_SHOWN)
    template = f"{JOB_TEMPLATE}#status" if request.htmx else JOB_TEMPLATE
    return render(request, template, context)
