"""The periodic SIEM detection run (``run_detection``): the logs received
since the last run go through every enabled rule, and what they find goes to
``alerts.services.ingest_detections``, so that SIEM alerts are whitelisted and
aggregated into events like any other.

---------------------------------
Each organisation has a watermark row (``DetectionCursor``). A run takes the
row with ``SELECT ... FOR UPDATE SKIP LOCKED`` (on SQLite, whose write
transactions are serialised, the lock is the database's), reads a batch,
evaluates it, stores the alerts, the correlation state and the statistics,
moves the watermark and commits: all in one transaction. A second run at the
same time skips the organisation; a worker that dies mid-batch rolls the
whole batch back, and the next run does it again. Alert uuids are derived
from the rule and the records (or the correlation window), so even a batch
done twice could not store an alert twice.

Which records are safe to read is decided by ``received_at`` with a lag, and
the reading itself goes by id:

- ``ingest_logs`` stamps ``received_at`` before its INSERT and commits a
  moment later, so records become visible out of id order and out of
  ``received_at`` order. A run only reads records received more than ``LAG``
  before it started; every ingestion transaction commits within ``LAG`` of
  its timestamp (batches are capped at 5,000 records and commit in well under
  a second; the lag also absorbs clock differences between web servers and
  the worker), so by then all records received that early are visible.
- A sweep reads the records received in ``[examined_before, sweep_until)``
  in id order, which the primary key index serves (``received_at`` has no
  index, and a sweep covers about a minute of records). Ids alone would not
  do: an id is taken at INSERT, so a record with a smaller id can commit
  after a larger one has been read.
- After a sweep, ``low_id`` moves up to the largest id received before
  ``sweep_until - LAG``: a record with a smaller id was inserted before that
  one, hence received before ``sweep_until`` and committed before the sweep
  began, so it has been read. The next sweep starts above ``low_id``.
"""

import logging
import uuid
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from time import perf_counter

from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Max
from django.utils import timezone

from alerts.detection_logs import BATCH_SIZE, chunks, list_values, log_rows, whole_records
from alerts.detection_models import (
    CorrelationState,
    DetectionCursor,
    DetectionRule,
    DetectionRuleStats,
)
from alerts.detection_rules import sync_predefined_rules
from alerts.models import Asset, LogRecord
from alerts.services import ingest_detections
from alerts.sigma.alerting import AlertContext, Findings, alerting_ids, alerts_for, find
from alerts.sigma.compiled_rule import CompiledRule, RuleProblems
from alerts.sigma.compiler import compiled
from alerts.sigma.correlation import Group, GroupState, group_key
from alerts.sigma.evaluator import BatchEvaluator, Evaluation
from secops import db
from secops.models import Account, Organisation
from secops.scope import Scope

logger = logging.getLogger(__name__)

# Records received within this time of a run's start wait for the next run
# (see the module documentation).
LAG = timedelta(seconds=30)
# A new watermark starts this far back: logs received just before the
# detection rules were set up are read too.
INITIAL_LOOKBACK = timedelta(hours=24)


# --- one rule over one batch ------------------------------------------------------------


class DatabaseStore:
    """Correlation state in ``CorrelationState``, one row per rule, account and group."""

    def __init__(self, rule: DetectionRule, scope: Scope, now: datetime):
        self.rule = rule
        self.scope = scope
        self.now = now
        self.row_ids: dict[tuple[str, Group], int] = {}
        self.keys: dict[Group, str] = {}

    def _key(self, group: Group) -> str:
        key = self.keys.get(group)
        if key is None:
            key = self.keys[group] = group_key(group[1])
        return key

    def _rows(self, spec):
        return CorrelationState.objects.in_scope(self.scope).filter(
            rule=self.rule, correlation=spec.name
        )

    def load(self, spec, groups):
        states = {}
        by_key = {(group[0], self._key(group)): group for group in groups}
        for chunk in chunks(by_key):
            rows = self._rows(spec).filter(
                account_id__in={account for account, _ in chunk},
                group_key__in={key for _, key in chunk},
            )
            for row_id, account, key, state in rows.values_list(
                "id", "account_id", "group_key", "state"
            ):
                group = by_key.get((account, key))
                if group is not None:
                    states[group] = GroupState.from_json(state)
                    self.row_ids[(spec.name, group)] = row_id
        return states

    def groups_with_state(self, spec):
        return {
            (account, tuple(values.get(name) for name in spec.group_by))
            for account, values in self._rows(spec).values_list("account_id", "group_values")
        }

    def save(self, spec, states):
        live = {
            group: state for group, state in states.items() if state.events or state.quiet_until
        }
        emptied = [
            self.row_ids[(spec.name, group)]
            for group in set(states) - set(live)
            if (spec.name, group) in self.row_ids
        ]
        if emptied:
            CorrelationState.objects.in_scope(self.scope).filter(id__in=emptied).delete()
        expires = self.now + timedelta(seconds=spec.timespan)
        rows = sorted(
            (
                {
                    "rule_id": self.rule.id,
                    "account_id": account,
                    "correlation": spec.name,
                    "group_key": self._key((account, values)),
                    "group_values": dict(zip(spec.group_by, values, strict=True)),
                    "state": state.as_json(),
                    "expires_at": expires,
                    "updated_at": self.now,
                }
                for (account, values), state in live.items()
            ),
            key=lambda row: (row["account_id"], row["group_key"]),
        )
        db.insert_on_conflict(
            CorrelationState,
            rows,
            conflict_fields=["rule_id", "account_id", "correlation", "group_key"],
            update={
                name: db.excluded(CorrelationState, name)
                for name in ("group_values", "state", "expires_at", "updated_at")
            },
        )


