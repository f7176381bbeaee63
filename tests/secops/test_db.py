"""insert_on_conflict: COPY through a stage on PostgreSQL, multi-row VALUES on
SQLite, and the same results on both (the suite runs on either backend)."""

import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, AlertEntity, Asset, Entity, IngestionStat
from events.models import EventStatus, SecurityEvent
from secops import db
from secops.enums import RegionGroup, RiskLevel
from tests import factories

ON_POSTGRES = connection.vendor == "postgresql"
MOMENT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# What COPY's text format and SQL quoting must carry through unchanged, and
# what scrub_nul leaves where a NUL was.
AWKWARD_TEXT = "tab\tnewline\nreturn\rback\\slash \\N \\. 'quote' \"dq\" é 中文 🙂 \ufffd end"


@pytest.fixture
def account(db):
    return factories.make_account(factories.make_organisation())


def alert_row(account, uuid: str, **fields) -> dict:
    row = {
        "account_id": account.id,
        "asset_id": None,
        "source": "waf",
        "source_uuid": uuid,
        "type": "web_attack",
        "name": f"Alert {uuid}",
        "level": int(RiskLevel.HIGH),
        "occurred_at": MOMENT,
        "received_at": MOMENT,
        "region": RegionGroup.CHINA,
        "tactic": "",
        "technique": "",
        "description": "",
        "exceptions": [],
        "raw": {},
        "whitelisted": False,
    }
    row.update(fields)
    return row


def asset_row(account, uuid: str, **fields) -> dict:
    row = {
        "account_id": account.id,
        "uuid": uuid,
        "instance_id": "",
        "name": "",
        "public_ip": None,
        "private_ip": None,
        "os": "",
        "cloud_region": "",
        "region": RegionGroup.CHINA,
        "created_at": MOMENT,
    }
    row.update(fields)
    return row


def insert_alerts(rows) -> list[tuple]:
    return db.insert_on_conflict(
        Alert,
        rows,
        conflict_fields=["account_id", "source", "source_uuid", "occurred_at"],
        returning=["id", "source_uuid"],
    )


def stat_row(account, source: str, count: int, received_at: datetime) -> dict:
    return {
        "account_id": account.id,
        "kind": "alert",
        "source": source,
        "day": date(2026, 11, 23),
        "count": count,
        "last_received_at": received_at,
    }


def add_stats(rows) -> list[tuple]:
    return db.insert_on_conflict(
        IngestionStat,
        rows,
        conflict_fields=["account_id", "kind", "source", "day"],
        update={
            "count": f"{db.existing(IngestionStat, 'count')} + {db.excluded(IngestionStat, 'count')}",
            "last_received_at": db.excluded(IngestionStat, "last_received_at"),
        },
        returning=["source", "count"],
    )


# --- DO NOTHING -----------------------------------------------------------------


def test_it_returns_the_inserted_rows(account):
    returned = insert_alerts([alert_row(account, "a"), alert_row(account, "b")])

    stored = dict(Alert.objects.values_list("source_uuid", "id"))
    assert sorted((uuid, pk) for pk, uuid in returned) == sorted(stored.items())


def test_it_skips_and_does_not_return_rows_that_conflict(account):
    insert_alerts([alert_row(account, "a", name="first")])

    returned = insert_alerts(
        [alert_row(account, "a", name="second"), alert_row(account, "b", name="second")]
    )

    assert [uuid for _, uuid in returned] == ["b"]
    assert dict(Alert.objects.values_list("source_uuid", "name")) == {
        "a": "first",
        "b": "second",
    }


def test_it_keeps_the_first_of_repeated_rows_in_one_call(account):
    returned = insert_alerts(
        [alert_row(account, "a", name="first"), alert_row(account, "a", name="again")]
    )

    assert len(returned) == 1
    assert Alert.objects.get().name == "first"


def test_it_returns_nothing_and_runs_nothing_for_no_rows(account):
    with CaptureQueriesContext(connection) as queries:
        assert insert_alerts([]) == []

    assert len(queries) == 0


# --- DO UPDATE ------------------------------------------------------------------


def test_it_updates_conflicting_rows_with_the_given_expressions(account):
    add_stats([stat_row(account, "waf", 3, MOMENT)])
    later = MOMENT + timedelta(minutes=5)

    returned = add_stats([stat_row(account, "siem", 1, later), stat_row(account, "waf", 2, later)])

    assert sorted(returned) == [("siem", 1), ("waf", 5)]
    waf = IngestionStat.objects.get(source="waf")
    assert (waf.count, waf.last_received_at) == (5, later)


