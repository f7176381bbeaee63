"""``python -m bench.load``: the console under load, as ``make load`` runs it.

It starts the production stack against a database and a Redis database of its
own: gunicorn serving the console's WSGI application, two Celery workers
consuming the declared queues (the pipeline's, and handling with exports) and
beat. Then, for ``LOAD_DURATION`` seconds, it sends ``LOAD_RATE`` alerts a
second through ``POST /api/v1/alerts`` in batches, while ``LOAD_ANALYSTS``
simulated analysts log in and browse the console with about a second of
thought between pages. When sending stops it waits for the pipeline to drain
its backlog, then reads from the database what became of every alert sent.

It prints a table and writes the figures as JSON (``var/load/result.json``).
The exit status is 0 for a clean run, 1 when a request failed (any answer
other than 2xx or 3xx), an alert is missing or miscounted, or the backlog did
not drain, and 2 when the run could not start (database, Redis, a process).
Every process it started is stopped when it ends, also on Ctrl-C.

The database (``LOAD_DATABASE_URL``) must have ``load`` in its name: its
alert, event and entity tables are emptied before each run. See docs/load.md.
"""

import argparse
import contextlib
import json
import os
import queue
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/secops_loadtest"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_RESULT = ROOT / "var" / "load" / "result.json"

ORGANISATION = "Load Org"
ACCOUNTS = [
    ("9100000000000001", "load-prod-cn", "cn"),
    ("9100000000000002", "load-prod-intl", "intl"),
    ("9100000000000003", "load-staging", "cn"),
    ("9100000000000004", "load-data", "cn"),
    ("9100000000000005", "load-edge", "intl"),
]
ANALYST_PASSWORD = "load-analyst-password-1"
# A pentest vendor's scanner, whitelisted for web attacks; TEST-NET-1 is never
# drawn as an ordinary attacker (the generator draws global addresses only).
SCANNER_NETWORK = "192.0.2"
WHITELISTED_SHARE = 0.03
# Security Center alerts of this type below High match no aggregation rule.
NO_RULE_TYPE = "suspicious_process"
NO_RULE_SHARE = 0.05
BATCH_SIZE = 100
SENDERS = 8
# How long the analysts may take to log in, before sending starts.
LOGIN_TIMEOUT = 120
WEB_WORKERS = 3
WEB_THREADS = 2
DRAIN_TIMEOUT = 600
# How often the run analyses its tables when the server's autovacuum is off:
# autovacuum's own default interval (autovacuum_naptime).
ANALYZE_EVERY = 60
THINK_TIME = (0.5, 1.5)


class LoadError(Exception):
    """The run cannot start or go on; the message says why."""


# --- settings ----------------------------------------------------------------


@dataclass
class LoadSettings:
    duration: int
    rate: int
    analysts: int
    database_url: str
    redis_url: str
    result: Path

    @classmethod
    def from_environment(cls, result: Path) -> "LoadSettings":
        return cls(
            duration=_positive_int("LOAD_DURATION", 300),
            rate=_positive_int("LOAD_RATE", 500),
            analysts=_positive_int("LOAD_ANALYSTS", 20, minimum=0),
            database_url=os.environ.get("LOAD_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=os.environ.get("LOAD_REDIS_URL") or DEFAULT_REDIS_URL,
            result=result,
        )

    def check(self) -> None:
        database = urlparse(self.database_url)
        if database.scheme not in ("postgres", "postgresql"):
            raise LoadError(
                f"LOAD_DATABASE_URL must be a postgres:// URL; got {database.scheme or 'none'}."
            )
        if "load" not in database.path:
            raise LoadError(
                "LOAD_DATABASE_URL must name a database with 'load' in its name (the load "
                f"test empties its alert and event tables); it names {database.path[1:]!r}."
            )
        if urlparse(self.redis_url).scheme not in ("redis", "rediss"):
            raise LoadError("LOAD_REDIS_URL must be a redis:// URL.")


def _positive_int(name: str, default: int, minimum: int = 1) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise LoadError(f"{name} must be a whole number; got {text!r}.") from None
    if value < minimum:
        raise LoadError(f"{name} must be at least {minimum}; got {value}.")
    return value


def stack_environment(settings: LoadSettings, data_dir: Path) -> dict[str, str]:
    """The environment of every process of the stack: production settings over plain HTTP."""
    environment = dict(os.environ)
    environment.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DEBUG": "false",
            "SECRET_KEY": environment.get("LOAD_SECRET_KEY") or secrets.token_urlsafe(50),
            "DATA_DIR": str(data_dir),
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_HSTS_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "EMAIL_URL": "dummy://",
            "DJANGO_SETTINGS_MODULE": "secops.settings",
        }
    )
    return environment


# --- the database: prepared and seeded in this process ------------------------


