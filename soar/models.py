"""SOAR: playbooks (versioned lists of steps), their runs, and the automated
response rules that start runs or change events when the event change feed
reports what they wait for."""

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from events.models import EventStatus, SecurityEvent
from secops.jobs import BackgroundJob
from secops.models import Account, ApiKey, Organisation
from secops.scope import ScopedQuerySet
from secops.tenancy import TenantForeignKey, TenantQuerySet, organisation_field

# --- playbooks ------------------------------------------------------------------


class StepKind(models.TextChoices):
    ACTION = "action", "Action through a connector"
    CONDITION = "condition", "Condition"
    SET_STATUS = "set_status", "Change event status"
    SET_RISK = "set_risk", "Change risk level"
    NOTIFY = "notify", "Notify"
    WAIT = "wait", "Wait"
    APPROVAL = "approval", "Require approval"


class PlaybookQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """The built-in playbooks and those of the scope's organisation."""
        return self.filter(Q(organisation__isnull=True) | Q(organisation_id=scope.organisation_id))


class Playbook(models.Model):
    """What to do to an event, step by step. Built-in playbooks (no
    organisation) carry out one built-in scenario; an organisation's own
    playbooks are edited, and every edit makes a new version."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="playbooks"
    )
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    built_in = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    current_version = models.ForeignKey(
        "PlaybookVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PlaybookQuerySet.as_manager()

    class Meta:
        ordering = ["-built_in", "name"]
        constraints = [
            models.UniqueConstraint(
                Coalesce("organisation", Value(0)), "key", name="playbook_key_per_organisation"
            )
        ]

    def __str__(self):
        return self.name


class PlaybookVersion(models.Model):
    """The steps of a playbook as they were at one edit; runs record theirs."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # [{"kind": StepKind, "name": str, "params": {...}, "timeout_seconds": int}, ...]
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["playbook", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["playbook", "number"], name="one_playbook_version")
        ]

    def __str__(self):
        return f"{self.playbook} v{self.number}"


# --- runs -----------------------------------------------------------------------


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped by a condition"
    REJECTED = "rejected", "Rejected"

    @classmethod
    def ended(cls) -> set[str]:
        return {cls.SUCCEEDED, cls.FAILED, cls.STOPPED, cls.REJECTED}


class RunTrigger(models.TextChoices):
    RULE = "rule", "Automated response rule"
    USER = "user", "User"
    BULK = "bulk", "Bulk handling"
    API = "api", "API"


class PlaybookRun(models.Model):
    """One playbook version carried out on one event."""

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="playbook_runs")
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="playbook_runs")
    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(PlaybookVersion, on_delete=models.PROTECT, related_name="runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    rule = TenantForeignKey(
        "AutomationRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Options of the rule or person that started it: validity days, accounts.
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default="pending")
    # The index of the next step to carry out.
    next_step = models.PositiveSmallIntegerField(default=0)
    # Set while a worker advances the run; a second message finds it taken.
    claimed_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    approval_deadline = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    rerun_of = TenantForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="run_scope_time_idx"),
            models.Index(
                fields=["resume_at"],
                condition=Q(status__in=["waiting", "awaiting_approval"]),
                name="run_resume_idx",
            ),
        ]

    def __str__(self):
        return f"run {self.pk} of {self.playbook} on event {self.event_id}"


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped the run"
    WAITING = "waiting", "Waiting"


class RunStep(models.Model):
    """What one step of a run did. A step's row is written before it acts, and
    the row is unique per run and step, so no step acts twice."""

    organisation = organisation_field()
    run = TenantForeignKey(PlaybookRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default="running")
    message = models.TextField(blank=True)
    # What it made: {"policies": [ids], "tasks": n, "notifications": [ids], ...}
    output = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "run", "index"], name="one_row_per_step"
            )
        ]

    def __str__(self):
        return f"step {self.index} of run {self.run_id}: {self.status}"


# --- automated response rules ---------------------------------------------------


class Trigger(models.TextChoices):
    EVENT_CREATED = "event_created", "Event created"
    ALERTS_ADDED = "alerts_added", "Alerts added to an event"
    STATUS_CHANGED = "status_changed", "Event status changed"
    ALERT_CREATED = "alert_created", "Alert created"


class RuleAction(models.TextChoices):
    RUN_PLAYBOOK = "run_playbook", "Run a playbook"
    SET_STATUS = "set_status", "Change event status"
    SET_RISK = "set_risk", "Change risk level"


