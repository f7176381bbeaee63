"""The Alert page: its filters, live polling for new alerts, and an alert's details."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertSource
from alerts.views import ALERTS_PER_PAGE
from events.models import EventAlert
from secops.enums import RegionGroup, RiskLevel, View
from secops.pagination import page_of
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ALERT_LIST = reverse("alerts:list")
HTMX = {"HTTP_HX_REQUEST": "true"}


def hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)


def listed_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-alert-id="(\d+)"', response.content.decode())]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def fact(html: str, label: str) -> str:
    """The text of the <dd> that follows ``<dt>label</dt>``."""
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    assert match, f"no fact labelled {label!r}"
    return text(match.group(1))


def poller(html: str) -> tuple[str, int]:
    """The URL the poller asks next and the newest alert id it knows."""
    match = re.search(r'<div id="poller" hx-get="([^"]+)"[^>]*data-newest="(\d+)"', html)
    assert match, "no poller in the response"
    return match.group(1).replace("&amp;", "&"), int(match.group(2))


@pytest.fixture
def bob_client(tenancy):
    return tenancy.client_for(tenancy.bob)


# --- filters -------------------------------------------------------------------------


@pytest.fixture
def assorted(tenancy):
    a = tenancy.account_a
    return {
        "webshell": factories.make_alert(a, type="webshell", level=RiskLevel.HIGH),
        "sqli": factories.make_alert(
            a, source=AlertSource.WAF, type="sql_injection", level=RiskLevel.MEDIUM
        ),
        "scan": factories.make_alert(
            a, source=AlertSource.CLOUD_FIREWALL, type="port_scan", level=RiskLevel.LOW
        ),
        "rule_hit": factories.make_alert(
            a, source=AlertSource.SIEM, type="brute_force", level=RiskLevel.HIGH
        ),
        "quiet": factories.make_alert(
            a, source=AlertSource.WAF, type="sql_injection", level=RiskLevel.LOW, whitelisted=True
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"webshell", "sqli", "scan", "rule_hit", "quiet"}),
        ({"source": AlertSource.WAF}, {"sqli", "quiet"}),
        ({"source": AlertSource.SIEM}, {"rule_hit"}),
        ({"source": AlertSource.CLOUD_FIREWALL}, {"scan"}),
        ({"level": RiskLevel.HIGH}, {"webshell", "rule_hit"}),
        ({"level": RiskLevel.LOW}, {"scan", "quiet"}),
        ({"type": "sql_injection"}, {"sqli", "quiet"}),
        ({"type": " Port_Scan "}, {"scan"}),
        ({"whitelisted": "yes"}, {"quiet"}),
        ({"whitelisted": "no"}, {"webshell", "sqli", "scan", "rule_hit"}),
        ({"source": AlertSource.WAF, "whitelisted": "no"}, {"sqli"}),
        ({"level": RiskLevel.LOW, "source": AlertSource.WAF}, {"quiet"}),
    ],
)
def test_it_filters_by_source_level_type_and_whitelisting(bob_client, assorted, query, expected):
    response = bob_client.get(ALERT_LIST, query)

    assert response.status_code == 200
    assert set(listed_ids(response)) == {assorted[key].id for key in expected}


def field_errors(response) -> dict[str, str]:
    found = re.findall(
        r'<span class="field-error" id="error-(\w+)"[^>]*>([^<]*)</span>', response.content.decode()
    )
    return {field: message for field, message in found if message}


@pytest.mark.parametrize(
    ("query", "field", "message", "expected"),
    [
        (
            {"level": RiskLevel.HIGH, "source": "carrier_pigeon"},
            "source",
            "Choose one of the listed cloud services.",
            {"webshell", "rule_hit"},
        ),
        (
            {"source": AlertSource.WAF, "level": "9"},
            "level",
            "Level must be High, Medium or Low.",
            {"sqli", "quiet"},
        ),
        (
            {"type": "sql_injection", "whitelisted": "maybe"},
            "whitelisted",
            "Choose All, Not whitelisted or Whitelisted.",
            {"sqli", "quiet"},
        ),
        (
            {"level": RiskLevel.LOW, "period": "1y"},
            "period",
            "Choose one of the listed periods.",
            {"scan", "quiet"},
        ),
    ],
)
def test_it_keeps_the_valid_filters_when_one_cannot_be_used(
    bob_client, assorted, query, field, message, expected
):
    response = bob_client.get(ALERT_LIST, query)

    assert response.status_code == 200
    assert set(listed_ids(response)) == {assorted[key].id for key in expected}
    assert field_errors(response) == {field: message}
    assert 'data-testid="filters-left-out"' in response.content.decode()


def test_it_sends_the_field_messages_with_the_htmx_partial(bob_client, assorted):
    response = bob_client.get(ALERT_LIST, {"level": RiskLevel.HIGH, "source": "x"}, **HTMX)

    assert set(listed_ids(response)) == {assorted["webshell"].id, assorted["rule_hit"].id}
    assert re.search(
        r'<span class="field-error" id="error-source"[^>]*hx-swap-oob="true"', response.text
    )


def test_it_says_how_many_alerts_match_and_links_to_the_last_page(bob_client, tenancy):
    for minutes in range(ALERTS_PER_PAGE * 2 + 3):
        factories.make_alert(tenancy.account_a, occurred_at=hours_ago(minutes / 60))
    factories.make_alert(tenancy.account_b)

    first = bob_client.get(ALERT_LIST)
    last = bob_client.get(ALERT_LIST, {"page": "last"})

    assert f"{ALERTS_PER_PAGE * 2 + 3} alerts" in text(first.text)
    assert "Page 1 of 3" in text(first.text)
    assert re.search(r'<a href="\?page=3"[^>]*data-testid="last-page"', first.text)
    assert len(listed_ids(last)) == 3
    assert "Page 3 of 3" in text(last.text)
    assert 'data-testid="last-page"' not in last.text


def test_it_says_a_page_past_the_end_and_keeps_the_filters_in_its_link(bob_client, tenancy):
    for _ in range(3):
        factories.make_alert(tenancy.account_a, level=RiskLevel.HIGH)

    response = bob_client.get(ALERT_LIST, {"level": RiskLevel.HIGH, "page": 40})

    assert listed_ids(response) == []
    assert "Page 40 is past the end; the list has 1 page." in text(response.text)
    assert "No alerts match these filters." not in response.text
    link = re.search(r'<a href="([^"]+)"[^>]*data-testid="past-the-end-last"', response.text)
    assert parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query) == {
        "level": ["3"],
        "page": ["1"],
    }


@pytest.mark.parametrize(
    ("period", "expected_ages"),
    [
        ("1h", {0.5}),
        ("1d", {0.5, 5}),
        ("7d", {0.5, 5, 72}),
        ("30d", {0.5, 5, 72, 480}),
        ("180d", {0.5, 5, 72, 480, 2400}),
        ("", {0.5, 5, 72}),
    ],
)
def test_it_filters_by_period(bob_client, tenancy, period, expected_ages):
    ages = {
        hours: factories.make_alert(tenancy.account_a, occurred_at=hours_ago(hours)).id
        for hours in (0.5, 5, 72, 480, 2400, 4800)
    }

    response = bob_client.get(ALERT_LIST, {"period": period})

    assert set(listed_ids(response)) == {ages[hours] for hours in expected_ages}


def test_it_lists_newest_first_and_answers_htmx_with_the_results_only(bob_client, tenancy):
    older = factories.make_alert(tenancy.account_a, occurred_at=hours_ago(3))
    newer = factories.make_alert(tenancy.account_a, occurred_at=hours_ago(1))

    page = bob_client.get(ALERT_LIST)
    partial = bob_client.get(ALERT_LIST, **HTMX)

    assert listed_ids(page) == [newer.id, older.id]
    assert "<html" in page.content.decode()
    assert listed_ids(partial) == [newer.id, older.id]
    assert "<html" not in partial.content.decode()
    assert partial.content.decode().lstrip().startswith('<div id="results"')


def test_it_shows_an_analyst_only_the_alerts_of_their_scope(bob_client, tenancy):
    mine = factories.make_alert(tenancy.account_a, region=RegionGroup.CHINA)
    factories.make_alert(tenancy.account_a, region=RegionGroup.OUTSIDE_CHINA)
    factories.make_alert(tenancy.account_b, region=RegionGroup.CHINA)
    factories.make_alert(tenancy.account_x, region=RegionGroup.CHINA)

    assert listed_ids(bob_client.get(ALERT_LIST)) == [mine.id]


def test_it_shows_a_global_admin_every_managed_account_with_its_name(tenancy):
    of_a = factories.make_alert(tenancy.account_a, region=RegionGroup.CHINA)
    of_b = factories.make_alert(tenancy.account_b, region=RegionGroup.CHINA)
    factories.make_alert(tenancy.account_c, region=RegionGroup.CHINA)
    factories.make_alert(tenancy.account_x, region=RegionGroup.CHINA)
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL})

    response = client.get(ALERT_LIST)
    html = response.content.decode()

    assert set(listed_ids(response)) == {of_a.id, of_b.id}
    assert "<th>Account</th>" in html
    row_of_b = re.search(rf'<tr data-alert-id="{of_b.id}".*?</tr>', html, re.S).group(0)
    assert "<td>Acme Intl</td>" in row_of_b


def test_it_escapes_attacker_controlled_alert_names(bob_client, tenancy):
    factories.make_alert(tenancy.account_a, name="<script>alert(1)</script>")

    html = bob_client.get(ALERT_LIST).content.decode()

    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- live polling --------------------------------------------------------------------


def test_it_tells_the_poller_the_newest_alert_of_the_scope(bob_client, tenancy):
    factories.make_alert(tenancy.account_a)
    newest = factories.make_alert(tenancy.account_a, source=AlertSource.WAF)
    factories.make_alert(tenancy.account_x)

    url, known = poller(bob_client.get(ALERT_LIST, {"source": AlertSource.WAF}).content.decode())

    assert known == newest.id
    assert urlsplit(url).path == ALERT_LIST
    assert parse_qs(urlsplit(url).query) == {"source": ["waf"], "after": [str(newest.id)]}


def received_a_while_ago(alert):
    """An alert the poller's look-back for late commits no longer covers."""
    Alert.objects.filter(id=alert.id).update(received_at=timezone.now() - timedelta(minutes=5))
    return alert