def prepare_database(settings: LoadSettings) -> dict:
    """Create, migrate, empty and seed the load database; returns what the run needs."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    from bench.database import create_database_if_missing, empty_touched_tables

    name = connection.settings_dict["NAME"]
    try:
        create_database_if_missing(name)
    except Exception as exc:
        raise LoadError(f"PostgreSQL at LOAD_DATABASE_URL cannot be used: {exc}") from exc
    call_command("migrate", interactive=False, verbosity=0)
    _collect_static_if_changed()
    empty_touched_tables()
    return seed()


def _collect_static_if_changed() -> None:
    """collectstatic (the manifest DEBUG=false serves from), unless nothing
    changed since the last run's: it hashes every file, which takes seconds."""
    from django.conf import settings
    from django.core.management import call_command

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    sources = [Path(directory) for directory in settings.STATICFILES_DIRS]
    newest = max(
        (path.stat().st_mtime for source in sources for path in source.rglob("*")), default=0
    )
    if manifest.exists() and manifest.stat().st_mtime > newest:
        return
    call_command("collectstatic", interactive=False, verbosity=0)


def seed() -> dict:
    """A realistic tenant: one organisation, five accounts, analysts, an
    organisation API key and a whitelist group for a sanctioned scanner."""
    from axes.models import AccessAttempt, AccessFailureLog

    from secops import services
    from secops.models import ApiKey
    from secops.scope import Scope
    from whitelist.models import RuleGroup
    from whitelist.services import ConditionSpec, GroupSpec, save_group

    organisation, _ = services.create_organisation(ORGANISATION)
    accounts = []
    for uid, name, region in ACCOUNTS:
        account, _ = services.create_account(organisation, uid=uid, name=name, region=region)
        accounts.append(account)
    AccessAttempt.objects.all().delete()
    AccessFailureLog.objects.all().delete()
    ApiKey.objects.filter(organisation=organisation).delete()
    _, api_key = services.create_api_key(
        organisation=organisation, account=None, name="load test collector"
    )
    scope = Scope.for_accounts(organisation.id, [a.id for a in accounts])
    RuleGroup.objects.filter(organisation=organisation).delete()
    save_group(
        GroupSpec(
            name="Sanctioned pentest scanner",
            scenario="web_attack",
            conditions=[ConditionSpec("source_ip", "in_cidr", f"{SCANNER_NETWORK}.0/24")],
            description="The pentest vendor's scanner.",
        ),
        scope,
        allow_global=True,
    )
    return {
        "organisation_id": organisation.id,
        "account_ids": [a.id for a in accounts],
        "api_key": api_key,
    }


def analyst(n: int) -> dict:
    """Analyst n: every fifth a global administrator in the Global Account View,
    the others analysts of two or three accounts in the Current Account View."""
    uids = [uid for uid, _, _ in ACCOUNTS]
    if n % 5 == 0:
        return {"username": f"load-admin-{n:02d}", "global": True, "accounts": uids}
    start = n % len(uids)
    chosen = [uids[(start + k) % len(uids)] for k in range(2 + n % 2)]
    return {"username": f"load-analyst-{n:02d}", "global": False, "accounts": chosen}


def seed_analysts(count: int) -> list[dict]:
    from django.contrib.auth import get_user_model

    from secops import services

    organisation = services.get_organisation(ORGANISATION)
    people = [analyst(n) for n in range(count)]
    # Hashing a password takes the better part of a second on purpose: only
    # for users a previous run did not make.
    existing = set(
        get_user_model()
        .objects.filter(username__in=[p["username"] for p in people])
        .values_list("username", flat=True)
    )
    for person in people:
        role = "admin" if person["global"] else "analyst"
        services.create_user(
            organisation,
            username=person["username"],
            password=None if person["username"] in existing else ANALYST_PASSWORD,
            memberships=[(uid, role) for uid in person["accounts"]],
            global_admin=person["global"],
        )
    return people


def flush_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        raise LoadError(f"Redis at LOAD_REDIS_URL cannot be used: {exc}") from exc


# --- the stack -------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path


