"""Ingestion services: validation, all-or-nothing versus partial batches,
idempotency, and a constant number of statements per batch."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from alerts.models import (
    Alert,
    AlertEntity,
    Asset,
    Entity,
    IngestionKind,
    IngestionRejection,
    IngestionStat,
    LogRecord,
    PendingAlertBatch,
)
from alerts.services import MAX_RECORDED_REJECTIONS, ingest_alerts, ingest_logs
from events.models import EventAlert, EventStatusChange, SecurityEvent
from secops import db
from secops.enums import RegionGroup, RiskLevel
from secops.scope import Scope
from tests.conftest import ALERT_TIME, native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ALERT_TIME_MS = int(ALERT_TIME.timestamp()) * 1000
REQUIRED_ALERT_FIELDS = ["source", "uuid", "account", "type", "name", "level", "occurred_at"]


def scope_of_account(account) -> Scope:
    """What a key of one account may reach."""
    return Scope.for_accounts(account.organisation_id, [account.id])


def row_counts() -> dict[str, int]:
    models = (
        Alert,
        Asset,
        Entity,
        AlertEntity,
        SecurityEvent,
        EventAlert,
        EventStatusChange,
        IngestionStat,
        LogRecord,
    )
    return {model.__name__: model.objects.count() for model in models}


def event_alert_counts() -> list[tuple[int, int]]:
    return list(SecurityEvent.objects.order_by("id").values_list("id", "alert_count"))


def native_log(owner, **fields) -> dict:
    log = {
        "type": "process",
        "account": owner.uid,
        "host_uuid": "host-web-01",
        "time": ALERT_TIME.isoformat(),
        "pid": 4242,
        "path": "/usr/bin/curl",
        "cmdline": "curl http://198.51.100.20/x.sh",
    }
    log.update(fields)
    return log


def malicious_process_alert(account, **fields) -> dict:
    """An alert the predefined rule "Malicious processes on a host" aggregates."""
    return native_alert(
        account,
        type="malicious_process",
        name="Malicious process",
        entities=[
            {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
            {"type": "process", "path": "/tmp/kworkerd", "cmdline": "/tmp/kworkerd -o pool:3333"},
            {"type": "file", "path": "/tmp/kworkerd", "sha256": "ab" * 32},
        ],
        **fields,
    )


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize("missing", REQUIRED_ALERT_FIELDS)
def test_it_names_a_missing_required_field_and_the_item_it_is_missing_from(tenancy, missing):
    incomplete = native_alert(tenancy.account_a)
    del incomplete[missing]

    result = ingest_alerts(
        [native_alert(tenancy.account_a), incomplete], scope=organisation_scope(tenancy.org)
    )

    assert result.errors == [{"index": 1, "field": missing, "message": "Field required"}]
    assert result.accepted == 0
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"level": "urgent"},
            "level",
            "unknown level 'urgent': use high, medium, low (or serious, suspicious, remind)",
        ),
        ({"occurred_at": "yesterday"}, "occurred_at", "not an ISO-8601 time: 'yesterday'"),
        (
            {"occurred_at": ALERT_TIME_MS // 1000},
            "occurred_at",
            "epoch time must be in milliseconds (a 13-digit number)",
        ),
        (
            {"occurred_at": str(ALERT_TIME_MS // 1000)},
            "occurred_at",
            "epoch time must be in milliseconds (a 13-digit number)",
        ),
        ({"uuid": "u" * 129}, "uuid", "String should have at most 128 characters"),
        ({"type": "Web Shell"}, "type", "String should match pattern '^[a-z0-9_]+$'"),
        (
            {"source": "antivirus"},
            "source",
            "Input should be 'security_center', 'waf', 'cloud_firewall' or 'siem'",
        ),
        (
            {"asset": {"uuid": "h-1", "public_ip": "203.0.113.300"}},
            "asset.public_ip",
            "not an IP address: '203.0.113.300'",
        ),
        (
            {"asset": {"name": "web-01"}},
            "asset",
            "an asset needs a uuid, an instance_id or an IP address",
        ),
        (
            {"entities": [{"type": "ip", "role": "attacker", "value": "not-an-ip"}]},
            "entities.0",
            "not an IP address: 'not-an-ip'",
        ),
        (
            {"entities": [{"type": "file", "role": "related"}]},
            "entities.0",
            "a file entity needs sha256 or md5 or path",
        ),
        (
            {"entities": [{"type": "process", "pid": 12}]},
            "entities.0",
            "a process entity needs path or cmdline",
        ),
        (
            {"entities": [{"type": "user", "logon_type": "ssh"}]},
            "entities.0",
            "a user entity needs name",
        ),
        (
            {"entities": [{"type": "file", "md5": "xyz"}]},
            "entities.0.md5",
            "String should match pattern '^[0-9a-f]{32}$'",
        ),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_it_refuses_a_bad_value_naming_its_field(tenancy, changes, field, message):
    result = ingest_alerts(
        [native_alert(tenancy.account_a, **changes)], scope=organisation_scope(tenancy.org)
    )

    assert result.errors == [{"index": 0, "field": field, "message": message}]
    assert Alert.objects.count() == 0


@pytest.mark.parametrize("occurred_at", [10**20, str(10**20), 10**30])
def test_it_refuses_an_epoch_time_out_of_range_naming_its_field(tenancy, occurred_at):
    result = ingest_alerts(
        [native_alert(tenancy.account_a, occurred_at=occurred_at)],
        scope=organisation_scope(tenancy.org),
    )

    assert [(e["index"], e["field"]) for e in result.errors] == [(0, "occurred_at")]
    assert result.errors[0]["message"]
    assert Alert.objects.count() == 0


def test_it_refuses_a_boolean_level(tenancy):
    result = ingest_alerts(
        [native_alert(tenancy.account_a, level=True)], scope=organisation_scope(tenancy.org)
    )

    assert [(e["index"], e["field"]) for e in result.errors] == [(0, "level")]
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(
    ("level", "stored"),
    [
        ("serious", RiskLevel.HIGH),
        ("suspicious", RiskLevel.MEDIUM),
        ("remind", RiskLevel.LOW),
        ("High", RiskLevel.HIGH),
        ("low", RiskLevel.LOW),
        (2, RiskLevel.MEDIUM),
    ],
)
def test_it_accepts_the_cloud_level_words_and_our_own(tenancy, level, stored):
    result = ingest_alerts(
        [native_alert(tenancy.account_a, level=level)], scope=organisation_scope(tenancy.org)
    )

    assert result.errors == []
    assert Alert.objects.get().level == stored


@pytest.mark.parametrize(
    "occurred_at",
    [
        ALERT_TIME_MS,
        str(ALERT_TIME_MS),
        "2026-11-23T12:00:00Z",
        "2026-11-23T20:00:00+08:00",
        "2026-11-23T12:00:00",  # no offset: UTC
    ],
)
def test_it_accepts_epoch_milliseconds_and_iso_times(tenancy, occurred_at):
    result = ingest_alerts(
        [native_alert(tenancy.account_a, occurred_at=occurred_at)],
        scope=organisation_scope(tenancy.org),
    )

    assert result.errors == []
    assert Alert.objects.get().occurred_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_it_refuses_an_account_outside_the_keys_scope(tenancy):
    result = ingest_alerts(
        [
            native_alert(tenancy.account_a),
            native_alert(tenancy.account_b),
            native_alert("123456789"),  # no such account anywhere
        ],
        scope=scope_of_account(tenancy.account_a),
        partial=True,
    )

    assert result.errors == [
        {
            "index": 1,
            "field": "account",
            "message": "account 2222222222222222 is unknown or not in this key's scope",
        },
        {
            "index": 2,
            "field": "account",
            "message": "account 123456789 is unknown or not in this key's scope",
        },
    ]
    assert list(Alert.objects.values_list("account_id", flat=True)) == [tenancy.account_a.id]


def test_it_refuses_an_account_of_another_organisation(tenancy):
    result = ingest_alerts([native_alert(tenancy.account_x)], scope=organisation_scope(tenancy.org))

    assert [(e["index"], e["field"]) for e in result.errors] == [(0, "account")]
    assert Alert.objects.count() == 0


def test_it_stores_nothing_of_a_batch_with_one_bad_item_by_default(tenancy):
    items = [
        malicious_process_alert(tenancy.account_a),
        malicious_process_alert(tenancy.account_a, level="urgent"),
        malicious_process_alert(tenancy.account_b),
    ]

    result = ingest_alerts(items, scope=organisation_scope(tenancy.org))

    assert result.accepted == 0
    assert result.duplicates == 0
    assert result.stored_ids == []
    assert [(e["index"], e["field"]) for e in result.errors] == [(1, "level")]
    assert row_counts() == dict.fromkeys(row_counts(), 0)


def test_it_records_every_refused_item_even_when_the_batch_is_refused(tenancy):
    items = [
        native_alert(tenancy.account_a, source="waf", level="urgent"),
        native_alert(tenancy.account_a),
        native_alert(tenancy.account_b, occurred_at="soon"),
        native_alert("4444444444444444"),
        "not an object",
    ]

    ingest_alerts(items, scope=organisation_scope(tenancy.org))

    rejections = IngestionRejection.objects.order_by("index")
    assert [(r.index, r.field, r.source) for r in rejections] == [
        (0, "level", "waf"),
        (2, "occurred_at", "security_center"),
        (3, "account", "security_center"),
        (4, "", ""),
    ]
    assert rejections[2].account is None  # no such account
    assert {r.organisation_id for r in rejections} == {tenancy.org.id}
    assert {r.kind for r in rejections} == {IngestionKind.ALERT}
    assert rejections[0].message.startswith("unknown level 'urgent'")
    assert '"level": "urgent"' in rejections[0].excerpt
    assert rejections[3].message == "each item must be a JSON object"


def test_it_reports_every_error_and_records_the_first_hundred(tenancy):
    items = [native_alert(tenancy.account_a, level="urgent") for _ in range(150)]

    result = ingest_alerts(items, scope=organisation_scope(tenancy.org))

    assert [e["index"] for e in result.errors] == list(range(150))
    recorded = IngestionRejection.objects.values_list("index", flat=True)
    assert sorted(recorded) == list(range(MAX_RECORDED_REJECTIONS))


def test_it_ties_a_refused_item_to_the_account_it_names(tenancy):
    ingest_alerts(
        [native_alert(tenancy.account_a), native_alert(tenancy.account_b, occurred_at="soon")],
        scope=organisation_scope(tenancy.org),
    )

    rejection = IngestionRejection.objects.get()
    assert rejection.account == tenancy.account_b
    # Account A's view does not show what was refused for account B.
    assert not IngestionRejection.objects.in_scope(scope_of_account(tenancy.account_a)).exists()


def test_it_stores_the_valid_items_of_a_partial_batch_and_reports_request_indexes(tenancy):
    items = [
        native_alert(tenancy.account_a, uuid="first"),
        native_alert(tenancy.account_a, uuid="bad-level", level="urgent"),
        native_alert(tenancy.account_b, uuid="third"),
        native_alert(tenancy.account_a, uuid="bad-time", occurred_at="later"),
        native_alert(tenancy.account_a, uuid="fifth"),
    ]

    result = ingest_alerts(items, scope=organisation_scope(tenancy.org), partial=True)

    assert result.accepted == 3
    assert [(e["index"], e["field"]) for e in result.errors] == [(1, "level"), (3, "occurred_at")]
    assert set(Alert.objects.values_list("source_uuid", flat=True)) == {"first", "third", "fifth"}
    assert sorted(result.stored_ids) == sorted(Alert.objects.values_list("id", flat=True))
    assert IngestionRejection.objects.count() == 2


def test_it_stores_what_an_alert_says(tenancy):
    item = native_alert(
        tenancy.account_a,
        source="waf",
        uuid="waf-1",
        type="web_attack",
        name="SQL injection",
        level="serious",
        asset={
            "uuid": "host-9",
            "instance_id": "i-9",
            "name": "shop",
            "region": "ap-southeast-1",
            "public_ip": "198.51.100.9",
            "os": "Debian 12",
        },
        entities=[
            {"type": "ip", "role": "attacker", "value": " 203.0.113.7 "},
            {"type": "domain", "role": "victim", "value": "Shop.Example.COM."},
        ],
        attck={"tactic": "Initial Access", "technique": "T1190"},
        description="union select",
        exceptions=[{"name": "Rule", "value": "sqli-1"}],
        raw={"original": {"nested": [1, 2]}},
    )

    ingest_alerts([item], scope=organisation_scope(tenancy.org))

    alert = Alert.objects.select_related("asset").get()
    assert (alert.source, alert.source_uuid, alert.type, alert.name, alert.level) == (
        "waf",
        "waf-1",
        "web_attack",
        "SQL injection",
        RiskLevel.HIGH,
    )
    assert (alert.tactic, alert.technique, alert.description) == (
        "Initial Access",
        "T1190",
        "union select",
    )
    assert alert.exceptions == [{"name": "Rule", "value": "sqli-1"}]
    assert alert.raw == {"original": {"nested": [1, 2]}}
    # The account's home region is China; the asset's cloud region decides.
    assert alert.region == RegionGroup.OUTSIDE_CHINA
    assert (alert.asset.uuid, alert.asset.name, alert.asset.region) == (
        "host-9",
        "shop",
        RegionGroup.OUTSIDE_CHINA,
    )
    links = {(link.entity.type, link.entity.value, link.role) for link in alert.entity_links.all()}
    assert links == {("ip", "203.0.113.7", "attacker"), ("domain", "shop.example.com", "victim")}
    assert Entity.objects.get(type="ip").malicious is True
    # The pipeline has not run (no commit in this test): the batch waits for it.
    assert PendingAlertBatch.objects.get().alert_ids == [alert.id]


def test_it_takes_the_region_of_an_alert_without_asset_from_its_account(tenancy):
    ingest_alerts(
        [native_alert(tenancy.account_b, asset=None)], scope=organisation_scope(tenancy.org)
    )

    alert = Alert.objects.get()
    assert alert.asset is None
    assert alert.region == RegionGroup.OUTSIDE_CHINA


def test_it_keeps_a_hosts_region_when_a_later_alert_does_not_name_it(tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_alerts(
        [native_alert(tenancy.account_a, asset={"uuid": "h-1", "region": "ap-southeast-1"})],
        scope=scope,
    )

    ingest_alerts([native_alert(tenancy.account_a, asset={"uuid": "h-1"})], scope=scope)

    asset = Asset.objects.get()
    assert (asset.cloud_region, asset.region) == ("ap-southeast-1", RegionGroup.OUTSIDE_CHINA)
    assert list(Alert.objects.values_list("region", flat=True)) == [
        RegionGroup.OUTSIDE_CHINA,
        RegionGroup.OUTSIDE_CHINA,
    ]


def test_it_keeps_known_asset_fields_that_a_later_alert_leaves_empty(tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_alerts(
        [
            native_alert(
                tenancy.account_a,
                asset={
                    "uuid": "h-1",
                    "name": "web-01",
                    "os": "Ubuntu",
                    "public_ip": "198.51.100.1",
                },
            )
        ],
        scope=scope,
    )
    ingest_alerts(
        [native_alert(tenancy.account_a, asset={"uuid": "h-1", "private_ip": "10.0.0.5"})],
        scope=scope,
    )

    asset = Asset.objects.get()
    assert (asset.name, asset.os, asset.public_ip, asset.private_ip) == (
        "web-01",
        "Ubuntu",
        "198.51.100.1",
        "10.0.0.5",
    )
    assert Alert.objects.filter(asset=asset).count() == 2


def asset_writes(items, scope) -> list[str]:
    """The statements that write alerts_asset while ``items`` are ingested."""
    with CaptureQueriesContext(connection) as queries:
        ingest_alerts(items, scope=scope)
    return [
        q["sql"]
        for q in queries.captured_queries
        if "alerts_asset" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    ]


def test_it_writes_no_asset_an_alert_names_as_it_is_known(tenancy):
    scope = organisation_scope(tenancy.org)
    host = {"uuid": "h-1", "name": "web-01", "public_ip": "198.51.100.1", "region": "cn-hangzhou"}
    assert asset_writes([native_alert(tenancy.account_a, asset=host)], scope)

    # The same host again, and with fields left empty: nothing to change.
    again = [
        native_alert(tenancy.account_a, asset=host),
        native_alert(tenancy.account_a, asset={"uuid": "h-1", "name": "web-01"}),
    ]
    assert asset_writes(again[:1], scope) == []
    assert asset_writes(again[1:], scope) == []
    assert Alert.objects.filter(asset=Asset.objects.get()).count() == 3


def test_it_writes_an_asset_whose_values_change(tenancy):
    scope = organisation_scope(tenancy.org)
    host = {"uuid": "h-1", "name": "web-01", "public_ip": "198.51.100.1"}
    ingest_alerts([native_alert(tenancy.account_a, asset=host)], scope=scope)

    renamed = {**host, "name": "web-01-renamed", "region": "ap-southeast-1"}
    assert asset_writes([native_alert(tenancy.account_a, asset=renamed)], scope)
    # A new host beside a known one is written, the known one kept as it is.
    known_and_new = [
        native_alert(tenancy.account_a, asset=renamed),
        native_alert(tenancy.account_a, asset={"uuid": "h-2", "name": "db-01"}),
    ]
    assert asset_writes(known_and_new, scope)

    assets = {a.uuid: a for a in Asset.objects.all()}
    assert (assets["h-1"].name, assets["h-1"].region) == (
        "web-01-renamed",
        RegionGroup.OUTSIDE_CHINA,
    )
    assert assets["h-2"].name == "db-01"
    assert set(Alert.objects.values_list("asset__uuid", flat=True)) == {"h-1", "h-2"}


def test_it_links_an_asset_known_only_by_address_to_the_accounts_host_there(tenancy):
    ingest_alerts(
        [native_alert(tenancy.account_a, asset={"uuid": "h-a", "public_ip": "198.51.100.10"})],
        scope=scope_of_account(tenancy.account_a),
    )
    ingest_alerts(
        [native_alert(tenancy.account_x, asset={"uuid": "h-x", "public_ip": "198.51.100.10"})],
        scope=scope_of_account(tenancy.account_x),
    )
    firewall_alert = native_alert(
        tenancy.account_a,
        source="cloud_firewall",
        asset={"public_ip": "198.51.100.10", "private_ip": "10.0.0.5", "region": "cn-beijing"},
    )

    result = ingest_alerts([firewall_alert], scope=scope_of_account(tenancy.account_a))

    assert (result.accepted, result.errors) == (1, [])
    alert = Alert.objects.get(source="cloud_firewall")
    assert alert.asset.uuid == "h-a"
    # A firewall record names no host: it never creates or changes one.
    assert Asset.objects.count() == 2
    assert Asset.objects.get(uuid="h-a").private_ip is None


def test_it_never_links_an_address_to_a_host_of_another_account(tenancy):
    ingest_alerts(
        [native_alert(tenancy.account_x, asset={"uuid": "h-x", "public_ip": "198.51.100.10"})],
        scope=scope_of_account(tenancy.account_x),
    )

    ingest_alerts(
        [
            native_alert(
                tenancy.account_b,
                source="cloud_firewall",
                asset={"public_ip": "198.51.100.10", "region": "cn-hangzhou"},
            )
        ],
        scope=scope_of_account(tenancy.account_b),
    )

    alert = Alert.objects.get(source="cloud_firewall")
    assert alert.asset is None
    # The firewall's cloud region places the alert, not the account's home region.
    assert alert.region == RegionGroup.CHINA


def test_it_stores_an_entity_shared_by_alerts_once(tenancy):
    attacker = {"type": "ip", "role": "attacker", "value": "203.0.113.7"}
    related = {"type": "ip", "role": "related", "value": "203.0.113.7"}
    earlier = ALERT_TIME - timedelta(hours=2)

    ingest_alerts(
        [
            native_alert(tenancy.account_a, entities=[related], occurred_at=earlier.isoformat()),
            native_alert(tenancy.account_a, entities=[attacker]),
            native_alert(tenancy.account_b, entities=[attacker]),
        ],
        scope=organisation_scope(tenancy.org),
    )

    in_a = Entity.objects.get(account=tenancy.account_a)
    assert (in_a.first_seen_at, in_a.last_seen_at, in_a.malicious) == (earlier, ALERT_TIME, True)
    assert in_a.alert_links.count() == 2
    assert Entity.objects.filter(account=tenancy.account_b).count() == 1


def test_it_counts_what_arrived_per_account_and_source(tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_alerts(
        [native_alert(tenancy.account_a), native_alert(tenancy.account_a, source="waf")],
        scope=scope,
    )
    ingest_alerts([native_alert(tenancy.account_a)], scope=scope)

    stats = IngestionStat.objects.filter(account=tenancy.account_a, kind=IngestionKind.ALERT)
    assert dict(stats.values_list("source", "count")) == {"security_center": 2, "waf": 1}


# --- idempotency --------------------------------------------------------------


def test_it_stores_nothing_twice_when_a_batch_is_sent_again(tenancy, ingest_and_aggregate):
    scope = organisation_scope(tenancy.org)
    batch = [
        malicious_process_alert(
            tenancy.account_a, occurred_at=(ALERT_TIME + timedelta(minutes=n)).isoformat()
        )
        for n in range(3)
    ] + [malicious_process_alert(tenancy.account_b)]
    first = ingest_and_aggregate(batch, scope=scope)
    counts, events = row_counts(), event_alert_counts()

    again = ingest_and_aggregate(batch, scope=scope)

    assert (first.accepted, first.duplicates) == (4, 0)
    assert (again.accepted, again.duplicates, again.errors) == (0, 4, [])
    assert again.stored_ids == []
    assert row_counts() == counts
    assert event_alert_counts() == events
    # Two rules (malicious processes on a host, same file) over two accounts.
    assert sorted(count for _, count in events) == [1, 1, 3, 3]


def test_it_counts_repeats_inside_one_batch_as_duplicates(tenancy, ingest_and_aggregate):
    alert = malicious_process_alert(tenancy.account_a, uuid="same")
    same_uuid_other_source = {**alert, "source": "siem"}

    result = ingest_and_aggregate(
        [alert, dict(alert), same_uuid_other_source], scope=organisation_scope(tenancy.org)
    )

    assert (result.accepted, result.duplicates) == (2, 1)
    assert sorted(Alert.objects.values_list("source", flat=True)) == ["security_center", "siem"]
    aggregated_by = EventAlert.objects.filter(alert__source="security_center").values_list(
        "event__rule__key", flat=True
    )
    assert sorted(aggregated_by) == [
        "malicious-file-on-several-hosts",
        "malicious-processes-on-host",
    ]


def test_it_counts_a_batch_of_only_repeats_as_duplicates(tenancy):
    scope = organisation_scope(tenancy.org)
    ingest_alerts([native_alert(tenancy.account_a, uuid="x")], scope=scope)

    result = ingest_alerts(
        [native_alert(tenancy.account_a, uuid="x"), native_alert(tenancy.account_a, uuid="x")],
        scope=scope,
    )

    assert (result.accepted, result.duplicates) == (0, 2)
    assert Alert.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_it_ingests_two_copies_of_one_batch_sent_at_once_exactly_once(tenancy):
    scope = organisation_scope(tenancy.org)
    batch = [
        malicious_process_alert(
            tenancy.account_a,
            uuid=f"race-{n}",
            occurred_at=(ALERT_TIME + timedelta(seconds=n)).isoformat(),
        )
        for n in range(50)
    ]
    barrier = threading.Barrier(2)
    results, failures = [], []

    def send():
        try:
            barrier.wait(timeout=10)
            # Each thread commits on its own, so the pipeline runs after each commit.
            results.append(ingest_alerts(batch, scope=scope))
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert sorted((r.accepted, r.duplicates) for r in results) == [(0, 50), (50, 0)]
    assert Alert.objects.count() == 50
    assert not PendingAlertBatch.objects.exists()
    # "Malicious processes on a host" and "Same malicious file on several hosts"
    # each hold every alert exactly once, in one event.
    links = EventAlert.objects.values("alert_id", "event__rule_id").annotate(n=Count("id"))
    assert len(links) == 100
    assert {link["n"] for link in links} == {1}
    events = SecurityEvent.objects.order_by("rule__key")
    assert [(e.rule.key, e.alert_count, e.status) for e in events] == [
        ("malicious-file-on-several-hosts", 50, "unhandled"),
        ("malicious-processes-on-host", 50, "unhandled"),
    ]


# --- logs ---------------------------------------------------------------------


def test_it_stores_log_records_with_their_typed_fields_and_the_rest_verbatim(tenancy):
    asset = Asset.objects.create(
        account=tenancy.account_a,
        uuid="host-web-01",
        name="web-01",
        region=RegionGroup.OUTSIDE_CHINA,
    )
    result = ingest_logs(
        [native_log(tenancy.account_a, hash="AB" * 32, vendor_field="kept")],
        scope=organisation_scope(tenancy.org),
    )

    assert (result.accepted, result.duplicates, result.errors) == (1, 0, [])
    record = LogRecord.objects.get()
    assert (record.asset, record.region, record.log_type, record.time) == (
        asset,
        RegionGroup.OUTSIDE_CHINA,
        "process",
        ALERT_TIME,
    )
    assert record.fields == {
        "pid": 4242,
        "path": "/usr/bin/curl",
        "cmdline": "curl http://198.51.100.20/x.sh",
        "hash": "ab" * 32,
        "raw": {"vendor_field": "kept"},
    }


def test_it_stores_nothing_twice_when_logs_are_sent_again(tenancy):
    scope = organisation_scope(tenancy.org)
    batch = [
        native_log(tenancy.account_a),
        native_log(tenancy.account_a, pid=4243),
        native_log(tenancy.account_a),  # a repeat inside the batch
        native_log(
            tenancy.account_b, type="login", user="root", src_ip="203.0.113.7", result="failure"
        ),
    ]

    first = ingest_logs(batch, scope=scope)
    again = ingest_logs(batch, scope=scope)

    assert (first.accepted, first.duplicates) == (3, 1)
    assert (again.accepted, again.duplicates) == (0, 4)
    assert LogRecord.objects.count() == 3
    stats = IngestionStat.objects.filter(kind=IngestionKind.LOG)
    assert sorted(stats.values_list("source", "count")) == [("login", 1), ("process", 2)]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"type": "syslog"},
            "type",
            "Input tag 'syslog' found using 'type' does not match any of the expected tags: "
            "'process', 'network', 'login', 'file', 'dns', 'http'",
        ),
        (
            {"type": "network", "dst_port": 70000},
            "dst_port",
            "Input should be less than or equal to 65535",
        ),
        ({"type": "login", "src_ip": "nope"}, "src_ip", "not an IP address: 'nope'"),
        (
            {"time": ALERT_TIME_MS // 1000},
            "time",
            "epoch time must be in milliseconds (a 13-digit number)",
        ),
        ({"account": "12ab"}, "account", "String should match pattern '^\\d{6,32}$'"),
    ],
)
def test_it_refuses_a_bad_log_record_naming_its_field(tenancy, changes, field, message):
    result = ingest_logs(
        [native_log(tenancy.account_a), native_log(tenancy.account_a, **changes)],
        scope=organisation_scope(tenancy.org),
    )

    assert result.errors == [{"index": 1, "field": field, "message": message}]
    assert LogRecord.objects.count() == 0
    assert IngestionRejection.objects.get().kind == IngestionKind.LOG


def test_it_refuses_a_log_record_without_a_type(tenancy):
    untyped = native_log(tenancy.account_a)
    del untyped["type"]

    result = ingest_logs([untyped], scope=organisation_scope(tenancy.org))

    assert result.errors == [
        {
            "index": 0,
            "field": "type",
            "message": "Unable to extract tag using discriminator 'type'",
        }
    ]


def test_it_stores_the_valid_logs_of_a_partial_batch(tenancy):
    result = ingest_logs(
        [native_log(tenancy.account_a, time="never"), native_log(tenancy.account_a)],
        scope=scope_of_account(tenancy.account_a),
        partial=True,
    )

    assert result.accepted == 1
    assert [(e["index"], e["field"]) for e in result.errors] == [(0, "time")]
    assert LogRecord.objects.count() == 1


# --- statements per batch -----------------------------------------------------

VARIED_TYPES = [
    ("security_center", "malicious_process"),
    ("security_center", "webshell"),
    ("siem", "reverse_shell"),
    ("security_center", "mining"),
    ("security_center", "brute_force"),
    ("waf", "web_attack"),
    ("cloud_firewall", "abnormal_network"),
    ("security_center", "suspicious_login"),
]
LEVELS = ["high", "medium", "low"]


def varied_batch(accounts, size: int, tag: str) -> list[dict]:
    """Alerts over many accounts, hosts, entities, rules and groups."""
    batch = []
    for n in range(size):
        source, alert_type = VARIED_TYPES[n % len(VARIED_TYPES)]
        batch.append(
            native_alert(
                accounts[n % len(accounts)],
                uuid=f"{tag}-{n}",
                source=source,
                type=alert_type,
                name=f"{alert_type} detection {n % 3}",
                level=LEVELS[n % len(LEVELS)],
                occurred_at=(ALERT_TIME + timedelta(seconds=n)).isoformat(),
                asset={
                    "uuid": f"{tag}-host-{n % 40}",
                    "name": f"host-{n % 40}",
                    "public_ip": f"198.51.100.{n % 40}",
                    "region": "cn-hangzhou",
                },
                entities=[
                    {"type": "ip", "role": "attacker", "value": f"203.0.113.{n % 60}"},
                    {"type": "file", "path": f"/tmp/{tag}-{n % 30}", "sha256": f"{n % 30:064x}"},
                    {"type": "user", "name": f"user{n % 7}"},
                ],
            )
        )
    return batch


def statements_to_ingest_and_aggregate(batch, scope, ingest) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = ingest(batch, scope=scope)
    assert result.accepted == len(batch)
    return len(queries)


@pytest.fixture(params=["arrays", "stage"])
def write_path(request, monkeypatch):
    """Each way a batch's rows reach PostgreSQL, for every batch size: arrays
    per column, or a COPY stage (on SQLite, VALUES lists either way)."""
    monkeypatch.setattr(db, "STAGE_ABOVE_PARAMS", 10**9 if request.param == "arrays" else 0)
    return request.param


def test_it_ingests_and_aggregates_a_batch_in_a_constant_number_of_statements(
    tenancy, ingest_and_aggregate, write_path
):
    scope = organisation_scope(tenancy.org)
    accounts = [tenancy.account_a, tenancy.account_b, tenancy.account_c]

    small = statements_to_ingest_and_aggregate(
        varied_batch(accounts, 10, "small"), scope, ingest_and_aggregate
    )
    large = statements_to_ingest_and_aggregate(
        varied_batch(accounts, 500, "large"), scope, ingest_and_aggregate
    )

    # The large batch really went through every step, over many groups.
    assert not PendingAlertBatch.objects.exists()
    assert SecurityEvent.objects.count() > 100
    assert Asset.objects.count() == 10 + 120  # (account, host) pairs of each batch
    assert large == small


def test_it_ingests_a_log_batch_in_a_constant_number_of_statements(tenancy, write_path):
    scope = organisation_scope(tenancy.org)

    def statements(size, tag):
        batch = [
            native_log(tenancy.account_a, host_uuid=f"{tag}-{n % 20}", pid=n) for n in range(size)
        ]
        with CaptureQueriesContext(connection) as queries:
            assert ingest_logs(batch, scope=scope).accepted == size
        return len(queries)

    assert statements(500, "large") == statements(10, "small")


def test_it_records_a_refused_item_whose_text_holds_nul_characters(tenancy):
    item = native_alert(tenancy.account_a, source="waf\x00", type="web\x00shell")

    result = ingest_alerts([item], scope=scope_of_account(tenancy.account_a))

    assert [error["field"] for error in result.errors] == ["source", "type"]
    rejection = IngestionRejection.objects.get(field="source")
    assert rejection.source == "waf\ufffd"
    assert not Alert.objects.exists()