def test_it_keeps_known_values_where_the_expression_says_so(account):
    def upsert(**fields):
        return db.insert_on_conflict(
            Asset,
            [asset_row(account, "host-1", **fields)],
            conflict_fields=["account_id", "uuid"],
            update={
                "name": f"COALESCE(NULLIF({db.excluded(Asset, 'name')}, ''), "
                f"{db.existing(Asset, 'name')})",
                "public_ip": f"COALESCE({db.excluded(Asset, 'public_ip')}, "
                f"{db.existing(Asset, 'public_ip')})",
                # "%%" is a literal "%" on both backends, as in Django's raw SQL.
                "os": f"{db.excluded(Asset, 'os')} || '%%'",
            },
            returning=["id", "name", "public_ip", "os"],
        )

    ((first_id, *_),) = upsert(name="web-1", public_ip="198.51.100.7", os="Linux")
    ((second_id, name, public_ip, os),) = upsert(os="Windows")

    assert second_id == first_id
    assert (name, public_ip, os) == ("web-1", "198.51.100.7", "Windows%")
    assert Asset.objects.count() == 1


def test_it_takes_a_partial_unique_index_as_the_conflict_target(account):
    rule = factories.make_rule()
    open_event = factories.make_event(account, rule=rule, group_key="k" * 64, alert_count=2)
    closed_event = factories.make_event(
        account, rule=rule, group_key="h" * 64, status=EventStatus.HANDLED, alert_count=4
    )

    def event_row(group_key: str) -> dict:
        return {
            "account_id": account.id,
            "region": account.home_region,
            "rule_id": rule.id,
            "group_key": group_key,
            "group_values": {},
            "name": "Webshell on host",
            "description": "",
            "risk": int(RiskLevel.HIGH),
            "status": EventStatus.UNHANDLED,
            "first_occurred_at": MOMENT,
            "last_occurred_at": MOMENT,
            "alert_count": 1,
            "continues_id": None,
            "created_at": MOMENT,
            "updated_at": MOMENT,
        }

    E = SecurityEvent
    returned = db.insert_on_conflict(
        E,
        [event_row("h" * 64), event_row("k" * 64)],
        conflict_fields=["account_id", "rule_id", "group_key"],
        conflict_where=f"{db.column(E, 'status')} = 'unhandled'",
        update={
            "alert_count": f"{db.existing(E, 'alert_count')} + {db.excluded(E, 'alert_count')}"
        },
        returning=["id", "group_key", "alert_count"],
    )

    by_key = {key: (pk, count) for pk, key, count in returned}
    # The Unhandled event takes the alert; the Handled one is outside the index,
    # so its group gets a new Unhandled event.
    assert by_key["k" * 64] == (open_event.id, 3)
    new_id, new_count = by_key["h" * 64]
    assert new_id not in (open_event.id, closed_event.id)
    assert new_count == 1
    closed_event.refresh_from_db()
    assert closed_event.alert_count == 4


# --- values ---------------------------------------------------------------------


def test_it_stores_json_datetimes_and_nulls_as_the_orm_reads_them(account):
    raw = {
        "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
        "text": AWKWARD_TEXT,
        "escaped json": '{"a": "\\u0041"}',
    }
    in_beijing = datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=8)))

    insert_alerts(
        [
            alert_row(
                account,
                "a",
                raw=raw,
                exceptions=["plain", {"name": "n", "value": "v"}],
                occurred_at=in_beijing,
            )
        ]
    )

    alert = Alert.objects.get()
    assert alert.raw == raw
    assert alert.exceptions == ["plain", {"name": "n", "value": "v"}]
    assert alert.occurred_at == MOMENT  # the same instant
    assert alert.asset_id is None
    assert Alert.objects.filter(raw__nested__list__1=2.5).exists()


def test_it_stores_text_with_every_character_copy_and_quoting_treat_specially(account):
    insert_alerts([alert_row(account, "a", description=AWKWARD_TEXT, name=AWKWARD_TEXT[:255])])

    alert = Alert.objects.get()
    assert alert.description == AWKWARD_TEXT
    assert alert.name == AWKWARD_TEXT[:255]


