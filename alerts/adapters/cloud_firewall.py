"""Cloud Firewall (CFW): IPS attack alerts and traffic logs.

A traffic line (``cloudfirewall_access_log``) carries the IPS verdict on the
session when an IPS rule matched (``ips_rule_id``, ``attack_type_name_en``),
and the IPS logs (``cloudfirewall_ips_log``, ``cloudfirewall_vpc_ips_log``)
are attack records by nature. ``cloud_firewall`` turns those into alerts and
refuses the rest with ``NotAnAttackRecord``; ``cloud_firewall_traffic`` turns
traffic lines into ``network`` logs. A session dropped by an access-control
policy alone is policy enforcement, not an attack, and raises no alert.
"""

from alerts.adapters.base import (
    ATTACKER,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    RELATED,
    VICTIM,
    Adapter,
    EntityList,
    NotAnAttackRecord,
    Record,
    alert_uuid,
    cap,
    is_private_ip,
    label_key,
    slugify,
    without_empty,
)
from alerts.models import AlertSource, EntityType, LogType

TRAFFIC_TOPIC = "cloudfirewall_access_log"
IPS_TOPICS = frozenset({"cloudfirewall_ips_log", "cloudfirewall_vpc_ips_log"})
IPS_LOG_TYPES = frozenset({"internet_ips_log", "vpc_ips_log"})
# ``aliuid`` in CFW's own Logstore, ``owner_id`` in the Log Audit copy.
ACCOUNT_KEYS = ("aliuid", "owner_id")
# ``start_time`` is the session start (epoch seconds); ``__time__`` the write time.
TIME_KEYS = ("start_time", "__time__")
# An all-zero rule id means "no rule matched".
NO_RULE = "00000000-0000-0000-0000-000000000000"

# Scenario keys by attack type: the names of the ``AttackType`` codes of the
# IPS event API and the ``attack_type_name(_en)`` values of the logs, in
# ``label_key`` form.
ATTACK_TYPE_SCENARIOS = {
    "suspicious_connection": "abnormal_network",
    "command_execution": "command_execution",
    "brute_force": "brute_force",
    "scanning": "scanning",
    "scan": "scanning",
    "information_leak": "information_leak",
    "dos": "dos",
    "denial_of_service": "dos",
    "buffer_overflow": "buffer_overflow",
    "web_attack": "web_attack",
    "trojan_backdoor": "trojan",
    "trojan": "trojan",
    "backdoor": "trojan",
    "worm": "worm",
    "mining": "mining",
    "mining_behavior": "mining",
    "挖矿行为": "mining",
    "reverse_shell": "reverse_shell",
    "other": "network_attack",
}
# The numeric ``AttackType`` codes of the IPS event API.
ATTACK_TYPE_CODES = {
    "1": "abnormal_network",
    "2": "command_execution",
    "3": "brute_force",
    "4": "scanning",
    "5": "network_attack",
    "6": "information_leak",
    "7": "dos",
    "8": "buffer_overflow",
    "9": "web_attack",
    "10": "trojan",
    "11": "worm",
    "12": "mining",
    "13": "reverse_shell",
}
FALLBACK_SCENARIO = "network_attack"
VUL_LEVELS = {"1": "low", "2": "medium", "3": "high"}
# Without ``vul_level``: a dropped session did no harm, an allowed one may have.
BLOCKED_LEVEL = "low"
ALLOWED_LEVEL = "medium"


class CloudFirewallAlertAdapter(Adapter):
    name = "cloud_firewall"
    kind = "alert"
    topics = frozenset({TRAFFIC_TOPIC, *IPS_TOPICS})
    account_keys = ACCOUNT_KEYS

    def convert(self, entry: Record, account: str) -> dict:
        ips_rule_id = ips_rule_of(entry)
        attack_type = entry.text("attack_type_name_en", "attack_type_name", limit=MAX_NAME_LENGTH)
        if not (ips_rule_id or attack_type or is_ips_log(entry)):
            raise NotAnAttackRecord(
                "ips_rule_id",
                "no IPS rule matched this session (rule_result="
                f"{entry.text('rule_result', limit=16) or 'none'}); "
                "store it with format=cloud_firewall_traffic",
            )
        rule_result = (entry.text("rule_result", limit=16) or "").lower()
        blocked = rule_result == "drop"
        native = {
            "source": AlertSource.CLOUD_FIREWALL.value,
            # Traffic and IPS lines carry no event id of their own.
            "uuid": alert_uuid(None, entry.raw),
            "account": account,
            "type": scenario_of(entry, attack_type),
            "name": entry.text(
                "ips_rule_name_en",
                "ips_rule_name",
                "attack_type_name_en",
                "attack_type_name",
                limit=MAX_NAME_LENGTH,
            )
            or "Cloud Firewall IPS event",
            "level": VUL_LEVELS.get(entry.text("vul_level") or "")
            or (BLOCKED_LEVEL if blocked else ALLOWED_LEVEL),
            "occurred_at": entry.time(*TIME_KEYS),
        }
        direction = (entry.text("direction") or "").lower()
        asset = asset_of(entry, direction)
        if asset:
            native["asset"] = asset
        native["entities"] = entities_of(entry, direction)
        native["description"] = description(entry, ips_rule_id, attack_type, rule_result)
        native["exceptions"] = []
        return native


