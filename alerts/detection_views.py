"""The Sigma part of the Detection Rules page: the rule list with each rule's
last run, the editor (upload or edit YAML, every problem shown at its line),
the dry run over the last 24 h, enable/disable and delete.

Predefined rules are addressed by their key, custom rules by id; both are
read through ``in_scope`` so another organisation's custom rule is a 404.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts import detection_dryrun, detection_rules
from alerts.detection_models import DetectionRule, SigmaLevel
from alerts.models import LogType
from alerts.sigma.compiled_rule import Problem, RuleProblems
from alerts.sigma.logsources import LISTS, LOG_SOURCES
from secops.models import Organisation
from secops.rules import require_rule_manager
from secops.scope import get_in_scope_or_404

MAX_UPLOAD_BYTES = 100_000


def _require_manager(request):
    # Checking or dry running a rule is part of writing one.
    require_rule_manager(request.scope, "detection rules")


def _organisation(request) -> Organisation:
    return Organisation.objects.get(id=request.scope.organisation_id)


def _custom_rule(request, sigma_id: int) -> DetectionRule:
    return get_in_scope_or_404(DetectionRule.objects.custom(), request.scope, id=sigma_id)


def _predefined_rule(request, key: str) -> DetectionRule:
    rules = DetectionRule.objects.predefined().with_enabled_for(request.scope.organisation_id)
    return get_in_scope_or_404(rules, request.scope, key=key)


def _entries(rules, runs) -> list[dict]:
    return [
        {
            "rule": rule,
            "enabled": rule.enabled_for_organisation,
            "risk": rule.risk,
            "level": SigmaLevel(rule.level).label,
            "log_types": [LogType(t).label for t in rule.log_types if t in LogType.values],
            "run": runs.get(rule.id),
        }
        for rule in rules
    ]


def rules(request):
    all_rules = list(detection_rules.rules_in_scope(request.scope))
    runs = detection_rules.rule_runs(request.scope, all_rules)
    context = {
        "custom": _entries([r for r in all_rules if not r.is_predefined], runs),
        "predefined": _entries([r for r in all_rules if r.is_predefined], runs),
        "can_manage": request.scope.may_manage_organisation(),
    }
    return render(request, "alerts/detection/rules.html", context)


def _editor_context(
    request, *, rule=None, yaml_text="", alert_type="", enabled=True, problems=None
):
    return {
        "rule": rule,
        "yaml_text": yaml_text,
        "yaml_lines": _annotated_lines(yaml_text, problems or []),
        "alert_type": alert_type,
        "enabled": enabled,
        "problems": problems,
        "general_problems": [p for p in problems or [] if p.line is None],
        "known_alert_types": detection_rules.KNOWN_ALERT_TYPES,
        "log_sources": LOG_SOURCES.values(),
        "lists": LISTS,
        "can_manage": request.scope.may_manage_organisation(),
        "run": detection_rules.rule_runs(request.scope, [rule]).get(rule.id) if rule else None,
    }


def _annotated_lines(yaml_text: str, problems) -> list[dict]:
    """The YAML line by line, each with the problems about it."""
    lines = yaml_text.splitlines() or [""]
    by_line: dict[int, list[str]] = {}
    for problem in problems:
        if problem.line is not None:
            number = min(max(problem.line, 1), len(lines))
            by_line.setdefault(number, []).append(problem.message)
    return [
        {"number": n, "text": text, "problems": by_line.get(n, [])}
        for n, text in enumerate(lines, start=1)
    ]


def _posted_yaml(request) -> str:
    """The YAML of the editor, or of the uploaded file when one was chosen."""
    upload = request.FILES.get("upload")
    if upload is None:
        return request.POST.get("yaml", "")
    if upload.size > MAX_UPLOAD_BYTES:
        raise RuleProblems(
            [Problem(f"The uploaded file is larger than {MAX_UPLOAD_BYTES // 1000} kB.")]
        )
    return upload.read().decode("utf-8", errors="replace")


def rule_form(request, sigma_id: int | None = None):
    """New custom rule, or edit one: GET shows the editor, POST saves or shows
    every problem at its line."""
    rule = _custom_rule(request, sigma_id) if sigma_id is not None else None
    _require_manager(request)
    if request.method != "POST":
        context = _editor_context(
            request,
            rule=rule,
            yaml_text=rule.yaml if rule else "",
            alert_type=rule.alert_type if rule else "",
            enabled=rule.enabled if rule else True,
        )
        return render(request, "alerts/detection/rule_form.html", context)

    yaml_text = request.POST.get("yaml", "")
    alert_type = request.POST.get("alert_type", "").strip()
    enabled = request.POST.get("enabled") == "on"
    try:
        yaml_text = _posted_yaml(request)
        spec = detection_rules.DetectionRuleSpec(yaml_text, alert_type, enabled)
        saved = detection_rules.save_custom_rule(
            _organisation(request), spec, user=request.user, rule=rule
        )
    except (RuleProblems, detection_rules.InvalidDetectionRule) as exc:
        context = _editor_context(
            request,
            rule=rule,
            yaml_text=yaml_text,
            alert_type=alert_type,
            enabled=enabled,
            problems=exc.problems,
        )
        return render(request, "alerts/detection/rule_form.html", context, status=422)
    messages.success(request, f"Detection rule “{saved.title}” saved.")
    return redirect("detection:rule_edit", sigma_id=saved.id)


def predefined(request, key: str):
    rule = _predefined_rule(request, key)
    context = _editor_context(
        request, rule=rule, yaml_text=rule.yaml, alert_type=rule.alert_type, enabled=rule.enabled
    )
    context["enabled"] = rule.enabled_for_organisation
    return render(request, "alerts/detection/predefined.html", context)


@require_POST
def check(request):
    """The editor's Check button: the problems at their lines, or what the rule is."""
    _require_manager(request)
    yaml_text = request.POST.get("yaml", "")
    try:
        compiled = detection_rules.check_rule(yaml_text, request.POST.get("alert_type", ""))
    except RuleProblems as exc:
        context = _editor_context(request, yaml_text=yaml_text, problems=exc.problems)
        return render(request, "alerts/detection/_problems.html", context)
    context = _editor_context(request, yaml_text=yaml_text, problems=[])
    context["compiled"] = compiled
    context["risk"] = SigmaLevel(compiled.level).risk()
    return render(request, "alerts/detection/_problems.html", context)


