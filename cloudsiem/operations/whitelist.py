"""Whitelist rule groups: adding one from an event (as "Add to Whitelist"
does), listing, replacing the conditions of, and deleting groups; through
``whitelist.services``, with its validation and permission rules."""

from dataclasses import replace

from cloudsiem.operations.events import get_event
from cloudsiem.protocol import (
    Call,
    account_number,
    forbidden,
    invalid,
    operation,
    page_info,
    paged,
    time_text,
)
from events import whitelisting
from events.models import WhitelistGroupOrigin
from secops.conditions import Operator
from secops.scope import require
from whitelist import services
from whitelist.extensions import origins_of

# The cloud's operators and ours; our own names are accepted as they are.
OPERATORS = {
    "=": Operator.EQUALS,
    "==": Operator.EQUALS,
    "<>": Operator.NOT_EQUALS,
    "!=": Operator.NOT_EQUALS,
    "in": Operator.IN_LIST,
    "regexp": Operator.REGEX,
    "like": Operator.CONTAINS,
    "not like": Operator.NOT_CONTAINS,
    "contains": Operator.CONTAINS,
    "not contains": Operator.NOT_CONTAINS,
    "startswith": Operator.STARTS_WITH,
    "prefix": Operator.STARTS_WITH,
}
SHOWN_OPERATORS = {
    Operator.EQUALS: "=",
    Operator.NOT_EQUALS: "<>",
    Operator.IN_LIST: "in",
    Operator.REGEX: "REGEXP",
}


def _conditions(where: str, expression) -> list[services.ConditionSpec]:
    """``{"conditions": [{"left": {"value": object}, "operator": "=", "right":
    {"value": ...}}], "logic": "and"}`` as the group's conditions (all of
    which must hold)."""
    if not isinstance(expression, dict):
        raise invalid(where, "must be an object with conditions and logic.")
    if str(expression.get("logic", "and")).lower() != "and":
        raise invalid(f"{where}.logic", "the conditions of a group all hold: use and.")
    items = expression.get("conditions")
    if not isinstance(items, list) or not items:
        raise invalid(f"{where}.conditions", "add at least one condition.")
    found = []
    for index, item in enumerate(items):
        at = f"{where}.conditions[{index}]"
        if not isinstance(item, dict):
            raise invalid(at, "must be an object.")
        left, right = item.get("left") or {}, item.get("right") or {}
        operator = str(item.get("operator", "=")).strip()
        operator = OPERATORS.get(operator.lower(), operator)
        if operator not in Operator.values:
            raise invalid(f"{at}.operator", f"unknown operator {item.get('operator')!r}.")
        if item.get("isNot") or item.get("IsNot"):
            raise invalid(f"{at}.isNot", "use a negative operator (<>, not contains) instead.")
        value = right.get("value") if isinstance(right, dict) else None
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        found.append(
            services.ConditionSpec(
                str(left.get("value", "") if isinstance(left, dict) else ""),
                operator,
                "" if value is None else str(value),
            )
        )
    return found


def _field(name: str, prefix: str) -> str:
    if name.startswith("conditions"):
        return f"{prefix}.expression.{name}"
    return {"scenario": f"{prefix}.alertType", "name": f"{prefix}.alertName"}.get(
        name, f"{prefix}.{name}"
    )


def _save(call: Call, spec, prefix: str, group=None):
    allow_global = call.scope.may_manage_organisation()
    try:
        return services.save_group(
            spec, call.scope, allow_global=allow_global, group=group, user=call.user
        )
    except services.WhitelistPermissionError as exc:
        raise forbidden(str(exc)) from None
    except services.GroupValidationError as exc:
        name, messages = next(iter(exc.errors.items()))
        raise invalid(_field(name, prefix), " ".join(messages)) from None


