"""Custom aggregation rules: what makes one valid, and saving, switching and
deleting them. The rule form and the API both describe a rule as an
``AggregationRuleSpec``; the operations shared with detection rules are in
``secops.rules``."""

import re
from dataclasses import asdict, dataclass, fields

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from django.db import transaction

from alerts.models import AlertSource
from events.grouping import GROUPING_CHOICES, MAX_GROUP_FIELDS, PLACEHOLDER
from events.models import AggregationRule
from secops import audit, rules
from secops.enums import RiskLevel
from secops.regex import RegexError, compile_linear_time
from secops.rules import PredefinedRuleError, RuleValidationError, set_rule_enabled

__all__ = [
    "AggregationRuleSpec",
    "PredefinedRuleError",
    "RuleValidationError",
    "delete_custom_rule",
    "save_custom_rule",
    "set_rule_enabled",
]

KNOWN_PLACEHOLDERS = {key for key, _ in GROUPING_CHOICES} | {
    "alert_name",
    "alert_type",
    "source",
    "asset_name",
    "attacker_ip",
}
MIN_WINDOW, MAX_WINDOW = 60, 30 * 24 * 3600
ALERT_TYPE_KEY = re.compile(r"[a-z0-9_]{1,64}")
TEXT_FIELDS = (
    "name",
    "description",
    "name_pattern",
    "event_name_template",
    "event_description_template",
)
# The values a field may hold, as the rule form offers them.
CHOICES = {
    "match_sources": AlertSource.values,
    "match_levels": RiskLevel.values,
    "group_by": [key for key, _ in GROUPING_CHOICES],
    "risk": RiskLevel.values,
}
REQUIRED = ("name", "group_by", "event_name_template")


def alert_type_keys(text: str) -> list[str]:
    """Alert types as the form's text gives them: separated by commas."""
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass(frozen=True)
class AggregationRuleSpec:
    """A custom aggregation rule as the rule form or the API describes it.

    Text is kept without surrounding whitespace and lists as tuples, whichever
    way it came; ``validate`` says everything wrong, by field, in the words
    the form has always used.
    """

    name: str
    group_by: tuple[str, ...]
    event_name_template: str
    description: str = ""
    enabled: bool = True
    match_sources: tuple[str, ...] = ()
    match_types: tuple[str, ...] = ()
    match_levels: tuple[int, ...] = ()
    name_pattern: str = ""
    window_seconds: int = 24 * 3600
    event_description_template: str = ""
    risk: int | None = None

    def __post_init__(self):
        for name in TEXT_FIELDS:
            object.__setattr__(self, name, (getattr(self, name) or "").strip())
        for name in ("match_sources", "match_levels", "group_by"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        items = [self.match_types] if isinstance(self.match_types, str) else self.match_types
        types = [key for item in items or () for key in alert_type_keys(item)]
        object.__setattr__(self, "match_types", tuple(types))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def validate(self) -> "AggregationRuleSpec":
        """The spec itself, or RuleValidationError naming each field at fault."""
        errors = {}
        for name in self.field_names():
            messages = _field_errors(name, getattr(self, name))
            if messages:
                errors[name] = messages
        if errors:
            raise RuleValidationError(errors)
        return self

    def model_values(self) -> dict:
        """The rule's fields as the model stores them (JSON lists)."""
        values = asdict(self)
        for name in ("match_sources", "match_types", "match_levels", "group_by"):
            values[name] = list(values[name])
        return values


# --- validation, field by field --------------------------------------------------------
# As a form field does: a missing or unknown value first, then the limits of
# its column, then what the rule needs of it; only the first failing step speaks.


def _messages(check, value) -> list[str]:
    try:
        check(value)
    except ValidationError as exc:
        return exc.messages
    return []


def _invalid_choice(name: str, value) -> list[str]:
    allowed = {str(choice) for choice in CHOICES[name]}
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if item is not None and str(item) not in allowed:
            message = forms.ChoiceField.default_error_messages["invalid_choice"]
            return [str(message) % {"value": item}]
    return []


def _column_limits(name: str, value) -> list[str]:
    if name in TEXT_FIELDS or name == "match_types":
        text = ",".join(value) if isinstance(value, tuple) else value
        if not text:
            return []
        messages = _messages(ProhibitNullCharactersValidator(), text)
        max_length = AggregationRule._meta.get_field(name).max_length
        if max_length and name != "match_types":
            messages = _messages(MaxLengthValidator(max_length), text) + messages
        return messages
    if name == "window_seconds":
        return _messages(MinValueValidator(0), value)
    return []


def _field_errors(name: str, value) -> list[str]:
    if name in REQUIRED and value in ("", ()):
        return [str(forms.Field.default_error_messages["required"])]
    if name in CHOICES:
        messages = _invalid_choice(name, value)
        if messages:
            return messages
    messages = _column_limits(name, value)
    if messages:
        return messages
    rule_check = RULE_CHECKS.get(name)
    return rule_check(value) if rule_check else []


def _check_match_types(types) -> list[str]:
    bad = [t for t in types if not ALERT_TYPE_KEY.fullmatch(t)]
    if bad:
        return [
            f"Not an alert type key: {', '.join(bad)} (lowercase letters, digits, underscores)."
        ]
    return []


def _check_group_by(keys) -> list[str]:
    if len(keys) > MAX_GROUP_FIELDS:
        return [f"Group by at most {MAX_GROUP_FIELDS} fields."]
    if "alert" in keys and len(keys) > 1:
        return ['"alert" makes one event per alert; use it alone.']
    return []


def _check_name_pattern(pattern: str) -> list[str]:
    # Matched against alert names, which senders choose: RE2, as in the pipeline.
    if pattern:
        try:
            compile_linear_time(pattern, ignore_case=True)
        except RegexError as exc:
            return [str(exc)]
    return []


def _check_window(window: int) -> list[str]:
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        return ["The window must be between 60 seconds and 30 days."]
    return []


def _check_placeholders(template: str) -> list[str]:
    unknown = sorted(set(PLACEHOLDER.findall(template)) - KNOWN_PLACEHOLDERS)
    if unknown:
        return [
            f"Unknown placeholder {', '.join('{' + u + '}' for u in unknown)}; "
            f"known: {', '.join('{' + k + '}' for k in sorted(KNOWN_PLACEHOLDERS))}."
        ]
    return []


RULE_CHECKS = {
    "match_types": _check_match_types,
    "group_by": _check_group_by,
    "name_pattern": _check_name_pattern,
    "window_seconds": _check_window,
    "event_name_template": _check_placeholders,
    "event_description_template": _check_placeholders,
}


# --- operations ---------------------------------------------------------------------------


def save_custom_rule(
    organisation, spec: AggregationRuleSpec, rule: AggregationRule | None = None
) -> AggregationRule:
    """Create a custom rule of ``organisation``, or update one of its own."""
    rules.check_editable(rule, organisation)
    spec.validate()
    fields = spec.field_names()
    before = None
    if rule is None:
        rule = AggregationRule(organisation=organisation, key=rules.new_custom_key())
    else:
        before = audit.snapshot(rule, fields)
    for name, value in spec.model_values().items():
        setattr(rule, name, value)
    with transaction.atomic():
        rule.save()
        rules.record_rule_change(
            rule,
            "create" if before is None else "update",
            organisation,
            before,
            audit.snapshot(rule, fields),
        )
    return rule


def delete_custom_rule(rule: AggregationRule) -> None:
    # Events keep their rule for "why grouped": a rule that made some is retired.
    rules.delete_custom_rule(rule, in_use=lambda used: used.events.exists())
