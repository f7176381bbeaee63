"""The event details page: its four tabs, who may open them, and the htmx partial."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from alerts.models import Alert, AlertSource
from events import services
from events.models import EventAlert, EventStatus, EventStatusChange
from events.views import ALERTS_PER_PAGE, DETAIL_TABS, TIMELINE_LIMIT
from secops.enums import RegionGroup, RiskLevel
from tests import factories
from tests.conftest import ALERT_TIME

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# The pager's link labels, with their angle quotation marks.
PREVIOUS = "\u2039 Previous"
NEXT = "Next \u203a"

TAB_KEYS = [key for key, _ in DETAIL_TABS]


def detail_url(event, **query) -> str:
    url = reverse("events:detail", args=[event.pk])
    return url + "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else url


def section(html: str, testid: str) -> str:
    """The inner HTML of the element carrying ``data-testid`` (not nested in its own kind)."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element with data-testid={testid!r}"
    return match.group(2)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def link_alerts(event, alerts):
    EventAlert.objects.bulk_create(EventAlert(event=event, alert=alert) for alert in alerts)


def many_alerts(account, count: int, prefix: str = "Alert") -> list[Alert]:
    """``count`` alerts one second apart, named "<prefix> 0000" onwards."""
    return Alert.objects.bulk_create(
        Alert(
            account=account,
            source=AlertSource.SECURITY_CENTER,
            source_uuid=f"{prefix}-{n}",
            type="webshell",
            name=f"{prefix} {n:04d}",
            level=RiskLevel.MEDIUM,
            occurred_at=ALERT_TIME + timedelta(seconds=n),
            region=account.home_region,
        )
        for n in range(count)
    )


@pytest.fixture
def incident(tenancy):
    """A High Risk event of account A in China, grouped by attacker IP, on two assets."""
    a = tenancy.account_a
    rule = factories.make_rule(name="Same attacker IP", group_by=["attacker_ip"])
    event = factories.make_event(
        a,
        rule=rule,
        name="Attack from 203.0.113.7",
        description="Web exploitation followed by a reverse shell.",
        risk=RiskLevel.HIGH,
        first_occurred_at=ALERT_TIME - timedelta(hours=2),
        last_occurred_at=ALERT_TIME,
        alert_count=3,
        group_values={
            "fields": {"attacker_ip": "203.0.113.7"},
            "display": {},
            "window_seconds": 24 * 3600,
        },
    )
    event.affected_assets.add(
        factories.make_asset(
            a,
            name="web-01",
            public_ip="198.51.100.10",
            private_ip="10.0.0.10",
            os="Ubuntu 22.04",
        ),
        factories.make_asset(
            a, name="db-01", public_ip=None, private_ip="10.0.0.20", os="CentOS 7"
        ),
    )
    return event


@pytest.fixture
def alice_client(tenancy):
    return tenancy.client_for(tenancy.alice)


# --- who may open which tab --------------------------------------------------------


@pytest.mark.parametrize("tab", TAB_KEYS)
def test_it_renders_every_tab_for_an_admin(alice_client, incident, tab):
    response = alice_client.get(detail_url(incident, tab=tab))
    html = response.content.decode()

    assert response.status_code == 200
    assert f'<div id="tab" class="card tab-panel" data-tab="{tab}">' in html
    selected = re.findall(r'<a role="tab"[^>]*aria-selected="true"[^>]*data-testid="([^"]+)"', html)
    assert selected == [f"tab-{tab}"]
    assert "Attack from 203.0.113.7" in html


def test_it_opens_the_information_tab_for_an_unknown_tab(alice_client, incident):
    response = alice_client.get(detail_url(incident, tab="settings"))

    assert response.context["tab"] == "info"
    assert 'data-testid="why-grouped"' in response.content.decode()


@pytest.mark.parametrize("tab", TAB_KEYS)
@pytest.mark.parametrize("htmx", [False, True])
def test_it_hides_every_tab_from_an_outsider(tenancy, incident, tab, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = tenancy.client_for(tenancy.charlie).get(detail_url(incident, tab=tab), **headers)

    assert response.status_code == 404
    assert "203.0.113.7" not in response.content.decode()


def test_it_hides_an_event_outside_the_analyst_s_accounts(tenancy):
    client = tenancy.client_for(tenancy.bob)
    of_b = factories.make_event(tenancy.account_b)
    of_a = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)

    assert client.get(detail_url(of_b)).status_code == 404
    assert client.get(detail_url(of_a)).status_code == 200


def test_it_offers_the_region_of_an_event_of_the_analyst_s_account(tenancy):
    client = tenancy.client_for(tenancy.bob)
    of_a_abroad = factories.make_event(tenancy.account_a, region=RegionGroup.OUTSIDE_CHINA)

    response = client.get(detail_url(of_a_abroad))

    # Not shown in the view he is in (China), but his to open after a switch.
    assert response.status_code == 404
    assert "region Outside China" in response.content.decode()
    assert of_a_abroad.name not in response.content.decode()


