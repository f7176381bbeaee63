"""Bulk handling: many security events handled at once, by a worker.

An analyst selects events in the Security Event Handling list, or takes every
event the list's filters match, and chooses one action for all of them: set
their status (with a description), handle each with its recommended
handling policies, or start a run of a playbook on each. ``plan_selected`` / ``plan_matching`` resolve the events
when the job is started (at most ``MAX_EVENTS``), ``start_bulk_handling``
queues the job, and a Celery worker runs ``run_bulk_job``.

Each event is handled by ``disposal.handling.handle_event`` in a transaction
of its own, which also records its ``BulkHandlingItem``: an event that cannot
be handled (a refusal of the rules or of the owner's role) is recorded as
failed and the job goes on with the next one. A playbook run is only started
there (``soar.runs.start_run``); it proceeds on its own once its event's
transaction commits.

The worker acts with the owner's rights as they are while it runs, not as they
were when the job was started: ``acting_scope`` rebuilds the scope from the
owner's current memberships (again before every chunk of events), so a user
whose role was taken away meanwhile handles nothing more.

The job's life (claim, progress, failure, stall, expiry) is that of every
background job, in ``secops.jobs``.
"""

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from disposal.errors import HandlingError
from disposal.handling import ActionChoice, HandlingRequest, handle_event, handling_context
from events import feed
from events.export import filters_to_json
from events.models import EventStatus, SecurityEvent
from events.queries import SORTS, filtered_events
from events.services import EventStatusError
from secops import jobs
from secops.enums import View
from secops.models import Account, AccountMembership, ApiKey, OrganisationMembership
from secops.scope import Scope
from secops.services import scope_for_api_key
from soar.models import (
    BulkAction,
    BulkHandlingItem,
    BulkHandlingJob,
    BulkSelection,
    ItemOutcome,
    Playbook,
    RunTrigger,
)
from soar.runs import RunError, start_run

# At most this many events in one job.
MAX_EVENTS = 10_000
# Progress is reported, and the owner's rights read again, every this many events.
EVENTS_PER_CHUNK = 25
# The job's page (its result) is kept this long, then the job is deleted.
JOB_LIFETIME = timedelta(days=7)
# A job still pending or running after this long has lost its worker: it is
# failed so that the user is told. Longer than the task's time limit.
STALLED_AFTER = timedelta(minutes=90)
MAX_DESCRIPTION = 2000
# The registered name of the Celery task that runs a job (soar.tasks).
BULK_TASK = "soar.run_bulk_handling"

UNEXPECTED_FAILURE = (
    "The bulk handling failed unexpectedly. The events listed below were handled; "
    "start it again for the others."
)
NOT_QUEUED = "The bulk handling could not be queued: the task queue is unavailable."
INTERRUPTED = (
    "The bulk handling did not finish: it was interrupted. The events listed below were "
    "handled; start it again for the others."
)

# The statuses a person may set; Failed is set only by a failing handling task.
SETTABLE_STATUSES = tuple(EventStatus.manually_settable())


class BulkRefused(jobs.JobRefused):
    """The bulk handling cannot be done; the message tells the user why and what to do."""


# --- what to do ------------------------------------------------------------------


@dataclass(frozen=True)
class BulkRequest:
    """The action applied to every event of a job."""

    action: str
    target_status: str = ""
    description: str = ""
    playbook: Playbook | None = None

    def check(self) -> None:
        """Raise ``BulkRefused`` for an action the rules do not allow."""
        if self.action not in BulkAction.values:
            raise BulkRefused(f"Unknown action {self.action!r}.")
        if self.action == BulkAction.SET_STATUS:
            if self.target_status == EventStatus.FAILED:
                raise BulkRefused("Failed is set only when a handling task fails.")
            if self.target_status not in SETTABLE_STATUSES:
                raise BulkRefused("Choose the status to set: Unhandled, Handling or Handled.")
        if self.action == BulkAction.RUN_PLAYBOOK and self.playbook is None:
            raise BulkRefused("Choose the playbook to run.")
        if len(self.description) > MAX_DESCRIPTION:
            raise BulkRefused(f"The description is at most {MAX_DESCRIPTION:,} characters.")

    def describe(self, count: int) -> str:
        """What the job will do, e.g. "Set 3 events to Handled"."""
        events = f"{count:,} event{'' if count == 1 else 's'}"
        if self.action == BulkAction.SET_STATUS:
            return f"Set {events} to {EventStatus(self.target_status).label}"
        if self.action == BulkAction.RUN_PLAYBOOK:
            return f"Run the playbook {self.playbook.name} on {events}"
        return f"Handle {events} with the recommended handling policies"


