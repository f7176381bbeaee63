"""The thirteen predefined aggregation rules: what each one gathers into an event
(name, risk, grouping values) and what it must leave alone."""

from datetime import timedelta

import pytest

from events.models import AggregationRule, SecurityEvent
from events.predefined import PREDEFINED_RULES, sync_predefined_rules
from secops.enums import RiskLevel
from tests.conftest import ALERT_TIME, native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
OTHER_SHA256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
DAY = 86400


@pytest.fixture
def ingest(tenancy, ingest_and_aggregate):
    def send(*items):
        result = ingest_and_aggregate(list(items), scope=organisation_scope(tenancy.org))
        assert result.errors == []
        return result

    return send


@pytest.fixture
def acme(tenancy):
    return tenancy.account_a


def at(minutes: int) -> str:
    return (ALERT_TIME + timedelta(minutes=minutes)).isoformat()


def attacker(ip: str = "203.0.113.7") -> dict:
    return {"type": "ip", "role": "attacker", "value": ip}


def on_host(uuid: str, name: str) -> dict:
    return {"uuid": uuid, "name": name, "public_ip": "198.51.100.20"}


def events_of(rule_key: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(rule__key=rule_key).order_by("id"))


def the_event_of(rule_key: str) -> SecurityEvent:
    events = events_of(rule_key)
    assert len(events) == 1, f"{len(events)} events of {rule_key}"
    return events[0]


def summary(event: SecurityEvent) -> tuple:
    return (
        event.name,
        event.risk,
        event.group_values["fields"],
        event.group_values["window_seconds"],
        event.alert_count,
    )


# --- the rules themselves ---------------------------------------------------------


def test_it_installs_the_thirteen_predefined_rules_enabled(db):
    rules = AggregationRule.objects.filter(organisation=None)

    assert sorted(rules.values_list("key", flat=True)) == sorted(r["key"] for r in PREDEFINED_RULES)
    assert rules.count() == 13
    assert all(rule.enabled for rule in rules)


def test_it_restores_edited_predefined_rules_but_keeps_the_operators_switch(db):
    mining = AggregationRule.objects.get(key="mining-on-host", organisation=None)
    AggregationRule.objects.filter(pk=mining.pk).update(name="Renamed", enabled=False)

    sync_predefined_rules()

    mining.refresh_from_db()
    assert (mining.name, mining.enabled) == ("Cryptomining on a host", False)
    assert AggregationRule.objects.filter(organisation=None).count() == 13


# --- webshell-and-reverse-shell -----------------------------------------------------


def test_it_gathers_a_webshell_and_a_reverse_shell_on_one_host(acme, ingest):
    ingest(
        native_alert(acme, type="webshell", name="Webshell", asset=on_host("h-1", "shop")),
        native_alert(
            acme,
            source="siem",
            type="reverse_shell",
            name="Reverse shell",
            asset=on_host("h-1", "shop"),
            occurred_at=at(3),
        ),
    )

    assert summary(the_event_of("webshell-and-reverse-shell")) == (
        "Web intrusion on shop: webshell and reverse shell",
        RiskLevel.HIGH,
        {"asset": "h-1"},
        DAY,
        2,
    )


def test_it_keeps_webshells_of_other_hosts_and_other_sources_apart(acme, ingest):
    ingest(
        native_alert(acme, type="webshell", asset=on_host("h-1", "shop")),
        native_alert(acme, type="reverse_shell", asset=on_host("h-2", "blog")),
        native_alert(acme, source="waf", type="webshell", asset=on_host("h-1", "shop")),
    )

    assert [e.alert_count for e in events_of("webshell-and-reverse-shell")] == [1, 1]


# --- brute-force-then-login ---------------------------------------------------------


def test_it_gathers_brute_force_and_logons_from_one_ip(acme, ingest):
    ingest(
        native_alert(acme, type="brute_force", level="low", entities=[attacker()]),
        native_alert(
            acme,
            type="suspicious_login",
            level="medium",
            entities=[attacker()],
            asset=on_host("h-2", "db"),
            occurred_at=at(10),
        ),
    )

    event = the_event_of("brute-force-then-login")
    assert summary(event) == (
        "Brute force and logon attempts from 203.0.113.7",
        RiskLevel.MEDIUM,
        {"attacker_ip": "203.0.113.7"},
        DAY,
        2,
    )
    assert event.affected_assets.count() == 2


