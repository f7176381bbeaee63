"""The durable event change feed: what it records, with which cause, and how
consumers receive every change once, even when the wake-up is lost."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from events import feed, tasks
from events.models import (
    ChangeCause,
    ChangeKind,
    EventChange,
    EventChangeDelivery,
    EventStatus,
    EventStatusChange,
)
from events.pipeline import process_alerts
from events.services import change_event_status, mark_event_failed
from secops.enums import RiskLevel
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def consumers():
    """Register consumers that remember what they were given, in place of the
    apps' own (automated response), which are put back afterwards."""
    received: dict[str, list[int]] = {}
    apps_consumers = {name: feed._consumers[name] for name in feed.consumer_names()}
    for name in apps_consumers:
        feed.unregister_consumer(name)

    def add(name, fail=False):
        received[name] = []

        def handle(changes):
            if fail:
                raise RuntimeError("the consumer is down")
            received[name].extend(c.id for c in changes)

        feed.register_consumer(name, handle)
        return received[name]

    yield add
    for name in received:
        feed.unregister_consumer(name)
    for name, handler in apps_consumers.items():
        feed.register_consumer(name, handler)


def mining_alerts(account, asset, *levels, type="mining"):
    return [factories.make_alert(account, asset=asset, type=type, level=level) for level in levels]


# --- what is recorded --------------------------------------------------------------


def test_the_pipeline_records_created_then_alerts_added_with_the_batch_as_cause(tenancy):
    asset = factories.make_asset(tenancy.account_a)
    first = mining_alerts(tenancy.account_a, asset, RiskLevel.LOW)
    (event_id,) = process_alerts([a.id for a in first], cause=feed.Cause.pipeline(41))
    second = mining_alerts(tenancy.account_a, asset, RiskLevel.LOW, RiskLevel.LOW)
    process_alerts([a.id for a in second], cause=feed.Cause.pipeline(42))

    changes = list(EventChange.objects.filter(event_id=event_id))
    assert [(c.kind, c.cause, c.cause_ref, c.details) for c in changes] == [
        (ChangeKind.CREATED, ChangeCause.PIPELINE, "batch:41", {"alert_ids": [first[0].id]}),
        (
            ChangeKind.ALERTS_ADDED,
            ChangeCause.PIPELINE,
            "batch:42",
            {"alert_ids": sorted(a.id for a in second)},
        ),
    ]
    assert {c.account_id for c in changes} == {tenancy.account_a.id}
    opened = EventStatusChange.objects.get(event_id=event_id)
    assert (opened.cause, opened.cause_ref) == (ChangeCause.PIPELINE, "batch:41")


def test_a_higher_risk_alert_records_the_risk_change(tenancy):
    asset = factories.make_asset(tenancy.account_a)
    # Abnormal network events take the risk of their highest alert.
    kind = "abnormal_network"
    (event_id,) = process_alerts(
        [a.id for a in mining_alerts(tenancy.account_a, asset, 1, type=kind)]
    )
    process_alerts([a.id for a in mining_alerts(tenancy.account_a, asset, 2, type=kind)])

    kinds = list(EventChange.objects.filter(event_id=event_id).values_list("kind", "details"))
    assert kinds[-1] == (
        ChangeKind.RISK_CHANGED,
        {"from": int(RiskLevel.LOW), "to": int(RiskLevel.MEDIUM)},
    )


def test_a_whitelisted_or_unmatched_batch_records_nothing(tenancy):
    alert = factories.make_alert(tenancy.account_a, type="no-rule-takes-this", level=1)
    assert process_alerts([alert.id]) == []
    assert not EventChange.objects.exists()


def test_a_status_change_carries_the_user_and_history_the_same_cause(tenancy):
    event = factories.make_event(tenancy.account_a)

    change_event_status(event, EventStatus.HANDLING, user=tenancy.alice, note="On it.")

    change = EventChange.objects.get(event=event)
    assert (change.kind, change.cause, change.cause_ref, change.user, change.details) == (
        ChangeKind.STATUS_CHANGED,
        ChangeCause.USER,
        f"user:{tenancy.alice.pk}",
        tenancy.alice,
        {"from": "unhandled", "to": "handling"},
    )
    history = EventStatusChange.objects.get(event=event)
    assert (history.cause, history.cause_ref, history.changed_by) == (
        ChangeCause.USER,
        f"user:{tenancy.alice.pk}",
        tenancy.alice,
    )


