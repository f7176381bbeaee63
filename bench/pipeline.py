"""Scenario ``pipeline``: alerts through ingestion and the aggregation pipeline.

Batches go through ``alerts.services.ingest_alerts`` exactly as the API sends
them; Celery runs eagerly, so the task the ingestion queues on commit
(``events.process_alert_batch`` -> ``events.pipeline.process_alerts``) runs
right after each batch commits, in this process. The time of
``process_alerts`` is taken by wrapping the module attribute the task calls,
which changes nothing in what runs; the ingestion's share is the rest. The
whitelist step (``whitelist.services.apply_whitelist``) is timed the same way.

With ``--whitelist-rules N`` (100 by default) the same alerts go through
twice more, each time into emptied tables: with N active whitelist rule
groups (``bench.whitelist_rules``), then without rules again. The rate with
rules is compared with that last run: a process's first run is a few percent
faster than its later ones (measured: 4-6 % less Python CPU), so comparing
with the first run would charge that to the rules.
"""

import cProfile
import gc
import io
import json
import logging
import os
import pstats
import re
import statistics
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum

from alerts.models import Alert, Asset, Entity, PendingAlertBatch
from alerts.services import ALL_ALERT_SOURCES, MAX_BATCH_ITEMS, ingest_alerts
from bench import database, whitelist_rules
from bench.generate import BenchAccount, Dataset, generate
from events import pipeline
from events.models import EventAlert, SecurityEvent
from secops.celery import app as celery_app
from secops.enums import RegionGroup
from secops.scope import Scope
from whitelist import services as whitelist_services
from whitelist.models import Match, RuleGroup

ACCOUNTS = [
    BenchAccount("8100000000000001", "Bench Retail CN", RegionGroup.CHINA),
    BenchAccount("8100000000000002", "Bench Payments CN", RegionGroup.CHINA),
    BenchAccount("8100000000000003", "Bench Data CN", RegionGroup.CHINA),
    BenchAccount("8100000000000004", "Bench Global", RegionGroup.OUTSIDE_CHINA),
    BenchAccount("8100000000000005", "Bench Europe", RegionGroup.OUTSIDE_CHINA),
]

# The bars of the performance issue, on a 2-core machine.
MIN_ALERTS_PER_SECOND = 10_000
MIN_RATIO_TO_COPY = 0.20
# The whitelist bar: with 100 active whitelist rules, at least 90 % of the rate without.
MIN_RATIO_WITH_RULES = 0.90
WHITELIST_RULES = 100


@dataclass
class BatchFigures:
    alerts: int
    seconds: float
    pipeline_seconds: float
    ingest_statements: int
    pipeline_statements: int
    # CPU time of this process and of its database session (None when the
    # server's processes cannot be seen from here).
    cpu_seconds: float = 0.0
    pipeline_cpu_seconds: float = 0.0
    database_cpu_seconds: float | None = None
    pipeline_database_cpu_seconds: float | None = None
    # Wall time of the whitelist step inside the pipeline, and of its matching.
    whitelist_seconds: float = 0.0
    matching_seconds: float = 0.0


@dataclass
class PipelineFigures:
    dataset: Dataset
    batch_size: int
    postgres_version: str
    generate_seconds: float
    # The machine's 1-minute load average: figures from a busy machine are low.
    load_at_start: float = 0.0
    load_at_end: float = 0.0
    batches: list[BatchFigures] = field(default_factory=list)
    pipeline_errors: list[str] = field(default_factory=list)
    copy_seconds: float = 0.0
    logged_copy_seconds: float = 0.0
    outcome: dict = field(default_factory=dict)
    # (phase, statement kind) -> seconds and calls over the whole run
    statement_seconds: dict = field(default_factory=dict)
    statement_calls: dict = field(default_factory=dict)
    statement_database_seconds: dict = field(default_factory=dict)
    profile: str = ""
    # The runs of the same alerts with whitelist rule groups active and then
    # without rules again, if any.
    rule_groups: int = 0
    with_rules: "PipelineFigures | None" = None
    again: "PipelineFigures | None" = None

    @property
    def alerts(self) -> int:
        return sum(b.alerts for b in self.batches)

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self.batches)

    @property
    def pipeline_seconds(self) -> float:
        return sum(b.pipeline_seconds for b in self.batches)

    @property
    def whitelist_seconds(self) -> float:
        return sum(b.whitelist_seconds for b in self.batches)

    @property
    def matching_seconds(self) -> float:
        return sum(b.matching_seconds for b in self.batches)

    def total(self, name: str) -> float | None:
        values = [getattr(b, name) for b in self.batches]
        return None if None in values else sum(values)

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    @property
    def copy_rate(self) -> float:
        return self.outcome["alerts_stored"] / self.copy_seconds if self.copy_seconds else 0.0

    @property
    def logged_copy_rate(self) -> float:
        seconds = self.logged_copy_seconds
        return self.outcome["alerts_stored"] / seconds if seconds else 0.0


