"""Structured logs with request and task ids, and the Prometheus metrics at /metrics."""

import io
import ipaddress
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import PendingAlertBatch
from disposal.models import HandlingTask, SimulatedFailure, TaskStatus
from events.models import SecurityEvent
from secops import metrics
from secops.celery import app
from secops.logs import ContextFilter, JsonFormatter
from tests.conftest import native_alert
from tests.factories import key_client

REPO = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-0123456789"


@app.task(name="tests.observability.log_inside")
def log_inside(text):
    logging.getLogger("tests.observability").warning("inside: %s", text)
    return text


@pytest.fixture
def json_lines():
    """The JSON lines the console's handler would write, as dicts."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def scrape(client=None, **extra) -> dict[tuple[str, frozenset], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- logs -----------------------------------------------------------------------


@pytest.mark.django_db
def test_it_logs_a_request_as_json_with_the_id_the_client_sent(json_lines):
    response = Client().get("/healthz", headers={"x-request-id": "edge-7f3a.42"})
    assert response["X-Request-ID"] == "edge-7f3a.42"
    [line] = [line for line in json_lines() if line["logger"] == "secops.access"]
    assert line["request_id"] == "edge-7f3a.42"
    assert line["message"].startswith("GET /healthz 200")
    assert line["view"] == "healthz"
    assert line["level"] == "INFO"
    assert "task_id" not in line


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sent", ["", "has space", "x" * 129, 'quote"d', "line\nbreak", "-starts-with-dash"]
)
def test_it_replaces_a_request_id_it_cannot_use(json_lines, sent):
    response = Client().get("/healthz", headers={"x-request-id": sent} if sent else {})
    made = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    [line] = [line for line in json_lines() if line["logger"] == "secops.access"]
    assert line["request_id"] == made


@pytest.mark.django_db
def test_each_request_gets_its_own_id_and_none_is_left_behind(json_lines):
    first = Client().get("/healthz")["X-Request-ID"]
    second = Client().get("/healthz")["X-Request-ID"]
    assert first != second
    logging.getLogger("tests.observability").warning("between requests")
    lines = json_lines()
    assert [line.get("request_id") for line in lines if line["logger"] == "secops.access"] == [
        first,
        second,
    ]
    [after] = [line for line in lines if line["message"] == "between requests"]
    assert "request_id" not in after


@pytest.mark.django_db
def test_djangos_own_line_about_a_response_carries_the_request_id(json_lines):
    """Django logs "Not Found: ..." after the middleware has returned."""
    response = Client().get("/no/such/page/", headers={"x-request-id": "lost-1"})
    assert response.status_code == 404
    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["message"].startswith("Not Found")
    assert line["request_id"] == "lost-1"


def test_an_unknown_log_format_stops_start_up_naming_the_variable(tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DEBUG": "true",
            "DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "secops.settings",
            "LOG_FORMAT": "yaml",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert "LOG_FORMAT" in last


def test_a_line_written_inside_a_task_carries_its_id_and_name(json_lines):
    result = log_inside.delay("hello")
    [line] = [line for line in json_lines() if line["message"] == "inside: hello"]
    assert line["task_id"] == result.id
    assert line["task_name"] == "tests.observability.log_inside"
    logging.getLogger("tests.observability").warning("after the task")
    [after] = [line for line in json_lines() if line["message"] == "after the task"]
    assert "task_id" not in after


def test_a_task_run_while_a_request_is_served_logs_both_ids(json_lines):
    """Handling queues tasks from a request; run eagerly, their lines name both."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from secops.logs import RequestIdMiddleware

    def view(request):
        log_inside.delay("from a view")
        return HttpResponse("ok")

    RequestIdMiddleware(view)(RequestFactory().get("/", headers={"x-request-id": "req-1"}))
    [line] = [line for line in json_lines() if line["message"] == "inside: from a view"]
    assert line["request_id"] == "req-1"
    assert line["task_name"] == "tests.observability.log_inside"


