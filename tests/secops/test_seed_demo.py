"""The demo data: the generator's payloads (``secops.demo``) and the
``seed_demo`` command that sends them through the real ingestion."""

import ipaddress
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import groupby

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Min
from django.utils import timezone
from pydantic import TypeAdapter

from alerts.models import Alert, AlertSource, LogRecord
from alerts.schemas import AlertIn, LogIn
from disposal.models import HandlingPolicy, HandlingTask, Operation
from events.models import EventAlert, EventStatus, EventStatusChange, SecurityEvent
from events.tracing.tracer import trace_event
from secops import demo
from secops.enums import RegionGroup, RiskLevel
from secops.models import Account, Organisation
from secops.scope import Scope
from secops.services import SESSION_REGION, build_scope
from whitelist.models import RuleGroup

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
SEED = demo.DEFAULT_SEED
SMALL = 300  # enough for every source, region, status and risk

ALERT_KEYS = {
    "source",
    "uuid",
    "account",
    "type",
    "name",
    "level",
    "occurred_at",
    "asset",
    "entities",
    "attck",
    "description",
    "exceptions",
    "raw",
}
ASSET_KEYS = {"instance_id", "uuid", "name", "public_ip", "private_ip", "os", "region"}
SCENARIOS = {
    "webshell",
    "reverse_shell",
    "brute_force",
    "malicious_process",
    "mining",
    "web_attack",
    "suspicious_login",
    "abnormal_network",
    "malicious_file",
    "rootkit",
    "compromised_software",
}
LOG_KEYS = {
    "process": {"pid", "ppid", "path", "cmdline", "user", "parent_path", "parent_cmdline", "hash"},
    "network": {
        "pid",
        "process_path",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "protocol",
        "direction",
    },
    # count: how many attempts one record stands for (the schema's aggregate of failures)
    "login": {"user", "src_ip", "src_port", "result", "method", "count"},
    "file": {"path", "operation", "pid", "process_path", "hash"},
    "dns": {"domain", "answer", "pid", "process_path"},
    "http": {"method", "host", "path", "status", "src_ip", "user_agent"},
}
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


@pytest.fixture(scope="module")
def alerts():
    return demo.build_alerts(SEED, demo.DEFAULT_ALERT_COUNT, NOW)


@pytest.fixture(scope="module")
def logs(alerts):
    return demo.build_logs(SEED, NOW, alerts)


# --- the generator --------------------------------------------------------------


def test_it_generates_the_same_payloads_from_the_same_seed(alerts, logs):
    assert demo.build_alerts(SEED, demo.DEFAULT_ALERT_COUNT, NOW) == alerts
    assert demo.build_logs(SEED, NOW, alerts) == logs


def test_it_keeps_the_uuids_when_only_the_time_changes(alerts):
    later = demo.build_alerts(SEED, demo.DEFAULT_ALERT_COUNT, NOW + timedelta(days=3))

    assert sorted(a["uuid"] for a in later) == sorted(a["uuid"] for a in alerts)


def test_it_generates_other_alerts_from_another_seed(alerts):
    other = demo.build_alerts(SEED + 1, 200, NOW)

    assert not {a["uuid"] for a in other} & {a["uuid"] for a in alerts}


def test_it_gives_every_alert_a_uuid_of_its_own(alerts):
    assert len({(a["source"], a["uuid"]) for a in alerts}) == len(alerts)
    assert all(len(a["uuid"]) <= 128 for a in alerts)


def test_it_generates_alerts_in_the_native_format(alerts):
    for alert in alerts:
        assert set(alert) == ALERT_KEYS
        assert set(alert["asset"]) == ASSET_KEYS
        assert alert["type"] in SCENARIOS
        assert alert["level"] in ("high", "medium", "low")
        assert datetime.fromisoformat(alert["occurred_at"]).utcoffset() is not None
    TypeAdapter(list[AlertIn]).validate_python(alerts)


def test_it_generates_logs_in_the_native_format(logs):
    for log in logs:
        assert set(log) == {"type", "account", "host_uuid", "time"} | LOG_KEYS[log["type"]]
    TypeAdapter(list[LogIn]).validate_python(logs)


def test_it_sends_exactly_the_alerts_asked_for(alerts):
    assert len(alerts) == demo.DEFAULT_ALERT_COUNT
    assert len(demo.build_alerts(SEED, 40, NOW)) == 40


