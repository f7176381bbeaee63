"""The entity page: its context, threat intelligence, related alerts and events
and handling, all within the viewer's scope; and the alert details linking to it."""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from alerts.models import Alert, AlertEntity, Entity, EntityRole
from disposal import entity_views
from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    PolicySource,
    Scenario,
    TaskStatus,
    ThreatIndicator,
    Verdict,
)
from events.models import EventAlert
from secops.enums import RegionGroup, View
from tests import factories
from tests.conftest import ALERT_TIME

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

IP = "203.0.113.50"
HTMX = {"HTTP_HX_REQUEST": "true"}


def entity_url(entity_type: str, value: str) -> str:
    return reverse("disposal:entity", args=[entity_type, Entity.digest_for(entity_type, value)])


def section(html: str, testid: str) -> str:
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element with data-testid={testid!r}"
    return match.group(2)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def fact(html: str, label: str) -> str:
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    assert match, f"no fact labelled {label!r}"
    return text(match.group(1))


def sighting(
    account,
    value,
    *,
    entity_type="ip",
    role=EntityRole.ATTACKER,
    name="SSH brute force",
    asset=None,
    region=None,
    occurred_at=ALERT_TIME,
    attributes=None,
) -> Alert:
    """An alert of ``account`` naming the entity, as ingestion stores them."""
    entity, created = Entity.objects.get_or_create(
        account=account,
        type=entity_type,
        digest=Entity.digest_for(entity_type, value),
        defaults={
            "value": value,
            "attributes": attributes or {},
            "malicious": role == EntityRole.ATTACKER,
            "first_seen_at": occurred_at,
            "last_seen_at": occurred_at,
        },
    )
    if not created:
        entity.first_seen_at = min(entity.first_seen_at, occurred_at)
        entity.last_seen_at = max(entity.last_seen_at, occurred_at)
        entity.malicious = entity.malicious or role == EntityRole.ATTACKER
        entity.save()
    alert = factories.make_alert(
        account, asset=asset, name=name, region=region, occurred_at=occurred_at
    )
    AlertEntity.objects.create(alert=alert, entity=entity, role=role)
    return alert


def indicator(organisation, value, source, *, entity_type="ip", **fields) -> ThreatIndicator:
    fields.setdefault("verdict", Verdict.MALICIOUS)
    return ThreatIndicator.objects.create(
        organisation=organisation,
        entity_type=entity_type,
        value=value,
        digest=Entity.digest_for(entity_type, value),
        source=source,
        **fields,
    )


def policy(account, value, *, status, event=None, entity_type="ip"):
    handled = HandlingPolicy.objects.create(
        account=account,
        entity_type=entity_type,
        entity_value=value,
        entity_digest=Entity.digest_for(entity_type, value),
        scenario=Scenario.objects.get(key="block-ip-cloud-firewall-inbound"),
        validity_days=7,
        source=PolicySource.EVENT,
        source_event=event,
    )
    HandlingTask.objects.create(
        policy=handled, account=account, cloud_service="cloud_firewall", status=status
    )
    return handled


@dataclass
class Seen:
    url: str
    event_a: object
    event_b: object
    event_x: object