def test_it_stores_ip_addresses_normalised_as_the_field_does(account):
    db.insert_on_conflict(
        Asset,
        [
            asset_row(account, "host-1", public_ip="2001:DB8:0:0::1"),
            asset_row(account, "host-2", public_ip="198.51.100.7", private_ip="10.0.0.1"),
        ],
        conflict_fields=["account_id", "uuid"],
    )

    stored = dict(Asset.objects.values_list("uuid", "public_ip"))
    assert stored == {"host-1": "2001:db8::1", "host-2": "198.51.100.7"}
    assert Asset.objects.get(uuid="host-1").private_ip is None
    assert Asset.objects.filter(public_ip="198.51.100.7", private_ip="10.0.0.1").exists()


def test_it_stores_booleans_and_foreign_keys(account):
    asset = factories.make_asset(account)
    entity = Entity.objects.create(
        account=account,
        type="ip",
        value="203.0.113.9",
        digest=Entity.digest_for("ip", "203.0.113.9"),
        first_seen_at=MOMENT,
        last_seen_at=MOMENT,
    )
    ((alert_id, _),) = insert_alerts([alert_row(account, "a", asset_id=asset.id, whitelisted=True)])

    db.insert_on_conflict(
        AlertEntity,
        [
            {
                "alert_id": alert_id,
                "entity_id": entity.id,
                "role": "attacker",
                "occurred_at": MOMENT,
            }
        ],
        conflict_fields=["alert_id", "entity_id", "role", "occurred_at"],
    )

    alert = Alert.objects.get()
    assert (alert.asset, alert.whitelisted) == (asset, True)
    assert list(alert.entities.all()) == [entity]


