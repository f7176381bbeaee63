"""Aggregation rules and the security events they make of alerts."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from alerts.models import Alert, Asset
from secops.enums import RegionGroup, RiskLevel
from secops.jobs import BackgroundJob, JobStatus
from secops.models import Account, ApiKey, Organisation
from secops.rules import OrganisationRule, rule_key_constraints
from secops.scope import ScopedQuerySet
from secops.tenancy import (
    TenantForeignKey,
    TenantOneToOneField,
    TenantQuerySet,
    organisation_field,
)


class EventStatus(models.TextChoices):
    UNHANDLED = "unhandled", "Unhandled"
    HANDLING = "handling", "Handling"
    HANDLED = "handled", "Handled"
    FAILED = "failed", "Failed"

    @classmethod
    def manually_settable(cls) -> list["EventStatus"]:
        # Failed is set only by the system when a handling action fails.
        return [cls.UNHANDLED, cls.HANDLING, cls.HANDLED]


class AggregationRule(OrganisationRule):
    """Which alerts belong together, and what event they make.

    Alerts that match the rule's filters and share the values of its
    ``group_by`` fields within one ``window_seconds`` window form one event.
    Predefined rules have no organisation; custom rules belong to one.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    match_sources = models.JSONField(default=list, blank=True, help_text="Empty: any source.")
    match_types = models.JSONField(default=list, blank=True, help_text="Empty: any alert type.")
    match_levels = models.JSONField(default=list, blank=True, help_text="Empty: any level.")
    name_pattern = models.CharField(
        max_length=200, blank=True, help_text="Regular expression the alert name must match."
    )
    group_by = models.JSONField(default=list, help_text="Up to three grouping fields.")
    window_seconds = models.PositiveIntegerField(default=24 * 3600)
    event_name_template = models.CharField(max_length=200)
    event_description_template = models.TextField(blank=True)
    risk = models.PositiveSmallIntegerField(
        choices=RiskLevel.choices,
        null=True,
        blank=True,
        help_text="Fixed event risk; empty: the highest level of its alerts.",
    )

    class Meta:
        ordering = ["name"]
        constraints = rule_key_constraints(
            predefined_name="predefined_rule_key_unique",
            custom_name="custom_rule_key_unique_per_organisation",
        )

    def __str__(self):
        return self.name


class SecurityEvent(models.Model):
    scope_region_field = "region"

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    region = models.CharField(max_length=8, choices=RegionGroup.choices)
    rule = models.ForeignKey(AggregationRule, on_delete=models.PROTECT, related_name="events")
    group_key = models.CharField(
        max_length=64, help_text="Digest of the rule, the grouping values and the time window."
    )
    group_values = models.JSONField(
        default=dict, blank=True, help_text="Why these alerts are together: field -> value."
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    risk = models.PositiveSmallIntegerField(choices=RiskLevel.choices)
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.UNHANDLED
    )
    first_occurred_at = models.DateTimeField()
    last_occurred_at = models.DateTimeField()
    alert_count = models.PositiveIntegerField(default=0)
    continues = TenantForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        help_text="The full event this one continues (events hold at most 10,000 alerts).",
    )
    alerts = models.ManyToManyField(Alert, through="EventAlert", related_name="events")
    affected_assets = models.ManyToManyField(
        Asset, blank=True, through="EventAsset", related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            # The product's rule: new alerts join the group's event only while it
            # is Unhandled, so there is at most one Unhandled event per group.
            # Enforced here so that concurrent workers cannot create two.
            models.UniqueConstraint(
                fields=["organisation", "account", "rule", "group_key"],
                condition=Q(status="unhandled"),
                name="one_unhandled_event_per_group",
            )
        ]
        indexes = [
            # The Security Event Handling list: scope + region, newest first,
            # each with the single filter it serves. The first index also
            # holds every other column that the counts and the chart
            # (queries.event_tallies) and the ids of a page in any sort order
            # (queries.events_page) read, so both are index-only scans rather
            # than reads of every event of the range (tens of thousands over
            # 180 days). It leads with the organisation, which every scoped
            # query compares too (secops.scope.ScopedQuerySet).
            models.Index(
                fields=[
                    "organisation",
                    "account",
                    "region",
                    "-last_occurred_at",
                    "first_occurred_at",
                    "risk",
                    "status",
                    "alert_count",
                    "id",
                ],
                name="event_scope_overview_idx",
            ),
            models.Index(
                fields=["account", "risk", "-last_occurred_at"], name="event_risk_time_idx"
            ),
            models.Index(
                fields=["account", "status", "-last_occurred_at"], name="event_status_time_idx"
            ),
            # Retention deletes by age.
            models.Index(fields=["last_occurred_at"], name="event_last_occurred_idx"),
            # "Name contains" (icontains) cannot use a B-tree index. On
            # PostgreSQL a trigram index of UPPER(name) serves it; it is made
            # in migration 0005 because SQLite has no such index.
        ]

    def __str__(self):
        return f"#{self.pk} {self.name}"


class EventAsset(models.Model):
    """An asset an event affects (the link table of ``affected_assets``)."""

    organisation = organisation_field()
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="+")
    asset = TenantForeignKey(Asset, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "event", "asset"], name="event_asset_unique"
            )
        ]

    def __str__(self):
        return f"asset {self.asset_id} of event {self.event_id}"


