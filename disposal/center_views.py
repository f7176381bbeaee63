"""The Disposal Center (handling policies, handling tasks, what is in force),
a task's history, Retry, Unblock and policy editing, and the simulated
cloud's page."""

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from disposal import queries, services
from disposal.center_forms import CenterFilterForm, PolicyEditForm, SimulatedFailureForm
from disposal.connector_settings import (
    SIMULATED_CLOUD_ADMINISTRATORS_ONLY,
    get_simulated_failure_for_change_or_404,
)
from disposal.errors import HandlingError
from disposal.models import HandlingPolicy, HandlingTask
from disposal.scenarios import scenarios_for
from events import feed
from secops.models import Account
from secops.pagination import page_of
from secops.params import page_wanted
from secops.scope import get_for_change_or_404, get_in_scope_or_404, require

TABS = [
    ("policies", "Handling Policies"),
    ("tasks", "Handling Tasks"),
    ("active", "Active blocks"),
]
# Filters that belong to one tab and are dropped when switching tabs.
TAB_ONLY_FILTERS = ("tab", "page", "status", "policy")
# The row layouts a task can be shown in (Retry and Unblock answer with the row).
ROW_LAYOUTS = {
    "tasks": "disposal/_center_task_row.html",
    "active": "disposal/_center_active_row.html",
}
# Which field of the edit form a handling error of edit_policy belongs to.
EDIT_ERROR_FIELDS = {"scope": "accounts", "validity_days": "validity_days"}


def entity_url(entity_type: str, digest: str) -> str | None:
    """The entity's page, once it exists; None until then."""
    try:
        return reverse("disposal:entity", args=(entity_type, digest))
    except NoReverseMatch:
        return None


def _with_entity_urls(rows, entity_of):
    for row in rows:
        row.entity_url = entity_url(*entity_of(row))
    return rows


def _task_rows(scope, tasks):
    return _with_entity_urls(
        queries.task_rows(scope, tasks),
        lambda row: (row.task.policy.entity_type, row.task.policy.entity_digest),
    )


@require_GET
def center(request):
    scope = request.scope
    tab = request.GET.get("tab", "policies")
    if tab not in dict(TABS):
        tab = "policies"
    accounts = list(Account.objects.in_scope(scope).order_by("name"))
    form = CenterFilterForm(
        request.GET,
        scenarios=scenarios_for(scope).order_by("entity_type", "position"),
        accounts=accounts,
    )
    filters = form.filters()
    context = {"tab": tab, "tabs": TABS, "form": form, "filters": filters}

    if tab == "policies":
        policies = queries.filtered_policies(scope, filters)
        page = page_of(
            policies.select_related(
                "scenario", "source_event", "source_alert", "created_by"
            ).prefetch_related("scope_accounts"),
            filters["page"],
            queries.PER_PAGE,
        )
        context["rows"] = _with_entity_urls(
            queries.policy_rows(scope, page.items),
            lambda row: (row.policy.entity_type, row.policy.entity_digest),
        )
        context["total"] = page.total.rows
    else:
        tasks = (
            queries.filtered_tasks(scope, filters)
            if tab == "tasks"
            else queries.active_tasks(scope, filters)
        )
        page = page_of(
            tasks.select_related(*queries.TASK_RELATIONS), filters["page"], queries.PER_PAGE
        )
        context["rows"] = _task_rows(scope, page.items)
        context["total"] = page.total.rows
        if tab == "tasks" and filters["policy"]:
            context["policy"] = queries.policy_in_scope(scope, filters["policy"])

    query = request.GET.copy()
    query.pop("page", None)
    tab_query = request.GET.copy()
    for name in TAB_ONLY_FILTERS:
        tab_query.pop(name, None)
    context.update(
        page=page,
        query=query.urlencode(),
        tab_query=tab_query.urlencode(),
        # Retry and Unblock come back here with the same list.
        here=request.get_full_path(),
    )
    template = "disposal/center.html"
    if request.htmx and not request.htmx.boosted:
        template += "#tab"
    return render(request, template, context)


# --- one task -------------------------------------------------------------------


def _task_or_404(request, task_id: int) -> HandlingTask:
    return get_in_scope_or_404(
        HandlingTask.objects.select_related(*queries.TASK_RELATIONS), request.scope, id=task_id
    )


def _transitions(task: HandlingTask) -> list[dict]:
    scenario = task.policy.scenario
    return [
        {
            "transition": transition,
            "from_label": queries.history_label(transition.from_status, scenario)
            if transition.from_status
            else "",
            "to_label": queries.history_label(transition.to_status, scenario),
            # Pretty-printed here and escaped by the template: a cloud's answer
            # may repeat the attacker-controlled entity value.
            "answer": json.dumps(transition.answer, indent=2, sort_keys=True, ensure_ascii=False)
            if transition.answer
            else "",
        }
        for transition in task.transitions.select_related("user")
    ]


def _render_row(request, task: HandlingTask, layout: str, *, detail: bool):
    """A task's row (a ``<tbody>``), with its history unfolded when ``detail``."""
    context = {
        "row": _task_rows(request.scope, [task])[0],
        "detail": detail,
        "transitions": _transitions(task) if detail else [],
        "here": request.POST.get("next") or reverse("disposal:center"),
    }
    return render(request, ROW_LAYOUTS.get(layout, ROW_LAYOUTS["tasks"]), context)


