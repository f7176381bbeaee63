"""Whitelist rule groups, their conditions, and the record of what they matched."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from alerts.models import Alert

# The shared operators (the values stored in Condition.operator), importable from here.
from secops.conditions import Operator
from secops.models import Account, Organisation
from secops.tenancy import (
    TenantForeignKey,
    TenantOneToOneField,
    TenantQuerySet,
    organisation_field,
)


class RuleGroupQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """Groups of the scope's organisation that apply to an account in scope:
        global groups, and groups limited to at least one of its accounts."""
        return self.filter(
            Q(is_global=True) | Q(accounts__in=scope.account_ids),
            organisation_id=scope.organisation_id,
        ).distinct()


class RuleGroup(models.Model):
    """A whitelist policy group: conditions on one scenario's objects, all of
    which an alert must meet (groups themselves are alternatives)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="whitelist_groups"
    )
    name = models.CharField(max_length=200)
    scenario = models.CharField(max_length=64, help_text="The alert type the group applies to.")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: the group never expires."
    )
    is_global = models.BooleanField(
        default=True, help_text="Applies to every account of the organisation."
    )
    accounts = models.ManyToManyField(
        Account,
        blank=True,
        through="RuleGroupAccount",
        related_name="whitelist_groups",
        help_text="When not global.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    hit_count = models.PositiveBigIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RuleGroupQuerySet.as_manager()

    class Meta:
        ordering = ["scenario", "name", "id"]
        # The pipeline loads an organisation's groups when its rule set changes.
        indexes = [models.Index(fields=["organisation", "scenario"], name="wl_group_org_scenario")]

    def __str__(self):
        return self.name

    def is_expired(self, now) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def is_active(self, now) -> bool:
        """Applied by the pipeline: enabled and not expired."""
        return self.enabled and not self.is_expired(now)


class RuleGroupAccount(models.Model):
    """An account a group is limited to (the link table of ``accounts``)."""

    organisation = organisation_field()
    group = TenantForeignKey(RuleGroup, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "group", "account"], name="wl_group_account_unique"
            )
        ]

    def __str__(self):
        return f"group {self.group_id} in account {self.account_id}"


class Condition(models.Model):
    organisation = organisation_field()
    group = TenantForeignKey(RuleGroup, on_delete=models.CASCADE, related_name="conditions")
    object = models.CharField(max_length=32)
    operator = models.CharField(max_length=16, choices=Operator.choices)
    value = models.TextField(help_text="For In list and In CIDR: one entry per line.")
    position = models.PositiveSmallIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["group", "position", "id"]

    def __str__(self):
        return f"{self.object} {self.get_operator_display()} {self.value[:60]}"


class Revision(models.Model):
    """A counter per organisation, raised by every change to its whitelist, so
    every process knows when its compiled copy of the rules is stale."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    number = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"whitelist revision {self.number}"


class Match(models.Model):
    """Which group whitelisted an alert (kept when the group is deleted)."""

    # No database constraint: alerts are partitioned by time on PostgreSQL
    # (alerts.AlertEntity says why); deletes cascade through the ORM.
    organisation = organisation_field()
    alert = TenantOneToOneField(
        Alert, on_delete=models.CASCADE, primary_key=True, related_name="whitelist_match"
    )
    group = TenantForeignKey(
        RuleGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="matches"
    )
    group_name = models.CharField(max_length=200)
    matched_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "matches"

    def __str__(self):
        return f"{self.alert_id} by {self.group_name}"
