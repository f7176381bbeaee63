"""Set-based writes the ORM does not express: INSERT ... ON CONFLICT with
RETURNING, on PostgreSQL and SQLite (3.35+) alike.

Used by the ingestion and the pipeline so that a batch costs a constant
number of statements, and so that idempotency and the one-Unhandled-event
rule are decided by the database's unique indexes rather than by a read
followed by a write (which races between workers).
"""

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial

from django.db import DEFAULT_DB_ALIAS, Error, connection, connections, models, transaction
from psycopg.types.json import Jsonb

from secops import tenancy

# SQLite takes the rows as one multi-row VALUES list per chunk of this many
# parameters (its limit is 32,766); beyond that, big statements stop paying off.
MAX_PARAMS = 30_000

# On PostgreSQL, rows of more than this many values in all go through a
# staging table and COPY; fewer go as one array per column, which spares the
# server a temporary table (catalog rows made and dropped) per statement when
# a batch is small.
STAGE_ABOVE_PARAMS = 4_000

_TYPE_MODIFIER = re.compile(r"\(.*\)")

# Staging tables are temporary, so their names only need to be unique within
# one session's transaction.
_stage_numbers = itertools.count(1)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if is_postgres() else f"MAX({a}, {b})"


def least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if is_postgres() else f"MIN({a}, {b})"


def column(model, field_name: str) -> str:
    """The quoted column of a model field, for hand-written SQL."""
    return connection.ops.quote_name(model._meta.get_field(field_name).column)


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def existing(model, field_name: str) -> str:
    """The current row's value inside ``ON CONFLICT DO UPDATE``."""
    return f"{table(model)}.{column(model, field_name)}"


def excluded(model, field_name: str) -> str:
    """The proposed row's value inside ``ON CONFLICT DO UPDATE``."""
    return f"EXCLUDED.{column(model, field_name)}"


def insert_on_conflict(
    model,
    rows: Sequence[dict],
    *,
    conflict_fields: Iterable[str] | None,
    conflict_where: str = "",
    update: dict[str, str] | None = None,
    returning: Iterable[str] = ("id",),
) -> list[tuple]:
    """Insert ``rows`` (dicts of field name -> Python value, all with the same keys).

    On a conflict with the unique index over ``conflict_fields`` (a partial
    index needs its predicate in ``conflict_where``) the row is skipped, or,
    with ``update`` (field name -> SQL expression), the existing row is
    updated; with ``conflict_fields=None`` every row is inserted (a table
    with no unique key to decide on). Returns the ``returning`` fields of every
    inserted (and, with ``update``, updated) row; with ``returning=()``
    nothing is read back and the result is empty. With DO UPDATE no two rows of one call may hit
    the same existing row: callers merge their rows by key first.

    On PostgreSQL the rows are staged with COPY and inserted from the stage
    in one statement; on SQLite they go as multi-row VALUES in chunks.
    """
    if not rows:
        return []
    if tenancy.is_tenant_model(model) and tenancy.has_organisation(model):
        # Tenant rows carry their organisation, and every unique key leads with it.
        rows = tenancy.rows_with_organisation(model, rows)
        if conflict_fields is not None and "organisation" not in conflict_fields:
            conflict_fields = ["organisation", *conflict_fields]
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(quote(f.column) for f in fields)
    returning_sql = ", ".join(column(model, name) for name in returning)
    returning_clause = f"RETURNING {returning_sql}" if returning_sql else ""
    if conflict_fields is None:
        key = ""
        on_conflict = returning_clause
    else:
        key = ", ".join(column(model, name) for name in conflict_fields)
        target = f"{key}) WHERE ({conflict_where}" if conflict_where else key
        if update:
            assignments = ", ".join(
                f"{column(model, name)} = {expr}" for name, expr in update.items()
            )
            action = f"DO UPDATE SET {assignments}"
        else:
            action = "DO NOTHING"
        on_conflict = f"ON CONFLICT ({target}) {action} {returning_clause}"
    values = _row_values(rows, names, fields, db)
    read_back = bool(returning_sql)

    # Only identifiers from model metadata and the caller's SQL expressions are
    # interpolated; values travel as COPY data or as parameters.
    if db.vendor == "postgresql":
        if len(values) * len(names) > STAGE_ABOVE_PARAMS:
            return _insert_through_stage(
                db, table(model), columns, key, on_conflict, values, read_back
            )
        # Cast to the bare type: a cast to varchar(n) would cut a long value
        # where the column's own check refuses it.
        types = [_TYPE_MODIFIER.sub("", field.db_type(db)) for field in fields]
        return _insert_from_arrays(
            db, table(model), columns, types, key, on_conflict, values, read_back
        )
    return _insert_values(db, table(model), columns, len(names), on_conflict, values, read_back)