def test_it_spreads_alerts_over_30_days_more_of_them_recently(alerts):
    ages = [NOW - datetime.fromisoformat(a["occurred_at"]) for a in alerts]

    assert all(timedelta(0) < age < timedelta(days=30) for age in ages)
    last_week = sum(age < timedelta(days=7) for age in ages)
    first_week = sum(age > timedelta(days=23) for age in ages)
    assert last_week > 2 * first_week > 0


def test_it_covers_every_source_scenario_and_region_even_when_small():
    small = demo.build_alerts(SEED, 100, NOW)

    assert {a["source"] for a in small} == set(AlertSource.values)
    assert {a["type"] for a in small} == SCENARIOS
    assert {RegionGroup.for_cloud_region(a["asset"]["region"], "cn") for a in small} == set(
        RegionGroup.values
    )


def test_it_spreads_alerts_over_about_30_hosts_of_every_account(alerts):
    hosts = demo.build_hosts(SEED)

    assert 25 <= len(hosts) <= 35
    assert {a["asset"]["uuid"] for a in alerts} == {host.uuid for host in hosts}
    assert {a["account"] for a in alerts} == {account.uid for account in demo.DEMO_ACCOUNTS}
    assert any(host.is_windows for host in hosts)
    assert any(not host.is_windows for host in hosts)


def test_it_reuses_attackers_and_files_across_hosts_and_accounts(alerts):
    accounts_by_attacker = {}
    accounts_by_hash = {}
    for alert in alerts:
        for entity in alert["entities"]:
            if entity["type"] == "ip" and entity["role"] == "attacker":
                accounts_by_attacker.setdefault(entity["value"], set()).add(alert["account"])
            if entity["type"] == "file":
                accounts_by_hash.setdefault(entity["sha256"], set()).add(alert["account"])

    assert max(len(accounts) for accounts in accounts_by_attacker.values()) >= 3
    assert max(len(accounts) for accounts in accounts_by_hash.values()) >= 3


def test_it_uses_only_documentation_and_private_addresses(alerts, logs):
    values = [a["asset"]["public_ip"] for a in alerts] + [a["asset"]["private_ip"] for a in alerts]
    values += [e["value"] for a in alerts for e in a["entities"] if e["type"] == "ip"]
    values += [log[key] for log in logs for key in ("src_ip", "dst_ip") if key in log]
    for value in filter(None, values):
        address = ipaddress.ip_address(value)
        assert address.is_private or any(address in n for n in DOCUMENTATION_NETWORKS), value


def test_it_includes_payloads_that_pages_and_exports_must_neutralise(alerts):
    payloads = [e["value"] for a in alerts for e in a["entities"] if e["type"] == "payload"]

    assert "<script>alert(1)</script>" in payloads
    assert any(payload.startswith("=HYPERLINK(") for payload in payloads)


# --- the attack story -------------------------------------------------------------


def test_it_tells_the_attack_in_the_logs_of_one_production_web_host(logs):
    story = demo.build_story(SEED, NOW)
    host_logs = [log for log in logs if log["host_uuid"] == story.host.uuid]
    processes = {log["pid"]: log for log in host_logs if log["type"] == "process"}

    assert story.host.account == demo.PRODUCTION and not story.host.is_windows
    # The exploit request, then Tomcat's shells, the download, the drop, the C2 call.
    assert any(log["type"] == "http" and log["method"] == "POST" for log in host_logs)
    assert processes[story.download.pid]["ppid"] == story.tomcat.pid
    assert processes[story.download.pid]["cmdline"].startswith("/bin/sh -c curl")
    assert processes[story.curl_script.pid]["ppid"] == story.download.pid
    assert processes[story.implant.pid]["hash"] == story.dropped.sha256
    assert any(log["type"] == "dns" and log["pid"] == story.curl_script.pid for log in host_logs)
    assert {
        (log["operation"], log["hash"])
        for log in host_logs
        if log["type"] == "file" and log["path"] == story.dropped.path
    } == {
        ("write", story.dropped.sha256),
        ("chmod", story.dropped.sha256),
        ("execute", story.dropped.sha256),
    }
    assert any(
        log["type"] == "network"
        and log["pid"] == story.implant.pid
        and (log["dst_ip"], log["dst_port"]) == story.c2
        for log in host_logs
    )


