"""The Security Event Handling list: filters, the overlap rule, sorting,
pagination without COUNT, counts and chart, the htmx partial, and scoping."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date

from events.forms import EVENT_VISIBLE_DAYS
from events.models import EventStatus
from secops.enums import RegionGroup, RiskLevel, View
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# The pager's link labels, with their angle quotation marks.
PREVIOUS = "\u2039 Previous"
NEXT = "Next \u203a"

HIGH, MEDIUM, LOW = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW
EVENT_LIST = reverse("events:list")


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def date_ago(days: int) -> str:
    return (timezone.localdate() - timedelta(days=days)).isoformat()


def event(account, name, *, first=0, last=None, **fields):
    """An event of ``account`` that began ``first`` days ago and last occurred ``last`` days ago."""
    return factories.make_event(
        account,
        name=name,
        first_occurred_at=days_ago(first),
        last_occurred_at=days_ago(first if last is None else last),
        **fields,
    )


def listed_ids(response) -> list[int]:
    """Event ids of the table rows, in the order shown."""
    return [int(pk) for pk in re.findall(r'<tr data-event-id="(\d+)"', response.content.decode())]


def listed_names(response) -> set[str]:
    html = response.content.decode()
    rows = re.findall(r'<tr data-event-id="\d+">.*?</tr>', html, re.S)
    return {re.search(r'<a href="[^"]+">([^<]*)</a>', row).group(1) for row in rows}


def count_shown(response, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">(\d+)<', response.content.decode())
    assert match, f"no count {testid!r} on the page"
    return int(match.group(1))


def pager_link(response, label: str) -> str | None:
    match = re.search(rf'<a href="([^"]*)"[^>]*>{label}', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def field_errors(response) -> dict[str, str]:
    """The messages shown next to the filters, by field."""
    found = re.findall(
        r'<span class="field-error" id="error-(\w+)"[^>]*>([^<]*)</span>', response.content.decode()
    )
    return {field: message for field, message in found if message}


def error_messages(response) -> str:
    return " ".join(field_errors(response).values())


@pytest.fixture
def bob_client(tenancy):
    return tenancy.client_for(tenancy.bob)


# --- each filter ---------------------------------------------------------------


@pytest.fixture
def assorted(tenancy):
    """Four events of account A in China with different risk, status, name and asset."""
    a = tenancy.account_a
    web = factories.make_asset(
        a,
        name="web-01",
        instance_id="i-web01",
        uuid="uuid-web-01",
        public_ip="198.51.100.21",
        private_ip="10.0.0.21",
    )
    db = factories.make_asset(
        a,
        name="db-01",
        instance_id="i-db01",
        uuid="uuid-db-01",
        public_ip="198.51.100.22",
        private_ip="10.0.0.22",
    )
    webshell = event(a, "Webshell on web-01", risk=HIGH)
    webshell.affected_assets.add(web)
    mining = event(a, "Mining on db-01", risk=MEDIUM, status=EventStatus.HANDLING)
    mining.affected_assets.add(db)
    scan = event(a, "Port scan of web-01", risk=LOW, status=EventStatus.HANDLED)
    scan.affected_assets.add(web)
    brute = event(a, "SSH brute force on db-01", risk=HIGH, status=EventStatus.FAILED)
    brute.affected_assets.add(db)
    return {"webshell": webshell, "mining": mining, "scan": scan, "brute": brute}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"webshell", "mining", "scan", "brute"}),
        ({"risk": [HIGH]}, {"webshell", "brute"}),
        ({"risk": [HIGH, LOW]}, {"webshell", "brute", "scan"}),
        ({"status": ["unhandled"]}, {"webshell"}),
        ({"status": ["handling", "failed"]}, {"mining", "brute"}),
        ({"name": "WEB-01"}, {"webshell", "scan"}),
        ({"name": "brute"}, {"brute"}),
        ({"asset": "i-db01"}, {"mining", "brute"}),
        ({"asset": "uuid-web-01"}, {"webshell", "scan"}),
        ({"asset": "i-unknown"}, set()),
        # By host name (in any case) and by public or private IP.
        ({"asset": "DB-01"}, {"mining", "brute"}),
        ({"asset": " web-01 "}, {"webshell", "scan"}),
        ({"asset": "198.51.100.21"}, {"webshell", "scan"}),
        ({"asset": "10.0.0.22"}, {"mining", "brute"}),
        ({"asset": "10.0.0.99"}, set()),
        ({"asset": "web"}, set()),
        ({"risk": [HIGH], "name": "web"}, {"webshell"}),
        ({"risk": [HIGH], "status": ["failed"], "asset": "uuid-db-01"}, {"brute"}),
        ({"risk": [LOW], "status": ["unhandled"]}, set()),
    ],
)
def test_it_filters_by_risk_status_name_and_asset(bob_client, assorted, query, expected):
    response = bob_client.get(EVENT_LIST, query)

    assert response.status_code == 200
    assert set(listed_ids(response)) == {assorted[key].id for key in expected}


def test_it_filters_by_event_id(bob_client, assorted):
    response = bob_client.get(EVENT_LIST, {"event_id": assorted["mining"].id})

    assert listed_ids(response) == [assorted["mining"].id]


# --- a filter that cannot be used ------------------------------------------------


def test_it_keeps_the_valid_filters_when_one_cannot_be_used(bob_client, assorted):
    response = bob_client.get(EVENT_LIST, {"risk": HIGH, "event_id": "-5"})

    assert response.status_code == 200
    # Filtered by risk, not by the event id, and not unfiltered either.
    assert set(listed_ids(response)) == {assorted["webshell"].id, assorted["brute"].id}
    assert field_errors(response) == {"event_id": "Event ID must be a positive number."}
    assert count_shown(response, "count-risk-high") == 2
    assert count_shown(response, "count-risk-medium") == 0
    assert response.context["filters"]["risk"] == [HIGH]
    html = response.content.decode()
    # The form shows what was typed, next to its message, and what applies.
    assert 'name="event_id" value="-5"' in html
    assert 'name="risk" value="3" checked' in html
    assert 'data-testid="filters-left-out"' in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"risk": "9"}, "risk", "Risk must be High, Medium or Low."),
        ({"status": "lost"}, "status", "Status must be Unhandled, Handling, Handled or Failed."),
        ({"event_id": "abc"}, "event_id", "Event ID must be a positive number."),
        ({"event_id": "0"}, "event_id", "Event ID must be a positive number."),
        ({"event_id": "9" * 30}, "event_id", "Event ID is too large: no event has that number."),
        ({"sort": "shoe-size"}, "sort", "Choose one of the listed orders."),
        ({"occurred": "forever"}, "occurred", "Choose one of the listed periods."),
        ({"name": "x" * 201}, "name", "Search names with at most 200 characters."),
    ],
)
def test_it_names_the_field_it_leaves_out(bob_client, assorted, query, field, message):
    response = bob_client.get(EVENT_LIST, {**query, "name": query.get("name", "web")})

    assert field_errors(response) == {field: message}
    if field != "name":
        # The name filter still applies.
        assert set(listed_ids(response)) == {assorted["webshell"].id, assorted["scan"].id}


def test_it_shows_no_note_when_every_filter_applies(bob_client, assorted):
    response = bob_client.get(EVENT_LIST, {"risk": HIGH, "event_id": assorted["brute"].id})

    assert field_errors(response) == {}
    assert 'data-testid="filters-left-out"' not in response.content.decode()
    assert listed_ids(response) == [assorted["brute"].id]


def test_it_sends_the_field_messages_out_of_band_with_the_htmx_partial(bob_client, assorted):
    response = bob_client.get(
        EVENT_LIST, {"risk": HIGH, "event_id": "-5"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()

    assert set(listed_ids(response)) == {assorted["webshell"].id, assorted["brute"].id}
    # The form is not in the partial: its message slots are replaced out of band.
    assert 'data-testid="event-filters"' not in html
    assert re.search(
        r'<span class="field-error" id="error-event_id"[^>]*hx-swap-oob="true"[^>]*>'
        r"Event ID must be a positive number.</span>",
        html,
    )
    assert re.search(r'<span class="field-error" id="error-risk"[^>]*hx-swap-oob="true"', html)
    assert 'id="error-page"' not in html


# --- Occurred Within -------------------------------------------------------------


@pytest.fixture
def spread_over_time(tenancy):
    a = tenancy.account_a
    return {
        age: event(a, f"Event of {age} days ago", first=age).id
        for age in (0, 5, 20, 60, 150, 179, 185)
    }


@pytest.mark.parametrize(
    ("occurred", "expected_ages"),
    [
        ("1d", {0}),
        ("7d", {0, 5}),
        ("30d", {0, 5, 20}),
        ("90d", {0, 5, 20, 60}),
        ("180d", {0, 5, 20, 60, 150, 179}),
    ],
)
def test_it_keeps_the_events_of_each_preset_range(
    bob_client, spread_over_time, occurred, expected_ages
):
    response = bob_client.get(EVENT_LIST, {"occurred": occurred})

    assert set(listed_ids(response)) == {spread_over_time[age] for age in expected_ages}
    assert response.context["filters"]["occurred"] == occurred


def test_it_shows_the_last_7_days_by_default(bob_client, spread_over_time):
    response = bob_client.get(EVENT_LIST)

    assert set(listed_ids(response)) == {spread_over_time[0], spread_over_time[5]}
    assert response.context["filters"]["start"] == timezone.localdate() - timedelta(days=6)


def test_it_keeps_the_events_of_a_custom_range(bob_client, spread_over_time):
    response = bob_client.get(
        EVENT_LIST, {"occurred": "custom", "start": date_ago(70), "end": date_ago(10)}
    )

    assert set(listed_ids(response)) == {spread_over_time[20], spread_over_time[60]}
    assert error_messages(response) == ""


def test_it_refuses_a_custom_range_older_than_180_days(bob_client, spread_over_time):
    response = bob_client.get(
        EVENT_LIST, {"occurred": "custom", "start": date_ago(200), "end": date_ago(100)}
    )

    assert response.status_code == 200
    assert f"Events are kept for {EVENT_VISIBLE_DAYS} days" in error_messages(response)
    # The defaults are used instead: the last 7 days.
    assert set(listed_ids(response)) == {spread_over_time[0], spread_over_time[5]}
    assert response.context["filters"]["occurred"] == "7d"


def test_it_refuses_a_custom_range_ending_before_it_starts(bob_client, spread_over_time):
    response = bob_client.get(
        EVENT_LIST, {"occurred": "custom", "start": date_ago(10), "end": date_ago(70)}
    )

    assert "The end date is before the start date." in error_messages(response)
    assert set(listed_ids(response)) == {spread_over_time[0], spread_over_time[5]}


def test_it_asks_a_custom_range_for_both_dates(bob_client, spread_over_time):
    response = bob_client.get(EVENT_LIST, {"occurred": "custom", "start": date_ago(10)})

    assert field_errors(response) == {"end": "A custom range needs an end date."}
    assert set(listed_ids(response)) == {spread_over_time[0], spread_over_time[5]}


def test_it_keeps_an_event_that_overlaps_the_range(bob_client, tenancy):
    a = tenancy.account_a
    across_start = event(a, "Across the start", first=70, last=50)
    across_end = event(a, "Across the end", first=45, last=30)
    around = event(a, "Around the whole range", first=90, last=5)
    event(a, "Over before the range", first=90, last=61)
    event(a, "Begun after the range", first=39, last=30)

    response = bob_client.get(
        EVENT_LIST, {"occurred": "custom", "start": date_ago(60), "end": date_ago(40)}
    )

    assert set(listed_ids(response)) == {across_start.id, across_end.id, around.id}


# --- sorting and pagination ------------------------------------------------------


@pytest.fixture
def sortable(tenancy):
    a = tenancy.account_a
    old_long = event(a, "Old and long", first=6, last=1, risk=LOW, alert_count=50)
    recent = event(a, "Recent", first=2, last=0.5, risk=MEDIUM, alert_count=1)
    stale = event(a, "Stale", first=5, last=4, risk=HIGH, alert_count=7)
    return old_long.id, recent.id, stale.id


@pytest.mark.parametrize(
    ("sort", "expected_order"),
    [
        ("-last", [1, 0, 2]),
        ("last", [2, 0, 1]),
        ("-first", [1, 2, 0]),
        ("-risk", [2, 1, 0]),
        ("-alerts", [0, 2, 1]),
    ],
)
def test_it_sorts_by_each_key(bob_client, sortable, sort, expected_order):
    response = bob_client.get(EVENT_LIST, {"sort": sort})

    assert listed_ids(response) == [sortable[i] for i in expected_order]


def test_it_sorts_by_last_occurrence_newest_first_by_default(bob_client, sortable):
    old_long, recent, stale = sortable

    assert listed_ids(bob_client.get(EVENT_LIST)) == [recent, old_long, stale]


@pytest.fixture
def twenty_one_webshells(tenancy):
    ids = [event(tenancy.account_a, f"Webshell {n}", first=n / 10, risk=HIGH).id for n in range(21)]
    event(tenancy.account_a, "Port scan", risk=LOW)
    return ids


def test_it_shows_20_events_per_page_without_counting_the_table(bob_client, twenty_one_webshells):
    with CaptureQueriesContext(connection) as queries:
        first = bob_client.get(EVENT_LIST, {"risk": HIGH})
        second = bob_client.get(EVENT_LIST, {"risk": HIGH, "page": 2})
    # Read before another request resets the connection's query log.
    statements = [query["sql"] for query in queries.captured_queries]

    assert listed_ids(first) == twenty_one_webshells[:20]
    assert pager_link(first, NEXT) is not None
    assert pager_link(first, PREVIOUS) is None
    assert listed_ids(second) == twenty_one_webshells[20:]
    assert pager_link(second, NEXT) is None
    assert pager_link(second, PREVIOUS) is not None
    on_events = [sql for sql in statements if '"events_securityevent"' in sql]
    assert on_events
    assert not [sql for sql in on_events if "COUNT(*)" in sql.upper()]
    # Each page is read as one row more than it shows.
    assert [sql for sql in on_events if re.search(r"LIMIT 21$", sql)]
    assert [sql for sql in on_events if re.search(r"LIMIT 21 OFFSET 20$", sql)]


def test_it_says_how_many_events_match_and_links_to_the_last_page(bob_client, twenty_one_webshells):
    first = bob_client.get(EVENT_LIST, {"risk": HIGH})
    last = bob_client.get(EVENT_LIST + pager_link(first, "Last »"))

    assert re.search(r'data-testid="list-total">· 21 events<', first.text)
    assert re.search(r'data-testid="page-number">Page 1 of 2<', first.text)
    assert parse_qs(urlsplit(pager_link(first, "Last »")).query) == {"risk": ["3"], "page": ["2"]}
    assert listed_ids(last) == twenty_one_webshells[20:]
    assert re.search(r'data-testid="page-number">Page 2 of 2<', last.text)
    assert pager_link(last, "Last »") is None
    assert pager_link(last, "« First") is not None


def test_it_says_a_page_is_past_the_end_and_links_to_the_last(bob_client, twenty_one_webshells):
    response = bob_client.get(EVENT_LIST, {"risk": HIGH, "page": 40})

    assert listed_ids(response) == []
    assert "Page 40 is past the end; the list has 2 pages." in response.text
    assert "No security events match these filters." not in response.text
    link = re.search(r'<a href="([^"]+)"[^>]*data-testid="past-the-end-last"', response.text)
    assert parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query) == {
        "risk": ["3"],
        "page": ["2"],
    }
    # The counters still count every matching event.
    assert count_shown(response, "count-risk-high") == 21


def test_it_keeps_the_filters_in_the_pager_links(bob_client, twenty_one_webshells):
    first = bob_client.get(EVENT_LIST, {"risk": HIGH, "name": "Webshell", "sort": "-first"})
    next_link = pager_link(first, NEXT)
    second = bob_client.get(EVENT_LIST + next_link)
    previous_link = pager_link(second, PREVIOUS)

    assert parse_qs(urlsplit(next_link).query) == {
        "risk": ["3"],
        "name": ["Webshell"],
        "sort": ["-first"],
        "page": ["2"],
    }
    assert parse_qs(urlsplit(previous_link).query)["page"] == ["1"]
    assert parse_qs(urlsplit(previous_link).query)["name"] == ["Webshell"]
    assert len(listed_ids(second)) == 1


# --- counts, chart, htmx ---------------------------------------------------------


def test_it_counts_the_filtered_events_by_risk_and_status(bob_client, assorted, tenancy):
    event(tenancy.account_a, "Mining on web-01", risk=MEDIUM)
    event(tenancy.account_a, "Beyond the range", first=30, risk=HIGH)

    everything = bob_client.get(EVENT_LIST)
    on_db = bob_client.get(EVENT_LIST, {"asset": "i-db01"})

    assert [count_shown(everything, f"count-risk-{r}") for r in ("high", "medium", "low")] == [
        2,
        2,
        1,
    ]
    assert [count_shown(everything, f"count-status-{s}") for s in EventStatus.values] == [
        2,
        1,
        1,
        1,
    ]
    assert [count_shown(on_db, f"count-risk-{r}") for r in ("high", "medium", "low")] == [1, 1, 0]
    assert [count_shown(on_db, f"count-status-{s}") for s in EventStatus.values] == [0, 1, 0, 1]


def chart_days(response) -> list[str]:
    svg = re.search(r'<svg class="chart".*?</svg>', response.content.decode(), re.S).group(0)
    return re.findall(r"<title>([^<]*)</title>", svg)


def day_label(days: int) -> str:
    return format_date(timezone.localdate() - timedelta(days=days), "M j")


def test_it_charts_every_day_of_the_range(bob_client, tenancy):
    a = tenancy.account_a
    event(a, "High today", risk=HIGH)
    event(a, "Medium 3 days ago", first=3, risk=MEDIUM)
    event(a, "Low 3 days ago", first=3, last=0, risk=LOW)

    week = chart_days(bob_client.get(EVENT_LIST))
    month = chart_days(bob_client.get(EVENT_LIST, {"occurred": "30d"}))
    custom = chart_days(
        bob_client.get(EVENT_LIST, {"occurred": "custom", "start": date_ago(9), "end": date_ago(2)})
    )

    assert len(week) == 7
    assert week[0].startswith(day_label(6) + ":")
    assert week[-1] == f"{day_label(0)}: 1 high, 0 medium, 0 low"
    assert week[3] == f"{day_label(3)}: 0 high, 1 medium, 1 low"
    assert len(month) == 30
    assert month[0].startswith(day_label(29) + ":")
    assert len(custom) == 8
    assert custom[0].startswith(day_label(9) + ":")
    assert custom[-1].startswith(day_label(2) + ":")


def test_it_answers_htmx_with_the_results_partial_only(bob_client, assorted):
    response = bob_client.get(EVENT_LIST, {"risk": HIGH}, HTTP_HX_REQUEST="true")
    html = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in html
    assert 'data-testid="event-filters"' not in html
    assert html.lstrip().startswith('<div id="results">')
    assert set(listed_ids(response)) == {assorted["webshell"].id, assorted["brute"].id}
    assert 'data-testid="event-counts"' in html


def test_it_renders_the_whole_page_without_htmx(bob_client, assorted):
    html = bob_client.get(EVENT_LIST).content.decode()

    assert "<html" in html
    assert 'data-testid="event-filters"' in html
    assert '<div id="results">' in html


def test_it_shows_the_filters_it_applied_in_the_form(bob_client, assorted):
    html = bob_client.get(
        EVENT_LIST, {"risk": HIGH, "status": "failed", "name": "brute", "occurred": "30d"}
    ).content.decode()

    assert re.search(r'<input type="checkbox" name="risk" value="3" checked>', html)
    assert not re.search(r'<input type="checkbox" name="risk" value="1" checked>', html)
    assert re.search(r'<input type="checkbox" name="status" value="failed" checked>', html)
    assert 'name="name" value="brute"' in html
    assert '<option value="30d" selected>' in html


# --- scoping and escaping --------------------------------------------------------


@pytest.fixture
def everywhere(tenancy):
    """One event per account and region, named after both."""
    china, outside = RegionGroup.CHINA, RegionGroup.OUTSIDE_CHINA
    names = {}
    for account in (tenancy.account_a, tenancy.account_b, tenancy.account_c, tenancy.account_x):
        for region in (china, outside):
            name = f"Event of {account.name} in {region.label}"
            names[name] = event(account, name, region=region).id
    return names


def test_it_shows_an_analyst_their_account_in_its_region(bob_client, everywhere):
    response = bob_client.get(EVENT_LIST)

    assert listed_names(response) == {"Event of Acme Prod in China"}
    assert "<th>Account</th>" not in response.content.decode()


def test_it_follows_the_region_selector(bob_client, everywhere):
    bob_client.post(reverse("change_scope"), {"region": RegionGroup.OUTSIDE_CHINA})

    assert listed_names(bob_client.get(EVENT_LIST)) == {"Event of Acme Prod in Outside China"}


def test_it_shows_a_global_admin_every_managed_account_of_the_region(tenancy, everywhere):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL})

    response = client.get(EVENT_LIST)
    html = response.content.decode()

    assert listed_names(response) == {
        "Event of Acme Prod in China",
        "Event of Acme Intl in China",
    }
    assert "<th>Account</th>" in html
    row_of_b = re.search(
        rf'<tr data-event-id="{everywhere["Event of Acme Intl in China"]}">.*?</tr>', html, re.S
    ).group(0)
    assert "<td>Acme Intl</td>" in row_of_b


def test_it_shows_an_outsider_none_of_the_organisation_s_events(tenancy, everywhere):
    response = tenancy.client_for(tenancy.charlie).get(EVENT_LIST, {"occurred": "180d"})

    assert listed_names(response) == {"Event of Umbrella Prod in China"}
    assert "Acme" not in response.content.decode()


def test_it_escapes_attacker_controlled_event_names(bob_client, tenancy):
    event(tenancy.account_a, '<script>alert("pwned")</script><img src=x onerror=alert(1)>')

    html = bob_client.get(EVENT_LIST).content.decode()

    assert "<script>alert(" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x" in html