def test_it_sends_only_newer_alerts_of_the_scope_to_the_poller(bob_client, tenancy):
    seen = received_a_while_ago(factories.make_alert(tenancy.account_a, name="Seen before"))
    fresh = [
        factories.make_alert(tenancy.account_a, name="New webshell"),
        factories.make_alert(tenancy.account_a, name="Another new alert"),
    ]
    factories.make_alert(tenancy.account_x, name="Umbrella's alert")
    factories.make_alert(tenancy.account_b, name="Alert of Acme Intl")
    factories.make_alert(tenancy.account_a, name="Abroad", region=RegionGroup.OUTSIDE_CHINA)

    response = bob_client.get(ALERT_LIST, {"after": seen.id}, **HTMX)
    html = response.content.decode()

    assert response.status_code == 200
    assert listed_ids(response) == [fresh[1].id, fresh[0].id]
    assert html.count('class="new-row"') == 2
    assert "<html" not in html
    assert "<table" not in html
    assert "Umbrella" not in html
    assert "Acme Intl" not in html
    assert "Abroad" not in html
    assert "Seen before" not in html
    url, known = poller(html)
    assert known == fresh[1].id
    assert parse_qs(urlsplit(url).query)["after"] == [str(fresh[1].id)]
    assert 'hx-swap-oob="true"' in html