def test_it_raises_story_alerts_that_name_what_the_logs_show(alerts, logs):
    story = demo.build_story(SEED, NOW)
    story_alerts = {
        a["type"]: a
        for a in alerts
        if a["asset"]["uuid"] == story.host.uuid
        and a["source"] == "security_center"
        and datetime.fromisoformat(a["occurred_at"]) - story.start < timedelta(minutes=20)
    }
    logged_pids = {
        log["pid"] for log in logs if log["host_uuid"] == story.host.uuid and "pid" in log
    }

    assert {"webshell", "reverse_shell", "malicious_file", "abnormal_network"} <= set(story_alerts)
    for alert in story_alerts.values():
        for entity in alert["entities"]:
            if entity["type"] == "process":
                assert entity["pid"] in logged_pids
    dropped = [e for e in story_alerts["malicious_file"]["entities"] if e["type"] == "file"]
    assert dropped[0]["sha256"] == story.dropped.sha256
    c2 = {e["value"] for e in story_alerts["abnormal_network"]["entities"] if e["type"] == "ip"}
    assert story.c2[0] in c2


def test_it_logs_what_the_newest_security_center_alerts_name(alerts, logs):
    story = demo.build_story(SEED, NOW)
    newest = [
        a
        for a in alerts
        if a["source"] == "security_center"
        and abs(datetime.fromisoformat(a["occurred_at"]) - story.start) > timedelta(hours=3)
    ][-10:]
    by_host = {}
    for log in logs:
        by_host.setdefault(log["host_uuid"], []).append(log)

    for alert in newest:
        host_logs = by_host[alert["asset"]["uuid"]]
        for entity in alert["entities"]:
            if entity["type"] == "process":
                assert any(
                    log["type"] == "process"
                    and (log["pid"], log["cmdline"]) == (entity["pid"], entity["cmdline"])
                    for log in host_logs
                )
            elif entity["type"] == "file":
                assert any(log.get("hash") == entity["sha256"] for log in host_logs)
            elif entity["type"] == "user":
                assert any(
                    log["type"] == "login"
                    and (log["user"], log["src_ip"]) == (entity["name"], entity["src_ip"])
                    for log in host_logs
                )
    # The oldest alerts have none: only the newest events are given logs.
    oldest = next(a for a in alerts if a["source"] == "security_center")
    assert not [
        log
        for log in by_host.get(oldest["asset"]["uuid"], [])
        if log["time"] == oldest["occurred_at"] and log["type"] == "process"
    ]


# --- the status plan ----------------------------------------------------------------


def test_it_plans_every_status_and_leaves_the_newest_events_unhandled():
    events = [
        (event_id, RiskLevel.MEDIUM if event_id % 5 else RiskLevel.HIGH)
        for event_id in range(1, 201)
    ]

    plan = demo.plan_event_statuses(events)

    statuses = Counter(planned.status for planned in plan)
    assert set(statuses) == {"handled", "handling", "failed"}
    assert statuses["failed"] == 2
    assert all(planned.note for planned in plan)
    newest = {event_id for event_id, _ in events[170:]}
    assert not newest & {planned.event_id for planned in plan}
    assert demo.plan_event_statuses(events) == plan


def test_it_lets_high_risk_events_fail():
    events = [(event_id, RiskLevel.LOW) for event_id in range(1, 101)]
    events[70] = (71, RiskLevel.HIGH)

    failed = [p.event_id for p in demo.plan_event_statuses(events) if p.status == "failed"]

    assert 71 in failed


def test_it_dates_the_history_after_the_alerts_in_order_and_before_now():
    first, last = NOW - timedelta(days=90), NOW - timedelta(days=89, hours=20)

    times = demo.history_times(7, first, last, NOW, 3)

    assert times == sorted(times) and len(times) == 3
    assert last + timedelta(minutes=15) <= times[0] and times[-1] <= last + timedelta(hours=6)
    assert demo.history_times(7, first, last, NOW, 3) == times


def test_it_presses_a_recent_event_s_history_into_the_time_since_its_last_alert():
    last = NOW - timedelta(minutes=5)

    times = demo.history_times(8, last - timedelta(hours=1), last, NOW, 2)

    assert last <= times[0] <= times[1] <= NOW