def test_a_change_made_by_an_automated_rule_carries_that_rule(tenancy):
    event = factories.make_event(tenancy.account_a)

    change_event_status(event, EventStatus.HANDLED, cause=feed.Cause.automated_rule(7))

    change = EventChange.objects.get(event=event)
    assert (change.cause, change.cause_ref, change.user) == (
        ChangeCause.AUTOMATED_RULE,
        "automated_rule:7",
        None,
    )


def test_a_failed_handling_is_a_system_change_and_no_change_no_row(tenancy):
    event = factories.make_event(tenancy.account_a)
    mark_event_failed(event, note="Cloud Firewall refused.")
    change_event_status(event, EventStatus.HANDLING, user=tenancy.alice)
    change_event_status(event, EventStatus.HANDLING, user=tenancy.alice)  # already Handling

    rows = list(EventChange.objects.filter(event=event).values_list("cause", "details"))
    assert rows == [
        (ChangeCause.SYSTEM, {"from": "unhandled", "to": "failed"}),
        (ChangeCause.USER, {"from": "failed", "to": "handling"}),
    ]


def test_changes_are_read_through_the_scope(tenancy):
    factories.make_event(tenancy.account_a)
    mine = factories.make_event(tenancy.account_a)
    theirs = factories.make_event(tenancy.account_x)
    change_event_status(mine, EventStatus.HANDLED, user=tenancy.alice)
    change_event_status(theirs, EventStatus.HANDLED)

    from tests.conftest import organisation_scope

    visible = EventChange.objects.in_scope(organisation_scope(tenancy.org))
    assert list(visible.values_list("event_id", flat=True)) == [mine.id]


# --- delivery ------------------------------------------------------------------------


def test_two_consumers_each_receive_every_change_once(tenancy, consumers):
    soar, mail = consumers("soar"), consumers("notifications")
    asset = factories.make_asset(tenancy.account_a)
    process_alerts([a.id for a in mining_alerts(tenancy.account_a, asset, 1)])
    change_event_status(
        factories.make_event(tenancy.account_b), EventStatus.HANDLING, user=tenancy.alice
    )
    everything = list(EventChange.objects.values_list("id", flat=True))
    assert len(everything) == 2

    assert feed.deliver("soar") == 2
    assert feed.deliver("soar") == 0
    assert feed.deliver("notifications") == 2
    assert feed.deliver("notifications") == 0

    assert soar == everything and mail == everything
    assert not EventChangeDelivery.objects.exists()


def test_a_failing_consumer_keeps_its_changes_and_does_not_hold_up_the_others(tenancy, consumers):
    consumers("broken", fail=True)
    working = consumers("working")
    event = factories.make_event(tenancy.account_a)
    change_event_status(event, EventStatus.HANDLING, user=tenancy.alice)

    with pytest.raises(RuntimeError):
        feed.deliver("broken")
    assert feed.deliver("working") == 1

    assert working == [EventChange.objects.get().id]
    assert list(EventChangeDelivery.objects.values_list("consumer", flat=True)) == ["broken"]
    assert feed.consumers_with_waiting_changes() == ["broken"]


def test_a_consumer_registered_later_starts_from_its_registration(tenancy, consumers):
    change_event_status(factories.make_event(tenancy.account_a), EventStatus.HANDLED)
    late = consumers("late")
    change_event_status(factories.make_event(tenancy.account_a), EventStatus.HANDLED)

    feed.deliver("late")
    assert late == [EventChange.objects.order_by("-id").values_list("id", flat=True)[0]]


def test_the_wake_up_is_sent_only_after_commit(
    tenancy, consumers, django_capture_on_commit_callbacks
):
    consumers("soar")
    woken = []

    def receiver(sender, consumers, **kwargs):
        woken.append(consumers)

    feed.event_changes_recorded.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            change_event_status(factories.make_event(tenancy.account_a), EventStatus.HANDLED)
        assert woken == []
        for callback in callbacks:
            callback()
    finally:
        feed.event_changes_recorded.disconnect(receiver)
    assert woken == [["soar"]]


