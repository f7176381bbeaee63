from datetime import timedelta

from django import forms
from django.utils import timezone

from alerts.models import AlertSource
from events.grouping import GROUPING_CHOICES, MAX_GROUP_FIELDS
from events.models import AggregationRule, EventStatus
from events.queries import SORTS
from events.rules import AggregationRuleSpec, RuleValidationError, alert_type_keys
from secops.enums import RiskLevel
from secops.filters import ListFilterForm
from secops.params import MAX_DATABASE_INTEGER, page_wanted

# What a field the form could not read stands for while the rest is checked.
EMPTY_RULE = {"name": "", "group_by": (), "event_name_template": ""}

# Analysts see events of the last 180 days (the product's rule).
EVENT_VISIBLE_DAYS = 180


class AggregationRuleForm(forms.ModelForm):
    """A custom aggregation rule on the Detection Rules page; ``spec`` is what
    it describes once valid."""

    match_sources = forms.MultipleChoiceField(
        choices=AlertSource.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: alerts of every source.",
    )
    match_levels = forms.TypedMultipleChoiceField(
        choices=RiskLevel.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every level.",
    )
    match_types = forms.CharField(
        required=False,
        help_text="Alert types (scenario keys) separated by commas, e.g. webshell, reverse_shell. "
        "Empty: every type.",
    )
    group_by = forms.MultipleChoiceField(
        choices=GROUPING_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=f"One to {MAX_GROUP_FIELDS} fields whose values the alerts must share.",
    )
    risk = forms.TypedChoiceField(
        choices=[("", "Highest level of its alerts"), *RiskLevel.choices],
        coerce=int,
        empty_value=None,
        required=False,
    )

    class Meta:
        model = AggregationRule
        fields = [
            "name",
            "description",
            "enabled",
            "match_sources",
            "match_types",
            "match_levels",
            "name_pattern",
            "group_by",
            "window_seconds",
            "event_name_template",
            "event_description_template",
            "risk",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["match_types"] = ", ".join(self.instance.match_types or [])

    def clean_match_types(self):
        return alert_type_keys(self.cleaned_data.get("match_types") or "")

    def clean(self):
        """Check the rule as the services will: the spec's problems go to their
        fields, unless the field has one of its own already (a value the form
        could not read)."""
        data = super().clean()
        values = {name: data[name] for name in AggregationRuleSpec.field_names() if name in data}
        self.spec = AggregationRuleSpec(**{**EMPTY_RULE, **values})
        try:
            self.spec.validate()
        except RuleValidationError as exc:
            for name, messages in exc.errors.items():
                if name not in self.errors:
                    self.add_error(name, messages)
        return data


OCCURRED_PRESETS = [
    ("1d", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("90d", "Last 90 days", 90),
    ("180d", "Last 180 days", 180),
    ("custom", "Custom range", None),
]


class EventFilterForm(ListFilterForm):
    """The Security Event Handling filters, read from the query string.

    A value that cannot be used marks its field and is left out; the list
    follows the other filters (``ListFilterForm``). A custom range that cannot
    be used gives way to the default period.
    """

    occurred = forms.ChoiceField(
        choices=[(k, label) for k, label, _ in OCCURRED_PRESETS],
        required=False,
        initial="7d",
        error_messages={"invalid_choice": "Choose one of the listed periods."},
    )
    start = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the start as a date, e.g. 2027-01-31."},
    )
    end = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the end as a date, e.g. 2027-01-31."},
    )
    risk = forms.TypedMultipleChoiceField(
        choices=sorted(RiskLevel.choices, reverse=True),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Risk must be High, Medium or Low."},
    )
    status = forms.MultipleChoiceField(
        choices=EventStatus.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Status must be Unhandled, Handling, Handled or Failed."},
    )
    name = forms.CharField(
        required=False,
        max_length=200,
        error_messages={"max_length": "Search names with at most 200 characters."},
    )
    event_id = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DATABASE_INTEGER,
        label="Event ID",
        error_messages={
            "invalid": "Event ID must be a positive number.",
            "min_value": "Event ID must be a positive number.",
            "max_value": "Event ID is too large: no event has that number.",
        },
    )
    asset = forms.CharField(
        required=False,
        max_length=255,
        label="Asset",
        error_messages={"max_length": "An asset is named in at most 255 characters."},
    )
    sort = forms.ChoiceField(
        choices=[(k, label) for k, (_, label) in SORTS.items()],
        required=False,
        initial="-last",
        error_messages={"invalid_choice": "Choose one of the listed orders."},
    )
    # A bad page number means page 1; it must not void the other filters.
    page = forms.CharField(required=False)

    @classmethod
    def default_filters(cls) -> dict:
        return cls({}).filters()

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        # The same first day as the "Last 180 days" preset.
        oldest = today - timedelta(days=EVENT_VISIBLE_DAYS - 1)
        if data["occurred"] == "custom" and not self._custom_range_usable(data, today, oldest):
            data["occurred"] = self.default("occurred")
        if data["occurred"] != "custom":
            days = next(d for k, _, d in OCCURRED_PRESETS if k == data["occurred"])
            data["start"], data["end"] = today - timedelta(days=days - 1), today
        data["page"] = page_wanted(data.get("page"))
        return data

    def _custom_range_usable(self, data, today, oldest) -> bool:
        """Whether the custom range can be applied; its problems go to its fields."""
        if "start" in self.errors or "end" in self.errors:
            return False
        start, end = data["start"], data["end"]
        if not start:
            self.drop("start", "A custom range needs a start date.")
        if not end:
            self.drop("end", "A custom range needs an end date.")
        if not start or not end:
            return False
        usable = True
        if start > end:
            self.drop("end", "The end date is before the start date.")
            usable = False
        if start < oldest:
            self.drop(
                "start",
                f"Events are kept for {EVENT_VISIBLE_DAYS} days: start on {oldest} or later.",
            )
            usable = False
        # A day of slack for a browser whose date is ahead of the server's.
        latest = today + timedelta(days=1)
        if end > latest:
            self.drop("end", f"The end date is in the future: end on {latest} or earlier.")
            usable = False
        return usable
