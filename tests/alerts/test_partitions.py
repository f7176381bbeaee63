"""Alerts, their entity links and logs in weekly partitions on PostgreSQL:
what lands where, that queries bounded in time read only their weeks, that
ingestion stays idempotent without a unique key on the alert's identity, and
that retention drops whole weeks."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from alerts import partitions
from alerts.models import Alert, AlertEntity, AlertKey, Entity, LogRecord
from alerts.services import ingest_alerts, ingest_logs
from alerts.tasks import maintain_partitions
from disposal.models import HandlingPolicy, PolicySource, Scenario
from events.models import EventAlert
from events.retention import purge_expired
from secops.scope import Scope
from tests import factories
from tests.conftest import native_alert
from whitelist.models import Match

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="tables are partitioned on PostgreSQL only"
    ),
    pytest.mark.django_db,
]

NOW = timezone.now()


def alert_item(account, uuid: str, occurred_at: datetime) -> dict:
    return native_alert(
        account,
        uuid=uuid,
        occurred_at=occurred_at.isoformat(),
        entities=[{"type": "ip", "value": "203.0.113.7", "role": "attacker"}],
    )


def scope_of(account) -> Scope:
    return Scope.for_accounts(account.organisation_id, [account.id])


def partition_of(model, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def test_the_three_tables_are_partitioned_by_week_with_a_default():
    for table, column in partitions.PARTITIONED.items():
        assert partitions.is_partitioned(table), table
        found = partitions.partitions(table)
        assert found[0].is_default
        weeks = [p for p in found if not p.is_default]
        assert [p.start for p in weeks] == partitions.wanted_weeks()
        assert all(p.end - p.start == timedelta(days=7) for p in weeks)
        assert all(p.start.weekday() == 0 and p.start.hour == 0 for p in weeks), column


def test_rows_land_in_the_week_of_their_time_and_odd_times_in_the_default(tenancy):
    scope = scope_of(tenancy.account_a)
    this_week = NOW - timedelta(minutes=5)
    ancient = datetime(2001, 1, 1, tzinfo=UTC)
    result = ingest_alerts(
        [
            alert_item(tenancy.account_a, "now", this_week),
            alert_item(tenancy.account_a, "ancient", ancient),
        ],
        scope=scope,
    )
    assert result.accepted == 2
    recent, old = (Alert.objects.get(source_uuid=u) for u in ("now", "ancient"))

    week = partitions.week_start(this_week)
    assert partition_of(Alert, recent.id) == partitions.partition_name("alerts_alert", week)
    assert partition_of(Alert, old.id) == "alerts_alert_default"
    link = AlertEntity.objects.get(alert=recent)
    assert link.occurred_at == recent.occurred_at
    assert partition_of(AlertEntity, link.id) == partitions.partition_name(
        "alerts_alertentity", week
    )

    log = ingest_logs(
        [
            {
                "type": "process",
                "account": tenancy.account_a.uid,
                "host_uuid": "host-web-01",
                "time": this_week.isoformat(),
                "pid": 4242,
                "path": "/usr/bin/id",
                "cmdline": "id",
            }
        ],
        scope=scope,
    )
    assert partition_of(LogRecord, log.stored_ids[0]) == partitions.partition_name(
        "alerts_logrecord", week
    )


def test_a_time_bounded_query_reads_only_its_weeks(tenancy):
    since = NOW - timedelta(days=2)
    query = Alert.objects.filter(account=tenancy.account_a, occurred_at__gte=since)

    plan = query.explain()

    scanned = {p.name for p in partitions.partitions("alerts_alert") if p.name in plan}
    # The default partition may hold any time; of the weeks, those after ``since``.
    expected = {
        p.name for p in partitions.partitions("alerts_alert") if p.is_default or p.end > since
    }
    assert scanned == expected
    # At most: the week of ``since`` (the one before this on a Monday or
    # Tuesday), this week, the weeks made ahead and the default partition.
    most = 1 + 1 + partitions.WEEKS_AHEAD + 1
    assert 1 <= len(scanned) <= most < len(partitions.partitions("alerts_alert"))


def test_an_alert_sent_again_with_another_time_is_still_a_duplicate(tenancy):
    scope = scope_of(tenancy.account_a)
    first = ingest_alerts([alert_item(tenancy.account_a, "u-1", NOW)], scope=scope)
    # Same identity, a time in another week (another partition).
    again = ingest_alerts(
        [alert_item(tenancy.account_a, "u-1", NOW - timedelta(days=20))], scope=scope
    )

    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    assert Alert.objects.filter(source_uuid="u-1").count() == 1
    assert AlertKey.objects.filter(source_uuid="u-1").count() == 1
    # Another account's alert with the same uuid is its own.
    other = ingest_alerts(
        [alert_item(tenancy.account_b, "u-1", NOW)], scope=scope_of(tenancy.account_b)
    )
    assert other.accepted == 1


def test_a_week_made_later_takes_its_rows_over_from_the_default(tenancy):
    far = partitions.week_start(NOW) + 20 * partitions.WEEK
    alert = factories.make_alert(tenancy.account_a, occurred_at=far + timedelta(hours=3))
    assert partition_of(Alert, alert.id) == "alerts_alert_default"

    made = partitions.ensure_partitions(now=far)

    name = partitions.partition_name("alerts_alert", far)
    assert name in made
    assert partition_of(Alert, alert.id) == name
    assert Alert.objects.get(id=alert.id).source_uuid == alert.source_uuid
    # Made once.
    assert partitions.ensure_partitions(now=far) == []


def test_retention_drops_a_wholly_expired_week_as_a_table(tenancy):
    old = NOW - timedelta(days=60)
    week = partitions.week_start(old)
    alert = factories.make_alert(tenancy.account_a, occurred_at=old)
    log = factories.make_log_record(tenancy.account_a, time=old)
    Match.objects.create(alert=alert, group_name="noise", matched_at=old)
    policy = HandlingPolicy.objects.create(
        account=tenancy.account_a,
        entity_type="ip",
        entity_value="203.0.113.7",
        entity_digest=Entity.digest_for("ip", "203.0.113.7"),
        scenario=Scenario.objects.get(key="block-ip-cloud-firewall-inbound"),
        validity_days=7,
        source=PolicySource.ALERT,
        source_alert=alert,
    )
    alerts_week, links_week = partitions.alert_week_names(week)
    assert table_exists(alerts_week) and table_exists(links_week)

    result = purge_expired(days=30, now=NOW)

    assert not table_exists(alerts_week) and not table_exists(links_week)
    assert not table_exists(partitions.partition_name("alerts_logrecord", week))
    assert result.alerts >= 1 and result.logs >= 1
    assert not Alert.objects.filter(id=alert.id).exists()
    assert not LogRecord.objects.filter(id=log.id).exists()
    # What referred to the alert went as the ORM's delete would have done it.
    assert not Match.objects.filter(alert_id=alert.id).exists()
    assert not AlertKey.objects.filter(source_uuid=alert.source_uuid).exists()
    policy.refresh_from_db()
    assert policy.source_alert_id is None


def test_retention_keeps_a_week_that_an_event_still_kept_needs(tenancy):
    old = NOW - timedelta(days=60)
    week = partitions.week_start(old)
    kept_alert = factories.make_alert(tenancy.account_a, occurred_at=old)
    spare = factories.make_alert(tenancy.account_a, occurred_at=old + timedelta(hours=1))
    event = factories.make_event(
        tenancy.account_a,
        rule=factories.make_rule(),
        first_occurred_at=old,
        last_occurred_at=NOW - timedelta(days=1),
    )
    EventAlert.objects.create(event=event, alert=kept_alert)

    purge_expired(days=30, now=NOW)

    assert table_exists(partitions.alert_week_names(week)[0])
    assert Alert.objects.filter(id=kept_alert.id).exists()
    # The others of that week go row by row.
    assert not Alert.objects.filter(id=spare.id).exists()


def test_alerts_group_by_their_columns_not_by_the_id_alone(tenancy):
    # The primary key is (id, occurred_at): grouping by id alone would not
    # let PostgreSQL select the other columns.
    alert = factories.make_alert(tenancy.account_a, name="grouped")
    entity = Entity.objects.create(
        account=tenancy.account_a,
        type="ip",
        value="203.0.113.8",
        digest=Entity.digest_for("ip", "203.0.113.8"),
        first_seen_at=NOW,
        last_seen_at=NOW,
    )
    AlertEntity.objects.create(alert=alert, entity=entity, role="attacker")

    counted = Alert.objects.filter(id=alert.id).annotate(links=Count("entity_links"))

    assert [(a.name, a.links) for a in counted] == [("grouped", 1)]


def test_the_command_and_the_task_make_the_missing_weeks():
    last = partitions.partitions("alerts_alert")[-1]
    with connection.cursor() as cursor:
        partitions.drop(cursor, last.name)
    out = StringIO()

    call_command("maintain_partitions", stdout=out)

    assert out.getvalue().startswith("Made 1 partitions.")
    assert last.name in out.getvalue()
    assert partitions.partitions("alerts_alert")[-1] == last
    assert maintain_partitions() == []