def _insert_through_stage(
    db, target_table, columns, key, on_conflict, values, read_back
) -> list[tuple]:
    """COPY the rows into a temporary table shaped like the target's columns,
    then INSERT ... SELECT them in one statement.

    COPY costs the client almost nothing per value, where a VALUES list of
    thousands of parameters has to be parsed and quoted by psycopg and parsed
    and planned by the server. The stage is read in conflict-key order so that
    concurrent batches take their row locks in the same order.
    """
    stage = db.ops.quote_name(f"insert_stage_{next(_stage_numbers)}")
    # ON COMMIT DROP needs a transaction around the three statements.
    with transaction.atomic(using=db.alias, savepoint=False), db.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {target_table} WITH NO DATA"
        )
        with (
            db.wrap_database_errors,
            cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy,
        ):
            for row in values:
                copy.write_row(row)
        # An empty parameter list keeps the caller's "%%" meaning "%" as on SQLite.
        cursor.execute(
            f"INSERT INTO {target_table} ({columns}) SELECT {columns} FROM {stage} "
            f"{f'ORDER BY {key}' if key else ''} {on_conflict}",
            [],
        )
        return cursor.fetchall() if read_back else []


def _insert_from_arrays(
    db, target_table, columns, types, key, on_conflict, values, read_back
) -> list[tuple]:
    """The rows as one array per column, unnested and inserted in conflict-key
    order like the staged rows (so that concurrent batches lock rows in one
    order). The statement's text is the same whatever the number of rows: a
    VALUES list would make psycopg quote and PostgreSQL parse a new statement
    of thousands of parameters each time."""
    arrays = [_array_literal(column) for column in zip(*values, strict=True)]
    unnest = ", ".join(f"%s::{db_type}[]" for db_type in types)
    sql = (
        f"INSERT INTO {target_table} ({columns}) SELECT * FROM unnest({unnest}) "
        f"AS stage ({columns}) {f'ORDER BY {key}' if key else ''} {on_conflict}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.fetchall() if read_back else []


def _array_literal(values) -> str:
    """A one-dimensional PostgreSQL array in its text form, every element
    quoted; the column's type reads each element's text.

    Written here because psycopg quotes a list element by element with
    regular expressions, which cost more than the rest of a small batch.
    """
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
            continue
        text = value if type(value) is str else _element_text(value)
        if "\\" in text:
            text = text.replace("\\", "\\\\")
        if '"' in text:
            text = text.replace('"', '\\"')
        parts.append(f'"{text}"')
    return "{" + ",".join(parts) + "}"


def _element_text(value) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Jsonb):
        return (value.dumps or json.dumps)(value.obj)
    return str(value)


