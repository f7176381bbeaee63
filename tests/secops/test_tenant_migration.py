"""The way to tenant tables that carry their organisation, on a copy with data.

A database of its own (a PostgreSQL database, or an SQLite file) is migrated
and filled with the demo data, taken back to the schema before the
organisation columns, composite keys and link models, and migrated forward
again, as an upgrade runs ``manage.py migrate``. Every row must come through
unchanged both ways, links of many-to-many relations included, and every
row must end with its parent's organisation.
"""

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.django_db]

ROOT = Path(settings.BASE_DIR)
BEFORE = ("alerts", "0010")

# table -> columns whose values must survive, row for row.
ROWS = {
    "alerts_asset": "id, account_id, uuid",
    "alerts_entity": "id, account_id, digest",
    "alerts_alert": "id, account_id, asset_id, source, source_uuid, name",
    "alerts_alertentity": "id, alert_id, entity_id, role",
    "alerts_logrecord": "id, account_id, digest",
    "events_securityevent": "id, account_id, rule_id, group_key, status, alert_count",
    "events_eventalert": "id, event_id, alert_id",
    "events_eventstatuschange": "id, event_id, to_status",
    "whitelist_condition": "id, group_id, value",
    "whitelist_match": "alert_id, group_id",
    "disposal_handlingpolicy": "id, account_id, entity_value",
    "disposal_handlingtask": "id, policy_id, account_id, status",
    "disposal_notification": "id, event_id, title",
}
# The many-to-many links: (table before, its columns) and (table after, its columns).
LINKS = {
    "event assets": (
        ("events_securityevent_affected_assets", "securityevent_id, asset_id"),
        ("events_eventasset", "event_id, asset_id"),
    ),
    "policy accounts": (
        ("disposal_handlingpolicy_scope_accounts", "handlingpolicy_id, account_id"),
        ("disposal_policyscopeaccount", "policy_id, account_id"),
    ),
    "group accounts": (
        ("whitelist_rulegroup_accounts", "rulegroup_id, account_id"),
        ("whitelist_rulegroupaccount", "group_id, account_id"),
    ),
}
# Rows whose organisation must be their parent's after the upgrade.
OWNERS = {
    "alerts_alert": "SELECT count(*) FROM alerts_alert t JOIN secops_account p "
    "ON p.id = t.account_id WHERE t.organisation_id <> p.organisation_id",
    "alerts_alertentity": "SELECT count(*) FROM alerts_alertentity t JOIN alerts_alert p "
    "ON p.id = t.alert_id WHERE t.organisation_id <> p.organisation_id",
    "events_eventalert": "SELECT count(*) FROM events_eventalert t JOIN events_securityevent p "
    "ON p.id = t.event_id WHERE t.organisation_id <> p.organisation_id",
    "events_eventasset": "SELECT count(*) FROM events_eventasset t JOIN events_securityevent p "
    "ON p.id = t.event_id WHERE t.organisation_id <> p.organisation_id",
    "disposal_handlingtask": "SELECT count(*) FROM disposal_handlingtask t JOIN "
    "disposal_handlingpolicy p ON p.id = t.policy_id WHERE t.organisation_id <> p.organisation_id",
}


@pytest.fixture
def database(tmp_path):
    """The URL of an empty database of the test's kind, and a function that opens it."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        server = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:" + str(
            db["PORT"] or 5432
        )
        name = f"{db['NAME']}_tenant_upgrade"
        admin = psycopg.connect(f"{server}/postgres", autocommit=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{server}/{name}"
            yield url, lambda: psycopg.connect(url, autocommit=True)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
    else:
        path = tmp_path / "upgrade.sqlite3"
        yield f"sqlite:///{path}", lambda: sqlite3.connect(path)


def manage(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true", "REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def digest(db, sql: str) -> tuple[int, str]:
    rows = sorted(tuple(str(value) for value in row) for row in db.execute(sql).fetchall())
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def fingerprints(db, *, upgraded: bool) -> dict:
    # Table and column names are the constants above.
    found = {
        table: digest(db, f"SELECT {columns} FROM {table}")  # noqa: S608
        for table, columns in ROWS.items()
    }
    for name, (before, after) in LINKS.items():
        table, columns = after if upgraded else before
        found[name] = digest(db, f"SELECT {columns} FROM {table}")  # noqa: S608
    return found


def test_an_upgrade_gives_every_row_its_organisation_and_a_downgrade_keeps_every_row(database):
    url, connect = database
    manage(url, "migrate", "--noinput")
    manage(url, "seed_demo")
    db = connect()
    try:
        seeded = fingerprints(db, upgraded=True)
        assert seeded["alerts_alert"][0] > 100 and seeded["event assets"][0] > 50
        assert seeded["policy accounts"][0] > 0
    finally:
        db.close()

    manage(url, "migrate", *BEFORE, "--noinput")
    db = connect()
    try:
        assert fingerprints(db, upgraded=False) == seeded
        columns = [row[0] for row in db.execute("SELECT * FROM alerts_alert LIMIT 0").description]
        assert "organisation_id" not in columns
    finally:
        db.close()

    manage(url, "migrate", "--noinput")
    db = connect()
    try:
        assert fingerprints(db, upgraded=True) == seeded
        for table, sql in OWNERS.items():
            assert db.execute(sql).fetchone()[0] == 0, table
        assert (
            db.execute(
                "SELECT count(*) FROM alerts_alert WHERE organisation_id IS NULL"
            ).fetchone()[0]
            == 0
        )
    finally:
        db.close()