class EventAlert(models.Model):
    organisation = organisation_field()
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="alert_links")
    # No database constraint: alerts are partitioned by time on PostgreSQL
    # (alerts.AlertEntity says why); deletes cascade through the ORM.
    alert = TenantForeignKey(Alert, on_delete=models.CASCADE, related_name="event_links")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "event", "alert"], name="event_alert_unique"
            )
        ]
        indexes = [models.Index(fields=["alert"], name="event_alert_by_alert_idx")]

    def __str__(self):
        return f"alert {self.alert_id} in event {self.event_id}"


class ChangeKind(models.TextChoices):
    CREATED = "created", "Created"
    ALERTS_ADDED = "alerts_added", "Alerts added"
    STATUS_CHANGED = "status_changed", "Status changed"
    RISK_CHANGED = "risk_changed", "Risk changed"
    MERGED = "merged", "Merged"


class ChangeCause(models.TextChoices):
    PIPELINE = "pipeline", "Aggregation pipeline"
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    AUTOMATED_RULE = "automated_rule", "Automated response rule"
    PLAYBOOK_RUN = "playbook_run", "Playbook run"
    SYSTEM = "system", "System"


class EventStatusChange(models.Model):
    """One row per status transition: the event's history."""

    organisation = organisation_field()
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=EventStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=EventStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # The same cause as the change feed's row for this transition.
    cause = models.CharField(max_length=16, choices=ChangeCause.choices, default="system")
    cause_ref = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"event {self.event_id}: {self.from_status or 'new'} -> {self.to_status}"


# Exports are background jobs: their statuses are the jobs' ones.
ExportStatus = JobStatus


class ExportJob(BackgroundJob):
    """One Excel export of the Security Event Handling list, built by a worker.

    The job keeps the scope and the filters it was started with, so the worker
    reads exactly the events the user was looking at, and the file is served
    only to its owner while their scope still covers those accounts.
    """

    # Who asked: a console user, or an API key (exports started over the API).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="event_exports",
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, null=True, blank=True, related_name="event_exports"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="event_exports"
    )
    filters = models.JSONField(default=dict, help_text="The list's filters, dates resolved.")
    row_count = models.PositiveIntegerField(default=0, help_text="Events in the file.")
    file_path = models.CharField(
        max_length=255, blank=True, help_text="Name in the default storage; empty once removed."
    )

    class Meta(BackgroundJob.Meta):
        # The names the export table's constraint and index already have.
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="export_job_progress_at_most_100"
            ),
            # A job is served to the one who asked, so exactly one of them is named.
            models.CheckConstraint(
                condition=Q(owner__isnull=False, api_key__isnull=True)
                | Q(owner__isnull=True, api_key__isnull=False),
                name="export_job_owner_or_api_key",
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="export_job_expiry_idx")]

    def __str__(self):
        return f"export {self.pk} ({self.status}, {self.row_count} events)"


class WhitelistGroupOrigin(models.Model):
    """The event whose "Add to Whitelist" made a whitelist group.

    Owned by events, not by the group: whitelist sits below events and knows
    nothing of them. The link goes with the event (retention) or the group.
    """

    organisation = organisation_field()
    group = TenantOneToOneField(
        "whitelist.RuleGroup", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    event = TenantForeignKey(
        SecurityEvent, on_delete=models.CASCADE, related_name="whitelist_group_origins"
    )

    objects = TenantQuerySet.as_manager()

    def __str__(self):
        return f"group {self.group_id} from event {self.event_id}"


class EventChange(models.Model):
    """One change to a security event, written in the transaction that made it.

    The durable event change feed: what automated response, notifications and
    the cloud API's change queries follow. ``cause`` says who or what made the
    change (``cause_ref`` names it: a batch, an API key, a rule, a run) so that
    a consumer can tell its own changes from others' and never retrigger itself.
    """

    scope_region_field = "event__region"

    id = models.BigAutoField(primary_key=True)
    organisation = organisation_field()
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="changes")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    cause = models.CharField(max_length=16, choices=ChangeCause.choices)
    cause_ref = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # kind-specific: alert_ids; from/to (status or risk); continues (merged).
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="event_change_account_idx")]

    def __str__(self):
        return f"{self.kind} of event {self.event_id} by {self.cause}"


class EventChangeDelivery(models.Model):
    """A change a consumer of the feed has not handled yet.

    One row per (consumer, change), written with the change. A consumer
    claims its rows with FOR UPDATE SKIP LOCKED and deletes them in the
    transaction that handles them, so each consumer handles each change once
    whatever the order in which concurrent transactions commit (a position
    over ids would skip a change whose transaction committed late).
    """

    id = models.BigAutoField(primary_key=True)
    consumer = models.CharField(max_length=64)
    organisation = organisation_field()
    change = TenantForeignKey(EventChange, on_delete=models.CASCADE, related_name="deliveries")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["consumer", "change"], name="event_delivery_consumer_idx")]

    def __str__(self):
        return f"change {self.change_id} for {self.consumer}"
