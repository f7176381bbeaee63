"""SIEM detection rules in Sigma, their run statistics, the watermark of the
logs they have read, and the state their correlations keep between runs."""

from django.conf import settings
from django.db import models

from secops.enums import RiskLevel
from secops.models import Account, Organisation
from secops.rules import OrganisationRule, rule_key_constraints
from secops.scope import ScopedQuerySet
from secops.tenancy import organisation_field

__all__ = [
    "CorrelationState",
    "DetectionCursor",
    "DetectionRule",
    "DetectionRuleKind",
    "DetectionRuleStats",
    "SigmaLevel",
]


class SigmaLevel(models.TextChoices):
    INFORMATIONAL = "informational", "Informational"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"

    def risk(self) -> RiskLevel:
        """Our three risk levels: critical alerts are High, informational ones Low."""
        return {
            self.INFORMATIONAL: RiskLevel.LOW,
            self.LOW: RiskLevel.LOW,
            self.MEDIUM: RiskLevel.MEDIUM,
            self.HIGH: RiskLevel.HIGH,
            self.CRITICAL: RiskLevel.HIGH,
        }[self]


class DetectionRuleKind(models.TextChoices):
    DETECTION = "detection", "Detection"
    CORRELATION = "correlation", "Correlation"


class DetectionRule(OrganisationRule):
    """A Sigma rule file (one rule that raises alerts, with the rules a
    correlation refers to). Predefined rules come from ``alerts/sigma/rules``
    (the key is the file name) and have no organisation; custom rules belong to one.

    Title, level, status and the rest are read from the YAML when it is
    saved, so that lists need not parse it.
    """

    yaml = models.TextField(help_text="The Sigma rule as written.")
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    sigma_id = models.CharField(max_length=64, blank=True)
    level = models.CharField(max_length=16, choices=SigmaLevel.choices)
    status = models.CharField(max_length=16, blank=True, help_text="Sigma's maturity status.")
    kind = models.CharField(max_length=16, choices=DetectionRuleKind.choices)
    log_types = models.JSONField(default=list, help_text="The log types it reads.")
    alert_type = models.CharField(
        max_length=64, help_text="The type of the alerts it raises (the whitelist scenario)."
    )
    tactic = models.CharField(max_length=128, blank=True)
    technique = models.CharField(max_length=128, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["title"]
        constraints = rule_key_constraints(
            predefined_name="predefined_detection_rule_key_unique",
            custom_name="custom_detection_rule_key_unique",
        )

    def __str__(self):
        return self.title

    @property
    def risk(self) -> RiskLevel:
        return SigmaLevel(self.level).risk()


class DetectionRuleStats(models.Model):
    """What the rule did over one account's logs: its last run and totals.

    One row per rule and account, so that a view sums only the accounts of
    its scope. A run's batches add to the row while ``last_run_id`` is theirs.
    """

    organisation = organisation_field()
    rule = models.ForeignKey(DetectionRule, on_delete=models.CASCADE, related_name="stats")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="detection_stats")
    last_run_id = models.CharField(max_length=32, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_seconds = models.FloatField(default=0.0)
    last_run_records = models.PositiveBigIntegerField(default=0)
    last_run_hits = models.PositiveIntegerField(default=0)
    last_run_errors = models.PositiveIntegerField(default=0)
    total_hits = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "detection rule stats"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "rule", "account"], name="detection_stats_unique"
            )
        ]

    def __str__(self):
        return f"rule {self.rule_id} on account {self.account_id}"


class DetectionCursorQuerySet(models.QuerySet):
    def in_scope(self, scope):
        return self.filter(organisation_id=scope.organisation_id)


class DetectionCursor(models.Model):
    """The watermark: how far the detection rules have read an organisation's logs.

    Records are read in id order within a window of ``received_at``
    (``alerts.detection_run`` explains why both). Every record received before
    ``examined_before`` has been examined; every record with an id up to
    ``low_id`` was received before it, so reading starts above ``low_id``. A
    sweep in progress reads the records received in
    ``[examined_before, sweep_until)`` and has read them up to
    ``sweep_after_id``. The row is locked by the run that holds it and
    updated in the same transaction as the alerts of each batch.
    """

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="detection_cursor"
    )
    examined_before = models.DateTimeField()
    low_id = models.BigIntegerField(default=0)
    sweep_until = models.DateTimeField(null=True, blank=True)
    sweep_after_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DetectionCursorQuerySet.as_manager()

    def __str__(self):
        return f"detection watermark of organisation {self.organisation_id}"


class CorrelationState(models.Model):
    """The recent events of one group of one correlation, kept between batches."""

    organisation = organisation_field()
    rule = models.ForeignKey(
        DetectionRule, on_delete=models.CASCADE, related_name="correlation_states"
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="correlation_states"
    )
    correlation = models.CharField(max_length=200, help_text="The correlation's name in the file.")
    group_key = models.CharField(max_length=64)
    group_values = models.JSONField(default=dict)
    state = models.JSONField(default=dict)
    # Nothing joins a group one timespan after its last event: then it goes.
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "rule", "account", "correlation", "group_key"],
                name="correlation_state_unique_group",
            )
        ]
        indexes = [models.Index(fields=["expires_at"], name="correlation_state_expiry_idx")]

    def __str__(self):
        return f"{self.correlation} group {self.group_key[:8]} of rule {self.rule_id}"