@require_POST
def dry_run(request):
    """The editor's Dry run button: how often the rule would have matched in 24 h."""
    _require_manager(request)
    yaml_text = request.POST.get("yaml", "")
    try:
        result = detection_dryrun.dry_run(yaml_text, request.scope)
    except RuleProblems as exc:
        context = _editor_context(request, yaml_text=yaml_text, problems=exc.problems)
        return render(request, "alerts/detection/_problems.html", context)
    return render(request, "alerts/detection/_dry_run.html", {"result": result})


def _toggle(request, rule: DetectionRule, target: str):
    _require_manager(request)
    enabled = request.POST.get("enabled") == "true"
    detection_rules.set_rule_enabled(rule, enabled, _organisation(request))
    messages.success(request, f"“{rule.title}” {'enabled' if enabled else 'disabled'}.")
    return redirect(target)


@require_POST
def rule_toggle(request, sigma_id: int):
    return _toggle(request, _custom_rule(request, sigma_id), "detection:rules")


@require_POST
def predefined_toggle(request, key: str):
    return _toggle(request, _predefined_rule(request, key), "detection:rules")


@require_POST
def rule_delete(request, sigma_id: int):
    rule = _custom_rule(request, sigma_id)
    _require_manager(request)
    detection_rules.delete_custom_rule(rule)
    messages.success(request, f"“{rule.title}” removed.")
    return redirect("detection:rules")
