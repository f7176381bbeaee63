from django.contrib import admin

from secops.models import (
    Account,
    AccountMembership,
    AuditEntry,
    Organisation,
    OrganisationMembership,
)


class AccountMembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "uid", "organisation", "home_region", "managed"]
    list_filter = ["organisation", "home_region", "managed"]
    search_fields = ["name", "uid"]
    inlines = [AccountMembershipInline]


@admin.register(OrganisationMembership)
class OrganisationMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "is_global_admin"]
    list_filter = ["organisation", "is_global_admin"]
    autocomplete_fields = ["user"]


@admin.register(AccountMembership)
class AccountMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role"]
    list_filter = ["role", "account__organisation"]
    autocomplete_fields = ["user", "account"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Entries are read here, never written: no add, change or delete."""

    list_display = ["when", "actor_name", "action", "organisation", "target_label"]
    list_filter = ["action", "actor_kind", "organisation"]
    search_fields = ["actor_name", "target_label", "target_id"]
    date_hierarchy = "when"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
