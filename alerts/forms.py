from datetime import timedelta

from django import forms
from django.utils import timezone

from alerts.models import AlertSource, AlertType
from secops.enums import RiskLevel
from secops.filters import ListFilterForm
from secops.params import MAX_DATABASE_INTEGER, page_wanted

ALERT_PERIODS = [
    ("1h", "Last hour", 1 / 24),
    ("1d", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("180d", "Last 180 days", 180),
]


class AlertFilterForm(ListFilterForm):
    """Filters of the Alert page, read from the query string; a value that
    cannot be used marks its field and the others apply (``ListFilterForm``)."""

    source = forms.ChoiceField(
        choices=[("", "All cloud services"), *AlertSource.choices],
        required=False,
        label="Cloud Service",
        error_messages={"invalid_choice": "Choose one of the listed cloud services."},
    )
    level = forms.TypedChoiceField(
        choices=[("", "All levels"), *sorted(RiskLevel.choices, reverse=True)],
        coerce=int,
        empty_value=None,
        required=False,
        error_messages={"invalid_choice": "Level must be High, Medium or Low."},
    )
    # Any type can be filtered on (custom sources send their own); the
    # select offers the console's types by name.
    type = forms.CharField(
        required=False,
        max_length=64,
        widget=forms.Select,
        error_messages={"max_length": "An alert type has at most 64 characters."},
    )
    whitelisted = forms.ChoiceField(
        choices=[("", "All"), ("no", "Not whitelisted"), ("yes", "Whitelisted")],
        required=False,
        error_messages={"invalid_choice": "Choose All, Not whitelisted or Whitelisted."},
    )
    period = forms.ChoiceField(
        choices=[(k, label) for k, label, _ in ALERT_PERIODS],
        required=False,
        initial="7d",
        error_messages={"invalid_choice": "Choose one of the listed periods."},
    )
    # A bad page number means page 1; it must not void the other filters.
    page = forms.CharField(required=False)
    # The newest alert the page shows, from its live-update poll.
    after = forms.IntegerField(required=False, min_value=0, max_value=MAX_DATABASE_INTEGER)

    unshown_fields = ("page", "after")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "All types"), *sorted(AlertType.choices, key=lambda choice: choice[1])]
        chosen = self.data.get("type") or ""
        if chosen.strip() and chosen not in AlertType.values:
            choices.append((chosen, chosen))
        self.fields["type"].widget.choices = choices

    @classmethod
    def defaults(cls) -> dict:
        return cls({}).filters()

    def clean(self):
        data = super().clean()
        days = next(d for k, _, d in ALERT_PERIODS if k == data["period"])
        data["since"] = timezone.now() - timedelta(days=days)
        data["page"] = page_wanted(data.get("page"))
        return data


class ApiKeyForm(forms.Form):
    """The name of a new API key (the service shortens it to the column's length)."""

    name = forms.CharField(required=False)
