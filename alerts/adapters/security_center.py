"""Security Center (SAS) alerts: the ``sas-security-log`` topic and ``DescribeSuspEvents`` items.

Both shapes describe the same alert, the log row in snake_case
(``level``, ``unique_info``, ``detail``) and the API item in PascalCase
(``Level``, ``UniqueInfo``, ``Details``), so every attribute is read through
one candidate list holding both spellings. The alert uuid is
``<host uuid>:<unique info>`` in both shapes, so an alert delivered once as a
log row and once through the API is stored once. A lifecycle row of the same
alert (``op`` = ``dealing``) maps to the same uuid and so to the same alert.
"""

import json

from alerts.adapters.base import (
    ATTACKER,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VALUE_LENGTH,
    RELATED,
    VICTIM,
    Adapter,
    EntityList,
    Record,
    alert_uuid,
    cap,
    clean_ip,
    label_key,
    parse_level,
    slugify,
    without_empty,
)
from alerts.models import AlertSource, EntityType
from alerts.schemas import MAX_PID

# Scenario keys by alert category. Keys are ``label_key`` forms of the
# category names and codes Security Center uses: the English console names
# (the ``ParentEventTypes`` list and ``AlarmEventType`` values), their Chinese
# console names (``Lang=zh`` is the API default), and upper-case codes such as
# ``WEBSHELL``.
ALERT_CATEGORY_SCENARIOS = {
    "suspicious_process": "suspicious_process",
    "进程异常行为": "suspicious_process",
    "webshell": "webshell",
    "web_shell": "webshell",
    "网站后门": "webshell",
    "unusual_logon": "suspicious_login",
    "unusual_login": "suspicious_login",
    "异常登录": "suspicious_login",
    "exception": "anomalous_event",
    "异常事件": "anomalous_event",
    "sensitive_file_tampering": "sensitive_file_tampering",
    "敏感文件篡改": "sensitive_file_tampering",
    "malicious_process": "malicious_process",
    "malicious_process_cloud_scanning": "malicious_process",
    "恶意进程": "malicious_process",
    "恶意进程_云查杀": "malicious_process",
    "precise_defense": "malicious_process",
    "精准防御": "malicious_process",
    "suspicious_network_connection": "abnormal_network",
    "异常网络连接": "abnormal_network",
    "malicious_network_activity": "abnormal_network",
    "恶意网络行为": "abnormal_network",
    "suspicious_account": "suspicious_account",
    "可疑账户": "suspicious_account",
    "application_intrusion_event": "application_intrusion",
    "应用入侵事件": "application_intrusion",
    "cloud_threat_detection": "cloud_threat",
    "云产品威胁检测": "cloud_threat",
    "persistent_webshell": "persistence",
    "persistence": "persistence",
    "持久化后门": "persistence",
    "malicious_script": "malicious_script",
    "恶意脚本": "malicious_script",
    "threat_intelligence": "threat_intelligence",
    "威胁情报": "threat_intelligence",
    "cluster_exception": "cluster_anomaly",
    "集群异常": "cluster_anomaly",
    "vulnerability_exploitation": "vulnerability_exploit",
    "漏洞利用": "vulnerability_exploit",
    "rootkit": "rootkit",
    "compromised_basic_software": "compromised_software",
    "malicious_file": "malicious_file",
    "恶意文件": "malicious_file",
    "web_attack": "web_attack",
    "brute_force_attack": "brute_force",
}

# Scenario keys recognised inside a subtype name or code, which is more precise
# than the category ("Suspicious process-Reverse shell" is a reverse shell).
# ASCII phrases match whole words of the label; others match as substrings.
ALERT_SUBTYPE_PHRASES = (
    ("reverse shell", "reverse_shell"),
    ("反弹shell", "reverse_shell"),
    ("mining", "mining"),
    ("miner", "mining"),
    ("挖矿", "mining"),
    ("brute force", "brute_force"),
    ("bruteforce", "brute_force"),
    ("暴力破解", "brute_force"),
    ("rootkit", "rootkit"),
    ("ransomware", "ransomware"),
    ("勒索", "ransomware"),
)

