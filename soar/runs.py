"""Playbook runs: starting one, carrying its steps out, waiting, approvals,
reruns.

A run is advanced by a worker that first *claims* it (a conditional UPDATE of
``claimed_at``), so two messages for one run never advance it together. Each
step writes its ``RunStep`` row (unique per run and step) in the transaction
that does the step's work, so a worker killed mid-step leaves either the whole
step or none of it, and a step never acts twice. Changes a run makes are
recorded in the event change feed with the run as their cause, so a rule never
fires again on what its own run did.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from disposal import notifications
from disposal.errors import HandlingError
from disposal.handling import HandlingRequest, NotificationChoice, handling_context
from disposal.models import Channel, HandlingTask, Notification, PolicySource, TaskStatus
from disposal.scenarios import scenarios_for
from disposal.services import create_policy
from events import feed
from events.models import SecurityEvent
from events.services import (
    EventStatusError,
    change_event_risk,
    change_event_status,
    record_event_change,
)
from secops import audit
from secops.enums import Role
from secops.jobs import queue_rows_on_commit, registered_task
from secops.models import AuditAction
from secops.scope import Scope
from soar.facts import compile_event_conditions, event_facts
from soar.models import (
    Playbook,
    PlaybookRun,
    RunStatus,
    RunStep,
    RunTrigger,
    StepKind,
    StepStatus,
)

logger = logging.getLogger(__name__)

ADVANCE_TASK = "soar.advance_run"


def claim_expires() -> timedelta:
    """A claimed run whose worker has not renewed its claim for this long is
    taken again: that worker died. The claim is renewed before every step, and
    a step is one database transaction (its connector calls are tasks of their
    own), so the lease needs to cover one step, not a whole run."""
    return timedelta(seconds=settings.SOAR_RUN_CLAIM_SECONDS)


class RunError(Exception):
    """A run cannot be started, approved or rerun; the message says why."""


def _queue(run_id: int) -> None:
    # resume_due queues a run the broker did not take.
    queue_rows_on_commit(ADVANCE_TASK, [run_id], what="playbook run")


def run_scope(run: PlaybookRun) -> Scope:
    """What a run may act on: the accounts of its event's organisation, as
    an administrator of each (rules and approvers were checked before)."""
    from secops.models import Account

    organisation_id = run.event.account.organisation_id
    account_ids = Account.objects.filter(organisation_id=organisation_id).values_list(
        "id", flat=True
    )
    return Scope.for_accounts(organisation_id, account_ids, organisation_admin=True)


def start_run(
    playbook: Playbook,
    event: SecurityEvent,
    *,
    trigger: str,
    user=None,
    rule=None,
    options: dict | None = None,
    require_approval: bool = False,
    approval_minutes: int = 24 * 60,
) -> PlaybookRun:
    """A new run of the playbook's current version on ``event``, queued on commit
    (or waiting for approval)."""
    if playbook.current_version_id is None:
        raise RunError("The playbook has no steps yet.")
    if not playbook.enabled:
        raise RunError("The playbook is switched off.")
    now = timezone.now()
    run = PlaybookRun.objects.create(
        account_id=event.account_id,
        event=event,
        playbook=playbook,
        version_id=playbook.current_version_id,
        trigger=trigger,
        rule=rule,
        started_by=user,
        options=options or {},
        status=RunStatus.AWAITING_APPROVAL if require_approval else RunStatus.PENDING,
        approval_deadline=now + timedelta(minutes=approval_minutes) if require_approval else None,
    )
    if require_approval:
        ask_approvers(run)
    else:
        _queue(run.pk)
    return run


def approvers(run: PlaybookRun):
    """Those who may decide the run: administrators of its event's account and
    the organisation's global administrators (``may_approve``)."""
    from django.contrib.auth import get_user_model

    account = run.event.account
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(account_memberships__account=account, account_memberships__role=Role.ADMIN)
            | Q(
                organisation_membership__organisation_id=account.organisation_id,
                organisation_membership__is_global_admin=True,
            )
        )
        .distinct()
    )


def ask_approvers(run: PlaybookRun) -> list:
    """An e-mail to the approvers that have an address, linking to the run's
    page where they approve or reject it; sent once the run's transaction
    commits. Approvers without an address find the run on Pending Approvals."""
    addresses = sorted({u.email for u in approvers(run) if u.email})
    if not addresses:
        return []
    link = settings.CONSOLE_URL + reverse("soar:run", args=[run.pk])
    body = render_to_string("soar/approval_request.txt", {"run": run, "link": link}).strip()
    title = f"Approval needed: {run.playbook.name} on {run.event.name}"[:200]
    return notifications.queue(
        [
            Notification(
                event=run.event,
                channel=Channel.EMAIL,
                recipients=addresses,
                title=title.replace("\n", " ").replace("\r", " "),
                body=body,
                created_by=run.started_by,
            )
        ]
    )


