"""Sigma correlation rules: the engine's semantics, and correlations that span
batches through the state kept in the database."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.detection_dryrun import dry_run
from alerts.detection_models import CorrelationState
from alerts.detection_rules import DetectionRuleSpec, save_custom_rule
from alerts.detection_run import run_detection
from alerts.models import Alert, AlertSource, LogRecord
from alerts.services import ingest_logs
from alerts.sigma.compiled_rule import CorrelationSpec
from alerts.sigma.correlation import Event, GroupState, advance
from tests.conftest import organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def spec(kind, *, sources=("a",), minimum=3, timespan=60):
    return CorrelationSpec(
        name="c",
        title="c",
        type=kind,
        sources=tuple(sources),
        group_by=(),
        keys={source: {} for source in sources},
        timespan=timespan,
        minimum=minimum,
    )


def events(*times, source="a", value=None, weight=1, first_id=1):
    return [
        Event(time=t, record_ids=(first_id + i,), source=source, value=value, weight=weight)
        for i, t in enumerate(times)
    ]


# --- the engine -------------------------------------------------------------------------


def test_it_counts_events_across_calls_within_the_timespan():
    state, fired = advance(spec("event_count"), GroupState(), events(0, 10))
    assert fired == []

    state, fired = advance(spec("event_count"), state, events(20, first_id=3))

    [(start, end, members, count)] = fired
    assert (start, end, count) == (0, 20, 3)
    assert [e.record_ids for e in members] == [(1,), (2,), (3,)]


def test_it_forgets_events_older_than_the_timespan():
    state, fired = advance(spec("event_count"), GroupState(), events(0, 10))
    state, fired = advance(spec("event_count"), state, events(100, first_id=3))

    assert fired == []
    assert [e.time for e in state.events] == [100]


def test_it_counts_a_merged_record_as_its_attempts():
    _, fired = advance(spec("event_count", minimum=10), GroupState(), events(0, weight=12))

    assert [count for *_, count in fired] == [12]


def test_it_fires_once_per_timespan_during_a_long_attack():
    state, fired = advance(spec("event_count"), GroupState(), events(*range(0, 30, 5)))
    state, later = advance(spec("event_count"), state, events(*range(90, 110, 5), first_id=50))

    assert [(start, end) for start, end, *_ in fired] == [(0, 10)]
    # quiet until 10 + 60; the events after that count afresh
    assert [(start, end) for start, end, *_ in later] == [(90, 100)]


def test_it_counts_distinct_values():
    kind = spec("value_count")
    batch = events(0, 5, value="/usr/bin/id") + events(6, 7, value="/usr/bin/whoami", first_id=9)

    state, fired = advance(kind, GroupState(), batch)
    assert fired == []
    _, fired = advance(kind, state, events(30, value="/usr/bin/uname", first_id=20))

    assert [count for *_, count in fired] == [3]


def test_it_needs_every_rule_for_temporal():
    kind = spec("temporal", sources=("a", "b"), minimum=2)

    _, only_a = advance(kind, GroupState(), events(0, 5))
    _, both = advance(kind, GroupState(), events(0) + events(50, source="b", first_id=7))

    assert only_a == [] and len(both) == 1


def test_it_needs_the_listed_order_for_temporal_ordered():
    kind = spec("temporal_ordered", sources=("a", "b"), minimum=2)

    _, reversed_order = advance(kind, GroupState(), events(10) + events(0, source="b", first_id=9))
    _, in_order = advance(kind, GroupState(), events(0) + events(10, source="b", first_id=9))

    assert reversed_order == [] and len(in_order) == 1


def test_its_state_survives_a_round_trip_through_json():
    state, _ = advance(spec("event_count"), GroupState(), events(0, 10, value="x", weight=2))

    assert GroupState.from_json(state.as_json()) == state


# --- across batches, in the database ----------------------------------------------------

BRUTE_FORCE = """\
title: Password spraying
correlation:
  type: event_count
  rules:
    - failed_logon
  group-by:
    - SourceIp
  timespan: 10m
  condition:
    gte: 6
level: high
alert_type: brute_force
---
title: Failed logon
name: failed_logon
logsource:
  product: linux
  service: auth
detection:
  selection:
    Result: failure
  condition: selection