def test_it_names_the_actions_it_claims():
    note = demo.actions_note(
        demo.CONFIRMED_LEAD, [("Block inbound traffic from the IP", "203.0.113.7")]
    )

    assert note == (
        "Confirmed attack, contained through the Disposal Center: "
        "Block inbound traffic from the IP (203.0.113.7)."
    )


# --- seed_demo ------------------------------------------------------------------------


def seed(*args, **options) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, **options)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def demo_scope_of(username: str, **session):
    return build_scope(get_user_model().objects.get(username=username), session)


@pytest.mark.django_db
def test_it_loads_a_month_of_alerts_from_every_source_by_default():
    output = seed()

    assert Alert.objects.count() >= 2000
    assert f"Alerts: {demo.DEFAULT_ALERT_COUNT} accepted, 0 duplicates" in output
    assert set(Alert.objects.values_list("source", flat=True)) == set(AlertSource.values)
    assert set(Alert.objects.values_list("region", flat=True)) == set(RegionGroup.values)
    payloads = demo.build_alerts(SEED, demo.DEFAULT_ALERT_COUNT, NOW)
    assert LogRecord.objects.count() == len(demo.build_logs(SEED, NOW, payloads))
    # Every log belongs to a host the alerts introduced.
    assert not LogRecord.objects.filter(asset__isnull=True).exists()
    # The demo's whitelist group keeps routine port scans out of events.
    scans = Alert.objects.filter(name="TCP port scan", type="abnormal_network")
    group = RuleGroup.objects.get(name=demo.DEMO_WHITELIST_GROUP[0])
    assert scans.exists() and not scans.filter(whitelisted=False).exists()
    assert group.hit_count == Alert.objects.filter(whitelisted=True).count() == scans.count()
    assert not EventAlert.objects.filter(alert__in=scans).exists()


@pytest.mark.django_db
def test_it_gives_the_newest_events_logs_that_their_tracing_shows():
    seed(alerts=SMALL)
    scope = Scope.for_accounts(
        Organisation.objects.get(name="Demo Corp").id, Account.objects.values_list("id", flat=True)
    )
    newest = (
        SecurityEvent.objects.filter(alert_links__alert__source=AlertSource.SECURITY_CENTER)
        .distinct()
        .order_by("-last_occurred_at")[:5]
    )

    assert len(newest) == 5
    for event in newest:
        graph = trace_event(event, scope)
        assert graph.from_logs, (event.name, graph.logs_note)
        assert any("logs" in node["sources"] for node in graph.nodes)
        assert any(node["sources"] == ["alerts", "logs"] for node in graph.nodes)


@pytest.mark.django_db
def test_it_provisions_the_demo_organisation():
    seed(alerts=SMALL)

    organisation = Organisation.objects.get(name="Demo Corp")
    assert set(
        Account.objects.filter(organisation=organisation).values_list(
            "uid", "name", "home_region", "managed"
        )
    ) == {
        ("1234567890123456", "Demo Production", "cn", True),
        ("2345678901234567", "Demo Web Shop", "intl", True),
        ("3456789012345678", "Demo Analytics", "cn", True),
        ("4567890123456789", "Demo Sandbox", "intl", False),
    }
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(demo.DEMO_ADMIN.default_password)
    assert admin.organisation_membership.is_global_admin
    assert admin.account_memberships.count() == 4


@pytest.mark.django_db
def test_it_leaves_events_in_every_status_and_risk():
    seed(alerts=SMALL)

    events = SecurityEvent.objects.all()
    assert set(events.values_list("status", flat=True)) == set(EventStatus.values)
    assert set(events.values_list("risk", flat=True)) == set(RiskLevel.values)
    assert events.filter(alert_count__gt=1).exists()
    handled = EventStatusChange.objects.filter(to_status=EventStatus.HANDLED)
    assert handled.exists() and all(change.note for change in handled)
    failed = EventStatusChange.objects.filter(to_status=EventStatus.FAILED)
    assert set(failed.values_list("from_status", flat=True)) == {EventStatus.HANDLING}


# Words of a history note that claim an action of the console, and the
# operations that would carry it out.
CLAIMS = {
    "block": {Operation.BLOCK_IP},
    "quarantin": {Operation.QUARANTINE_FILE, Operation.KILL_AND_QUARANTINE},
    "kill": {Operation.KILL_PROCESS, Operation.KILL_AND_QUARANTINE},
}


