from django.contrib import admin

from cloudsiem.models import AccessKey


@admin.register(AccessKey)
class AccessKeyAdmin(admin.ModelAdmin):
    list_display = ("access_key_id", "user", "name", "created_at", "last_used_at", "revoked_at")
    search_fields = ("access_key_id", "user__username", "name")
    # The encrypted secret is of no use to anyone reading the admin.
    exclude = ("secret_encrypted",)
    readonly_fields = ("access_key_id", "user", "created_at", "last_used_at")