def test_it_keeps_brute_force_from_other_ips_apart(acme, ingest):
    ingest(
        native_alert(acme, type="brute_force", entities=[attacker("203.0.113.7")]),
        native_alert(acme, type="brute_force", entities=[attacker("203.0.113.8")]),
        # An IP that is not the attacker's does not group.
        native_alert(
            acme,
            type="brute_force",
            entities=[{"type": "ip", "role": "victim", "value": "203.0.113.7"}],
        ),
    )

    events = events_of("brute-force-then-login")
    assert sorted(e.group_values["fields"]["attacker_ip"] for e in events) == [
        "203.0.113.7",
        "203.0.113.8",
    ]
    assert [e.alert_count for e in events] == [1, 1]


# --- attacker-ip-across-waf-and-firewall --------------------------------------------


def test_it_gathers_waf_and_cloud_firewall_alerts_of_one_attacker(acme, ingest):
    ingest(
        native_alert(
            acme, source="waf", type="sql_injection", level="medium", entities=[attacker()]
        ),
        native_alert(
            acme,
            source="cloud_firewall",
            type="intrusion_prevention",
            level="high",
            entities=[attacker()],
            occurred_at=at(20),
        ),
    )

    assert summary(the_event_of("attacker-ip-across-waf-and-firewall")) == (
        "Network attacks from 203.0.113.7",
        RiskLevel.HIGH,
        {"attacker_ip": "203.0.113.7"},
        DAY,
        2,
    )


def test_it_leaves_host_alerts_of_the_attacker_to_other_rules(acme, ingest):
    ingest(native_alert(acme, source="security_center", type="intrusion", entities=[attacker()]))

    assert events_of("attacker-ip-across-waf-and-firewall") == []


# --- malicious-file-on-several-hosts ------------------------------------------------


