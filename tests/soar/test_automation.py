"""Playbook runs and automated response rules: triggers from the event change
feed, conditions, actions, loop prevention, the rate limit, the kill switch,
waits and approvals, and a redelivered message acting once."""

from datetime import timedelta

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from disposal.models import HandlingPolicy, HandlingTask, TaskStatus
from events import feed
from events.models import EventChange, EventStatus, SecurityEvent
from secops import db
from soar import automation, runs
from soar.models import (
    AutomationRule,
    AutomationSwitch,
    FiringOutcome,
    Playbook,
    PlaybookRun,
    RuleAction,
    RuleFiring,
    RunStatus,
    RunTrigger,
    StepStatus,
    Trigger,
)
from soar.playbooks import PlaybookError, PlaybookSpec, save_playbook
from tests import factories
from tests.conftest import native_alert
from tests.disposal.conftest import ATTACKER_IP, global_scope
from tests.workers import database_url

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

BLOCK_ONE_DAY = "block-ip-cloud-firewall-inbound"


def high_risk_attacker(account, ip=ATTACKER_IP, **fields):
    alert = {
        "type": "brute_force",
        "name": "SSH brute force",
        "level": "high",
        "entities": [{"type": "ip", "value": ip, "role": "attacker"}],
    }
    return native_alert(account, **{**alert, **fields})


