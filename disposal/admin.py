from django import forms
from django.contrib import admin

from alerts.models import Entity
from disposal.intel_import import INDICATOR_TYPES, normalise
from disposal.models import ThreatIndicator


class ThreatIndicatorForm(forms.ModelForm):
    """The value is normalised and its digest computed as the import does, so an
    indicator entered here matches entities as an imported one would."""

    class Meta:
        model = ThreatIndicator
        fields = [
            "organisation",
            "entity_type",
            "value",
            "verdict",
            "source",
            "confidence",
            "description",
            "external_id",
            "valid_from",
            "valid_until",
        ]

    def clean(self):
        cleaned = super().clean()
        entity_type, value = cleaned.get("entity_type"), cleaned.get("value")
        if entity_type and value:
            if entity_type not in INDICATOR_TYPES:
                self.add_error("entity_type", "Indicators are IPs, files, domains or URLs.")
            else:
                try:
                    cleaned["value"] = normalise(entity_type, value)
                except ValueError as exc:
                    self.add_error("value", str(exc))
        return cleaned

    def save(self, commit=True):
        self.instance.digest = Entity.digest_for(self.instance.entity_type, self.instance.value)
        return super().save(commit)


@admin.register(ThreatIndicator)
class ThreatIndicatorAdmin(admin.ModelAdmin):
    """Indicators come from ``manage.py import_intel``; the admin is for looking
    them up and correcting or removing single ones."""

    form = ThreatIndicatorForm
    list_display = [
        "value",
        "entity_type",
        "verdict",
        "source",
        "confidence",
        "organisation",
        "valid_from",
        "valid_until",
        "imported_at",
    ]
    list_filter = ["entity_type", "verdict", "organisation"]
    search_fields = ["value", "digest", "source", "external_id", "description"]
    readonly_fields = ["imported_at"]
    date_hierarchy = "imported_at"
    list_select_related = ["organisation"]