def start_run_by_user(scope: Scope, playbook: Playbook, event: SecurityEvent, *, user, api=False):
    if not scope.may_handle([event.account_id]):
        raise PermissionDenied("Only analysts and administrators of the account run playbooks.")
    return start_run(playbook, event, trigger=RunTrigger.API if api else RunTrigger.USER, user=user)


# --- advancing -------------------------------------------------------------------


def _claim(run_id: int) -> PlaybookRun | None:
    now = timezone.now()
    taken = PlaybookRun.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_expires()),
        pk=run_id,
        status__in=[RunStatus.PENDING, RunStatus.RUNNING],
    ).update(claimed_at=now, status=RunStatus.RUNNING)
    if not taken:
        return None
    return PlaybookRun.objects.select_related("event__account", "version", "playbook").get(
        pk=run_id
    )


def advance_run(run_id: int) -> str | None:
    """Carry out the run's steps from where it is, until it ends, waits or
    needs approval. Returns its status, or None when another worker has it."""
    run = _claim(run_id)
    if run is None:
        return None
    steps = run.version.steps
    try:
        while run.next_step < len(steps):
            if run.next_step:
                PlaybookRun.objects.filter(pk=run.pk).update(claimed_at=timezone.now())
            outcome = _do_step(run, run.next_step, steps[run.next_step])
            if outcome in (StepStatus.WAITING, StepStatus.STOPPED, StepStatus.FAILED):
                break
    finally:
        PlaybookRun.objects.filter(pk=run.pk).update(claimed_at=None)
    if run.next_step >= len(steps) and run.status == RunStatus.RUNNING:
        _end(run, RunStatus.SUCCEEDED)
    return run.status


def _end(run: PlaybookRun, status: str, error: str = "") -> None:
    run.status, run.error = status, error
    PlaybookRun.objects.filter(pk=run.pk).update(
        status=status, error=error, finished_at=timezone.now(), resume_at=None
    )


def _do_step(run: PlaybookRun, index: int, step: dict) -> str:
    """One step in one transaction: its row, its work, the run's position."""
    kind, params = step["kind"], step["params"]
    cause = feed.Cause.playbook_run(run.pk)
    try:
        with transaction.atomic():
            row = RunStep.objects.create(run=run, index=index, kind=kind, name=step.get("name", ""))
            event = SecurityEvent.objects.select_related("account").get(pk=run.event_id)
            with audit.acting_as_automation(f'playbook "{run.playbook.name}" (run {run.pk})'):
                status, message, output, after = _execute(run, event, kind, params, cause)
            row.status, row.message, row.output = status, message, output
            row.finished_at = timezone.now()
            row.save()
            _after_step(run, index, status, after)
    except IntegrityError:
        done = RunStep.objects.filter(run=run, index=index).first()
        if done is None:
            raise
        # The step's row exists: its transaction, which also moved the run on,
        # committed before (a message delivered again). Continue from there.
        run.refresh_from_db(fields=["next_step", "status"])
        return done.status
    except Exception as exc:  # a step that breaks fails the run, recorded
        logger.exception("Step %s of playbook run %s failed", index, run.pk)
        with transaction.atomic():
            RunStep.objects.update_or_create(
                run=run,
                index=index,
                defaults={
                    "kind": kind,
                    "name": step.get("name", ""),
                    "status": StepStatus.FAILED,
                    "message": f"{type(exc).__name__}: {exc}"[:2000],
                    "finished_at": timezone.now(),
                },
            )
            _end(run, RunStatus.FAILED, f"Step {index + 1} failed: {exc}")
        return StepStatus.FAILED
    return status


def _after_step(run: PlaybookRun, index: int, status: str, after: dict) -> None:
    """Move the run past the step, as its outcome says."""
    skip = 2 if after.get("skip_next") else 1
    run.next_step = index + skip
    fields = {"next_step": run.next_step}
    if status == StepStatus.WAITING:
        fields.update(
            status=after.get("run_status", RunStatus.WAITING), resume_at=after.get("resume_at")
        )
        if after.get("approval_deadline"):
            fields["approval_deadline"] = run.approval_deadline = after["approval_deadline"]
        run.status = fields["status"]
        if run.status == RunStatus.AWAITING_APPROVAL:
            ask_approvers(run)
    elif status == StepStatus.STOPPED:
        fields.update(status=RunStatus.STOPPED, finished_at=timezone.now())
        run.status = RunStatus.STOPPED
    elif status == StepStatus.FAILED:
        fields.update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=after.get("error", "")
        )
        run.status = RunStatus.FAILED
    PlaybookRun.objects.filter(pk=run.pk).update(**fields)