@pytest.fixture
def seen(tenancy) -> Seen:
    """IP attacked web-01 and was named by a login on db-01 in account A (China);
    it scanned account B (outside China) and account X of the other organisation."""
    a, b, x = tenancy.account_a, tenancy.account_b, tenancy.account_x
    web = factories.make_asset(a, name="web-01")
    db = factories.make_asset(a, name="db-01")
    brute = sighting(a, IP, asset=web, name="SSH brute force on web-01")
    login = sighting(
        a,
        IP,
        asset=db,
        role=EntityRole.RELATED,
        name="Unusual login on db-01",
        occurred_at=ALERT_TIME + timedelta(hours=1),
    )
    scan = sighting(
        b,
        IP,
        asset=factories.make_asset(b, name="intl-web"),
        name="Port scan of Acme Intl",
        occurred_at=ALERT_TIME - timedelta(days=3),
    )
    umbrella = sighting(x, IP, name="Umbrella private alert")
    event_a = factories.make_event(a, name="Brute force then login")
    event_b = factories.make_event(b, name="Scan of Acme Intl")
    event_x = factories.make_event(x, name="Umbrella private event")
    EventAlert.objects.bulk_create(
        [
            EventAlert(event=event_a, alert=brute),
            EventAlert(event=event_a, alert=login),
            EventAlert(event=event_b, alert=scan),
            EventAlert(event=event_x, alert=umbrella),
        ]
    )
    indicator(None, IP, "Shared feed", confidence=80, description="Mass SSH scanner")
    indicator(
        tenancy.org,
        IP,
        "Acme CERT",
        verdict=Verdict.SUSPICIOUS,
        valid_until=timezone.now() - timedelta(days=1),
    )
    indicator(tenancy.other_org, IP, "Umbrella private feed")
    policy(a, IP, status=TaskStatus.SUCCEEDED, event=event_a)
    policy(b, IP, status=TaskStatus.FAILED, event=event_b)
    return Seen(entity_url("ip", IP), event_a, event_b, event_x)


def global_view(client, region=None):
    client.post(reverse("change_scope"), {"view": View.GLOBAL})
    if region:
        client.post(reverse("change_scope"), {"region": region})
    return client


# --- what the page shows ------------------------------------------------------------


def test_it_shows_the_entitys_context_in_the_current_account_view(tenancy, seen):
    response = tenancy.client_for(tenancy.bob).get(seen.url)
    html = response.content.decode()

    assert response.status_code == 200
    assert section(html, "entity-value") == IP
    assert fact(html, "Seen in accounts") == "Acme Prod 1111111111111111"
    assert fact(html, "Hosts") == "db-01 web-01"
    assert fact(html, "First seen") == f"{ALERT_TIME:%Y-%m-%d %H:%M:%S}"
    assert fact(html, "Last seen") == f"{ALERT_TIME + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"
    assert fact(html, "Roles") == "Attacker in 1 alert, Related in 1 alert"
    assert fact(html, "Malicious") == (
        "Yes: an alert names it as the attacker; threat intelligence from Shared feed"
    )


def test_it_lists_the_indicators_of_the_scopes_organisation_and_the_shared_ones(tenancy, seen):
    html = tenancy.client_for(tenancy.bob).get(seen.url).content.decode()
    rows = [
        text(row) for row in re.findall(r'<tr [^>]*data-testid="indicator">(.*?)</tr>', html, re.S)
    ]

    assert len(rows) == 2
    assert rows[0].startswith("Malicious Shared feed (shared) 80")
    assert "Mass SSH scanner" in rows[0]
    # Expired indicators are kept, marked and listed after the valid ones.
    assert rows[1].startswith("Suspicious Acme CERT")
    assert "Expired" in rows[1]
    assert "Umbrella" not in html


def test_it_lists_related_alerts_and_events_of_the_scope_only(tenancy, seen):
    html = tenancy.client_for(tenancy.bob).get(seen.url).content.decode()
    alerts = section(html, "entity-alerts")

    assert "Related alerts (2)" in html
    assert re.findall(r"<tr data-alert-id=\"(\d+)\"", alerts) == [
        str(pk)
        for pk in Alert.objects.filter(account=tenancy.account_a)
        .order_by("-occurred_at")
        .values_list("pk", flat=True)
    ]
    assert "Unusual login on db-01" in alerts and "SSH brute force on web-01" in alerts
    login = Alert.objects.get(name="Unusual login on db-01")
    assert f'href="{reverse("alerts:detail", args=[login.pk])}"' in alerts
    events = section(html, "entity-events")
    assert "Related events (1)" in html
    assert f'href="{reverse("events:detail", args=[seen.event_a.pk])}"' in events
    for other in ("Acme Intl", "Port scan", "Scan of Acme Intl", "Umbrella"):
        assert other not in html