# Scenario keys by detection pipeline (``data_source`` / ``DataSource``).
DATA_SOURCE_SCENARIOS = {
    "aegis_suspicious_file_v2": "webshell",
    "aegis_login_log": "suspicious_login",
}

FALLBACK_SCENARIO = "security_center_alert"

# Detail labels (``label_key`` form) and what they tell about the alert.
ATTACKER_IP_LABELS = frozenset(
    {
        "source_ip",
        "src_ip",
        "login_source_ip",
        "login_ip",
        "attacker_ip",
        "attack_ip",
        "attack_source_ip",
        "malicious_ip",
        "remote_ip",
        "remote_address",
        "c2_ip",
        "登录源ip",
        "攻击源ip",
        "恶意ip",
    }
)
# The host's own addresses: already the asset, not an entity.
HOST_IP_LABELS = frozenset(
    {"intranet_ip", "internet_ip", "host_ip", "private_ip", "public_ip", "server_ip"}
)
PROCESS_LABELS = {
    "pid": "pid",
    "process_id": "pid",
    "进程id": "pid",
    "ppid": "ppid",
    "parent_process_id": "ppid",
    "父进程id": "ppid",
    "process_path": "path",
    "proc_path": "path",
    "进程路径": "path",
    "cmdline": "cmdline",
    "command_line": "cmdline",
    "process_command_line": "cmdline",
    "命令行": "cmdline",
    "进程命令行": "cmdline",
    "process_user": "user",
    "进程用户": "user",
}
PARENT_PROCESS_LABELS = {
    "parent_process_path": "path",
    "父进程路径": "path",
    "parent_command_line": "cmdline",
    "parent_process_command_line": "cmdline",
    "父进程命令行": "cmdline",
}
FILE_LABELS = {
    "file_path": "path",
    "filepath": "path",
    "webshell_path": "path",
    "文件路径": "path",
    "md5": "md5",
    "file_md5": "md5",
    "文件md5": "md5",
    "sha256": "sha256",
    "file_sha256": "sha256",
}
LOGON_LABELS = {
    "login_user": "name",
    "login_account": "name",
    "login_username": "name",
    "logon_user": "name",
    "登录用户": "name",
    "登录账号": "name",
    "login_type": "logon_type",
    "logon_type": "logon_type",
    "登录类型": "logon_type",
}
# A bare "user" is the process owner when the details describe a process,
# otherwise the logon account.
AMBIGUOUS_USER_LABELS = frozenset({"user", "username", "user_name", "用户", "用户名"})
URL_LABELS = frozenset({"url", "malicious_url", "download_url"})
DOMAIN_LABELS = frozenset({"domain", "malicious_domain", "域名"})

# The API returns at most a few dozen details; more than this is not an alert.
MAX_DETAILS = 200


class SecurityCenterAlertAdapter(Adapter):
    name = "sas_alert"
    kind = "alert"
    topics = frozenset({"sas-security-log"})
    # ``SourceAliUid``: the account that raised the alert in a multi-account API answer.
    account_keys = ("owner_id", "aliuid", "SourceAliUid")

    def convert(self, entry: Record, account: str) -> dict:
        details = read_details(entry)
        asset = asset_of(entry)
        host_ips = {asset.get("public_ip"), asset.get("private_ip")} - {None}
        entities = entities_from_details(details, host_ips)
        native = {
            "source": AlertSource.SECURITY_CENTER.value,
            "uuid": uuid_of(entry),
            "account": account,
            "type": scenario_of(entry),
            "name": entry.text("name", "Name", "AlarmEventNameDisplay", limit=MAX_NAME_LENGTH)
            or "Security Center alert",
            "level": parse_level(entry, "level", "Level"),
            "occurred_at": entry.time(
                "start_time", "OccurrenceTimeStamp", "OccurrenceTime", "__time__"
            ),
        }
        if asset:
            native["asset"] = asset
        native["entities"] = entities
        attck = attck_of(entry)
        if attck:
            native["attck"] = attck
        native["description"] = description_of(entry, details)
        native["exceptions"] = [{"name": label, "value": value} for label, value in details]
        return native


