"""What automated response rules and condition steps can test about an event:
its facts, named fields with a value kind each, evaluated by the shared
condition engine (secops.conditions), the same one the whitelist uses."""

from collections import defaultdict

from alerts.models import Alert, AlertEntity, alert_type_label, source_label
from disposal import intel
from events.models import SecurityEvent
from secops import conditions
from secops.scope import Scope

# Field -> the kind of value it holds (the operators follow from the kind).
EVENT_FIELDS = {
    "risk": conditions.Choice(["low", "medium", "high"]),
    "status": conditions.Choice(["unhandled", "handling", "handled", "failed"]),
    "event_name": conditions.FOLDED,
    "alert_type": conditions.TEXT,
    "data_source": conditions.TEXT,
    "entity_type": conditions.TEXT,
    "entity_value": conditions.TEXT,
    "attacker_ip": conditions.IP,
    "account": conditions.TEXT,
    "intel_verdict": conditions.Choice(["malicious", "suspicious", "benign"]),
}
_RISK_NAMES = {1: "low", 2: "medium", 3: "high"}


def _always(facts) -> bool:
    return True


def compile_event_conditions(tree: dict, *, path: str = "conditions"):
    """A predicate over ``event_facts`` (no conditions: always true); raises
    ConditionError with the path of what is wrong."""
    if not tree:
        return _always
    return conditions.compile_tree(tree, EVENT_FIELDS, path=path)


def event_facts(event: SecurityEvent, *, alert_ids=None) -> dict:
    """The event's facts (or, with ``alert_ids``, those of these alerts of it)."""
    alerts = Alert.objects.filter(event_links__event=event)
    if alert_ids is not None:
        alerts = alerts.filter(id__in=alert_ids)
    types, sources = set(), set()
    for alert_type, source in alerts.values_list("type", "source").distinct():
        types.add(alert_type)
        sources.add(source)
    values = defaultdict(set)
    pairs = set()
    for entity_type, value, digest, role in (
        AlertEntity.objects.filter(alert__in=alerts)
        .values_list("entity__type", "entity__value", "entity__digest", "role")
        .distinct()
    ):
        values["entity_type"].add(entity_type)
        values["entity_value"].add(value)
        pairs.add((entity_type, digest))
        if entity_type == "ip" and role == "attacker":
            values["attacker_ip"].add(value)
    scope = Scope.for_accounts(event.account.organisation_id, [event.account_id])
    verdicts = {"malicious"} if intel.malicious_sources(scope, pairs) else set()
    return {
        "risk": _RISK_NAMES.get(event.risk, str(event.risk)),
        "status": event.status,
        "event_name": event.name,
        "alert_type": sorted(types),
        "data_source": sorted(sources),
        "entity_type": sorted(values["entity_type"]),
        "entity_value": sorted(values["entity_value"]),
        "attacker_ip": sorted(values["attacker_ip"]),
        "account": event.account.uid,
        "intel_verdict": sorted(verdicts),
    }


# Fields whose values are ids with a name to show instead.
_VALUE_LABELS = {"alert_type": alert_type_label, "data_source": source_label}


def value_text(field, value) -> str:
    """A condition's value as the rule list shows it: alert types and data
    sources by name (an operator such as "contains" keeps the text as typed)."""
    label = _VALUE_LABELS.get(field)
    if label is None:
        return str(value)
    if isinstance(value, list):
        return ", ".join(label(item) for item in value)
    return label(value)


def describe_conditions(tree) -> str:
    """A conditions tree as a line of text: ``risk equals high AND (…) OR …``."""
    from secops.conditions import Operator

    labels = dict(Operator.choices)

    def part(node, top=False) -> str:
        if not isinstance(node, dict):
            return "?"
        for joiner in ("all", "any"):
            if joiner in node and isinstance(node[joiner], list):
                text = f" {'AND' if joiner == 'all' else 'OR'} ".join(part(n) for n in node[joiner])
                return text if top or len(node[joiner]) < 2 else f"({text})"
        operator = labels.get(node.get("operator"), node.get("operator"))
        field = node.get("field")
        return f"{field} {str(operator).lower()} {value_text(field, node.get('value'))}"

    return part(tree, top=True) if tree else "always"
