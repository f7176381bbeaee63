"""The batch evaluator: detection rules as SQL over a batch of flattened records.

A batch arrives as rows ``(record id, account id, host uuid, log type, time
in epoch seconds, JSON text of the fields)``. The literal prefilter (``alerts.sigma.prefilter``)
keeps the rows some rule may match; those are flattened into one in-memory
SQLite table per log type (``alerts.sigma.logsources`` says which column
holds what) and every rule's SQL condition, as the SQLite backend of pySigma
wrote it, selects its matches.
"""

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from time import perf_counter

import re2

from alerts.sigma.compiled_rule import DetectionQuery
from alerts.sigma.logsources import (
    ACCOUNT_ID,
    DOC,
    HOST_UUID,
    LIST_TABLE,
    LOG_SOURCES,
    RECORD_ID,
    TIME,
    WEIGHT,
)
from alerts.sigma.prefilter import Anchors, Prefilter

# Row layout of a batch.
ROW_ID, ROW_ACCOUNT, ROW_HOST, ROW_TYPE, ROW_TIME, ROW_TEXT = range(6)

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@lru_cache(maxsize=256)
def _pattern(expression: str):
    return re2.compile(expression, _RE2_OPTIONS)


def _regexp(expression: str, value) -> bool | None:
    """SQLite's ``value REGEXP expression``, run by RE2: linear time whatever a
    rule's author wrote, so no rule can stall the evaluator."""
    if value is None or expression is None:
        return None
    return _pattern(expression).search(str(value)) is not None


@dataclass(frozen=True, slots=True)
class Match:
    """A record a query selected; what a correlation observes of it."""

    record_id: int
    account_id: int
    host_uuid: str
    time: float  # epoch seconds
    # The query's extra columns (what its correlations group by or count).
    fields: dict

    @property
    def record_ids(self) -> tuple[int, ...]:
        return (self.record_id,)

    @property
    def weight(self) -> int:
        """How many events the record stands for (merged login attempts)."""
        return max(int(self.fields.get(WEIGHT) or 1), 1)


@dataclass
class Evaluation:
    matches: dict[Hashable, list[Match]] = field(default_factory=dict)
    errors: dict[Hashable, str] = field(default_factory=dict)
    seconds: dict[Hashable, float] = field(default_factory=dict)
    # Records of the batch per (account id, log type), and how many went on to SQLite.
    examined: dict[tuple[int, str], int] = field(default_factory=dict)
    candidates: int = 0


class BatchEvaluator:
    """Runs a fixed set of detection queries over successive batches.

    ``list_values``: list name -> account id -> values, for ``%list%``
    lookups; a record only ever meets the values of its own account.
    """

    def __init__(
        self,
        queries: dict[Hashable, DetectionQuery],
        list_values: dict[str, dict[int, set[str]]] | None = None,
    ):
        self.queries = queries
        self.list_values = list_values or {}
        self.log_types = sorted({q.spec.log_type for q in queries.values()})
        anchors_by_type: dict[str, list[Anchors | None]] = defaultdict(list)
        for query in queries.values():
            anchors_by_type[query.spec.log_type].append(query.anchors)
        self.prefilter = Prefilter(
            anchors_by_type,
            {
                name: set().union(*by_account.values())
                for name, by_account in self.list_values.items()
            },
        )
        self.connection = sqlite3.connect(":memory:", isolation_level=None)
        self.connection.create_function("REGEXP", 2, _regexp, deterministic=True)
        # Each table has only the columns its queries read.
        self.columns: dict[str, set[str]] = defaultdict(set)
        for query in queries.values():
            self.columns[query.spec.log_type] |= query.reads | set(query.columns)
        self.inserts = {}
        for log_type in self.log_types:
            spec = LOG_SOURCES[log_type]
            self.connection.execute(spec.create_sql(self.columns[log_type]))
            self.inserts[log_type] = spec.insert_sql(self.columns[log_type])
        self.connection.execute(
            f"CREATE TABLE {LIST_TABLE} (name TEXT, owner_account INTEGER, "
            "value TEXT COLLATE NOCASE)"
        )
        self.connection.execute(
            f"CREATE INDEX {LIST_TABLE}_lookup ON {LIST_TABLE} (name, owner_account, value)"
        )
        self.connection.executemany(
            f"INSERT INTO {LIST_TABLE} VALUES (?, ?, ?)",  # noqa: S608 - a constant table name
            [
                (name, account_id, value)
                for name, by_account in self.list_values.items()
                for account_id, values in by_account.items()
                for value in values
            ],
        )
        self.statements = {
            key: (
                f"SELECT {', '.join([RECORD_ID, ACCOUNT_ID, HOST_UUID, TIME, *query.columns])} "  # noqa: S608 - identifiers from code, condition from the SQLite backend
                f"FROM {query.spec.table} WHERE {query.condition}"
            )
            for key, query in queries.items()
        }

    def close(self) -> None:
        self.connection.close()

    def evaluate(self, rows: list[tuple]) -> Evaluation:
        result = Evaluation()
        result.examined = dict(Counter((row[ROW_ACCOUNT], row[ROW_TYPE]) for row in rows))
        candidates = self.prefilter.candidates(rows, type_index=ROW_TYPE, text_index=ROW_TEXT)
        result.candidates = len(candidates)
        by_type: dict[str, list[tuple]] = defaultdict(list)
        for row in candidates:
            by_type[row[ROW_TYPE]].append(
                (row[ROW_ID], row[ROW_ACCOUNT], row[ROW_HOST], row[ROW_TIME], row[ROW_TEXT])
            )
        for log_type in self.log_types:
            spec = LOG_SOURCES[log_type]
            self.connection.execute(f"DELETE FROM {spec.table}")  # noqa: S608 - a table name from code
            rows_of_type = by_type.get(log_type)
            if rows_of_type:
                statement = self.inserts[log_type]
                if DOC not in statement:  # the rules read no field of the JSON
                    rows_of_type = [row[:4] for row in rows_of_type]
                self.connection.executemany(statement, rows_of_type)
        for key, query in self.queries.items():
            started = perf_counter()
            try:
                cursor = self.connection.execute(self.statements[key])
                matches = [
                    Match(
                        record_id=row[0],
                        account_id=row[1],
                        host_uuid=row[2] or "",
                        time=row[3],
                        fields=dict(zip(query.columns, row[4:], strict=True)),
                    )
                    for row in cursor
                ]
            except sqlite3.Error as exc:
                result.errors[key] = f"SQLite: {exc}"
                matches = []
            result.matches[key] = matches
            result.seconds[key] = perf_counter() - started
        return result
