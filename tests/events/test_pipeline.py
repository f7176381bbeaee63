"""The aggregation pipeline: the product's rule (new alerts join only an
Unhandled event), risk, affected assets, occurrence times, whitelisting, the
alert cap of an event, custom and disabled rules, and the sweeper task."""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.facts import load_alert_facts
from alerts.handoff import hand_off
from alerts.models import Alert, PendingAlertBatch
from events import pipeline, services
from events.models import (
    AggregationRule,
    EventAlert,
    EventStatus,
    SecurityEvent,
)
from events.pipeline import process_batch
from events.queries import grouping_explanation
from events.rules import AggregationRuleSpec, save_custom_rule, set_rule_enabled
from events.services import change_event_status, mark_event_failed
from events.tasks import process_stale_batches
from secops.enums import RiskLevel
from tests import factories
from tests.conftest import ALERT_TIME, native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ATTACKER = {"type": "ip", "role": "attacker", "value": "203.0.113.7"}


@pytest.fixture
def ingest(tenancy, ingest_and_aggregate):
    """Ingest native alerts with Acme's organisation key, pipeline included."""

    def send(*items, scope=None):
        result = ingest_and_aggregate(list(items), scope=scope or organisation_scope(tenancy.org))
        assert result.errors == []
        return result

    return send


def at(minutes: int) -> str:
    return (ALERT_TIME + timedelta(minutes=minutes)).isoformat()


def mining_alert(account, **fields) -> dict:
    """Aggregated by "Cryptomining on a host": grouped by host, risk fixed to High."""
    fields.setdefault("name", "Mining pool connection")
    fields.setdefault("level", "low")
    return native_alert(account, type="mining", **fields)


def process_alert(account, **fields) -> dict:
    """Aggregated by "Malicious processes on a host": risk is the highest alert level."""
    fields.setdefault("name", "Malicious process")
    return native_alert(account, type="malicious_process", **fields)


def brute_force_alert(account, **fields) -> dict:
    """Aggregated by "Brute force and logon from one IP": grouped by attacker IP."""
    fields.setdefault("entities", [ATTACKER])
    return native_alert(account, type="brute_force", name="SSH brute force", **fields)


def events_of(rule_key: str):
    return SecurityEvent.objects.filter(rule__key=rule_key).order_by("id")


def alert_ids_of(event) -> set[str]:
    return set(event.alerts.values_list("source_uuid", flat=True))


# --- grouping -----------------------------------------------------------------


def test_it_gathers_the_alerts_of_one_group_into_one_unhandled_event(tenancy, ingest):
    ingest(*[mining_alert(tenancy.account_a, uuid=f"m{n}", occurred_at=at(n)) for n in range(3)])

    event = events_of("mining-on-host").get()
    assert (event.status, event.alert_count, event.account) == (
        EventStatus.UNHANDLED,
        3,
        tenancy.account_a,
    )
    assert alert_ids_of(event) == {"m0", "m1", "m2"}
    assert event.group_values == {
        "fields": {"asset": "host-web-01"},
        "display": {"asset": "web-01"},
        "window_seconds": 86400,
        "window_start": "2026-11-23T00:00:00+00:00",
        "window_end": "2026-11-24T00:00:00+00:00",
    }
    assert event.name == "Cryptomining on web-01"
    assert event.description == "Mining activity on host web-01."
    assert list(event.status_changes.values_list("from_status", "to_status")) == [
        ("", EventStatus.UNHANDLED)
    ]
    assert not PendingAlertBatch.objects.exists()


def test_it_keeps_the_groups_of_different_hosts_apart(tenancy, ingest):
    ingest(
        mining_alert(tenancy.account_a, uuid="on-web"),
        mining_alert(tenancy.account_a, uuid="on-db", asset={"uuid": "host-db", "name": "db-01"}),
    )

    events = {e.name: alert_ids_of(e) for e in events_of("mining-on-host")}
    assert events == {"Cryptomining on web-01": {"on-web"}, "Cryptomining on db-01": {"on-db"}}


def test_it_keeps_the_groups_of_different_accounts_apart(tenancy, ingest):
    ingest(mining_alert(tenancy.account_a), mining_alert(tenancy.account_b))

    assert sorted(e.account_id for e in events_of("mining-on-host")) == sorted(
        [tenancy.account_a.id, tenancy.account_b.id]
    )