def test_an_exception_and_extra_fields_go_into_the_json_object():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("once",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    record.batch = 12
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed once"
    assert line["batch"] == 12
    assert "ValueError: boom" in line["exception"]


# --- who may read /metrics ------------------------------------------------------------


@pytest.fixture
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.1/32"),)
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Bearer {TOKEN}x"},
        {"authorization": "Bearer "},
    ],
)
def test_it_refuses_a_scrape_from_elsewhere_without_the_token(metrics_settings, headers):
    response = Client(headers=headers).get("/metrics", REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 403
    assert b"secops_" not in response.content
    assert TOKEN.encode() not in response.content


@pytest.mark.django_db
def test_it_serves_the_metrics_with_the_token_from_anywhere(metrics_settings):
    response = Client(headers={"authorization": f"Bearer {TOKEN}"}).get(
        "/metrics", REMOTE_ADDR="192.0.2.10"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"secops_celery_queue_depth" in response.content


@pytest.mark.django_db
def test_no_token_is_accepted_when_none_is_set(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ()
    response = Client(headers={"authorization": "Bearer "}).get("/metrics")
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("networks", "address", "status"),
    [
        (["127.0.0.1/32", "::1/128"], "127.0.0.1", 200),
        (["127.0.0.1/32", "::1/128"], "::1", 200),
        (["127.0.0.1/32", "::1/128"], "10.0.0.5", 403),
        (["10.0.0.0/8"], "10.20.30.40", 200),
        (["10.0.0.0/8"], "::ffff:10.20.30.40", 200),
        (["10.0.0.0/8"], "11.0.0.1", 403),
        (["10.0.0.0/8"], "not-an-address", 403),
    ],
)
def test_it_serves_the_allowed_networks_without_a_token(settings, networks, address, status):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = tuple(ipaddress.ip_network(n) for n in networks)
    assert Client().get("/metrics", REMOTE_ADDR=address).status_code == status


@pytest.mark.django_db
def test_behind_a_proxy_the_client_address_decides(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy is on loopback; the client it names is outside the networks.
    refused = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert refused.status_code == 403
    allowed = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.1.1")
    assert allowed.status_code == 200


def test_a_bad_network_stops_start_up_naming_the_variable(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from secops.env import env_networks

    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,intranet")
    with pytest.raises(ImproperlyConfigured, match=r"METRICS_ALLOWED_NETWORKS.*intranet"):
        env_networks("METRICS_ALLOWED_NETWORKS", [])


@pytest.mark.django_db
def test_a_logged_in_outsider_from_elsewhere_is_refused_too(metrics_settings, tenancy):
    """A console session is no way in: metrics are the operator's, not a tenant's."""
    client = tenancy.client_for(tenancy.charlie)
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.10").status_code == 403
    client = tenancy.client_for(tenancy.alice)
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.10").status_code == 403


def test_a_worker_serves_its_metrics_under_the_same_rules(metrics_settings):
    def call(path, **environ):
        answer = {}

        def start_response(status, headers):
            answer["status"] = status

        body = b"".join(metrics.worker_metrics_app({"PATH_INFO": path, **environ}, start_response))
        return answer["status"], body

    assert call("/metrics", REMOTE_ADDR="192.0.2.10")[0] == "403 Forbidden"
    status, body = call("/metrics", REMOTE_ADDR="192.0.2.10", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == "200 OK" and b"secops_celery_tasks_total" in body
    assert call("/other", REMOTE_ADDR="127.0.0.1")[0] == "404 Not Found"


# --- what the metrics count ----------------------------------------------------------


@pytest.mark.django_db
def test_ingested_and_rejected_alerts_are_counted_per_source(
    tenancy, metrics_settings, django_capture_on_commit_callbacks
):
    api = key_client(tenancy.org)
    before = scrape()
    with_errors = [
        native_alert(tenancy.account_a, source="waf", type="web_attack"),
        native_alert(tenancy.account_a, source="waf", type="web_attack"),
        native_alert(tenancy.account_a),
        native_alert(tenancy.account_a, source="waf", name=""),  # invalid: no name
        native_alert(tenancy.account_a, source="made-up\nsource"),
        native_alert(tenancy.account_x, source="cloud_firewall"),  # not the key's account
    ]
    # Stored alerts are counted once their transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/alerts?partial=true",
            {"alerts": with_errors},
            content_type="application/json",
        )
        # A duplicate is not counted again.
        api.post("/api/v1/alerts", {"alerts": with_errors[:1]}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("secops_ingested_total", kind="alert", source="waf") == 2
    assert moved("secops_ingested_total", kind="alert", source="security_center") == 1
    assert moved("secops_ingest_rejected_total", kind="alert", source="waf") == 1
    assert moved("secops_ingest_rejected_total", kind="alert", source="other") == 1
    assert moved("secops_ingest_rejected_total", kind="alert", source="cloud_firewall") == 1
    assert not any("made-up" in str(labels) for _, labels in after)


@pytest.mark.django_db
def test_a_rolled_back_ingestion_counts_nothing(tenancy):
    from django.db import transaction

    from alerts.services import ingest_alerts
    from tests.conftest import organisation_scope

    before = scrape()
    with pytest.raises(RuntimeError), transaction.atomic():
        ingest_alerts([native_alert(tenancy.account_a)], scope=organisation_scope(tenancy.org))
        raise RuntimeError("rolled back")
    after = scrape()
    labels = {"kind": "alert", "source": "security_center"}
    assert value(after, "secops_ingested_total", **labels) == value(
        before, "secops_ingested_total", **labels
    )


@pytest.mark.django_db
def test_the_pipeline_lag_is_observed_per_batch(tenancy, ingest_and_aggregate):
    from tests.conftest import organisation_scope

    before = scrape()
    ingest_and_aggregate(
        [native_alert(tenancy.account_a), native_alert(tenancy.account_a)],
        scope=organisation_scope(tenancy.org),
    )
    after = scrape()
    assert value(after, "secops_pipeline_lag_seconds_count") == (
        value(before, "secops_pipeline_lag_seconds_count") + 1
    )
    assert value(after, "secops_pipeline_alerts_total") == (
        value(before, "secops_pipeline_alerts_total") + 2
    )
    lag = value(after, "secops_pipeline_lag_seconds_sum") - value(
        before, "secops_pipeline_lag_seconds_sum"
    )
    assert 0 <= lag < 60
    assert not PendingAlertBatch.objects.exists()


@pytest.mark.django_db
def test_waiting_batches_and_the_oldest_wait_are_read_from_the_database():
    assert value(scrape(), "secops_pipeline_waiting_batches") == 0
    assert value(scrape(), "secops_pipeline_oldest_waiting_seconds") == 0
    old = PendingAlertBatch.objects.create(alert_ids=[1, 2])
    PendingAlertBatch.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    PendingAlertBatch.objects.create(alert_ids=[3])
    samples = scrape()
    assert value(samples, "secops_pipeline_waiting_batches") == 2
    assert 300 <= value(samples, "secops_pipeline_oldest_waiting_seconds") < 360


@pytest.mark.django_db
def test_page_latency_is_observed_by_view_name_never_by_path(tenancy):
    from tests.conftest import organisation_scope

    bob = tenancy.client_for(tenancy.bob)
    from alerts.services import ingest_alerts

    ingest_alerts(
        [native_alert(tenancy.account_a, type="brute_force", level="high")],
        scope=organisation_scope(tenancy.org),
    )
    before = scrape()
    assert bob.get("/").status_code == 200
    assert bob.get("/events/?risk=3").status_code == 200
    assert bob.get("/events/987654321/").status_code == 404
    assert bob.get("/no/such/page/424242/").status_code == 404
    after = scrape()
    count = "secops_http_request_duration_seconds_count"

    def moved(**labels):
        return value(after, count, **labels) - value(before, count, **labels)

    assert moved(view="home", method="GET", status="2xx") == 1
    assert moved(view="events:list", method="GET", status="2xx") == 1
    assert moved(view="events:detail", method="GET", status="4xx") == 1
    assert moved(view="unmatched", method="GET", status="4xx") == 1
    assert not any("987654321" in str(labels) or "424242" in str(labels) for _, labels in after)
    buckets = [
        labels
        for (name, labels) in after
        if name == "secops_http_request_duration_seconds_bucket" and ("view", "home") in labels
    ]
    assert buckets, "the latency is a histogram with buckets"


@pytest.mark.django_db
def test_celery_task_states_are_counted_by_task_and_state():
    before = scrape()
    log_inside.delay("counted")
    after = scrape()
    name = "secops_celery_tasks_total"
    for state in ("started", "succeeded"):
        labels = {"task": "tests.observability.log_inside", "state": state}
        assert value(after, name, **labels) == value(before, name, **labels) + 1


@pytest.mark.django_db
def test_connector_errors_are_counted_by_connector_and_kind(
    tenancy, ingest_and_aggregate, django_capture_on_commit_callbacks
):
    from tests.conftest import organisation_scope

    attacker = "203.0.113.7"
    ingest_and_aggregate(
        [
            native_alert(
                tenancy.account_a,
                type="brute_force",
                name="SSH brute force",
                level="high",
                entities=[{"type": "ip", "value": attacker, "role": "attacker"}],
            )
        ],
        scope=organisation_scope(tenancy.org),
    )
    event = SecurityEvent.objects.get(account=tenancy.account_a, rule__key="brute-force-then-login")
    SimulatedFailure.objects.create(target=attacker, message="Throttled", retryable=True)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        response = key_client(tenancy.org).post(
            f"/api/v1/events/{event.pk}/handle",
            {"status": "handling", "use_recommended": True},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    assert HandlingTask.objects.get().status == TaskStatus.FAILED
    after = scrape()
    labels = {"connector": "simulated", "operation": "perform", "kind": "retryable"}
    name = "secops_connector_errors_total"
    assert value(after, name, **labels) == value(before, name, **labels) + 1


def test_queue_depth_is_zero_with_tasks_run_eagerly(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert metrics.queue_depths() == {"ingest": 0, "detect": 0, "respond": 0, "export": 0}


def test_an_unreachable_broker_leaves_the_depths_out_and_says_so(settings, unused_port):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_port}/12"
    families = {family.name: family for family in metrics.QueueDepthCollector().collect()}
    assert families["secops_celery_queue_depth"].samples == []
    [up] = families["secops_celery_broker_up"].samples
    assert up.value == 0


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the dashboard -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dashboard_uses_only_metrics_the_endpoint_exposes():
    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    response = Client().get("/metrics")
    exposed = set()
    for line in response.content.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            exposed.add(name)
            if kind == "histogram":
                exposed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}

    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert len(panels) >= 8
    used = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\bsecops_[a-z_]+\b", target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= exposed, (panel["title"], names - exposed)
            used |= names
    for wanted in (
        "secops_ingested_total",
        "secops_ingest_rejected_total",
        "secops_pipeline_lag_seconds_bucket",
        "secops_celery_queue_depth",
        "secops_celery_tasks_total",
        "secops_connector_errors_total",
        "secops_http_request_duration_seconds_bucket",
    ):
        assert wanted in used, f"no panel shows {wanted}"