# --- the periodic run --------------------------------------------------------------------


@dataclass
class RunReport:
    organisations: int = 0
    busy: int = 0
    batches: int = 0
    records: int = 0
    candidates: int = 0
    alerts: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "organisations": self.organisations,
            "busy": self.busy,
            "batches": self.batches,
            "records": self.records,
            "candidates": self.candidates,
            "alerts": self.alerts,
            "errors": self.errors[:20],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _RunRules:
    rules: list[tuple[DetectionRule, CompiledRule]]
    broken: dict[int, str]

    @property
    def log_types(self) -> list[str]:
        return sorted({t for _, c in self.rules for t in c.log_types})


def _enabled_rules(organisation_id: int) -> _RunRules:
    rules, broken = [], {}
    for rule in DetectionRule.objects.enabled_for(organisation_id).order_by("id"):
        try:
            rules.append((rule, compiled(rule.yaml)))
        except RuleProblems as exc:
            # Saved rules compile; a rule broken by an upgrade of Sigma is reported, not run.
            broken[rule.id] = str(exc)
    return _RunRules(rules, broken)


def _claim(organisation_id: int, now: datetime) -> DetectionCursor | None:
    """The organisation's watermark, locked for this transaction; None while
    another run holds it."""
    DetectionCursor.objects.get_or_create(
        organisation_id=organisation_id,
        defaults={"examined_before": now - INITIAL_LOOKBACK},
    )
    return (
        DetectionCursor.objects.select_for_update(skip_locked=True)
        .filter(organisation_id=organisation_id)
        .first()
    )


def _finish_sweep(cursor: DetectionCursor, scope: Scope, lag: timedelta) -> None:
    settled = (
        LogRecord.objects.in_scope(scope)
        .filter(id__gt=cursor.low_id, received_at__lt=cursor.sweep_until - lag)
        .aggregate(highest=Max("id"))["highest"]
    )
    cursor.low_id = max(cursor.low_id, settled or 0)
    cursor.examined_before = cursor.sweep_until
    cursor.sweep_until = None
    cursor.sweep_after_id = cursor.low_id


def _stats_rows(run_id, now, account_ids, run_rules, evaluation, findings, hits) -> list[dict]:
    examined_by_account: dict[int, Counter] = defaultdict(Counter)
    for (account_id, log_type), count in evaluation.examined.items():
        examined_by_account[account_id][log_type] += count
    rows = []

    def row(rule_id, account_id, *, seconds, records, hits, errors, error):
        return {
            "rule_id": rule_id,
            "account_id": account_id,
            "last_run_id": run_id,
            "last_run_at": now,
            "last_run_seconds": seconds,
            "last_run_records": records,
            "last_run_hits": hits,
            "last_run_errors": errors,
            "total_hits": hits,
            "last_error": error[:2000],
            "last_error_at": now if error else None,
        }

    for rule, compiled_rule in run_rules.rules:
        found = findings.get(rule.id, Findings())
        for account_id in sorted(account_ids):
            rows.append(
                row(
                    rule.id,
                    account_id,
                    seconds=found.seconds,
                    records=sum(
                        examined_by_account[account_id][t] for t in compiled_rule.log_types
                    ),
                    hits=hits.get(rule.id, Counter())[account_id],
                    errors=len(found.errors),
                    error="; ".join(found.errors),
                )
            )
    for rule_id, message in run_rules.broken.items():
        for account_id in sorted(account_ids):
            rows.append(
                row(rule_id, account_id, seconds=0.0, records=0, hits=0, errors=1, error=message)
            )
    return rows


