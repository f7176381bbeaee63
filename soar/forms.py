"""The bulk handling form of the Security Event Handling list.

Its fields carry the prefix ``bulk`` (``bulk-action``, ``bulk-status``, ...):
the request also holds the list's own fields (its filters, whose ``status``
is another field altogether, and the selected events' ``ids``).
"""

from django import forms

from disposal.scenarios import MAX_VALIDITY_DAYS
from events.models import EventStatus
from secops.filters import ListFilterForm
from secops.params import page_wanted, positive_int
from soar.bulk import (
    MAX_DESCRIPTION,
    MAX_EVENTS,
    SETTABLE_STATUSES,
    BulkRequest,
    runnable_playbooks,
)
from soar.models import BulkAction, Playbook, RuleAction, RunStatus, StepKind, Trigger

PREFIX = "bulk"
SELECTED, ALL_MATCHING = "selected", "all"


class RunFilterForm(ListFilterForm):
    """The filter of the playbook runs list, read from the query string."""

    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), *RunStatus.choices],
        error_messages={
            "invalid_choice": "There is no such run status: runs of every status are shown."
        },
    )
    page = forms.CharField(required=False)

    def clean(self):
        data = super().clean()
        data["page"] = page_wanted(data["page"])
        return data


class BulkHandlingForm(forms.Form):
    action = forms.ChoiceField(choices=BulkAction.choices, initial=BulkAction.SET_STATUS)
    status = forms.CharField(required=False)
    description = forms.CharField(required=False, max_length=MAX_DESCRIPTION)
    # The playbooks of the scope (built-in or its organisation's), switched on.
    playbook = forms.ModelChoiceField(queryset=Playbook.objects.none(), required=False)
    target = forms.ChoiceField(
        choices=[(SELECTED, "Selected events"), (ALL_MATCHING, "All matching events")]
    )

    def __init__(self, data=None, *, scope, **kwargs):
        super().__init__(data, prefix=PREFIX, **kwargs)
        self.fields["playbook"].queryset = runnable_playbooks(scope)

    def clean_status(self):
        status = self.cleaned_data["status"]
        if status == EventStatus.FAILED:
            raise forms.ValidationError("Failed is set only when a handling task fails.")
        if status and status not in SETTABLE_STATUSES:
            raise forms.ValidationError("Choose Unhandled, Handling or Handled.")
        return status

    def clean(self):
        data = super().clean()
        if data.get("action") == BulkAction.SET_STATUS and "status" in data and not data["status"]:
            self.add_error("status", "Choose the status to set.")
        running = data.get("action") == BulkAction.RUN_PLAYBOOK
        if running and "playbook" in data and data["playbook"] is None:
            self.add_error("playbook", "Choose the playbook to run.")
        return data

    def bulk_request(self) -> BulkRequest:
        data = self.cleaned_data
        return BulkRequest(
            action=data["action"],
            target_status=data["status"] if data["action"] == BulkAction.SET_STATUS else "",
            description=data["description"],
            playbook=data["playbook"] if data["action"] == BulkAction.RUN_PLAYBOOK else None,
        )


class InvalidEventIds(ValueError):
    pass