def runnable_playbooks(scope: Scope):
    """The playbooks a job of ``scope`` may run: built-in or of its
    organisation, switched on, with steps."""
    return Playbook.objects.in_scope(scope).filter(enabled=True, current_version__isnull=False)


# --- which events ----------------------------------------------------------------


@dataclass
class BulkPlan:
    """The events a job will handle, resolved in the starting user's scope."""

    selection: str
    event_ids: list[int]
    filters: dict = field(default_factory=dict)
    # Selected ids that are not events of the scope (removed, or another view's).
    left_out: int = 0


def too_many_message(count: int) -> str:
    return (
        f"{count:,} events match, and bulk handling takes at most {MAX_EVENTS:,} at once. "
        "Narrow the filters (a shorter Occurred Within range, a risk level, a status or a name) "
        "and start again."
    )


def plan_selected(scope: Scope, event_ids) -> BulkPlan:
    """The selected events (ids in the order given) that are events of ``scope``."""
    wanted = list(dict.fromkeys(event_ids))
    if not wanted:
        raise BulkRefused("Select at least one event in the list.")
    if len(wanted) > MAX_EVENTS:
        raise BulkRefused(
            f"{len(wanted):,} events are selected, and bulk handling takes at most "
            f"{MAX_EVENTS:,} at once."
        )
    found = set(
        SecurityEvent.objects.in_scope(scope).filter(id__in=wanted).values_list("id", flat=True)
    )
    ids = [event_id for event_id in wanted if event_id in found]
    if not ids:
        raise BulkRefused("None of the selected events is in your view any more.")
    return BulkPlan(BulkSelection.SELECTED, ids, left_out=len(wanted) - len(ids))


def plan_matching(scope: Scope, filters: dict) -> BulkPlan:
    """Every event the list's ``filters`` (cleaned ``EventFilterForm`` data) match
    in ``scope``, in the list's order."""
    events = filtered_events(scope, filters)
    sort = SORTS[filters.get("sort") or "-last"][0]
    ids = list(events.order_by(sort, "-id").values_list("id", flat=True)[: MAX_EVENTS + 1])
    if not ids:
        raise BulkRefused("No security events match these filters: there is nothing to handle.")
    if len(ids) > MAX_EVENTS:
        raise BulkRefused(too_many_message(events.count()))
    return BulkPlan(BulkSelection.FILTER, ids, filters=filters_to_json(filters))


# --- starting a job --------------------------------------------------------------


def start_bulk_handling(
    *, owner=None, api_key=None, scope: Scope, plan: BulkPlan, request: BulkRequest
) -> BulkHandlingJob:
    """Queue a job that applies ``request`` to the events of ``plan``, for its
    ``owner`` (a user) or the ``api_key`` that asked.

    Raises ``BulkRefused`` for an action the rules do not allow and
    PermissionDenied when the scope may not handle events.
    """
    if not scope.may_handle():
        raise PermissionDenied("Only analysts and administrators handle events.")
    request.check()
    running = request.action == BulkAction.RUN_PLAYBOOK
    if running and not runnable_playbooks(scope).filter(pk=request.playbook.pk).exists():
        raise BulkRefused("Choose one of your organisation's playbooks that is switched on.")
    if not plan.event_ids:
        raise BulkRefused("Select at least one event in the list.")
    if len(plan.event_ids) > MAX_EVENTS:
        raise BulkRefused(too_many_message(len(plan.event_ids)))
    with transaction.atomic():
        job = BulkHandlingJob.objects.create(
            owner=owner,
            api_key=api_key,
            **jobs.scope_fields(scope),
            action=request.action,
            target_status=request.target_status if request.action == BulkAction.SET_STATUS else "",
            description=request.description,
            playbook=request.playbook if running else None,
            selection=plan.selection,
            filters=plan.filters,
            event_ids=plan.event_ids,
            event_count=len(plan.event_ids),
            expires_at=timezone.now() + JOB_LIFETIME,
        )
        jobs.queue_on_commit(BulkHandlingJob, job.id, BULK_TASK, not_queued=NOT_QUEUED)
    return job


# --- reading a job ---------------------------------------------------------------


def get_bulk_job_for_user_or_404(scope: Scope, user, job_id: int) -> BulkHandlingJob:
    """The user's own job, while their scope covers its accounts and region (else 404)."""
    return jobs.get_owned_job_or_404(BulkHandlingJob, scope, user, job_id)


def get_bulk_job_for_api_key_or_404(scope: Scope, api_key, job_id: int) -> BulkHandlingJob:
    """A job started with this API key, while the key's scope covers it; a job
    of a user or of another key does not exist for it (404)."""
    return jobs.get_job_of_or_404(BulkHandlingJob, scope, job_id, api_key_id=api_key.pk)


