"""The way from plain alert tables to partitioned ones, on a copy with data.

A database of its own is migrated and filled with the demo data, taken back
to the schema before partitioning (plain tables, the alert's identity a
unique key of the alerts table), given rows written there as an older
version would write them, and migrated forward again, as an upgrade runs
``manage.py migrate``. Every row must come through unchanged, ids included.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="tables are partitioned on PostgreSQL only"
    ),
    pytest.mark.django_db,
]

ROOT = Path(settings.BASE_DIR)
BEFORE_PARTITIONING = [("alerts", "0008")]

# What must survive, row for row.
FINGERPRINTS = {
    "alerts": "SELECT count(*), md5(string_agg(concat_ws('|', id, account_id, source, "
    "source_uuid, occurred_at, name, raw::text), ',' ORDER BY id)) FROM alerts_alert",
    "links": "SELECT count(*), md5(string_agg(concat_ws('|', id, alert_id, entity_id, role, "
    "attributes::text), ',' ORDER BY id)) FROM alerts_alertentity",
    "logs": "SELECT count(*), md5(string_agg(concat_ws('|', id, account_id, digest, time, "
    "fields::text), ',' ORDER BY id)) FROM alerts_logrecord",
    "event links": "SELECT count(*), md5(string_agg(concat_ws('|', event_id, alert_id), ',' "
    "ORDER BY id)) FROM events_eventalert",
    "matches": "SELECT count(*) FROM whitelist_match",
}


def server_url(database: str) -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{database}"
    )


@pytest.fixture
def copy_database():
    name = f"{connection.settings_dict['NAME']}_upgrade"
    admin = psycopg.connect(server_url("postgres"), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url(name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def manage(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true", "REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def fingerprints(db) -> dict:
    return {name: db.execute(sql).fetchone() for name, sql in FINGERPRINTS.items()}


def partitioned(db, table: str) -> bool:
    return (
        db.execute(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = %s::regclass", [table]
        ).fetchone()[0]
        == 1
    )


def test_an_upgrade_partitions_the_tables_and_keeps_every_row(copy_database):
    manage(copy_database, "migrate", "--noinput")
    manage(copy_database, "seed_demo")
    with psycopg.connect(copy_database, autocommit=True) as db:
        seeded = fingerprints(db)
        assert seeded["alerts"][0] > 100 and seeded["logs"][0] > 100
        assert seeded["event links"][0] > 50 and seeded["links"][0] > 100

    # Back to the tables as they were before partitioning.
    manage(copy_database, "migrate", "alerts", "0008", "--noinput")
    with psycopg.connect(copy_database, autocommit=True) as db:
        assert not partitioned(db, "alerts_alert")
        assert fingerprints(db) == seeded
        unique = db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'alert_unique_source_uuid_per_account'"
        ).fetchone()[0]
        assert unique == "UNIQUE (account_id, source, source_uuid)"
        assert db.execute("SELECT to_regclass('alerts_alertkey')").fetchone()[0] is None
        # Rows written by that version: alerts (with a link) in the far past
        # and in this week, and a log.
        db.execute(
            "INSERT INTO alerts_alert (account_id, asset_id, source, source_uuid, type, name, "
            "level, occurred_at, received_at, region, tactic, technique, description, "
            "exceptions, raw, whitelisted) SELECT account_id, asset_id, source, "
            "'old-version-' || id, type, name, level, occurred_at - interval '2 years', now(), "
            "region, tactic, technique, description, exceptions, raw, whitelisted "
            "FROM alerts_alert ORDER BY id LIMIT 5"
        )
        db.execute(
            "INSERT INTO alerts_alertentity (alert_id, entity_id, role, attributes) "
            "SELECT a.id, e.id, 'attacker', '{}' FROM alerts_alert a, "
            "(SELECT id FROM alerts_entity ORDER BY id LIMIT 1) e "
            "WHERE a.source_uuid LIKE 'old-version-%'"
        )
        written = fingerprints(db)

    manage(copy_database, "migrate", "--noinput")

    with psycopg.connect(copy_database, autocommit=True) as db:
        for table in ("alerts_alert", "alerts_alertentity", "alerts_logrecord"):
            assert partitioned(db, table), table
        after = fingerprints(db)
        # Links now carry their alert's time; the rest is unchanged.
        assert {k: v for k, v in after.items() if k != "links"} == {
            k: v for k, v in written.items() if k != "links"
        }
        assert after["links"][0] == written["links"][0]
        assert db.execute(
            "SELECT count(*) FROM alerts_alertentity l JOIN alerts_alert a ON a.id = l.alert_id "
            "WHERE l.occurred_at <> a.occurred_at"
        ).fetchone() == (0,)
        # Every alert's identity is a key, so a re-send is a duplicate.
        assert db.execute(
            "SELECT count(*) FROM alerts_alert a WHERE NOT EXISTS (SELECT 1 FROM alerts_alertkey "
            "k WHERE (k.account_id, k.source, k.source_uuid) = (a.account_id, a.source, "
            "a.source_uuid))"
        ).fetchone() == (0,)
        # The two-year-old rows wait in the default partition for retention.
        assert db.execute(
            "SELECT count(*) FROM alerts_alert_default WHERE source_uuid LIKE 'old-version-%'"
        ).fetchone() == (5,)
        # New rows take ids after the old ones.
        (max_id,) = db.execute("SELECT max(id) FROM alerts_alert").fetchone()
        (next_id,) = db.execute("SELECT nextval('alerts_alert_id_seq')").fetchone()
        assert next_id > max_id

    # The upgraded database serves ingestion: seeding again stores nothing twice.
    manage(copy_database, "seed_demo")
    with psycopg.connect(copy_database, autocommit=True) as db:
        assert fingerprints(db)["alerts"][0] == after["alerts"][0]