@operation("PostEventWhiteruleList")
def post_event_whiterule(call: Call):
    event = get_event(call)
    require(
        call.scope.may_configure([event.account_id]),
        "Only administrators of the account change whitelist rules.",
    )
    rule = call.params.json("WhiteruleList", required=True)
    if not isinstance(rule, dict):
        raise invalid("WhiteruleList", "must be a JSON object.")
    draft = whitelisting.draft_for_event(event, whitelisting.latest_alert_facts(event))
    spec = replace(
        draft,
        name=str(rule.get("alertName") or draft.name),
        scenario=str(rule.get("alertType") or draft.scenario).lower(),
    )
    if rule.get("expression") is not None:
        spec.conditions = _conditions("WhiteruleList.expression", rule["expression"])
    if call.scope.is_global:
        # RoleType 1: the rule applies to every account.
        spec.is_global, spec.account_ids = True, []
    group = _save(call, spec, "WhiteruleList")
    whitelisting.record_origin(group, event)
    return str(group.id)


def _group_row(group, origins) -> dict:
    origin = origins.get(group.id)
    accounts = list(group.accounts.all())
    return {
        "Id": group.id,
        "AlertName": group.name,
        "AlertNameId": "",
        "AlertType": group.scenario,
        "AlertTypeId": group.scenario,
        "AlertUuid": "",
        "Aliuid": account_number(accounts[0].uid) if accounts else 0,
        "SubAliuid": 0,
        "IncidentUuid": str(origin.object_id) if origin else "",
        "Status": 1 if group.enabled else 0,
        "GmtCreate": time_text(group.created_at),
        "GmtModified": time_text(group.updated_at),
        "Expression": {
            "Logic": "and",
            "Conditions": [
                {
                    "ItemId": index + 1,
                    "IsNot": False,
                    "Left": {
                        "IsVar": True,
                        "Type": "string",
                        "Value": c.object,
                        "Modifier": "",
                        "ModifierParam": {},
                    },
                    "Operator": SHOWN_OPERATORS.get(c.operator, c.operator),
                    "Right": {
                        "IsVar": False,
                        "Type": "string",
                        "Value": c.value,
                        "Modifier": "",
                        "ModifierParam": {},
                    },
                }
                for index, c in enumerate(group.conditions.all())
            ],
        },
    }


@operation("DescribeWhiteRuleList")
def describe_white_rules(call: Call):
    params = call.params
    number, size = params.page()
    groups = services.groups_in_scope(call.scope)
    alert_type = params.text("AlertType", max_length=64)
    if alert_type:
        groups = groups.filter(scenario=alert_type.lower())
    name = params.text("AlertName", max_length=200)
    if name:
        groups = groups.filter(name__icontains=name)
    if "IncidentUuid" in params:
        event = get_event(call)
        groups = groups.filter(
            id__in=WhitelistGroupOrigin.objects.filter(event=event).values("group_id")
        )
    rows, total = paged(groups, number, size)
    origins = origins_of([g.id for g in rows])
    return {
        "PageInfo": page_info(number, size, total),
        "ResponseData": [_group_row(g, origins) for g in rows],
    }


@operation("UpdateWhiteRuleList")
def update_white_rule(call: Call):
    group_id = call.params.integer("WhiteRuleId", required=True, minimum=1)
    group = services.get_group_for_change_or_404(call.scope, group_id)
    expression = call.params.json("Expression", required=True)
    spec = services.spec_of(group)
    if isinstance(expression, dict) and "expression" in expression:
        # The whole rule as PostEventWhiteruleList takes it.
        spec.name = str(expression.get("alertName") or spec.name)
        spec.scenario = str(expression.get("alertType") or spec.scenario).lower()
        expression = expression["expression"]
    spec.conditions = _conditions("Expression", expression)
    _save(call, spec, "Expression", group=group)
    return str(group.id)


@operation("DeleteWhiteRuleList")
def delete_white_rule(call: Call):
    group_id = call.params.integer("Id", required=True, minimum=1)
    group = services.get_group_for_change_or_404(call.scope, group_id)
    try:
        services.delete_group(group, call.scope, allow_global=call.scope.may_manage_organisation())
    except services.WhitelistPermissionError as exc:
        raise forbidden(str(exc)) from None
    return str(group_id)
