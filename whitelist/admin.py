from django.contrib import admin

from whitelist.models import Condition, Match, RuleGroup


class ConditionInline(admin.TabularInline):
    model = Condition
    extra = 0


@admin.register(RuleGroup)
class RuleGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "scenario", "organisation", "enabled", "is_global", "hit_count"]
    list_filter = ["enabled", "is_global", "scenario"]
    search_fields = ["name"]
    inlines = [ConditionInline]


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["alert", "group_name", "matched_at"]
    raw_id_fields = ["alert", "group"]
