"""What the Alert and Data Sources pages show, over the API: alerts with the
page's filters and cursors, one alert, entities, arrivals and rejections;
all within the key's scope."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertEntity, AlertSource, Entity, EntityRole, EntityType
from alerts.services import CLIENT_ALERT_SOURCES, ingest_alerts
from secops.enums import RiskLevel
from tests import factories
from tests.conftest import native_alert, organisation_scope
from tests.factories import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def api(tenancy):
    return key_client(tenancy.org)


@pytest.fixture
def outsider(tenancy):
    return key_client(tenancy.other_org)


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def entity(account, value="203.0.113.7", **fields):
    now = timezone.now()
    return Entity.objects.create(
        account=account,
        type=EntityType.IP,
        value=value,
        digest=Entity.digest_for(EntityType.IP, value),
        first_seen_at=fields.pop("first_seen_at", now),
        last_seen_at=fields.pop("last_seen_at", now),
        **fields,
    )


def test_it_lists_alerts_with_the_page_filters(api, tenancy):
    waf = factories.make_alert(tenancy.account_a, source=AlertSource.WAF, occurred_at=ago(hours=2))
    factories.make_alert(tenancy.account_a, level=RiskLevel.LOW, occurred_at=ago(hours=3))
    old = factories.make_alert(tenancy.account_b, occurred_at=ago(days=20))
    factories.make_alert(tenancy.account_b, whitelisted=True, occurred_at=ago(minutes=5))
    factories.make_alert(tenancy.account_x, source=AlertSource.WAF)

    by_source = api.get("/api/v1/alerts", {"source": "waf"}).json()["items"]
    by_period = api.get("/api/v1/alerts", {"period": "30d", "level": "3", "whitelisted": "no"})

    assert [a["id"] for a in by_source] == [waf.id]
    assert [a["id"] for a in by_period.json()["items"]] == [waf.id, old.id]


def test_it_pages_alerts_newest_first_with_cursors(api, tenancy):
    made = [factories.make_alert(tenancy.account_a, occurred_at=ago(hours=n)) for n in range(5)]
    ids, cursor = [], None
    while True:
        body = api.get("/api/v1/alerts", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        ids += [a["id"] for a in body.json()["items"]]
        cursor = body.json()["next_cursor"]
        if not cursor:
            break

    assert ids == [a.id for a in made]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"source": "mail"}, "source"), ({"level": "9"}, "level"), ({"period": "1y"}, "period")],
)
def test_it_refuses_a_filter_the_page_refuses_naming_it(api, query, field):
    response = api.get("/api/v1/alerts", query)

    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_it_shows_an_alert_with_its_entities_and_original_data(api, tenancy):
    alert = factories.make_alert(
        tenancy.account_a,
        raw={"cmd": "<script>alert(1)</script>"},
        exceptions=[{"name": "path", "value": "/tmp/x"}],
    )
    ip = entity(tenancy.account_a, malicious=True)
    AlertEntity.objects.create(alert=alert, entity=ip, role=EntityRole.ATTACKER)

    body = api.get(f"/api/v1/alerts/{alert.id}").json()

    assert body["raw"] == {"cmd": "<script>alert(1)</script>"}
    assert body["exceptions"] == [{"name": "path", "value": "/tmp/x"}]
    assert [(e["value"], e["role"], e["digest"]) for e in body["entities"]] == [
        ("203.0.113.7", "attacker", ip.digest)
    ]
    assert body["whitelisted_by"] is None


def test_an_alert_outside_the_key_is_not_found(api, outsider, tenancy):
    alert = factories.make_alert(tenancy.account_b)
    account_a_key = key_client(tenancy.org, tenancy.account_a)

    assert outsider.get(f"/api/v1/alerts/{alert.id}").status_code == 404
    assert account_a_key.get(f"/api/v1/alerts/{alert.id}").status_code == 404
    assert outsider.get("/api/v1/alerts").json()["items"] == []
    assert api.get(f"/api/v1/alerts/{alert.id}").status_code == 200


def test_it_lists_entities_last_seen_first_with_filters(api, outsider, tenancy):
    older = entity(tenancy.account_a, "198.51.100.1", last_seen_at=ago(days=2))
    newer = entity(tenancy.account_b, "198.51.100.2", malicious=True)
    entity(tenancy.account_x, "198.51.100.3")

    listed = api.get("/api/v1/entities", {"type": "ip"}).json()["items"]
    malicious = api.get("/api/v1/entities", {"malicious": "true"}).json()["items"]

    assert [e["id"] for e in listed] == [newer.id, older.id]
    assert [e["id"] for e in malicious] == [newer.id]
    assert [e["account"] for e in outsider.get("/api/v1/entities").json()["items"]] == [
        tenancy.account_x.uid
    ]


def test_it_shows_the_data_sources_page_data(api, outsider, tenancy):
    ingest_alerts(
        [native_alert(tenancy.account_a), {"source": "waf"}],
        scope=organisation_scope(tenancy.org),
        partial=True,
        sources=CLIENT_ALERT_SOURCES,
    )

    body = api.get("/api/v1/data-sources").json()
    foreign = outsider.get("/api/v1/data-sources").json()

    assert len(body["days"]) == 14
    [arrival] = body["arrivals"]
    assert (arrival["account"], arrival["kind"], arrival["counts"][-1]) == (
        tenancy.account_a.uid,
        "alert",
        1,
    )
    assert body["rejections"] and {r["index"] for r in body["rejections"]} == {1}
    assert {k["name"] for k in body["api_keys"]} == {"test"}
    assert foreign["arrivals"] == [] and foreign["rejections"] == []