_STATEMENT_TARGET = re.compile(
    r'^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT .*? FROM)\s+"(\w+)"', re.S
)


def statement_label(sql) -> str:
    """The kind of a statement, such as ``INSERT INTO alerts_alert``."""
    match = _STATEMENT_TARGET.match(str(sql))
    if not match:
        return str(sql).split(None, 1)[0].upper()
    verb = "SELECT FROM" if match.group(1).startswith("SELECT") else match.group(1)
    return f"{verb} {match.group(2)}"


class StatementCounter:
    """An execute wrapper counting the statements of each phase of a batch and
    timing them by kind (the time includes psycopg's client-side work)."""

    def __init__(self):
        self.phase = "ingest"
        self.counts = {"ingest": 0, "pipeline": 0, "whitelist": 0}
        self.seconds_by_label: dict[tuple[str, str], float] = defaultdict(float)
        self.calls_by_label: dict[tuple[str, str], int] = defaultdict(int)
        self.database_seconds_by_label: dict[tuple[str, str], float] = defaultdict(float)

    def reset(self) -> None:
        self.counts = {"ingest": 0, "pipeline": 0, "whitelist": 0}

    def __call__(self, execute, sql, params, many, context):
        self.counts[self.phase] += 1
        key = (self.phase, statement_label(sql))
        database_start = database_session_cpu()
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds_by_label[key] += perf_counter() - start
            self.calls_by_label[key] += 1
            if database_start is not None:
                self.database_seconds_by_label[key] += database_session_cpu() - database_start


