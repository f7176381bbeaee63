"""Security events over the API: the list with the page's filters and cursors,
counts, an event's details, alerts, timeline, entities and tracing graph, and
Excel exports; all within the key's scope."""

from datetime import timedelta
from io import BytesIO

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from alerts.models import AlertEntity, Entity, EntityRole, EntityType
from events.models import EventAlert, EventStatus, ExportJob, ExportStatus
from secops.enums import RiskLevel
from tests import factories
from tests.factories import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def api(tenancy):
    """An organisation key of Acme (accounts A, B and C)."""
    return key_client(tenancy.org)


@pytest.fixture
def outsider(tenancy):
    """An organisation key of Umbrella."""
    return key_client(tenancy.other_org)


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def event_with_alerts(account, alerts=2, **fields):
    event = factories.make_event(account, alert_count=alerts, **fields)
    asset = factories.make_asset(account, name="web-01")
    event.affected_assets.add(asset)
    made = []
    for n in range(alerts):
        alert = factories.make_alert(
            account,
            asset=asset,
            name=f"alert {n}",
            occurred_at=days_ago(1) + timedelta(minutes=n),
            tactic="Execution" if n else "Initial Access",
        )
        EventAlert.objects.create(event=event, alert=alert)
        made.append(alert)
    return event, made


def every_page(client, path, **params) -> list[dict]:
    """Every item of a cursor list, following next_cursor."""
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, query)
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


# --- the list ------------------------------------------------------------------------


def test_it_lists_the_events_the_page_filters_match(api, tenancy):
    high = factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    low = factories.make_event(tenancy.account_b, risk=RiskLevel.LOW, name="Brute force")
    handled = factories.make_event(
        tenancy.account_b, risk=RiskLevel.HIGH, status=EventStatus.HANDLED
    )
    factories.make_event(tenancy.account_x, risk=RiskLevel.HIGH)

    by_risk = api.get("/api/v1/events", {"risk": "3"})
    by_two = api.get("/api/v1/events", {"risk": "3", "status": ["unhandled", "handled"]})
    by_name = api.get("/api/v1/events", {"name": "bRUTE"})

    assert {e["id"] for e in by_risk.json()["items"]} == {high.id, handled.id}
    assert {e["id"] for e in by_two.json()["items"]} == {high.id, handled.id}
    assert [e["id"] for e in by_name.json()["items"]] == [low.id]
    assert by_name.json()["items"][0]["account"] == tenancy.account_b.uid


def test_it_pages_with_cursors_in_the_chosen_order_without_repeats(api, tenancy):
    made = [
        factories.make_event(tenancy.account_a, last_occurred_at=days_ago(n), alert_count=n % 3)
        for n in range(7)
    ]

    newest_first = every_page(api, "/api/v1/events", limit=2)
    by_alerts = every_page(api, "/api/v1/events", limit=3, sort="-alerts")

    assert [e["id"] for e in newest_first] == [e.id for e in made]
    assert [e["alert_count"] for e in by_alerts] == sorted(
        (e.alert_count for e in made), reverse=True
    )
    assert sorted(e["id"] for e in by_alerts) == sorted(e.id for e in made)


def test_a_cursor_of_another_order_is_refused(api, tenancy):
    for _ in range(3):
        factories.make_event(tenancy.account_a)
    cursor = api.get("/api/v1/events", {"limit": 1}).json()["next_cursor"]

    other_order = api.get("/api/v1/events", {"limit": 1, "sort": "-risk", "cursor": cursor})
    garbage = api.get("/api/v1/events", {"cursor": "not-a-cursor"})

    assert other_order.status_code == 422
    assert list(other_order.json()["errors"]) == ["cursor"]
    assert garbage.status_code == 422
    assert list(garbage.json()["errors"]) == ["cursor"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"risk": "9"}, "risk"),
        ({"status": "failing"}, "status"),
        ({"occurred": "custom"}, "start"),
        ({"occurred": "custom", "start": "2020-01-01", "end": "2020-01-02"}, "start"),
        ({"sort": "name"}, "sort"),
        ({"event_id": "x"}, "event_id"),
    ],
)
def test_it_refuses_a_filter_the_page_refuses_naming_it(api, query, field):
    response = api.get("/api/v1/events", query)

    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_it_counts_what_the_filters_match(api, tenancy):
    factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW, status=EventStatus.HANDLED)
    factories.make_event(tenancy.account_x, risk=RiskLevel.HIGH)

    counts = api.get("/api/v1/events/counts", {"occurred": "1d"}).json()

    assert counts["total"] == 2
    assert {c["risk"]: c["count"] for c in counts["risk"]} == {3: 1, 2: 0, 1: 1}
    assert {c["status"]: c["count"] for c in counts["status"]}["handled"] == 1
    assert len(counts["new_per_day"]) == 1
    assert counts["new_per_day"][0]["high"] == 1


