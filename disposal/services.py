"""Handling policies and tasks: how they are made, run, retried, undone and expired.

A task's life:

    pending -> running -> succeeded | failed
    failed -> pending (Retry)
    succeeded | unblock failed -> unblocking -> unblocked | unblock failed (Unblock)
    succeeded (validity ended) -> unblocking -> expired | unblock failed

Every transition is a ``TaskTransition`` row with its cause and the connector's
answer. A worker *claims* a task before acting (a conditional UPDATE on
``claimed_at``), so a message delivered twice acts once. The event a policy came
from follows its tasks: Handled when all have succeeded, Failed when one fails,
Handling again when a failed one is retried.
"""

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import Alert, AlertEntity, Entity
from disposal import metrics
from disposal.connectors import ActionRequest, ConnectorError, connector_for
from disposal.errors import HandlingError
from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    Scenario,
    TaskStatus,
    TaskTransition,
    TransitionCause,
)
from events import feed
from events.models import ChangeCause, EventStatus, SecurityEvent
from events.services import change_event_status, mark_event_failed
from secops import audit
from secops.jobs import queue_rows_on_commit, registered_task
from secops.models import AuditAction
from secops.scope import Scope

logger = logging.getLogger(__name__)

RUN_TASK = "disposal.run_task"
UNDO_TASK = "disposal.undo_task"

# A running task whose worker has not finished it after this long is failed
# (retryable): the worker died or lost its connection mid-call.
STALLED_AFTER = timedelta(minutes=5)
# A pending task nobody claimed after this long had its message lost: queue it again.
UNCLAIMED_AFTER = timedelta(minutes=1)

_TRANSITION_CAUSE = {
    ChangeCause.USER: TransitionCause.USER,
    ChangeCause.API_KEY: TransitionCause.API_KEY,
    ChangeCause.PLAYBOOK_RUN: TransitionCause.PLAYBOOK_RUN,
}


class TaskActionError(Exception):
    """Retry or Unblock asked of a task in a state that does not allow it."""


def _transition_cause(cause: feed.Cause | None) -> str:
    if cause is None:
        return TransitionCause.SYSTEM
    return _TRANSITION_CAUSE.get(cause.kind, TransitionCause.SYSTEM)


def _record(task, from_status, to_status, cause, *, user=None, answer=None, message=""):
    TaskTransition.objects.create(
        task=task,
        from_status=from_status,
        to_status=to_status,
        cause=cause,
        user=user,
        answer=answer or {},
        message=message[:2000],
    )


def _queue(task_name: str, task_ids: list[int]) -> None:
    """Queue the tasks once the transaction commits; sweep_tasks queues any the
    broker did not take."""
    queue_rows_on_commit(task_name, task_ids, what="handling task")


# --- making policies and tasks --------------------------------------------------


def hosts_of_entity(account_id: int, entity_type: str, digest: str) -> list:
    """The hosts of ``account_id`` on which alerts saw the entity."""
    from alerts.models import Asset

    return list(
        Asset.objects.filter(
            account_id=account_id,
            alerts__entity_links__entity__account_id=account_id,
            alerts__entity_links__entity__type=entity_type,
            alerts__entity_links__entity__digest=digest,
        )
        .distinct()
        .order_by("name", "id")
    )


def create_policy(
    *,
    entity_type: str,
    value: str,
    digest: str,
    scenario: Scenario,
    accounts,
    validity_days: int | None,
    owner_account_id: int,
    region: str,
    source: str,
    cause: feed.Cause,
    source_event: SecurityEvent | None = None,
    source_alert: Alert | None = None,
    source_run_id: int | None = None,
) -> tuple[HandlingPolicy, list[HandlingTask]]:
    """One policy and its tasks (one per account, and per host for host actions);
    the tasks are queued when the caller's transaction commits."""

    policy = HandlingPolicy.objects.create(
        account_id=owner_account_id,
        region=region,
        entity_type=entity_type,
        entity_value=value,
        entity_digest=digest,
        scenario=scenario,
        validity_days=validity_days,
        source=source,
        source_event=source_event,
        source_alert=source_alert,
        source_run_id=source_run_id,
        created_by=cause.user,
    )
    policy.scope_accounts.set(accounts)
    return policy, _make_tasks(policy, accounts, cause)


