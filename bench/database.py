"""The bench database: checked, created, migrated and emptied before a run."""

from time import perf_counter

import psycopg
from django.core.management import call_command
from django.db import connection, transaction
from psycopg import sql

from alerts.models import (
    Alert,
    AlertEntity,
    AlertKey,
    Asset,
    Entity,
    IngestionRejection,
    IngestionStat,
    PendingAlertBatch,
)
from bench.generate import BenchAccount
from events.models import EventAlert, EventStatusChange, SecurityEvent
from secops.models import Account, Organisation
from secops.scope import Scope
from whitelist.models import Match

BENCH_ORGANISATION = "Bench Org"

# Everything the pipeline scenario writes; emptied at the start of a run. The
# CASCADE empties what refers to them too: whitelist rule groups name the
# event they were made from, so the bench database's groups go as well.
# Batches left waiting by an interrupted run go too: their alerts are gone,
# and the next run would count them as alerts it left unprocessed.
TOUCHED_MODELS = [
    Alert,
    AlertEntity,
    AlertKey,
    Asset,
    Entity,
    IngestionRejection,
    IngestionStat,
    SecurityEvent,
    SecurityEvent.affected_assets.through,
    EventAlert,
    EventStatusChange,
    Match,
    PendingAlertBatch,
]


class BenchDatabaseError(Exception):
    """The configured database cannot be used by the bench; the message says why."""


def check_database() -> str:
    """Refuse anything but a PostgreSQL database meant for the bench; returns its name.

    The bench empties the alert, event and entity tables, so it only runs on a
    database whose name says it is a bench database.
    """
    if connection.vendor != "postgresql":
        raise BenchDatabaseError(
            f"The bench runs on PostgreSQL only; DATABASE_URL points at {connection.vendor}. "
            "Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/secops_bench (make bench does)."
        )
    name = connection.settings_dict["NAME"]
    if "bench" not in name:
        raise BenchDatabaseError(
            f"The bench empties the alert, event and entity tables of its database, and "
            f"DATABASE_URL names {name!r}, which is not a bench database. Point DATABASE_URL at "
            "a database whose name contains 'bench', e.g. "
            "postgres://postgres@127.0.0.1:5432/secops_bench."
        )
    return name


def create_database_if_missing(name: str) -> bool:
    """Create the bench database through the server's maintenance database."""
    settings = connection.settings_dict
    params = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def migrate() -> None:
    call_command("migrate", interactive=False, verbosity=0)


def empty_touched_tables() -> None:
    tables = sql.SQL(", ").join(sql.Identifier(m._meta.db_table) for m in TOUCHED_MODELS)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))


def server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]


def bench_tenancy(accounts: list[BenchAccount]) -> Scope:
    """The bench organisation and its accounts, and the scope of an organisation API key."""
    organisation, _ = Organisation.objects.get_or_create(name=BENCH_ORGANISATION)
    ids = []
    for account in accounts:
        stored, _ = Account.objects.update_or_create(
            uid=account.uid,
            defaults={
                "organisation": organisation,
                "name": account.name,
                "home_region": account.home_region,
                "managed": True,
            },
        )
        ids.append(stored.id)
    return Scope.for_accounts(organisation.id, ids)


# --- the COPY baseline ----------------------------------------------------------

# Every column of alerts_alert but the id, in table order.
ALERT_COLUMNS = [f.column for f in Alert._meta.concrete_fields if not f.primary_key]


def stored_alert_rows(scope: Scope) -> list[tuple]:
    """The rows the pipeline stored, as Python values ready for COPY (JSON as text)."""
    json_columns = {Alert._meta.get_field("raw").column, Alert._meta.get_field("exceptions").column}
    columns = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c)) if c in json_columns else sql.Identifier(c)
        for c in ALERT_COLUMNS
    )
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) ORDER BY {}").format(
        columns,
        sql.Identifier(Alert._meta.db_table),
        sql.Identifier(Alert._meta.get_field("account").column),
        sql.Identifier("id"),
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [sorted(scope.account_ids)])
        return cursor.fetchall()


def time_copy(rows: list[tuple], *, temporary: bool) -> float:
    """Seconds to COPY ``rows`` into a fresh copy of the alerts table, commit included.

    The copy has the same columns, defaults, unique constraint and indexes
    (``LIKE ... INCLUDING ALL``), so the database does the same index work as
    for the real table. A temporary table writes no WAL; a regular one costs
    what the real table costs.
    """
    copy_table = sql.Identifier("bench_alert_copy")
    kind = sql.SQL("TEMPORARY TABLE" if temporary else "TABLE")
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(copy_table))
        cursor.execute(
            sql.SQL("CREATE {} {} (LIKE {} INCLUDING ALL)").format(
                kind, copy_table, sql.Identifier(Alert._meta.db_table)
            )
        )
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        copy_table, sql.SQL(", ").join(sql.Identifier(c) for c in ALERT_COLUMNS)
    )
    try:
        start = perf_counter()
        with transaction.atomic(), connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return perf_counter() - start  # after the commit
    finally:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(copy_table))
