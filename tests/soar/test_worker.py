"""Playbook runs on real Celery workers: a worker killed with SIGKILL in the
middle of a run loses neither the run nor its trigger, and once another
worker takes over no step acts twice.

The run's second step is held mid-transaction by a table lock taken from
another session, so the kill lands at a known point: the first step (a block
on the simulated cloud) has committed, the second (a notification) has not.
Skipped unless REDIS_URL is set and the database is PostgreSQL."""

import time

import pytest

from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    Notification,
    SimulatedAction,
    TaskStatus,
)
from events.models import EventStatus
from soar import runs
from soar.models import PlaybookRun, RunStatus, RunStep, RunTrigger
from soar.playbooks import PlaybookSpec, save_playbook
from tests.disposal.conftest import ATTACKER_IP
from tests.events.test_worker import pytestmark as REAL_WORKER_MARKS
from tests.events.test_worker import wait_for
from tests.workers import blocked_insert, session_ended, table_locked

# PostgreSQL and Redis, and transactions that commit: the workers are other processes.
pytestmark = REAL_WORKER_MARKS

# Short enough for a test, as the workers' environment sets it.
CLAIM_SECONDS = 2


@pytest.fixture(autouse=True)
def short_claims(monkeypatch):
    monkeypatch.setenv("SOAR_RUN_CLAIM_SECONDS", str(CLAIM_SECONDS))


def test_a_run_whose_worker_is_killed_mid_step_finishes_once_on_another(
    brute_force_event,
    workers,
):
    ctx = brute_force_event
    account = ctx.accounts[0]
    playbook = save_playbook(
        ctx.scope,
        PlaybookSpec(
            "Block, tell, lower the risk",
            "",
            [
                {
                    "kind": "action",
                    "params": {
                        "scenario": "block-ip-cloud-firewall-inbound",
                        "entities": "attacker",
                        "scope": "event_account",
                        "validity_days": 1,
                    },
                },
                {
                    "kind": "notify",
                    "params": {
                        "channels": ["email"],
                        "recipients": ["soc@example.com"],
                        "title": "Attacker blocked",
                    },
                },
                {"kind": "set_risk", "params": {"risk": 1}},
            ],
        ),
        user=ctx.analyst,
    )

    with table_locked(Notification):
        run = runs.start_run(playbook, ctx.event, trigger=RunTrigger.USER, user=ctx.analyst)
        doomed = workers(pool="prefork")
        backend = wait_for(
            blocked_insert(Notification),
            worker=doomed,
            what="worker blocked in the run's notify step",
        )
        doomed.kill()
        wait_for(session_ended(backend), worker=doomed, what="end of the killed worker's session")

    # The block step committed; the notify step died with its transaction.
    assert list(RunStep.objects.filter(run=run).values_list("index", flat=True)) == [0]
    assert not Notification.objects.filter(event=ctx.event).exists()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.next_step == 1 and run.claimed_at

    # The dead worker's claim runs out, then a new worker gets the message back
    # from Redis (late acknowledgement; a 1 s visibility timeout here).
    time.sleep(CLAIM_SECONDS + 0.5)
    survivor = workers(visibility_timeout=1, unacked_restore_interval=1, unacked_restore_throttle=1)
    wait_for(
        lambda: PlaybookRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
        worker=survivor,
        what="run finished by the second worker",
    )
    wait_for(
        lambda: (
            HandlingTask.objects.filter(
                policy__source_run_id=run.pk, status=TaskStatus.SUCCEEDED
            ).count()
            == 1
        ),
        worker=survivor,
        what="block carried out",
    )

    # Every step once: one row each, one policy and task, one block, one
    # notification, the risk changed once.
    steps = RunStep.objects.filter(run=run).order_by("index")
    assert [(s.index, s.status) for s in steps] == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "succeeded"),
    ]
    assert HandlingPolicy.objects.filter(source_run_id=run.pk).count() == 1
    assert HandlingTask.objects.filter(policy__source_run_id=run.pk).count() == 1
    assert SimulatedAction.objects.filter(account=account, target=ATTACKER_IP).count() == 1
    assert Notification.objects.filter(event=ctx.event).count() == 1
    ctx.event.refresh_from_db()
    # Its one task done, the event follows it.
    assert ctx.event.status == EventStatus.HANDLED and ctx.event.risk == 1
    from events import feed

    by_run = feed.Cause.playbook_run(run.pk)
    assert (
        ctx.event.changes.filter(
            kind="risk_changed", cause=by_run.kind, cause_ref=by_run.ref
        ).count()
        == 1
    )
    assert "soar.advance_run" in survivor.log()