def _make_tasks(policy: HandlingPolicy, accounts, cause: feed.Cause) -> list[HandlingTask]:
    """The policy's tasks in ``accounts`` (one per host for host actions),
    recorded as pending and queued on commit."""
    scenario = policy.scenario
    tasks = []
    for account in accounts:
        hosts = (
            hosts_of_entity(account.id, policy.entity_type, policy.entity_digest)
            if scenario.per_host
            else [None]
        )
        if not hosts:
            raise HandlingError(
                "scope",
                f"{scenario.name} acts on hosts, and no alert of account {account.name} "
                f"names a host for {policy.entity_value}.",
            )
        tasks.extend(
            HandlingTask(
                policy=policy,
                account=account,
                asset=host,
                cloud_service=scenario.cloud_service,
                policy_revision=policy.revision,
            )
            for host in hosts
        )
    tasks = HandlingTask.objects.bulk_create(tasks)
    for task in tasks:
        _record(task, "", TaskStatus.PENDING, _transition_cause(cause), user=cause.user)
    _queue(RUN_TASK, [t.pk for t in tasks])
    return tasks


# --- running ------------------------------------------------------------------


def _claim(task_id: int, status: str) -> HandlingTask | None:
    """Take the task for this worker, or None when another took it already."""
    now = timezone.now()
    claimed = HandlingTask.objects.filter(
        pk=task_id, status=status, claimed_at__isnull=True
    ).update(claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return HandlingTask.objects.select_related("policy__scenario", "account", "asset").get(
        pk=task_id
    )


def _request_for(task: HandlingTask) -> ActionRequest:
    policy, scenario = task.policy, task.policy.scenario
    entity = (
        Entity.objects.filter(
            account_id=task.account_id, type=policy.entity_type, digest=policy.entity_digest
        )
        .only("attributes")
        .first()
    )
    alert_refs = ()
    if scenario.cloud_service == "security_center":
        links = AlertEntity.objects.filter(
            entity__account_id=task.account_id,
            entity__type=policy.entity_type,
            entity__digest=policy.entity_digest,
            alert__source="security_center",
        )
        if task.asset_id:
            links = links.filter(alert__asset_id=task.asset_id)
        alert_refs = tuple(
            links.order_by("-alert__occurred_at").values_list("alert__source_uuid", flat=True)[:100]
        )
    validity = policy.validity_days if scenario.takes_validity else None
    return ActionRequest(
        task_id=task.pk,
        account_id=task.account_id,
        account_uid=task.account.uid,
        cloud_service=scenario.cloud_service,
        operation=scenario.operation,
        entity_type=policy.entity_type,
        value=policy.entity_value,
        parameters=dict(scenario.parameters),
        host_uuid=task.asset.uuid if task.asset else "",
        host_instance_id=task.asset.instance_id if task.asset else "",
        attributes=dict(entity.attributes) if entity else {},
        alert_refs=alert_refs,
        expires_at=timezone.now() + timedelta(days=validity) if validity else None,
        reference=task.external_ref,
    )


def run_task(task_id: int) -> str | None:
    """Carry out a pending task through its account's connector. Returns the
    new status, or None when the task was not pending (already run)."""
    task = _claim(task_id, TaskStatus.PENDING)
    if task is None:
        return None
    with transaction.atomic():
        HandlingTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.RUNNING, started_at=timezone.now()
        )
        _record(task, TaskStatus.PENDING, TaskStatus.RUNNING, TransitionCause.WORKER)
    previous_ref = task.external_ref
    request = _request_for(task)
    try:
        connector = connector_for(task.account)
        result = connector.perform(request)
    except ConnectorError as exc:
        metrics.connector_error(_kind(task), "perform", metrics.kind_of(exc))
        _finish(
            task,
            TaskStatus.FAILED,
            error=exc.message,
            retryable=exc.retryable,
            answer=exc.answer,
            connector=_kind(task),
        )
    except Exception as exc:  # a bug or an unexpected library error: failed, not lost
        logger.exception("Handling task %s failed unexpectedly", task.pk)
        metrics.connector_error(_kind(task), "perform", "unexpected")
        _finish(
            task,
            TaskStatus.FAILED,
            error=f"Unexpected error: {exc}",
            retryable=True,
            connector=_kind(task),
        )
    else:
        _finish(
            task,
            TaskStatus.SUCCEEDED,
            answer=result.answer,
            external_ref=result.reference,
            expires_at=request.expires_at,
            connector=connector.kind,
        )
        if previous_ref and previous_ref != result.reference and task.policy.scenario.undoable:
            _undo_replaced(task, connector, request, previous_ref)
    follow_event(task.policy.source_event_id)
    return HandlingTask.objects.values_list("status", flat=True).get(pk=task.pk)


