from django.contrib import admin

from alerts.models import Alert, AlertEntity, Asset, Entity, LogRecord


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "uuid",
        "instance_id",
        "account",
        "public_ip",
        "private_ip",
        "os",
        "region",
    ]
    list_filter = ["region", "account"]
    search_fields = ["name", "uuid", "instance_id", "public_ip", "private_ip"]


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ["type", "value", "account", "malicious", "last_seen_at"]
    list_filter = ["type", "malicious"]
    search_fields = ["value"]


class AlertEntityInline(admin.TabularInline):
    model = AlertEntity
    extra = 0
    raw_id_fields = ["entity"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "type", "level", "account", "occurred_at", "whitelisted"]
    list_filter = ["source", "level", "whitelisted", "region"]
    search_fields = ["name", "source_uuid", "type"]
    raw_id_fields = ["asset"]
    date_hierarchy = "occurred_at"
    inlines = [AlertEntityInline]


@admin.register(LogRecord)
class LogRecordAdmin(admin.ModelAdmin):
    list_display = ["log_type", "host_uuid", "account", "time"]
    list_filter = ["log_type", "region"]
    search_fields = ["host_uuid"]
    raw_id_fields = ["asset"]
    date_hierarchy = "time"