def database_session_cpu() -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL backend.

    Read from /proc, so only when the server runs on this machine. On a busy
    machine wall time swells while CPU time hardly moves, so both are shown.
    """
    pid = connection.connection.info.backend_pid
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
        # Fields after "(comm)": state is field 3, utime and stime are 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Clocks:
    """Wall, process CPU and database-session CPU time, read together."""

    wall: float
    cpu: float
    database: float | None

    @classmethod
    def read(cls) -> "Clocks":
        return cls(perf_counter(), process_time(), database_session_cpu())

    def since(self, start: "Clocks") -> "Clocks":
        database = None
        if self.database is not None and start.database is not None:
            database = self.database - start.database
        return Clocks(self.wall - start.wall, self.cpu - start.cpu, database)


@dataclass
class StepTimes:
    """Wall seconds of the whitelist step and of its matching, per pipeline call."""

    whitelist: list[float] = field(default_factory=list)
    matching: list[float] = field(default_factory=list)


@contextmanager
def measured_pipeline(
    counter: StatementCounter, errors: list[str], whitelist_profiler: cProfile.Profile | None
):
    """Time each ``process_alerts`` call and attribute its statements to the pipeline.

    The eager task's ``on_commit`` callback is ``robust``: a failing pipeline
    would only be logged, so failures are collected here to be reported.
    ``process_alerts`` imports ``apply_whitelist`` when it runs, and
    ``apply_whitelist`` calls ``match_alerts`` through its module, so wrapping
    the module attributes times both without changing what runs.
    """
    original = pipeline.process_alerts
    original_apply = whitelist_services.apply_whitelist
    original_match = whitelist_services.match_alerts
    calls: list[Clocks] = []
    steps = StepTimes()

    def timed_process_alerts(alert_ids, **options):
        counter.phase = "pipeline"
        start = Clocks.read()
        try:
            return original(alert_ids, **options)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            calls.append(Clocks.read().since(start))
            counter.phase = "ingest"

    def timed_apply_whitelist(facts, now):
        counter.phase = "whitelist"
        if whitelist_profiler:
            whitelist_profiler.enable()
        start = perf_counter()
        try:
            return original_apply(facts, now)
        finally:
            steps.whitelist.append(perf_counter() - start)
            if whitelist_profiler:
                whitelist_profiler.disable()
            counter.phase = "pipeline"

    def timed_match_alerts(facts, now):
        start = perf_counter()
        try:
            return original_match(facts, now)
        finally:
            steps.matching.append(perf_counter() - start)

    pipeline.process_alerts = timed_process_alerts
    whitelist_services.apply_whitelist = timed_apply_whitelist
    whitelist_services.match_alerts = timed_match_alerts
    try:
        yield calls, steps
    finally:
        pipeline.process_alerts = original
        whitelist_services.apply_whitelist = original_apply
        whitelist_services.match_alerts = original_match


def run_batches(
    figures: PipelineFigures,
    scope: Scope,
    items: list[dict],
    batch_size: int,
    whitelist_profiler: cProfile.Profile | None = None,
) -> None:
    counter = StatementCounter()
    connection.ensure_connection()
    with (
        connection.execute_wrapper(counter),
        measured_pipeline(counter, figures.pipeline_errors, whitelist_profiler) as (
            pipeline_calls,
            steps,
        ),
    ):
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            counter.reset()
            before = len(pipeline_calls)
            steps_before = len(steps.whitelist), len(steps.matching)
            began = Clocks.read()
            result = ingest_alerts(batch, scope=scope, sources=ALL_ALERT_SOURCES)
            spent = Clocks.read().since(began)
            if result.errors:
                raise RuntimeError(f"the ingestion refused generated alerts: {result.errors[:3]}")
            pipeline = pipeline_calls[before:]
            pipeline_database = [c.database for c in pipeline]
            figures.batches.append(
                BatchFigures(
                    alerts=result.accepted,
                    seconds=spent.wall,
                    pipeline_seconds=sum(c.wall for c in pipeline),
                    ingest_statements=counter.counts["ingest"],
                    pipeline_statements=counter.counts["pipeline"] + counter.counts["whitelist"],
                    cpu_seconds=spent.cpu,
                    pipeline_cpu_seconds=sum(c.cpu for c in pipeline),
                    database_cpu_seconds=spent.database,
                    pipeline_database_cpu_seconds=(
                        None if None in pipeline_database else sum(pipeline_database)
                    ),
                    whitelist_seconds=sum(steps.whitelist[steps_before[0] :]),
                    matching_seconds=sum(steps.matching[steps_before[1] :]),
                )
            )
    figures.statement_seconds = dict(counter.seconds_by_label)
    figures.statement_calls = dict(counter.calls_by_label)
    figures.statement_database_seconds = dict(counter.database_seconds_by_label)


def outcome(scope: Scope) -> dict:
    """What the run left in the database, to check that the pipeline really ran."""
    alerts = Alert.objects.in_scope(scope).aggregate(
        stored=Count("id"),
        whitelisted=Count("id", filter=Q(whitelisted=True)),
    )
    # Alerts are processed once their batch is gone (events.pipeline.process_batch).
    waiting = sum(len(batch.alert_ids) for batch in PendingAlertBatch.objects.all())
    alerts["processed"] = alerts["stored"] - waiting
    events = SecurityEvent.objects.in_scope(scope).aggregate(
        events=Count("id"), alert_count=Sum("alert_count")
    )
    links = EventAlert.objects.filter(event__account_id__in=scope.account_ids)
    return {
        "alerts_stored": alerts["stored"],
        "alerts_processed": alerts["processed"],
        "alerts_whitelisted": alerts["whitelisted"],
        "alerts_in_events": links.values("alert_id").distinct().count(),
        "events": events["events"],
        "events_alert_count_total": events["alert_count"] or 0,
        "event_alert_links": links.count(),
        "assets": Asset.objects.in_scope(scope).count(),
        "entities": Entity.objects.in_scope(scope).count(),
        # A whitelisted alert has one match row, counts one hit and joins no event.
        "whitelist_matches": Match.objects.filter(alert__account_id__in=scope.account_ids).count(),
        "whitelist_hits": RuleGroup.objects.filter(organisation_id=scope.organisation_id).aggregate(
            hits=Sum("hit_count")
        )["hits"]
        or 0,
        "whitelisted_in_events": links.filter(alert__whitelisted=True).count(),
    }


def profile_report(profiler: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    out.write(f"Top {limit} functions by own time (file:line(function)):\n")
    stats.print_stats(limit)
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    out.write(f"Top {limit} functions of the project by cumulative time:\n")
    stats.print_stats(r"/(alerts|events|secops|whitelist|soar|disposal)/", limit)
    return out.getvalue()


def add_arguments(parser) -> None:
    """The options of this scenario, for ``python -m bench``."""
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts to ingest (100,000)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH_ITEMS,
        help=f"alerts per ingestion call, at most the API's {MAX_BATCH_ITEMS:,} "
        f"({MAX_BATCH_ITEMS:,})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the timed batches with cProfile and print the hotspots (with "
        "--whitelist-rules, the whitelist step of the second run too)",
    )
    parser.add_argument(
        "--whitelist-rules",
        type=int,
        default=WHITELIST_RULES,
        metavar="N",
        help="then ingest the same alerts again with N active whitelist rule groups, and a "
        "third time without, and compare those two rates; 0 skips both runs "
        f"({WHITELIST_RULES})",
    )


def run(args) -> PipelineFigures:
    if args.alerts < 1:
        raise ValueError("--alerts must be at least 1")
    if not 1 <= args.batch_size <= MAX_BATCH_ITEMS:
        raise ValueError(f"--batch-size must be between 1 and {MAX_BATCH_ITEMS:,}")
    if args.whitelist_rules < 0:
        raise ValueError("--whitelist-rules must be 0 or more")
    return run_pipeline(
        alerts=args.alerts,
        batch_size=args.batch_size,
        seed=args.seed,
        profile=args.profile,
        rule_groups=args.whitelist_rules,
    )


def checkpoint() -> None:
    """Write out the dirty pages of the previous phase now, so that neither
    timed run pays for a checkpoint the other one caused."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def timed_run(
    figures: PipelineFigures,
    scope: Scope,
    *,
    profile: bool,
    whitelist_profile: bool = False,
) -> None:
    """Ingest the dataset into emptied tables, timing each batch."""
    checkpoint()
    gc.collect()
    figures.load_at_start = os.getloadavg()[0]
    profiler = cProfile.Profile() if profile else None
    # One profiler at a time: the whitelist step's own is used only without the other.
    whitelist_profiler = cProfile.Profile() if whitelist_profile and not profile else None
    if profiler:
        profiler.enable()
    try:
        run_batches(figures, scope, figures.dataset.items, figures.batch_size, whitelist_profiler)
    finally:
        if profiler:
            profiler.disable()
            figures.profile = profile_report(profiler, 30)
        if whitelist_profiler:
            figures.profile = profile_report(whitelist_profiler, 30)
    figures.load_at_end = os.getloadavg()[0]
    figures.outcome = outcome(scope)


