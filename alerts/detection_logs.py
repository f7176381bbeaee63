"""Reading the logs for the detection rules: records as the evaluator takes
them (by id, JSON as text), whole records for alerts and samples, and the
values of the lists the rules look up. Used by the periodic run and the dry run."""

from collections import defaultdict

from django.db import connections
from django.db.models import FloatField, Func, TextField
from django.db.models.functions import Cast

from alerts.models import Entity, EntityType, LogRecord
from secops.scope import Scope

# Records read per batch.
BATCH_SIZE = 50_000


class EpochSeconds(Func):
    """A timestamp as seconds since 1970, a float: cheaper to read in bulk than
    a datetime, and what the correlations count with."""

    arity = 1
    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"EXTRACT(EPOCH FROM {sql})::double precision", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"((julianday({sql}) - 2440587.5) * 86400.0)", params


def log_rows(queryset, limit: int) -> list[tuple]:
    """(id, account id, host uuid, log type, epoch time, JSON text of the
    fields), by id.

    The JSON stays text: decoding a million documents in Python would cost
    more than evaluating them, and the evaluator reads JSON text itself. The
    rows come straight from the cursor: every column is already the type the
    evaluator wants, and per-row conversion by the ORM would cost a fifth of
    the reading.
    """
    rows = (
        queryset.order_by("id")
        .annotate(epoch=EpochSeconds("time"), fields_text=Cast("fields", TextField()))
        .values_list("id", "account_id", "host_uuid", "log_type", "epoch", "fields_text")[:limit]
    )
    sql, params = rows.query.sql_with_params()
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# Ids per query: SQLite takes at most 32,766 parameters.
ID_CHUNK = 10_000


def chunks(ids):
    ids = sorted(ids)
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def whole_records(scope: Scope, ids) -> dict[int, dict]:
    """Whole records, for the alerts and the dry run's sample."""
    records = {}
    for chunk in chunks(ids):
        for row in (
            LogRecord.objects.in_scope(scope)
            .filter(id__in=chunk)
            .values(
                "id", "account_id", "asset_id", "host_uuid", "log_type", "time", "fields", "digest"
            )
        ):
            records[row["id"]] = row
    return records


def list_values(scope: Scope, names) -> dict[str, dict[int, set[str]]]:
    """The values of the lists the rules look up, per account."""
    values: dict[str, dict[int, set[str]]] = {}
    if "bad_ips" in names:
        by_account: dict[int, set[str]] = defaultdict(set)
        for account_id, value in (
            Entity.objects.in_scope(scope)
            .filter(type=EntityType.IP, malicious=True)
            .values_list("account_id", "value")
        ):
            by_account[account_id].add(value)
        values["bad_ips"] = dict(by_account)
    return values
