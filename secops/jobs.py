"""Background jobs: work a user asks for and a Celery worker does.

A job is a row of a concrete subclass of ``BackgroundJob`` (an Excel export,
a bulk handling, a playbook run). The row keeps:

- the scope of the user who asked (``scope_fields`` when it is created,
  ``scope_of`` when it runs), so that the worker reads exactly what that user
  could read at that moment, whatever their scope is by then;
- a status the user polls, with a progress percentage and the error that
  ended it;
- ``expires_at``, after which the result is no longer served.

Its life, with the service that moves it:

    pending --claim--> running --finish_succeeded--> done
       |                  |
       +------------------+--finish_failed / fail_stalled--> failed

Every transition is a conditional UPDATE on the status it starts from, so
that concurrent actors (a redelivered task message, the stall clean-up, the
worker) cannot undo one another: whoever comes second changes nothing and is
told so. ``run_job`` puts the whole run together, so a task's body is one
call; ``queue_on_commit`` hands a new job to its task.

The services take the concrete model as their first argument and touch only
the fields declared here; what a job produces (a file, handled events) is the
subclass's business.
"""

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from secops.celery import app as celery_app
from secops.enums import RegionGroup
from secops.models import Organisation
from secops.scope import NotInScope, Scope

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# A job in one of these states has not ended yet: its status page keeps polling.
ACTIVE_STATES = frozenset({JobStatus.PENDING, JobStatus.RUNNING})

UNEXPECTED_FAILURE = "The job failed unexpectedly. Start it again."
INTERRUPTED = "The job did not finish: it was interrupted. Start it again."
NOT_QUEUED = "The job could not be queued: the task queue is unavailable."


class JobRefused(Exception):
    """The job cannot be done; the message tells the user why and what to do.

    Raised by a job's work, it fails the job with this message rather than
    with the generic one of an unexpected error.
    """


class BackgroundJobQuerySet(models.QuerySet):
    def in_scope(self, scope: Scope):
        """Jobs of the scope's organisation, made in the scope's region.

        The job's accounts are a JSON list, so whether the scope covers every
        one of them is decided on the row: ``BackgroundJob.is_covered_by``.
        """
        return self.filter(organisation_id=scope.organisation_id, region=scope.region or "")

    def expired(self, now: datetime | None = None):
        return self.filter(expires_at__lte=now or timezone.now())


class BackgroundJob(models.Model):
    """What every background job records: who asked, in which scope, and how
    far the worker got.

    A subclass adds what the job needs as input and what it produces. A
    subclass that declares its own ``Meta`` derives it from
    ``BackgroundJob.Meta``: a plain ``Meta`` would drop the progress
    constraint and the index on ``expires_at``.
    """

    # Jobs are reached through their own model (the owner's status page, the
    # clean-up), never from a user or an organisation.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    account_ids = models.JSONField(default=list, help_text="The accounts of the scope.")
    region = models.CharField(
        max_length=8, choices=RegionGroup.choices, blank=True, help_text="Empty: every region."
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0 to 100.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    objects = BackgroundJobQuerySet.as_manager()

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="%(app_label)s_%(class)s_progress_at_most_100"
            )
        ]
        # The clean-up finds expired jobs by this date.
        indexes = [models.Index(fields=["expires_at"])]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def is_covered_by(self, scope: Scope) -> bool:
        """Whether ``scope`` sees every account and the region the job was made in."""
        return (
            self.organisation_id == scope.organisation_id
            and self.region == (scope.region or "")
            and set(self.account_ids) <= set(scope.account_ids)
        )


# --- the scope snapshot ---------------------------------------------------------


def scope_fields(scope: Scope) -> dict:
    """The fields that record ``scope`` on a new job (see ``scope_of``)."""
    return {
        "organisation_id": scope.organisation_id,
        "account_ids": sorted(scope.account_ids),
        "region": scope.region or "",
    }


def scope_of(job: BackgroundJob) -> Scope:
    """The scope the job was started in: its accounts, in its region."""
    return dataclasses.replace(
        Scope.for_accounts(job.organisation_id, job.account_ids), region=job.region or None
    )


def get_owned_job_or_404(model: type[BackgroundJob], scope: Scope, user, job_id: int):
    """The user's own job, while their scope covers its accounts and region.

    Anyone else's job, or one made in a view the user has since left, does not
    exist for them (404).
    """
    return get_job_of_or_404(model, scope, job_id, owner_id=user.pk)


def get_job_of_or_404(model: type[BackgroundJob], scope: Scope, job_id: int, **whose):
    """The job ``whose`` names (``owner_id=...``, or another field of the model
    that says who asked, such as an API key), while ``scope`` covers its
    accounts and region; otherwise 404."""
    job = model.objects.in_scope(scope).filter(id=job_id, **whose).first()
    if job is None or not job.is_covered_by(scope):
        raise NotInScope(
            model.objects.filter(**whose),
            {"id": job_id},
            covered=lambda job, scope: job.is_covered_by(scope),
        )
    return job


# --- queueing -------------------------------------------------------------------


def registered_task(name: str):
    """The Celery task registered under ``name``.

    A worker imports every app's tasks module when it starts; a web process
    imports them here on first use, so that a service can queue its task
    without importing the module that defines it (which imports the service).
    """
    if name not in celery_app.tasks:
        celery_app.autodiscover_tasks(force=True)
    return celery_app.tasks[name]


