"""Importing what the files hold: one transaction, batches upserted on the
indicator's unique key, and the summary the command prints."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import batched
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from disposal.intel_import.csv_lists import read_csv
from disposal.intel_import.rows import (
    INDICATOR_TYPES,
    IndicatorRow,
    IntelFileError,
    ParsedFile,
    Problem,
)
from disposal.intel_import.stix import read_stix
from disposal.models import ThreatIndicator
from secops.models import Organisation

# Rows per statement: a 100,000-line list costs a few hundred round trips, not 100,000.
BATCH_SIZE = 1000


@dataclass
class ImportResult:
    files: list[ParsedFile]
    organisation: Organisation | None
    dry_run: bool
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    # Rows whose key (type, value, source) came again later in the input: the last is kept.
    duplicates: int = 0

    @property
    def problems(self) -> list[Problem]:
        return [problem for parsed in self.files for problem in parsed.problems]

    @property
    def skipped(self) -> int:
        return len(self.problems) + self.duplicates


FORMATS = ("stix", "csv")
_READERS = {"stix": read_stix, "csv": read_csv}


def format_of(path) -> str:
    """stix or csv, by the file's extension, else by its first character."""
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".stix"):
        return "stix"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            start = handle.read(64).lstrip()
    except OSError as exc:
        raise IntelFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    return "stix" if start.startswith("{") else "csv"


def import_intel(
    paths: Iterable,
    *,
    organisation: Organisation | None = None,
    source: str | None = None,
    format: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Read every file, then import what they hold in one transaction.

    Every file is read before anything is written: a file that cannot be read
    at all raises ``IntelFileError`` and nothing is imported. Indicators
    without an organisation are shared by every organisation.
    """
    source = (source or "").strip() or None
    files = [_READERS[format or format_of(path)](path, source=source) for path in paths]
    result = ImportResult(files, organisation, dry_run)
    merged: dict[tuple[str, str, str], IndicatorRow] = {}
    for parsed in files:
        for row in parsed.rows:
            result.duplicates += row.key in merged
            merged[row.key] = row  # the last one counts
    organisation_id = organisation.id if organisation else None
    # In key order, each batch covers a narrow range of the (entity type,
    # digest) index, and concurrent imports lock rows in the same order.
    ordered = sorted(merged.values(), key=lambda row: row.key)
    with transaction.atomic():
        for batch in batched(ordered, BATCH_SIZE):
            existing = _existing_keys(organisation_id, batch)
            for row in batch:
                (result.updated if row.key in existing else result.created)[row.entity_type] += 1
            if not dry_run:
                _upsert(organisation_id, batch)
    return result


def _existing_keys(organisation_id, rows) -> set[tuple[str, str, str]]:
    """The keys of ``rows`` that are stored already for this owner; one query
    per entity type.

    The query names the entity type and the digests with their range, which
    the (entity type, digest) index serves even when the planner, misled by
    the statistics a large import leaves behind, would otherwise read every
    indicator of the type and filter them by the list; the owner is compared
    here for the same reason.
    """
    digests: dict[str, set[str]] = {}
    for row in rows:
        digests.setdefault(row.entity_type, set()).add(row.digest)
    found = set()
    for entity_type, of_type in digests.items():
        stored = (
            ThreatIndicator.objects.filter(
                entity_type=entity_type,
                digest__gte=min(of_type),
                digest__lte=max(of_type),
                digest__in=of_type,
            )
            .order_by()
            .values_list("organisation_id", "entity_type", "digest", "source")
        )
        found.update((t, d, source) for owner, t, d, source in stored if owner == organisation_id)
    return found


_WRITTEN = (
    "organisation",
    "entity_type",
    "value",
    "digest",
    "verdict",
    "source",
    "confidence",
    "description",
    "external_id",
    "valid_from",
    "valid_until",
    "imported_at",
)
_KEY = ("entity_type", "digest", "source")
_UPDATED = [name for name in _WRITTEN if name not in ("organisation", *_KEY)]


def _upsert(organisation_id, rows: Iterable[IndicatorRow]) -> None:
    """INSERT a batch, updating the stored row where a key exists.

    Written by hand because the key is an expression index
    (``one_indicator_per_source``, with COALESCE so that shared indicators,
    without an organisation, are unique too), which
    ``bulk_create(update_conflicts=...)`` cannot name; the conflict target
    below must stay that index's expressions. On PostgreSQL the batch is one
    statement whose columns travel as arrays (a VALUES list of thousands of
    parameters costs more to build and parse than it saves); SQLite runs the
    one-row statement per row in-process.
    """
    meta = ThreatIndicator._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in _WRITTEN]

    def column(name):
        return quote(meta.get_field(name).column)

    target = ", ".join([f"(COALESCE({column('organisation')}, 0))", *map(column, _KEY)])
    updates = ", ".join(f"{column(name)} = EXCLUDED.{column(name)}" for name in _UPDATED)
    # Only identifiers and types from the model's metadata are interpolated;
    # values are parameters.
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(column, _WRITTEN))})"
    tail = f"ON CONFLICT ({target}) DO UPDATE SET {updates}"
    postgres = connection.vendor == "postgresql"
    prepare_time = meta.get_field("imported_at").get_db_prep_save

    def when(value):
        if value is None or postgres:
            return value
        return prepare_time(value, connection)

    now = when(timezone.now())
    params = [
        (
            organisation_id,
            row.entity_type,
            row.value,
            row.digest,
            row.verdict,
            row.source,
            row.confidence,
            row.description,
            row.external_id,
            when(row.valid_from),
            when(row.valid_until),
            now,
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        if postgres:
            arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
            columns = [list(values) for values in zip(*params, strict=True)]
            cursor.execute(f"{head} SELECT * FROM unnest({arrays}) {tail}", columns)  # noqa: S608
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"{head} VALUES ({placeholders}) {tail}", params)


def summary_lines(result: ImportResult, *, listed: int = 20) -> list[str]:
    """What the command prints: per file, per type, and the first ``listed`` problems."""
    lines = []
    for parsed in result.files:
        line = f"{parsed.path} ({parsed.format.upper()}): {len(parsed.rows)} values"
        if parsed.ignored:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(parsed.ignored.items()))
            line += f"; ignored {sum(parsed.ignored.values())} objects that are not indicators ({kinds})"
        lines.append(line)
    verb = ("would be created", "would be updated") if result.dry_run else ("created", "updated")
    if result.organisation:
        lines.append(f"Indicators of organisation {result.organisation.name}:")
    else:
        lines.append("Shared indicators (every organisation):")
    for entity_type in INDICATOR_TYPES:
        created, updated = result.created[entity_type], result.updated[entity_type]
        if created or updated:
            lines.append(f"  {entity_type:<7} {created} {verb[0]}, {updated} {verb[1]}")
    created, updated = sum(result.created.values()), sum(result.updated.values())
    lines.append(f"  {'total':<7} {created} {verb[0]}, {updated} {verb[1]}")
    lines.append(f"Skipped: {result.skipped}")
    if result.duplicates:
        lines.append(
            f"  {result.duplicates} repeated an earlier type, value and source; the last one counts"
        )
    problems = result.problems
    for problem in problems[:listed]:
        lines.append(f"  {problem}")
    if len(problems) > listed:
        lines.append(f"  ... and {len(problems) - listed} more")
    if result.dry_run:
        lines.append("Dry run: nothing was written.")
    return lines
