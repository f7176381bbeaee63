"""Tenant rows take their organisation from their parent, on every write path."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, AlertEntity, Entity, EntityRole
from events.models import EventAlert, EventAsset
from secops import db, tenancy
from secops.scope import Scope
from tests import factories
from whitelist.models import RuleGroup, RuleGroupAccount


def test_it_fills_the_organisation_on_save(tenancy):
    alert = factories.make_alert(tenancy.account_a)
    event = factories.make_event(tenancy.account_x)

    assert alert.organisation_id == tenancy.org.id
    assert event.organisation_id == tenancy.other_org.id
    link = EventAlert.objects.create(event=factories.make_event(tenancy.account_a), alert=alert)
    assert link.organisation_id == tenancy.org.id


def test_it_fills_the_organisation_in_bulk_from_parents_given_by_id(tenancy):
    alerts = [factories.make_alert(account) for account in (tenancy.account_a, tenancy.account_x)]
    events = [factories.make_event(account) for account in (tenancy.account_a, tenancy.account_x)]

    created = EventAlert.objects.bulk_create(
        [EventAlert(event_id=e.id, alert_id=a.id) for e, a in zip(events, alerts, strict=True)]
    )

    assert [link.organisation_id for link in created] == [tenancy.org.id, tenancy.other_org.id]
    assert set(EventAlert.objects.values_list("organisation_id", flat=True)) == {
        tenancy.org.id,
        tenancy.other_org.id,
    }


def test_it_fills_the_organisation_of_many_to_many_links(tenancy):
    event = factories.make_event(tenancy.account_a)
    asset = factories.make_asset(tenancy.account_a)
    group = RuleGroup.objects.create(
        organisation=tenancy.org, name="lab", scenario="suspicious_process", is_global=False
    )

    event.affected_assets.add(asset)
    group.accounts.set([tenancy.account_a, tenancy.account_b])

    assert EventAsset.objects.get().organisation_id == tenancy.org.id
    assert set(RuleGroupAccount.objects.values_list("organisation_id", flat=True)) == {
        tenancy.org.id
    }
    assert list(event.affected_assets.all()) == [asset]


def test_insert_on_conflict_fills_the_organisation_and_keys_on_it(tenancy):
    account = tenancy.account_x
    seen = timezone.now()
    row = {
        "account": account.id,
        "type": "ip",
        "value": "203.0.113.7",
        "digest": Entity.digest_for("ip", "203.0.113.7"),
        "attributes": {},
        "malicious": False,
        "first_seen_at": seen,
        "last_seen_at": seen,
    }

    first = db.insert_on_conflict(Entity, [row], conflict_fields=["account", "type", "digest"])
    again = db.insert_on_conflict(Entity, [row], conflict_fields=["account", "type", "digest"])

    assert len(first) == 1 and again == []
    assert Entity.objects.get().organisation_id == tenancy.other_org.id


def test_alert_entity_links_take_their_alerts_organisation(tenancy):
    alert = factories.make_alert(tenancy.account_b)
    entity = Entity.objects.create(
        account=tenancy.account_b,
        type="ip",
        value="192.0.2.1",
        digest=Entity.digest_for("ip", "192.0.2.1"),
        first_seen_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )

    link = AlertEntity.objects.create(alert=alert, entity=entity, role=EntityRole.VICTIM)

    assert link.organisation_id == entity.organisation_id == tenancy.org.id


def test_a_scoped_query_is_held_to_the_scope_organisation(tenancy):
    factories.make_alert(tenancy.account_a)
    scope = Scope.for_accounts(tenancy.org.id, [tenancy.account_a.id])

    with CaptureQueriesContext(connection) as queries:
        assert Alert.objects.in_scope(scope).count() == 1

    assert '"alerts_alert"."organisation_id" = ' in queries[0]["sql"]
    # An organisation that does not own the accounts sees none of their rows.
    wrong = Scope.for_accounts(tenancy.other_org.id, [tenancy.account_a.id])
    assert Alert.objects.in_scope(wrong).count() == 0


def test_a_scoped_query_holds_the_tables_of_its_account_path_too(tenancy):
    from disposal.models import Notification

    scope = Scope.for_accounts(tenancy.org.id, [tenancy.account_a.id])
    sql = str(Notification.objects.in_scope(scope).query)

    assert '"disposal_notification"."organisation_id" = ' in sql
    assert '"events_securityevent"."organisation_id" = ' in sql


@pytest.mark.parametrize("label", sorted(tenancy.TENANT_EXEMPT))
def test_exempt_tables_are_not_tenant_tables(label):
    from django.apps import apps

    try:
        model = apps.get_model(label)
    except LookupError:
        pytest.skip(f"{label} is not part of this version")
    assert not tenancy.is_tenant_model(model)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the key migration is PostgreSQL's")
@pytest.mark.postgres
def test_it_groups_tenant_rows_by_every_selected_column_on_postgresql(tenancy):
    from django.db.models import Count

    from events.models import SecurityEvent

    event = factories.make_event(tenancy.account_a)
    EventAlert.objects.create(event=event, alert=factories.make_alert(tenancy.account_a))

    # The primary key is (organisation_id, id): the id alone implies no column.
    assert not connection.features.allows_group_by_selected_pks_on_model(SecurityEvent)
    counted = SecurityEvent.objects.annotate(links=Count("alert_links")).get()
    assert (counted.name, counted.links) == (event.name, 1)