def test_it_opens_a_new_event_in_the_next_window(tenancy, ingest):
    ingest(
        mining_alert(tenancy.account_a, uuid="monday", occurred_at=at(0)),
        mining_alert(tenancy.account_a, uuid="tuesday", occurred_at=at(24 * 60)),
    )

    windows = {e.group_values["window_start"]: alert_ids_of(e) for e in events_of("mining-on-host")}
    assert windows == {
        "2026-11-23T00:00:00+00:00": {"monday"},
        "2026-11-24T00:00:00+00:00": {"tuesday"},
    }


def test_it_leaves_an_alert_without_a_grouping_value_out_of_that_rule(tenancy, ingest):
    ingest(mining_alert(tenancy.account_a, asset=None))

    assert not events_of("mining-on-host").exists()
    assert not PendingAlertBatch.objects.exists()


def test_it_aggregates_alerts_that_arrive_in_separate_batches(tenancy, ingest):
    ingest(mining_alert(tenancy.account_a, uuid="first"))
    ingest(mining_alert(tenancy.account_a, uuid="second", occurred_at=at(5)))

    event = events_of("mining-on-host").get()
    assert (event.alert_count, alert_ids_of(event)) == (2, {"first", "second"})
    assert event.status_changes.count() == 1


def stored_mining_alerts(account, count: int) -> list:
    """Alerts of one group ("Cryptomining on a host"), stored without the pipeline."""
    asset = factories.make_asset(account)
    return [
        factories.make_alert(
            account, asset=asset, type="mining", level=RiskLevel.LOW, occurred_at=at(n)
        )
        for n in range(count)
    ]


def test_it_does_nothing_when_the_same_batch_is_processed_again(
    tenancy, django_capture_on_commit_callbacks
):
    alerts = stored_mining_alerts(tenancy.account_a, 2)
    with django_capture_on_commit_callbacks(execute=False):
        batch = hand_off([a.id for a in alerts])
    assert process_batch(batch.id) != []

    touched = process_batch(batch.id)

    assert touched == []
    assert events_of("mining-on-host").get().alert_count == 2
    assert EventAlert.objects.count() == 2


def test_it_takes_other_waiting_batches_along_with_the_one_it_was_given(
    tenancy, django_capture_on_commit_callbacks
):
    alerts = stored_mining_alerts(tenancy.account_a, 3)
    with django_capture_on_commit_callbacks(execute=False):
        batches = [hand_off([a.id]) for a in alerts]

    process_batch(batches[1].id)

    assert not PendingAlertBatch.objects.exists()
    assert events_of("mining-on-host").get().alert_count == 3
    # Their own messages then find nothing to do.
    assert process_batch(batches[0].id) == []
    assert process_batch(batches[2].id) == []
    assert EventAlert.objects.count() == 3