def _insert_values(db, target_table, columns, width, on_conflict, values, read_back) -> list[tuple]:
    placeholder = "(" + ", ".join(["%s"] * width) + ")"
    chunk_size = max(1, MAX_PARAMS // width)
    results: list[tuple] = []
    with db.cursor() as cursor:
        for start in range(0, len(values), chunk_size):
            chunk = values[start : start + chunk_size]
            sql = (
                f"INSERT INTO {target_table} ({columns}) VALUES "
                f"{', '.join([placeholder] * len(chunk))} {on_conflict}"
            )
            cursor.execute(sql, list(itertools.chain.from_iterable(chunk)))
            if read_back:
                results.extend(cursor.fetchall())
    return results


def _row_values(rows, names, fields, db) -> list[list]:
    """The rows as lists of database values that store what ``Field.get_db_prep_save``
    would store."""
    adapters = [(name, _adapter(field, db)) for name, field in zip(names, fields, strict=True)]
    return [[adapt(row[name]) for name, adapt in adapters] for row in rows]


def _adapter(field, db) -> Callable:
    """A function giving ``field.get_db_prep_save(value, db)`` for one column.

    ``get_db_prep_save`` costs microseconds per value, which adds up to much of
    a batch's time, so the common cases where it returns the value unchanged
    (text, integers, booleans, aware datetimes on PostgreSQL) or where its
    result is simply known (JSON objects) skip it; anything else still goes
    through it.
    """
    prepare = partial(field.get_db_prep_save, connection=db)
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    kind = type(target)
    if kind is models.JSONField:
        dumps = partial(json.dumps, cls=target.encoder)

        def adapt_json(value):
            # Both backends' adapt_json_value send the encoder's text of the value.
            if type(value) is dict or type(value) is list:
                return dumps(value)
            return prepare(value)

        return adapt_json
    if kind in _TEXT_FIELDS:
        unchanged = (str, type(None))
    elif kind in _INTEGER_FIELDS:
        unchanged = (int, type(None))
    elif kind is models.BooleanField:
        unchanged = (bool,)
    elif kind is models.DateField and db.vendor == "postgresql":
        unchanged = (date, type(None))
    elif kind is models.DateTimeField and db.vendor == "postgresql":

        def adapt_datetime(value):
            # A naive datetime is made aware (with a warning) by the field.
            if type(value) is datetime and value.utcoffset() is not None:
                return value
            return prepare(value)

        return adapt_datetime
    else:
        return prepare

    def adapt(value):
        return value if type(value) in unchanged else prepare(value)

    return adapt


_TEXT_FIELDS = frozenset({models.CharField, models.TextField})
_INTEGER_FIELDS = frozenset(
    {
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.PositiveSmallIntegerField,
        models.AutoField,
        models.BigAutoField,
        models.SmallAutoField,
    }
)


# --- work held by a live worker ---------------------------------------------------

# How long a worker waits for another that holds the same work (a message
# delivered twice) before giving up with OperationalError, which the durable
# tasks retry.
WORK_LOCK_WAIT_SECONDS = 60


class WorkLock:
    """What ``work_lock`` found: whether a claim already on the work's row can
    belong only to a process that is gone."""

    def __init__(self, holder_dead: bool):
        self.holder_dead = holder_dead


@contextmanager
def work_lock(kind: str, key: int, *, wait_seconds: float | None = None) -> Iterator[WorkLock]:
    """Hold the work ``(kind, key)`` for this block, as long as this process lives.

    On PostgreSQL a session advisory lock: the server releases it the moment
    the holding session ends, which a killed worker's does at once (its socket
    closes with the process). Unlike a claim written to a row, which outlives
    its writer, the lock tells a dead holder from a slow one: once this
    process has it, a claim still on the work's row was left by a process
    that is gone (``holder_dead``), and one that finished has recorded its
    outcome.

    When another process holds the work (the broker delivered its message a
    second time: a task that outran the visibility timeout), this one waits
    for it, up to ``wait_seconds`` (``WORK_LOCK_WAIT_SECONDS`` by default; then
    OperationalError, with the caller's transaction intact): acknowledging the
    copy at once would leave the work to a worker that may yet die.

    Elsewhere (the embedded SQLite database, where tasks run in the process
    that queues them) nothing is locked and nothing is known of other claims.
    """
    if not is_postgres():
        yield WorkLock(holder_dead=False)
        return
    # Two 32-bit keys: the kind's hash and the id (ids beyond 2**31 wrap,
    # which at worst makes two pieces of work wait for each other).
    params = [kind, key % 2**31]
    wait = WORK_LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    # The bounded wait is set for this statement only: transaction-local, in a
    # transaction (or savepoint) of its own that a timeout rolls back.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        previous = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(wait * 1000)}ms"])
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", params)
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    try:
        yield WorkLock(holder_dead=True)
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", params)
        except Error:
            # The connection broke (the server released the lock with it), or
            # its transaction failed: closing the session releases the lock,
            # which must not outlive the work. Inside a caller's transaction
            # the connection is the caller's to end.
            if not connection.in_atomic_block:
                connection.close()
