"""SIEM detection rules in Sigma over the API, as the Detection Rules page
has them: the list with each rule's last run, one rule with its YAML, the
editor's Check and Dry run, saving a custom rule, enable/disable (a
predefined rule only for the key's organisation) and delete.

Every problem of a rule is reported as the editor shows it: by field
(``yaml``, ``alert_type``) and, where it has one, at its line of the YAML.
Rules apply to the whole organisation, so changing, checking and dry running
them need an organisation key; reading needs any key.
"""

from datetime import datetime

from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from alerts import detection_dryrun, detection_rules
from alerts.detection_models import DetectionRule, SigmaLevel
from alerts.sigma.compiled_rule import CompiledRule, RuleProblems
from secops.api_common import Message, RequestErrors
from secops.models import Organisation
from secops.rules import require_rule_manager
from secops.scope import get_in_scope_or_404

router = Router(tags=["detection rules"])

RULES_NAME = "detection rules"
# The editor takes uploads up to this size; a body's YAML is held to the same.
MAX_YAML_LENGTH = 100_000


class RuleRunOut(Schema):
    last_run_at: datetime | None
    seconds: float
    records: int = Field(description="Log records the last run read, over the key's accounts.")
    hits: int = Field(description="Alerts the last run raised.")
    total_hits: int
    errors: int
    last_error: str
    last_error_at: datetime | None


class DetectionRuleOut(Schema):
    id: int
    key: str
    predefined: bool
    title: str
    description: str
    enabled: bool = Field(description="Whether it applies to the key's organisation.")
    level: str = Field(description=", ".join(SigmaLevel.values) + ".")
    risk: int = Field(description="The risk of its alerts: 1 low, 2 medium, 3 high.")
    status: str = Field(description="The Sigma status, e.g. experimental.")
    kind: str = Field(description="detection or correlation.")
    log_types: list[str]
    alert_type: str
    tactic: str
    technique: str
    sigma_id: str
    last_run: RuleRunOut | None
    created_at: datetime
    updated_at: datetime


class DetectionRuleDetailOut(DetectionRuleOut):
    yaml: str


class DetectionRuleIn(Schema):
    yaml: str = Field(max_length=MAX_YAML_LENGTH, description="The Sigma rule file.")
    alert_type: str = Field(
        "",
        max_length=200,
        description="The type of the alerts it raises (a whitelist scenario); "
        "empty: the alert_type the YAML names.",
    )
    enabled: bool = True


class RuleCheckIn(Schema):
    yaml: str = Field(max_length=MAX_YAML_LENGTH)
    alert_type: str = Field("", max_length=200)


class DryRunIn(Schema):
    yaml: str = Field(max_length=MAX_YAML_LENGTH)


class EnabledIn(Schema):
    enabled: bool


class ProblemOut(Schema):
    field: str = Field(description="yaml or alert_type.")
    message: str
    line: int | None = Field(description="The line of the YAML it is about (1-based).")


class RuleErrors(Schema):
    """A rule the editor would refuse: the messages by field, and each problem
    at its line of the YAML."""

    errors: dict[str, list[str]]
    problems: list[ProblemOut]


RuleRefused = RuleErrors | RequestErrors


class RuleCheckOut(Schema):
    title: str
    description: str
    level: str
    risk: int
    status: str
    kind: str
    log_types: list[str]
    alert_type: str = Field(description="The alert type it would raise.")
    tactic: str
    technique: str
    rules: dict[str, str] = Field(description="The rules of the file by name, with their titles.")


class DryRunSampleOut(Schema):
    ref: str = Field(description="The log record's reference.")
    time: datetime
    log_type: str
    host_uuid: str | None
    summary: str
    fields: dict | None = Field(description="The record's fields, as received.")


class DryRunOut(Schema):
    records: int = Field(description="Log records of the window read.")
    matches: int
    sample: list[DryRunSampleOut]
    truncated: bool = Field(description="The window held more records than a dry run reads.")
    seconds: float
    window_start: datetime
    window_end: datetime
    kind: str
    errors: list[str] = Field(description="Conditions the database could not evaluate.")


def _refused(exc: detection_rules.InvalidDetectionRule) -> Status:
    problems = [
        {"field": field, "message": problem.message, "line": problem.line}
        for field, found in exc.problems_by_field.items()
        for problem in found
    ]
    return Status(422, {"errors": exc.errors, "problems": problems})


def _yaml_refused(exc: RuleProblems) -> Status:
    return _refused(detection_rules.InvalidDetectionRule({"yaml": exc.problems}))


def _organisation(request) -> Organisation:
    return Organisation.objects.get(id=request.scope.organisation_id)


def _rule(request, sigma_id: int) -> DetectionRule:
    return get_in_scope_or_404(
        detection_rules.rules_in_scope(request.scope), request.scope, id=sigma_id
    )