def _save_stats(rows: list[dict]) -> None:
    S = DetectionRuleStats
    same_run = f"{db.existing(S, 'last_run_id')} = {db.excluded(S, 'last_run_id')}"

    def added(name):
        return (
            f"CASE WHEN {same_run} THEN {db.existing(S, name)} + {db.excluded(S, name)} "
            f"ELSE {db.excluded(S, name)} END"
        )

    db.insert_on_conflict(
        S,
        rows,
        conflict_fields=["rule_id", "account_id"],
        update={
            "last_run_seconds": added("last_run_seconds"),
            "last_run_records": added("last_run_records"),
            "last_run_hits": added("last_run_hits"),
            "last_run_errors": added("last_run_errors"),
            "last_run_id": db.excluded(S, "last_run_id"),
            "last_run_at": db.excluded(S, "last_run_at"),
            "total_hits": f"{db.existing(S, 'total_hits')} + {db.excluded(S, 'total_hits')}",
            "last_error": f"CASE WHEN {db.excluded(S, 'last_error')} <> '' "
            f"THEN {db.excluded(S, 'last_error')} ELSE {db.existing(S, 'last_error')} END",
            "last_error_at": f"COALESCE({db.excluded(S, 'last_error_at')}, "
            f"{db.existing(S, 'last_error_at')})",
        },
    )


def _context(scope: Scope, records: dict[int, dict]) -> AlertContext:
    hosts = {(r["account_id"], r["host_uuid"]) for r in records.values() if r["host_uuid"]}
    assets = {}
    if hosts:
        for asset in Asset.objects.in_scope(scope).filter(
            account_id__in={a for a, _ in hosts}, uuid__in={h for _, h in hosts}
        ):
            details = {
                "instance_id": asset.instance_id or None,
                "name": asset.name or None,
                "public_ip": asset.public_ip,
                "private_ip": asset.private_ip,
                "os": asset.os or None,
                "region": asset.cloud_region or None,
            }
            assets[(asset.account_id, asset.uuid)] = {k: v for k, v in details.items() if v}
    uids = dict(Account.objects.in_scope(scope).values_list("id", "uid"))
    return AlertContext(account_uids=uids, assets=assets, records=records)


@dataclass(frozen=True)
class _Window:
    """Which records a batch reads: those of these log types received in
    ``[since, until)``, with ids above ``after_id``, in id order."""

    since: datetime
    until: datetime
    after_id: int
    log_types: tuple[str, ...]
    limit: int

    def rows(self, scope: Scope) -> list[tuple]:
        return log_rows(
            LogRecord.objects.in_scope(scope).filter(
                id__gt=self.after_id,
                received_at__gte=self.since,
                received_at__lt=self.until,
                log_type__in=self.log_types,
            ),
            self.limit,
        )


class _Reader:
    """Reads the next batch on another connection while the current one is
    evaluated, so that the database works while Python does.

    Reading outside the batch's transaction reads the same records: log
    records are only inserted (retention deletes months-old ones), and every
    record of the window was
    committed before the sweep began (see the module documentation). A
    prefetched batch is used only if the watermark, once locked, still points
    where the prefetch started; otherwise it is dropped and the batch read
    again. Only on PostgreSQL, and never inside an enclosing transaction
    (whose uncommitted records another connection cannot see).
    """

    def __init__(self, scope: Scope, enabled: bool):
        self.scope = scope
        self.executor = ThreadPoolExecutor(max_workers=1) if enabled else None
        self.pending: tuple[_Window, Future] | None = None

    def rows(self, window: _Window) -> list[tuple]:
        if self.pending is not None:
            prefetched, future = self.pending
            self.pending = None
            try:
                rows = future.result()
            except DatabaseError:
                logger.warning(
                    "Reading the next batch ahead failed; reading it again", exc_info=True
                )
            else:
                if prefetched == window:
                    return rows
        return window.rows(self.scope)

    def read_ahead(self, window: _Window) -> None:
        if self.executor is not None:
            self.pending = (window, self.executor.submit(self._read, window))

    def _read(self, window: _Window) -> list[tuple]:
        try:
            return window.rows(self.scope)
        finally:
            connections.close_all()  # this thread's connections

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)


