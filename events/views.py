from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts.models import AlertSource
from events import services
from events.forms import AggregationRuleForm
from events.grouping import GROUPING_FIELDS, describe_window
from events.models import AggregationRule
from secops import services as secops_services
from secops.enums import RiskLevel
from secops.models import Organisation
from secops.scope import get_in_scope_or_404


def _require_manager(request):
    if not secops_services.can_manage(request.user, request.scope):
        raise PermissionDenied("Only administrators can change detection rules.")


def _describe(rule: AggregationRule, disabled_ids: set[int]) -> dict:
    sources = dict(AlertSource.choices)
    return {
        "rule": rule,
        "enabled": rule.enabled and rule.id not in disabled_ids,
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
    organisation_id = scope.organisation_id
    disabled = set(
        AggregationRule.disabled_by.through.objects.filter(
            organisation_id=organisation_id
        ).values_list("aggregationrule_id", flat=True)
    )
    all_rules = AggregationRule.objects.in_scope(scope).order_by("name")
    context = {
        "predefined": [_describe(r, disabled) for r in all_rules if r.is_predefined],
        "custom": [_describe(r, disabled) for r in all_rules if not r.is_predefined],
        "can_manage": secops_services.can_manage(request.user, scope),
    }
    return render(request, "events/rules.html", context)


def rule_form(request, rule_id: int | None = None):
    _require_manager(request)
    rule = None
    if rule_id is not None:
        rule = get_in_scope_or_404(AggregationRule, request.scope, id=rule_id)
        if rule.is_predefined:
            messages.error(
                request, "Predefined rules cannot be edited; disable it and add your own."
            )
            return redirect("events:rules")
    if request.method == "POST":
        organisation = Organisation.objects.get(id=request.scope.organisation_id)
        try:
            saved = services.save_custom_rule(organisation, request.POST, rule)
        except services.RuleValidationError:
            form = AggregationRuleForm(request.POST, instance=rule)
            form.is_valid()
        else:
            messages.success(request, f"Aggregation rule “{saved.name}” saved.")
            return redirect("events:rules")
    else:
        form = AggregationRuleForm(instance=rule)
    return render(request, "events/rule_form.html", {"form": form, "rule": rule})


@require_POST
def rule_toggle(request, rule_id: int):
    _require_manager(request)
    rule = get_in_scope_or_404(AggregationRule, request.scope, id=rule_id)
    enabled = request.POST.get("enabled") == "true"
    organisation = Organisation.objects.get(id=request.scope.organisation_id)
    services.set_rule_enabled(rule, enabled, organisation)
    messages.success(request, f"“{rule.name}” {'enabled' if enabled else 'disabled'}.")
    return redirect("events:rules")


@require_POST
def rule_delete(request, rule_id: int):
    _require_manager(request)
    rule = get_in_scope_or_404(AggregationRule, request.scope, id=rule_id)
    try:
        services.delete_custom_rule(rule)
    except services.PredefinedRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{rule.name}” removed.")
    return redirect("events:rules")
