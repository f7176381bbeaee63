from django.contrib import admin

from soar.models import BulkHandlingItem, BulkHandlingJob


class BulkHandlingItemInline(admin.TabularInline):
    model = BulkHandlingItem
    extra = 0
    fields = ("event_id", "event_name", "outcome", "message", "created_at")
    readonly_fields = fields
    can_delete = False


@admin.register(BulkHandlingJob)
class BulkHandlingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "organisation", "action", "event_count", "status", "created_at")
    list_filter = ("status", "action")
    readonly_fields = ("event_ids", "filters", "account_ids")
    inlines = [BulkHandlingItemInline]