def test_it_resends_an_alert_that_committed_after_a_newer_one(bob_client, tenancy):
    # Ids are taken at insert and become visible at commit: a lower id can
    # show up after the poller moved past it. Recent arrivals are sent again
    # and the browser drops the rows it already shows.
    late = factories.make_alert(tenancy.account_a, name="Committed late")
    newer = factories.make_alert(tenancy.account_a, name="Committed first")

    response = bob_client.get(ALERT_LIST, {"after": newer.id}, **HTMX)

    assert late.id in listed_ids(response)
    assert poller(response.content.decode())[1] == newer.id


def test_it_keeps_the_filters_when_polling(bob_client, tenancy):
    seen = factories.make_alert(tenancy.account_a)
    waf = factories.make_alert(tenancy.account_a, source=AlertSource.WAF)
    factories.make_alert(tenancy.account_a, source=AlertSource.SECURITY_CENTER)

    response = bob_client.get(ALERT_LIST, {"source": "waf", "after": seen.id}, **HTMX)
    url, known = poller(response.content.decode())

    assert listed_ids(response) == [waf.id]
    assert known == waf.id
    assert parse_qs(urlsplit(url).query) == {"source": ["waf"], "after": [str(waf.id)]}


def test_it_keeps_the_poller_where_it_was_when_nothing_new_arrived(bob_client, tenancy):
    seen = received_a_while_ago(factories.make_alert(tenancy.account_a))
    factories.make_alert(tenancy.account_x, name="Umbrella's alert")

    response = bob_client.get(ALERT_LIST, {"after": seen.id}, **HTMX)
    html = response.content.decode()

    assert listed_ids(response) == []
    assert "Umbrella" not in html
    assert poller(html)[1] == seen.id