def test_the_sweeper_delivers_what_waited_too_long(tenancy, consumers, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    received = consumers("soar")
    change_event_status(factories.make_event(tenancy.account_a), EventStatus.HANDLED)
    EventChangeDelivery.objects.update(created_at=EventChangeDelivery.objects.get().created_at)

    # ``.result``, not ``.get()``: Celery's guard against joins inside a task is
    # a process-wide flag that any eager task of another thread may hold.
    assert tasks.sweep_change_feed.apply(kwargs={"older_than_seconds": 3600}).result == []
    assert tasks.sweep_change_feed.apply(kwargs={"older_than_seconds": 0}).result == ["soar"]
    assert received == [EventChange.objects.get().id]


# --- on PostgreSQL: concurrent consumers and a crash between commit and wake-up ---------

on_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL",
)


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_of_one_consumer_never_take_the_same_change(tenancy, consumers):
    events = [factories.make_event(tenancy.account_a) for _ in range(6)]
    taken: dict[str, list[int]] = {"first": [], "second": []}
    first_holds_its_rows = threading.Event()
    second_done = threading.Event()

    def handle(changes):
        worker = threading.current_thread().name
        taken[worker].extend(c.id for c in changes)
        if worker == "first":
            first_holds_its_rows.set()
            # Keep the rows locked until the other worker has taken its share.
            assert second_done.wait(10)

    feed.register_consumer("soar", handle)
    try:
        for event in events:
            change_event_status(event, EventStatus.HANDLED)

        def run(limit, before=None):
            try:
                if before is not None:
                    assert before.wait(10)
                feed.deliver("soar", limit=limit)
            finally:
                if threading.current_thread().name == "second":
                    second_done.set()
                connections.close_all()

        first = threading.Thread(target=run, args=(3,), name="first")
        second = threading.Thread(target=run, args=(10, first_holds_its_rows), name="second")
        first.start()
        second.start()
        first.join(20)
        second.join(20)
    finally:
        feed.unregister_consumer("soar")

    everything = sorted(EventChange.objects.values_list("id", flat=True))
    assert len(taken["first"]) == 3 and len(taken["second"]) == 3
    assert sorted(taken["first"] + taken["second"]) == everything
    assert not EventChangeDelivery.objects.exists()


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or 'localhost'}{port}/{db['NAME']}"


CRASHING_WRITER = textwrap.dedent(
    """
    import os
    import django

    django.setup()
    from django.db import transaction

    from events import feed
    from events.models import EventStatus, SecurityEvent
    from events.services import change_event_status

    feed.register_consumer("soar", lambda changes: None)
    event = SecurityEvent.objects.get(id=int(os.environ["EVENT_ID"]))
    with transaction.atomic():
        # Runs first after the commit, before the feed's wake-up: the process
        # dies with the change committed and nobody woken.
        transaction.on_commit(lambda: os._exit(9))
        change_event_status(event, EventStatus.HANDLING, note="crash after commit")
    """
)


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db(transaction=True)
def test_a_crash_between_commit_and_wake_up_loses_no_change(tenancy, consumers, settings):
    event = factories.make_event(tenancy.account_a)
    woken = []

    def receiver(sender, consumers, **kwargs):
        woken.append(consumers)

    feed.event_changes_recorded.connect(receiver)
    try:
        finished = subprocess.run(
            [sys.executable, "-c", CRASHING_WRITER],
            cwd=REPO,
            env={
                **os.environ,
                "DATABASE_URL": _database_url(),
                "DEBUG": "true",
                "EVENT_ID": str(event.id),
                "DJANGO_SETTINGS_MODULE": "secops.settings",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        feed.event_changes_recorded.disconnect(receiver)
    assert finished.returncode == 9, finished.stderr

    # The change and its delivery committed; nothing woke anyone.
    change = EventChange.objects.get(event=event)
    assert change.details == {"from": "unhandled", "to": "handling"}
    assert woken == []

    received = consumers("soar")
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert tasks.sweep_change_feed.apply(kwargs={"older_than_seconds": 0}).result == ["soar"]
    assert received == [change.id]
    # (The writer's own apps queued the change for their consumers too.)
    assert not EventChangeDelivery.objects.filter(consumer="soar").exists()
