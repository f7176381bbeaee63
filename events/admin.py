from django.contrib import admin

from events.models import AggregationRule, EventStatusChange, ExportJob, SecurityEvent


@admin.register(AggregationRule)
class AggregationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "organisation", "enabled", "window_seconds", "risk"]
    list_filter = ["enabled", "organisation"]
    search_fields = ["name", "key"]


class StatusChangeInline(admin.TabularInline):
    model = EventStatusChange
    extra = 0
    readonly_fields = ["from_status", "to_status", "changed_by", "note", "created_at"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "account", "risk", "status", "alert_count", "last_occurred_at"]
    list_filter = ["status", "risk", "region"]
    search_fields = ["name", "=id"]
    raw_id_fields = ["continues", "affected_assets"]
    readonly_fields = ["group_key", "group_values"]
    inlines = [StatusChangeInline]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "organisation",
        "status",
        "progress",
        "row_count",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "organisation"]
    readonly_fields = ["account_ids", "filters", "file_path", "error", "started_at", "finished_at"]