def _execute(run, event, kind, params, cause):
    """(step status, message, output, what the run does next)."""
    now = timezone.now()
    if kind == StepKind.ACTION:
        return _action(run, event, params, cause)
    if kind == StepKind.CONDITION:
        held = compile_event_conditions(params["conditions"])(event_facts(event))
        if held:
            return StepStatus.SUCCEEDED, "The condition held.", {}, {}
        if params["on_false"] == "skip_next":
            return (
                StepStatus.SKIPPED,
                "The condition did not hold: the next step is skipped.",
                {},
                {"skip_next": True},
            )
        return StepStatus.STOPPED, "The condition did not hold: the run stops.", {}, {}
    if kind == StepKind.SET_STATUS:
        try:
            change_event_status(
                event, params["status"], cause=cause, note=f"Playbook {run.playbook.name}"
            )
        except EventStatusError as exc:
            return StepStatus.FAILED, str(exc), {}, {"error": str(exc)}
        return StepStatus.SUCCEEDED, f"Status set to {params['status']}.", {}, {}
    if kind == StepKind.SET_RISK:
        change_event_risk(event, params["risk"], cause=cause)
        return StepStatus.SUCCEEDED, f"Risk level set to {params['risk']}.", {}, {}
    if kind == StepKind.NOTIFY:
        choice = NotificationChoice(
            tuple(params["channels"]), tuple(params["recipients"]), params["title"]
        )
        request = HandlingRequest(status=event.status, description=f"Playbook {run.playbook.name}")
        try:
            notifications.validate(choice)
            made = notifications.create(
                event, choice, request, list(_policies_of(run)), cause=cause
            )
        except HandlingError as exc:
            return StepStatus.FAILED, exc.message, {}, {"error": exc.message}
        return (
            StepStatus.SUCCEEDED,
            f"{len(made)} notification(s) queued.",
            {"notifications": [n.pk for n in made]},
            {},
        )
    if kind == StepKind.WAIT:
        resume = now + timedelta(minutes=params["minutes"])
        return (
            StepStatus.WAITING,
            f"Waiting until {resume:%Y-%m-%d %H:%M} UTC.",
            {},
            {"resume_at": resume},
        )
    if kind == StepKind.APPROVAL:
        deadline = now + timedelta(minutes=params["timeout_minutes"])
        return (
            StepStatus.WAITING,
            f"Waiting for an administrator's approval until {deadline:%Y-%m-%d %H:%M} UTC.",
            {},
            {"run_status": RunStatus.AWAITING_APPROVAL, "approval_deadline": deadline},
        )
    raise ValueError(f"Unknown step kind {kind!r}")


def _policies_of(run):
    from disposal.models import HandlingPolicy

    return HandlingPolicy.objects.filter(source_run_id=run.pk).select_related("scenario")


def _action(run, event, params, cause):
    scope = run_scope(run)
    scenario = scenarios_for(scope).filter(key=params["scenario"]).first()
    if scenario is None:
        return (
            StepStatus.FAILED,
            f"The scenario {params['scenario']!r} no longer exists.",
            {},
            {"error": "scenario"},
        )
    context = handling_context(scope, event)
    chosen = [
        e
        for e in context.tabs.get(scenario.entity_type, [])
        if params["entities"] == "all"
        or (params["entities"] == "malicious" and e.malicious)
        or (params["entities"] == "attacker" and "attacker" in e.roles)
    ]
    if not chosen:
        return (
            StepStatus.SKIPPED,
            f"No {params['entities']} {scenario.entity_type} of the event to act on.",
            {},
            {},
        )
    validity = run.options.get("validity_days") or params.get("validity_days")
    policies, tasks, skipped = [], 0, []
    for entity in chosen:
        accounts = (
            [a for a in entity.accounts if a.id == event.account_id]
            if (run.options.get("scope") or params["scope"]) == "event_account"
            else entity.accounts
        )
        # Automation does not block again what is blocked already (or about
        # to be): several events of one attacker make one block per account.
        in_force = set(
            HandlingTask.objects.filter(
                policy__scenario=scenario,
                policy__entity_type=entity.entity_type,
                policy__entity_digest=entity.digest,
                account__in=accounts,
                status__in=[TaskStatus.PENDING, TaskStatus.RUNNING, *TaskStatus.active()],
            ).values_list("account_id", flat=True)
        )
        skipped += [entity.value for a in accounts if a.id in in_force]
        accounts = [a for a in accounts if a.id not in in_force]
        if not accounts:
            continue
        try:
            policy, made = create_policy(
                entity_type=entity.entity_type,
                value=entity.value,
                digest=entity.digest,
                scenario=scenario,
                accounts=accounts,
                validity_days=validity if scenario.takes_validity else None,
                owner_account_id=event.account_id,
                region=event.region,
                source=PolicySource.PLAYBOOK_RUN,
                source_event=event,
                source_run_id=run.pk,
                cause=cause,
            )
        except HandlingError as exc:
            return StepStatus.FAILED, exc.message, {}, {"error": exc.message}
        policies.append(policy.pk)
        tasks += len(made)
    if policies:
        previous = event.status
        if previous == "unhandled":
            change_event_status(
                event,
                "handling",
                cause=cause,
                note=f"Playbook {run.playbook.name}",
                audited=False,
            )
        record_event_change(
            AuditAction.HANDLING_HANDLE,
            event,
            cause,
            {"status": [previous, event.status]} if previous != event.status else {},
            details={"scenario": scenario.key, "policies": policies, "run": run.pk},
        )
    already = f" Already in force: {', '.join(sorted(set(skipped)))}." if skipped else ""
    if not policies:
        return StepStatus.SKIPPED, f"Nothing new to do.{already}", {"in_force": skipped}, {}
    return (
        StepStatus.SUCCEEDED,
        f"{len(policies)} policy(ies), {tasks} task(s) queued.{already}",
        {"policies": policies, "tasks": tasks, "in_force": skipped},
        {},
    )


