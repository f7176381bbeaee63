"""Handling: what can be done to an entity (scenarios), what was decided for it
(handling policies), what runs in each account (handling tasks), where it runs
(each account's connector), who is told (notifications) and what is known about
an entity from outside (threat intelligence).

One entity handled in 2 scenarios over 3 accounts gives 2 policies and 6 tasks:
a policy is one entity x one scenario, a task is one policy x one account (x one
host, for actions on a host).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from alerts.models import Alert, Asset, EntityType
from events.models import SecurityEvent
from secops.models import Account, Organisation
from secops.scope import ScopedQuerySet
from secops.tenancy import TenantForeignKey, TenantQuerySet, organisation_field

# --- scenarios ------------------------------------------------------------------


class CloudService(models.TextChoices):
    CLOUD_FIREWALL = "cloud_firewall", "Cloud Firewall"
    WAF = "waf", "Web Application Firewall"
    SECURITY_CENTER = "security_center", "Security Center"


class Operation(models.TextChoices):
    """What a connector is asked to do; a scenario names one."""

    BLOCK_IP = "block_ip", "Block IP address"
    QUARANTINE_FILE = "quarantine_file", "Quarantine file"
    KILL_PROCESS = "kill_process", "Kill process"
    KILL_AND_QUARANTINE = "kill_and_quarantine", "Kill process and quarantine its file"

    @classmethod
    def undoable(cls) -> set[str]:
        """Operations that can be undone (unblocked) and so may have a validity.
        A killed process stays killed; a quarantine is lifted in the cloud's
        own console, not through its handling API."""
        return {cls.BLOCK_IP}


class Scenario(models.Model):
    """A way to handle one kind of entity through one cloud service.

    Built-in scenarios are data (a migration and ``sync_builtin_scenarios``
    keep them); custom playbooks of an organisation build on the same model.
    """

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    cloud_service = models.CharField(max_length=32, choices=CloudService.choices)
    operation = models.CharField(max_length=32, choices=Operation.choices)
    # Fixed parameters of the operation (e.g. {"direction": "in"}).
    parameters = models.JSONField(default=dict, blank=True)
    takes_validity = models.BooleanField(
        default=False, help_text="Whether the action has an action validity period."
    )
    default_validity_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Actions on a host make one task per host the entity was seen on.
    per_host = models.BooleanField(default=False)
    built_in = models.BooleanField(default=True)
    # Custom scenarios belong to an organisation; built-in ones to none.
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="scenarios"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["entity_type", "position", "name"]

    def __str__(self):
        return self.name

    @property
    def undoable(self) -> bool:
        return self.operation in Operation.undoable()


# --- policies and tasks ---------------------------------------------------------


class PolicySource(models.TextChoices):
    EVENT = "event", "Security event"
    ALERT = "alert", "Alert"
    PLAYBOOK_RUN = "playbook_run", "Playbook run"


class HandlingPolicy(models.Model):
    """One entity handled in one scenario, over the accounts in its scope.

    It belongs to the account of what created it (the event's or the alert's
    account); its tasks belong to the accounts they act in.
    """

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="policies")
    region = models.CharField(max_length=8, blank=True)
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    entity_value = models.TextField()
    # alerts.Entity.digest of the value: links to the entity page of any account.
    entity_digest = models.CharField(max_length=64)
    scenario = models.ForeignKey(Scenario, on_delete=models.PROTECT, related_name="policies")
    scope_accounts = models.ManyToManyField(
        Account, through="PolicyScopeAccount", related_name="policies_in_scope"
    )
    validity_days = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=PolicySource.choices)
    source_event = TenantForeignKey(
        SecurityEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handling_policies",
    )
    # No database constraint: alerts are partitioned by time on PostgreSQL
    # (alerts.AlertEntity says why); SET_NULL is applied by the ORM.
    source_alert = TenantForeignKey(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="handling_policies"
    )
    # The playbook run that made it (soar sits above this app: an id, not a key).
    source_run_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Editing the scope or validity increases it; a task records the revision it
    # ran with, so a task of an edited policy can be retried.
    revision = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "handling policies"
        indexes = [
            models.Index(fields=["account", "-created_at"], name="policy_scope_time_idx"),
            models.Index(fields=["entity_type", "entity_digest"], name="policy_entity_idx"),
        ]

    def __str__(self):
        return f"{self.scenario} on {self.entity_value}"


class PolicyScopeAccount(models.Model):
    """An account a policy acts in (the link table of ``scope_accounts``)."""

    organisation = organisation_field()
    policy = TenantForeignKey(HandlingPolicy, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "policy", "account"], name="policy_scope_account_unique"
            )
        ]

    def __str__(self):
        return f"policy {self.policy_id} in account {self.account_id}"


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    UNBLOCKING = "unblocking", "Unblocking"
    UNBLOCKED = "unblocked", "Unblocked"
    UNBLOCK_FAILED = "unblock_failed", "Unblock failed"
    EXPIRED = "expired", "Expired"

    @classmethod
    def active(cls) -> set[str]:
        """States in which the action is in force in the cloud."""
        return {cls.SUCCEEDED, cls.UNBLOCK_FAILED}

    @classmethod
    def finished(cls) -> set[str]:
        return {cls.SUCCEEDED, cls.FAILED, cls.UNBLOCKED, cls.UNBLOCK_FAILED, cls.EXPIRED}


class HandlingTask(models.Model):
    """One policy carried out in one account (and on one host, for host actions)."""

    organisation = organisation_field()
    policy = TenantForeignKey(HandlingPolicy, on_delete=models.CASCADE, related_name="tasks")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="handling_tasks")
    asset = TenantForeignKey(
        Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="handling_tasks"
    )
    cloud_service = models.CharField(max_length=32, choices=CloudService.choices)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default="pending")
    # Which connector carried it out, and whether it was the simulated cloud.
    connector = models.CharField(max_length=16, blank=True)
    # What the connector answered that undoing needs (e.g. the firewall rule id).
    external_ref = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    policy_revision = models.PositiveIntegerField(default=1)
    # Set when a worker claims the task; a redelivered message finds it claimed.
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Why an undo runs: someone asked (-> unblocked) or the validity ended (-> expired).
    undo_reason = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A task without a host counts as host 0, so that it is unique too
            # (an expression: SQLite knows no NULLS NOT DISTINCT).
            models.UniqueConstraint(
                "organisation",
                "policy",
                "account",
                Coalesce("asset", Value(0)),
                name="one_task_per_policy_account_host",
            )
        ]
        indexes = [
            models.Index(fields=["account", "status", "-created_at"], name="task_scope_status_idx"),
            # The expiry job: blocks in force whose validity has ended.
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["succeeded", "unblock_failed"]),
                name="task_active_expiry_idx",
            ),
        ]

    def __str__(self):
        return f"task {self.pk} ({self.get_status_display()})"


class TransitionCause(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    WORKER = "worker", "Worker"
    EXPIRY = "expiry", "Validity ended"
    PLAYBOOK_RUN = "playbook_run", "Playbook run"
    SYSTEM = "system", "System"


class TaskTransition(models.Model):
    """A task's history: every state change with its cause and the connector's answer."""

    organisation = organisation_field()
    task = TenantForeignKey(HandlingTask, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=TaskStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=TaskStatus.choices)
    cause = models.CharField(max_length=16, choices=TransitionCause.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    answer = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"task {self.task_id}: {self.from_status or '-'} -> {self.to_status}"


# --- connectors -----------------------------------------------------------------


class ConnectorKind(models.TextChoices):
    SIMULATED = "simulated", "Simulated cloud"
    WEBHOOK = "webhook", "Webhook"
    ALIBABA = "alibaba", "Alibaba Cloud"


class AccountConnector(models.Model):
    """How handling tasks reach an account's cloud. Without a row, the account
    uses the default connector (``DISPOSAL_DEFAULT_CONNECTOR``)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="connector")
    kind = models.CharField(max_length=16, choices=ConnectorKind.choices, default="simulated")
    webhook_url = models.URLField(max_length=500, blank=True)
    # Secrets are kept encrypted (disposal.secrets); never shown again or logged.
    webhook_secret = models.TextField(blank=True)
    access_key_id = models.CharField(max_length=128, blank=True)
    access_key_secret = models.TextField(blank=True)
    role_arn = models.CharField(max_length=300, blank=True)
    cloud_region = models.CharField(max_length=64, blank=True, default="cn-hangzhou")
    # Per-service endpoints; blank means the cloud's public endpoint for the region.
    endpoints = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    objects = ScopedQuerySet.as_manager()

    def __str__(self):
        return f"{self.get_kind_display()} for {self.account}"


