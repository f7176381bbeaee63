"""Automated response rules: list, create or change (``Id``), switch on and
off, delete; checked by ``soar.automation.validate_rule`` as on the rule pages,
and, as there, changed only by global administrators."""

import json

from cloudsiem.protocol import (
    Call,
    forbidden,
    invalid,
    not_found,
    operation,
    page_info,
    paged,
    time_text,
)
from soar import automation
from soar.models import AutomationRule, Playbook, RuleAction, Trigger

ACTION_TYPES = {
    "doPlaybook": RuleAction.RUN_PLAYBOOK,
    "changeEventStatus": RuleAction.SET_STATUS,
    "changeThreatLevel": RuleAction.SET_RISK,
}
ACTION_TYPE_OF = {action: name for name, action in ACTION_TYPES.items()}
ALERT_TRIGGERS = {Trigger.ALERT_CREATED}
ENABLED, DISABLED = 100, 0
# The cloud's names of event facts, and how their values read here.
FIELD_ALIASES = {"alert_level": "risk", "threat_level": "risk", "incident_name": "event_name"}
LEVEL_WORDS = {"serious": "high", "suspicious": "medium", "remind": "low"}
STATUS_WORDS = {"0": "unhandled", "1": "handling", "5": "failed", "10": "handled"}


def _rules(call: Call):
    return AutomationRule.objects.filter(organisation_id=call.scope.organisation_id)


def _require_manager(call: Call) -> None:
    if not call.scope.may_manage_organisation():
        raise forbidden("Only global administrators change automated response rules.")


def _row(rule: AutomationRule) -> dict:
    if rule.action == RuleAction.RUN_PLAYBOOK and rule.playbook is not None:
        config = [
            {
                "playbookUuid": rule.playbook.key,
                "playbookName": rule.playbook.name,
                **rule.parameters,
            }
        ]
    else:
        config = [rule.parameters]
    return {
        "Id": rule.id,
        "RuleName": rule.name,
        "Status": ENABLED if rule.enabled else DISABLED,
        "ActionType": ACTION_TYPE_OF[rule.action],
        "ActionConfig": json.dumps(config),
        "AutoResponseType": "alert" if rule.trigger in ALERT_TRIGGERS else "event",
        "ExecutionCondition": json.dumps({"trigger": rule.trigger, "conditions": rule.conditions}),
        "ResponseRuleType": "custom",
        "DataType": 0,
        "Aliuid": 0,
        "SubUserId": rule.created_by_id or 0,
        "GmtCreate": time_text(rule.created_at),
        "GmtModified": time_text(rule.updated_at),
    }


@operation("ListAutomateResponseConfigs")
def list_configs(call: Call):
    params = call.params
    number, size = params.page()
    rules = _rules(call).select_related("playbook").order_by("position", "id")
    if "Id" in params:
        rules = rules.filter(id=params.integer("Id", minimum=1))
    name = params.text("RuleName", max_length=200)
    if name:
        rules = rules.filter(name__icontains=name)
    status = params.integer("Status", maximum=100)
    if status is not None:
        if status not in (ENABLED, DISABLED):
            raise invalid("Status", "0 (disabled) or 100 (enabled).")
        rules = rules.filter(enabled=status == ENABLED)
    action_type = params.text("ActionType", max_length=40)
    if action_type:
        if action_type not in ACTION_TYPES:
            raise invalid("ActionType", f"one of {', '.join(ACTION_TYPES)}.")
        rules = rules.filter(action=ACTION_TYPES[action_type])
    response_type = params.text("AutoResponseType", max_length=10)
    if response_type == "alert":
        rules = rules.filter(trigger__in=ALERT_TRIGGERS)
    elif response_type == "event":
        rules = rules.exclude(trigger__in=ALERT_TRIGGERS)
    elif response_type:
        raise invalid("AutoResponseType", "event or alert.")
    playbook = params.text("PlaybookUuid", max_length=64)
    if playbook:
        rules = rules.filter(playbook__key=playbook)
    rows, total = paged(rules, number, size)
    return {"PageInfo": page_info(number, size, total), "ResponseData": [_row(r) for r in rows]}


def _condition_tree(value):
    """Our conditions tree, or the cloud's list of ``{left, operator, right}``
    (all of which must hold)."""
    if isinstance(value, dict):
        return value.get("conditions", value) if "trigger" in value else value
    if not isinstance(value, list):
        raise invalid("ExecutionCondition", "a JSON list of conditions or a conditions object.")
    leaves = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"ExecutionCondition[{index}]", "must be an object.")
        field = str((item.get("left") or {}).get("value", ""))
        field = FIELD_ALIASES.get(field, field)
        operator = str(item.get("operator", "=")).lower()
        operator = {
            "=": "equals",
            "==": "equals",
            "<>": "not_equals",
            "!=": "not_equals",
            "in": "in_list",
        }.get(operator, operator)
        right = (item.get("right") or {}).get("value", "")
        if field == "risk":
            right = LEVEL_WORDS.get(str(right), right)
        elif field == "status":
            right = STATUS_WORDS.get(str(right), right)
        leaves.append({"field": field, "operator": operator, "value": right})
    return {"all": leaves} if leaves else {}