def test_a_trigger_whose_worker_is_killed_mid_delivery_fires_its_rule_once(
    brute_force_event,
    workers,
):
    """The rule's trigger is a change in the event change feed. The worker
    that delivers it dies while the rule starts its run: the delivery's
    transaction dies with it, the change stays undelivered, and the next
    worker fires the rule exactly once."""
    from events.services import change_event_status
    from soar.models import AutomationRule, Playbook, RuleAction, RuleFiring, Trigger

    ctx = brute_force_event
    rule = AutomationRule.objects.create(
        organisation=ctx.event.account.organisation,
        name="Being handled: block the attacker for a day",
        trigger=Trigger.STATUS_CHANGED,
        conditions={"all": [{"field": "status", "operator": "equals", "value": "handling"}]},
        action=RuleAction.RUN_PLAYBOOK,
        playbook=Playbook.objects.get(key="block-ip-cloud-firewall-inbound", organisation=None),
        parameters={"validity_days": 1},
    )

    with table_locked(PlaybookRun):
        # Committed here, with its delivery queued for a worker.
        change_event_status(ctx.event, EventStatus.HANDLING, user=ctx.analyst)
        doomed = workers(pool="prefork")
        backend = wait_for(
            blocked_insert(PlaybookRun),
            worker=doomed,
            what="worker blocked starting the rule's run",
        )
        doomed.kill()
        wait_for(session_ended(backend), worker=doomed, what="end of the killed worker's session")

    assert not RuleFiring.objects.exists() and not PlaybookRun.objects.exists()

    survivor = workers(visibility_timeout=1, unacked_restore_interval=1, unacked_restore_throttle=1)
    wait_for(
        lambda: HandlingTask.objects.filter(status=TaskStatus.SUCCEEDED).exists(),
        worker=survivor,
        what="the rule's block carried out",
    )
    [firing] = RuleFiring.objects.filter(rule=rule)
    [run] = PlaybookRun.objects.all()
    assert firing.run_id == run.pk and firing.outcome == "acted"
    assert run.rule == rule and run.trigger == RunTrigger.RULE
    assert run.status == RunStatus.SUCCEEDED
    assert SimulatedAction.objects.filter(target=ATTACKER_IP).count() == 1


def test_bulk_handling_of_500_events_runs_a_playbook_on_each_on_a_real_worker(
    tenancy, workers, monkeypatch, record_property
):
    """Alice, in the Global Account View, runs the Cloud Firewall block
    playbook on 500 events (250 in each of two accounts) as one bulk job. The
    worker runs the job, the 500 runs and their 500 handling tasks: one run,
    one policy and one blocked attacker per event, in the event's account."""
    from secops.enums import RegionGroup
    from soar import bulk
    from soar.models import BulkAction, BulkHandlingJob, Playbook
    from tests import factories
    from tests.soar.test_bulk import events_with_recommendations, global_scope

    # The simulated cloud's pace is the product's rule, not what is tested here.
    monkeypatch.setenv("DISPOSAL_CALLS_PER_SECOND", "1000")
    host_a = factories.make_asset(tenancy.account_a, name="web-a")
    host_b = factories.make_asset(tenancy.account_b, name="web-b", region=RegionGroup.CHINA)
    events = events_with_recommendations(tenancy.account_a, 250, asset=host_a)
    events += events_with_recommendations(tenancy.account_b, 250, asset=host_b)
    scope = global_scope(tenancy.alice)
    playbook = Playbook.objects.get(key="block-ip-cloud-firewall-inbound", organisation=None)

    job = bulk.start_bulk_handling(
        owner=tenancy.alice,
        scope=scope,
        plan=bulk.plan_selected(scope, [e.pk for e in events]),
        request=bulk.BulkRequest(BulkAction.RUN_PLAYBOOK, playbook=playbook),
    )
    began = time.monotonic()
    worker = workers()
    wait_for(
        lambda: BulkHandlingJob.objects.get(pk=job.pk).status == "done",
        worker=worker,
        what="bulk job done",
        seconds=300,
    )
    wait_for(
        lambda: HandlingTask.objects.filter(status=TaskStatus.SUCCEEDED).count() == 500,
        worker=worker,
        what="500 blocks carried out",
        seconds=300,
    )
    seconds = time.monotonic() - began
    record_property("seconds_for_500_bulk_runs", round(seconds, 1))
    print(f"\nbulk playbook runs on 500 events, worker included: {seconds:.1f} s")

    job.refresh_from_db()
    assert bulk.tally(job) == bulk.Tally(handled=500)
    job_runs = PlaybookRun.objects.filter(trigger=RunTrigger.BULK)
    assert job_runs.count() == 500
    assert set(job_runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert sorted(job_runs.values_list("event_id", flat=True)) == sorted(e.pk for e in events)
    policies = HandlingPolicy.objects.filter(source_run_id__in=job_runs.values("pk"))
    assert policies.count() == 500
    assert set(policies.values_list("scenario__key", "entity_type").distinct()) == {
        ("block-ip-cloud-firewall-inbound", "ip")
    }
    # Each task in its event's account, one simulated block each.
    for run in (job_runs.order_by("pk").first(), job_runs.order_by("pk").last()):
        [task] = HandlingTask.objects.filter(policy__source_run_id=run.pk)
        assert task.account_id == run.event.account_id
    assert SimulatedAction.objects.count() == 500
