"""Incident Source Tracing drawn from the event's own alerts: every event gets
a diagram, and the host logs add to it, each part marked with its source."""

import json

import pytest
from django.urls import reverse

from alerts.models import AlertEntity, AlertSource, EntityType
from events.tracing.tracer import trace_event
from tests import factories
from tests.events.test_tracing import (
    C2,
    IMPLANT,
    JAVA,
    SHELL,
    alert_in,
    entity,
    labelled,
    make_attack,
    make_event,
    node,
    scope_of,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ATTACKER = "203.0.113.5"
TOMCAT = "/usr/bin/java -jar /opt/app/app.jar"
PAYLOAD = "1' OR '1'='1"
URL = "http://dl.example/kw"
SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src="x" onerror="alert(2)">'


@pytest.fixture
def intrusion_without_logs(tenancy):
    """An event whose host sent no logs: a Security Center alert naming a process
    tree, its file, a C2 address, a download domain and URL and a logon; and a
    WAF alert with the attacker's payload."""
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    event = make_event(account, name="Intrusion on web-01")
    tomcat = entity(account, EntityType.PROCESS, TOMCAT, pid=2817, ppid=1,
                    path="/usr/bin/java", cmdline=TOMCAT)  # fmt: skip
    implant = entity(account, EntityType.PROCESS, IMPLANT, pid=3003, ppid=2817,
                     path="/tmp/kw", cmdline=IMPLANT)  # fmt: skip
    host_alert = alert_in(
        event,
        web,
        tomcat,
        implant,
        entity(account, EntityType.FILE, "9f" * 32, sha256="9f" * 32, path="/tmp/kw"),
        entity(account, EntityType.IP, C2),
        entity(account, EntityType.DOMAIN, "dl.example"),
        entity(account, EntityType.URL, URL),
        entity(account, EntityType.USER, "root", name="root", src_ip=ATTACKER),
    )
    waf_alert = alert_in(
        event,
        web,
        entity(account, EntityType.IP, ATTACKER),
        entity(account, EntityType.PAYLOAD, PAYLOAD),
        source=AlertSource.WAF,
    )
    return {"event": event, "host_alert": host_alert, "waf_alert": waf_alert}


@pytest.fixture
def attack(tenancy):
    return make_attack(tenancy)


def test_it_draws_what_the_alerts_give_when_the_host_sent_no_logs(intrusion_without_logs):
    event = intrusion_without_logs["event"]

    graph = trace_event(event, scope_of(event.account))

    nodes, edges = labelled(graph)
    assert graph.available and not graph.from_logs
    assert graph.logs_note.startswith("No contextual logs were received from web-01")
    assert nodes == {
        ("host", "web-01"),
        ("process", TOMCAT),
        ("process", IMPLANT),
        ("file", "/tmp/kw"),
        ("ip", C2),
        ("domain", "dl.example"),
        ("url", URL),
        ("user", "root@web-01"),
        ("ip", ATTACKER),
        ("payload", PAYLOAD),
    }
    assert edges == {
        ("web-01", "ran", TOMCAT, 1),
        (TOMCAT, "spawned", IMPLANT, 1),
        ("web-01", "stores", "/tmp/kw", 1),
        ("/tmp/kw", "executed", IMPLANT, 1),
        (IMPLANT, "names in its command line", C2, 1),
        ("dl.example", "serves", URL, 1),
        (ATTACKER, "logon as", "root@web-01", 1),
        ("root@web-01", "logon to", "web-01", 1),
        (ATTACKER, "sent", PAYLOAD, 1),
    }
    assert all(n["sources"] == ["alerts"] for n in graph.nodes)
    assert all(e["sources"] == ["alerts"] for e in graph.edges)
    assert graph.records == []


def test_it_keeps_each_alerts_own_view_of_an_entity(intrusion_without_logs):
    """The attacker IP of the WAF alert; the node lists the alerts naming it and
    the attributes an alert gave."""
    event = intrusion_without_logs["event"]

    graph = trace_event(event, scope_of(event.account))

    implant = node(graph, IMPLANT)
    assert implant["alerts"] == [intrusion_without_logs["host_alert"].id]
    assert implant["attributes"] | {"host": "web-01"} == {
        "pid": 3003,
        "ppid": 2817,
        "path": "/tmp/kw",
        "cmdline": IMPLANT,
        "host": "web-01",
    }
    assert node(graph, ATTACKER)["alerts"] == [intrusion_without_logs["waf_alert"].id]
    assert node(graph, ATTACKER)["malicious"]  # named as the attacker


def test_it_relates_processes_by_the_pids_each_alert_gave(tenancy):
    """The entity row keeps its first alert's attributes; the relation follows
    the attributes of the alert that named the process."""
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    event = make_event(account)
    parent = entity(account, EntityType.PROCESS, "/bin/sh", pid=10, path="/bin/sh")
    child = entity(account, EntityType.PROCESS, "id", pid=11, ppid=99, path="/usr/bin/id")
    alert = alert_in(event, web, parent)
    AlertEntity.objects.create(
        alert=alert, entity=child, role="related", attributes={"pid": 11, "ppid": 10}
    )

    graph = trace_event(event, scope_of(account))

    assert ("/bin/sh", "spawned", "id", 1) in labelled(graph)[1]


def test_it_merges_the_logs_into_the_alerts_graph_and_says_which_part_is_which(attack):
    graph = trace_event(attack["event"], attack["scope"])

    sources = {n["label"]: n["sources"] for n in graph.nodes}
    labels = {n["id"]: n["label"] for n in graph.nodes}
    edge_sources = {
        (labels[e["source"]], e["relation"], labels[e["target"]]): e["sources"] for e in graph.edges
    }
    assert graph.from_logs and graph.logs_note == ""
    # Named in the alert and found in the logs; found in the logs only.
    assert sources[IMPLANT] == sources[C2] == sources["/tmp/kw"] == ["alerts", "logs"]
    assert sources[JAVA] == sources[SHELL] == ["logs"]
    # Seen in the logs, and also given by the alert (the file's path is the process's).
    assert edge_sources[("/tmp/kw", "executed", IMPLANT)] == ["alerts", "logs"]
    assert edge_sources[(IMPLANT, "connected to", C2)] == ["logs"]
    assert edge_sources[(IMPLANT, "names in its command line", C2)] == ["alerts"]
    assert edge_sources[(SHELL, "spawned", IMPLANT)] == ["logs"]


# --- the tab ------------------------------------------------------------------------


def test_it_draws_the_tab_of_an_event_without_logs(tenancy, intrusion_without_logs):
    client = tenancy.client_for(tenancy.alice)
    event = intrusion_without_logs["event"]

    response = client.get(reverse("events:detail", args=[event.id]), {"tab": "tracing"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="tracing-graph"' in html
    assert 'data-testid="tracing-unavailable"' not in html
    assert "cannot be reproduced" not in html
    assert "Drawn from the event's alerts alone." in html
    assert "Relation given by the alerts only" in html  # the legend
    data = json.loads(html.split('id="tracing-data" type="application/json">')[1].split("</")[0])
    assert len(data["nodes"]) == 10 and data["from_logs"] is False


def test_it_says_the_logs_add_to_the_diagram_when_they_do(tenancy, attack):
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:detail", args=[attack["event"].id]), {"tab": "tracing"})

    assert "Drawn from the event's alerts and the host logs" in response.content.decode()


def test_it_escapes_what_the_attacker_put_in_the_alerts(tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    event = make_event(account, name="Markup in alerts")
    alert_in(
        event,
        web,
        entity(account, EntityType.PROCESS, f"sh -c {SCRIPT}", pid=7, cmdline=f"sh -c {SCRIPT}"),
        entity(account, EntityType.PAYLOAD, IMAGE),
        entity(account, EntityType.USER, IMAGE, name=IMAGE),
    )
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:detail", args=[event.id]), {"tab": "tracing"})
    as_json = client.get(reverse("events:tracing_json", args=[event.id])).json()

    html = response.content.decode()
    assert SCRIPT not in html and IMAGE not in html
    assert "<img" not in html
    labels = {n["label"] for n in as_json["nodes"]}
    # Sent as text for the diagram to draw as text.
    assert {f"sh -c {SCRIPT}", IMAGE, f"{IMAGE}@web-01"} <= labels


def test_it_hides_the_alerts_graph_of_another_organisations_event(tenancy, intrusion_without_logs):
    outsider = tenancy.client_for(tenancy.charlie)
    event = intrusion_without_logs["event"]

    tab = outsider.get(reverse("events:detail", args=[event.id]), {"tab": "tracing"})
    as_json = outsider.get(reverse("events:tracing_json", args=[event.id]))

    assert [tab.status_code, as_json.status_code] == [404, 404]
    assert "dl.example" not in tab.content.decode() + as_json.content.decode()