def test_it_never_sends_another_tenant_s_alerts_to_an_outsider_s_poller(tenancy):
    factories.make_alert(tenancy.account_a, name="Acme's secret alert")

    response = tenancy.client_for(tenancy.charlie).get(ALERT_LIST, {"after": 0}, **HTMX)

    assert listed_ids(response) == []
    assert "Acme" not in response.content.decode()


def test_it_never_loses_an_alert_stored_while_the_page_is_read(bob_client, tenancy, monkeypatch):
    factories.make_alert(tenancy.account_a, name="Already there")
    arrived = []

    def page_then_an_arrival(*args, **kwargs):
        page = page_of(*args, **kwargs)
        arrived.append(factories.make_alert(tenancy.account_a, name="Stored meanwhile"))
        return page

    monkeypatch.setattr("alerts.views.page_of", page_then_an_arrival)
    response = bob_client.get(ALERT_LIST)
    _, known = poller(response.content.decode())

    # Shown now, or shown by the next poll.
    assert arrived[0].id in listed_ids(response) or arrived[0].id > known


def test_it_polls_only_on_the_first_page(bob_client, tenancy):
    for minutes in range(ALERTS_PER_PAGE + 1):
        factories.make_alert(tenancy.account_a, occurred_at=hours_ago(minutes / 60))

    first = bob_client.get(ALERT_LIST).content.decode()
    second = bob_client.get(ALERT_LIST, {"page": 2})

    assert 'id="poller"' in first
    assert len(listed_ids(second)) == 1
    assert 'id="poller"' not in second.content.decode()


def test_it_renders_the_whole_page_for_after_without_htmx(bob_client, tenancy):
    seen = factories.make_alert(tenancy.account_a)
    newer = factories.make_alert(tenancy.account_a)

    response = bob_client.get(ALERT_LIST, {"after": seen.id})

    assert "<html" in response.content.decode()
    assert set(listed_ids(response)) == {seen.id, newer.id}


# --- alert details -------------------------------------------------------------------


@pytest.fixture
def exploit(tenancy):
    a = tenancy.account_a
    asset = factories.make_asset(
        a, name="web-01", public_ip="198.51.100.10", private_ip="10.0.0.10", os="Ubuntu 22.04"
    )
    return factories.make_alert(
        a,
        asset=asset,
        source=AlertSource.WAF,
        type="sql_injection",
        name="SQL injection on /login",
        level=RiskLevel.HIGH,
        occurred_at=datetime(2026, 11, 23, 12, 30, 5, tzinfo=UTC),
        exceptions=[{"name": "Matched rule", "value": "sqli-union-select"}, "request blocked"],
        raw={
            "payload": "<script>alert(document.cookie)</script>",
            "request": {"method": "POST", "uri": "/login"},
        },
    )


def detail_url(alert) -> str:
    return reverse("alerts:detail", args=[alert.pk])


def test_it_shows_the_alert_s_facts(bob_client, exploit):
    html = bob_client.get(detail_url(exploit)).content.decode()

    assert fact(html, "Affected Asset") == "web-01 (198.51.100.10 / 10.0.0.10, Ubuntu 22.04)"
    assert fact(html, "Occurrence Time") == "2026-11-23 12:30:05"
    assert fact(html, "Data Source") == "Web Application Firewall"
    assert fact(html, "Account Receiving Alert") == "Acme Prod 1111111111111111"
    assert fact(html, "Level") == "High"
    assert fact(html, "Type") == "sql_injection"


def test_it_shows_the_associated_exceptions(bob_client, exploit):
    html = bob_client.get(detail_url(exploit)).content.decode()
    exceptions = re.search(r"<h3>Associated Exception</h3>(.*?)<h3>", html, re.S).group(1)

    assert re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", exceptions) == [
        ("Matched rule", "sqli-union-select"),
        ("", "request blocked"),
    ]