@dataclass
class Tally:
    handled: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def done(self) -> int:
        return self.handled + self.failed + self.skipped


def tally(job: BulkHandlingJob) -> Tally:
    """How many of the job's events were handled, failed and skipped so far."""
    counts = {
        row["outcome"]: row["n"]
        for row in job.items.order_by().values("outcome").annotate(n=Count("id"))
    }
    return Tally(
        handled=counts.get(ItemOutcome.HANDLED, 0),
        failed=counts.get(ItemOutcome.FAILED, 0),
        skipped=counts.get(ItemOutcome.SKIPPED, 0),
    )


def failures(job: BulkHandlingJob):
    """The job's failed events, in the order they were handled."""
    return job.items.filter(outcome=ItemOutcome.FAILED).order_by("id")


def describe_job(job: BulkHandlingJob) -> str:
    return BulkRequest(job.action, job.target_status, job.description, job.playbook).describe(
        job.event_count
    )


RUN_STARTED = "Run #{run_id} started."
RUN_STARTED_PATTERN = re.compile(r"^Run #(\d+) started\.$")


def started_runs(job: BulkHandlingJob, limit: int) -> list[BulkHandlingItem]:
    """The first ``limit`` events of a Run a playbook job that had a run
    started, in order, each with ``run_id`` (read from its message)."""
    items = list(job.items.filter(outcome=ItemOutcome.HANDLED).order_by("id")[:limit])
    for item in items:
        match = RUN_STARTED_PATTERN.match(item.message)
        item.run_id = int(match.group(1)) if match else None
    return items


# --- whose rights the worker acts with ---------------------------------------------


def acting_scope(job: BulkHandlingJob) -> Scope:
    """The job's accounts and region, with the owner's roles there as they are now.

    A membership removed since the job was started takes the account out of
    the scope; a role lowered to viewer leaves it readable but not handleable;
    an owner deactivated or no longer in the organisation acts on nothing.
    A job of an API key acts with the key's rights while it is not revoked.
    """
    if job.api_key_id is not None:
        return _api_key_scope(job)
    owner = job.owner
    membership = OrganisationMembership.objects.filter(user=owner).first()
    if (
        not owner.is_active
        or membership is None
        or membership.organisation_id != job.organisation_id
    ):
        raise BulkRefused(
            "You no longer belong to the organisation of these events: nothing more was handled."
        )
    accounts = Account.objects.filter(organisation_id=job.organisation_id, id__in=job.account_ids)
    roles: frozenset = frozenset()
    if membership.is_global_admin:
        account_ids = frozenset(accounts.values_list("id", flat=True))
    else:
        roles = frozenset(
            AccountMembership.objects.filter(user=owner, account__in=accounts).values_list(
                "account_id", "role"
            )
        )
        account_ids = frozenset(account_id for account_id, _ in roles)
    single = next(iter(account_ids)) if len(account_ids) == 1 else None
    return Scope(
        organisation_id=job.organisation_id,
        view=View.CURRENT if single is not None else View.GLOBAL,
        account_id=single,
        account_ids=account_ids,
        region=job.region or None,
        roles=roles,
        organisation_admin=membership.is_global_admin,
    )


def _api_key_scope(job: BulkHandlingJob) -> Scope:
    api_key = ApiKey.objects.active().filter(pk=job.api_key_id).first()
    if api_key is None:
        raise BulkRefused(
            "The API key that started this job was revoked: nothing more was handled."
        )
    # The key's rights, within the accounts and region the job was started in.
    key_scope = scope_for_api_key(api_key)
    account_ids = key_scope.account_ids & frozenset(job.account_ids)
    return dataclasses.replace(
        key_scope,
        account_ids=account_ids,
        roles=frozenset(role for role in key_scope.roles if role[0] in account_ids),
        region=job.region or None,
    )


# --- running a job ---------------------------------------------------------------


def run_bulk_job(job_id: int) -> bool:
    """Handle the events of a pending job. Returns whether this call did the work
    (False when another delivery of the task claimed the job first)."""
    return jobs.run_job(
        BulkHandlingJob, job_id, _handle_events, unexpected_failure=UNEXPECTED_FAILURE
    )


def _still_running(job_id: int) -> bool:
    return BulkHandlingJob.objects.filter(id=job_id, status=jobs.JobStatus.RUNNING).exists()


