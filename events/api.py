"""Aggregation rules over the API: list, read, create, update, enable/disable, delete."""

from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from events import rules
from events.models import AggregationRule
from secops.models import Organisation

router = Router(tags=["aggregation rules"])


class RuleOut(Schema):
    id: int
    key: str
    predefined: bool
    name: str
    description: str
    enabled: bool
    match_sources: list[str]
    match_types: list[str]
    match_levels: list[int]
    name_pattern: str
    group_by: list[str]
    window_seconds: int
    event_name_template: str
    event_description_template: str
    risk: int | None


class RuleIn(Schema):
    name: str
    description: str = ""
    enabled: bool = True
    match_sources: list[str] = Field(default_factory=list)
    match_types: list[str] = Field(default_factory=list)
    match_levels: list[int] = Field(default_factory=list)
    name_pattern: str = ""
    group_by: list[str]
    window_seconds: int = 24 * 3600
    event_name_template: str
    event_description_template: str = ""
    risk: int | None = None


class EnabledIn(Schema):
    enabled: bool


def _out(rule: AggregationRule) -> dict:
    """A rule read by ``_rules``: "enabled" is whether it applies to the caller's organisation."""
    return {
        **{f: getattr(rule, f) for f in RuleOut.model_fields if hasattr(rule, f)},
        "predefined": rule.is_predefined,
        "enabled": rule.enabled_for_organisation,
    }


def _rules(request):
    scope = request.scope
    return AggregationRule.objects.in_scope(scope).with_enabled_for(scope.organisation_id)


def _get(request, rule_id: int) -> AggregationRule:
    return get_object_or_404(_rules(request), id=rule_id)


def _organisation(request) -> Organisation:
    return Organisation.objects.get(id=request.scope.organisation_id)


def _require_organisation_key(request) -> None:
    """Custom rules belong to the whole organisation: only an organisation-wide
    key may change them; an account's key reads them."""
    if not request.scope.may_manage_organisation():
        raise HttpError(
            403, "Aggregation rules apply to the whole organisation: use an organisation API key."
        )


def _spec(payload: RuleIn) -> rules.AggregationRuleSpec:
    return rules.AggregationRuleSpec(**payload.dict())


@router.get("/aggregation-rules", response=list[RuleOut])
def list_rules(request):
    return [_out(rule) for rule in _rules(request)]


@router.get("/aggregation-rules/{rule_id}", response=RuleOut)
def get_rule(request, rule_id: int):
    return _out(_get(request, rule_id))


@router.post("/aggregation-rules", response={201: RuleOut, 422: dict})
def create_rule(request, payload: RuleIn):
    _require_organisation_key(request)
    try:
        rule = rules.save_custom_rule(_organisation(request), _spec(payload))
    except rules.RuleValidationError as exc:
        return Status(422, {"errors": exc.errors})
    return Status(201, _out(_get(request, rule.id)))


@router.put("/aggregation-rules/{rule_id}", response={200: RuleOut, 422: dict})
def update_rule(request, rule_id: int, payload: RuleIn):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    try:
        rules.save_custom_rule(_organisation(request), _spec(payload), rule)
    except rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    except rules.RuleValidationError as exc:
        return Status(422, {"errors": exc.errors})
    return Status(200, _out(_get(request, rule_id)))


@router.post("/aggregation-rules/{rule_id}/enabled", response=RuleOut)
def set_enabled(request, rule_id: int, payload: EnabledIn):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    rules.set_rule_enabled(rule, payload.enabled, _organisation(request))
    return _out(_get(request, rule_id))


@router.delete("/aggregation-rules/{rule_id}", response={204: None})
def delete_rule(request, rule_id: int):
    rule = _get(request, rule_id)
    _require_organisation_key(request)
    try:
        rules.delete_custom_rule(rule)
    except rules.PredefinedRuleError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(204, None)