def test_it_lists_only_the_events_of_the_scope_the_alert_belongs_to(bob_client, tenancy, exploit):
    visible = factories.make_event(tenancy.account_a, name="Injection campaign")
    abroad = factories.make_event(
        tenancy.account_a, region=RegionGroup.OUTSIDE_CHINA, name="Event abroad"
    )
    foreign = factories.make_event(tenancy.account_x, name="Umbrella's event")
    for event in (visible, abroad, foreign):
        EventAlert.objects.create(event=event, alert=exploit)

    html = bob_client.get(detail_url(exploit)).content.decode()

    assert fact(html, "Security events") == f"#{visible.pk} Injection campaign"
    assert f'href="{reverse("events:detail", args=[visible.pk])}"' in html
    assert "Event abroad" not in html
    assert "Umbrella" not in html


def test_it_pretty_prints_the_original_data_as_text(bob_client, exploit):
    html = bob_client.get(detail_url(exploit)).content.decode()
    original = re.search(r'<pre class="raw" data-testid="original-data">(.*?)</pre>', html, re.S)

    assert "<script>alert(document.cookie)" not in html
    assert original.group(1) == (
        "{\n"
        "  &quot;payload&quot;: &quot;&lt;script&gt;alert(document.cookie)&lt;/script&gt;&quot;,\n"
        "  &quot;request&quot;: {\n"
        "    &quot;method&quot;: &quot;POST&quot;,\n"
        "    &quot;uri&quot;: &quot;/login&quot;\n"
        "  }\n"
        "}"
    )


def test_it_answers_htmx_with_the_detail_panel_only(bob_client, exploit):
    html = bob_client.get(detail_url(exploit), **HTMX).content.decode()

    assert html.lstrip().startswith('<div class="card alert-detail" data-testid="alert-detail">')
    assert "<html" not in html
    assert fact(html, "Data Source") == "Web Application Firewall"


@pytest.mark.parametrize("htmx", [False, True])
def test_it_hides_an_alert_from_an_outsider(tenancy, exploit, htmx):
    headers = HTMX if htmx else {}

    response = tenancy.client_for(tenancy.charlie).get(detail_url(exploit), **headers)

    assert response.status_code == 404
    assert "SQL injection" not in response.content.decode()


def test_it_hides_an_alert_of_another_region_or_account_from_an_analyst(bob_client, tenancy):
    abroad = factories.make_alert(tenancy.account_a, region=RegionGroup.OUTSIDE_CHINA)
    of_b = factories.make_alert(tenancy.account_b, region=RegionGroup.CHINA)

    assert bob_client.get(detail_url(abroad)).status_code == 404
    assert bob_client.get(detail_url(of_b)).status_code == 404


def test_it_answers_404_for_an_alert_that_does_not_exist(bob_client, exploit):
    assert bob_client.get(reverse("alerts:detail", args=[exploit.pk + 1000])).status_code == 404


# --- names instead of ids ---------------------------------------------------------------


def test_it_names_alert_types_and_sources_in_the_list_and_its_filters(bob_client, tenancy):
    factories.make_alert(
        tenancy.account_a, source=AlertSource.CLOUD_FIREWALL, type="abnormal_network"
    )
    factories.make_alert(tenancy.account_a, type="<b>custom</b>")

    html = bob_client.get(ALERT_LIST).content.decode()

    cells = re.findall(r'<td title="[^"]*" data-testid="alert-type">(.*?)</td>', html)
    assert sorted(cells) == ["&lt;b&gt;custom&lt;/b&gt;", "Abnormal network connection"]
    assert "<td>Cloud Firewall</td>" in html
    assert '<option value="abnormal_network">Abnormal network connection</option>' in html
    assert '<option value="cloud_firewall">Cloud Firewall</option>' in html
    assert "<b>custom</b>" not in html


def test_it_keeps_an_unknown_type_filter_as_an_option(bob_client, tenancy):
    factories.make_alert(tenancy.account_a, type="port_scan")

    html = bob_client.get(ALERT_LIST, {"type": "port_scan"}).content.decode()

    assert '<option value="port_scan" selected>port_scan</option>' in html


def test_it_names_the_type_in_the_details_and_keeps_its_key(bob_client, tenancy):
    alert = factories.make_alert(tenancy.account_a, type="abnormal_network")

    html = bob_client.get(detail_url(alert)).content.decode()

    assert fact(html, "Type") == "Abnormal network connection abnormal_network"


def test_an_outsider_reads_no_label_of_another_tenant_s_alert(tenancy):
    alert = factories.make_alert(tenancy.account_a, type="abnormal_network")
    charlie = tenancy.client_for(tenancy.charlie)

    assert charlie.get(detail_url(alert)).status_code == 404
    assert "Abnormal network connection</td>" not in charlie.get(ALERT_LIST).content.decode()