class Stack:
    """gunicorn, two Celery workers and beat, each in a process group of its own."""

    def __init__(self, environment: dict, log_dir: Path):
        self.environment = environment
        self.log_dir = log_dir
        self.processes: list[Process] = []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        celery = str(VENV_BIN / "celery")
        self._spawn(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "secops.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(WEB_WORKERS),
                "--threads",
                str(WEB_THREADS),
                "--timeout",
                "60",
                # Browsers and proxies keep connections open for a minute or
                # so; gunicorn's 2 s would close them as a client reuses them.
                "--keep-alive",
                "30",
                # Its default path is shared by every gunicorn of the user.
                "--no-control-socket",
                "--access-logfile",
                "-",
            ],
        )
        # As docker-compose.workers.yml: one worker for the pipeline and the
        # detection rules, one for handling, playbooks and exports.
        self._spawn(
            "worker-pipeline",
            [celery, "-A", "secops", "worker", "-Q", "ingest,detect", "-l", "info", "-n",
             "pipeline@%h"],
        )  # fmt: skip
        self._spawn(
            "worker-respond",
            [celery, "-A", "secops", "worker", "-Q", "respond,export", "-l", "info", "-n",
             "respond@%h"],
        )  # fmt: skip
        self._spawn(
            "beat",
            [celery, "-A", "secops", "beat", "-l", "warning", "-s",
             str(self.log_dir / "celerybeat-schedule")],
        )  # fmt: skip

    def _spawn(self, name: str, command: list[str]) -> None:
        log = self.log_dir / f"{name}.log"
        handle = log.open("w")
        popen = subprocess.Popen(  # noqa: S603 - our own executables, no shell
            command,
            cwd=ROOT,
            env=self.environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        self.processes.append(Process(name, popen, log))

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        waiting = {"web", "worker-pipeline", "worker-respond"}
        while waiting:
            for process in self.processes:
                if process.popen.poll() is not None:
                    raise LoadError(
                        f"{process.name} stopped at start-up (exit {process.popen.returncode}); "
                        f"see {process.log}"
                    )
            if "web" in waiting:
                try:
                    if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        waiting.discard("web")
                except requests.RequestException:
                    pass
            for process in self.processes:
                if process.name.startswith("worker") and " ready." in process.log.read_text():
                    waiting.discard(process.name)
            if time.monotonic() > deadline:
                raise LoadError(f"Not ready after {timeout:.0f} s: {', '.join(sorted(waiting))}")
            time.sleep(0.3)

    def check_alive(self) -> list[str]:
        return [p.name for p in self.processes if p.popen.poll() is not None]

    def process_groups(self) -> dict[str, int]:
        return {p.name: p.popen.pid for p in self.processes}

    def stop(self) -> None:
        """Stop every process group (gunicorn at once: nothing is measured any
        more; the workers warm, finishing a task in hand), then KILL any left
        after 20 s."""
        for process in self.processes:
            _signal_group(process.popen, signal.SIGINT if process.name == "web" else signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(deadline - time.monotonic(), 0.1))
        for process in self.processes:
            # The group too: prefork children may outlive their parent.
            _signal_group(process.popen, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(5)


def _signal_group(popen: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signum)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- machine load ------------------------------------------------------------------


def _cpu_ticks() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


def _own_cpu_seconds() -> float:
    """This process's CPU: the analysts' and senders' threads."""
    times = os.times()
    return times.user + times.system


def group_cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of every live process in each process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    by_group = {pgid: name for name, pgid in groups.items()}
    totals = dict.fromkeys(groups, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        name = by_group.get(int(fields[2]))
        if name is not None:
            totals[name] += (int(fields[11]) + int(fields[12])) / ticks
    return totals


def database_session_ticks(database: str) -> dict[int, int]:
    """pid -> CPU ticks so far of each PostgreSQL session connected to ``database``
    (a backend's process title names its database)."""
    found = {}
    marker = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if not title.startswith(b"postgres: ") or marker not in title:
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = int(fields[11]) + int(fields[12])
    return found


class MachineMonitor(threading.Thread):
    """Samples the load average and the share of CPU in use every 2 s, and the
    CPU of the PostgreSQL sessions of the load database."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database = database
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()
        # pid -> (ticks when first seen, ticks when last seen)
        self.sessions: dict[int, tuple[int, int]] = {}

    def run(self) -> None:
        total, idle = _cpu_ticks()
        self._sample_sessions()
        while not self.stopping.wait(2):
            new_total, new_idle = _cpu_ticks()
            busy = 1 - (new_idle - idle) / max(new_total - total, 1)
            total, idle = new_total, new_idle
            load = float(Path("/proc/loadavg").read_text().split()[0])
            self.samples.append((load, busy))
            self._sample_sessions()
        self._sample_sessions()

    def _sample_sessions(self) -> None:
        for pid, ticks in database_session_ticks(self.database).items():
            first, _ = self.sessions.get(pid, (ticks, ticks))
            self.sessions[pid] = (first, ticks)

    def database_cpu_seconds(self) -> float:
        """Of the sessions seen (a session's first 2 s before its first sample escape)."""
        ticks = sum(last - first for first, last in self.sessions.values())
        return ticks / os.sysconf("SC_CLK_TCK")

    def figures(self) -> dict:
        if not self.samples:
            return {}
        loads = [s[0] for s in self.samples]
        busy = [s[1] for s in self.samples]
        return {
            "cores": os.cpu_count(),
            "load_average_mean": round(sum(loads) / len(loads), 2),
            "load_average_max": round(max(loads), 2),
            "cpu_busy_mean_percent": round(100 * sum(busy) / len(busy), 1),
            "cpu_busy_max_percent": round(100 * max(busy), 1),
        }


class StatisticsKeeper(threading.Thread):
    """ANALYZE the load database every ``ANALYZE_EVERY`` seconds, standing in
    for autovacuum on a server where it is off.

    The run starts from emptied tables and fills them within seconds; without
    fresh statistics PostgreSQL plans for empty tables, which no production
    server with autovacuum (the default) does for long.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.runs = 0

    def run(self) -> None:
        from django.db import connection

        while not self.stopping.wait(ANALYZE_EVERY):
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self.runs += 1
        connection.close()


def autovacuum_is_on() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


# --- the traffic -----------------------------------------------------------------


@dataclass
class Recorder:
    """Every request's kind, latency and status; failures with their reason."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def error(self, kind: str, url: str, problem: str) -> None:
        with self.lock:
            self.errors.append({"kind": kind, "url": url, "problem": problem[:300]})


class AlertSource:
    """Alerts as collectors send them: the bench's realistic generator, with
    a sanctioned scanner's web attacks (whitelisted) and low host alerts no
    rule aggregates mixed in. Counts what it expects of each."""

    def __init__(self, seed: int):
        from bench.generate import AlertGenerator, BenchAccount

        self.generator = AlertGenerator(
            seed=seed,
            accounts=[BenchAccount(uid, name, region) for uid, name, region in ACCOUNTS],
            hosts=2000,
            attacker_ips=5000,
            file_hashes=1500,
        )
        self.rng = random.Random(seed + 1)
        self.lock = threading.Lock()
        self.run_tag = secrets.token_hex(4)
        self.serial = 0

    def batch(self, size: int) -> tuple[list[dict], dict[str, int]]:
        expected = {"whitelisted": 0, "no_rule": 0}
        with self.lock:
            items = []
            for _ in range(size):
                item, kind = self._alert()
                if kind:
                    expected[kind] += 1
                items.append(item)
        return items, expected

    def _alert(self) -> tuple[dict, str]:
        draw = self.rng.random()
        generator = self.generator
        self.serial += 1
        if draw < WHITELISTED_SHARE:
            item = generator._waf()
            scanner = f"{SCANNER_NETWORK}.{self.rng.randrange(1, 255)}"
            for entity in item["entities"]:
                if entity["role"] == "attacker":
                    entity["value"] = scanner
            item["raw"]["real_client_ip"] = scanner
            kind = "whitelisted"
        elif draw < WHITELISTED_SHARE + NO_RULE_SHARE:
            item = generator._security_center()
            item["type"] = NO_RULE_TYPE
            item["name"] = "Suspicious command execution"
            item["level"] = self.rng.choice(["suspicious", "remind"])
            item["raw"]["level"] = item["level"]
            kind = "no_rule"
        else:
            # The API refuses source "siem" (the console's own detections).
            source = self.rng.choices(["security_center", "waf", "cloud_firewall"], [50, 28, 22])[0]
            item = getattr(generator, f"_{source}")()
            kind = ""
            if (
                source == "security_center"
                and item["type"] == NO_RULE_TYPE
                and item["level"] != "serious"
            ):
                kind = "no_rule"
        # Unique per run: the tables are emptied, but say so anyway.
        item["uuid"] = f"{item['uuid']}:{self.run_tag}:{self.serial}"
        return item, kind


class Sender:
    """Sends ``rate`` alerts a second in batches on a fixed schedule (an open
    loop: a slow answer does not slow the schedule; senders that fall behind
    show as lateness)."""

    def __init__(self, url: str, api_key: str, rate: int, source: AlertSource, rec: Recorder):
        self.url = f"{url}/api/v1/alerts"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.rate = rate
        self.source = source
        self.recorder = rec
        self.batches: queue.Queue = queue.Queue(maxsize=SENDERS * 4)
        self.lock = threading.Lock()
        self.sent = 0
        self.accepted = 0
        self.duplicates = 0
        self.expected = {"whitelisted": 0, "no_rule": 0}
        self.lateness: list[float] = []
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.last_start = 0.0

    def prepare(self, duration: int) -> None:
        """Make every batch before the clock starts, so that making them costs
        the machine nothing while it is measured."""
        batch_size = min(BATCH_SIZE, self.rate)
        total = duration * self.rate
        self.prepared = []
        while total > 0:
            items, expected = self.source.batch(min(batch_size, total))
            self.prepared.append((len(items), expected, json.dumps({"alerts": items}).encode()))
            total -= len(items)
        self.interval = batch_size / self.rate

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=self._post, daemon=True) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        self.started_at = time.monotonic()
        for number, (size, expected, body) in enumerate(self.prepared):
            due = self.started_at + number * self.interval
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            self.batches.put((due, size, expected, body))
        for _ in threads:
            self.batches.put(None)
        for thread in threads:
            thread.join()
        self.stopped_at = time.monotonic()

    def _post(self) -> None:
        session = requests.Session()
        while (job := self.batches.get()) is not None:
            due, size, expected, body = job
            start = time.monotonic()
            try:
                response = session.post(self.url, data=body, headers=self.headers, timeout=60)
            except requests.RequestException as exc:
                self.recorder.error("ingest", self.url, f"{type(exc).__name__}: {exc}")
                continue
            spent = time.monotonic() - start
            with self.lock:
                self.sent += size
                self.lateness.append(max(start - due, 0.0))
                self.last_start = max(self.last_start, start)
            if response.status_code != 200:
                self.recorder.error("ingest", self.url, f"{response.status_code} {response.text}")
                continue
            self.recorder.record("ingest", spent)
            answer = response.json()
            with self.lock:
                self.accepted += answer.get("accepted", 0)
                self.duplicates += answer.get("duplicates", 0)
                if answer.get("errors"):
                    self.recorder.error("ingest", self.url, f"item errors: {answer['errors'][:3]}")
                for kind, count in expected.items():
                    self.expected[kind] += count


LINK = {
    "event": re.compile(r'href="/events/(\d+)/'),
    # The Alert page opens an alert's details in a panel, by htmx.
    "alert": re.compile(r'(?:href|hx-get)="/alerts/(\d+)/'),
}
EVENT_FILTERS = [
    "",
    "?occurred=7d",
    "?occurred=1d&risk=3",
    "?status=unhandled&risk=3&risk=2",
    "?occurred=30d&sort=-last_occurred_at",
    "?name=attack",
    "?asset=web-",
    "?occurred=90d&status=unhandled",
]
ALERT_FILTERS = [
    "",
    "?source=waf",
    "?level=3",
    "?type=brute_force",
    "?whitelisted=yes",
    "?source=security_center&period=1d",
]
DISPOSAL_TABS = ["", "?tab=tasks", "?tab=active"]
EVENT_TABS = ["info", "timeline", "alerts", "tracing"]


class Analyst(threading.Thread):
    """Logs in, then, from the moment sending starts, browses like an analyst
    until told to stop: the event list with filters, an event's tabs, the
    alert list and an alert, the Disposal Center, the overview; about a second
    of thought between pages."""

    def __init__(
        self,
        base: str,
        person: dict,
        rec: Recorder,
        start: threading.Event,
        stop: threading.Event,
        seed: int,
    ):
        super().__init__(daemon=True)
        self.base = base
        self.person = person
        self.recorder = rec
        self.starting = start
        self.stopping = stop
        self.logged_in = threading.Event()
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.event_ids: list[str] = []
        self.alert_ids: list[str] = []

    def run(self) -> None:
        try:
            if not self.login():
                return
            self.logged_in.set()
            self.starting.wait()
            # Spread over the first think time rather than all asking at once.
            if self.stopping.wait(self.rng.uniform(0, THINK_TIME[1])):
                return
            # Whoever logged in opens at least one page, however short the run.
            while True:
                self.browse_once()
                if self.stopping.wait(self.rng.uniform(*THINK_TIME)):
                    break
        except Exception as exc:  # any failure of an analyst is an error of the run
            self.recorder.error("analyst", self.base, f"{type(exc).__name__}: {exc}")
        finally:
            self.logged_in.set()  # whether or not: the run does not wait for it

    def login(self) -> bool:
        page = self.get("login", "/login/")
        if page is None:
            return False
        token = self.session.cookies.get("csrftoken", "")
        page = self.post(
            "login",
            "/login/",
            {
                "username": self.person["username"],
                "password": ANALYST_PASSWORD,
                "csrfmiddlewaretoken": token,
            },
        )
        if page is None:
            return False
        if self.person["global"]:
            token = self.session.cookies.get("csrftoken", "")
            return (
                self.post(
                    "switch_view",
                    "/scope/",
                    {"view": "global", "next": "/", "csrfmiddlewaretoken": token},
                )
                is not None
            )
        return True

    def browse_once(self) -> None:
        draw = self.rng.random()
        if draw < 0.30 or not self.event_ids:
            self.get("event_list", "/events/" + self.rng.choice(EVENT_FILTERS), "event")
        elif draw < 0.60:
            event = self.rng.choice(self.event_ids)
            tab = self.rng.choice(EVENT_TABS)
            self.get(f"event_{tab}", f"/events/{event}/?tab={tab}", "alert")
            if tab == "tracing":
                self.get("event_tracing_json", f"/events/{event}/tracing.json")
        elif draw < 0.75:
            self.get("alert_list", "/alerts/" + self.rng.choice(ALERT_FILTERS), "alert")
        elif draw < 0.85 and self.alert_ids:
            self.get(
                "alert_detail",
                f"/alerts/{self.rng.choice(self.alert_ids)}/",
                headers={"HX-Request": "true", "HX-Target": "alert-panel"},
            )
        elif draw < 0.95:
            self.get("disposal_center", "/disposal/" + self.rng.choice(DISPOSAL_TABS))
        else:
            self.get("overview", "/")

    def get(
        self, kind: str, path: str, links: str | None = None, headers: dict | None = None
    ) -> str | None:
        return self._request(kind, "GET", path, None, links, headers)

    def post(self, kind: str, path: str, data: dict) -> str | None:
        return self._request(kind, "POST", path, data, None)

    def _request(self, kind, method, path, data, links, headers=None) -> str | None:
        url = self.base + path
        start = time.monotonic()
        try:
            response = self.session.request(
                method, url, data=data, headers={"Referer": url, **(headers or {})}, timeout=60
            )
        except requests.RequestException as exc:
            self.recorder.error(kind, path, f"{type(exc).__name__}: {exc}")
            return None
        spent = time.monotonic() - start
        if not 200 <= response.status_code < 400:
            self.recorder.error(kind, path, f"HTTP {response.status_code}")
            return None
        if kind != "login" and urlparse(response.url).path == "/login/":
            self.recorder.error(kind, path, "sent back to the login page")
            return None
        if kind == "login" and method == "POST" and urlparse(response.url).path == "/login/":
            self.recorder.error(kind, path, "login refused")
            return None
        self.recorder.record(kind, spent)
        if links:
            found = LINK[links].findall(response.text)
            if links == "event" and found:
                self.event_ids = list(dict.fromkeys(found))[:50]
            elif links == "alert" and found:
                self.alert_ids = list(dict.fromkeys(found))[:50]
        return response.text


# --- the outcome, read from the database -------------------------------------------


def pending_alerts() -> tuple[int, int]:
    """Batches and alerts still waiting for the pipeline."""
    from django.db import connection

    from alerts.models import PendingAlertBatch

    connection.close_if_unusable_or_obsolete()
    batches = list(PendingAlertBatch.objects.values_list("alert_ids", flat=True))
    return len(batches), sum(len(ids) for ids in batches)


def wait_for_drain(timeout: float, stack: Stack) -> tuple[float | None, int]:
    """Seconds until no alert waits for the pipeline (None: it did not drain)."""
    start = time.monotonic()
    while True:
        _, waiting = pending_alerts()
        if waiting == 0:
            return time.monotonic() - start, 0
        if time.monotonic() - start > timeout or stack.check_alive():
            return None, waiting
        time.sleep(0.5)


LAG_SQL = """
WITH placed AS (
    -- when each alert went into its events (the pipeline's change rows)
    SELECT (item.value)::bigint AS alert_id, max(c.created_at) AS placed_at
    FROM events_eventchange c
    CROSS JOIN LATERAL jsonb_array_elements_text(c.details -> 'alert_ids') AS item(value)
    WHERE c.cause = 'pipeline' AND c.kind IN ('created', 'alerts_added')
      AND c.account_id = ANY(%(accounts)s)
    GROUP BY 1
)
SELECT count(*),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY lag),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY lag),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY lag),
       max(lag)
FROM (
    SELECT extract(epoch FROM placed.placed_at - a.received_at) AS lag
    FROM placed JOIN alerts_alert a ON a.id = placed.alert_id
) lags
"""

COUNTS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE whitelisted),
       count(*) FILTER (WHERE in_event),
       count(*) FILTER (WHERE in_event AND whitelisted),
       count(*) FILTER (WHERE NOT in_event AND NOT whitelisted)
FROM (
    SELECT a.whitelisted,
           EXISTS (SELECT 1 FROM events_eventalert l WHERE l.alert_id = a.id) AS in_event
    FROM alerts_alert a
    WHERE a.account_id = ANY(%(accounts)s)
) alerts
"""

WHITELIST_LAG_SQL = """
SELECT count(*),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY lag),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY lag),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY lag),
       max(lag)