@pytest.fixture
def scope(tenancy):
    return global_scope(tenancy.org, [tenancy.account_a, tenancy.account_b])


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Ingest, then let the feed hand its changes to the rules, and run what
    they queued, as workers would."""

    def run(ingest, items, scope):
        with django_capture_on_commit_callbacks(execute=True):
            ingest(items, scope=scope)
        for _ in range(5):
            with django_capture_on_commit_callbacks(execute=True):
                if not feed.deliver(automation.CONSUMER):
                    break

    return run


def block_rule(tenancy, **fields):
    return AutomationRule.objects.create(
        organisation=tenancy.org,
        name="High risk attacker: block for a day",
        trigger=Trigger.EVENT_CREATED,
        conditions={
            "all": [
                {"field": "risk", "operator": "equals", "value": "high"},
                {"field": "entity_type", "operator": "equals", "value": "ip"},
                # Other predefined rules make events of the same alerts.
                {
                    "field": "event_name",
                    "operator": "starts_with",
                    "value": "brute force and logon",
                },
            ]
        },
        action=RuleAction.RUN_PLAYBOOK,
        playbook=Playbook.objects.get(key=BLOCK_ONE_DAY, organisation=None),
        parameters={"validity_days": 1},
        **fields,
    )


def test_a_rule_blocks_the_attacker_of_a_new_high_risk_event(
    tenancy, scope, ingest_and_aggregate, deliver
):
    rule = block_rule(tenancy)
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    run = PlaybookRun.objects.get()
    assert run.rule == rule and run.trigger == RunTrigger.RULE
    assert run.status == RunStatus.SUCCEEDED
    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.policy.source == "playbook_run" and task.policy.source_run_id == run.pk
    assert task.policy.validity_days == 1
    assert task.expires_at < timezone.now() + timedelta(days=1, minutes=1)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    assert event.status == EventStatus.HANDLED
    assert RuleFiring.objects.get().outcome == FiringOutcome.ACTED


def test_conditions_that_do_not_hold_do_nothing(tenancy, scope, ingest_and_aggregate, deliver):
    block_rule(tenancy)
    medium = high_risk_attacker(tenancy.account_a, level="medium")
    deliver(ingest_and_aggregate, [medium], scope)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    assert event.risk != 3
    assert not PlaybookRun.objects.exists()
    assert not RuleFiring.objects.exists()


def test_changes_of_an_organisation_without_active_rules_cost_one_query(
    tenancy, scope, ingest_and_aggregate, django_capture_on_commit_callbacks
):
    # Another organisation's rule, and this one's disabled and expired rules, do not count.
    other = factories.make_organisation()
    AutomationRule.objects.create(
        organisation=other, name="Elsewhere", trigger=Trigger.EVENT_CREATED
    )
    block_rule(tenancy, enabled=False)
    expired = block_rule(tenancy)
    AutomationRule.objects.filter(id=expired.id).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=False):
        ingest_and_aggregate([high_risk_attacker(tenancy.account_a)], scope=scope)
    changes = list(EventChange.objects.all())
    assert changes

    with CaptureQueriesContext(connection) as queries:
        automation.handle_changes(changes)

    assert len(queries) == 1
    assert not RuleFiring.objects.exists()


def test_a_rule_never_fires_on_a_change_it_caused(
    tenancy, scope, ingest_and_aggregate, deliver, django_capture_on_commit_callbacks
):
    """A rule on status changes that itself changes the status acts once per
    change made by someone else, never on its own change (no loop)."""
    rule = AutomationRule.objects.create(
        organisation=tenancy.org,
        name="Handling means handled",
        trigger=Trigger.STATUS_CHANGED,
        # No condition: without loop prevention it would fire on its own change.
        action=RuleAction.SET_STATUS,
        parameters={"status": "handled"},
    )
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    from events.services import change_event_status

    with django_capture_on_commit_callbacks(execute=True):
        change_event_status(event, EventStatus.HANDLING, user=tenancy.alice)
    for _ in range(5):
        feed.deliver(automation.CONSUMER)
    event.refresh_from_db()
    assert event.status == EventStatus.HANDLED
    # Its own change (Handling -> Handled) fired nothing: one firing in all.
    assert RuleFiring.objects.filter(rule=rule).count() == 1
    causes = list(event.status_changes.values_list("cause", flat=True))
    assert causes[-2:] == ["user", "automated_rule"]


def test_the_rate_limit_records_the_excess(tenancy, scope, ingest_and_aggregate, deliver):
    rule = block_rule(tenancy, max_runs_per_minute=2)
    alerts = [
        high_risk_attacker(tenancy.account_a, ip=f"203.0.113.{n}", uuid=f"a-{n}") for n in range(5)
    ]
    deliver(ingest_and_aggregate, alerts, scope)
    outcomes = sorted(RuleFiring.objects.filter(rule=rule).values_list("outcome", flat=True))
    assert outcomes.count(FiringOutcome.ACTED) == 2
    assert outcomes.count(FiringOutcome.RATE_LIMITED) == 3
    assert PlaybookRun.objects.count() == 2


def test_the_kill_switch_pauses_every_rule(tenancy, scope, ingest_and_aggregate, deliver):
    block_rule(tenancy)
    AutomationSwitch.objects.create(organisation=tenancy.org, paused=True)
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    assert set(RuleFiring.objects.values_list("outcome", flat=True)) == {FiringOutcome.PAUSED}
    assert not PlaybookRun.objects.exists()


def test_a_change_delivered_twice_fires_once(tenancy, scope, ingest_and_aggregate, deliver):
    rule = block_rule(tenancy)
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    from events.models import EventChange

    automation.handle_changes(list(EventChange.objects.all()))
    assert RuleFiring.objects.filter(rule=rule).count() == 1
    assert PlaybookRun.objects.count() == 1


def test_an_approval_gated_rule_waits_and_a_timeout_rejects(
    tenancy, scope, ingest_and_aggregate, deliver, django_capture_on_commit_callbacks
):
    block_rule(tenancy, require_approval=True)
    alerts = [
        high_risk_attacker(tenancy.account_a, ip="203.0.113.1", uuid="x1"),
        high_risk_attacker(tenancy.account_a, ip="203.0.113.2", uuid="x2"),
    ]
    deliver(ingest_and_aggregate, alerts, scope)
    first, second = PlaybookRun.objects.order_by("id")
    assert {first.status, second.status} == {RunStatus.AWAITING_APPROVAL}
    assert not HandlingTask.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        runs.decide(scope, first, approve=True, user=tenancy.alice)
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED and first.decided_by == tenancy.alice
    assert HandlingTask.objects.count() == 1
    runs.resume_due(now=timezone.now() + timedelta(days=2))
    second.refresh_from_db()
    assert second.status == RunStatus.REJECTED
    with pytest.raises(runs.RunError):
        runs.decide(scope, second, approve=True, user=tenancy.alice)


def test_approval_requests_mail_the_accounts_approvers_a_link_to_the_run(
    tenancy, scope, ingest_and_aggregate, deliver, mailoutbox, settings
):
    from django.urls import reverse

    from secops.enums import Role
    from tests import factories

    settings.CONSOLE_URL = "https://soc.example.test"
    tenancy.alice.email = "alice@example.test"  # global administrator
    tenancy.alice.save()
    tenancy.bob.email = "bob@example.test"  # analyst of account A: may not approve
    tenancy.bob.save()
    admin_a = factories.make_user(tenancy.org, "ada", accounts=[tenancy.account_a], role=Role.ADMIN)
    admin_a.email = "ada@example.test"
    admin_a.save()
    admin_b = factories.make_user(tenancy.org, "bea", accounts=[tenancy.account_b], role=Role.ADMIN)
    admin_b.email = "bea@example.test"  # administers another account only
    admin_b.save()
    charlie = tenancy.charlie
    charlie.email = "charlie@example.test"  # another organisation
    charlie.save()

    block_rule(tenancy, require_approval=True)
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    run = PlaybookRun.objects.get()
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert sorted(mail.to) == ["ada@example.test", "alice@example.test"]
    assert mail.subject.startswith("Approval needed: ")
    assert f"https://soc.example.test{reverse('soar:run', args=[run.pk])}" in mail.body
    assert run.event.notifications.get().title == mail.subject


def test_an_approval_step_asks_for_approval_when_the_run_reaches_it(
    tenancy, scope, ingest_and_aggregate, mailoutbox, django_capture_on_commit_callbacks
):
    tenancy.alice.email = "alice@example.test"
    tenancy.alice.save()
    with django_capture_on_commit_callbacks(execute=True):
        ingest_and_aggregate([high_risk_attacker(tenancy.account_a)], scope=scope)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    playbook = save_playbook(
        scope,
        PlaybookSpec(
            "Ask first",
            "",
            [
                {"kind": "set_risk", "params": {"risk": 2}},
                {"kind": "approval", "params": {"timeout_minutes": 30}},
                {"kind": "set_status", "params": {"status": "handled"}},
            ],
        ),
        user=tenancy.alice,
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.start_run(playbook, event, trigger=RunTrigger.USER, user=tenancy.alice)
    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL and run.next_step == 2
    assert [m.to for m in mailoutbox] == [["alice@example.test"]]
    assert "Decide by: " in mailoutbox[0].body
    with django_capture_on_commit_callbacks(execute=True):
        runs.decide(scope, run, approve=True, user=tenancy.alice)
    run.refresh_from_db()
    event.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and event.status == EventStatus.HANDLED


def test_steps_run_in_order_with_a_wait_and_a_condition(
    tenancy, scope, ingest_and_aggregate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest_and_aggregate([high_risk_attacker(tenancy.account_a)], scope=scope)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    playbook = save_playbook(
        scope,
        PlaybookSpec(
            "Contain",
            "",
            [
                {"kind": "set_risk", "params": {"risk": 2}},
                {"kind": "wait", "params": {"minutes": 5}},
                {
                    "kind": "condition",
                    "params": {
                        "conditions": {
                            "all": [{"field": "risk", "operator": "equals", "value": "high"}]
                        },
                        "on_false": "skip_next",
                    },
                },
                {"kind": "set_status", "params": {"status": "handled"}},
                {"kind": "set_status", "params": {"status": "handling"}},
            ],
        ),
        user=tenancy.alice,
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.start_run(playbook, event, trigger=RunTrigger.USER, user=tenancy.alice)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING and run.next_step == 2
    with django_capture_on_commit_callbacks(execute=True):
        runs.resume_due(now=timezone.now() + timedelta(minutes=6))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert [s.status for s in run.steps.all()] == [
        StepStatus.SUCCEEDED,
        StepStatus.WAITING,
        StepStatus.SKIPPED,
        StepStatus.SUCCEEDED,
    ]
    event.refresh_from_db()
    assert event.risk == 2 and event.status == EventStatus.HANDLING
    # Running the same run again does nothing: every step is done.
    assert runs.advance_run(run.pk) is None


def test_editing_makes_a_version_and_bad_steps_name_the_field(tenancy, scope):
    playbook = save_playbook(
        scope, PlaybookSpec("P", "", [{"kind": "set_risk", "params": {"risk": 3}}]), user=None
    )
    again = save_playbook(
        scope,
        PlaybookSpec("P", "", [{"kind": "set_risk", "params": {"risk": 1}}]),
        user=None,
        playbook=playbook,
    )
    assert again.current_version.number == 2
    assert list(again.versions.values_list("number", flat=True)) == [2, 1]
    with pytest.raises(PlaybookError) as refused:
        save_playbook(
            scope,
            PlaybookSpec(
                "P",
                "",
                [{"kind": "action", "params": {"scenario": BLOCK_ONE_DAY, "validity_days": 999}}],
            ),
            user=None,
        )
    assert refused.value.field == "steps[0].params.validity_days"
    with pytest.raises(PlaybookError) as refused:
        save_playbook(
            scope,
            PlaybookSpec("P", "", [{"kind": "set_status", "params": {"status": "failed"}}]),
            user=None,
        )
    assert refused.value.field == "steps[0].params.status"


def test_the_dry_run_counts_the_events_a_rule_would_act_on(
    tenancy, scope, ingest_and_aggregate, django_capture_on_commit_callbacks
):
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        ingest_and_aggregate(
            [
                high_risk_attacker(tenancy.account_a, occurred_at=now.isoformat()),
                native_alert(tenancy.account_a, occurred_at=now.isoformat()),
            ],
            scope=scope,
        )
    rule = block_rule(tenancy)
    result = automation.dry_run(rule)
    assert result["matched"] == 1 and result["examined"] >= 1
    assert not HandlingPolicy.objects.exists()


def test_conditions_read_as_a_sentence():
    from soar.facts import describe_conditions

    tree = {
        "all": [
            {"field": "risk", "operator": "equals", "value": "high"},
            {
                "any": [
                    {"field": "attacker_ip", "operator": "in_cidr", "value": "203.0.113.0/24"},
                    {"field": "alert_type", "operator": "contains", "value": "brute"},
                    {"field": "alert_type", "operator": "equals", "value": "abnormal_network"},
                    {
                        "field": "data_source",
                        "operator": "in_list",
                        "value": ["cloud_firewall", "x<y"],
                    },
                ]
            },
        ]
    }
    assert describe_conditions(tree) == (
        "risk equal to high AND (attacker_ip in cidr 203.0.113.0/24 OR alert_type includes brute"
        " OR alert_type equal to Abnormal network connection"
        " OR data_source in list Cloud Firewall, x<y)"
    )
    assert describe_conditions({}) == "always"


def test_automation_blocks_an_attacker_once_per_account(
    tenancy, scope, ingest_and_aggregate, deliver
):
    """Two events of one attacker (two predefined rules take the same alert):
    one block; the second run says it is in force already."""
    rule = AutomationRule.objects.create(
        organisation=tenancy.org,
        name="High risk: block",
        trigger=Trigger.EVENT_CREATED,
        conditions={"all": [{"field": "risk", "operator": "equals", "value": "high"}]},
        action=RuleAction.RUN_PLAYBOOK,
        playbook=Playbook.objects.get(key=BLOCK_ONE_DAY, organisation=None),
    )
    deliver(ingest_and_aggregate, [high_risk_attacker(tenancy.account_a)], scope)
    assert PlaybookRun.objects.filter(rule=rule).count() == 2
    assert HandlingTask.objects.count() == 1
    steps = sorted(
        (s.status, s.message) for run in PlaybookRun.objects.all() for s in run.steps.all()
    )
    assert steps[0][0] == StepStatus.SKIPPED and ATTACKER_IP in steps[0][1]
    assert steps[1][0] == StepStatus.SUCCEEDED


def test_a_run_whose_worker_died_goes_on_from_its_last_done_step(
    tenancy, scope, ingest_and_aggregate, django_capture_on_commit_callbacks, monkeypatch
):
    """The worker died holding the run after step 1 committed: once its claim
    expires the sweep queues the run again, step 1 is not done twice."""
    with django_capture_on_commit_callbacks(execute=True):
        ingest_and_aggregate([high_risk_attacker(tenancy.account_a)], scope=scope)
    event = SecurityEvent.objects.get(rule__key="brute-force-then-login")
    playbook = save_playbook(
        scope,
        PlaybookSpec(
            "Two steps",
            "",
            [
                {"kind": "set_risk", "params": {"risk": 1}},
                {"kind": "set_status", "params": {"status": "handled"}},
            ],
        ),
        user=None,
    )
    run = runs.start_run(playbook, event, trigger=RunTrigger.USER)  # not queued: no commit
    claimed = runs._claim(run.pk)
    runs._do_step(claimed, 0, claimed.version.steps[0])  # step 1 done
    if connection.vendor == "postgresql":
        # A live worker also holds the run's work lock: a second message waits
        # for it, and gives up (to be retried) while it lives.
        holder = psycopg.connect(database_url(), autocommit=True)
        holder.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", [runs.RUN_LOCK, run.pk])
        monkeypatch.setattr(db, "WORK_LOCK_WAIT_SECONDS", 0.2)
        with pytest.raises(OperationalError):
            runs.advance_run(run.pk)
        holder.close()  # then the worker dies
    else:
        assert runs.advance_run(run.pk) is None  # still held by the dead worker
    # Time passes: the dead worker's claim expires.
    PlaybookRun.objects.filter(pk=run.pk).update(
        claimed_at=timezone.now() - runs.claim_expires() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        found = runs.resume_due()
    assert found["requeued"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert [(s.index, s.status) for s in run.steps.all()] == [(0, "succeeded"), (1, "succeeded")]
    event.refresh_from_db()
    assert event.risk == 1 and event.status == EventStatus.HANDLED
    # The risk was changed once: one change in the feed.
    assert event.changes.filter(kind="risk_changed").count() == 1