def test_it_lists_the_handling_policies_of_the_scope_with_their_tasks(tenancy, seen):
    html = tenancy.client_for(tenancy.bob).get(seen.url).content.decode()
    policies = re.findall(r'<tr data-testid="policy">(.*?)</tr>', html, re.S)

    assert len(policies) == 1
    assert text(policies[0]).startswith(
        f"Block inbound traffic from the IP on Cloud Firewall Event #{seen.event_a.pk}"
    )
    assert f'href="{reverse("events:detail", args=[seen.event_a.pk])}"' in policies[0]
    assert re.findall(r'data-testid="task-status">([^<]*)<', policies[0]) == ["Succeeded: 1"]
    assert "Failed" not in text(policies[0])


def test_the_global_view_shows_every_managed_account_and_alerts_of_the_region(tenancy, seen):
    client = global_view(tenancy.client_for(tenancy.alice))

    html = client.get(seen.url).content.decode()
    assert fact(html, "Seen in accounts") == "Acme Intl 2222222222222222 Acme Prod 1111111111111111"
    assert fact(html, "First seen") == f"{ALERT_TIME - timedelta(days=3):%Y-%m-%d %H:%M:%S}"
    assert len(re.findall(r'data-testid="policy"', html)) == 2
    # Alerts and events follow the region selector: account B's are outside China.
    assert "Related alerts (2)" in html and "Port scan of Acme Intl" not in html
    assert "Scan of Acme Intl" not in html

    client.post(reverse("change_scope"), {"region": RegionGroup.OUTSIDE_CHINA})
    html = client.get(seen.url).content.decode()
    assert "Related alerts (1)" in html and "Port scan of Acme Intl" in html
    assert "Scan of Acme Intl" in html and "Brute force then login" not in html
    assert "Umbrella" not in html


def test_a_file_named_by_its_path_matches_indicators_of_its_hashes(tenancy):
    md5 = "44d88612fea8a8f36de82e1278abb02f"
    sighting(
        tenancy.account_a,
        "/tmp/x",
        entity_type="file",
        role=EntityRole.RELATED,
        attributes={"path": "/tmp/x", "md5": md5.upper()},
    )
    indicator(None, md5, "Hash feed", entity_type="file")
    indicator(None, "0" * 32, "Other hash", entity_type="file")

    html = tenancy.client_for(tenancy.bob).get(entity_url("file", "/tmp/x")).content.decode()

    rows = [text(row) for row in re.findall(r'data-testid="indicator">(.*?)</tr>', html, re.S)]
    assert len(rows) == 1
    assert rows[0].startswith("Malicious Hash feed") and rows[0].endswith(f"MD5 {md5}")
    assert fact(html, "Malicious") == "Yes: threat intelligence from Hash feed"


def test_it_escapes_attacker_controlled_values(tenancy):
    payload = '<script>alert("entity")</script>'
    url = f"http://evil.example/{payload}"
    sighting(
        tenancy.account_a,
        url,
        entity_type="url",
        name=f"Alert {payload}",
        attributes={"referrer": payload},
    )
    indicator(None, url, f"Feed {payload}", entity_type="url", description=payload)

    html = tenancy.client_for(tenancy.bob).get(entity_url("url", url)).content.decode()

    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(&quot;entity&quot;)&lt;/script&gt;") >= 5


def test_the_alert_pager_answers_htmx_with_the_next_page_only(tenancy):
    for minute in range(entity_views.ALERTS_PER_PAGE + 3):
        sighting(
            tenancy.account_a,
            IP,
            name=f"Alert {minute:02d}",
            occurred_at=ALERT_TIME + timedelta(minutes=minute),
        )
    client = tenancy.client_for(tenancy.bob)

    first = client.get(entity_url("ip", IP)).content.decode()
    assert len(re.findall(r"<tr data-alert-id=", first)) == entity_views.ALERTS_PER_PAGE
    assert 'hx-get="?page=2"' in first

    response = client.get(entity_url("ip", IP) + "?page=2", **HTMX)
    second = response.content.decode()
    assert second.startswith('<div id="entity-alerts"') and "<html" not in second
    assert re.findall(r"Alert (\d\d)</a>", second) == ["02", "01", "00"]