def test_it_converts_values_of_other_types_as_the_fields_do(account):
    row = stat_row(account, "waf", 1, MOMENT)
    row.update(source=123, count="7", day=datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    add_stats([row])
    insert_alerts([alert_row(account, "a", whitelisted=1, level="2", raw="just text")])

    stat = IngestionStat.objects.get()
    assert (stat.source, stat.count, stat.day) == ("123", 7, date(2026, 11, 23))
    alert = Alert.objects.get()
    assert (alert.whitelisted, alert.level, alert.raw) == (True, 2, "just text")


def test_it_refuses_a_missing_required_value_with_djangos_integrity_error(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_alerts([alert_row(account, "a", name=None)])

    assert not Alert.objects.exists()


# --- size -----------------------------------------------------------------------


def test_it_stores_more_rows_than_one_statement_takes_parameters(account):
    width = len(alert_row(account, "x"))
    rows = [alert_row(account, f"a{n}") for n in range(db.MAX_PARAMS // width + 10)]

    returned = insert_alerts(rows)

    assert len(returned) == len(rows) == Alert.objects.count()
    assert {uuid for _, uuid in returned} == {row["source_uuid"] for row in rows}


@pytest.mark.skipif(
    ON_POSTGRES, reason="PostgreSQL takes a batch in one statement (arrays or COPY)"
)
def test_it_sends_chunks_under_the_parameter_limit_on_sqlite(account, monkeypatch):
    # Two alert rows of 18 columns (their organisation added) per chunk.
    monkeypatch.setattr(db, "MAX_PARAMS", 40)
    rows = [alert_row(account, f"a{n}") for n in range(5)]

    with CaptureQueriesContext(connection) as queries:
        returned = insert_alerts(rows)

    # One read of the accounts' organisation, then the chunks.
    assert [q["sql"].split()[0] for q in queries] == ["SELECT"] + ["INSERT"] * 3
    assert sorted(uuid for _, uuid in returned) == ["a0", "a1", "a2", "a3", "a4"]


# --- PostgreSQL: the stage --------------------------------------------------------


@pytest.fixture(params=["arrays", "stage"])
def postgres_path(request, monkeypatch):
    """Each PostgreSQL path in turn: arrays per column (few rows), the COPY stage (many)."""
    if request.param == "stage":
        monkeypatch.setattr(db, "STAGE_ABOVE_PARAMS", 0)
    else:
        monkeypatch.setattr(db, "STAGE_ABOVE_PARAMS", 10**9)
    return request.param


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the paths are PostgreSQL's")
def test_it_takes_small_batches_as_arrays_and_big_ones_through_the_stage(account):
    width = len(alert_row(account, "x")) + 1  # the organisation is added
    small = [alert_row(account, f"s{n}") for n in range(db.STAGE_ABOVE_PARAMS // width)]
    big = [alert_row(account, f"b{n}") for n in range(db.STAGE_ABOVE_PARAMS // width + 1)]

    with CaptureQueriesContext(connection) as small_queries:
        insert_alerts(small)
    with CaptureQueriesContext(connection) as big_queries:
        insert_alerts(big)

    assert not any("TEMPORARY" in q["sql"] for q in small_queries)
    assert any("TEMPORARY" in q["sql"] for q in big_queries)
    assert Alert.objects.count() == len(small) + len(big)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the COPY stage is PostgreSQL's")
def test_it_inserts_in_conflict_key_order(account, postgres_path):
    # Batches that take their row locks in the same order cannot deadlock.
    rows = [alert_row(account, f"a{n:03}") for n in reversed(range(200))]

    returned = insert_alerts(rows)

    ids_in_key_order = [pk for pk, _ in sorted(returned, key=lambda row: row[1])]
    assert ids_in_key_order == sorted(ids_in_key_order)


AWKWARD_TEXTS = [
    "",
    " padded ",
    'a "quoted" word',
    'back\\slash \\" and \\n',
    "{braces}, commas, (parens)",
    "NULL",
    "null",
    "=cmd|' /C calc'!A0",
    "Ünïcødé 攻击 🛡",
    "line\nbreak\ttab",
]


@pytest.mark.skipif(not ON_POSTGRES, reason="the paths are PostgreSQL's")
def test_it_stores_every_text_and_json_value_unchanged(account, postgres_path):
    rows = [
        alert_row(
            account,
            f"t{n}",
            name=text,
            description=text,
            exceptions=[text, {"name": text, "value": None}],
            raw={text: [text, 1.5, None, True], "nested": {"q": '"', "b": "\\"}},
        )
        for n, text in enumerate(AWKWARD_TEXTS)
    ]

    insert_alerts(rows)

    stored = {a.source_uuid: a for a in Alert.objects.all()}
    for row in rows:
        alert = stored[row["source_uuid"]]
        assert (alert.name, alert.description) == (row["name"], row["description"])
        assert (alert.exceptions, alert.raw) == (row["exceptions"], row["raw"])
        assert alert.occurred_at == MOMENT


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the COPY stage is PostgreSQL's")
def test_it_stages_twice_in_one_transaction(account, monkeypatch):
    monkeypatch.setattr(db, "STAGE_ABOVE_PARAMS", 0)
    with transaction.atomic():
        insert_alerts([alert_row(account, "a")])
        insert_alerts([alert_row(account, "b")])

    assert Alert.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the COPY stage is PostgreSQL's")
def test_it_reports_a_value_the_column_refuses_as_djangos_data_error(account, postgres_path):
    # Never cut to fit: a text longer than its column is refused on both paths.
    with pytest.raises(DataError), transaction.atomic():
        insert_alerts([alert_row(account, "a", region="far too long for eight")])

    assert not Alert.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the COPY stage is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_it_works_outside_a_transaction_and_leaves_no_stage_behind(monkeypatch):
    monkeypatch.setattr(db, "STAGE_ABOVE_PARAMS", 0)
    account = factories.make_account(factories.make_organisation())

    insert_alerts([alert_row(account, "a")])
    insert_alerts([alert_row(account, "a"), alert_row(account, "b")])

    assert Alert.objects.count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()")
        assert cursor.fetchone() == (0,)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="needs concurrent transactions on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_it_does_not_deadlock_two_transactions_sending_overlapping_rows_in_opposite_orders(
    postgres_path,
):
    account = factories.make_account(factories.make_organisation())
    # Big enough for the two INSERTs to run at the same time: in the order given,
    # each would wait for a row the other has inserted.
    batches = [
        [alert_row(account, f"a{n:04}") for n in range(0, 3000)],
        [alert_row(account, f"a{n:04}") for n in reversed(range(1000, 4000))],
    ]
    started = threading.Barrier(2, timeout=10)
    returned, failures = [], []

    def send(rows):
        try:
            with transaction.atomic():
                started.wait()
                returned.append(insert_alerts(rows))
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(rows,)) for rows in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert sum(len(r) for r in returned) == 4000 == Alert.objects.count()