def test_it_gathers_one_malicious_file_found_on_several_hosts(acme, ingest):
    sample = {"type": "file", "path": "/var/www/x.php", "sha256": SHA256.upper()}
    ingest(
        native_alert(acme, type="malicious_file", entities=[sample], asset=on_host("h-1", "a")),
        native_alert(
            acme,
            type="webshell",
            entities=[sample],
            asset=on_host("h-2", "b"),
            occurred_at=at(2 * DAY // 60),
        ),
    )

    event = the_event_of("malicious-file-on-several-hosts")
    assert summary(event) == (
        f"Malicious file {SHA256} found",
        RiskLevel.MEDIUM,
        {"file_hash": SHA256},
        7 * DAY,
        2,
    )
    assert sorted(event.affected_assets.values_list("uuid", flat=True)) == ["h-1", "h-2"]


def test_it_keeps_files_with_other_hashes_or_no_hash_apart(acme, ingest):
    ingest(
        native_alert(acme, type="malicious_file", entities=[{"type": "file", "sha256": SHA256}]),
        native_alert(
            acme, type="malicious_file", entities=[{"type": "file", "sha256": OTHER_SHA256}]
        ),
        native_alert(acme, type="malicious_file", entities=[{"type": "file", "path": "/tmp/a"}]),
    )

    fields = [e.group_values["fields"] for e in events_of("malicious-file-on-several-hosts")]
    assert sorted(fields, key=lambda f: f["file_hash"]) == [
        {"file_hash": OTHER_SHA256},
        {"file_hash": SHA256},
    ]


# --- mining-on-host -----------------------------------------------------------------


def test_it_gathers_mining_on_one_host_as_high_risk(acme, ingest):
    ingest(
        native_alert(acme, type="mining", level="low"),
        native_alert(acme, type="mining", level="low", occurred_at=at(5)),
    )

    assert summary(the_event_of("mining-on-host")) == (
        "Cryptomining on web-01",
        RiskLevel.HIGH,
        {"asset": "host-web-01"},
        DAY,
        2,
    )


def test_it_keeps_mining_on_other_hosts_apart(acme, ingest):
    ingest(
        native_alert(acme, type="mining", asset=on_host("h-1", "a")),
        native_alert(acme, type="mining", asset=on_host("h-2", "b")),
        native_alert(acme, type="mining_pool_dns", asset=on_host("h-1", "a")),
    )

    assert sorted(e.name for e in events_of("mining-on-host")) == [
        "Cryptomining on a",
        "Cryptomining on b",
    ]


# --- high-risk-host-alert -----------------------------------------------------------


def test_it_opens_an_event_for_every_high_risk_host_alert(acme, ingest):
    ingest(
        native_alert(acme, uuid="one", name="Ransomware", level="serious"),
        native_alert(acme, uuid="two", name="Ransomware", level="high", occurred_at=at(1)),
    )

    events = events_of("high-risk-host-alert")
    assert [summary(e) for e in events] == [
        ("Ransomware on web-01", RiskLevel.HIGH, {"alert": str(e.alerts.get().id)}, DAY, 1)
        for e in events
    ]
    assert sorted(e.alerts.get().source_uuid for e in events) == ["one", "two"]


def test_it_waits_for_other_rules_on_lower_or_non_host_alerts(acme, ingest):
    ingest(
        native_alert(acme, level="medium"),
        native_alert(acme, source="waf", level="high"),
        native_alert(acme, source="siem", level="high"),
    )

    assert events_of("high-risk-host-alert") == []


# --- web-attack-campaign ------------------------------------------------------------


def test_it_gathers_the_web_attacks_of_one_ip(acme, ingest):
    ingest(
        native_alert(acme, source="waf", type="web_attack", level="low", entities=[attacker()]),
        native_alert(
            acme,
            source="waf",
            type="web_attack",
            level="low",
            entities=[attacker()],
            occurred_at=at(1),
        ),
    )

    assert summary(the_event_of("web-attack-campaign")) == (
        "Web attacks from 203.0.113.7",
        RiskLevel.LOW,
        {"attacker_ip": "203.0.113.7"},
        DAY,
        2,
    )


def test_it_leaves_web_attacks_seen_by_other_products_to_other_rules(acme, ingest):
    ingest(
        native_alert(acme, source="cloud_firewall", type="web_attack", entities=[attacker()]),
        native_alert(acme, source="security_center", type="web_attack", entities=[attacker()]),
    )

    assert events_of("web-attack-campaign") == []


# --- abnormal-network-from-host -----------------------------------------------------


def test_it_gathers_the_abnormal_connections_of_one_host(acme, ingest):
    ingest(
        native_alert(acme, source="cloud_firewall", type="abnormal_network", level="medium"),
        native_alert(acme, type="abnormal_network", level="low", occurred_at=at(7)),
    )

    assert summary(the_event_of("abnormal-network-from-host")) == (
        "Abnormal network connections from web-01",
        RiskLevel.MEDIUM,
        {"asset": "host-web-01"},
        DAY,
        2,
    )


def test_it_keeps_abnormal_connections_of_other_hosts_apart(acme, ingest):
    ingest(
        native_alert(acme, type="abnormal_network", asset=on_host("h-1", "a")),
        native_alert(acme, type="abnormal_network", asset=on_host("h-2", "b")),
    )

    assert [e.alert_count for e in events_of("abnormal-network-from-host")] == [1, 1]


# --- rootkit-or-compromised-software ------------------------------------------------


def test_it_gathers_rootkits_and_compromised_software_of_one_host_over_days(acme, ingest):
    ingest(
        native_alert(acme, type="rootkit", level="low"),
        native_alert(acme, type="compromised_software", level="low", occurred_at=at(2 * DAY // 60)),
    )

    assert summary(the_event_of("rootkit-or-compromised-software")) == (
        "Host web-01 may be compromised at system level",
        RiskLevel.HIGH,
        {"asset": "host-web-01"},
        7 * DAY,
        2,
    )


def test_it_keeps_rootkits_of_other_hosts_apart(acme, ingest):
    ingest(
        native_alert(acme, type="rootkit", asset=on_host("h-1", "a")),
        native_alert(acme, type="rootkit", asset=on_host("h-2", "b")),
    )

    assert len(events_of("rootkit-or-compromised-software")) == 2


# --- siem-attack-chain-on-host ------------------------------------------------------


def test_it_gathers_every_siem_detection_of_one_host(acme, ingest):
    ingest(
        native_alert(acme, source="siem", type="web_attack", name="Web server spawns a shell"),
        native_alert(
            acme,
            source="siem",
            type="malicious_script",
            name="Curl piped to shell",
            level="high",
            occurred_at=at(3),
        ),
        native_alert(
            acme, source="siem", type="persistence", name="New cron job", occurred_at=at(6)
        ),
    )

    assert summary(the_event_of("siem-attack-chain-on-host")) == (
        "Attack activity on web-01 detected by SIEM rules",
        RiskLevel.HIGH,
        {"asset": "host-web-01"},
        DAY,
        3,
    )


def test_it_keeps_other_hosts_and_other_sources_out_of_the_chain(acme, ingest):
    ingest(
        native_alert(acme, source="siem", type="persistence", name="New cron job"),
        native_alert(
            acme,
            source="siem",
            type="persistence",
            name="New cron job",
            asset=on_host("h-2", "db-01"),
        ),
        native_alert(acme, source="security_center", type="persistence", name="New cron job"),
    )

    chains = events_of("siem-attack-chain-on-host")
    assert sorted(e.name for e in chains) == [
        "Attack activity on db-01 detected by SIEM rules",
        "Attack activity on web-01 detected by SIEM rules",
    ]
    assert [e.alert_count for e in chains] == [1, 1]


# --- siem-detection-on-host ---------------------------------------------------------


def test_it_gathers_the_detections_of_one_siem_rule_on_one_host(acme, ingest):
    ingest(
        native_alert(acme, source="siem", type="siem_rule", name="Curl piped to shell"),
        native_alert(
            acme, source="siem", type="siem_rule", name="Curl piped to shell", occurred_at=at(4)
        ),
    )

    assert summary(the_event_of("siem-detection-on-host")) == (
        "Curl piped to shell on web-01",
        RiskLevel.MEDIUM,
        {"alert_name": "Curl piped to shell", "asset": "host-web-01"},
        DAY,
        2,
    )


def test_it_keeps_other_siem_rules_and_other_sources_apart(acme, ingest):
    ingest(
        native_alert(acme, source="siem", type="siem_rule", name="Curl piped to shell"),
        native_alert(acme, source="siem", type="siem_rule", name="New cron job"),
        native_alert(acme, source="security_center", type="siem_rule", name="New cron job"),
    )

    assert sorted(e.name for e in events_of("siem-detection-on-host")) == [
        "Curl piped to shell on web-01",
        "New cron job on web-01",
    ]
    assert [e.alert_count for e in events_of("siem-detection-on-host")] == [1, 1]


# --- suspicious-logins-of-user ------------------------------------------------------


def logon(account, user: str, **fields) -> dict:
    return native_alert(
        account, type="suspicious_login", entities=[{"type": "user", "name": user}], **fields
    )


def test_it_gathers_the_suspicious_logons_of_one_user_on_one_host(acme, ingest):
    ingest(logon(acme, "root", level="low"), logon(acme, "root", level="low", occurred_at=at(9)))

    assert summary(the_event_of("suspicious-logins-of-user")) == (
        "Suspicious logons of root on web-01",
        RiskLevel.LOW,
        {"user": "root", "asset": "host-web-01"},
        DAY,
        2,
    )


def test_it_keeps_logons_of_other_users_or_hosts_apart(acme, ingest):
    ingest(
        logon(acme, "root"),
        logon(acme, "deploy"),
        logon(acme, "root", asset=on_host("h-2", "b")),
        native_alert(acme, type="suspicious_login"),  # no user: not grouped by this rule
    )

    assert sorted(e.name for e in events_of("suspicious-logins-of-user")) == [
        "Suspicious logons of deploy on web-01",
        "Suspicious logons of root on b",
        "Suspicious logons of root on web-01",
    ]


# --- malicious-processes-on-host ----------------------------------------------------


def test_it_gathers_the_malicious_processes_of_one_host(acme, ingest):
    ingest(
        native_alert(acme, type="malicious_process", level="low"),
        native_alert(acme, type="malicious_process", level="medium", occurred_at=at(3)),
    )

    assert summary(the_event_of("malicious-processes-on-host")) == (
        "Malicious processes on web-01",
        RiskLevel.MEDIUM,
        {"asset": "host-web-01"},
        DAY,
        2,
    )


def test_it_keeps_malicious_processes_of_other_hosts_apart(acme, ingest):
    ingest(
        native_alert(acme, type="malicious_process", asset=on_host("h-1", "a")),
        native_alert(acme, type="malicious_process", asset=on_host("h-2", "b")),
        native_alert(acme, type="suspicious_process", asset=on_host("h-1", "a")),
    )

    assert [e.alert_count for e in events_of("malicious-processes-on-host")] == [1, 1]