def uuid_of(entry: Record) -> str:
    unique_info = entry.text("unique_info", "UniqueInfo")
    host_uuid = entry.text("uuid", "Uuid")
    # ``unique_info`` is unique per server only, hence the host uuid in front.
    product_id = f"{host_uuid}:{unique_info}" if unique_info and host_uuid else unique_info
    return alert_uuid(product_id, entry.raw)


def scenario_of(entry: Record) -> str:
    name = entry.text("name", "Name") or ""
    # A name reads "<category>-<subtype>": "Unusual Logon-Login with unusual location".
    category_from_name = name.split("-", 1)[0] if "-" in name else name
    subtypes = [
        entry.text("AlarmEventName"),
        entry.text("EventSubType"),
        entry.text("AlarmEventNameDisplay"),
        name,
    ]
    for subtype in filter(None, subtypes):
        scenario = scenario_from_phrases(subtype)
        if scenario:
            return scenario
    categories = [
        entry.text("AlarmEventType"),
        entry.text("AlarmEventTypeDisplay"),
        category_from_name,
        entry.text("AlarmEventName"),
        entry.text("EventSubType"),
    ]
    for category in filter(None, categories):
        scenario = ALERT_CATEGORY_SCENARIOS.get(label_key(category))
        if scenario:
            return scenario
    data_source = entry.text("data_source", "DataSource") or ""
    if data_source in DATA_SOURCE_SCENARIOS:
        return DATA_SOURCE_SCENARIOS[data_source]
    for candidate in (*filter(None, categories), data_source):
        slug = slugify(candidate)
        if slug:
            return slug
    return FALLBACK_SCENARIO


def scenario_from_phrases(label: str) -> str | None:
    words = f" {slugify(label).replace('_', ' ')} "
    folded = label.casefold()
    for phrase, scenario in ALERT_SUBTYPE_PHRASES:
        if phrase.isascii() and f" {phrase} " in words:
            return scenario
        if not phrase.isascii() and phrase in folded:
            return scenario
    return None


def asset_of(entry: Record) -> dict:
    return without_empty(
        {
            "instance_id": entry.text("instance_id", "InstanceId"),
            "uuid": entry.text("uuid", "Uuid"),
            "name": entry.text("instance_name", "InstanceName", "host_name"),
            "public_ip": entry.ip("internet_ip", "InternetIp"),
            "private_ip": entry.ip("intranet_ip", "IntranetIp"),
            "os": entry.text("os", "Os"),
            "region": entry.text("region_id", "RegionId"),
        }
    )


def attck_of(entry: Record) -> dict:
    tactics = entry.raw.get("TacticItems")
    if not isinstance(tactics, list):
        return {}
    for item in tactics:
        if isinstance(item, dict):
            tactic = Record(item).text("TacticId", "TacticDisplayName", limit=128)
            if tactic:
                return {"tactic": tactic}
    return {}


def read_details(entry: Record) -> list[tuple[str, str]]:
    """(label, value) pairs from ``detail`` (a serialised list or map) or ``Details``."""
    details = entry.raw.get("Details")
    if details is None:
        details = entry.raw.get("detail")
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except (ValueError, RecursionError):
            return []
    pairs: list[tuple[str, str]] = []
    if isinstance(details, dict):
        items = [{"name": label, "value": value} for label, value in details.items()]
    elif isinstance(details, list):
        items = details
    else:
        return []
    for item in items[:MAX_DETAILS]:
        if not isinstance(item, dict):
            continue
        row = Record(item)
        label = row.text("name", "Name", "NameDisplay", "key", limit=MAX_NAME_LENGTH)
        value = row.text("value", "Value", "ValueDisplay")
        if label and value:
            pairs.append((label, value))
    return pairs


