"""The SOAR pages: playbooks and their step editor, automated response rules
with their dry run and the kill switch, runs, and pending approvals.

Playbooks and rules belong to the organisation: everyone in it reads them,
global administrators change them. Runs are read and acted on by account.
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from disposal.models import Channel
from disposal.scenarios import scenarios_for
from events.models import EventStatus, SecurityEvent
from secops.pagination import page_of
from secops.params import positive_int
from secops.scope import get_in_scope_or_404, require
from soar import automation, runs
from soar.facts import describe_conditions
from soar.forms import (
    PlaybookForm,
    RuleForm,
    RunFilterForm,
    StepRowsInvalid,
    condition_help,
    empty_row,
    place_step_error,
    step_rows_from_post,
    step_rows_from_steps,
    steps_from_rows,
)
from soar.models import (
    AutomationRule,
    FiringOutcome,
    Playbook,
    PlaybookRun,
    RunStatus,
    StepKind,
)
from soar.playbooks import (
    ENTITY_SELECTIONS,
    MAX_STEPS,
    SCOPES,
    PlaybookError,
    PlaybookSpec,
    save_playbook,
)

ORGANISATION_ONLY = "Only global administrators change playbooks and automated response rules."
RERUNNABLE = (RunStatus.FAILED, RunStatus.REJECTED, RunStatus.STOPPED)
RUNS_PER_PAGE = 50
FIRINGS_DAYS = 7


def _page(request, template: str, section: str, context: dict):
    pending = (
        PlaybookRun.objects.in_scope(request.scope)
        .filter(status=RunStatus.AWAITING_APPROVAL)
        .count()
    )
    context = {
        "section": section,
        "pending_count": pending,
        "may_manage": request.scope.may_manage_organisation(),
        **context,
    }
    return render(request, template, context)


def _require_manager(request) -> None:
    require(request.scope.may_manage_organisation(), ORGANISATION_ONLY)


def _playbooks(request):
    return Playbook.objects.in_scope(request.scope).select_related("current_version")


def _summary(steps: list[dict]) -> str:
    return " → ".join(step.get("name") or StepKind(step["kind"]).label for step in steps)


# --- playbooks -------------------------------------------------------------------


@require_GET
def playbooks(request):
    rows = [
        {
            "playbook": p,
            "steps": _summary(p.current_version.steps) if p.current_version else "",
        }
        for p in _playbooks(request)
    ]
    return _page(request, "soar/playbooks.html", "playbooks", {"rows": rows})


@require_GET
def playbook(request, playbook_id: int):
    item = get_in_scope_or_404(_playbooks(request), request.scope, id=playbook_id)
    versions = list(item.versions.all())
    shown = item.current_version
    wanted = positive_int(request.GET.get("version", ""))
    if wanted:
        shown = next((v for v in versions if v.number == wanted), None)
        if shown is None:
            raise Http404("No such version.")
    recent = (
        PlaybookRun.objects.in_scope(request.scope)
        .filter(playbook=item)
        .select_related("version", "event")[:20]
    )
    return _page(
        request,
        "soar/playbook.html",
        "playbooks",
        {
            "playbook": item,
            "versions": versions,
            "shown": shown,
            "recent": recent,
            "may_run": request.scope.may_handle(),
        },
    )


@require_POST
def playbook_run(request, playbook_id: int):
    item = get_in_scope_or_404(_playbooks(request), request.scope, id=playbook_id)
    require(request.scope.may_handle(), "Only analysts and administrators run playbooks.")
    event_id = positive_int(request.POST.get("event", "").strip())
    event = SecurityEvent.objects.in_scope(request.scope).filter(id=event_id).first()
    if event is None:
        messages.error(request, "No security event with that id in the current view.")
        return redirect("soar:playbook", item.pk)
    try:
        with transaction.atomic():
            run = runs.start_run_by_user(request.scope, item, event, user=request.user)
    except runs.RunError as exc:
        messages.error(request, str(exc))
        return redirect("soar:playbook", item.pk)
    return redirect("soar:run", run.pk)


def _editor_context(request, form, rows, error=""):
    return {
        "form": form,
        "rows": rows,
        "error": error,
        "kinds": StepKind.choices,
        "scenarios": scenarios_for(request.scope).order_by("name"),
        "entity_choices": ENTITY_SELECTIONS,
        "scope_choices": SCOPES,
        "statuses": EventStatus.manually_settable(),
        "channels": Channel.choices,
        "fields_help": condition_help(),
    }


def playbook_form(request, playbook_id: int | None = None):
    item = None
    if playbook_id is not None:
        item = get_in_scope_or_404(_playbooks(request), request.scope, id=playbook_id)
    _require_manager(request)
    if item is not None and item.built_in:
        raise PermissionDenied("Built-in playbooks cannot be changed.")
    if request.method != "POST":
        steps = item.current_version.steps if item and item.current_version else []
        form = PlaybookForm(
            initial={"name": item.name, "description": item.description} if item else None
        )
        rows = step_rows_from_steps(steps)
        context = _editor_context(request, form, rows)
        return _page(request, "soar/playbook_form.html", "playbooks", {**context, "playbook": item})
    form = PlaybookForm(request.POST)
    rows = step_rows_from_post(request.POST, MAX_STEPS + 1)
    error = ""
    if form.is_valid():
        try:
            steps, ordered = steps_from_rows(rows)
            spec = PlaybookSpec(form.cleaned_data["name"], form.cleaned_data["description"], steps)
            saved = save_playbook(request.scope, spec, user=request.user, playbook=item)
        except StepRowsInvalid:
            error = "Correct the steps marked below."
        except PlaybookError as exc:
            if exc.field in ("name", "description"):
                form.add_error(exc.field, exc.message)
            elif not place_step_error(exc.field, exc.message, ordered):
                error = exc.message
            else:
                error = "Correct the steps marked below."
        else:
            messages.success(request, f"Saved {saved.name}.")
            return redirect("soar:playbook", saved.pk)
    if not rows or rows[-1]["values"]["kind"]:
        rows.append(empty_row(len(rows) + 1))
    context = _editor_context(request, form, rows, error)
    return _page(request, "soar/playbook_form.html", "playbooks", {**context, "playbook": item})


# --- automated response rules ----------------------------------------------------


def _rules(request):
    return AutomationRule.objects.filter(organisation_id=request.scope.organisation_id)


def _rule_or_404(request, rule_id: int) -> AutomationRule:
    rule = _rules(request).filter(id=rule_id).first()
    if rule is None:
        raise Http404("No automated response rule matches the given query.")
    return rule


@require_GET
def rules(request):
    since = timezone.now() - timedelta(days=FIRINGS_DAYS)
    counts = {
        outcome: Count("firings", filter=Q(firings__outcome=outcome, firings__at__gte=since))
        for outcome in FiringOutcome.values
    }
    listed = list(
        _rules(request)
        .select_related("playbook")
        .annotate(**{f"n_{k}": v for k, v in counts.items()})
        .order_by("position", "id")
    )
    for rule in listed:
        rule.conditions_text = describe_conditions(rule.conditions)
    return _page(
        request,
        "soar/rules.html",
        "rules",
        {
            "rules": listed,
            "paused": automation.is_paused(request.scope.organisation_id),
            "firings_days": FIRINGS_DAYS,
            "now": timezone.now(),
        },
    )


def rule_form(request, automation_rule_id: int | None = None):
    rule = _rule_or_404(request, automation_rule_id) if automation_rule_id is not None else None
    _require_manager(request)
    playbooks_list = list(_playbooks(request))
    if request.method != "POST":
        initial = RuleForm.initial_of(rule) if rule else None
        form = RuleForm(initial=initial, playbooks=playbooks_list)
    else:
        form = RuleForm(request.POST, playbooks=playbooks_list)
        if form.is_valid():
            try:
                rule = automation.save_rule(
                    request.scope, form.rule_data(), rule=rule, user=request.user
                )
            except automation.RuleInvalid as exc:
                form.add_rule_errors(exc.errors)
            else:
                messages.success(request, f"Saved the rule {rule.name}.")
                return redirect("soar:rules")
    return _page(
        request,
        "soar/rule_form.html",
        "rules",
        {"form": form, "rule": rule, "fields_help": condition_help()},
    )


@require_POST
def rule_delete(request, automation_rule_id: int):
    rule = _rule_or_404(request, automation_rule_id)
    _require_manager(request)
    automation.delete_rule(rule)
    messages.success(request, f"Deleted the rule {rule.name}.")
    return redirect("soar:rules")


@require_POST
def rule_dry_run(request, automation_rule_id: int):
    rule = _rule_or_404(request, automation_rule_id)
    # The dry run looks at every account of the organisation.
    _require_manager(request)
    result = automation.dry_run(rule)
    template = "soar/_dry_run.html"
    return render(request, template, {"rule": rule, "result": result})


@require_POST
def automation_pause(request):
    _require_manager(request)
    paused = request.POST.get("paused") == "yes"
    automation.set_paused(request.scope, paused, user=request.user)
    messages.success(
        request, "Automation is paused: no rule acts." if paused else "Automation resumed."
    )
    return redirect("soar:rules")


# --- runs --------------------------------------------------------------------------


_RUN_RELATIONS = ("playbook", "version", "event", "rule")


def _runs(request):
    return PlaybookRun.objects.in_scope(request.scope).select_related(*_RUN_RELATIONS)


def _run_or_404(request, run_id: int) -> PlaybookRun:
    # Given the unscoped rows, so that a run of another view can be offered there.
    runs = PlaybookRun.objects.select_related(*_RUN_RELATIONS)
    return get_in_scope_or_404(runs, request.scope, id=run_id)


@require_GET
def run_list(request):
    form = RunFilterForm(request.GET)
    filters = form.filters()
    listed = _runs(request)
    if filters["status"]:
        listed = listed.filter(status=filters["status"])
    page = page_of(listed, filters["page"], RUNS_PER_PAGE)
    query = request.GET.copy()
    query.pop("page", None)
    return _page(
        request,
        "soar/runs.html",
        "runs",
        {
            "form": form,
            "runs": page.items,
            "page": page,
            "query": query.urlencode(),
            "status": filters["status"],
            "statuses": RunStatus.choices,
        },
    )


@require_GET
def run_detail(request, run_id: int):
    run = _run_or_404(request, run_id)
    steps = list(run.steps.all())
    return _page(
        request,
        "soar/run.html",
        "runs",
        {
            "run": run,
            "steps": steps,
            "may_rerun": run.status in RERUNNABLE and request.scope.may_handle([run.account_id]),
            "may_approve": run.status == RunStatus.AWAITING_APPROVAL
            and runs.may_approve(request.scope, run),
        },
    )


@require_POST
def run_rerun(request, run_id: int):
    run = _run_or_404(request, run_id)
    try:
        again = runs.rerun(request.scope, run, user=request.user)
    except runs.RunError as exc:
        messages.error(request, str(exc))
        return redirect("soar:run", run.pk)
    return redirect("soar:run", again.pk)


def _decide(request, run_id: int, approve: bool):
    run = _run_or_404(request, run_id)
    try:
        runs.decide(request.scope, run, approve=approve, user=request.user)
    except runs.RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run {run.pk} {'approved' if approve else 'rejected'}.")
    # Decided on the run's own page (reached from the approval request's link):
    # stay there to see the run go on; from the list, back to the list.
    if request.POST.get("from") == "run":
        return redirect("soar:run", run.pk)
    return redirect("soar:approvals")


@require_POST
def run_approve(request, run_id: int):
    return _decide(request, run_id, True)


@require_POST
def run_reject(request, run_id: int):
    return _decide(request, run_id, False)


@require_GET
def approvals(request):
    waiting = list(
        _runs(request)
        .filter(status=RunStatus.AWAITING_APPROVAL)
        .order_by("approval_deadline", "id")
    )
    for run in waiting:
        run.approvable = runs.may_approve(request.scope, run)
    return _page(request, "soar/approvals.html", "approvals", {"runs": waiting})