def _kind(task) -> str:
    from django.conf import settings

    config = getattr(task.account, "connector", None)
    try:
        return config.kind if config else settings.DISPOSAL_DEFAULT_CONNECTOR
    except Exception:
        return ""


def _undo_replaced(task, connector, request, previous_ref):
    """A rerun (after its policy was edited) made a new block: lift the old one."""
    try:
        connector.undo(ActionRequest(**{**request.__dict__, "reference": previous_ref}))
    except ConnectorError as exc:
        _record(
            task,
            TaskStatus.SUCCEEDED,
            TaskStatus.SUCCEEDED,
            TransitionCause.WORKER,
            answer=exc.answer,
            message=f"The replaced block {previous_ref} stays: {exc.message}",
        )


def _finish(
    task,
    status,
    *,
    error="",
    retryable=False,
    answer=None,
    external_ref=None,
    expires_at=None,
    connector="",
):
    with transaction.atomic():
        fields = {
            "status": status,
            "error": error,
            "retryable": retryable,
            "finished_at": timezone.now(),
            "connector": connector or "",
        }
        if external_ref is not None:
            fields["external_ref"] = external_ref
        if status == TaskStatus.SUCCEEDED:
            fields["expires_at"] = expires_at
        HandlingTask.objects.filter(pk=task.pk).update(**fields)
        _record(
            task, TaskStatus.RUNNING, status, TransitionCause.WORKER, answer=answer, message=error
        )


def undo_task(task_id: int) -> str | None:
    """Lift a block (Unblock, or its validity ended)."""
    task = _claim(task_id, TaskStatus.UNBLOCKING)
    if task is None:
        return None
    request = _request_for(task)
    done = TaskStatus.EXPIRED if task.undo_reason == "expiry" else TaskStatus.UNBLOCKED
    try:
        result = connector_for(task.account).undo(request)
    except ConnectorError as exc:
        metrics.connector_error(_kind(task), "undo", metrics.kind_of(exc))
        status, error, retryable, answer = (
            TaskStatus.UNBLOCK_FAILED,
            exc.message,
            exc.retryable,
            exc.answer,
        )
    except Exception as exc:
        logger.exception("Undoing handling task %s failed unexpectedly", task.pk)
        metrics.connector_error(_kind(task), "undo", "unexpected")
        status, error, retryable, answer = (
            TaskStatus.UNBLOCK_FAILED,
            f"Unexpected error: {exc}",
            True,
            {},
        )
    else:
        status, error, retryable, answer = done, "", False, result.answer
    with transaction.atomic():
        HandlingTask.objects.filter(pk=task.pk).update(
            status=status, error=error, retryable=retryable, finished_at=timezone.now()
        )
        _record(
            task,
            TaskStatus.UNBLOCKING,
            status,
            TransitionCause.WORKER,
            answer=answer,
            message=error,
        )
    return status


# --- what people ask of a task ---------------------------------------------------


def _locked_task(task: HandlingTask) -> HandlingTask:
    return (
        HandlingTask.objects.select_for_update().select_related("policy__scenario").get(pk=task.pk)
    )


def may_retry(task: HandlingTask) -> bool:
    return task.status == TaskStatus.FAILED or (
        task.status in TaskStatus.active() and task.policy_revision < task.policy.revision
    )


def may_unblock(task: HandlingTask) -> bool:
    return task.policy.scenario.undoable and task.status in TaskStatus.active()