class DetailEvidence:
    """What an alert's details say, gathered label by label, then turned into entities."""

    def __init__(self, host_ips: set[str]):
        self.host_ips = host_ips
        self.process: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        self.file: dict[str, str] = {}
        self.logon: dict[str, str] = {}
        self.attacker_ips: list[str] = []
        self.other_ips: list[str] = []
        self.user: str | None = None
        self.locators = EntityList()

    def add(self, label: str, value: str) -> None:
        key = label_key(label)
        address = clean_ip(value)
        if key in PROCESS_LABELS:
            self.process.setdefault(PROCESS_LABELS[key], value)
        elif key in PARENT_PROCESS_LABELS:
            self.parent.setdefault(PARENT_PROCESS_LABELS[key], value)
        elif key in FILE_LABELS:
            self.file.setdefault(FILE_LABELS[key], value)
        elif key in LOGON_LABELS:
            self.logon.setdefault(LOGON_LABELS[key], value)
        elif key in AMBIGUOUS_USER_LABELS:
            self.user = self.user or value
        elif key in URL_LABELS:
            self.locators.value(EntityType.URL, RELATED, value)
        elif key in DOMAIN_LABELS:
            self.locators.value(EntityType.DOMAIN, RELATED, value.lower())
        elif address and key not in HOST_IP_LABELS and address not in self.host_ips:
            (self.attacker_ips if key in ATTACKER_IP_LABELS else self.other_ips).append(address)

    def entities(self) -> list[dict]:
        if self.user and self.process:
            self.process.setdefault("user", self.user)
        elif self.user:
            self.logon.setdefault("name", self.user)
        entities = EntityList()
        for address in self.attacker_ips:
            entities.ip(ATTACKER, address)
        for address in self.other_ips:
            entities.ip(RELATED, address)
        if self.logon.get("name"):
            # The account logged on to (or tried) is the one at risk.
            entities.with_attributes(
                EntityType.USER,
                VICTIM,
                {
                    "name": self.logon["name"],
                    "logon_type": self.logon.get("logon_type"),
                    "src_ip": self.attacker_ips[0] if self.attacker_ips else None,
                },
            )
        for process in (self.process, self.parent):
            if process:
                entities.with_attributes(EntityType.PROCESS, RELATED, process_attributes(process))
        if self.file:
            entities.with_attributes(
                EntityType.FILE,
                RELATED,
                {
                    "path": self.file.get("path"),
                    "md5": self.file.get("md5", "").lower() or None,
                    "sha256": self.file.get("sha256", "").lower() or None,
                },
            )
        for locator in self.locators.items:
            entities.add(locator)
        return entities.items


def entities_from_details(details: list[tuple[str, str]], host_ips: set[str]) -> list[dict]:
    evidence = DetailEvidence(host_ips)
    for label, value in details:
        evidence.add(label, value)
    return evidence.entities()


def process_attributes(fields: dict[str, str]) -> dict:
    return {
        "pid": as_pid(fields.get("pid")),
        "ppid": as_pid(fields.get("ppid")),
        "path": fields.get("path"),
        "cmdline": fields.get("cmdline"),
        "user": fields.get("user"),
    }


def as_pid(text: str | None) -> int | None:
    """A process id, or None for anything that cannot be one."""
    try:
        number = int(text) if text is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= MAX_PID else None


def description_of(entry: Record, details: list[tuple[str, str]]) -> str:
    description = entry.text("Desc", "desc", "description", limit=MAX_VALUE_LENGTH)
    if description:
        return description
    if details:
        lines = "\n".join(f"{label}: {value}" for label, value in details)
        return cap(lines, MAX_DESCRIPTION_LENGTH)
    # A ``detail`` that is not a list or map of pairs is still worth showing.
    return entry.text("detail", limit=MAX_DESCRIPTION_LENGTH) or ""
