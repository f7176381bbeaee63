"""Time partitions of the alerts, alert-entity links and logs (PostgreSQL).

On PostgreSQL these three tables are declaratively partitioned by range of
their time column into weeks (Monday 00:00 UTC to the next Monday), with a
default partition for any time outside the weeks that exist (an alert from a
clock set to 1970, a log from next year). Queries that bound the time read
only the weeks they need, and retention drops a week's tables whole instead
of deleting its rows one by one.

The weeks from the retention period's start to ``WEEKS_AHEAD`` weeks ahead
are made by the migration that partitions the tables and then by the
periodic ``alerts.maintain_partitions`` task. A week made after rows for it
reached the default partition takes those rows over.

Alert-entity links carry their alert's time, so a week of alerts and the
week of their links are dropped together. On SQLite nothing here applies:
the tables are plain and retention deletes rows.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.expressions import RawSQL

from alerts.models import Alert, AlertEntity

# Table -> the column it is partitioned by.
PARTITIONED = {
    "alerts_alert": "occurred_at",
    "alerts_alertentity": "occurred_at",
    "alerts_logrecord": "time",
}
# Alert weeks and link weeks are dropped together.
ALERT_TABLES = ("alerts_alert", "alerts_alertentity")
LOG_TABLE = "alerts_logrecord"
WEEK = timedelta(days=7)
WEEKS_AHEAD = 4
# One maintenance at a time across processes (an arbitrary constant).
_LOCK_KEY = 0x5EC0_9A27

_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    start: datetime | None  # None: the default partition
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding ``moment``."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def enabled() -> bool:
    """Whether the alert tables are partitioned (PostgreSQL once migrated)."""
    return connection.vendor == "postgresql" and is_partitioned("alerts_alert")


def is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [table],
        )
        return cursor.fetchone() is not None


def _timestamp(text: str) -> datetime:
    # The session's time zone is UTC (Django sets it), e.g. '2026-11-30 00:00:00+00'.
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    return datetime.fromisoformat(text).astimezone(UTC)


def partitions(table: str) -> list[Partition]:
    """The partitions of ``table``, default first, then by start."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = %s AND pg_table_is_visible(p.oid)",
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match:
            found.append(Partition(table, name, _timestamp(match[1]), _timestamp(match[2])))
        else:
            found.append(Partition(table, name, None, None))
    return sorted(
        found, key=lambda p: (not p.is_default, p.start or datetime.min.replace(tzinfo=UTC))
    )


def wanted_weeks(now: datetime | None = None, days: int | None = None) -> list[datetime]:
    """The week starts that should exist: from the retention period's start
    (``days`` ago, the setting by default) to ``WEEKS_AHEAD`` weeks after this one."""
    now = now or datetime.now(UTC)
    first = week_start(now - timedelta(days=days or settings.EVENT_RETENTION_DAYS))
    last = week_start(now) + WEEKS_AHEAD * WEEK
    weeks, start = [], first
    while start <= last:
        weeks.append(start)
        start += WEEK
    return weeks


def create_week(cursor, table: str, start: datetime) -> str:
    """Make the week starting at ``start`` a partition of ``table``, moving the
    default partition's rows of that week into it."""
    column = PARTITIONED[table]
    name = partition_name(table, start)
    end = start + WEEK
    quote = connection.ops.quote_name
    # Built beside the table and attached, rather than CREATE ... PARTITION
    # OF: attaching does not lock out readers and writers of the table, and
    # rows already in the default partition can move in first.
    cursor.execute(
        f"CREATE TABLE {quote(name)} (LIKE {quote(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cursor.execute(
        f"WITH moved AS (DELETE FROM {quote(default_name(table))} "
        f"WHERE {quote(column)} >= %s AND {quote(column)} < %s RETURNING *) "
        f"INSERT INTO {quote(name)} SELECT * FROM moved",
        [start, end],
    )
    cursor.execute(
        f"ALTER TABLE {quote(table)} ATTACH PARTITION {quote(name)} FOR VALUES FROM (%s) TO (%s)",
        [start, end],
    )
    return name


def ensure_partitions(now: datetime | None = None, days: int | None = None) -> list[str]:
    """Create the missing weeks of every partitioned table; the names made."""
    if not enabled():
        return []
    made = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        weeks = wanted_weeks(now, days)
        for table in PARTITIONED:
            existing = {p.start for p in partitions(table)}
            for start in weeks:
                if start not in existing:
                    made.append(create_week(cursor, table, start))
    return made


def expired_alert_weeks(cutoff: datetime) -> list[datetime]:
    """Starts of the alert weeks that lie wholly before ``cutoff``."""
    return [p.start for p in partitions("alerts_alert") if not p.is_default and p.end <= cutoff]


def expired_log_weeks(cutoff: datetime) -> list[Partition]:
    return [p for p in partitions(LOG_TABLE) if not p.is_default and p.end <= cutoff]