def test_it_answers_404_for_an_event_that_does_not_exist(alice_client, incident):
    response = alice_client.get(reverse("events:detail", args=[incident.pk + 1000]))

    assert response.status_code == 404


@pytest.mark.parametrize("tab", TAB_KEYS)
def test_it_answers_htmx_with_the_tab_partial_only(alice_client, incident, tab):
    response = alice_client.get(detail_url(incident, tab=tab), HTTP_HX_REQUEST="true")
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith(f'<div id="tab" class="card tab-panel" data-tab="{tab}">')
    assert "<html" not in html
    assert 'role="tablist"' not in html


# --- Incident Information ------------------------------------------------------------


def test_it_shows_the_facts_of_the_event(alice_client, incident):
    html = alice_client.get(detail_url(incident)).content.decode()
    facts = text(re.search(r'<dl class="facts">(.*?)</dl>', html, re.S).group(1))

    assert "Account Acme Prod 1111111111111111" in facts
    assert "Risk level High" in facts
    assert "Status Unhandled" in facts
    assert "Description Web exploitation followed by a reverse shell." in facts
    assert "First occurred 2026-11-23 10:00:00" in facts
    assert "Last occurred 2026-11-23 12:00:00" in facts
    assert "Alerts 3" in facts


def test_it_lists_the_status_history_in_order(alice_client, incident, tenancy):
    EventStatusChange.objects.create(
        event=incident, from_status="", to_status=EventStatus.UNHANDLED, note="Opened."
    )
    services.change_event_status(
        incident, EventStatus.HANDLING, user=tenancy.bob, note="Looking at the web logs"
    )
    services.change_event_status(incident, EventStatus.HANDLED, user=tenancy.alice)

    history = section(alice_client.get(detail_url(incident)).content.decode(), "status-history")
    rows = [text(row) for row in re.findall(r"<li>(.*?)</li>", history, re.S)]

    assert len(rows) == 3
    assert rows[0].endswith("Unhandled — Opened.")
    assert rows[1].endswith("Unhandled → Handling by bob — Looking at the web logs")
    assert rows[2].endswith("Handling → Handled by alice")


def test_it_shows_each_affected_asset_s_details_in_a_tooltip(alice_client, incident):
    html = section(alice_client.get(detail_url(incident)).content.decode(), "affected-assets")
    tips = dict(
        re.findall(
            r'<span role="tooltip" id="([^"]+)" class="tooltip">(.*?)</span></span>', html, re.S
        )
    )
    web, db = (incident.affected_assets.get(name=name) for name in ("web-01", "db-01"))

    assert set(tips) == {f"asset-tip-{web.pk}", f"asset-tip-{db.pk}"}
    assert f'aria-describedby="asset-tip-{web.pk}"' in html
    web_tip = text(tips[f"asset-tip-{web.pk}"])
    assert web_tip.startswith("web-01 ")
    assert "Public IP: 198.51.100.10 Private IP: 10.0.0.10 OS: Ubuntu 22.04" in web_tip
    db_tip = text(tips[f"asset-tip-{db.pk}"])
    assert db_tip.startswith("db-01 ")
    assert "Public IP: — Private IP: 10.0.0.20 OS: CentOS 7" in db_tip


def test_it_explains_why_the_alerts_are_grouped(alice_client, incident):
    why = text(section(alice_client.get(detail_url(incident)).content.decode(), "why-grouped"))

    assert why == "Rule “Same attacker IP”: same attacker IP 203.0.113.7 within 24 h."


def test_it_links_a_continuation_and_the_event_it_continues(alice_client, incident):
    continuation = factories.make_event(
        incident.account, rule=incident.rule, continues=incident, group_values={"fields": {}}
    )

    full = section(alice_client.get(detail_url(incident)).content.decode(), "why-grouped")
    continuing = section(alice_client.get(detail_url(continuation)).content.decode(), "why-grouped")

    assert f'Continued by event <a href="{detail_url(continuation)}">#{continuation.pk}</a>' in full
    assert "Continues event" not in full
    assert f'Continues event <a href="{detail_url(incident)}">#{incident.pk}</a>' in continuing


def test_it_escapes_the_event_s_name_and_description(alice_client, tenancy):
    event = factories.make_event(
        tenancy.account_a,
        name="<script>alert(1)</script>",
        description='<img src=x onerror="alert(2)">',
    )

    html = alice_client.get(detail_url(event)).content.decode()

    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html


# --- Attack Timeline -----------------------------------------------------------------


def timeline_stages(response) -> list[tuple[str, list[str]]]:
    """(stage name, alert names) of each stage, in the order shown."""
    html = section(response.content.decode(), "timeline")
    stages = re.findall(
        r'<li class="stage"><div class="stage-name">(.*?)</div>\s*<ul>(.*?)</ul></li>', html, re.S
    )
    return [(text(name), re.findall(r'title="([^"]*)"', alerts)) for name, alerts in stages]