def replay(first: PipelineFigures, rule_groups: int = 0) -> PipelineFigures:
    """Figures for another run of the first run's alerts."""
    return PipelineFigures(
        dataset=first.dataset,
        batch_size=first.batch_size,
        postgres_version=first.postgres_version,
        generate_seconds=0.0,
        rule_groups=rule_groups,
    )


def run_pipeline(
    *,
    alerts: int,
    batch_size: int = MAX_BATCH_ITEMS,
    seed: int = 1,
    hosts: int = 2_000,
    attacker_ips: int = 5_000,
    file_hashes: int = 1_500,
    profile: bool = False,
    rule_groups: int = 0,
    log=print,
) -> PipelineFigures:
    # Production settings log no SQL; DEBUG only stands in for a SECRET_KEY here.
    settings.DEBUG = False
    # One line per eager task would drown the figures.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    # Without REDIS_URL settings are eager already; with it the pipeline would
    # go to a broker that no worker of this run reads.
    celery_app.conf.task_always_eager = True

    name = database.check_database()
    if database.create_database_if_missing(name):
        log(f"Created database {name}.")
    log(f"Migrating {name} ...")
    database.migrate()
    database.empty_touched_tables()
    scope = database.bench_tenancy(ACCOUNTS)
    # The first run has no rules: none left by an interrupted run either.
    whitelist_rules.remove_groups(scope)

    log(f"Generating {alerts:,} alerts ...")
    began = perf_counter()
    dataset = generate(
        alerts=alerts,
        seed=seed,
        accounts=ACCOUNTS,
        hosts=hosts,
        attacker_ips=attacker_ips,
        file_hashes=file_hashes,
    )
    figures = PipelineFigures(
        dataset=dataset,
        batch_size=batch_size,
        postgres_version=database.server_version(),
        generate_seconds=perf_counter() - began,
    )

    # The first batch of a process pays for imports, compiled queries and
    # cold caches; untimed here, so that the first timed run does not carry it.
    log("Warming up with one untimed batch ...")
    warm_up = ingest_alerts(dataset.items[:batch_size], scope=scope, sources=ALL_ALERT_SOURCES)
    if warm_up.errors:
        raise RuntimeError(f"the ingestion refused generated alerts: {warm_up.errors[:3]}")
    database.empty_touched_tables()

    log(f"Ingesting in batches of {batch_size:,} with the pipeline after each ...")
    timed_run(figures, scope, profile=profile)

    log("COPY baseline ...")
    rows = database.stored_alert_rows(scope)
    figures.copy_seconds = database.time_copy(rows, temporary=True)
    figures.logged_copy_seconds = database.time_copy(rows, temporary=False)
    # Kept alive, these rows would make the garbage collector slower in the next run.
    del rows

    if rule_groups:
        log(f"Ingesting the same alerts again with {rule_groups:,} whitelist rule groups ...")
        database.empty_touched_tables()
        # Emptying the event tables also empties the rule groups (they name
        # their source event), so the groups are made afterwards.
        whitelist_rules.create_groups(scope, rule_groups, seed)
        figures.with_rules = replay(figures, rule_groups=rule_groups)
        try:
            timed_run(figures.with_rules, scope, profile=False, whitelist_profile=profile)
        finally:
            # The other scenarios run the pipeline too, without rules.
            whitelist_rules.remove_groups(scope)

        log("Ingesting the same alerts a third time, without rules ...")
        database.empty_touched_tables()
        figures.again = replay(figures)
        timed_run(figures.again, scope, profile=False)
    return figures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(figures: PipelineFigures, out=print) -> list[str]:
    """Print the figures; returns the problems that make the run invalid."""
    data = figures.dataset
    result = figures.outcome
    raw_sizes = [len(json.dumps(item["raw"], separators=(",", ":"))) for item in data.items]
    entity_counts = [len(item["entities"]) for item in data.items]
    sources = {}
    for item in data.items:
        sources[item["source"]] = sources.get(item["source"], 0) + 1
    batch_seconds = [b.seconds for b in figures.batches]
    ingest_seconds = figures.seconds - figures.pipeline_seconds

    out("")
    out(
        f"Pipeline bench: {figures.alerts:,} alerts in {len(figures.batches)} batches of "
        f"{figures.batch_size:,}, PostgreSQL {figures.postgres_version}"
    )
    out(
        f"  machine: {os.cpu_count()} CPUs, load average {figures.load_at_start:.1f} before "
        f"the batches and {figures.load_at_end:.1f} after them"
    )
    out(
        f"  data: {len(data.accounts)} accounts, {len(data.hosts):,} hosts, "
        f"{len(data.attacker_ips):,} attacker IPs, {len(data.file_hashes):,} file hashes; "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items()))
    )
    out(
        f"  entities per alert {min(entity_counts)}-{max(entity_counts)} "
        f"(mean {statistics.mean(entity_counts):.1f}); raw payload {min(raw_sizes)}-"
        f"{max(raw_sizes)} B (mean {statistics.mean(raw_sizes):.0f} B); generated in "
        f"{figures.generate_seconds:.1f} s, before timing"
    )
    out("")
    rows = [
        ("ingest + pipeline, end to end", figures.seconds, figures.rate),
        ("  of which ingest_alerts (validate, store)", ingest_seconds, None),
        ("  of which process_alerts (pipeline)", figures.pipeline_seconds, None),
        ("COPY into a temporary copy of alerts_alert", figures.copy_seconds, figures.copy_rate),
        (
            "COPY into a logged copy (for reference)",
            figures.logged_copy_seconds,
            figures.logged_copy_rate,
        ),
    ]
    out(f"  {'':46} {'seconds':>9} {'alerts/s':>10} {'share':>6}")
    for label, seconds, rate in rows:
        share = f"{seconds / figures.seconds:6.0%}" if label.startswith("  of") else ""
        rate_text = f"{rate:10,.0f}" if rate is not None else ""
        out(f"  {label:46} {seconds:9.2f} {rate_text:>10} {share:>6}")
    out("")
    cpu = figures.total("cpu_seconds")
    pipeline_cpu = figures.total("pipeline_cpu_seconds")
    database_cpu = figures.total("database_cpu_seconds")
    pipeline_database_cpu = figures.total("pipeline_database_cpu_seconds")
    out(f"  CPU seconds {'':34} {'python':>9} {'database':>10}")
    for label, python_seconds, database_seconds in [
        ("end to end", cpu, database_cpu),
        ("  ingest_alerts", cpu - pipeline_cpu, _minus(database_cpu, pipeline_database_cpu)),
        ("  process_alerts", pipeline_cpu, pipeline_database_cpu),
    ]:
        database_text = "n/a" if database_seconds is None else f"{database_seconds:.2f}"
        out(f"  {label:46} {python_seconds:9.2f} {database_text:>10}")
    if database_cpu is not None:
        out(
            f"  (alerts per CPU second of both: "
            f"{figures.alerts / (cpu + database_cpu):,.0f}; the rest of the wall time is "
            "waiting for the disk or for a CPU)"
        )
    out("")
    out(
        f"  batch time: median {statistics.median(batch_seconds):.3f} s, "
        f"p90 {percentile(batch_seconds, 0.9):.3f} s, max {max(batch_seconds):.3f} s "
        f"(first {batch_seconds[0]:.3f} s, last {batch_seconds[-1]:.3f} s)"
    )
    ingest_counts = [b.ingest_statements for b in figures.batches]
    pipeline_counts = [b.pipeline_statements for b in figures.batches]
    out(
        f"  SQL statements per batch: ingest {min(ingest_counts)}-{max(ingest_counts)}, "
        f"pipeline {min(pipeline_counts)}-{max(pipeline_counts)} "
        f"(total {min(ingest_counts) + min(pipeline_counts)}-"
        f"{max(ingest_counts) + max(pipeline_counts)})"
    )
    out("  SQL statements over the run (wall time of execute, with psycopg's query")
    out("  preparation; database CPU of the session while it ran):")
    out(f"    {'':62} {'calls':>5} {'wall s':>8} {'share':>6} {'db CPU s':>9}")
    for (phase, label), seconds in sorted(
        figures.statement_seconds.items(), key=lambda item: -item[1]
    ):
        calls = figures.statement_calls[(phase, label)]
        database_seconds = figures.statement_database_seconds.get((phase, label))
        database_text = "n/a" if database_seconds is None else f"{database_seconds:.2f}"
        out(
            f"    {phase:9} {label:52} {calls:5} {seconds:8.2f} "
            f"{seconds / figures.seconds:6.1%} {database_text:>9}"
        )
    out(
        f"  stored: {result['alerts_stored']:,} alerts ({result['alerts_processed']:,} processed, "
        f"{result['alerts_whitelisted']:,} whitelisted), {result['assets']:,} assets, "
        f"{result['entities']:,} entities"
    )
    out(
        f"  events: {result['events']:,} created, holding {result['event_alert_links']:,} "
        f"alert links (sum of alert_count {result['events_alert_count_total']:,}); "
        f"{result['alerts_in_events']:,} alerts are in at least one event"
    )
    out("")
    ratio = figures.rate / figures.copy_rate if figures.copy_rate else 0.0
    logged_ratio = figures.rate / figures.logged_copy_rate if figures.logged_copy_rate else 0.0
    bars = [
        (
            f"end to end >= {MIN_ALERTS_PER_SECOND:,} alerts/s",
            f"{figures.rate:,.0f}",
            figures.rate >= MIN_ALERTS_PER_SECOND,
        ),
        (
            f"end to end / COPY (temporary) >= {MIN_RATIO_TO_COPY:.2f}",
            f"{ratio:.3f}",
            ratio >= MIN_RATIO_TO_COPY,
        ),
    ]
    for label, value, passed in bars:
        out(f"  {label:46} {value:>10}  {'PASS' if passed else 'BELOW'}")
    out(f"  {'(end to end / COPY into a logged copy)':46} {logged_ratio:>10.3f}")
    if figures.with_rules and figures.again:
        report_with_rules(figures, figures.with_rules, figures.again, out)
    if figures.profile:
        out("")
        out(
            "Profile of the timed batches (cProfile slows them down; rates above are lower "
            "than without --profile):"
        )
        out(figures.profile)
    if figures.with_rules and figures.with_rules.profile:
        out("")
        out(
            "Profile of the whitelist step (apply_whitelist) in the run with rules (cProfile "
            "slows it down; the rates above are lower than without --profile):"
        )
        out(figures.with_rules.profile)

    problems = run_problems(figures)
    if figures.with_rules and figures.again:
        problems += [f"with rules: {p}" for p in run_problems(figures.with_rules)]
        problems += whitelist_problems(figures.with_rules)
        problems += [f"third run: {p}" for p in run_problems(figures.again)]
    return problems