def test_it_links_to_the_disposal_centers_tasks_of_a_policy_when_that_page_exists(
    tenancy, seen, monkeypatch
):
    def no_center(name, *args, **kwargs):
        raise NoReverseMatch(name)

    monkeypatch.setattr(entity_views, "reverse", no_center)
    html = tenancy.client_for(tenancy.bob).get(seen.url).content.decode()
    assert 'data-testid="policy-tasks"' not in html

    monkeypatch.setattr(entity_views, "reverse", lambda name, *a, **k: "/disposal/")
    html = tenancy.client_for(tenancy.bob).get(seen.url).content.decode()
    handled = HandlingPolicy.objects.get(account=tenancy.account_a)
    assert f'href="/disposal/?tab=tasks&amp;policy={handled.pk}"' in html


def test_its_queries_do_not_grow_with_the_alerts_and_tasks(
    tenancy, seen, django_assert_max_num_queries
):
    for minute in range(30):
        sighting(tenancy.account_a, IP, occurred_at=ALERT_TIME + timedelta(minutes=minute))
        policy(tenancy.account_a, IP, status=TaskStatus.PENDING)
    client = tenancy.client_for(tenancy.bob)

    with django_assert_max_num_queries(20):
        assert client.get(seen.url).status_code == 200


# --- who may open it ------------------------------------------------------------------


def test_it_is_404_for_an_outsider(tenancy):
    sighting(tenancy.account_a, "198.51.100.77", name="Only in Acme Prod")
    url = entity_url("ip", "198.51.100.77")

    assert tenancy.client_for(tenancy.charlie).get(url).status_code == 404
    assert tenancy.client_for(tenancy.bob).get(url).status_code == 200


def test_an_outsider_who_saw_the_same_entity_sees_only_his_own(tenancy, seen):
    html = tenancy.client_for(tenancy.charlie).get(seen.url).content.decode()

    assert "Umbrella private alert" in html and "Umbrella private event" in html
    assert "Umbrella private feed" in html and "Shared feed" in html
    assert "Acme" not in html and "web-01" not in html
    assert 'data-testid="policy"' not in html


def test_it_is_404_for_an_entity_seen_only_in_another_account(tenancy):
    sighting(tenancy.account_b, "198.51.100.99", name="Only in Acme Intl")
    url = entity_url("ip", "198.51.100.99")

    assert tenancy.client_for(tenancy.bob).get(url).status_code == 404
    assert global_view(tenancy.client_for(tenancy.alice)).get(url).status_code == 200


def test_it_offers_an_administrator_of_the_other_account_to_switch_to_it(tenancy):
    sighting(tenancy.account_b, "198.51.100.99", name="Only in Acme Intl")
    url = entity_url("ip", "198.51.100.99")
    client = tenancy.client_for(tenancy.alice)  # in the view of Acme Prod

    response = client.get(url)

    assert response.status_code == 404
    html = response.content.decode()
    assert "Acme Intl" in html and tenancy.account_b.uid in html
    client.post(
        reverse("change_scope"), {"account": tenancy.account_b.id, "region": "intl", "next": url}
    )
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "entity_type, digest",
    [
        ("ip", "not-a-digest"),
        ("ip", Entity.digest_for("ip", IP).upper()),
        ("ip", Entity.digest_for("ip", IP)[:63]),
        ("ipv4", Entity.digest_for("ip", IP)),
        ("domain", Entity.digest_for("ip", IP)),
        ("ip", Entity.digest_for("ip", "192.0.2.1")),
    ],
)
def test_it_is_404_for_a_bad_type_or_digest(tenancy, seen, entity_type, digest):
    url = reverse("disposal:entity", args=[entity_type, digest])

    assert tenancy.client_for(tenancy.bob).get(url).status_code == 404


def test_it_sends_an_anonymous_visitor_to_the_login_page(client, seen):
    response = client.get(seen.url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- the link from the alert details ----------------------------------------------------


def test_alert_details_link_each_entity_to_its_entity_page(tenancy, seen):
    alert = Alert.objects.get(name="SSH brute force on web-01")

    html = tenancy.client_for(tenancy.bob).get(reverse("alerts:detail", args=[alert.pk]))
    links = re.findall(
        r'<a class="mono" href="([^"]+)" data-testid="entity-page-link">([^<]*)</a>',
        html.content.decode(),
    )

    assert links == [(seen.url, IP)]
