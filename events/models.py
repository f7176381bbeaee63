"""Aggregation rules and the security events they make of alerts."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from alerts.models import Alert, Asset
from secops.enums import RegionGroup, RiskLevel
from secops.models import Account, Organisation
from secops.rules import OrganisationRule, rule_key_constraints
from secops.scope import ScopedQuerySet


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
    continues = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        help_text="The full event this one continues (events hold at most 10,000 alerts).",
    )
    alerts = models.ManyToManyField(Alert, through="EventAlert", related_name="events")
    affected_assets = models.ManyToManyField(Asset, blank=True, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            # The product's rule: new alerts join the group's event only while it
            # is Unhandled, so there is at most one Unhandled event per group.
            # Enforced here so that concurrent workers cannot create two.
            models.UniqueConstraint(
                fields=["account", "rule", "group_key"],
                condition=Q(status="unhandled"),
                name="one_unhandled_event_per_group",
            )
        ]
        indexes = [
            # The Security Event Handling list: scope + region, newest first,
            # each with the single filter it serves. The first index also
            # holds every other column that the counts and the chart
            # (services.event_tallies) and the ids of a page in any sort order
            # (services.events_page) read, so both are index-only scans rather
            # than reads of every event of the range (tens of thousands over
            # 180 days).
            models.Index(
                fields=[
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


class EventAlert(models.Model):
    event = models.ForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="alert_links")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="event_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "alert"], name="event_alert_unique")
        ]
        indexes = [models.Index(fields=["alert"], name="event_alert_by_alert_idx")]

    def __str__(self):
        return f"alert {self.alert_id} in event {self.event_id}"


class PendingAlertBatch(models.Model):
    """Alerts stored by one ingestion call and not yet through the pipeline.

    Created in the ingestion's transaction and deleted in the pipeline's, so
    it exists exactly while its alerts wait (see services.process_batch).
    """

    alert_ids = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"batch {self.pk} of {len(self.alert_ids)} alerts"


class EventStatusChange(models.Model):
    """One row per status transition: the event's history."""

    event = models.ForeignKey(
        SecurityEvent, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(max_length=16, choices=EventStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=EventStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"event {self.event_id}: {self.from_status or 'new'} -> {self.to_status}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# A job in one of these states is still on its way to a file: its progress
# partial keeps polling.
EXPORT_ACTIVE_STATES = frozenset({ExportStatus.PENDING, ExportStatus.RUNNING})


class ExportJobQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """Jobs of the scope's organisation, made in the scope's region.

        The job's accounts are a JSON list, so whether the scope covers every
        one of them is decided on the row: ``ExportJob.is_covered_by``.
        """
        return self.filter(organisation_id=scope.organisation_id, region=scope.region or "")


class ExportJob(models.Model):
    """One Excel export of the Security Event Handling list, built by a worker.

    The job keeps the scope and the filters it was started with, so the worker
    reads exactly the events the user was looking at, and the file is served
    only to its owner while their scope still covers those accounts.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="event_exports"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="event_exports"
    )
    account_ids = models.JSONField(default=list, help_text="The accounts of the scope.")
    region = models.CharField(
        max_length=8, choices=RegionGroup.choices, blank=True, help_text="Empty: every region."
    )
    filters = models.JSONField(default=dict, help_text="The list's filters, dates resolved.")
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0 to 100.")
    row_count = models.PositiveIntegerField(default=0, help_text="Events in the file.")
    file_path = models.CharField(
        max_length=255, blank=True, help_text="Name in the default storage; empty once removed."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="export_job_progress_at_most_100"
            )
        ]
        indexes = [
            # The periodic cleanup finds expired jobs by this date.
            models.Index(fields=["expires_at"], name="export_job_expiry_idx"),
        ]

    def __str__(self):
        return f"export {self.pk} ({self.status}, {self.row_count} events)"

    @property
    def is_active(self) -> bool:
        return self.status in EXPORT_ACTIVE_STATES

    def is_covered_by(self, scope) -> bool:
        """Whether ``scope`` sees every account and the region the file was made from."""
        return (
            self.organisation_id == scope.organisation_id
            and self.region == (scope.region or "")
            and set(self.account_ids) <= set(scope.account_ids)
        )