def run_problems(figures: PipelineFigures) -> list[str]:
    """What makes one timed run's figures meaningless."""
    result = figures.outcome
    problems = list(dict.fromkeys(figures.pipeline_errors))
    if result["alerts_stored"] != figures.alerts:
        problems.append(
            f"{figures.alerts:,} alerts accepted but {result['alerts_stored']:,} stored"
        )
    if result["alerts_processed"] != result["alerts_stored"]:
        problems.append(
            f"{result['alerts_stored'] - result['alerts_processed']:,} alerts were not processed "
            "by the pipeline"
        )
    if not result["events"]:
        problems.append("the pipeline produced no events")
    if result["events_alert_count_total"] != result["event_alert_links"]:
        problems.append("the events' alert_count does not match their alert links")
    return problems


def whitelist_problems(figures: PipelineFigures) -> list[str]:
    """The run with rules must have taken the whitelisted path, completely."""
    result = figures.outcome
    whitelisted = result["alerts_whitelisted"]
    problems = []
    if not whitelisted:
        problems.append("no alert was whitelisted, so the whitelisted path was not measured")
    if result["whitelist_matches"] != whitelisted:
        problems.append(
            f"{whitelisted:,} alerts flagged whitelisted but {result['whitelist_matches']:,} "
            "match rows"
        )
    if result["whitelist_hits"] != whitelisted:
        problems.append(
            f"{whitelisted:,} alerts whitelisted but the groups count "
            f"{result['whitelist_hits']:,} hits"
        )
    if result["whitelisted_in_events"]:
        problems.append(f"{result['whitelisted_in_events']:,} whitelisted alerts are in events")
    return problems


