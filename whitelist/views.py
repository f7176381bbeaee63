"""Incident Whitelist Settings: scenarios, their policy groups, the group
editor (also opened with a draft by pages of higher apps) and its preview."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from secops.extensions import Link
from whitelist import forms, services
from whitelist.extensions import origins_of
from whitelist.matching import OPERATORS_BY_KIND
from whitelist.models import Operator, RuleGroup
from whitelist.scenarios import OBJECTS, SCENARIOS, scenario

OTHER_SCENARIO = "__other__"


def _rights(request) -> tuple[bool, bool]:
    """(may edit groups, may make or change global groups)."""
    may_edit = request.scope.may_configure()
    return may_edit, may_edit and request.scope.may_manage_organisation()


def _require_editor(request) -> bool:
    may_edit, allow_global = _rights(request)
    if not may_edit:
        raise PermissionDenied("Only administrators can change whitelist rules.")
    return allow_global


def _scenario_or_404(key: str):
    if not services.SCENARIO_KEY.match(key):
        raise Http404("No such scenario.")
    return scenario(key)


def _describe_all(groups, scope, now) -> list[dict]:
    groups = list(groups)
    origins = origins_of([g.id for g in groups])
    return [_describe(g, scope, now, origins.get(g.id)) for g in groups]


def _describe(group: RuleGroup, scope, now, origin=None) -> dict:
    in_scope = [a for a in group.accounts.all() if a.id in scope.account_ids]
    hidden = len(group.accounts.all()) - len(in_scope)
    state = "Enabled" if group.enabled else "Disabled"
    if group.is_expired(now):
        state = "Expired"
    return {
        "group": group,
        "origin": origin,
        "state": state,
        "conditions": [
            {
                "object": OBJECTS[c.object].label if c.object in OBJECTS else c.object,
                "operator": Operator(c.operator).label
                if c.operator in Operator.values
                else c.operator,
                "value": c.value,
            }
            for c in group.conditions.all()
        ],
        "accounts": in_scope,
        "hidden_accounts": hidden,
    }


def whitelist_settings(request):
    form = forms.ScenarioFilterForm(request.GET)
    chosen = form.filters()["scenario"]
    summary = services.scenario_summary(request.scope)
    if chosen:
        summary = [row for row in summary if row["scenario"].key == chosen]
    may_edit, _ = _rights(request)
    return render(
        request,
        "whitelist/settings.html",
        {
            "summary": summary,
            "scenarios": list(SCENARIOS.values()),
            "chosen": chosen,
            "form": form,
            "may_edit": may_edit,
            "recent": _describe_all(
                services.groups_in_scope(request.scope).order_by("-updated_at")[:10],
                request.scope,
                timezone.now(),
            ),
        },
    )


def scenario_groups(request, key: str):
    chosen = _scenario_or_404(key)
    now = timezone.now()
    groups = services.groups_in_scope(request.scope).filter(scenario=key)
    may_edit, allow_global = _rights(request)
    return render(
        request,
        "whitelist/scenario.html",
        {
            "scenario": chosen,
            "objects": [OBJECTS[k] for k in chosen.objects],
            "entries": _describe_all(groups, request.scope, now),
            "may_edit": may_edit,
            "allow_global": allow_global,
        },
    )


@dataclass(frozen=True)
class DraftOrigin:
    """Where a new group's draft comes from, when a page of an app above
    whitelist opens the editor (events' "Add to Whitelist")."""

    title: str
    back_url: str
    # The thing the draft was made from; its description follows the link.
    source: Link
    draft: services.GroupSpec
    # Values seen in the source, per object label, offered beside the form.
    suggestions: dict
    suggestions_heading: str
    # Called with the saved group in the save's transaction.
    on_saved: Callable[[RuleGroup], None]


def _editor_context(request, spec, rows, errors, *, group=None, origin=None, allow_global):
    scenario_keys = list(SCENARIOS)
    if spec.scenario and spec.scenario not in SCENARIOS:
        scenario_keys.append(spec.scenario)
    return {
        "spec": spec,
        "rows": rows,
        "errors": errors,
        "group": group,
        "origin": origin,
        "scenario_choices": [(k, scenario(k).label) for k in scenario_keys],
        "accounts": services.accounts_for_editor(request.scope),
        "allow_global": allow_global,
        "operators": Operator.choices,
        "objects": [(o.key, o.label) for o in OBJECTS.values()],
        "catalogue": {
            "scenarios": {k: list(scenario(k).objects) for k in scenario_keys},
            "all_objects": list(OBJECTS),
            "kinds": {o.key: o.kind for o in OBJECTS.values()},
            "operators": {kind: list(ops) for kind, ops in OPERATORS_BY_KIND.items()},
        },
        "preview_url": reverse("whitelist:preview"),
    }


def _chosen_scenario(post) -> str:
    value = post.get("scenario", "")
    if value == OTHER_SCENARIO:
        return post.get("scenario_other", "").strip().lower()
    return value


def group_form(request, group_id: int | None = None):
    if group_id is None:
        return group_editor(request)
    return group_editor(
        request, group=services.get_group_for_change_or_404(request.scope, group_id)
    )


def group_editor(request, *, group: RuleGroup | None = None, origin: DraftOrigin | None = None):
    """The policy group editor: a new group, ``group`` to edit, or a draft from ``origin``."""
    allow_global = _require_editor(request)

    if request.method == "POST":
        post = request.POST.copy()
        post["scenario"] = _chosen_scenario(request.POST)
        parsed = forms.parse(post, account_ids_in_scope=request.scope.account_ids)
        errors = dict(parsed.errors)
        if not errors:
            try:
                with transaction.atomic():
                    saved = services.save_group(
                        parsed.spec,
                        request.scope,
                        allow_global=allow_global,
                        group=group,
                        user=request.user,
                    )
                    if origin is not None:
                        origin.on_saved(saved)
            except services.WhitelistPermissionError as exc:
                raise PermissionDenied(str(exc)) from None
            except services.GroupValidationError as exc:
                errors = exc.errors
            else:
                messages.success(
                    request,
                    f"Policy group “{saved.name}” saved. New alerts it matches are stored as "
                    "whitelisted and kept out of security events.",
                )
                return redirect("whitelist:scenario", key=saved.scenario)
        rows = parsed.rows
        rest = forms.attach_errors(rows, errors)
        context = _editor_context(
            request, parsed.spec, rows, rest, group=group, origin=origin, allow_global=allow_global
        )
        return render(request, "whitelist/group_form.html", context)

    if group is not None:
        try:
            services.check_may_change(group, request.scope, allow_global=allow_global)
        except services.WhitelistPermissionError as exc:
            raise PermissionDenied(str(exc)) from None
        spec = services.spec_of(group)
    elif origin is not None:
        spec = origin.draft
    else:
        key = request.GET.get("scenario", "")
        spec = services.GroupSpec(
            name="",
            scenario=key if services.SCENARIO_KEY.match(key) else "",
            conditions=[],
            is_global=allow_global,
            account_ids=[] if allow_global else sorted(request.scope.account_ids),
        )
    rows = forms.rows_of(spec) or [forms.ConditionRow()]
    context = _editor_context(
        request, spec, rows, {}, group=group, origin=origin, allow_global=allow_global
    )
    return render(request, "whitelist/group_form.html", context)


@require_POST
def preview(request):
    post = request.POST.copy()
    post["scenario"] = _chosen_scenario(request.POST)
    parsed = forms.parse(post, account_ids_in_scope=request.scope.account_ids)
    result = None
    if not services.SCENARIO_KEY.match(parsed.spec.scenario):
        message = "Choose a scenario to see what the group would match."
    elif not parsed.spec.is_global and not parsed.spec.account_ids:
        message = "Choose at least one account."
    else:
        result = services.preview(parsed.spec, request.scope)
        message = result.error
    return render(
        request,
        "whitelist/_preview.html",
        {"result": result, "message": message, "window_days": services.PREVIEW_WINDOW.days},
    )


@require_POST
def group_toggle(request, group_id: int):
    group = services.get_group_for_change_or_404(request.scope, group_id)
    allow_global = request.scope.may_manage_organisation()
    enabled = request.POST.get("enabled") == "on"
    try:
        services.set_group_enabled(group, enabled, request.scope, allow_global=allow_global)
    except services.WhitelistPermissionError as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(
        request, f"Policy group “{group.name}” {'enabled' if enabled else 'disabled'}."
    )
    return redirect("whitelist:scenario", key=group.scenario)


@require_POST
def group_delete(request, group_id: int):
    group = services.get_group_for_change_or_404(request.scope, group_id)
    allow_global = request.scope.may_manage_organisation()
    key, name = group.scenario, group.name
    try:
        services.delete_group(group, request.scope, allow_global=allow_global)
    except services.WhitelistPermissionError as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"Policy group “{name}” deleted.")
    return redirect("whitelist:scenario", key=key)
