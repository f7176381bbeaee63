"""The Sigma part of the Detection Rules page: the rule list with each rule's
last run, the editor (upload or edit YAML, every problem shown at its line),
the dry run over the last 24 h, enable/disable and delete.

Predefined rules are addressed by their key, custom rules by id; both are
read through ``in_scope`` so another organisation's custom rule is a 404.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts import detection
from alerts.detection_models import DetectionRule, DetectionRuleStats, SigmaLevel
from alerts.models import LogType
from alerts.sigma.compiler import Problem, RuleProblems
from alerts.sigma.logsources import LISTS, LOG_SOURCES
from secops import services as secops_services
from secops.models import Organisation
from secops.scope import get_in_scope_or_404

MAX_UPLOAD_BYTES = 100_000


def _require_manager(request):
    """Detection rules apply to the whole organisation, and checking or dry
    running a rule is part of writing one."""
    if not secops_services.can_manage_organisation(request.user):
        raise PermissionDenied("Only global administrators can change detection rules.")


def _organisation(request) -> Organisation:
    return Organisation.objects.get(id=request.scope.organisation_id)


def _custom_rule(request, sigma_id: int) -> DetectionRule:
    return get_in_scope_or_404(
        DetectionRule.objects.filter(organisation__isnull=False), request.scope, id=sigma_id
    )


def _predefined_rule(request, key: str) -> DetectionRule:
    return get_in_scope_or_404(DetectionRule.objects.predefined(), request.scope, key=key)


def _run_summaries(scope, rules) -> dict[int, dict]:
    """Per rule, its last run over the accounts of the scope."""
    summaries: dict[int, dict] = {}
    rows = DetectionRuleStats.objects.in_scope(scope).filter(rule__in=rules).order_by("id")
    for stats in rows:
        summary = summaries.setdefault(
            stats.rule_id,
            {
                "last_run_at": None,
                "seconds": 0.0,
                "records": 0,
                "hits": 0,
                "total_hits": 0,
                "errors": 0,
                "last_error": "",
                "last_error_at": None,
            },
        )
        if stats.last_run_at and (
            summary["last_run_at"] is None or stats.last_run_at > summary["last_run_at"]
        ):
            summary["last_run_at"] = stats.last_run_at
        summary["seconds"] = max(summary["seconds"], stats.last_run_seconds)
        summary["records"] += stats.last_run_records
        summary["hits"] += stats.last_run_hits
        summary["total_hits"] += stats.total_hits
        summary["errors"] = max(summary["errors"], stats.last_run_errors)
        if stats.last_error_at and (
            summary["last_error_at"] is None or stats.last_error_at > summary["last_error_at"]
        ):
            summary["last_error_at"] = stats.last_error_at
            summary["last_error"] = stats.last_error
    return summaries


def _entries(rules, summaries, disabled_ids) -> list[dict]:
    return [
        {
            "rule": rule,
            "enabled": rule.enabled and rule.id not in disabled_ids,
            "risk": rule.risk,
            "level": SigmaLevel(rule.level).label,
            "log_types": [LogType(t).label for t in rule.log_types if t in LogType.values],
            "run": summaries.get(rule.id),
        }
        for rule in rules
    ]


def rules(request):
    scope = request.scope
    all_rules = list(DetectionRule.objects.in_scope(scope).order_by("title", "id"))
    disabled = set(
        DetectionRule.disabled_by.through.objects.filter(
            organisation_id=scope.organisation_id
        ).values_list("detectionrule_id", flat=True)
    )
    summaries = _run_summaries(scope, all_rules)
    context = {
        "custom": _entries([r for r in all_rules if not r.is_predefined], summaries, disabled),
        "predefined": _entries([r for r in all_rules if r.is_predefined], summaries, disabled),
        "can_manage": secops_services.can_manage_organisation(request.user),
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
        "known_alert_types": detection.KNOWN_ALERT_TYPES,
        "log_sources": LOG_SOURCES.values(),
        "lists": LISTS,
        "can_manage": secops_services.can_manage_organisation(request.user),
        "run": _run_summaries(request.scope, [rule]).get(rule.id) if rule else None,
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
        saved = detection.save_custom_rule(
            _organisation(request),
            yaml_text=yaml_text,
            alert_type=alert_type,
            enabled=enabled,
            user=request.user,
            rule=rule,
        )
    except RuleProblems as exc:
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
    context["enabled"] = (
        DetectionRule.objects.enabled_for(request.scope.organisation_id).filter(pk=rule.pk).exists()
    )
    return render(request, "alerts/detection/predefined.html", context)


@require_POST
def check(request):
    """The editor's Check button: the problems at their lines, or what the rule is."""
    _require_manager(request)
    yaml_text = request.POST.get("yaml", "")
    try:
        compiled = detection.check_rule(yaml_text, request.POST.get("alert_type", ""))
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
        result = detection.dry_run(yaml_text, request.scope)
    except RuleProblems as exc:
        context = _editor_context(request, yaml_text=yaml_text, problems=exc.problems)
        return render(request, "alerts/detection/_problems.html", context)
    return render(request, "alerts/detection/_dry_run.html", {"result": result})


def _toggle(request, rule: DetectionRule, target: str):
    _require_manager(request)
    enabled = request.POST.get("enabled") == "true"
    detection.set_rule_enabled(rule, enabled, _organisation(request))
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
    detection.delete_custom_rule(rule)
    messages.success(request, f"“{rule.title}” removed.")
    return redirect("detection:rules")
