"""Handling an event: policies and tasks, the task state machine, the event
following its tasks, retry, unblock and expiry, against the simulated cloud."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from alerts.models import Entity
from disposal import services
from disposal.handling import (
    ActionChoice,
    HandlingError,
    HandlingRequest,
    handle_event,
    handling_context,
)
from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    SimulatedAction,
    SimulatedFailure,
    TaskStatus,
)
from events import feed
from events.models import EventChange, EventStatus
from secops.scope import Scope
from tests.disposal.conftest import ATTACKER_IP

INBOUND = "block-ip-cloud-firewall-inbound"
OUTBOUND = "block-ip-cloud-firewall-outbound"


def handle(ctx, *actions, status=EventStatus.HANDLING, captured=None, user=None):
    request = HandlingRequest(status=status, actions=tuple(actions))
    return handle_event(
        ctx.scope, ctx.event, request, cause=feed.Cause.by_user(user or ctx.analyst)
    )


def block(ctx, scenario=INBOUND, accounts=None, validity=None):
    return ActionChoice(
        "ip",
        ATTACKER_IP,
        scenario,
        tuple(a.id for a in (accounts or ctx.accounts)),
        validity,
    )


def run_all(django_capture_on_commit_callbacks, fn):
    with django_capture_on_commit_callbacks(execute=True):
        return fn()


def test_the_context_recommends_blocking_the_malicious_attacker_ip(brute_force_event):
    context = handling_context(brute_force_event.scope, brute_force_event.event)
    ip = context.find("ip", ATTACKER_IP)
    assert ip.malicious and ip.malicious_because == ["alert"]
    assert ip.recommended.key == INBOUND
    assert {a.id for a in ip.accounts} == {a.id for a in brute_force_event.accounts}
    assert [h.name for h in ip.hosts] == ["web-00"]
    # The file and process are related, not called malicious: no recommendation.
    assert [e.recommended for e in context.tabs["file"]] == [None]
    assert [e.recommended for e in context.tabs["process"]] == [None]


def test_one_entity_in_two_scenarios_over_three_accounts_gives_two_policies_and_six_tasks(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    result = run_all(
        django_capture_on_commit_callbacks,
        lambda: handle(ctx, block(ctx, INBOUND), block(ctx, OUTBOUND)),
    )
    assert len(result.policies) == 2
    assert len(result.tasks) == 6
    assert HandlingTask.objects.filter(policy__source_event=ctx.event).count() == 6
    # The simulated cloud ran every task; the event followed them to Handled.
    assert set(HandlingTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert SimulatedAction.objects.filter(removed_at__isnull=True).count() == 6
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED
    task = HandlingTask.objects.first()
    assert [t.to_status for t in task.transitions.all()] == ["pending", "running", "succeeded"]
    assert task.expires_at > timezone.now() + timedelta(days=6, hours=23)
    # The user's change and the tasks' change are both in the feed, each with its cause.
    causes = list(
        EventChange.objects.filter(event=ctx.event, kind="status_changed").values_list(
            "cause", flat=True
        )
    )
    assert causes == ["user", "system"]


def test_failed_is_refused(brute_force_event):
    with pytest.raises(HandlingError) as refused:
        handle(brute_force_event, status=EventStatus.FAILED)
    assert refused.value.field == "status"
    brute_force_event.event.refresh_from_db()
    assert brute_force_event.event.status == EventStatus.UNHANDLED


def test_handled_needs_no_action(brute_force_event):
    result = handle(brute_force_event, status=EventStatus.HANDLED)
    assert result.event.status == EventStatus.HANDLED
    assert not HandlingPolicy.objects.exists()


def test_a_viewer_may_not_handle(brute_force_event):
    ctx = brute_force_event
    viewer_scope = Scope(
        organisation_id=ctx.scope.organisation_id,
        account_ids=ctx.scope.account_ids,
        roles=frozenset((a, "viewer") for a in ctx.scope.account_ids),
    )
    with pytest.raises(PermissionDenied):
        handle_event(
            viewer_scope,
            ctx.event,
            HandlingRequest(status=EventStatus.HANDLED),
            cause=feed.Cause.by_user(ctx.viewer),
        )


def test_an_account_where_the_entity_was_not_seen_is_refused(brute_force_event, tenancy):
    ctx = brute_force_event
    with pytest.raises(HandlingError) as refused:
        handle(ctx, ActionChoice("ip", ATTACKER_IP, INBOUND, (tenancy.account_c.id,)))
    assert refused.value.field == "actions[0].scope"
    assert not HandlingPolicy.objects.exists()


def test_a_failed_task_fails_the_event_and_retry_recovers_it(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    rule = SimulatedFailure.objects.create(
        account=ctx.accounts[1], target=ATTACKER_IP, message="Quota exceeded"
    )
    run_all(django_capture_on_commit_callbacks, lambda: handle(ctx, block(ctx)))
    failed = HandlingTask.objects.get(status=TaskStatus.FAILED)
    assert failed.account == ctx.accounts[1]
    assert "Quota exceeded" in failed.error and failed.retryable
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.FAILED

    rule.delete()
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.retry_task(ctx.scope, failed, cause=feed.Cause.by_user(ctx.analyst)),
    )
    failed.refresh_from_db()
    assert failed.status == TaskStatus.SUCCEEDED and failed.attempts == 2
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED


def test_a_redelivered_message_acts_once(brute_force_event, django_capture_on_commit_callbacks):
    ctx = brute_force_event
    result = handle(ctx, block(ctx, accounts=ctx.accounts[:1]))  # queued, not run
    task = result.tasks[0]
    assert services.run_task(task.pk) == TaskStatus.SUCCEEDED
    assert services.run_task(task.pk) is None
    assert SimulatedAction.objects.count() == 1
    task.refresh_from_db()
    assert task.attempts == 1


def test_unblock_lifts_the_block_and_an_unblock_failure_is_recorded(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    run_all(
        django_capture_on_commit_callbacks,
        lambda: handle(ctx, block(ctx, accounts=ctx.accounts[:1])),
    )
    task = HandlingTask.objects.get()
    SimulatedFailure.objects.create(
        target=ATTACKER_IP, applies_to_undo=True, message="Denied", retryable=False
    )
    cause = feed.Cause.by_user(ctx.analyst)
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.unblock_task(ctx.scope, task, cause=cause),
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCK_FAILED and "Denied" in task.error
    assert SimulatedAction.objects.filter(removed_at__isnull=True).count() == 1

    SimulatedFailure.objects.all().delete()
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.unblock_task(ctx.scope, task, cause=cause),
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    assert SimulatedAction.objects.filter(removed_at__isnull=True).count() == 0
    with pytest.raises(services.TaskActionError):
        services.unblock_task(ctx.scope, task, cause=cause)


def test_the_periodic_job_undoes_blocks_whose_validity_ended(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    run_all(
        django_capture_on_commit_callbacks,
        lambda: handle(ctx, block(ctx, accounts=ctx.accounts[:1], validity=1)),
    )
    task = HandlingTask.objects.get()
    assert services.expire_due(now=timezone.now() + timedelta(hours=23)) == 0
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.expire_due(now=timezone.now() + timedelta(days=1, minutes=1)),
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.EXPIRED
    assert [t.cause for t in task.transitions.all()][-2:] == ["expiry", "worker"]
    assert SimulatedAction.objects.filter(removed_at__isnull=True).count() == 0


def test_a_task_of_an_edited_policy_can_be_retried(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    run_all(
        django_capture_on_commit_callbacks,
        lambda: handle(ctx, block(ctx, accounts=ctx.accounts[:1])),
    )
    task = HandlingTask.objects.get()
    assert not services.may_retry(task)
    cause = feed.Cause.by_user(ctx.analyst)
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.edit_policy(
            ctx.scope, task.policy, accounts=ctx.accounts[:2], validity_days=30, cause=cause
        ),
    )
    assert HandlingTask.objects.count() == 2
    task.refresh_from_db()
    assert services.may_retry(task)
    run_all(
        django_capture_on_commit_callbacks,
        lambda: services.retry_task(ctx.scope, task, cause=cause),
    )
    task.refresh_from_db()
    assert task.expires_at > timezone.now() + timedelta(days=29)
    # The rerun's block replaced the first one, which was lifted.
    assert SimulatedAction.objects.filter(removed_at__isnull=True).count() == 2


def test_an_indicator_of_another_hash_of_a_file_makes_it_malicious(
    tenancy, ingest_and_aggregate, fast_password_hashing
):
    """Alerts name the file by its SHA-256; the feed knows it by its MD5."""
    from disposal.models import ThreatIndicator
    from events.models import SecurityEvent
    from tests.conftest import native_alert
    from tests.disposal.conftest import global_scope

    sha256, md5 = "a" * 64, "b" * 32
    scope = global_scope(tenancy.org, [tenancy.account_a])
    ingest_and_aggregate(
        [
            native_alert(
                tenancy.account_a,
                type="malicious_file",
                name="Trojan",
                level="high",
                entities=[{"type": "file", "sha256": sha256, "md5": md5, "path": "/tmp/t"}],
            )
        ],
        scope=scope,
    )
    event = SecurityEvent.objects.get(rule__key="malicious-file-on-several-hosts")
    assert handling_context(scope, event).find("file", sha256).recommended is None
    ThreatIndicator.objects.create(
        entity_type="file",
        value=md5,
        digest=Entity.digest_for("file", md5),
        verdict="malicious",
        source="Feed",
    )
    file = handling_context(scope, event).find("file", sha256)
    assert file.malicious_because == ["Feed"]
    assert file.recommended.key == "quarantine-file"