@pytest.mark.django_db
def test_its_history_follows_the_alerts_and_claims_only_what_has_records():
    seed(alerts=SMALL)
    now = timezone.now()

    changes = EventStatusChange.objects.select_related("event").order_by("event", "created_at")
    assert changes.count() > 10
    first_alerts = dict(
        EventAlert.objects.values("event")
        .annotate(first=Min("alert__occurred_at"))
        .values_list("event", "first")
    )
    claimed = 0
    for event_id, history in groupby(changes, key=lambda change: change.event_id):
        history = list(history)
        by_id = sorted(history, key=lambda change: change.id)
        # Ordered as they were made, none before the first alert or after now.
        assert [c.created_at for c in by_id] == sorted(c.created_at for c in by_id)
        assert all(first_alerts[event_id] <= c.created_at <= now for c in history)
        policies = HandlingPolicy.objects.filter(source_event_id=event_id)
        for change in history:
            words = {word for word in CLAIMS if word in change.note.lower()}
            for word in words:
                claimed += 1
                matching = policies.filter(scenario__operation__in=CLAIMS[word])
                assert matching.exists(), f"event {event_id}: {change.note!r} has no policy"
                assert HandlingTask.objects.filter(policy__in=matching).exists()
            for value in re.findall(r"\(([^()]+)\)", change.note) if words else ():
                assert policies.filter(entity_value=value).exists(), value
    assert claimed, "no history entry claims an action: the check would be empty"
    # Months-old events were not handled at the moment of seeding.
    assert changes.filter(created_at__lt=now - timedelta(days=7)).exists()


@pytest.mark.django_db
def test_it_changes_nothing_when_run_again():
    seed(alerts=SMALL)
    first = row_counts()
    statuses = dict(SecurityEvent.objects.values_list("id", "status"))

    output = seed(alerts=SMALL)

    assert row_counts() == first
    assert dict(SecurityEvent.objects.values_list("id", "status")) == statuses
    assert f"Alerts: 0 accepted, {SMALL} duplicates" in output
    assert "Logs: already loaded" in output
    assert "0 moved out of Unhandled" in output


@pytest.mark.django_db
def test_it_shows_the_analyst_only_their_account():
    seed(alerts=SMALL)
    production = Account.objects.get(uid=demo.PRODUCTION.uid)

    for region in RegionGroup.values:
        scope = demo_scope_of("analyst", **{SESSION_REGION: region})

        assert scope.account_ids == {production.id}
        visible = Alert.objects.in_scope(scope)
        assert set(visible.values_list("account_id", flat=True)) <= {production.id}
    assert Alert.objects.in_scope(demo_scope_of("analyst")).exists()
    assert Alert.objects.exclude(account=production).exists()
    assert SecurityEvent.objects.in_scope(demo_scope_of("analyst")).exists()


@pytest.mark.django_db
def test_it_prints_the_logins_and_the_console_address(monkeypatch):
    monkeypatch.setenv("PORT", "8123")

    output = seed(alerts=SMALL, admin_password="Copper-Kettle-Violet-9")

    assert "http://127.0.0.1:8123/" in output
    assert "demo only" in output
    assert "admin / Copper-Kettle-Violet-9" in output
    assert f"analyst / {demo.DEMO_ANALYST.default_password}" in output
    assert get_user_model().objects.get(username="admin").check_password("Copper-Kettle-Violet-9")


@pytest.mark.django_db
def test_it_prints_the_events_by_status_and_risk():
    output = seed(alerts=SMALL)

    table = output[output.index("High") :]
    for status in EventStatus:
        total = SecurityEvent.objects.filter(status=status).count()
        assert any(
            line.split()[0] == status.label and line.split()[-1] == str(total)
            for line in table.splitlines()
            if line.strip()
        )


@pytest.mark.django_db
def test_it_refuses_a_weak_password_before_writing_anything():
    with pytest.raises(CommandError, match="Password rejected"):
        seed(alerts=SMALL, analyst_password="analyst")

    assert not Organisation.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_count_below_one():
    with pytest.raises(CommandError, match="--alerts: must be at least 1"):
        seed("--alerts=0")
