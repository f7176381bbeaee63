"""Playbook runs on real Celery workers: a worker killed with SIGKILL in the
middle of a run loses neither the run nor its trigger, and once another
worker takes over no step acts twice.

The run's second step is held mid-transaction by a table lock taken from
another session, so the kill lands at a known point: the first step (a block
on the simulated cloud) has committed, the second (a notification) has not.
Skipped unless REDIS_URL is set and the database is PostgreSQL."""

import time
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    Notification,
    SimulatedAction,
    TaskStatus,
)
from events.models import EventStatus
from secops.celery import app as celery_app
from soar import runs
from soar.models import PlaybookRun, RunStatus, RunStep, RunTrigger
from soar.playbooks import PlaybookSpec, save_playbook
from tests.disposal.conftest import ATTACKER_IP, brute_force_event  # noqa: F401 (fixture)
from tests.events.test_worker import Worker, delete_redis_keys, session_ended, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.REDIS_URL
        or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs REDIS_URL and PostgreSQL",
    ),
    # The workers are other processes: they see only committed rows.
    pytest.mark.django_db(transaction=True),
]

# Short enough for a test, as the worker's environment sets it.
CLAIM_SECONDS = 2


@pytest.fixture
def workers(tmp_path, monkeypatch):
    """Starts workers on a queue of this test's own, where every task of this
    process goes, with eager execution off for the test's duration."""
    monkeypatch.setenv("SOAR_RUN_CLAIM_SECONDS", str(CLAIM_SECONDS))
    queue = f"test-soar-{uuid.uuid4().hex[:12]}"
    previous = {
        "task_routes": celery_app.conf.task_routes,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.update(task_routes={"*": {"queue": queue}}, task_always_eager=False)
    started: list[Worker] = []

    def start(*, pool: str = "solo", **transport_options) -> Worker:
        worker = Worker(queue, tmp_path / f"worker-{len(started) + 1}.log", pool=pool)
        worker.transport_options.update(transport_options)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        celery_app.conf.update(previous)
        delete_redis_keys(queue)


@contextmanager
def table_locked(model):
    """Hold a lock, from another session, that makes an INSERT into the
    model's table wait."""
    db = connection.settings_dict
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "dbname": db["NAME"],
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as session:
        session.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            session.rollback()


def blocked_insert(model):
    def check() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [f'INSERT INTO "{model._meta.db_table}"%'],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    return check


def test_a_run_whose_worker_is_killed_mid_step_finishes_once_on_another(
    brute_force_event,  # noqa: F811
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
    brute_force_event,  # noqa: F811
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