def queue_rows_on_commit(task_name: str, row_ids, *, what: str) -> None:
    """Queue ``task_name`` for each row id once the caller's transaction commits.

    For work whose rows say what is left to do (a pending handling task, a
    playbook run, a notification): a broker that cannot be reached is logged
    and loses nothing, as the periodic sweep of that work queues it later.
    """
    row_ids = list(row_ids)

    def queue() -> None:
        task = registered_task(task_name)
        for row_id in row_ids:
            try:
                task.delay(row_id)
            except Exception:  # the broker is down: the sweep queues it later
                logger.exception("Could not queue %s for %s %s", task_name, what, row_id)

    if row_ids:
        transaction.on_commit(queue)


def queue_on_commit(
    model: type[BackgroundJob], job_id: int, task_name: str, *, not_queued: str = NOT_QUEUED
) -> None:
    """Queue the task ``task_name`` of a new job once the job's row is committed.

    A worker picking up the task before the commit would find no job. When
    the broker is unreachable the job is failed with ``not_queued``, so that
    the user is told at once rather than after the stall timeout.
    """

    def queue() -> None:
        try:
            registered_task(task_name).delay(job_id)
        except BrokerError:
            logger.exception("Could not queue %s %s", model._meta.verbose_name, job_id)
            finish_failed(model, job_id, not_queued)

    transaction.on_commit(queue)


# --- the transitions ------------------------------------------------------------


def claim(model: type[BackgroundJob], job_id: int) -> bool:
    """Take a pending job for this worker.

    The conditional UPDATE lets exactly one caller win, however often the
    broker delivers the task: a second delivery finds the job no longer
    pending and does nothing.
    """
    claimed = model.objects.filter(id=job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def report_progress(model: type[BackgroundJob], job_id: int, percent: int) -> None:
    """Record how far a running job got; a job that ended meanwhile keeps its state."""
    model.objects.filter(id=job_id, status=JobStatus.RUNNING).update(progress=percent)


def finish_succeeded(model: type[BackgroundJob], job_id: int, **fields) -> bool:
    """Mark a running job done, storing ``fields`` (what it produced) with it.

    Returns False when the job was no longer running (the stall clean-up
    failed it meanwhile): nobody will collect what it produced.
    """
    finished = model.objects.filter(id=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.DONE, progress=100, finished_at=timezone.now(), **fields
    )
    return finished == 1


def finish_failed(model: type[BackgroundJob], job_id: int, error: str) -> bool:
    """Fail a job that has not ended, with ``error`` for the user to read."""
    failed = model.objects.filter(id=job_id, status__in=ACTIVE_STATES).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now()
    )
    return failed == 1


def run_job(
    model: type[BackgroundJob],
    job_id: int,
    work: Callable[[BackgroundJob], dict],
    *,
    unexpected_failure: str = UNEXPECTED_FAILURE,
    discard: Callable[[dict], None] | None = None,
) -> bool:
    """Claim the job, do ``work(job)``, and record how it ended.

    ``work`` returns the fields to store on the job when it succeeds; it may
    report progress with ``report_progress``. A ``JobRefused`` it raises fails
    the job with its message; any other error with ``unexpected_failure``
    (the details go to the worker's log, not to the user). When the job was
    failed as stalled while the work ran, ``discard`` is given the fields to
    undo what the work produced.

    Returns whether this call did the work: False when another delivery of
    the task claimed the job first.
    """
    if not claim(model, job_id):
        return False
    job = model.objects.get(id=job_id)
    try:
        produced = work(job)
    except JobRefused as refusal:
        finish_failed(model, job_id, str(refusal))
        return True
    except Exception:
        logger.exception("%s %s failed", model._meta.verbose_name.capitalize(), job_id)
        finish_failed(model, job_id, unexpected_failure)
        return True
    if not finish_succeeded(model, job_id, **produced) and discard is not None:
        discard(produced)
    return True


# --- clean-up -------------------------------------------------------------------


def fail_stalled(
    model: type[BackgroundJob],
    older_than: timedelta,
    *,
    error: str = INTERRUPTED,
    now: datetime | None = None,
) -> int:
    """Fail the jobs that have lost their worker, or whose task message was lost.

    A job still pending ``older_than`` after it was created, or still running
    ``older_than`` after it was claimed, will not finish: it is failed so that
    the user is told. ``older_than`` must be longer than the task's time limit.
    Returns how many jobs were failed.
    """
    now = now or timezone.now()
    return model.objects.filter(
        Q(status=JobStatus.PENDING, created_at__lt=now - older_than)
        | Q(status=JobStatus.RUNNING, started_at__lt=now - older_than)
    ).update(status=JobStatus.FAILED, error=error, finished_at=now)


def delete_expired(
    model: type[BackgroundJob],
    *,
    kept_for: timedelta = timedelta(0),
    now: datetime | None = None,
) -> int:
    """Delete the jobs that expired more than ``kept_for`` ago; returns how many.

    Keeping an expired job a while lets its page explain that it expired
    rather than answer that it never existed.
    """
    now = now or timezone.now()
    _, deleted = model.objects.expired(now - kept_for).delete()
    return deleted.get(model._meta.label, 0)