def retry_task(scope: Scope, task: HandlingTask, *, cause: feed.Cause) -> HandlingTask:
    """Run a failed task again, or a task whose policy was edited since it ran."""
    _require_handler(scope, task)
    with transaction.atomic():
        task = _locked_task(task)
        if not may_retry(task):
            raise TaskActionError(
                f"Only a failed task, or one whose policy changed since it ran, can be "
                f"retried; this one is {task.get_status_display()}."
            )
        previous = task.status
        task.status = TaskStatus.PENDING
        task.claimed_at = None
        task.error = ""
        task.retryable = False
        task.policy_revision = task.policy.revision
        task.save(
            update_fields=[
                "status",
                "claimed_at",
                "error",
                "retryable",
                "policy_revision",
                "updated_at",
            ]
        )
        _record(
            task,
            previous,
            TaskStatus.PENDING,
            _transition_cause(cause),
            user=cause.user,
            message="Retry",
        )
        _queue(RUN_TASK, [task.pk])
        _record_task_action(AuditAction.HANDLING_RETRY, task, cause, previous)
    follow_event(task.policy.source_event_id, cause=cause)
    return task


def unblock_task(scope: Scope, task: HandlingTask, *, cause: feed.Cause) -> HandlingTask:
    """Lift a block that is in force (or whose earlier unblock failed)."""
    _require_handler(scope, task)
    with transaction.atomic():
        task = _locked_task(task)
        if not may_unblock(task):
            raise TaskActionError(
                f"Only a block in force can be unblocked; this task is {task.get_status_display()}."
                if task.policy.scenario.undoable
                else f"{task.policy.scenario.name} cannot be undone."
            )
        previous = task.status
        _start_undo(task, "user", _transition_cause(cause), user=cause.user)
        _record_task_action(AuditAction.HANDLING_UNBLOCK, task, cause, previous)
    return task


def _record_task_action(action: str, task: HandlingTask, cause, previous: str) -> None:
    policy = task.policy
    audit.record(
        action,
        target=task,
        target_type="handling_task",
        target_label=f"{policy.scenario.name}: {policy.entity_value}",
        account=task.account_id,
        cause=cause,
        changes={"status": [previous, task.status]},
        details={"policy": policy.pk, "event": policy.source_event_id},
    )


def _start_undo(task, reason, transition_cause, *, user=None):
    previous = task.status
    task.status = TaskStatus.UNBLOCKING
    task.claimed_at = None
    task.undo_reason = reason
    task.save(update_fields=["status", "claimed_at", "undo_reason", "updated_at"])
    _record(task, previous, TaskStatus.UNBLOCKING, transition_cause, user=user)
    _queue(UNDO_TASK, [task.pk])


def _require_handler(scope: Scope, task: HandlingTask) -> None:
    if not scope.may_handle([task.account_id]):
        raise PermissionDenied(
            "Only analysts and administrators of the task's account retry or unblock it."
        )


def edit_policy(scope: Scope, policy: HandlingPolicy, *, accounts, validity_days, cause):
    """Change a policy's scope or validity. Tasks of new accounts are made and
    queued; tasks of removed accounts that have not acted are dropped, and those
    in force are unblocked; the rest can be retried to apply the change."""

    account_ids = {a.id for a in accounts}
    if not account_ids:
        raise HandlingError("scope", "Choose at least one account for the scope.")
    if not scope.may_handle(account_ids | {policy.account_id}):
        raise PermissionDenied("You may change policies only in accounts where you are an analyst.")
    scenario = policy.scenario
    if scenario.takes_validity and not (validity_days and 1 <= validity_days <= 365):
        raise HandlingError("validity_days", "The action validity period is 1 to 365 days.")
    with transaction.atomic():
        policy = HandlingPolicy.objects.select_for_update().get(pk=policy.pk)
        previous_validity = policy.validity_days
        policy.revision += 1
        policy.validity_days = validity_days if scenario.takes_validity else None
        policy.save(update_fields=["revision", "validity_days", "updated_at"])
        before = set(policy.scope_accounts.values_list("id", flat=True))
        audit.record(
            AuditAction.HANDLING_POLICY_EDIT,
            target=policy,
            target_type="handling_policy",
            target_label=f"{scenario.name}: {policy.entity_value}",
            account=policy.account_id,
            cause=cause,
            changes=audit.changes_between(
                {"validity_days": previous_validity, "accounts": sorted(before)},
                {"validity_days": policy.validity_days, "accounts": sorted(account_ids)},
            ),
        )
        policy.scope_accounts.set(account_ids)
        _make_tasks(policy, [a for a in accounts if a.id not in before], cause)
        for task in policy.tasks.select_for_update().filter(account_id__in=before - account_ids):
            if task.status in (TaskStatus.FAILED,) or (
                task.status == TaskStatus.PENDING and task.claimed_at is None
            ):
                task.delete()
            elif scenario.undoable and task.status in TaskStatus.active():
                _start_undo(task, "user", _transition_cause(cause), user=cause.user)
    follow_event(policy.source_event_id, cause=cause)
    return policy