def row_count(cursor, name: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")
    return cursor.fetchone()[0]


def lock_and_count(cursor, name: str) -> int:
    """Lock a partition against every other use until the transaction ends; its rows."""
    cursor.execute(f"LOCK TABLE {connection.ops.quote_name(name)} IN ACCESS EXCLUSIVE MODE")
    return row_count(cursor, name)


def drop(cursor, name: str) -> None:
    # Deferred foreign key checks of rows written earlier in this transaction
    # must run first: a table with pending checks cannot be dropped.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")


# --- converting a table --------------------------------------------------------------


def _definitions(cursor, table: str) -> tuple[list[str], list[str]]:
    """The statements that recreate ``table``'s indexes and its unique and
    foreign key constraints (not the primary key), as they are now."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [table],
    )
    indexes = cursor.fetchall()
    quote = connection.ops.quote_name
    drops = [f"ALTER TABLE {{old}} DROP CONSTRAINT {quote(name)}" for name, _ in constraints]
    drops += [f"DROP INDEX {quote(name)}" for name, _ in indexes]
    creates = [f"ALTER TABLE {{new}} ADD CONSTRAINT {quote(name)} {d}" for name, d in constraints]
    # pg_get_indexdef names the table as it is now; it is the new one's name.
    creates += [definition for _, definition in indexes]
    return drops, creates


def rebuild(cursor, table: str, *, partitioned: bool, now: datetime | None = None) -> None:
    """Rebuild ``table`` with its rows, indexes and constraints, either
    partitioned by week on its time column or as a plain table.

    Primary key: (id, time) when partitioned (a partitioned table's unique
    keys must hold its partition key); ids keep coming from one sequence, so
    id alone stays unique. Foreign keys from other tables to this one must be
    gone first: they would need the time column too.
    """
    quote = connection.ops.quote_name
    column = PARTITIONED[table]
    old = f"{table}_old"
    drops, creates = _definitions(cursor, table)
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {quote(table)}")
    (max_id,) = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
    for statement in drops:
        cursor.execute(statement.format(old=quote(old)))
    cursor.execute(f"ALTER TABLE {quote(old)} DROP CONSTRAINT {quote(table + '_pkey')}")
    # The id sequence moves to the new table (an identity column cannot: a
    # partitioned table has none before PostgreSQL 17).
    cursor.execute(
        "SELECT attidentity FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'id'",
        [old],
    )
    if cursor.fetchone()[0]:
        cursor.execute(f"ALTER TABLE {quote(old)} ALTER COLUMN id DROP IDENTITY")
    else:
        cursor.execute(f"ALTER TABLE {quote(old)} ALTER COLUMN id DROP DEFAULT")
        cursor.execute(f"DROP SEQUENCE IF EXISTS {quote(table + '_id_seq')}")
    partition_clause = f" PARTITION BY RANGE ({quote(column)})" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE {quote(table)} (LIKE {quote(old)} INCLUDING DEFAULTS "
        f"INCLUDING CONSTRAINTS){partition_clause}"
    )
    sequence = quote(table + "_id_seq")
    cursor.execute(f"CREATE SEQUENCE {sequence} OWNED BY {quote(table)}.id")
    cursor.execute(f"SELECT setval('{sequence}', %s, %s)", [max(max_id, 1), max_id > 0])
    cursor.execute(f"ALTER TABLE {quote(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}')")
    key = f"id, {quote(column)}" if partitioned else "id"
    cursor.execute(
        f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(table + '_pkey')} PRIMARY KEY ({key})"
    )
    for statement in creates:
        cursor.execute(statement.format(new=quote(table)))
    if partitioned:
        cursor.execute(
            f"CREATE TABLE {quote(default_name(table))} PARTITION OF {quote(table)} DEFAULT"
        )
        for start in wanted_weeks(now):
            create_week(cursor, table, start)
    cursor.execute(f"INSERT INTO {quote(table)} SELECT * FROM {quote(old)}")
    cursor.execute(f"DROP TABLE {quote(old)}")


# --- retention --------------------------------------------------------------------


def alert_week_names(start: datetime) -> tuple[str, str]:
    """The partitions of one week of alerts and of their entity links."""
    return tuple(partition_name(table, start) for table in ALERT_TABLES)


def alerts_of(name: str) -> RawSQL:
    """The ids of the alerts in partition ``name``, as a subquery."""
    return RawSQL(f"SELECT id FROM {connection.ops.quote_name(name)}", [])


def release_references(name: str) -> None:
    """Apply what deleting the alerts of partition ``name`` would do to the
    rows that refer to them (no database constraint does it: see
    alerts.AlertEntity): cascade or set null, as each relation says. The
    week's entity links go with the partition that holds them."""
    for relation in Alert._meta.related_objects:
        model = relation.related_model
        if model is AlertEntity or relation.many_to_many:
            continue
        lookup = {f"{relation.field.name}__in": alerts_of(name)}
        if relation.on_delete is models.CASCADE:
            model._base_manager.filter(**lookup).delete()
        elif relation.on_delete is models.SET_NULL:
            model._base_manager.filter(**lookup).update(**{relation.field.name: None})
        else:
            raise RuntimeError(f"{model.__name__}.{relation.field.name} blocks dropping {name}")
