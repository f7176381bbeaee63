"""The rule group editor's form: plain fields plus the condition rows, which
arrive as parallel lists (``condition_object``, ``condition_operator``,
``condition_value``) so that rows can be added and removed in the page."""

from dataclasses import dataclass, field
from datetime import datetime

from django import forms

from secops.filters import ListFilterForm
from secops.params import InvalidTime, aware_datetime, positive_int
from whitelist.scenarios import SCENARIOS
from whitelist.services import ConditionSpec, GroupSpec


class ScenarioFilterForm(ListFilterForm):
    """The scenario filter of Incident Whitelist Settings, read from the query string."""

    scenario = forms.ChoiceField(
        required=False,
        choices=[("", "All scenarios"), *((key, s.label) for key, s in SCENARIOS.items())],
        error_messages={"invalid_choice": "There is no such scenario: every scenario is shown."},
    )


@dataclass
class ConditionRow:
    object: str = ""
    operator: str = ""
    value: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class ParsedForm:
    spec: GroupSpec
    rows: list[ConditionRow]
    errors: dict[str, list[str]]


def _expiry(text: str) -> tuple[datetime | None, str | None]:
    try:
        return aware_datetime(text), None
    except InvalidTime as exc:
        return None, str(exc)


def parse(post, *, account_ids_in_scope) -> ParsedForm:
    """The editor's POST as a GroupSpec; errors the service cannot see (a
    malformed date or account id) are returned alongside."""
    errors: dict[str, list[str]] = {}
    objects = post.getlist("condition_object")
    operators = post.getlist("condition_operator")
    values = post.getlist("condition_value")
    rows = []
    for index in range(max(len(objects), len(operators), len(values))):
        row = ConditionRow(
            object=objects[index] if index < len(objects) else "",
            operator=operators[index] if index < len(operators) else "",
            value=values[index] if index < len(values) else "",
        )
        # A row left entirely empty is an unused blank row, not a mistake.
        if row.object or row.value.strip():
            rows.append(row)
    expires_at, expiry_error = _expiry(post.get("expires_at", ""))
    if expiry_error:
        errors["expires_at"] = [expiry_error]
    account_ids = []
    for raw in post.getlist("accounts"):
        account_id = positive_int(raw)
        if account_id in account_ids_in_scope:
            account_ids.append(account_id)
        else:
            errors.setdefault("account_ids", []).append(f"Unknown account “{raw}”.")
    spec = GroupSpec(
        name=post.get("name", "").strip(),
        scenario=post.get("scenario", "").strip(),
        description=post.get("description", "").strip(),
        enabled=post.get("enabled") == "on",
        expires_at=expires_at,
        is_global=post.get("applies_to", "global") == "global",
        account_ids=account_ids,
        conditions=[ConditionSpec(r.object, r.operator, r.value) for r in rows],
    )
    return ParsedForm(spec=spec, rows=rows, errors=errors)


def rows_of(spec: GroupSpec) -> list[ConditionRow]:
    return [ConditionRow(c.object, c.operator, c.value) for c in spec.conditions]


def attach_errors(rows: list[ConditionRow], errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Move ``conditions[i].field`` errors onto their rows; returns the rest."""
    rest = {}
    for key, messages in errors.items():
        if key.startswith("conditions[") and "]." in key:
            index = int(key[len("conditions[") : key.index("]")])
            if index < len(rows):
                rows[index].errors += messages
                continue
        rest[key] = messages
    return rest
