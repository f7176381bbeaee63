"""Editing the Sigma detection rules: checking a rule as the editor sends it,
saving, switching and deleting custom rules, keeping the predefined rules in
line with their files, and what the rule list shows of each rule's runs.
The operations shared with aggregation rules are in ``secops.rules``."""

import re
from dataclasses import dataclass
from pathlib import Path

from django.db import IntegrityError, transaction

from alerts.detection_models import DetectionRule, DetectionRuleKind, DetectionRuleStats
from alerts.sigma.compiled_rule import CompiledRule, Problem, RuleProblems
from alerts.sigma.compiler import compiled
from secops import audit, rules
from secops.models import Organisation
from secops.rules import PredefinedRuleError, RuleValidationError, set_rule_enabled

__all__ = [
    "KNOWN_ALERT_TYPES",
    "DetectionRuleSpec",
    "InvalidDetectionRule",
    "PredefinedRuleError",
    "check_rule",
    "delete_custom_rule",
    "predefined_rule_files",
    "rule_runs",
    "rules_in_scope",
    "save_custom_rule",
    "set_rule_enabled",
    "sync_predefined_rules",
]

PREDEFINED_DIRECTORY = Path(__file__).resolve().parent / "sigma" / "rules"
ALERT_TYPE_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
# Alert types of the console (the whitelist scenarios) offered in the editor.
KNOWN_ALERT_TYPES = [
    "abnormal_network",
    "brute_force",
    "log_tampering",
    "malicious_process",
    "malicious_script",
    "mining",
    "persistence",
    "privilege_escalation",
    "reverse_shell",
    "suspicious_login",
    "suspicious_process",
    "webshell",
]


# --- custom rules ---------------------------------------------------------------------


class InvalidDetectionRule(RuleValidationError):
    """``problems`` are everything wrong, each at its line of the YAML where it
    has one; ``errors`` are their messages by field (``yaml``, ``alert_type``)."""

    def __init__(self, problems_by_field: dict[str, list[Problem]]):
        super().__init__(
            {field: [p.message for p in found] for field, found in problems_by_field.items()}
        )
        self.problems_by_field = problems_by_field
        self.problems = [p for found in problems_by_field.values() for p in found]


def _compile(yaml_text: str) -> tuple[CompiledRule | None, list[Problem]]:
    try:
        return compiled(yaml_text), []
    except RuleProblems as exc:
        return None, exc.problems


def _alert_type_problems(rule: CompiledRule | None, alert_type: str) -> list[Problem]:
    """The rule needs an alert type, given in the editor or named in the YAML."""
    chosen = alert_type.strip() or (rule.alert_type if rule else "")
    if rule is not None and not chosen:
        return [
            Problem(
                "Alert type: choose the type of the alerts this rule raises (the "
                "whitelist scenario), or name it in the YAML as alert_type."
            )
        ]
    if chosen and not ALERT_TYPE_PATTERN.match(chosen):
        return [
            Problem(
                "Alert type: lower-case letters, digits and underscores, up to 64 "
                "(e.g. reverse_shell)."
            )
        ]
    return []


def check_rule(yaml_text: str, alert_type: str | None = None) -> CompiledRule:
    """Compile a rule as the editor sends it; RuleProblems lists everything wrong.

    ``alert_type`` None leaves the alert type alone (the dry run); otherwise
    the rule needs one, given here or named in the YAML (``alert_type:``).
    """
    rule, problems = _compile(yaml_text)
    if alert_type is not None:
        problems += _alert_type_problems(rule, alert_type)
    if problems:
        raise RuleProblems(problems)
    return rule


@dataclass(frozen=True)
class DetectionRuleSpec:
    """A custom detection rule as the editor describes it."""

    yaml_text: str
    alert_type: str = ""
    enabled: bool = True

    def __post_init__(self):
        object.__setattr__(self, "alert_type", (self.alert_type or "").strip())

    def validate(self) -> CompiledRule:
        """The compiled rule, or InvalidDetectionRule with every problem."""
        rule, yaml_problems = _compile(self.yaml_text)
        problems = {
            "yaml": yaml_problems,
            "alert_type": _alert_type_problems(rule, self.alert_type),
        }
        if any(problems.values()):
            raise InvalidDetectionRule({k: found for k, found in problems.items() if found})
        return rule