FROM (
    SELECT extract(epoch FROM m.matched_at - a.received_at) AS lag
    FROM whitelist_match m JOIN alerts_alert a ON a.id = m.alert_id
    WHERE a.account_id = ANY(%(accounts)s)
) lags
"""


def _lag_figures(row) -> dict:
    count, p50, p95, p99, worst = row
    return {
        "alerts": count,
        "p50": _seconds(p50),
        "p95": _seconds(p95),
        "p99": _seconds(p99),
        "max": _seconds(worst),
    }


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 3)


def outcome(account_ids: list[int]) -> dict:
    """What became of the alerts: stored, whitelisted, in events, in no event."""
    from django.db import connection

    from events.models import SecurityEvent
    from whitelist.models import Match

    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL, {"accounts": account_ids})
        names = ["stored", "whitelisted", "in_events", "whitelisted_in_events", "no_event"]
        counts = dict(zip(names, cursor.fetchone(), strict=True))
    counts["whitelist_matches"] = Match.objects.filter(alert__account_id__in=account_ids).count()
    counts["events"] = SecurityEvent.objects.filter(account_id__in=account_ids).count()
    with connection.cursor() as cursor:
        cursor.execute(LAG_SQL, {"accounts": account_ids})
        lag = _lag_figures(cursor.fetchone())
        cursor.execute(WHITELIST_LAG_SQL, {"accounts": account_ids})
        whitelist_lag = _lag_figures(cursor.fetchone())
    return {"counts": counts, "ingestion_lag": lag, "whitelist_lag": whitelist_lag}


# --- figures -------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(1000 * ordered[min(int(share * len(ordered)), len(ordered) - 1)], 1)

    return {
        "count": len(ordered),
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def problems_of(result: dict) -> list[str]:
    problems = []
    if result["errors"]["count"]:
        problems.append(f"{result['errors']['count']} requests failed")
    ingest = result["ingest"]
    counts = result["outcome"]["counts"]
    if ingest["sent"] != ingest["planned"]:
        problems.append(f"{ingest['planned']} alerts planned, {ingest['sent']} sent")
    if ingest["accepted"] != ingest["sent"]:
        problems.append(f"{ingest['sent']} alerts sent, {ingest['accepted']} accepted")
    if counts["stored"] != ingest["sent"]:
        problems.append(f"{ingest['sent']} alerts sent, {counts['stored']} stored")
    expected = ingest["expected"]
    if counts["whitelisted"] != expected["whitelisted"]:
        problems.append(
            f"{expected['whitelisted']} alerts should be whitelisted, {counts['whitelisted']} are"
        )
    if counts["whitelist_matches"] != counts["whitelisted"]:
        problems.append(
            f"{counts['whitelisted']} whitelisted alerts, {counts['whitelist_matches']} matches"
        )
    if counts["whitelisted_in_events"]:
        problems.append(f"{counts['whitelisted_in_events']} whitelisted alerts are in events")
    if counts["no_event"] != expected["no_rule"]:
        problems.append(
            f"{expected['no_rule']} alerts match no rule, {counts['no_event']} are in no event"
        )
    if counts["whitelisted"] + counts["in_events"] + counts["no_event"] != counts["stored"]:
        problems.append("whitelisted + in events + in no event differs from stored")
    if result["pipeline"]["drain_seconds"] is None:
        problems.append(
            f"the backlog did not drain: {result['pipeline']['alerts_waiting']} alerts waiting"
        )
    if result["stack"]["stopped_early"]:
        problems.append(f"stopped during the run: {', '.join(result['stack']['stopped_early'])}")
    return problems


def print_table(result: dict) -> None:
    settings = result["settings"]
    ingest = result["ingest"]
    print()
    print(
        f"Load test: {settings['rate']} alerts/s for {settings['duration']} s, "
        f"{settings['analysts']} analysts ({result['stack']['web']}, 2 Celery workers, beat)"
    )
    print()
    print(f"{'requests':<22} {'count':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    rows = [("all pages", result["pages"]["all"])]
    rows += [(f"  {kind}", figures) for kind, figures in sorted(result["pages"]["by_kind"].items())]
    rows += [(f"{kind} (not a page)", figures) for kind, figures in result["login"].items()]
    rows.append((f"ingest ({settings['batch_size']} alerts)", result["ingest"]["latency"]))
    for name, figures in rows:
        if not figures.get("count"):
            print(f"{name:<22} {0:>7}")
            continue
        print(
            f"{name:<22} {figures['count']:>7} {figures['p50_ms']:>9} {figures['p95_ms']:>9} "
            f"{figures['p99_ms']:>9} {figures['max_ms']:>9}"
        )
    print()
    lag = result["outcome"]["ingestion_lag"]
    wl = result["outcome"]["whitelist_lag"]
    pipeline = result["pipeline"]
    counts = result["outcome"]["counts"]
    lines = [
        ("alerts sent", f"{ingest['sent']:,} of {ingest['planned']:,} planned"),
        ("rate achieved", f"{ingest['achieved_rate']} alerts/s"),
        ("sender lateness", f"p95 {ingest['lateness_p95_ms']} ms, max {ingest['lateness_max_ms']} ms"),
        ("alerts stored", f"{counts['stored']:,}"),
        ("  in events", f"{counts['in_events']:,} ({counts['events']:,} events)"),
        ("  whitelisted", f"{counts['whitelisted']:,} (expected {ingest['expected']['whitelisted']:,})"),
        ("  in no event", f"{counts['no_event']:,} (expected to match no rule {ingest['expected']['no_rule']:,})"),
        ("ingestion lag", f"p50 {lag['p50']} s, p95 {lag['p95']} s, p99 {lag['p99']} s, max {lag['max']} s"),
        ("whitelisting lag", f"p50 {wl['p50']} s, p95 {wl['p95']} s, max {wl['max']} s"),
        ("backlog at stop", f"{pipeline['alerts_waiting_at_stop']:,} alerts"),
        ("backlog drained in", f"{pipeline['drain_seconds']} s"),
        ("errors", f"{result['errors']['count']}"),
    ]  # fmt: skip
    machine = result["machine"]
    if machine:
        lines.append(
            (
                "machine",
                f"{machine['cores']} cores, load average {machine['load_average_mean']} "
                f"(max {machine['load_average_max']}), CPU busy {machine['cpu_busy_mean_percent']} %",
            )
        )
    cpu = result["cpu_seconds"]
    lines.append(("CPU seconds", ", ".join(f"{k} {v}" for k, v in cpu.items())))
    for name, value in lines:
        print(f"{name:<22} {value}")
    for error in result["errors"]["first"]:
        print(f"error: {error['kind']} {error['url']}: {error['problem']}")
    print()
    print(f"Written to {settings['result']}")


# --- the run -------------------------------------------------------------------------


def run(settings: LoadSettings) -> dict:
    # Per database, so that runs against different databases keep apart.
    work_dir = ROOT / "var" / "load" / urlparse(settings.database_url).path[1:]
    data_dir, log_dir = work_dir / "data", work_dir / "logs"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    environment = stack_environment(settings, data_dir)
    # This process prepares the database and reads the outcome with the same settings.
    os.environ.update(environment)

    print(f"Preparing {urlparse(settings.database_url).path[1:]} ...", flush=True)
    tenant = prepare_database(settings)
    people = seed_analysts(settings.analysts)
    flush_redis(settings.redis_url)

    stack = Stack(environment, log_dir)
    recorder = Recorder()
    monitor = MachineMonitor(urlparse(settings.database_url).path[1:])
    autovacuum = autovacuum_is_on()
    statistics = None if autovacuum else StatisticsKeeper()
    if statistics is not None:
        print(
            f"autovacuum is off on this server: the run analyses its tables every "
            f"{ANALYZE_EVERY} s instead.",
            flush=True,
        )
    stop = threading.Event()
    try:
        print("Starting gunicorn, two Celery workers and beat ...", flush=True)
        stack.start()
        stack.wait_ready()
        source = AlertSource(seed=int(time.time()))
        sender = Sender(stack.url, tenant["api_key"], settings.rate, source, recorder)
        print(f"Making {settings.duration * settings.rate:,} alerts ...", flush=True)
        sender.prepare(settings.duration)
        # The analysts are at their desks when the alerts start: logging in
        # (a deliberately slow password hash each) is done and timed first.
        start = threading.Event()
        analysts = [
            Analyst(stack.url, person, recorder, start, stop, seed=n)
            for n, person in enumerate(people)
        ]
        if analysts:
            print(f"Logging {len(analysts)} analysts in ...", flush=True)
        for analyst_thread in analysts:
            analyst_thread.start()
        deadline = time.monotonic() + LOGIN_TIMEOUT
        for analyst_thread in analysts:
            analyst_thread.logged_in.wait(max(deadline - time.monotonic(), 0))
        groups = stack.process_groups()
        cpu_before = group_cpu_seconds(groups)
        own_before = _own_cpu_seconds()
        monitor.start()
        if statistics is not None:
            statistics.start()
        print(
            f"Sending {settings.rate} alerts/s for {settings.duration} s with "
            f"{settings.analysts} analysts ...",
            flush=True,
        )
        start.set()
        sender.run(stop)
        stop.set()
        for analyst_thread in analysts:
            analyst_thread.join(70)
        _, waiting_at_stop = pending_alerts()
        print(f"Sending stopped; {waiting_at_stop:,} alerts wait for the pipeline ...", flush=True)
        drain_seconds, waiting = wait_for_drain(DRAIN_TIMEOUT, stack)
        monitor.stopping.set()
        cpu_after = group_cpu_seconds(groups)
        own_after = _own_cpu_seconds()
        monitor.join(10)
        stopped_early = stack.check_alive()
    finally:
        stop.set()
        monitor.stopping.set()
        if statistics is not None:
            statistics.stopping.set()
        stack.stop()

    # Logging in is timed on its own: its cost is the password hash's, on purpose.
    page_latencies = {
        k: v for k, v in recorder.latencies.items() if k not in ("ingest", "login", "switch_view")
    }
    every_page = [value for values in page_latencies.values() for value in values]
    # From the first batch's schedule to the last batch's send, plus one interval:
    # exactly the duration when every batch left on time.
    sending = max(sender.last_start - sender.started_at + sender.interval, 1e-9)
    cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in groups}
    cpu["postgresql"] = round(monitor.database_cpu_seconds(), 1)
    cpu["load_generator"] = round(own_after - own_before, 1)
    lateness = sorted(sender.lateness) or [0.0]
    result = {
        "settings": {
            "duration": settings.duration,
            "rate": settings.rate,
            "analysts": settings.analysts,
            "batch_size": min(BATCH_SIZE, settings.rate),
            "database": urlparse(settings.database_url).path[1:],
            "redis": settings.redis_url,
            "result": str(settings.result),
        },
        "stack": {
            "web": f"gunicorn {WEB_WORKERS} workers x {WEB_THREADS} threads",
            "workers": ["ingest,detect", "respond,export"],
            "stopped_early": stopped_early,
        },
        "pages": {
            "all": percentiles(every_page),
            "by_kind": {kind: percentiles(values) for kind, values in page_latencies.items()},
        },
        "login": {
            kind: percentiles(recorder.latencies.get(kind, [])) for kind in ("login", "switch_view")
        },
        "ingest": {
            "planned": settings.duration * settings.rate,
            "sent": sender.sent,
            "accepted": sender.accepted,
            "duplicates": sender.duplicates,
            "expected": sender.expected,
            "achieved_rate": round(sender.sent / sending, 1),
            "latency": percentiles(recorder.latencies.get("ingest", [])),
            "lateness_p95_ms": round(1000 * lateness[int(0.95 * (len(lateness) - 1))], 1),
            "lateness_max_ms": round(1000 * lateness[-1], 1),
        },
        "pipeline": {
            "alerts_waiting_at_stop": waiting_at_stop,
            "drain_seconds": None if drain_seconds is None else round(drain_seconds, 1),
            "alerts_waiting": waiting,
        },
        "outcome": outcome(tenant["account_ids"]),
        "errors": {"count": len(recorder.errors), "first": recorder.errors[:10]},
        "machine": monitor.figures(),
        "database": {
            "autovacuum": autovacuum,
            "analyses_by_the_run": 0 if statistics is None else statistics.runs,
        },
        "cpu_seconds": cpu,
    }
    result["problems"] = problems_of(result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Load test of the console: LOAD_RATE alerts/s for LOAD_DURATION s through "
        "the ingest API while LOAD_ANALYSTS analysts browse (see docs/load.md).",
    )
    parser.add_argument(
        "--result",
        type=Path,
        default=DEFAULT_RESULT,
        help=f"where the JSON goes ({DEFAULT_RESULT})",
    )
    arguments = parser.parse_args(argv)
    try:
        settings = LoadSettings.from_environment(arguments.result.resolve())
        settings.check()
    except LoadError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2

    # Ctrl-C and TERM end the run through the same clean-up.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        result = run(settings)
    except LoadError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("load: interrupted; every process it started is stopped.", file=sys.stderr)
        return 130
    settings.result.parent.mkdir(parents=True, exist_ok=True)
    settings.result.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    for problem in result["problems"]:
        print(f"load: {problem}", file=sys.stderr)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
