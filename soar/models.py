from django.db import models
from django.db.models import Q

from events.models import EventStatus
from secops.jobs import BackgroundJob


class BulkAction(models.TextChoices):
    """What a bulk handling job does to each of its events."""

    SET_STATUS = "set_status", "Set the status"
    RECOMMENDED = "recommended", "Use the recommended handling policy"
    # Running a playbook on each event joins here with the playbooks
    # (RUN_PLAYBOOK), together with the playbook the job names.


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

    action = models.CharField(max_length=16, choices=BulkAction.choices)
    target_status = models.CharField(
        max_length=16,
        choices=[(status.value, status.label) for status in EventStatus.manually_settable()],
        blank=True,
        help_text="The status to set (Set the status); never Failed.",
    )
    description = models.TextField(blank=True, help_text="Recorded with each status change.")
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

    job = models.ForeignKey(BulkHandlingJob, on_delete=models.CASCADE, related_name="items")
    # Not a foreign key: the record of what was done outlives an event that
    # retention removes meanwhile.
    event_id = models.BigIntegerField()
    event_name = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=ItemOutcome.choices)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "event_id"], name="soar_bulk_item_once_per_event"
            )
        ]
        # The result page counts a job's items by outcome and lists its failures.
        indexes = [models.Index(fields=["job", "outcome", "id"], name="soar_bulk_item_outcome_idx")]

    def __str__(self):
        return f"event {self.event_id} of bulk handling {self.job_id}: {self.outcome}"
