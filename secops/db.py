"""Set-based writes the ORM does not express: multi-row INSERT ... ON CONFLICT
with RETURNING, on PostgreSQL and SQLite (3.35+) alike.

Used by the ingestion and the pipeline so that a batch costs a constant
number of statements, and so that idempotency and the one-Unhandled-event
rule are decided by the database's unique indexes rather than by a read
followed by a write (which races between workers).
"""

from collections.abc import Iterable, Sequence

from django.db import connection

# Both backends accept far more, but big statements stop paying off.
MAX_PARAMS = 30_000


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
    conflict_fields: Iterable[str],
    conflict_where: str = "",
    update: dict[str, str] | None = None,
    returning: Iterable[str] = ("id",),
) -> list[tuple]:
    """Insert ``rows`` (dicts of field name -> Python value) in chunks.

    On a conflict with the unique index over ``conflict_fields`` (a partial
    index needs its predicate in ``conflict_where``) the row is skipped, or,
    with ``update`` (field name -> SQL expression), the existing row is
    updated. Returns the ``returning`` fields of every inserted (and, with
    ``update``, updated) row. With DO UPDATE no two rows of one call may hit
    the same existing row: callers merge their rows by key first.
    """
    if not rows:
        return []
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    target = ", ".join(column(model, name) for name in conflict_fields)
    if conflict_where:
        target = f"{target}) WHERE ({conflict_where}"
    if update:
        assignments = ", ".join(f"{column(model, name)} = {expr}" for name, expr in update.items())
        action = f"DO UPDATE SET {assignments}"
    else:
        action = "DO NOTHING"
    returning_sql = ", ".join(column(model, name) for name in returning)
    placeholder = "(" + ", ".join(["%s"] * len(names)) + ")"
    chunk_size = max(1, MAX_PARAMS // len(names))

    results: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            params = []
            for row in chunk:
                for name, field in zip(names, fields, strict=True):
                    params.append(field.get_db_prep_save(row[name], connection))
            # Only identifiers from model metadata are interpolated; values are parameters.
            sql = (
                f"INSERT INTO {table(model)} ({columns}) VALUES "
                f"{', '.join([placeholder] * len(chunk))} "
                f"ON CONFLICT ({target}) {action} RETURNING {returning_sql}"
            )
            cursor.execute(sql, params)
            results.extend(cursor.fetchall())
    return results