def _fields(call: Call, rule: AutomationRule | None) -> dict:
    params = call.params
    data = automation.rule_data(rule) if rule else {"trigger": Trigger.EVENT_CREATED}
    if params.text("RuleName", max_length=1000) is not None:
        data["name"] = params.text("RuleName", max_length=1000)
    response_type = params.text("AutoResponseType", max_length=10)
    if response_type == "alert":
        data["trigger"] = Trigger.ALERT_CREATED
    elif response_type == "event" and data["trigger"] in ALERT_TRIGGERS:
        data["trigger"] = Trigger.EVENT_CREATED
    elif response_type not in (None, "event"):
        raise invalid("AutoResponseType", "event or alert.")
    condition = params.json("ExecutionCondition")
    if condition is not None:
        if isinstance(condition, dict) and "trigger" in condition:
            data["trigger"] = condition["trigger"]
        data["conditions"] = _condition_tree(condition)
    action_type = params.text("ActionType", max_length=40)
    if action_type is not None:
        if action_type not in ACTION_TYPES:
            raise invalid("ActionType", f"one of {', '.join(ACTION_TYPES)}.")
        data["action"] = ACTION_TYPES[action_type]
    config = params.json("ActionConfig")
    if config is not None:
        item = config[0] if isinstance(config, list) and config else config
        if not isinstance(item, dict):
            raise invalid("ActionConfig", "a JSON array with one object.")
        data["parameters"] = _parameters(data.get("action"), item)
        if data.get("action") == RuleAction.RUN_PLAYBOOK:
            key = item.get("playbookUuid") or item.get("playbookName")
            playbook = Playbook.objects.in_scope(call.scope).filter(key=str(key)).first()
            data["playbook"] = playbook.id if playbook else None
    if data.get("action") is None:
        raise invalid("ActionType", "doPlaybook, changeEventStatus or changeThreatLevel.")
    return data


def _parameters(action, item: dict) -> dict:
    if action == RuleAction.SET_STATUS:
        status = str(item.get("status", ""))
        return {"status": STATUS_WORDS.get(status, status)}
    if action == RuleAction.SET_RISK:
        level = str(item.get("threatLevel") or item.get("risk") or "")
        return {"risk": {"high": 3, "medium": 2, "low": 1}.get(LEVEL_WORDS.get(level, level))}
    return {k: v for k, v in item.items() if k in ("validity_days", "scope")}


# validate_rule's fields -> the request's.
_FIELDS = {
    "name": "RuleName",
    "trigger": "ExecutionCondition.trigger",
    "action": "ActionType",
    "playbook": "ActionConfig.playbookUuid",
}


@operation("PostAutomateResponseConfig")
def post_config(call: Call):
    rule = None
    if "Id" in call.params:
        rule = _rules(call).filter(id=call.params.integer("Id", minimum=1)).first()
        if rule is None:
            raise not_found("Automated response rule")
    _require_manager(call)
    try:
        rule = automation.save_rule(call.scope, _fields(call, rule), rule=rule, user=call.user)
    except automation.RuleInvalid as exc:
        name, messages = next(iter(exc.errors.items()))
        field = _FIELDS.get(name) or (
            "ExecutionCondition" + name[len("conditions") :]
            if name.startswith("conditions")
            else "ActionConfig." + name
        )
        raise invalid(field, " ".join(messages)) from None
    return str(rule.id)


def _ids(call: Call) -> list[int]:
    values = call.params.strings("Ids")
    if len(values) == 1 and "," in values[0]:
        values = values[0].split(",")
    ids = []
    for value in values:
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            raise invalid("Ids", f"{value!r} is not a rule id.")
        ids.append(int(value))
    if not ids:
        raise invalid("Ids", "name at least one rule.")
    return ids


@operation("UpdateAutomateResponseConfigStatus")
def update_status(call: Call):
    ids = _ids(call)
    in_use = call.params.boolean("InUse")
    if in_use is None:
        raise invalid("InUse", "true or false is required.")
    rules = list(_rules(call).filter(id__in=ids))
    unknown = set(ids) - {r.id for r in rules}
    if unknown:
        raise not_found(f"Automated response rule {min(unknown)}")
    _require_manager(call)
    for rule in rules:
        automation.set_rule_enabled(rule, in_use)
    return ",".join(str(r.id) for r in rules)


@operation("DeleteAutomateResponseConfig")
def delete_config(call: Call):
    rule_id = call.params.integer("Id", required=True, minimum=1)
    rule = _rules(call).filter(id=rule_id).first()
    if rule is None:
        raise not_found(f"Automated response rule {rule_id}")
    _require_manager(call)
    automation.delete_rule(rule)
    return str(rule_id)