class SimulatedAction(models.Model):
    """What the simulated cloud holds in force: a block, a quarantine or a kill."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    cloud_service = models.CharField(max_length=32, choices=CloudService.choices)
    operation = models.CharField(max_length=32, choices=Operation.choices)
    target = models.TextField()
    host = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_operation_display()} {self.target} ({self.account_id})"


class SimulatedFailure(models.Model):
    """An instruction to the simulated cloud to fail: every call for one entity
    value (or for any, when blank), or a share of the calls."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    target = models.TextField(blank=True, help_text="Entity value; blank for any.")
    share = models.FloatField(default=1.0, help_text="Share of matching calls that fail, 0-1.")
    applies_to_undo = models.BooleanField(default=False, help_text="Fail unblocking too.")
    retryable = models.BooleanField(default=True)
    message = models.CharField(max_length=300, default="Simulated failure.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"fail {self.target or 'any entity'} at {self.share:.0%}"


# --- notifications --------------------------------------------------------------


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """One event handling notification: a message to recipients over one channel."""

    scope_account_field = "event__account"

    organisation = organisation_field()
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipients = models.JSONField(default=list)
    title = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_channel_display()}: {self.title}"


# --- threat intelligence --------------------------------------------------------


class Verdict(models.TextChoices):
    MALICIOUS = "malicious", "Malicious"
    SUSPICIOUS = "suspicious", "Suspicious"
    BENIGN = "benign", "Benign"
    UNKNOWN = "unknown", "Unknown"


class IndicatorQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """Shared indicators and those of the scope's organisation."""
        return self.filter(Q(organisation__isnull=True) | Q(organisation_id=scope.organisation_id))


class ThreatIndicator(models.Model):
    """An indicator of compromise from a feed: an IP, a file hash, a domain or a URL."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="indicators"
    )
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    # Normalised as alerts.Entity normalises values (lower-case hashes, ...).
    value = models.TextField()
    digest = models.CharField(max_length=64)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    source = models.CharField(max_length=200)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(auto_now=True)

    objects = IndicatorQuerySet.as_manager()

    class Meta:
        ordering = ["-imported_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Coalesce("organisation", Value(0)),
                "entity_type",
                "digest",
                "source",
                name="one_indicator_per_source",
            )
        ]
        indexes = [models.Index(fields=["entity_type", "digest"], name="indicator_lookup_idx")]

    def __str__(self):
        return f"{self.value} ({self.get_verdict_display()}, {self.source})"
