"""At most one Unhandled event per (account, rule, group key), enforced by the database.

The aggregation engine looks for the group's Unhandled event and creates one
when there is none. Two workers can both find none; the partial unique
constraint ``one_unhandled_event_per_group`` is what stops the second insert.
"""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from events.models import EventStatus, SecurityEvent
from tests import factories


@pytest.fixture
def group(db):
    organisation = factories.make_organisation()
    account = factories.make_account(organisation)
    rule = factories.make_rule()
    return {"account": account, "rule": rule, "group_key": "a" * 64}


def make_event_of(group, status=EventStatus.UNHANDLED, **fields):
    return factories.make_event(
        group["account"], rule=group["rule"], group_key=group["group_key"], status=status, **fields
    )


def test_it_refuses_a_second_unhandled_event_for_the_same_group(group):
    make_event_of(group)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_event_of(group)

    assert SecurityEvent.objects.count() == 1


def test_it_lets_a_new_unhandled_event_start_beside_closed_ones(group):
    for status in (EventStatus.HANDLED, EventStatus.HANDLING, EventStatus.FAILED):
        make_event_of(group, status=status)
    make_event_of(group, status=EventStatus.HANDLED)

    make_event_of(group)

    assert SecurityEvent.objects.count() == 5
    assert SecurityEvent.objects.filter(status=EventStatus.UNHANDLED).count() == 1


def test_it_refuses_to_reopen_an_event_while_its_group_has_an_unhandled_one(group):
    handled = make_event_of(group, status=EventStatus.HANDLED)
    make_event_of(group)

    handled.status = EventStatus.UNHANDLED
    with pytest.raises(IntegrityError), transaction.atomic():
        handled.save(update_fields=["status"])


def test_it_keeps_groups_of_other_accounts_rules_and_keys_apart(group):
    make_event_of(group)
    other_account = factories.make_account(group["account"].organisation)

    factories.make_event(other_account, rule=group["rule"], group_key=group["group_key"])
    factories.make_event(group["account"], rule=factories.make_rule(), group_key=group["group_key"])
    factories.make_event(group["account"], rule=group["rule"], group_key="b" * 64)

    assert SecurityEvent.objects.filter(status=EventStatus.UNHANDLED).count() == 4


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs concurrent transactions on PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_it_lets_only_one_of_two_concurrent_transactions_create_the_unhandled_event():
    organisation = factories.make_organisation()
    account = factories.make_account(organisation)
    rule = factories.make_rule()
    group_key = "c" * 64
    both_checked = threading.Barrier(2, timeout=10)
    found_existing = {}
    outcomes = {}

    def create_if_missing(worker: str):
        # Each thread has its own database connection (Django's are per thread).
        try:
            with transaction.atomic():
                found_existing[worker] = SecurityEvent.objects.filter(
                    account=account,
                    rule=rule,
                    group_key=group_key,
                    status=EventStatus.UNHANDLED,
                ).exists()
                # Both have looked and found nothing; now both insert at once.
                both_checked.wait()
                factories.make_event(account, rule=rule, group_key=group_key, name=worker)
            outcomes[worker] = "created"
        except IntegrityError:
            outcomes[worker] = "refused"
        except Exception as exc:  # reported by the assertions below
            outcomes[worker] = repr(exc)
        finally:
            connections.close_all()

    workers = [
        threading.Thread(target=create_if_missing, args=(name,)) for name in ("first", "second")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert not any(worker.is_alive() for worker in workers)
    assert found_existing == {"first": False, "second": False}
    assert sorted(outcomes.values()) == ["created", "refused"]
    events = SecurityEvent.objects.filter(account=account, rule=rule, group_key=group_key)
    assert events.count() == 1
    assert events.get().name == next(
        name for name, result in outcomes.items() if result == "created"
    )