def _rule_fields(rule: CompiledRule) -> dict:
    return {
        "title": rule.title or "Untitled rule",
        "description": rule.description,
        "sigma_id": rule.sigma_id[:64],
        "level": rule.level,
        "status": rule.status[:16],
        "kind": DetectionRuleKind.CORRELATION
        if rule.kind == "correlation"
        else DetectionRuleKind.DETECTION,
        "log_types": rule.log_types,
        "tactic": rule.tactic[:128],
        "technique": rule.technique[:128],
    }


# What the audit log compares of a custom rule.
AUDITED_FIELDS = ("title", "alert_type", "level", "enabled", "yaml")


def save_custom_rule(
    organisation: Organisation,
    spec: DetectionRuleSpec,
    *,
    user=None,
    rule: DetectionRule | None = None,
) -> DetectionRule:
    """Create a custom rule of ``organisation``, or update one of its own."""
    rules.check_editable(rule, organisation)
    compiled_rule = spec.validate()
    before = None
    if rule is None:
        rule = DetectionRule(organisation=organisation, key=rules.new_custom_key(), created_by=user)
    else:
        before = audit.snapshot(rule, AUDITED_FIELDS)
    for name, value in _rule_fields(compiled_rule).items():
        setattr(rule, name, value)
    rule.yaml = spec.yaml_text
    rule.alert_type = spec.alert_type or compiled_rule.alert_type
    rule.enabled = spec.enabled
    with transaction.atomic():
        rule.save()
        rules.record_rule_change(
            rule,
            "create" if before is None else "update",
            organisation,
            before,
            audit.snapshot(rule, AUDITED_FIELDS),
        )
    return rule


def delete_custom_rule(rule: DetectionRule) -> None:
    # Its alerts stay: they name the rule by title, not by reference.
    rules.delete_custom_rule(rule)


# --- predefined rules -----------------------------------------------------------------


def predefined_rule_files() -> dict[str, str]:
    """Key (the file name without .yml) -> YAML of every predefined rule."""
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted(PREDEFINED_DIRECTORY.glob("*.yml"))
    }


def sync_predefined_rules(**_signal_kwargs) -> int:
    """Bring the predefined rules in the database in line with their files.

    Cheap when nothing changed (one query), so the periodic run calls it
    too; a rule whose file is gone is deleted. ``enabled`` and the
    organisations' opt-outs are the operators', never touched. Returns how
    many rules were written.
    """
    files = predefined_rule_files()
    stored = {rule.key: rule for rule in DetectionRule.objects.predefined()}
    written = 0
    for key, text in files.items():
        current = stored.get(key)
        if current is not None and current.yaml == text:
            continue
        rule = compiled(text)
        alert_type = rule.alert_type or "siem_detection"
        defaults = {**_rule_fields(rule), "yaml": text, "alert_type": alert_type}
        try:
            with transaction.atomic():
                DetectionRule.objects.update_or_create(
                    key=key, organisation=None, defaults=defaults
                )
        except IntegrityError:
            # Another process created it at the same moment, from the same file.
            continue
        written += 1
    gone = set(stored) - set(files)
    if gone:
        DetectionRule.objects.predefined().filter(key__in=gone).delete()
    return written


# --- what the rule list shows --------------------------------------------------------


def rules_in_scope(scope):
    """The scope's rules by title, each with ``enabled_for_organisation``."""
    return (
        DetectionRule.objects.in_scope(scope)
        .with_enabled_for(scope.organisation_id)
        .order_by("title", "id")
    )


def rule_runs(scope, rules_shown) -> dict[int, dict]:
    """Per rule, its last run over the accounts of the scope: the latest run
    and error, the records and hits of the accounts added up."""
    summaries: dict[int, dict] = {}
    rows = DetectionRuleStats.objects.in_scope(scope).filter(rule__in=rules_shown).order_by("id")
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