@require_GET
def task_detail(request, task_id: int):
    """The task's page; with ``row``, its row in that tab's layout (Details
    unfolds it, and a row in progress asks for itself until a worker is done)."""
    task = _task_or_404(request, task_id)
    layout = request.GET.get("row")
    if layout in ROW_LAYOUTS:
        return _render_row(request, task, layout, detail=request.GET.get("detail") == "1")
    context = {"row": _task_rows(request.scope, [task])[0], "transitions": _transitions(task)}
    return render(request, "disposal/task_detail.html", context)


def _back(request) -> str:
    target = request.POST.get("next", "")
    # Only a path of this site: anything else (another host, a bare word that
    # redirect() would take for a URL name) goes back to the tasks tab.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("disposal:center") + "?tab=tasks"


def _task_action(request, task_id: int, action, done: str):
    task = _task_or_404(request, task_id)
    try:
        # A viewer is refused here (PermissionDenied: 403), after the 404 above.
        task = action(request.scope, task, cause=feed.Cause.by_user(request.user))
    except services.TaskActionError as refusal:
        messages.error(request, str(refusal))
        if request.htmx:
            # htmx swaps no error response: the page reloads to show the
            # message and the task as it is now.
            response = HttpResponse(str(refusal), status=400, content_type="text/plain")
            response["HX-Refresh"] = "true"
            return response
        return HttpResponseRedirect(_back(request))
    task = _task_or_404(request, task.pk)
    if request.htmx:
        return _render_row(
            request,
            task,
            request.POST.get("row", "tasks"),
            detail=request.POST.get("detail") == "1",
        )
    messages.success(request, f"Task #{task.pk}: {done}.")
    return HttpResponseRedirect(_back(request))


@require_POST
def task_retry(request, task_id: int):
    return _task_action(request, task_id, services.retry_task, "running again")


@require_POST
def task_unblock(request, task_id: int):
    return _task_action(request, task_id, services.unblock_task, "unblocking")


# --- editing a policy -----------------------------------------------------------


@require_http_methods(["GET", "POST"])
def policy_edit(request, policy_id: int):
    scope = request.scope
    policy = get_for_change_or_404(
        HandlingPolicy.objects.select_related("scenario"),
        scope,
        queries.may_edit_policy,
        "Only analysts and administrators of every account of a policy may change it.",
        id=policy_id,
    )
    accounts = Account.objects.in_scope(scope).order_by("name")
    if request.method == "POST":
        form = PolicyEditForm(request.POST, policy=policy, accounts=accounts)
        if form.is_valid():
            try:
                services.edit_policy(
                    scope,
                    policy,
                    accounts=list(form.cleaned_data["accounts"]),
                    validity_days=form.cleaned_data.get("validity_days"),
                    cause=feed.Cause.by_user(request.user),
                )
            except HandlingError as error:
                form.add_error(EDIT_ERROR_FIELDS.get(error.field), error.message)
            else:
                messages.success(
                    request,
                    f"Policy #{policy.pk} changed. Tasks that ran with its earlier settings "
                    "can be retried to apply the change.",
                )
                return redirect(f"{reverse('disposal:center')}?tab=tasks&policy={policy.pk}")
    else:
        form = PolicyEditForm(policy=policy, accounts=accounts)
    template = "disposal/center_policy_edit.html"
    if request.htmx and not request.htmx.boosted:
        template += "#edit"
    return render(
        request,
        template,
        {"policy": policy, "form": form},
        status=400 if form.is_bound else 200,
    )


# --- the simulated cloud --------------------------------------------------------

SIMULATED_ACTIONS_PER_PAGE = 50
RECENTLY_REMOVED = 20


@require_http_methods(["GET", "POST"])
def simulated_cloud(request):
    scope = request.scope
    configurable = queries.configurable_accounts(scope)
    choosable = Account.objects.filter(id__in=[a.id for a in configurable]).order_by("name")
    form = None
    if request.method == "POST":
        require(bool(configurable), SIMULATED_CLOUD_ADMINISTRATORS_ONLY)
        form = SimulatedFailureForm(request.POST, accounts=choosable)
        if form.is_valid():
            failure = form.save()
            messages.success(
                request,
                f"The simulated cloud of {failure.account.name} now fails "
                f"{failure.target or 'every entity'} ({failure.share:.0%} of calls).",
            )
            return redirect("disposal:simulated_cloud")
    elif configurable:
        form = SimulatedFailureForm(accounts=choosable)
    context = {
        "form": form,
        "failures": list(queries.simulated_failures(scope)),
        "configurable_ids": {a.id for a in configurable},
        "instance_wide_failures": queries.instance_wide_failures(),
        "failure_percent": settings.SIMULATED_CLOUD_FAILURE_PERCENT,
        "simulated_accounts": list(queries.simulated_accounts(scope)),
        "in_force": page_of(
            queries.simulated_actions(scope, in_force=True),
            page_wanted(request.GET.get("page")),
            SIMULATED_ACTIONS_PER_PAGE,
        ),
        "removed": list(queries.simulated_actions(scope, in_force=False)[:RECENTLY_REMOVED]),
    }
    status = 400 if form is not None and form.is_bound else 200
    return render(request, "disposal/simulated_cloud.html", context, status=status)


@require_POST
def simulated_failure_remove(request, failure_id: int):
    failure = get_simulated_failure_for_change_or_404(request.scope, failure_id)
    failure.delete()
    messages.success(request, "Failure instruction removed.")
    return redirect("disposal:simulated_cloud")
