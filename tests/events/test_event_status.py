"""Event status changes: who may set what, the one-Unhandled-event rule on
reopening, and the history row every transition leaves."""

import pytest

from events.models import EventStatus, EventStatusChange, SecurityEvent
from events.services import EventStatusError, change_event_status, mark_event_failed
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

UNHANDLED, HANDLING, HANDLED, FAILED = (
    EventStatus.UNHANDLED,
    EventStatus.HANDLING,
    EventStatus.HANDLED,
    EventStatus.FAILED,
)


@pytest.fixture
def rule(db):
    return factories.make_rule()


def history(event) -> list[tuple]:
    return list(
        EventStatusChange.objects.filter(event=event).values_list(
            "from_status", "to_status", "changed_by__username", "note"
        )
    )


def stored_status(event) -> str:
    return SecurityEvent.objects.values_list("status", flat=True).get(pk=event.pk)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (UNHANDLED, HANDLING),
        (UNHANDLED, HANDLED),
        (HANDLING, HANDLED),
        (HANDLED, HANDLING),
        (FAILED, HANDLING),
        (FAILED, HANDLED),
        (HANDLED, UNHANDLED),
        (FAILED, UNHANDLED),
    ],
)
def test_it_lets_an_analyst_change_the_status_and_records_it(tenancy, rule, start, target):
    event = factories.make_event(tenancy.account_a, rule=rule, status=start)

    changed = change_event_status(event, target, user=tenancy.bob, note="Checked the host.")

    assert (changed.status, event.status, stored_status(event)) == (target, target, target)
    assert history(event) == [(start, target, "bob", "Checked the host.")]


def test_it_records_nothing_when_the_status_does_not_change(tenancy, rule):
    event = factories.make_event(tenancy.account_a, rule=rule, status=HANDLING)

    change_event_status(event, HANDLING, user=tenancy.bob)

    assert history(event) == []


@pytest.mark.parametrize("start", [UNHANDLED, HANDLING, HANDLED])
def test_it_never_lets_anyone_set_failed_by_hand(tenancy, rule, start):
    event = factories.make_event(tenancy.account_a, rule=rule, status=start)

    with pytest.raises(EventStatusError, match="Failed is set only when a handling action fails"):
        change_event_status(event, FAILED, user=tenancy.alice)

    assert stored_status(event) == start
    assert history(event) == []


def test_it_refuses_an_unknown_status(tenancy, rule):
    event = factories.make_event(tenancy.account_a, rule=rule)

    with pytest.raises(EventStatusError, match="Unknown status 'closed'"):
        change_event_status(event, "closed")

    assert stored_status(event) == UNHANDLED


@pytest.mark.parametrize("start", [UNHANDLED, HANDLING, HANDLED])
def test_it_marks_an_event_failed_when_handling_fails(tenancy, rule, start):
    event = factories.make_event(tenancy.account_a, rule=rule, status=start)

    mark_event_failed(event, note="Blocking 203.0.113.7 on Cloud Firewall failed.")

    assert stored_status(event) == FAILED
    assert history(event) == [
        (start, FAILED, None, "Blocking 203.0.113.7 on Cloud Firewall failed.")
    ]


@pytest.mark.parametrize("closed", [HANDLING, HANDLED, FAILED])
def test_it_refuses_to_reopen_an_event_while_a_newer_one_collects_its_alerts(tenancy, rule, closed):
    old = factories.make_event(tenancy.account_a, rule=rule, status=closed, group_key="group-1")
    factories.make_event(tenancy.account_a, rule=rule, group_key="group-1")

    with pytest.raises(EventStatusError, match="Another Unhandled event already collects"):
        change_event_status(old, UNHANDLED, user=tenancy.bob)

    assert stored_status(old) == closed
    assert history(old) == []
    # The refused change left the surrounding transaction usable.
    assert SecurityEvent.objects.filter(status=UNHANDLED).count() == 1


def test_it_reopens_an_event_when_its_group_has_no_unhandled_event(tenancy, rule):
    old = factories.make_event(tenancy.account_a, rule=rule, status=HANDLED, group_key="group-1")
    factories.make_event(tenancy.account_a, rule=rule, status=HANDLED, group_key="group-1")
    # Unhandled events of other groups, rules and accounts do not stand in the way.
    factories.make_event(tenancy.account_a, rule=rule, group_key="group-2")
    factories.make_event(tenancy.account_a, group_key="group-1")
    factories.make_event(tenancy.account_b, rule=rule, group_key="group-1")

    change_event_status(old, UNHANDLED, user=tenancy.bob)

    assert stored_status(old) == UNHANDLED