def event_ids(values: list[str]) -> list[int]:
    """Event ids from repeated ``ids`` fields and/or comma-separated ones, in order.

    Reads no further than one id past ``MAX_EVENTS``: that is enough to refuse.
    Raises ``InvalidEventIds`` for anything that is not an event id.
    """
    ids: dict[int, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            number = positive_int(part)
            if number is None:
                raise InvalidEventIds(part)
            ids[number] = None
            if len(ids) > MAX_EVENTS:
                return list(ids)
    return list(ids)


# --- playbooks and automated response rules --------------------------------------


def condition_help() -> list[tuple[str, str, str]]:
    """(field, kind, operators) for the conditions' help on the editors."""
    from secops import conditions
    from soar.facts import EVENT_FIELDS

    rows = []
    for field_name, kind in EVENT_FIELDS.items():
        if isinstance(kind, conditions.Choice):
            key, described = conditions.CHOICE, "one of " + ", ".join(kind.values)
        else:
            key, described = kind, kind
        operators = ", ".join(str(o) for o in conditions.OPERATORS_BY_KIND[key])
        rows.append((field_name, described, operators))
    return rows


def _json_object(text: str) -> dict:
    import json

    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise forms.ValidationError('An object such as {"all": [...]}.')
    return value


# The inputs of a step of the step editor, by name, posted as ``step-<row>-<name>``.
STEP_INPUTS = (
    "position",
    "kind",
    "name",
    "timeout",
    "scenario",
    "entities",
    "scope",
    "validity_days",
    "conditions",
    "on_false",
    "status",
    "risk",
    "recipients",
    "title",
    "minutes",
    "timeout_minutes",
)
# The parameter inputs each step kind reads. The editor shows only the chosen
# kind's inputs, and a row's other inputs (left over from another kind chosen
# earlier, say) are ignored rather than validated.
STEP_KIND_INPUTS = {
    StepKind.ACTION: ("scenario", "entities", "scope", "validity_days"),
    StepKind.CONDITION: ("conditions", "on_false"),
    StepKind.SET_STATUS: ("status",),
    StepKind.SET_RISK: ("risk",),
    StepKind.NOTIFY: ("channels", "recipients", "title"),
    StepKind.WAIT: ("minutes",),
    StepKind.APPROVAL: ("timeout_minutes",),
}
# Where a PlaybookError's field (after ``steps[i].``) shows on the step's row.
STEP_ERROR_INPUT = {"kind": "kind", "timeout_seconds": "timeout", "params": "kind"}


def step_rows_from_steps(steps: list[dict]) -> list[dict]:
    """The editor's rows for saved steps, and one empty row to add a step."""
    rows = []
    for index, step in enumerate(steps):
        params = step.get("params") or {}
        values = {
            "position": str(index + 1),
            "kind": step.get("kind", ""),
            "name": step.get("name", ""),
            "timeout": str(step.get("timeout_seconds", "")),
            "channels": params.get("channels") or [],
            "recipients": ", ".join(params.get("recipients") or []),
            "conditions": _dump(params.get("conditions")) if "conditions" in params else "",
        }
        for key in ("scenario", "entities", "scope", "validity_days", "on_false", "status"):
            values[key] = str(params.get(key, ""))
        for key in ("risk", "title", "minutes", "timeout_minutes"):
            values[key] = str(params.get(key, ""))
        rows.append({"values": values, "errors": {}})
    rows.append(empty_row(len(steps) + 1))
    return rows


def _dump(value) -> str:
    import json

    return json.dumps(value, indent=2)


def empty_row(position: int) -> dict:
    values = dict.fromkeys(STEP_INPUTS, "")
    values["position"], values["channels"] = str(position), []
    return {"values": values, "errors": {}}


def step_rows_from_post(data, max_rows: int) -> list[dict]:
    count = positive_int(data.get("step_count")) or 0
    rows = []
    for row in range(min(count, max_rows)):
        values = {name: data.get(f"step-{row}-{name}", "").strip() for name in STEP_INPUTS}
        values["channels"] = data.getlist(f"step-{row}-channels")
        values["remove"] = data.get(f"step-{row}-remove") == "on"
        rows.append({"values": values, "errors": {}})
    return rows


class StepRowsInvalid(Exception):
    pass


def steps_from_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The steps the rows describe, in position order, and the rows in that
    order (a PlaybookError's ``steps[i]`` is the i-th of them). Rows without
    a kind or marked for removal are left out. Raises StepRowsInvalid after
    marking the rows' own errors (a position or conditions that do not parse)."""
    kept, failed = [], False
    for order, row in enumerate(rows):
        values = row["values"]
        if not values["kind"] or values.get("remove"):
            continue
        try:
            position = int(values["position"] or order + 1)
        except ValueError:
            row["errors"]["position"] = "Enter a whole number."
            failed, position = True, order + 1
        kept.append((position, order, row))
    kept.sort(key=lambda item: (item[0], item[1]))
    steps = []
    for _position, _order, row in kept:
        values = row["values"]
        inputs = STEP_KIND_INPUTS.get(values["kind"], ())
        params = {
            key: values[key]
            for key in inputs
            if key not in ("channels", "recipients", "conditions") and values[key]
        }
        if "channels" in inputs:
            params["channels"] = values["channels"]
        if "recipients" in inputs:
            params["recipients"] = [
                r for r in values["recipients"].replace("\n", ",").split(",") if r.strip()
            ]
        if "conditions" in inputs and values["conditions"]:
            try:
                params["conditions"] = _json_object(values["conditions"])
            except forms.ValidationError as exc:
                row["errors"]["conditions"] = exc.messages[0]
                failed = True
        steps.append(
            {
                "kind": values["kind"],
                "name": values["name"],
                "params": params,
                "timeout_seconds": values["timeout"] or None,
            }
        )
    if failed:
        raise StepRowsInvalid
    return steps, [row for _p, _o, row in kept]


def place_step_error(field_path: str, message: str, ordered_rows: list[dict]) -> bool:
    """Put a PlaybookError next to the step and input it names; False if it
    names no step (``name``, ``steps``)."""
    import re

    match = re.match(r"steps\[(\d+)\]\.?(.*)$", field_path)
    if not match or int(match.group(1)) >= len(ordered_rows):
        return False
    rest = match.group(2)
    if rest.startswith("params."):
        key = rest.split(".")[1].split("[")[0]
        key = key if key in STEP_INPUTS or key == "channels" else "kind"
    else:
        key = STEP_ERROR_INPUT.get(rest.split(".")[0], "kind")
    ordered_rows[int(match.group(1))]["errors"][key] = message
    return True


class PlaybookForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


# Rule form field a validate_rule error path shows next to.
RULE_ERROR_FIELD = {
    "parameters.status": "status",
    "parameters.risk": "risk",
    "parameters": "action",
}


class RuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    position = forms.IntegerField(min_value=0, max_value=1_000_000, initial=0)
    enabled = forms.BooleanField(required=False, initial=True)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    trigger = forms.ChoiceField(choices=Trigger.choices)
    conditions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text="Empty: every event. Otherwise JSON: "
        '{"all": [{"field": ..., "operator": ..., "value": ...}]} (or "any"; groups nest).',
    )
    action = forms.ChoiceField(choices=RuleAction.choices)
    playbook = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    validity_days = forms.IntegerField(
        min_value=1, max_value=MAX_VALIDITY_DAYS, required=False, label="Validity (days)"
    )
    handled_scope = forms.ChoiceField(
        choices=[
            ("", "Playbook's own"),
            ("event_account", "Event's account"),
            ("seen_accounts", "Every account it was seen in"),
        ],
        required=False,
        label="Scope",
    )
    status = forms.ChoiceField(
        choices=[("", "—"), *[(s.value, s.label) for s in EventStatus.manually_settable()]],
        required=False,
        label="Status to set",
    )
    risk = forms.TypedChoiceField(
        choices=[("", "—"), (1, "Low"), (2, "Medium"), (3, "High")],
        coerce=int,
        required=False,
        empty_value=None,
        label="Risk to set",
    )
    require_approval = forms.BooleanField(required=False)
    max_runs_per_minute = forms.IntegerField(min_value=1, max_value=10_000, initial=30)

    def __init__(self, *args, playbooks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["playbook"].choices = [("", "—")] + [(p.pk, p.name) for p in playbooks]

    @classmethod
    def initial_of(cls, rule) -> dict:
        params = rule.parameters or {}
        return {
            "name": rule.name,
            "description": rule.description,
            "position": rule.position,
            "enabled": rule.enabled,
            "expires_at": rule.expires_at,
            "trigger": rule.trigger,
            "conditions": _dump(rule.conditions) if rule.conditions else "",
            "action": rule.action,
            "playbook": rule.playbook_id,
            "validity_days": params.get("validity_days"),
            "handled_scope": params.get("scope", ""),
            "status": params.get("status", ""),
            "risk": params.get("risk"),
            "require_approval": rule.require_approval,
            "max_runs_per_minute": rule.max_runs_per_minute,
        }

    def clean_conditions(self):
        return _json_object(self.cleaned_data.get("conditions"))

    def rule_data(self) -> dict:
        data = dict(self.cleaned_data)
        action = data["action"]
        parameters = {}
        if action == RuleAction.RUN_PLAYBOOK:
            if data.get("validity_days"):
                parameters["validity_days"] = data["validity_days"]
            if data.get("handled_scope"):
                parameters["scope"] = data["handled_scope"]
        elif action == RuleAction.SET_STATUS:
            parameters["status"] = data.get("status")
        elif action == RuleAction.SET_RISK:
            parameters["risk"] = data.get("risk")
        return {
            "name": data["name"],
            "description": data.get("description") or "",
            "position": data["position"],
            "enabled": data.get("enabled", False),
            "expires_at": data.get("expires_at"),
            "trigger": data["trigger"],
            "conditions": data.get("conditions") or {},
            "action": action,
            "playbook": data.get("playbook"),
            "parameters": parameters,
            "require_approval": data.get("require_approval", False),
            "max_runs_per_minute": data["max_runs_per_minute"],
        }

    def add_rule_errors(self, errors: dict) -> None:
        for path, messages in errors.items():
            name = RULE_ERROR_FIELD.get(path, path.split(".")[0].split("[")[0])
            for message in messages:
                if path.startswith("conditions") and path != "conditions":
                    message = f"{path}: {message}"
                self.add_error(name if name in self.fields else None, message)