def _handle_events(job: BulkHandlingJob) -> dict:
    cause = (
        feed.Cause.bulk_by_api_key(job.id)
        if job.api_key_id is not None
        else feed.Cause.bulk(job.id, job.owner)
    )
    # A job is claimed once, so it runs once; should it ever run again, the
    # events it recorded are not handled twice (nor could their items be).
    recorded = set(job.items.values_list("event_id", flat=True))
    total = len(job.event_ids)
    for start in range(0, total, EVENTS_PER_CHUNK):
        # The clean-up failed the job as stalled: the user was told it ended.
        if start and not _still_running(job.id):
            break
        scope = acting_scope(job)
        if job.playbook_id is not None:
            # Read again, like the rights: a playbook switched off or edited
            # meanwhile starts no more runs, or runs of its current version.
            job.playbook = Playbook.objects.get(pk=job.playbook_id)
        chunk = job.event_ids[start : start + EVENTS_PER_CHUNK]
        events = SecurityEvent.objects.in_scope(scope).select_related("account").in_bulk(chunk)
        for event_id in chunk:
            if event_id not in recorded:
                _handle_one(job, scope, cause, event_id, events.get(event_id))
                recorded.add(event_id)
        jobs.report_progress(BulkHandlingJob, job.id, min(99, 100 * (start + len(chunk)) // total))
    return {}


def _handle_one(job, scope: Scope, cause: feed.Cause, event_id: int, event) -> None:
    if event is None:
        _record(
            job,
            event_id,
            "",
            ItemOutcome.FAILED,
            "This event is no longer in your view: it was removed, or you no longer have "
            "access to its account.",
        )
        return
    if not scope.may_handle([event.account_id]):
        _record(
            job,
            event.id,
            event.name,
            ItemOutcome.FAILED,
            f"You may not handle events of account {event.account.name}: it takes the analyst "
            "or administrator role there.",
        )
        return
    try:
        with transaction.atomic():
            outcome, message = _apply(job, scope, cause, event)
            _record(job, event.id, event.name, outcome, message)
    except (HandlingError, EventStatusError, PermissionDenied, RunError) as error:
        _record(job, event.id, event.name, ItemOutcome.FAILED, str(error))


def _apply(job, scope: Scope, cause: feed.Cause, event: SecurityEvent) -> tuple[str, str]:
    """Handle one event as the job says; the outcome and what to tell about it."""
    if job.action == BulkAction.SET_STATUS:
        label = EventStatus(job.target_status).label
        if event.status == job.target_status:
            return ItemOutcome.SKIPPED, f"The event was {label} already."
        previous = event.get_status_display()
        handle_event(
            scope,
            event,
            HandlingRequest(status=job.target_status, description=job.description),
            cause=cause,
        )
        return ItemOutcome.HANDLED, f"{previous} → {label}"
    if job.action == BulkAction.RECOMMENDED:
        actions = recommended_actions(scope, event)
        if not actions:
            return (
                ItemOutcome.SKIPPED,
                "No handling policy is recommended for this event's IPs, files and processes.",
            )
        result = handle_event(
            scope,
            event,
            HandlingRequest(
                status=EventStatus.HANDLING, description=job.description, actions=actions
            ),
            cause=cause,
        )
        policies, tasks = len(result.policies), len(result.tasks)
        return (
            ItemOutcome.HANDLED,
            f"{policies} polic{'y' if policies == 1 else 'ies'}, "
            f"{tasks} task{'' if tasks == 1 else 's'}",
        )
    if job.action == BulkAction.RUN_PLAYBOOK:
        # Queued when this event's transaction commits; the run goes on by itself.
        run = start_run(job.playbook, event, trigger=RunTrigger.BULK, user=job.owner)
        return ItemOutcome.HANDLED, RUN_STARTED.format(run_id=run.pk)
    raise HandlingError("action", f"Unknown action {job.action!r}.")


def recommended_actions(scope: Scope, event: SecurityEvent) -> tuple[ActionChoice, ...]:
    """What "Use Recommended Handling Policy" fills in for each of the event's
    entities: its recommended scenario, in the event's own account, with the
    scenario's default validity."""
    return tuple(
        ActionChoice(entity.entity_type, entity.value, entity.recommended.key, (event.account_id,))
        for entity in handling_context(scope, event).entities
        if entity.recommended is not None and event.account_id in {a.id for a in entity.accounts}
    )


def _record(job, event_id: int, name: str, outcome: str, message: str) -> None:
    BulkHandlingItem.objects.create(
        job=job, event_id=event_id, event_name=name[:255], outcome=outcome, message=message
    )


# --- clean-up --------------------------------------------------------------------


@dataclass
class BulkCleanup:
    stalled: int = 0
    deleted: int = 0


def cleanup_bulk_jobs(*, now: datetime | None = None) -> BulkCleanup:
    """Fail the jobs that lost their worker and delete the expired ones."""
    now = now or timezone.now()
    return BulkCleanup(
        stalled=jobs.fail_stalled(BulkHandlingJob, STALLED_AFTER, error=INTERRUPTED, now=now),
        deleted=jobs.delete_expired(BulkHandlingJob, now=now),
    )