def test_it_takes_batches_along_up_to_its_alert_limit(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(pipeline, "MAX_ALERTS_PER_RUN", 4)
    asset = factories.make_asset(tenancy.account_a)

    def pending(size: int):
        alerts = [
            factories.make_alert(tenancy.account_a, asset=asset, type="mining") for _ in range(size)
        ]
        with django_capture_on_commit_callbacks(execute=False):
            return hand_off([a.id for a in alerts])

    given, along, too_big, after = pending(2), pending(1), pending(2), pending(1)

    process_batch(given.id)

    # The oldest first, and none past one that does not fit.
    assert set(PendingAlertBatch.objects.values_list("id", flat=True)) == {too_big.id, after.id}
    assert along.id not in PendingAlertBatch.objects.values_list("id", flat=True)
    assert events_of("mining-on-host").get().alert_count == 3


# --- the product's rule: new alerts join only an Unhandled event ----------------


def test_it_adds_a_new_alert_to_the_groups_unhandled_event(tenancy, ingest):
    ingest(mining_alert(tenancy.account_a, uuid="first"))
    event = events_of("mining-on-host").get()

    ingest(mining_alert(tenancy.account_a, uuid="second", occurred_at=at(30)))

    event.refresh_from_db()
    assert events_of("mining-on-host").count() == 1
    assert (event.status, event.alert_count, alert_ids_of(event)) == (
        EventStatus.UNHANDLED,
        2,
        {"first", "second"},
    )


def set_status(event, status):
    if status == EventStatus.FAILED:
        mark_event_failed(event, note="Blocking 203.0.113.7 failed.")
    else:
        change_event_status(event, status)


@pytest.mark.parametrize("status", [EventStatus.HANDLING, EventStatus.HANDLED, EventStatus.FAILED])
def test_it_opens_a_new_event_when_the_groups_event_is_no_longer_unhandled(tenancy, ingest, status):
    ingest(mining_alert(tenancy.account_a, uuid="first"))
    old = events_of("mining-on-host").get()
    set_status(old, status)

    ingest(mining_alert(tenancy.account_a, uuid="second", occurred_at=at(30)))

    old.refresh_from_db()
    old_event, new_event = events_of("mining-on-host")
    assert old_event == old
    assert (old.status, old.alert_count, alert_ids_of(old)) == (status, 1, {"first"})
    assert (new_event.status, new_event.alert_count, alert_ids_of(new_event)) == (
        EventStatus.UNHANDLED,
        1,
        {"second"},
    )
    assert new_event.group_key == old.group_key
    assert list(new_event.status_changes.values_list("from_status", "to_status")) == [
        ("", EventStatus.UNHANDLED)
    ]


@pytest.mark.parametrize("status", [EventStatus.HANDLING, EventStatus.HANDLED, EventStatus.FAILED])
def test_it_keeps_adding_to_the_new_event_after_the_old_one_closed(tenancy, ingest, status):
    ingest(mining_alert(tenancy.account_a))
    set_status(events_of("mining-on-host").get(), status)
    ingest(mining_alert(tenancy.account_a, occurred_at=at(1)))

    ingest(mining_alert(tenancy.account_a, occurred_at=at(2)))

    assert [(e.status, e.alert_count) for e in events_of("mining-on-host")] == [
        (status, 1),
        (EventStatus.UNHANDLED, 2),
    ]


def test_it_refuses_to_reopen_the_old_event_once_a_new_one_collects_the_group(tenancy, ingest):
    ingest(mining_alert(tenancy.account_a, uuid="first"))
    old = events_of("mining-on-host").get()
    change_event_status(old, EventStatus.HANDLED)
    ingest(mining_alert(tenancy.account_a, uuid="second", occurred_at=at(30)))

    with pytest.raises(services.EventStatusError):
        change_event_status(old, EventStatus.UNHANDLED)

    old.refresh_from_db()
    assert old.status == EventStatus.HANDLED
    assert events_of("mining-on-host").filter(status=EventStatus.UNHANDLED).count() == 1


# --- risk, assets and occurrence times ------------------------------------------


def test_it_takes_the_highest_alert_level_as_the_event_risk(tenancy, ingest):
    ingest(process_alert(tenancy.account_a, level="low"))
    event = events_of("malicious-processes-on-host").get()
    assert event.risk == RiskLevel.LOW

    ingest(process_alert(tenancy.account_a, level="medium", occurred_at=at(1)))
    event.refresh_from_db()
    assert event.risk == RiskLevel.MEDIUM

    ingest(process_alert(tenancy.account_a, level="low", occurred_at=at(2)))
    event.refresh_from_db()
    assert event.risk == RiskLevel.MEDIUM


def test_it_keeps_the_risk_a_rule_fixes(tenancy, ingest):
    ingest(
        mining_alert(tenancy.account_a, level="low"),
        mining_alert(tenancy.account_a, level="medium", occurred_at=at(1)),
    )

    assert events_of("mining-on-host").get().risk == RiskLevel.HIGH


def test_it_keeps_affected_assets_and_occurrence_times_current(tenancy, ingest):
    ingest(brute_force_alert(tenancy.account_a, occurred_at=at(0)))
    event = events_of("brute-force-then-login").get()
    assert list(event.affected_assets.values_list("uuid", flat=True)) == ["host-web-01"]

    ingest(
        brute_force_alert(tenancy.account_a, occurred_at=at(-60), asset={"uuid": "host-db"}),
        brute_force_alert(tenancy.account_a, occurred_at=at(90), asset={"uuid": "host-mail"}),
        brute_force_alert(tenancy.account_a, occurred_at=at(30)),
    )

    event.refresh_from_db()
    assert event.alert_count == 4
    assert event.first_occurred_at == ALERT_TIME - timedelta(minutes=60)
    assert event.last_occurred_at == ALERT_TIME + timedelta(minutes=90)
    assert sorted(event.affected_assets.values_list("uuid", flat=True)) == [
        "host-db",
        "host-mail",
        "host-web-01",
    ]


# --- why grouped --------------------------------------------------------------


def test_it_explains_why_alerts_are_grouped(tenancy, ingest):
    ingest(
        brute_force_alert(tenancy.account_a),
        native_alert(
            tenancy.account_a,
            type="suspicious_login",
            entities=[{"type": "user", "name": "root"}],
        ),
        native_alert(
            tenancy.account_a,
            type="malicious_file",
            entities=[{"type": "file", "path": "/tmp/x", "md5": "0" * 32}],
        ),
        native_alert(tenancy.account_a, level="high"),
    )

    explanations = {
        key: grouping_explanation(events_of(key).get())
        for key in (
            "brute-force-then-login",
            "suspicious-logins-of-user",
            "malicious-file-on-several-hosts",
            "high-risk-host-alert",
        )
    }
    assert explanations == {
        "brute-force-then-login": "same attacker IP 203.0.113.7 within 24 h",
        "suspicious-logins-of-user": "same user root and same host web-01 within 24 h",
        "malicious-file-on-several-hosts": f"same file hash {'0' * 32} within 7 days",
        "high-risk-host-alert": "a single alert that opens an event on its own",
    }


def test_it_explains_the_window_of_a_custom_rule(tenancy, ingest):
    save_custom_rule(
        tenancy.org,
        AggregationRuleSpec(
            name="Scans of one domain",
            match_types=("scan",),
            group_by=("domain", "source"),
            window_seconds=90 * 60,
            event_name_template="Scans of {domain}",
        ),
    )

    ingest(
        native_alert(tenancy.account_a, type="scan", entities=[{"type": "domain", "value": "a.io"}])
    )

    event = SecurityEvent.objects.get(rule__organisation=tenancy.org)
    assert event.name == "Scans of a.io"
    assert (
        grouping_explanation(event)
        == "same domain a.io and same data source security_center within 90 min"
    )


# --- whitelisting -------------------------------------------------------------


def whitelist(tenancy, scenario, *conditions, name="Known noise"):
    from whitelist.services import ConditionSpec, GroupSpec, save_group

    return save_group(
        GroupSpec(name=name, scenario=scenario, conditions=[ConditionSpec(*c) for c in conditions]),
        organisation_scope(tenancy.org),
        allow_global=True,
    )


def test_it_never_aggregates_a_whitelisted_alert(tenancy, ingest):
    group = whitelist(tenancy, "mining", ("alert_name", "equals", "Known scanner"))

    ingest(
        mining_alert(tenancy.account_a, uuid="allowed", name="Known scanner"),
        mining_alert(tenancy.account_a, uuid="real", occurred_at=at(1)),
    )

    allowed, real = Alert.objects.get(source_uuid="allowed"), Alert.objects.get(source_uuid="real")
    assert (allowed.whitelisted, real.whitelisted) == (True, False)
    assert allowed.whitelist_match.group == group
    assert not PendingAlertBatch.objects.exists()
    assert not EventAlert.objects.filter(alert=allowed).exists()
    assert alert_ids_of(events_of("mining-on-host").get()) == {"real"}
    group.refresh_from_db()
    assert (group.hit_count, group.last_hit_at is not None) == (1, True)


def test_it_opens_no_event_for_a_batch_that_is_all_whitelisted(tenancy, ingest):
    whitelist(tenancy, "mining", ("alert_name", "starts_with", "Mining"))

    ingest(mining_alert(tenancy.account_a), mining_alert(tenancy.account_a, level="high"))

    assert SecurityEvent.objects.count() == 0
    assert Alert.objects.filter(whitelisted=True).count() == 2


# --- the alert cap of an event --------------------------------------------------


@pytest.fixture
def cap_of_five(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_ALERTS_PER_EVENT", 5)


def mining_batch(account, minutes) -> list[dict]:
    return [mining_alert(account, uuid=f"m{m}", occurred_at=at(m)) for m in minutes]


@pytest.mark.usefixtures("cap_of_five")
def test_it_continues_a_full_event_in_a_new_one(tenancy, ingest):
    ingest(*mining_batch(tenancy.account_a, range(3)))

    ingest(*mining_batch(tenancy.account_a, range(3, 7)))

    full, continuation = events_of("mining-on-host")
    assert continuation.continues == full
    assert (full.alert_count, alert_ids_of(full)) == (5, {"m0", "m1", "m2", "m3", "m4"})
    assert (continuation.alert_count, alert_ids_of(continuation)) == (2, {"m5", "m6"})
    assert (full.first_occurred_at, full.last_occurred_at) == (
        ALERT_TIME,
        ALERT_TIME + timedelta(minutes=4),
    )
    assert (continuation.first_occurred_at, continuation.last_occurred_at) == (
        ALERT_TIME + timedelta(minutes=5),
        ALERT_TIME + timedelta(minutes=6),
    )
    assert full.affected_assets.get() == continuation.affected_assets.get()
    assert list(continuation.status_changes.values_list("to_status", flat=True)) == [
        EventStatus.UNHANDLED
    ]


@pytest.mark.usefixtures("cap_of_five")
def test_it_gives_the_groups_unhandled_slot_to_the_continuation(tenancy, ingest):
    ingest(*mining_batch(tenancy.account_a, range(7)))
    full, continuation = events_of("mining-on-host")

    ingest(*mining_batch(tenancy.account_a, [7]))

    full.refresh_from_db()
    continuation.refresh_from_db()
    assert (full.alert_count, continuation.alert_count) == (5, 3)
    slot = SecurityEvent.objects.filter(
        account=tenancy.account_a,
        rule=continuation.rule,
        group_key=continuation.group_key,
        status=EventStatus.UNHANDLED,
    )
    assert list(slot) == [continuation]
    assert full.group_key != continuation.group_key
    # The full event still says why its alerts are together.
    assert grouping_explanation(full) == "same host web-01 within 24 h"


@pytest.mark.usefixtures("cap_of_five")
def test_it_continues_an_event_filled_to_the_cap_exactly(tenancy, ingest):
    ingest(*mining_batch(tenancy.account_a, range(5)))
    assert events_of("mining-on-host").get().alert_count == 5

    ingest(*mining_batch(tenancy.account_a, [5]))

    full, continuation = events_of("mining-on-host")
    assert (full.alert_count, continuation.alert_count) == (5, 1)
    assert continuation.continues == full
    assert alert_ids_of(continuation) == {"m5"}


def test_it_chains_continuations(tenancy, ingest, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_ALERTS_PER_EVENT", 2)

    for minute in range(5):
        ingest(*mining_batch(tenancy.account_a, [minute]))

    first, second, third = events_of("mining-on-host")
    assert [e.alert_count for e in (first, second, third)] == [2, 2, 1]
    assert (first.continues, second.continues, third.continues) == (None, first, second)
    assert EventAlert.objects.count() == 5
    assert events_of("mining-on-host").filter(group_key=third.group_key).count() == 1


# --- custom and disabled rules --------------------------------------------------


def custom_rule(organisation, **changes):
    spec = AggregationRuleSpec(
        name="Port scans of a host",
        match_types=("port_scan",),
        group_by=("asset",),
        window_seconds=3600,
        event_name_template="Port scans of {asset_name}",
    )
    return save_custom_rule(organisation, replace(spec, **changes))


def test_it_applies_an_organisations_custom_rule_to_its_own_alerts_only(tenancy, ingest):
    rule = custom_rule(tenancy.org)

    ingest(native_alert(tenancy.account_a, type="port_scan"))
    ingest(
        native_alert(tenancy.account_x, type="port_scan"),
        scope=organisation_scope(tenancy.other_org),
    )

    event = SecurityEvent.objects.get(rule=rule)
    assert (event.account, event.name) == (tenancy.account_a, "Port scans of web-01")
    assert not PendingAlertBatch.objects.exists()
    assert not SecurityEvent.objects.filter(account=tenancy.account_x).exists()


def test_it_stops_applying_a_disabled_custom_rule(tenancy, ingest):
    rule = custom_rule(tenancy.org)
    set_rule_enabled(rule, False, tenancy.org)

    ingest(native_alert(tenancy.account_a, type="port_scan"))

    assert not SecurityEvent.objects.exists()


def test_it_disables_a_predefined_rule_for_one_organisation_only(tenancy, ingest):
    mining = AggregationRule.objects.get(key="mining-on-host", organisation=None)
    set_rule_enabled(mining, False, tenancy.org)

    ingest(mining_alert(tenancy.account_a))
    ingest(mining_alert(tenancy.account_x), scope=organisation_scope(tenancy.other_org))

    assert [e.account for e in events_of("mining-on-host")] == [tenancy.account_x]


def test_it_applies_a_predefined_rule_again_once_reenabled(tenancy, ingest):
    mining = AggregationRule.objects.get(key="mining-on-host", organisation=None)
    set_rule_enabled(mining, False, tenancy.org)
    set_rule_enabled(mining, True, tenancy.org)

    ingest(mining_alert(tenancy.account_a))

    assert events_of("mining-on-host").count() == 1


def test_it_skips_a_stored_rule_with_a_broken_pattern_without_losing_the_batch(tenancy, ingest):
    factories.make_rule(organisation=tenancy.org, name_pattern="([unclosed", match_types=["mining"])

    ingest(mining_alert(tenancy.account_a))

    assert events_of("mining-on-host").count() == 1
    assert not PendingAlertBatch.objects.exists()


def test_it_matches_a_custom_rule_on_name_pattern_level_and_source(tenancy, ingest):
    rule = custom_rule(
        tenancy.org,
        match_types="",
        match_sources=["waf"],
        match_levels=[RiskLevel.HIGH],
        name_pattern=r"^sql\s+injection",
        group_by=["attacker_ip"],
        event_name_template="SQL injection from {attacker_ip}",
    )

    ingest(
        native_alert(
            tenancy.account_a,
            uuid="hit",
            source="waf",
            level="high",
            name="SQL Injection attempt",
            entities=[ATTACKER],
        ),
        native_alert(
            tenancy.account_a,
            uuid="low",
            source="waf",
            level="low",
            name="SQL injection attempt",
            entities=[ATTACKER],
        ),
        native_alert(
            tenancy.account_a,
            uuid="name",
            source="waf",
            level="high",
            name="XSS attempt",
            entities=[ATTACKER],
        ),
        native_alert(
            tenancy.account_a,
            uuid="source",
            source="cloud_firewall",
            level="high",
            name="SQL injection attempt",
            entities=[ATTACKER],
        ),
    )

    event = SecurityEvent.objects.get(rule=rule)
    assert (event.name, alert_ids_of(event)) == ("SQL injection from 203.0.113.7", {"hit"})


# --- the sweeper ----------------------------------------------------------------


def test_it_takes_batches_whose_pipeline_never_ran(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    asset = factories.make_asset(tenancy.account_a)

    def pending(minutes_ago: int):
        alert = factories.make_alert(tenancy.account_a, type="mining", asset=asset)
        with django_capture_on_commit_callbacks(execute=False):  # the task is "lost"
            batch = hand_off([alert.id])
        PendingAlertBatch.objects.filter(id=batch.id).update(
            created_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
        return alert, batch

    stale_alert, stale = pending(10)
    fresh_alert, _ = pending(0)
    queued = []
    monkeypatch.setattr("events.tasks.process_alert_batch.delay", queued.append)

    assert process_stale_batches(older_than_seconds=120) == 1

    assert queued == [stale.id]
    process_batch(stale.id)
    # The fresh batch, waiting meanwhile, went along with it.
    assert not PendingAlertBatch.objects.exists()
    assert alert_ids_of(events_of("mining-on-host").get()) == {
        stale_alert.source_uuid,
        fresh_alert.source_uuid,
    }


def test_it_takes_the_oldest_stale_batches_first_up_to_a_limit(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    alerts = [factories.make_alert(tenancy.account_a, type="mining") for _ in range(5)]
    with django_capture_on_commit_callbacks(execute=False):
        batches = [hand_off([a.id]) for a in alerts]
    for minutes, batch in enumerate(batches):
        PendingAlertBatch.objects.filter(id=batch.id).update(
            created_at=timezone.now() - timedelta(hours=1) + timedelta(minutes=minutes)
        )
    queued = []
    monkeypatch.setattr("events.tasks.process_alert_batch.delay", queued.append)

    assert process_stale_batches(older_than_seconds=60, limit=3) == 3

    assert queued == [b.id for b in batches[:3]]


def test_it_reads_the_entitys_attributes_for_a_link_stored_without_its_own(tenancy):
    """Links stored before attributes were kept per alert have none of their own."""
    from alerts.models import AlertEntity, Entity

    alert = factories.make_alert(tenancy.account_a)
    entity = Entity.objects.create(
        account=tenancy.account_a,
        type="file",
        value="/tmp/x",
        digest=Entity.digest_for("file", "/tmp/x"),
        attributes={"path": "/tmp/x"},
        first_seen_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )
    AlertEntity.objects.create(alert=alert, entity=entity, role="related")

    ((facts, _),) = load_alert_facts([alert.id])

    assert facts.entities == (("file", "related", "/tmp/x", {"path": "/tmp/x"}),)