def _run_batch(
    organisation_id: int,
    scope: Scope,
    *,
    now: datetime,
    lag: timedelta,
    batch_size: int,
    run_id: str,
    report: RunReport,
    reader: _Reader,
) -> bool:
    """One batch of one organisation, in one transaction. Returns whether more remains."""
    with transaction.atomic():
        cursor = _claim(organisation_id, now)
        if cursor is None:
            report.busy += 1
            return False
        if cursor.sweep_until is None:
            cursor.sweep_until = now - lag
            cursor.sweep_after_id = cursor.low_id
        if cursor.sweep_until <= cursor.examined_before:
            cursor.sweep_until = None
            cursor.save()
            return False
        run_rules = _enabled_rules(organisation_id)
        rows = []
        if run_rules.log_types:
            window = _Window(
                since=cursor.examined_before,
                until=cursor.sweep_until,
                after_id=cursor.sweep_after_id,
                log_types=tuple(run_rules.log_types),
                limit=batch_size,
            )
            rows = reader.rows(window)
            if len(rows) == batch_size:
                reader.read_ahead(replace(window, after_id=rows[-1][0]))
        more = len(rows) == batch_size
        # Even a batch without records is a run to report: its rules found nothing.
        _detect(scope, rows, run_rules, now=now, run_id=run_id, report=report)
        if rows:
            cursor.sweep_after_id = rows[-1][0]
            report.batches += 1
            report.records += len(rows)
        if not more:
            _finish_sweep(cursor, scope, lag)
        cursor.save()
        return more


def _detect(scope, rows, run_rules: _RunRules, *, now, run_id, report: RunReport) -> None:
    queries = {
        (rule.id, name): query
        for rule, compiled_rule in run_rules.rules
        for name, query in compiled_rule.queries.items()
    }
    evaluation = Evaluation()
    if rows:
        lists = set().union(*(c.lists for _, c in run_rules.rules))
        evaluator = BatchEvaluator(queries, list_values(scope, lists))
        try:
            evaluation = evaluator.evaluate(rows)
        finally:
            evaluator.close()
    report.candidates += evaluation.candidates
    keyed = [(rule.id, compiled_rule) for rule, compiled_rule in run_rules.rules]

    findings: dict[int, Findings] = {}
    for rule, compiled_rule in run_rules.rules:
        try:
            # A savepoint: a rule failing half-way leaves no correlation state behind.
            with transaction.atomic():
                findings[rule.id] = find(
                    rule.id, compiled_rule, evaluation, DatabaseStore(rule, scope, now)
                )
        except Exception as exc:
            # One broken rule must not stop the others; its error shows on the page.
            logger.exception("Detection rule %s failed on a batch", rule.id)
            findings[rule.id] = Findings(errors=[f"{type(exc).__name__}: {exc}"])
    # The records behind the alerts (a correlation window reaches back into
    # records of earlier batches).
    records = whole_records(
        scope,
        alerting_ids(keyed, evaluation)
        | {
            record_id
            for found in findings.values()
            for firing in found.firings
            for record_id in firing.record_ids
        },
    )

    context = _context(scope, records)
    alerts, owners, hits = [], [], {}
    for rule, compiled_rule in run_rules.rules:
        raised, hits[rule.id] = alerts_for(rule, compiled_rule, findings[rule.id], context)
        alerts += raised
        owners += [rule.id] * len(raised)
    if alerts:
        result = ingest_detections(alerts, scope=scope)
        report.alerts += result.accepted
        for error in result.errors:
            rule_id = owners[error["index"]]
            message = f"alert refused: {error['field']}: {error['message']}"
            findings[rule_id].errors.append(message)
            report.errors.append(f"rule {rule_id}: {message}")
    for rule_id, message in run_rules.broken.items():
        report.errors.append(f"rule {rule_id}: {message}")
    _save_stats(_stats_rows(run_id, now, scope.account_ids, run_rules, evaluation, findings, hits))
    CorrelationState.objects.in_scope(scope).filter(expires_at__lt=now).delete()


def run_detection(
    *,
    now: datetime | None = None,
    lag: timedelta = LAG,
    batch_size: int = BATCH_SIZE,
    organisation_ids=None,
) -> RunReport:
    """Run the enabled rules over the logs each organisation received since the last run.

    ``now`` is when the run happens (tests pass it): never later than the real
    time, or the watermark would move past logs still to come.
    """
    started = perf_counter()
    now = now or timezone.now()
    run_id = uuid.uuid4().hex
    sync_predefined_rules()
    report = RunReport()
    read_ahead = connection.vendor == "postgresql" and not connection.in_atomic_block
    organisations = Organisation.objects.filter(accounts__isnull=False).distinct()
    if organisation_ids is not None:
        organisations = organisations.filter(id__in=organisation_ids)
    for organisation_id in organisations.values_list("id", flat=True).order_by("id"):
        scope = Scope.for_accounts(
            organisation_id,
            Account.objects.filter(organisation_id=organisation_id).values_list("id", flat=True),
        )
        report.organisations += 1
        reader = _Reader(scope, enabled=read_ahead)
        try:
            while _run_batch(
                organisation_id,
                scope,
                now=now,
                lag=lag,
                batch_size=batch_size,
                run_id=run_id,
                report=report,
                reader=reader,
            ):
                pass
        finally:
            reader.close()
    report.seconds = perf_counter() - started
    return report