def _out(rule: DetectionRule, runs: dict) -> dict:
    return {
        "id": rule.id,
        "key": rule.key,
        "predefined": rule.is_predefined,
        "title": rule.title,
        "description": rule.description,
        "enabled": rule.enabled_for_organisation,
        "level": rule.level,
        "risk": rule.risk,
        "status": rule.status,
        "kind": rule.kind,
        "log_types": rule.log_types,
        "alert_type": rule.alert_type,
        "tactic": rule.tactic,
        "technique": rule.technique,
        "sigma_id": rule.sigma_id,
        "last_run": runs.get(rule.id),
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def _detail(request, sigma_id: int) -> dict:
    rule = _rule(request, sigma_id)
    return {**_out(rule, detection_rules.rule_runs(request.scope, [rule])), "yaml": rule.yaml}


def _compiled_out(compiled: CompiledRule, alert_type: str) -> dict:
    return {
        "title": compiled.title,
        "description": compiled.description,
        "level": compiled.level,
        "risk": SigmaLevel(compiled.level).risk(),
        "status": compiled.status,
        "kind": compiled.kind,
        "log_types": compiled.log_types,
        "alert_type": alert_type.strip() or compiled.alert_type,
        "tactic": compiled.tactic,
        "technique": compiled.technique,
        "rules": compiled.titles,
    }


@router.get("/detection-rules", response=list[DetectionRuleOut])
def list_detection_rules(request):
    """Predefined rules and the organisation's own, by title, each with its last
    run over the key's accounts."""
    rules = list(detection_rules.rules_in_scope(request.scope))
    runs = detection_rules.rule_runs(request.scope, rules)
    return [_out(rule, runs) for rule in rules]


@router.post(
    "/detection-rules/check",
    response={200: RuleCheckOut, 403: Message, 422: RuleRefused},
)
def check_detection_rule(request, payload: RuleCheckIn):
    """The editor's Check: what the rule is, or every problem at its line.
    Nothing is stored."""
    require_rule_manager(request.scope, RULES_NAME)
    spec = detection_rules.DetectionRuleSpec(payload.yaml, payload.alert_type)
    try:
        compiled = spec.validate()
    except detection_rules.InvalidDetectionRule as exc:
        return _refused(exc)
    return _compiled_out(compiled, spec.alert_type)


@router.post(
    "/detection-rules/dry-run",
    response={200: DryRunOut, 403: Message, 422: RuleRefused},
)
def dry_run_detection_rule(request, payload: DryRunIn):
    """The editor's Dry run: how often the rule would have matched the key's
    logs of the last 24 hours, with a sample. Nothing is stored."""
    require_rule_manager(request.scope, RULES_NAME)
    try:
        result = detection_dryrun.dry_run(payload.yaml, request.scope)
    except RuleProblems as exc:
        return _yaml_refused(exc)
    return result


@router.get("/detection-rules/{sigma_id}", response={200: DetectionRuleDetailOut, 404: Message})
def get_detection_rule(request, sigma_id: int):
    return _detail(request, sigma_id)


@router.post(
    "/detection-rules",
    response={201: DetectionRuleDetailOut, 403: Message, 422: RuleRefused},
)
def create_detection_rule(request, payload: DetectionRuleIn):
    """A custom rule of the organisation, checked as the editor checks it."""
    require_rule_manager(request.scope, RULES_NAME)
    spec = detection_rules.DetectionRuleSpec(payload.yaml, payload.alert_type, payload.enabled)
    try:
        rule = detection_rules.save_custom_rule(_organisation(request), spec)
    except detection_rules.InvalidDetectionRule as exc:
        return _refused(exc)
    return Status(201, _detail(request, rule.id))


@router.put(
    "/detection-rules/{sigma_id}",
    response={
        200: DetectionRuleDetailOut,
        403: Message,
        404: Message,
        409: Message,
        422: RuleRefused,
    },
)
def update_detection_rule(request, sigma_id: int, payload: DetectionRuleIn):
    """Replace a custom rule's YAML, alert type and switch; a predefined rule is a 409."""
    rule = _rule(request, sigma_id)
    require_rule_manager(request.scope, RULES_NAME)
    spec = detection_rules.DetectionRuleSpec(payload.yaml, payload.alert_type, payload.enabled)
    try:
        detection_rules.save_custom_rule(_organisation(request), spec, rule=rule)
    except detection_rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    except detection_rules.InvalidDetectionRule as exc:
        return _refused(exc)
    return _detail(request, sigma_id)


@router.post(
    "/detection-rules/{sigma_id}/enabled",
    response={200: DetectionRuleDetailOut, 403: Message, 404: Message},
)
def set_detection_rule_enabled(request, sigma_id: int, payload: EnabledIn):
    """Switch a rule on or off; a predefined rule only for the key's organisation."""
    rule = _rule(request, sigma_id)
    require_rule_manager(request.scope, RULES_NAME)
    detection_rules.set_rule_enabled(rule, payload.enabled, _organisation(request))
    return _detail(request, sigma_id)


@router.delete(
    "/detection-rules/{sigma_id}",
    response={204: None, 403: Message, 404: Message, 409: Message},
)
def delete_detection_rule(request, sigma_id: int):
    """Delete a custom rule (its alerts stay); a predefined rule is a 409."""
    rule = _rule(request, sigma_id)
    require_rule_manager(request.scope, RULES_NAME)
    try:
        detection_rules.delete_custom_rule(rule)
    except detection_rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(204, None)
