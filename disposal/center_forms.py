"""Forms of the Disposal Center: its filters, editing a policy, and the failure
instructions of the simulated cloud."""

from datetime import date
from decimal import Decimal

from django import forms

from alerts.models import EntityType
from disposal.models import SimulatedFailure
from disposal.queries import status_filter_choices
from disposal.scenarios import HANDLED_TYPES, MAX_VALIDITY_DAYS
from secops.filters import ListFilterForm
from secops.params import page_wanted, positive_int

CREATED_PRESETS = [
    ("", "Any time", None),
    ("1d", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("90d", "Last 90 days", 90),
]
# Dates outside these bounds are typing mistakes (and the last day of year
# 9999 has no day after it to end a range on).
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9998, 12, 31)


class CenterFilterForm(ListFilterForm):
    """The Disposal Center's filters, read from the query string.

    A value that cannot be used marks its own field and is left out; the
    other filters still apply (``ListFilterForm``).
    """

    entity_type = forms.ChoiceField(
        required=False,
        label="Entity type",
        error_messages={"invalid_choice": "Choose IP, File or Process."},
    )
    scenario = forms.ChoiceField(
        required=False, error_messages={"invalid_choice": "There is no such scenario."}
    )
    status = forms.ChoiceField(
        required=False, error_messages={"invalid_choice": "There is no such task status."}
    )
    account = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Choose one of the accounts of this view."},
    )
    created = forms.ChoiceField(
        required=False,
        choices=[(key, label) for key, label, _ in CREATED_PRESETS],
        error_messages={"invalid_choice": "Choose one of the listed periods."},
    )
    start = forms.DateField(required=False, label="Created from")
    end = forms.DateField(required=False, label="Created until")
    policy = forms.CharField(required=False)
    page = forms.CharField(required=False)

    def __init__(self, data, *, scenarios, accounts):
        super().__init__(data)
        self.fields["entity_type"].choices = [("", "Any type")] + [
            (value, EntityType(value).label) for value in HANDLED_TYPES
        ]
        self.fields["scenario"].choices = [("", "Any scenario")] + [
            (s.key, s.name) for s in scenarios
        ]
        self.fields["status"].choices = [("", "Any status"), *status_filter_choices()]
        self.fields["account"].choices = [("", "Any account")] + [(a.id, a.name) for a in accounts]

    def clean_policy(self):
        text = self.cleaned_data.get("policy", "").strip()
        if not text:
            return None
        number = positive_int(text)
        if number is None:
            raise forms.ValidationError("A policy is named by its number, e.g. 12.")
        return number

    def _in_bounds(self, name):
        day = self.cleaned_data.get(name)
        if day is not None and not EARLIEST_DATE <= day <= LATEST_DATE:
            raise forms.ValidationError(
                f"Enter a date from {EARLIEST_DATE.year} to {LATEST_DATE.year}."
            )
        return day

    def clean_start(self):
        return self._in_bounds("start")

    def clean_end(self):
        return self._in_bounds("end")

    def clean(self):
        data = super().clean()
        start, end = data["start"], data["end"]
        if start and end and end < start:
            self.drop("end", "The end date is before the start date.")
        return data

    def filters(self) -> dict:
        """The usable filters: each field that is valid, and nothing for the others."""
        data = super().filters()
        created = data.get("created") or ""
        return {
            "entity_type": data.get("entity_type") or "",
            "scenario": data.get("scenario") or "",
            "status": data.get("status") or "",
            "account": data.get("account"),
            "created": created,
            "created_days": next(days for key, _, days in CREATED_PRESETS if key == created),
            "start": data.get("start"),
            "end": data.get("end"),
            "policy": data.get("policy"),
            "page": page_wanted(self.data.get("page")),
        }


class PolicyEditForm(forms.Form):
    """The scope and validity of a policy; ``validity_days`` only for scenarios
    that take an action validity period."""

    accounts = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        label="Scope",
        error_messages={
            "required": "Choose at least one account for the scope.",
            "invalid_choice": "Choose accounts of this view.",
            "invalid_pk_value": "Choose accounts of this view.",
        },
    )
    validity_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_VALIDITY_DAYS,
        label="Action validity period (days)",
    )

    def __init__(self, *args, policy, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.fields["accounts"].queryset = accounts
        if policy.scenario.takes_validity:
            self.fields[
                "validity_days"
            ].help_text = f"1 to {MAX_VALIDITY_DAYS} days; the block is lifted when it ends."
        else:
            del self.fields["validity_days"]
        if not self.is_bound:
            self.initial["accounts"] = [a.pk for a in policy.scope_accounts.all()]
            self.initial["validity_days"] = policy.validity_days


class SimulatedFailureForm(forms.ModelForm):
    """An instruction to the simulated cloud to fail; the share is entered as a percentage."""

    percent = forms.DecimalField(
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=5,
        decimal_places=2,
        initial=100,
        label="Share of calls that fail (%)",
        help_text="100 fails every matching call; 30 about three in ten.",
    )

    class Meta:
        model = SimulatedFailure
        fields = ["account", "target", "applies_to_undo", "retryable", "message"]
        labels = {
            "target": "Entity value",
            "applies_to_undo": "Also fail unblocking",
            "retryable": "Retryable",
        }
        help_texts = {
            "target": "An IP address, file or process exactly as the task names it; "
            "empty for every entity.",
            "applies_to_undo": "Unblocking a matching block fails as well.",
            "retryable": "The failure says that trying again may help.",
            "message": "The error the task shows.",
        }
        widgets = {"target": forms.TextInput()}

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        account = self.fields["account"]
        account.queryset = accounts
        account.required = True
        account.empty_label = None if len(accounts) == 1 else "— choose an account —"
        account.error_messages["invalid_choice"] = "Choose an account you administer."
        account.error_messages["required"] = "Choose the account whose calls fail."

    def clean_target(self):
        return self.cleaned_data.get("target", "").strip()

    def clean_message(self):
        message = self.cleaned_data.get("message", "").strip()
        if not message:
            raise forms.ValidationError("Say what the failure reports, e.g. Quota exceeded.")
        return message

    def save(self, commit=True):
        self.instance.share = float(self.cleaned_data["percent"]) / 100
        return super().save(commit=commit)