class CloudFirewallTrafficAdapter(Adapter):
    name = "cloud_firewall_traffic"
    kind = "log"
    topics = frozenset({TRAFFIC_TOPIC})
    account_keys = ACCOUNT_KEYS

    def convert(self, entry: Record, account: str) -> dict:
        direction = (entry.text("direction") or "").lower()
        return {
            "type": LogType.NETWORK.value,
            "account": account,
            # The firewall sees sessions, not agent hosts.
            "host_uuid": "",
            "time": entry.time(*TIME_KEYS),
            **without_empty(
                {
                    "src_ip": entry.ip("src_ip"),
                    "src_port": entry.port("src_port"),
                    "dst_ip": entry.ip("dst_ip"),
                    "dst_port": entry.port("dst_port"),
                    "protocol": (entry.text("ip_protocol", "proto") or "").lower() or None,
                    "direction": direction if direction in {"in", "out"} else None,
                }
            ),
        }


def ips_rule_of(entry: Record) -> str | None:
    for key in ("ips_rule_id", "ips_ai_rule_id"):
        rule_id = entry.text(key)
        if rule_id and rule_id != NO_RULE:
            return rule_id
    return None


def is_ips_log(entry: Record) -> bool:
    return entry.text("__topic__") in IPS_TOPICS or entry.text("log_type") in IPS_LOG_TYPES


def scenario_of(entry: Record, attack_type: str | None) -> str:
    code = entry.text("attack_type")
    if code in ATTACK_TYPE_CODES:
        return ATTACK_TYPE_CODES[code]
    for name in filter(None, (attack_type, entry.text("attack_type_name"), code)):
        scenario = ATTACK_TYPE_SCENARIOS.get(label_key(name))
        if scenario:
            return scenario
    for name in filter(None, (attack_type, code)):
        slug = slugify(name)
        if slug:
            return slug
    return FALLBACK_SCENARIO


def asset_of(entry: Record, direction: str) -> dict:
    """Our side of the session: the destination of inbound, the source of outbound traffic."""
    if direction == "in":
        ours = [entry.ip("dst_ip")]
    elif direction == "out":
        ours = [entry.ip("src_ip"), entry.ip("src_private_ip")]
    else:
        ours = []
    asset = {}
    for address in filter(None, ours):
        slot = "private_ip" if is_private_ip(address) else "public_ip"
        asset.setdefault(slot, address)
    if asset and entry.text("region_id"):
        asset["region"] = entry.text("region_id", limit=64)
    return asset


def entities_of(entry: Record, direction: str) -> list[dict]:
    entities = EntityList()
    src_ip, dst_ip = entry.ip("src_ip"), entry.ip("dst_ip")
    if direction == "in":
        entities.ip(ATTACKER, src_ip)
        entities.ip(VICTIM, dst_ip)
    elif direction == "out":
        # Outbound: our host reaches out (a mining pool, a C2 server).
        entities.ip(ATTACKER, dst_ip)
        entities.ip(VICTIM, src_ip)
        entities.ip(VICTIM, entry.ip("src_private_ip"))
    else:
        entities.ip(RELATED, src_ip)
        entities.ip(RELATED, dst_ip)
    domain = entry.text("domain")
    entities.value(EntityType.DOMAIN, RELATED, domain.lower() if domain else None)
    entities.value(EntityType.URL, RELATED, entry.text("url"))
    return entities.items


# How Cloud Firewall treated the session, by ``rule_result``.
RULE_RESULTS = {
    "drop": "blocked by Cloud Firewall",
    "alert": "allowed by Cloud Firewall with an alert",
    "pass": "allowed by Cloud Firewall",
}


def description(
    entry: Record, ips_rule_id: str | None, attack_type: str | None, rule_result: str
) -> str:
    source = endpoint(entry.ip("src_ip"), entry.port("src_port"))
    destination = endpoint(entry.ip("dst_ip"), entry.port("dst_port"))
    parts = [
        f"{attack_type or 'IPS event'}",
        f"{source} -> {destination}",
        f"protocol {entry.text('ip_protocol', limit=16)}" if entry.text("ip_protocol") else None,
        f"application {entry.text('app_name', limit=64)}" if entry.text("app_name") else None,
        f"IPS rule {ips_rule_id}" if ips_rule_id else None,
        RULE_RESULTS.get(rule_result),
    ]
    return cap("; ".join(part for part in parts if part) + ".", MAX_DESCRIPTION_LENGTH)


def endpoint(address: str | None, port: int | None) -> str:
    if address is None:
        return "?"
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
