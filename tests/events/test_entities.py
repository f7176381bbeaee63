"""The entities of security events: roles, alert counts, order, the scope, and
a constant number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import EntityRole, EntityType
from events.entities import entities_of_events
from secops.scope import Scope
from tests import factories
from tests.events.test_export import link_entity

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def scope_of(*accounts) -> Scope:
    return Scope.for_accounts(accounts[0].organisation_id, [account.id for account in accounts])


def summary(found) -> dict:
    return {
        event_id: [(i.entity.type, i.entity.value, i.roles, i.alert_count) for i in items]
        for event_id, items in found.items()
    }


def test_it_lists_each_events_entities_with_their_roles_and_alert_counts(tenancy):
    account = tenancy.account_a
    first = factories.make_event(account, name="First")
    second = factories.make_event(account, name="Second")
    alert_1, alert_2, alert_3 = (factories.make_alert(account) for _ in range(3))
    link_entity(first, alert_1, EntityType.IP, "203.0.113.7", role=EntityRole.RELATED)
    link_entity(first, alert_2, EntityType.IP, "203.0.113.7")
    link_entity(first, alert_2, EntityType.FILE, "/tmp/kw", role=EntityRole.VICTIM)
    link_entity(first, alert_1, EntityType.DOMAIN, "pool.example.net")
    link_entity(second, alert_3, EntityType.IP, "203.0.113.7")
    empty = factories.make_event(account, name="No entities")

    found = entities_of_events(scope_of(account), [first.pk, second.pk, empty.pk])

    assert summary(found) == {
        first.pk: [
            # By type in the console's order (IP before file before domain),
            # roles in the console's order whatever order the alerts gave them.
            ("ip", "203.0.113.7", ("attacker", "related"), 2),
            ("file", "/tmp/kw", ("victim",), 1),
            ("domain", "pool.example.net", ("attacker",), 1),
        ],
        second.pk: [("ip", "203.0.113.7", ("attacker",), 1)],
        empty.pk: [],
    }


def test_it_leaves_out_entities_outside_the_scope(tenancy):
    ours = factories.make_event(tenancy.account_a)
    theirs = factories.make_event(tenancy.account_x)
    link_entity(ours, factories.make_alert(tenancy.account_a), EntityType.IP, "203.0.113.7")
    link_entity(theirs, factories.make_alert(tenancy.account_x), EntityType.IP, "198.51.100.9")

    found = entities_of_events(scope_of(tenancy.account_a), [ours.pk, theirs.pk])

    assert summary(found) == {
        ours.pk: [("ip", "203.0.113.7", ("attacker",), 1)],
        theirs.pk: [],
    }


def test_it_reads_any_number_of_events_in_three_queries(tenancy):
    account = tenancy.account_a
    events = [factories.make_event(account, name=f"Event {n}") for n in range(12)]
    for n, event in enumerate(events):
        link_entity(event, factories.make_alert(account), EntityType.IP, f"203.0.113.{n}")

    with CaptureQueriesContext(connection) as queries:
        found = entities_of_events(scope_of(account), [event.pk for event in events])

    assert len(queries) == 3
    assert sum(len(items) for items in found.values()) == 12
