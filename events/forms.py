import re
from datetime import timedelta

from django import forms
from django.utils import timezone

from alerts.models import AlertSource
from events.grouping import GROUPING_CHOICES, MAX_GROUP_FIELDS, PLACEHOLDER
from events.models import AggregationRule, EventStatus
from secops.enums import RiskLevel
from secops.params import MAX_DATABASE_INTEGER, page_number
from secops.regex import RegexError, compile_linear_time

KNOWN_PLACEHOLDERS = {key for key, _ in GROUPING_CHOICES} | {
    "alert_name",
    "alert_type",
    "source",
    "asset_name",
    "attacker_ip",
}
MIN_WINDOW, MAX_WINDOW = 60, 30 * 24 * 3600
# Analysts see events of the last 180 days (the product's rule).
EVENT_VISIBLE_DAYS = 180


class AggregationRuleForm(forms.ModelForm):
    """A custom aggregation rule; used by the Detection Rules page and the API."""

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
        raw = self.cleaned_data.get("match_types") or ""
        if isinstance(raw, list):
            raw = ",".join(str(item) for item in raw)
        types = [t.strip() for t in raw.split(",") if t.strip()]
        bad = [t for t in types if not re.fullmatch(r"[a-z0-9_]{1,64}", t)]
        if bad:
            raise forms.ValidationError(
                f"Not an alert type key: {', '.join(bad)} (lowercase letters, digits, underscores)."
            )
        return types

    def clean_group_by(self):
        fields = self.cleaned_data["group_by"]
        if len(fields) > MAX_GROUP_FIELDS:
            raise forms.ValidationError(f"Group by at most {MAX_GROUP_FIELDS} fields.")
        if "alert" in fields and len(fields) > 1:
            raise forms.ValidationError('"alert" makes one event per alert; use it alone.')
        return fields

    def clean_name_pattern(self):
        # Matched against alert names, which senders choose: RE2, as in the pipeline.
        pattern = self.cleaned_data.get("name_pattern") or ""
        if pattern:
            try:
                compile_linear_time(pattern, ignore_case=True)
            except RegexError as exc:
                raise forms.ValidationError(str(exc)) from None
        return pattern

    def clean_window_seconds(self):
        window = self.cleaned_data["window_seconds"]
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise forms.ValidationError("The window must be between 60 seconds and 30 days.")
        return window

    def _check_placeholders(self, name):
        template = self.cleaned_data.get(name) or ""
        unknown = sorted(set(PLACEHOLDER.findall(template)) - KNOWN_PLACEHOLDERS)
        if unknown:
            raise forms.ValidationError(
                f"Unknown placeholder {', '.join('{' + u + '}' for u in unknown)}; "
                f"known: {', '.join('{' + k + '}' for k in sorted(KNOWN_PLACEHOLDERS))}."
            )
        return template

    def clean_event_name_template(self):
        return self._check_placeholders("event_name_template")

    def clean_event_description_template(self):
        return self._check_placeholders("event_description_template")


OCCURRED_PRESETS = [
    ("1d", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("90d", "Last 90 days", 90),
    ("180d", "Last 180 days", 180),
    ("custom", "Custom range", None),
]
SORTS = {
    "-last": ("-last_occurred_at", "Last occurred, newest first"),
    "last": ("last_occurred_at", "Last occurred, oldest first"),
    "-first": ("-first_occurred_at", "First occurred, newest first"),
    "-risk": ("-risk", "Risk, highest first"),
    "-alerts": ("-alert_count", "Most alerts first"),
}


class EventFilterForm(forms.Form):
    """The Security Event Handling filters, read from the query string."""

    occurred = forms.ChoiceField(
        choices=[(k, label) for k, label, _ in OCCURRED_PRESETS], required=False, initial="7d"
    )
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    risk = forms.TypedMultipleChoiceField(
        choices=sorted(RiskLevel.choices, reverse=True),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    status = forms.MultipleChoiceField(
        choices=EventStatus.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    name = forms.CharField(required=False, max_length=200)
    event_id = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DATABASE_INTEGER, label="Event ID"
    )
    asset = forms.CharField(required=False, max_length=64, label="Asset ID")
    sort = forms.ChoiceField(
        choices=[(k, label) for k, (_, label) in SORTS.items()], required=False, initial="-last"
    )
    # A bad page number means page 1; it must not void the other filters.
    page = forms.CharField(required=False)

    @classmethod
    def default_filters(cls) -> dict:
        form = cls({})
        form.is_valid()
        return form.cleaned_data

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        # The same first day as the "Last 180 days" preset.
        oldest = today - timedelta(days=EVENT_VISIBLE_DAYS - 1)
        preset = data.get("occurred") or "7d"
        if preset == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError("A custom range needs a start and an end date.")
            if start > end:
                self.add_error("end", "The end date is before the start date.")
            if start < oldest:
                self.add_error(
                    "start",
                    f"Events are kept for {EVENT_VISIBLE_DAYS} days: start on {oldest} or later.",
                )
            # A day of slack for a browser whose date is ahead of the server's.
            latest = today + timedelta(days=1)
            if end > latest:
                self.add_error("end", f"The end date is in the future: end on {latest} or earlier.")
        else:
            days = next(d for k, _, d in OCCURRED_PRESETS if k == preset)
            data["start"], data["end"] = today - timedelta(days=days - 1), today
        data["occurred"] = preset
        data["sort"] = data.get("sort") or "-last"
        data["page"] = page_number(data.get("page"))
        return data