def cpu_rate(figures: PipelineFigures) -> float | None:
    """Alerts per CPU second of this process and its database session together."""
    cpu, database_cpu = figures.total("cpu_seconds"), figures.total("database_cpu_seconds")
    if database_cpu is None or not cpu + database_cpu:
        return None
    return figures.alerts / (cpu + database_cpu)


def report_with_rules(
    first: PipelineFigures, with_rules: PipelineFigures, again: PipelineFigures, out=print
) -> None:
    """The runs of the same alerts side by side, and the ratio with rules / without."""
    result = with_rules.outcome
    runs = [first, with_rules, again]
    out("")
    out(
        f"Whitelist: the same {with_rules.alerts:,} alerts, each run into emptied tables; "
        f"{with_rules.rule_groups:,} active rule groups (bench.whitelist_rules) in the second"
    )
    out(
        "  load average "
        + ", ".join(f"{r.load_at_start:.1f}-{r.load_at_end:.1f}" for r in runs)
        + " during the three runs"
    )
    header = f"{with_rules.rule_groups:,} rules"
    out(f"  {'':46} {'no rules':>10} {header:>10} {'no rules':>10}")

    def row(label, value, form="{:10,.2f}"):
        def text(run):
            number = value(run)
            return f"{'n/a':>10}" if number is None else form.format(number)

        out(f"  {label:46} " + " ".join(text(run) for run in runs))

    def per_alert(seconds):
        return lambda run: seconds(run) / run.alerts * 1e6 if run.alerts else 0.0

    row("end to end, alerts/s", lambda r: r.rate, "{:10,.0f}")
    row("end to end, seconds", lambda r: r.seconds)
    row("  of which process_alerts (pipeline)", lambda r: r.pipeline_seconds)
    row("    of which apply_whitelist (whitelist step)", lambda r: r.whitelist_seconds)
    row("      of which match_alerts (matching)", lambda r: r.matching_seconds)
    row("whitelist step, µs per alert", per_alert(lambda r: r.whitelist_seconds), "{:10,.1f}")
    row("  of which matching, µs per alert", per_alert(lambda r: r.matching_seconds), "{:10,.1f}")
    row("CPU seconds, python", lambda r: r.total("cpu_seconds"))
    row("CPU seconds, database", lambda r: r.total("database_cpu_seconds"))
    row("alerts per CPU second (both)", cpu_rate, "{:10,.0f}")
    row(
        "whitelist statements per batch",
        lambda r: whitelist_statements(r) / len(r.batches),
        "{:10,.1f}",
    )
    row("alerts whitelisted", lambda r: r.outcome["alerts_whitelisted"], "{:10,}")
    row("alerts in events", lambda r: r.outcome["alerts_in_events"], "{:10,}")
    row("events", lambda r: r.outcome["events"], "{:10,}")
    out("  statements of the whitelist step with rules (wall s of execute, database CPU s):")
    for (phase, label), seconds in sorted(
        with_rules.statement_seconds.items(), key=lambda item: -item[1]
    ):
        if phase != "whitelist":
            continue
        database_seconds = with_rules.statement_database_seconds.get((phase, label))
        database_text = "n/a" if database_seconds is None else f"{database_seconds:.2f}"
        calls = with_rules.statement_calls[(phase, label)]
        out(f"    {label:60} {calls:5} {seconds:8.2f} {database_text:>9}")
    share = result["alerts_whitelisted"] / with_rules.alerts if with_rules.alerts else 0.0
    out(
        f"  whitelisted: {share:.1%} of the alerts, {result['whitelist_matches']:,} match rows, "
        f"{result['whitelist_hits']:,} hits counted; they skip aggregation, which the run "
        "with rules saves"
    )
    out("")
    ratio = with_rules.rate / again.rate if again.rate else 0.0
    label = f"with rules / third run, end to end >= {MIN_RATIO_WITH_RULES:.2f}"
    out(f"  {label:46} {ratio:>10.3f}  {'PASS' if ratio >= MIN_RATIO_WITH_RULES else 'BELOW'}")
    cpu_with, cpu_again = cpu_rate(with_rules), cpu_rate(again)
    if cpu_with and cpu_again:
        out(f"  {'(the same in alerts per CPU second)':46} {cpu_with / cpu_again:>10.3f}")
    if first.rate:
        out(f"  {'(with rules / first run, end to end)':46} {with_rules.rate / first.rate:>10.3f}")


def whitelist_statements(figures: PipelineFigures) -> int:
    return sum(
        calls for (phase, _), calls in figures.statement_calls.items() if phase == "whitelist"
    )


def _minus(total: float | None, part: float | None) -> float | None:
    return None if total is None or part is None else total - part