def test_an_account_key_lists_its_own_account_only(tenancy):
    own = factories.make_event(tenancy.account_a)
    factories.make_event(tenancy.account_b)

    response = key_client(tenancy.org, tenancy.account_a).get("/api/v1/events")

    assert [e["id"] for e in response.json()["items"]] == [own.id]


def test_an_outsider_lists_and_counts_nothing_of_the_organisation(outsider, tenancy):
    factories.make_event(tenancy.account_a)

    assert outsider.get("/api/v1/events").json()["items"] == []
    assert outsider.get("/api/v1/events/counts").json()["total"] == 0


# --- one event -----------------------------------------------------------------------


def test_it_shows_an_event_with_its_assets_and_history(api, tenancy):
    event, _ = event_with_alerts(tenancy.account_a)
    event.status_changes.create(from_status="", to_status=EventStatus.UNHANDLED, cause="pipeline")

    body = api.get(f"/api/v1/events/{event.id}").json()

    assert body["id"] == event.id
    assert body["why"]
    assert [a["name"] for a in body["affected_assets"]] == ["web-01"]
    assert [h["to_status"] for h in body["history"]] == ["unhandled"]


def test_it_lists_an_events_alerts_newest_first_with_cursors(api, tenancy):
    event, alerts = event_with_alerts(tenancy.account_a, alerts=5)
    factories.make_alert(tenancy.account_a)  # not part of the event

    listed = every_page(api, f"/api/v1/events/{event.id}/alerts", limit=2)

    assert [a["id"] for a in listed] == [a.id for a in reversed(alerts)]


def test_it_cuts_the_timeline_into_stages(api, tenancy):
    event, alerts = event_with_alerts(tenancy.account_a, alerts=3)

    body = api.get(f"/api/v1/events/{event.id}/timeline").json()

    assert [s["tactic"] for s in body["stages"]] == ["Initial Access", "Execution"]
    assert [a["id"] for a in body["stages"][1]["alerts"]] == [alerts[1].id, alerts[2].id]
    assert body["truncated"] is False


def test_it_lists_an_events_entities_with_their_roles(api, tenancy):
    event, alerts = event_with_alerts(tenancy.account_a, alerts=1)
    now = timezone.now()
    ip = Entity.objects.create(
        account=tenancy.account_a,
        type=EntityType.IP,
        value="203.0.113.7",
        digest=Entity.digest_for(EntityType.IP, "203.0.113.7"),
        malicious=True,
        first_seen_at=now,
        last_seen_at=now,
    )
    AlertEntity.objects.create(alert=alerts[0], entity=ip, role=EntityRole.ATTACKER)

    body = api.get(f"/api/v1/events/{event.id}/entities").json()

    assert body == [
        {
            "type": "ip",
            "value": "203.0.113.7",
            "digest": ip.digest,
            "account": tenancy.account_a.uid,
            "roles": ["attacker"],
            "alert_count": 1,
            "malicious": True,
        }
    ]


def test_it_serves_the_tracing_graph_as_json(api, tenancy):
    event, _ = event_with_alerts(tenancy.account_a)

    one = api.get(f"/api/v1/events/{event.id}/tracing")
    several = api.get("/api/v1/events/tracing", {"ids": f"{event.id}"})
    logs = api.get(f"/api/v1/events/{event.id}/tracing/logs")

    assert one.status_code == 200
    assert [e["id"] for e in one.json()["events"]] == [event.id]
    assert several.status_code == 200
    assert logs.status_code == 200 and logs.json()["page"] == 1