def test_it_orders_the_timeline_by_time_and_groups_consecutive_stages(alice_client, incident):
    a = incident.account

    def alert(name, minutes, tactic=""):
        return factories.make_alert(
            a, name=name, tactic=tactic, occurred_at=ALERT_TIME + timedelta(minutes=minutes)
        )

    # Created out of time order: the timeline follows occurrence, not ids.
    link_alerts(
        incident,
        [
            alert("Reverse shell", 20, "Execution"),
            alert("Cron job added", 40, "Persistence"),
            alert("Exploit of CVE-2021-44228", 0, "Initial Access"),
            alert("Unusual outbound traffic", 30),
            alert("Web shell command", 10, "Execution"),
            alert("Second exploit", 50, "Initial Access"),
        ],
    )
    factories.make_alert(a, name="Alert of another event", tactic="Impact")

    stages = timeline_stages(alice_client.get(detail_url(incident, tab="timeline")))

    assert stages == [
        ("3 Initial Access", ["Exploit of CVE-2021-44228"]),
        ("4 Execution", ["Web shell command", "Reverse shell"]),
        ("Unclassified", ["Unusual outbound traffic"]),
        ("5 Persistence", ["Cron job added"]),
        ("3 Initial Access", ["Second exploit"]),
    ]


def test_it_opens_an_alert_s_information_from_the_timeline(alice_client, incident):
    shell = factories.make_alert(incident.account, name="Reverse shell", tactic="Execution")
    link_alerts(incident, [shell])

    html = section(
        alice_client.get(detail_url(incident, tab="timeline")).content.decode(), "timeline"
    )

    assert f'hx-get="{reverse("alerts:detail", args=[shell.pk])}" hx-target="#alert-panel"' in html


def test_it_shows_at_most_500_alerts_on_the_timeline(alice_client, incident):
    link_alerts(incident, many_alerts(incident.account, TIMELINE_LIMIT + 1))

    html = alice_client.get(detail_url(incident, tab="timeline")).content.decode()

    assert html.count('data-testid="timeline-alert"') == TIMELINE_LIMIT
    assert "Only the first 500 alerts are shown; the Alert tab lists all of them." in html
    assert 'title="Alert 0499"' in html
    assert 'title="Alert 0500"' not in html


def test_it_shows_no_cap_note_for_500_alerts(alice_client, incident):
    link_alerts(incident, many_alerts(incident.account, TIMELINE_LIMIT))

    html = alice_client.get(detail_url(incident, tab="timeline")).content.decode()

    assert html.count('data-testid="timeline-alert"') == TIMELINE_LIMIT
    assert "Only the first" not in html


# --- Alert ---------------------------------------------------------------------------


def listed_alert_ids(response) -> list[int]:
    html = section(response.content.decode(), "event-alerts")
    return [int(pk) for pk in re.findall(r'hx-get="/alerts/(\d+)/"', html)]


def test_it_pages_the_event_s_alerts(alice_client, incident):
    alerts = many_alerts(incident.account, ALERTS_PER_PAGE + 1)
    link_alerts(incident, alerts)
    many_alerts(incident.account, 3, prefix="Not in the event")
    newest_first = [alert.pk for alert in reversed(alerts)]

    first = alice_client.get(detail_url(incident, tab="alerts"))
    second = alice_client.get(detail_url(incident, tab="alerts", page=2))
    first_html, second_html = first.content.decode(), second.content.decode()

    assert listed_alert_ids(first) == newest_first[:ALERTS_PER_PAGE]
    assert '<a href="?tab=alerts&amp;page=2"' in first_html
    assert PREVIOUS not in first_html
    assert listed_alert_ids(second) == newest_first[ALERTS_PER_PAGE:]
    assert '<a href="?tab=alerts&amp;page=1"' in second_html
    assert NEXT not in second_html


def test_it_shows_the_first_page_of_alerts_for_a_bad_page_number(alice_client, incident):
    link_alerts(incident, many_alerts(incident.account, 2))

    response = alice_client.get(detail_url(incident, tab="alerts", page="x"))

    assert response.status_code == 200
    assert len(listed_alert_ids(response)) == 2


def test_it_links_back_to_the_list_with_its_filters(tenancy):
    event = factories.make_event(tenancy.account_a)
    client = tenancy.client_for(tenancy.bob)
    listing = client.get(reverse("events:list"), {"risk": "3", "name": "Web"}).content.decode()
    detail_link = re.search(rf'href="(/events/{event.pk}/\?list=[^"]+)"', listing).group(1)

    html = client.get(detail_link.replace("&amp;", "&")).content.decode()

    back = re.search(r'href="([^"]+)" data-testid="back-to-list"', html).group(1)
    assert back.replace("&amp;", "&") == "/events/?risk=3&name=Web"


def test_it_builds_the_back_link_from_a_query_string_only(tenancy):
    event = factories.make_event(tenancy.account_a)

    html = (
        tenancy.client_for(tenancy.bob)
        .get(reverse("events:detail", args=[event.pk]), {"list": "https://evil.example/"})
        .content.decode()
    )

    back = re.search(r'href="([^"]+)" data-testid="back-to-list"', html).group(1)
    assert back.startswith("/events/?")
    assert "evil.example" not in back.split("?")[0]