class AutomationRule(models.Model):
    """When the change feed reports ``trigger`` for an event that meets
    ``conditions``, do ``action``. Rules of an organisation run in ``position``
    order."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="automation_rules"
    )
    # Limited to these accounts; none: every account of the organisation.
    accounts = models.ManyToManyField(
        Account, blank=True, through="AutomationRuleAccount", related_name="automation_rules"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    # A secops.conditions tree over the event's facts; {} holds always.
    conditions = models.JSONField(default=dict, blank=True)
    action = models.CharField(max_length=16, choices=RuleAction.choices)
    playbook = models.ForeignKey(
        Playbook, on_delete=models.PROTECT, null=True, blank=True, related_name="rules"
    )
    # {"status": ...} / {"risk": ...} / {"validity_days": n, "scope": "event_account"|"seen"}
    parameters = models.JSONField(default=dict, blank=True)
    require_approval = models.BooleanField(default=False)
    max_runs_per_minute = models.PositiveIntegerField(default=30)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation", "position", "id"]

    def __str__(self):
        return self.name


class AutomationRuleAccount(models.Model):
    """An account a rule is limited to (the link table of ``accounts``)."""

    organisation = organisation_field()
    rule = TenantForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "rule", "account"], name="automation_rule_account_unique"
            )
        ]

    def __str__(self):
        return f"rule {self.rule_id} in account {self.account_id}"


class FiringOutcome(models.TextChoices):
    ACTED = "acted", "Acted"
    RATE_LIMITED = "rate_limited", "Over the rule's rate limit"
    PAUSED = "paused", "Automation paused"
    FAILED = "failed", "Failed"


class RuleFiring(models.Model):
    """Each time a rule's trigger and conditions held for an event, and what
    came of it: the excess over the rate limit is recorded, not dropped."""

    organisation = organisation_field()
    rule = TenantForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="firings")
    event = TenantForeignKey(SecurityEvent, on_delete=models.CASCADE, related_name="+")
    change_id = models.PositiveBigIntegerField()
    outcome = models.CharField(max_length=16, choices=FiringOutcome.choices)
    run = TenantForeignKey(
        PlaybookRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            # A change delivered twice fires a rule once.
            models.UniqueConstraint(
                fields=["organisation", "rule", "change_id", "event"], name="one_firing"
            )
        ]
        indexes = [models.Index(fields=["rule", "outcome", "-at"], name="firing_rate_idx")]

    def __str__(self):
        return f"{self.rule} on event {self.event_id}: {self.outcome}"


class AutomationSwitch(models.Model):
    """The organisation's kill switch: while paused, no rule acts."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="automation_switch"
    )
    paused = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"automation {'paused' if self.paused else 'on'} for {self.organisation_id}"


# --- bulk handling --------------------------------------------------------------


class BulkAction(models.TextChoices):
    """What a bulk handling job does to each of its events."""

    SET_STATUS = "set_status", "Set the status"
    RECOMMENDED = "recommended", "Use the recommended handling policy"
    # Start a run of the job's playbook on each event.
    RUN_PLAYBOOK = "run_playbook", "Run a playbook"


class BulkSelection(models.TextChoices):
    """How the user chose the events."""

    SELECTED = "selected", "Selected events"
    FILTER = "filter", "All events matching the filters"


class BulkHandlingJob(BackgroundJob):
    """Many security events handled at once, by a worker, for their owner.

    The events are resolved when the job is started (``event_ids``): the
    selected ones, or every one the list's filters matched then, so that the
    job handles what the user confirmed and nothing that arrived afterwards.
    Each event's outcome is a ``BulkHandlingItem``.
    """

    # Who asked: a console user, or an API key (jobs started over the API).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        ApiKey,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bulk_handling_jobs",
    )
    action = models.CharField(max_length=16, choices=BulkAction.choices)
    target_status = models.CharField(
        max_length=16,
        choices=[(status.value, status.label) for status in EventStatus.manually_settable()],
        blank=True,
        help_text="The status to set (Set the status); never Failed.",
    )
    description = models.TextField(blank=True, help_text="Recorded with each status change.")
    # Kept while a job names it: its page says which playbook ran.
    playbook = models.ForeignKey(
        Playbook,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bulk_jobs",
        help_text="The playbook to run on each event (Run a playbook).",
    )
    selection = models.CharField(max_length=16, choices=BulkSelection.choices)
    filters = models.JSONField(
        default=dict, blank=True, help_text="The list's filters, dates resolved (all matching)."
    )
    event_ids = models.JSONField(default=list, help_text="The events to handle, in order.")
    event_count = models.PositiveIntegerField(default=0)

    class Meta(BackgroundJob.Meta):
        verbose_name = "bulk handling job"
        constraints = [
            *BackgroundJob.Meta.constraints,
            # Failed is set only by a failing handling task, never by a person.
            models.CheckConstraint(
                condition=~Q(target_status=EventStatus.FAILED),
                name="soar_bulk_job_never_sets_failed",
            ),
            models.CheckConstraint(
                condition=~Q(action=BulkAction.SET_STATUS) | ~Q(target_status=""),
                name="soar_bulk_job_status_named",
            ),
            models.CheckConstraint(
                condition=~Q(action=BulkAction.RUN_PLAYBOOK) | Q(playbook__isnull=False),
                name="soar_bulk_job_playbook_named",
            ),
            # A job is shown to the one who asked, so exactly one of them is named.
            models.CheckConstraint(
                condition=Q(owner__isnull=False, api_key__isnull=True)
                | Q(owner__isnull=True, api_key__isnull=False),
                name="soar_bulk_job_owner_or_api_key",
            ),
        ]

    def __str__(self):
        return f"bulk handling {self.pk} ({self.status}, {self.event_count} events)"


class ItemOutcome(models.TextChoices):
    HANDLED = "handled", "Handled"
    FAILED = "failed", "Failed"
    # Nothing to do: the event had the status already, or no policy is recommended.
    SKIPPED = "skipped", "Skipped"


class BulkHandlingItem(models.Model):
    """What a bulk handling job did with one event, recorded in the transaction
    that handled it: a job run again finds the events it has done."""

    organisation = organisation_field()
    job = TenantForeignKey(BulkHandlingJob, on_delete=models.CASCADE, related_name="items")
    # Not a foreign key: the record of what was done outlives an event that
    # retention removes meanwhile.
    event_id = models.BigIntegerField()
    event_name = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=ItemOutcome.choices)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "job", "event_id"], name="soar_bulk_item_once_per_event"
            )
        ]
        # The result page counts a job's items by outcome and lists its failures.
        indexes = [models.Index(fields=["job", "outcome", "id"], name="soar_bulk_item_outcome_idx")]

    def __str__(self):
        return f"event {self.event_id} of bulk handling {self.job_id}: {self.outcome}"