@pytest.mark.parametrize(("ids", "field"), [("1,x", "ids"), ("", "ids")])
def test_it_refuses_event_ids_it_cannot_read(api, ids, field):
    response = api.get("/api/v1/events/tracing", {"ids": ids})

    assert response.status_code == 422
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/alerts",
        "/api/v1/events/{id}/timeline",
        "/api/v1/events/{id}/entities",
        "/api/v1/events/{id}/tracing",
        "/api/v1/events/{id}/tracing/logs",
        "/api/v1/events/tracing?ids={id}",
    ],
)
def test_an_event_outside_the_key_is_not_found(tenancy, outsider, path):
    event, _ = event_with_alerts(tenancy.account_b)
    account_a_key = key_client(tenancy.org, tenancy.account_a)

    assert outsider.get(path.format(id=event.id)).status_code == 404
    assert account_a_key.get(path.format(id=event.id)).status_code == 404


def test_several_events_with_one_of_another_tenant_are_not_found(api, tenancy):
    own = factories.make_event(tenancy.account_a)
    foreign = factories.make_event(tenancy.account_x)

    response = api.get("/api/v1/events/tracing", {"ids": f"{own.id},{foreign.id}"})

    assert response.status_code == 404


# --- exports -------------------------------------------------------------------------


@pytest.fixture
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.usefixtures("_media_root")
def test_it_exports_the_filtered_events_to_a_file_the_key_downloads(
    api, tenancy, django_capture_on_commit_callbacks
):
    high = factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post("/api/v1/events/exports?occurred=7d&risk=3")
    job = ExportJob.objects.get()
    polled = api.get(f"/api/v1/events/exports/{job.id}")
    download = api.get(polled.json()["download"])

    assert started.status_code == 202
    assert started.json()["id"] == job.id
    assert job.owner is None and job.api_key is not None
    assert polled.json()["status"] == ExportStatus.DONE
    assert polled.json()["filters"]["risk"] == [3]
    assert download.status_code == 200
    assert download["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(BytesIO(b"".join(download.streaming_content)))["Incident"]
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == [high.id]


@pytest.mark.usefixtures("_media_root")
def test_an_export_is_served_to_the_key_that_started_it_only(
    api, outsider, tenancy, django_capture_on_commit_callbacks
):
    factories.make_event(tenancy.account_a)
    with django_capture_on_commit_callbacks(execute=True):
        job_id = api.post("/api/v1/events/exports").json()["id"]
    another_key = key_client(tenancy.org)

    for client in (outsider, another_key):
        assert client.get(f"/api/v1/events/exports/{job_id}").status_code == 404
        assert client.get(f"/api/v1/events/exports/{job_id}/download").status_code == 404


@pytest.mark.usefixtures("_media_root")
def test_a_download_waits_for_the_job_and_ends_with_its_expiry(api, tenancy):
    factories.make_event(tenancy.account_a)
    # No on-commit callbacks run: the job stays pending.
    job_id = api.post("/api/v1/events/exports").json()["id"]

    pending = api.get(f"/api/v1/events/exports/{job_id}/download")
    ExportJob.objects.filter(id=job_id).update(
        status=ExportStatus.DONE, expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = api.get(f"/api/v1/events/exports/{job_id}/download")

    assert pending.status_code == 409
    assert api.get(f"/api/v1/events/exports/{job_id}").json()["download"] is None
    assert expired.status_code == 410


def test_an_export_of_nothing_is_refused_naming_the_filters(api):
    response = api.post("/api/v1/events/exports?occurred=1d")

    assert response.status_code == 422
    assert "filters" in response.json()["errors"]
    assert not ExportJob.objects.exists()


def test_an_export_with_a_bad_filter_is_refused_naming_it(api, tenancy):
    factories.make_event(tenancy.account_a)

    response = api.post("/api/v1/events/exports?risk=7")

    assert response.status_code == 422
    assert "risk" in response.json()["errors"]
    assert not ExportJob.objects.exists()