# --- periodic work --------------------------------------------------------------


def expire_due(now=None, limit: int = 500) -> int:
    """Undo blocks whose validity has ended (the periodic job)."""
    now = now or timezone.now()
    started = 0
    with transaction.atomic():
        due = (
            HandlingTask.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=now)
            .filter(
                Q(status=TaskStatus.SUCCEEDED)
                | Q(status=TaskStatus.UNBLOCK_FAILED, retryable=True, undo_reason="expiry")
            )
            .select_related("policy__scenario")[:limit]
        )
        for task in due:
            if task.policy.scenario.undoable:
                _start_undo(task, "expiry", TransitionCause.EXPIRY)
                started += 1
    return started


def sweep_tasks(now=None) -> dict:
    """Queue pending work whose message was lost; fail work whose worker died."""
    now = now or timezone.now()
    requeue = list(
        HandlingTask.objects.filter(
            status__in=[TaskStatus.PENDING, TaskStatus.UNBLOCKING],
            claimed_at__isnull=True,
            updated_at__lt=now - UNCLAIMED_AFTER,
        ).values_list("pk", "status")[:1000]
    )
    for pk, status in requeue:
        registered_task(RUN_TASK if status == TaskStatus.PENDING else UNDO_TASK).delay(pk)
    stalled = []
    for task in HandlingTask.objects.filter(
        Q(status=TaskStatus.RUNNING) | Q(status=TaskStatus.UNBLOCKING, claimed_at__isnull=False),
        claimed_at__lt=now - STALLED_AFTER,
    ).select_related("policy")[:1000]:
        to = TaskStatus.FAILED if task.status == TaskStatus.RUNNING else TaskStatus.UNBLOCK_FAILED
        message = (
            "The worker stopped before the cloud answered; whether the action took "
            "effect is unknown. Retry runs it again."
        )
        with transaction.atomic():
            if HandlingTask.objects.filter(
                pk=task.pk, status=task.status, claimed_at=task.claimed_at
            ).update(status=to, error=message, retryable=True, finished_at=now):
                _record(task, task.status, to, TransitionCause.SYSTEM, message=message)
                stalled.append(task)
    for task in stalled:
        follow_event(task.policy.source_event_id)
    return {"requeued": len(requeue), "stalled": len(stalled)}


# --- the event follows its tasks ------------------------------------------------

_DONE = {
    TaskStatus.SUCCEEDED,
    TaskStatus.UNBLOCKING,
    TaskStatus.UNBLOCKED,
    TaskStatus.UNBLOCK_FAILED,
    TaskStatus.EXPIRED,
}


def follow_event(event_id: int | None, *, cause: feed.Cause | None = None) -> None:
    """Set the event's status from its tasks: Failed if one failed, Handled when
    all are done, Handling while some wait. Only an event being handled (Handling,
    Handled or Failed) follows; an analyst's Unhandled is left alone."""
    if event_id is None:
        return
    cause = cause or feed.Cause.system("handling tasks")
    with transaction.atomic():
        event = SecurityEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status == EventStatus.UNHANDLED:
            return
        statuses = set(
            HandlingTask.objects.filter(policy__source_event_id=event_id).values_list(
                "status", flat=True
            )
        )
        if not statuses:
            return
        if TaskStatus.FAILED in statuses:
            if event.status != EventStatus.FAILED:
                mark_event_failed(event, note="A handling task failed.", cause=cause)
        elif statuses <= _DONE:
            if event.status != EventStatus.HANDLED:
                # The tasks' outcome, not an action: not audited.
                change_event_status(
                    event,
                    EventStatus.HANDLED,
                    cause=cause,
                    note="Every handling task succeeded.",
                    audited=False,
                )
        elif event.status == EventStatus.FAILED:
            change_event_status(
                event,
                EventStatus.HANDLING,
                cause=cause,
                note="A failed handling task is running again.",
                audited=False,
            )