# --- waiting, approvals, reruns --------------------------------------------------


def resume_due(now=None) -> dict:
    """Runs whose wait is over go on; approvals past their deadline are rejected;
    pending runs whose message was lost are queued again."""
    now = now or timezone.now()
    resumed = list(
        PlaybookRun.objects.filter(status=RunStatus.WAITING, resume_at__lte=now).values_list(
            "pk", flat=True
        )[:500]
    )
    for pk in resumed:
        if PlaybookRun.objects.filter(pk=pk, status=RunStatus.WAITING).update(
            status=RunStatus.PENDING, resume_at=None
        ):
            registered_task(ADVANCE_TASK).delay(pk)
    timed_out = 0
    for run in PlaybookRun.objects.filter(
        status=RunStatus.AWAITING_APPROVAL, approval_deadline__lte=now
    )[:500]:
        if PlaybookRun.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).update(
            status=RunStatus.REJECTED, finished_at=now, error="Nobody approved the run in time."
        ):
            timed_out += 1
    lost = list(
        PlaybookRun.objects.filter(
            # Queued runs whose message was lost, and runs whose worker died
            # while it held them (its claim has expired).
            Q(
                status=RunStatus.PENDING,
                claimed_at__isnull=True,
                created_at__lt=now - timedelta(minutes=1),
            )
            | Q(
                status__in=[RunStatus.PENDING, RunStatus.RUNNING],
                claimed_at__lt=now - claim_expires(),
            )
        ).values_list("pk", flat=True)[:500]
    )
    for pk in lost:
        registered_task(ADVANCE_TASK).delay(pk)
    return {"resumed": len(resumed), "timed_out": timed_out, "requeued": len(lost)}


def may_approve(scope: Scope, run: PlaybookRun) -> bool:
    """An administrator of every account the run may act in (its event's)."""
    return scope.may_configure([run.account_id])


def decide(scope: Scope, run: PlaybookRun, *, approve: bool, user) -> PlaybookRun:
    if not may_approve(scope, run):
        raise PermissionDenied("Only administrators of the event's account approve runs.")
    now = timezone.now()
    with transaction.atomic():
        locked = PlaybookRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.AWAITING_APPROVAL:
            raise RunError(f"This run is {locked.get_status_display()}, not awaiting approval.")
        if locked.approval_deadline and locked.approval_deadline <= now:
            raise RunError("The approval's time has run out; the run is rejected.")
        locked.decided_by, locked.decided_at = user, now
        if approve:
            locked.status = RunStatus.PENDING
            _queue(locked.pk)
        else:
            locked.status, locked.finished_at = RunStatus.REJECTED, now
            locked.error = f"Rejected by {user}."
        locked.save()
    return locked


def rerun(scope: Scope, run: PlaybookRun, *, user) -> PlaybookRun:
    """Run the same version again on the same event, from the first step."""
    if not scope.may_handle([run.account_id]):
        raise PermissionDenied("Only analysts and administrators of the account rerun playbooks.")
    if run.status not in (RunStatus.FAILED, RunStatus.REJECTED, RunStatus.STOPPED):
        raise RunError("Only a failed, rejected or stopped run can be run again.")
    with transaction.atomic():
        again = PlaybookRun.objects.create(
            account_id=run.account_id,
            event_id=run.event_id,
            playbook_id=run.playbook_id,
            version_id=run.version_id,
            trigger=RunTrigger.USER,
            started_by=user,
            options=run.options,
            rerun_of=run,
        )
        _queue(again.pk)
    return again