level: low
"""


def failures(account, n, *, src_ip="203.0.113.50", user="admin"):
    return [
        {
            "type": "login",
            "account": account.uid,
            "host_uuid": f"host-{i % 3}",
            "time": (timezone.now() - timedelta(seconds=n - i)).isoformat(),
            "user": f"{user}{i}",
            "src_ip": src_ip,
            "result": "failure",
            "method": "ssh",
        }
        for i in range(n)
    ]


def run():
    report = run_detection(lag=timedelta(0))
    assert not report.errors, report.errors
    return report


def spraying_alerts():
    return Alert.objects.filter(source=AlertSource.SIEM, name="Password spraying")


@pytest.fixture
def rule(tenancy):
    return save_custom_rule(tenancy.org, DetectionRuleSpec(BRUTE_FORCE))


def test_it_correlates_records_of_two_batches(tenancy, rule):
    scope = organisation_scope(tenancy.org)
    ingest_logs(failures(tenancy.account_a, 4), scope=scope)
    run()
    assert not spraying_alerts().exists()
    assert CorrelationState.objects.filter(rule=rule).count() == 1

    ingest_logs(failures(tenancy.account_a, 3, user="oracle"), scope=scope)
    run()

    alert = spraying_alerts().get()
    references = {digest[:16] for digest in LogRecord.objects.values_list("digest", flat=True)}
    assert {r["ref"] for r in alert.raw["records"]} < references
    assert len(alert.raw["records"]) == 6
    assert alert.raw["correlation"]["group"] == {"SourceIp": "203.0.113.50"}
    assert alert.raw["correlation"]["count"] == 6
    # A digest of the rule and the window: no row id of any table shows in it.
    assert re.fullmatch(r"siem-[0-9a-f]{40}", alert.source_uuid)
    assert ("ip", "203.0.113.50") in {(e.type, e.value) for e in alert.entities.all()}


def test_it_keeps_the_accounts_of_an_organisation_apart(tenancy, rule):
    scope = organisation_scope(tenancy.org)
    ingest_logs(failures(tenancy.account_a, 4) + failures(tenancy.account_b, 4), scope=scope)

    run()

    assert not spraying_alerts().exists()
    assert CorrelationState.objects.filter(rule=rule).count() == 2


def test_it_drops_the_state_of_a_group_after_its_timespan(tenancy, rule):
    ingest_logs(failures(tenancy.account_a, 2), scope=organisation_scope(tenancy.org))
    run()
    assert CorrelationState.objects.filter(rule=rule).exists()

    run_detection(now=timezone.now() + timedelta(minutes=11), lag=timedelta(0))

    assert not CorrelationState.objects.filter(rule=rule).exists()


LOGON_AFTER_SPRAY = (
    BRUTE_FORCE.replace("title: Password spraying\n", "title: Spraying\nname: spraying\n").replace(
        "alert_type: brute_force\n", ""
    )
    + """\
---
title: Logon after password spraying
correlation:
  type: temporal_ordered
  rules:
    - spraying
    - good_logon
  group-by:
    - SourceIp
  timespan: 30m
level: high
alert_type: suspicious_login
---
title: Logon
name: good_logon
logsource:
  product: linux
  service: auth
detection:
  selection:
    Result: success
  condition: selection
level: low
"""
)


def test_it_chains_a_correlation_on_another_across_batches(tenancy):
    save_custom_rule(tenancy.org, DetectionRuleSpec(LOGON_AFTER_SPRAY))
    scope = organisation_scope(tenancy.org)
    ingest_logs(failures(tenancy.account_a, 7), scope=scope)
    run()
    success = failures(tenancy.account_a, 1)[0] | {"result": "success", "user": "admin"}
    elsewhere = success | {"src_ip": "198.51.100.9", "user": "other"}

    ingest_logs([success, elsewhere], scope=scope)
    run()

    alert = Alert.objects.get(source=AlertSource.SIEM)
    assert alert.name == "Logon after password spraying"
    assert alert.type == "suspicious_login"
    assert {r["fields"]["result"] for r in alert.raw["records"]} == {"failure", "success"}
    assert len(alert.raw["records"]) == 7


def test_it_dry_runs_a_correlation_without_keeping_state(tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_logs(failures(tenancy.account_a, 7), scope=scope)

    result = dry_run(BRUTE_FORCE, scope)

    assert (result.kind, result.records, result.matches) == ("correlation", 7, 1)
    assert result.sample[0]["summary"].startswith("6 within the window, e.g. ")
    assert not CorrelationState.objects.exists()
    assert not spraying_alerts().exists()
