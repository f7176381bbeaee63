"""Every page and htmx partial of the console answers hostile input without a 5xx.

Pages are discovered by walking the URL configuration (as in
tests/secops/test_url_coverage.py, whose sample objects and id mapping are
reused), so a new page is tried without anyone listing it here.

- Every GET gets every query parameter the console reads set to each hostile
  value at once, repeated, as arrays and as raw query strings no dict makes;
  a page that reads parameters also gets each of them alone on top of a valid
  query (one bad filter can void the form and hide what another would do).
- Every POST form gets the same, on top of a valid submission.
- Alice (global administrator) gets all of it; bob (analyst of account A) the
  values all at once: parsing does not depend on who asks, but his pages
  take other paths (refusals, a narrower scope).

Refusals (4xx, a form error, a friendly note) are all fine; a 5xx is not.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.forms import AlertFilterForm
from events.forms import EventFilterForm
from events.models import EventAlert, SecurityEvent
from secops.models import Account, ApiKey
from secops.params import (
    MAX_DATABASE_INTEGER,
    MAX_PAGE_NUMBER,
    InvalidTime,
    aware_datetime,
    page_number,
    positive_int,
)
from tests import factories
from tests.secops import test_url_coverage
from tests.secops.test_url_coverage import ENDPOINTS, SIGMA_RULE, id_choices, sample_path
from whitelist.models import RuleGroup

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# The sample objects of the URL coverage test (one of each kind in account A),
# which its id mapping knows how to put into paths.
objects_of_account_a = test_url_coverage.objects_of_account_a
alice_api_key = test_url_coverage.alice_api_key

# Each value once in every parameter of a page, all at once.
HOSTILE_VALUES = [
    "²",  # isdigit() is True, int() refuses it
    "١٢",  # Arabic-Indic digits: int() takes them
    "-1",
    "0",
    "+1",
    "9" * 30,  # beyond every database integer
    "9" * 5000,  # beyond int()'s default digit limit
    "",
    "%00",
    "\x00",
    "NaN",
    "1e309",
    "2026-99-99T99:99",
    "9999-12-31T23:59:59-23:59",  # overflows when converted to UTC
    "0001-01-01T00:00:00+23:59",  # underflows likewise
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "' OR 1=1 --",
    '"><script>alert(1)</script>',
    "{alert_name}{{7*7}}",
    "x" * 10_000,
    "\u202e\ufeff",
    "/\r\nSet-Cookie: sessionid=stolen",
    ",".join(str(n) for n in range(1, 3000)),  # a list of ids, as ?ids= takes
]
# Each of these in one parameter at a time, the others valid: the kinds of
# value that broke parsing before (a short list, for the walk to stay fast).
PROBE_VALUES = [
    "²",
    "9" * 30,
    "9" * 5000,
    "\x00",
    "-1",
    "1e309",
    "2026-99-99T99:99",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31",
    "0001-01-01",
    "x" * 10_000,
]
# What a page that reads no parameter gets.
SHORT_VALUES = ["²", "9" * 30, "\x00", "2026-99-99T99:99", "x" * 10_000]

# Every query parameter a page reads (request.GET in the views, the fields of
# the filter forms), by URL name. Every page also gets all of them at once.
PAGE_PARAMETERS = {
    "soar:playbook": ["version"],
    "soar:runs": ["status", "page"],
    "events:list": [
        "occurred",
        "start",
        "end",
        "risk",
        "status",
        "name",
        "event_id",
        "asset",
        "sort",
        "page",
    ],
    "events:detail": ["tab", "list", "page", "layout"],
    "events:tracing_logs": ["page", "node"],
    "events:tracing_multi": ["ids", "part", "page", "node", "layout"],
    "alerts:list": ["source", "level", "type", "whitelisted", "period", "page", "after"],
    "whitelist:settings": ["scenario"],
    "whitelist:group_create": ["event", "scenario"],
    "disposal:center": [
        "tab",
        "entity_type",
        "scenario",
        "status",
        "account",
        "created",
        "start",
        "end",
        "policy",
        "page",
    ],
    "disposal:task": ["row", "detail"],
    "disposal:handle": ["recommend"],
    "disposal:simulated_cloud": ["page"],
    "disposal:entity": ["page"],
    "soar:bulk_job": ["page"],
}
ALL_PARAMETERS = sorted({name for names in PAGE_PARAMETERS.values() for name in names})
# Pages that answer htmx with a partial of their own.
PARTIAL_PAGES = {"events:list", "events:detail", "alerts:list", "alerts:detail"}
# How a view reads a query parameter by name.
QUERY_READ = re.compile(r"request\.GET\.(?:get|getlist)\(\s*[\"']([^\"']+)[\"']")
# Query strings no dict can express.
RAW_QUERIES = ["%ff%fe", "page=%ff", "&&&=&=", "page", "page[]=1&page[]=2", "a=b=c;d", "%"]


def _recent_day(days_ago: int) -> str:
    return (timezone.localdate() - timedelta(days=days_ago)).isoformat()


def valid_queries(objects: dict) -> dict[str, dict]:
    """A query each page accepts, for the hostile value of one parameter to go on top of."""
    return {
        "events:list": {
            "occurred": "custom",
            "start": _recent_day(7),
            "end": _recent_day(0),
            "risk": "3",
            "status": "unhandled",
            "sort": "-risk",
            "page": "1",
        },
        "events:detail": {"tab": "alerts", "page": "1"},
        "events:tracing_multi": {"ids": str(objects[SecurityEvent].pk), "part": "logs"},
        "alerts:list": {"period": "1d", "level": "3", "page": "1"},
        "whitelist:group_create": {"event": str(objects[SecurityEvent].pk)},
    }


def valid_forms(objects: dict) -> dict[str, dict]:
    """A submission each POST form accepts, by URL name."""
    account = str(objects[Account].pk)
    whitelist_group = {
        "name": "Known scanner",
        "scenario": "web_attack",
        "scenario_other": "",
        "description": "Our own scanner",
        "enabled": "on",
        "expires_at": "2030-01-31 18:00",
        "applies_to": "accounts",
        "accounts": account,
        "condition_object": "source_ip",
        "condition_operator": "equals",
        "condition_value": "192.0.2.7",
    }
    aggregation_rule = {
        "name": "Webshells per host",
        "description": "",
        "enabled": "on",
        "match_sources": "security_center",
        "match_types": "webshell",
        "match_levels": "3",
        "name_pattern": "^Webshell",
        "group_by": "asset",
        "window_seconds": "3600",
        "event_name_template": "{alert_name} on {asset_name}",
        "event_description_template": "",
        "risk": "",
    }
    sigma = {"yaml": SIGMA_RULE, "alert_type": "suspicious_process", "enabled": "on"}
    return {
        "change_scope": {"view": "current", "account": account, "region": "cn", "next": "/"},
        "logout": {"next": "/"},
        "alerts:create_api_key": {"name": "forwarder"},
        "events:export_start": {"query": "occurred=7d&sort=-last", "occurred": "7d"},
        "events:rule_create": aggregation_rule,
        "events:rule_edit": aggregation_rule,
        "events:rule_toggle": {"enabled": "true"},
        "detection:rule_new": sigma,
        "detection:rule_edit": sigma,
        "detection:check": sigma,
        "detection:dry_run": sigma,
        "detection:rule_toggle": {"enabled": "true"},
        "detection:predefined_toggle": {"enabled": "true"},
        "whitelist:group_create": {**whitelist_group, "event": str(objects[SecurityEvent].pk)},
        "whitelist:group_edit": whitelist_group,
        "whitelist:preview": whitelist_group,
        "whitelist:group_toggle": {"enabled": "on"},
        "soar:bulk_start": {
            "bulk-action": "set_status",
            "bulk-status": "handled",
            "bulk-description": "Scanner",
            "bulk-target": "selected",
            "ids": str(objects[SecurityEvent].pk),
            "query": "occurred=7d&risk=3",
            "confirmed": "yes",
        },
    }


CONSOLE_ENDPOINTS = [
    endpoint
    for endpoint in ENDPOINTS
    if not (endpoint.in_admin or endpoint.in_api or endpoint.is_public)
]
HTMX = {"HX-Request": "true"}


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _paths(endpoint, objects) -> list[str]:
    choices, _ = id_choices(endpoint, objects)
    return [sample_path(endpoint, ids) for ids in choices]


def _every_parameter(names, value) -> dict:
    return {name: value for name in names}


def _odd_shapes(names, base: dict) -> list:
    """Repeated parameters, array-style names, and query strings no dict can express."""
    return [
        {**base, **_every_parameter(names, ["1", "²", "9" * 30, ""])},
        {**base, **{f"{name}[]": "1" for name in names}},
    ]


def hostile_queries(endpoint, valid: dict, *, thorough: bool) -> list:
    """What to send to one page: query dicts, or raw query strings."""
    own = PAGE_PARAMETERS.get(endpoint.name, [])
    if not own:
        return [_every_parameter(ALL_PARAMETERS, value) for value in SHORT_VALUES]
    queries: list = [_every_parameter(ALL_PARAMETERS, value) for value in HOSTILE_VALUES]
    queries += _odd_shapes(ALL_PARAMETERS, {})
    queries += RAW_QUERIES
    if thorough:
        base = valid.get(endpoint.name, {})
        queries += [{**base, name: value} for name in own for value in PROBE_VALUES]
    return queries


def hostile_forms(endpoint, valid: dict, *, thorough: bool) -> list[dict]:
    """What to post to one form: every field hostile at once, then one at a time."""
    base = valid.get(endpoint.name)
    if base is None:  # the view reads no form field
        return [_every_parameter(["name", "enabled", "next"], value) for value in SHORT_VALUES]
    forms = [_every_parameter(base, value) for value in HOSTILE_VALUES]
    forms += _odd_shapes(base, base)
    if thorough:
        forms += [{**base, name: value} for name in base for value in PROBE_VALUES]
    return forms


def _failure(method, path, data, response) -> str:
    shown = data if isinstance(data, str) else {k: str(v)[:40] for k, v in data.items()}
    cause = ""
    if getattr(response, "exc_info", None):
        cause = f" ({response.exc_info[0].__name__}: {str(response.exc_info[1])[:200]})"
    return f"{method} {path} {shown!r} -> {response.status_code}{cause}"


# Alice, global administrator, reaches every form and gets the whole list;
# bob, analyst of account A, is refused most forms and gets the values all at
# once: parsing does not depend on who asks, but his pages take other paths.
USERS = [("alice", True), ("bob", False)]
USER_IDS = ["alice", "bob"]


@pytest.mark.parametrize(("username", "thorough"), USERS, ids=USER_IDS)
@pytest.mark.parametrize("endpoint", CONSOLE_ENDPOINTS, ids=[str(e) for e in CONSOLE_ENDPOINTS])
def test_it_answers_hostile_query_strings_without_a_server_error(
    tenancy, objects_of_account_a, endpoint, username, thorough
):
    client = _client(getattr(tenancy, username))
    valid = valid_queries(objects_of_account_a)
    # A page with a partial of its own is mostly asked for by htmx.
    headers = HTMX if endpoint.name in PARTIAL_PAGES else {}
    failures = []

    for path in _paths(endpoint, objects_of_account_a):
        for query in hostile_queries(endpoint, valid, thorough=thorough):
            if isinstance(query, str):
                response = client.get(f"{path}?{query}", headers=headers)
            else:
                response = client.get(path, query, headers=headers)
            if response.status_code >= 500:
                failures.append(_failure("GET", path, query, response))
        if endpoint.name in PARTIAL_PAGES:
            for value in HOSTILE_VALUES:
                response = client.get(path, _every_parameter(ALL_PARAMETERS, value))
                if response.status_code >= 500:
                    failures.append(_failure("GET", path, value, response))

    assert not failures, "\n".join(failures)


# Posting to the login page would lock the test users out.
POST_ENDPOINTS = [endpoint for endpoint in CONSOLE_ENDPOINTS if endpoint.name != "login"]
# Forms whose view answers htmx with a partial of its own.
PARTIAL_FORMS = {"events:export_start", "soar:bulk_start"}


@pytest.mark.parametrize(("username", "thorough"), USERS, ids=USER_IDS)
@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, ids=[str(e) for e in POST_ENDPOINTS])
def test_it_answers_hostile_form_values_without_a_server_error(
    tenancy, objects_of_account_a, endpoint, username, thorough
):
    user = getattr(tenancy, username)
    client = _client(user)
    valid = valid_forms(objects_of_account_a)
    headers_to_try = [{}, HTMX] if endpoint.name in PARTIAL_FORMS else [{}]
    failures = []

    for path in _paths(endpoint, objects_of_account_a):
        for form in hostile_forms(endpoint, valid, thorough=thorough):
            for headers in headers_to_try:
                response = client.post(path, form, headers=headers)
                if response.status_code >= 500:
                    failures.append(_failure("POST", path, form, response))
                if endpoint.name == "logout":
                    client.force_login(user)

    assert not failures, "\n".join(failures)


def test_it_knows_every_page_and_form_it_fills_in(tenancy, objects_of_account_a):
    """The walk is only as good as its sample values: each must name a real page
    and reach it, or the hostile values on top of it test a refusal instead."""
    client = _client(tenancy.alice)
    names = {endpoint.name: endpoint for endpoint in CONSOLE_ENDPOINTS}
    assert set(PAGE_PARAMETERS) | PARTIAL_PAGES | PARTIAL_FORMS <= set(names)
    assert set(valid_forms(objects_of_account_a)) <= set(names)

    for name, query in valid_queries(objects_of_account_a).items():
        path = _paths(names[name], objects_of_account_a)[0]
        response = client.get(path, query)
        assert response.status_code == 200, f"{name}: {response.status_code}"
        assert not response.context.get("form") or response.context["form"].is_valid(), name


def test_it_knows_every_query_parameter_the_views_read():
    """A parameter a view starts reading must join PAGE_PARAMETERS to be tried."""
    read_by_views = set()
    for source in Path(settings.BASE_DIR).glob("*/*views.py"):
        read_by_views |= set(QUERY_READ.findall(source.read_text()))
    read = read_by_views | set(EventFilterForm.base_fields) | set(AlertFilterForm.base_fields)

    assert {"tab", "scenario", "ids"} <= read_by_views, "has the way views read changed?"
    assert read <= set(ALL_PARAMETERS), f"not tried: {sorted(read - set(ALL_PARAMETERS))}"


# --- the malformed input that used to answer 500, one by one ----------------------


def _alice(tenancy) -> Client:
    return _client(tenancy.alice)


@pytest.mark.parametrize("url_name", ["events:list", "alerts:list"])
def test_it_reads_a_page_number_in_other_digits_as_page_1(tenancy, url_name):
    # "²".isdigit() is True, int("²") raises: the lists answered 500.
    factories.make_event(tenancy.account_a)
    factories.make_alert(tenancy.account_a)

    response = _alice(tenancy).get(reverse(url_name), {"page": "²"})

    assert response.status_code == 200
    assert response.context["page"].number == 1
    assert len(response.context["page"].items) == 1


def test_it_exports_with_a_page_number_in_other_digits(tenancy):
    factories.make_event(tenancy.account_a)

    response = _alice(tenancy).post(
        reverse("events:export_start"), {"query": "occurred=7d&page=²"}, headers=HTMX
    )

    assert response.status_code == 200
    assert response.context["job"].row_count == 1


def test_it_says_a_page_is_past_the_end_and_links_to_the_last(tenancy):
    event = factories.make_event(tenancy.account_a)
    alert = factories.make_alert(tenancy.account_a)
    EventAlert.objects.create(event=event, alert=alert)
    client = _alice(tenancy)
    detail = reverse("events:detail", args=[event.pk])

    answers = [
        (client.get(detail, {"tab": "alerts", "page": "9999999999999999999999"}), 10_000),
        (client.get(detail, {"tab": "alerts", "page": "3"}), 3),
        (client.get(reverse("alerts:list"), {"page": "9999999999999999999999"}), 10_000),
        (client.get(reverse("events:list"), {"page": "2"}), 2),
    ]

    for response, number in answers:
        assert response.status_code == 200
        page = response.context["page"]
        assert (page.number, page.past_the_end, page.items) == (number, True, [])
        assert f"Page {number} is past the end; the list has 1 page." in response.text
        assert re.search(
            r'href="\?[^"]*page=1" [^>]*data-testid="past-the-end-last"', response.text
        )
    on_the_page = client.get(detail, {"tab": "alerts", "page": "1"})
    assert "past the end" not in on_the_page.text


def test_it_refuses_an_end_date_the_calendar_cannot_follow(tenancy):
    # The day after 9999-12-31 overflowed.
    start = timezone.localdate() - timedelta(days=3)
    query = {"occurred": "custom", "start": start.isoformat(), "end": "9999-12-31"}

    response = _alice(tenancy).get(reverse("events:list"), query)

    assert response.status_code == 200
    [error] = response.context["form"].errors["end"]
    assert error.startswith("The end date is in the future: end on ")


def _group_form(tenancy, **fields) -> dict:
    return {
        "name": "Known scanner",
        "scenario": "web_attack",
        "applies_to": "accounts",
        "accounts": str(tenancy.account_a.pk),
        "condition_object": "source_ip",
        "condition_operator": "equals",
        "condition_value": "192.0.2.7",
        **fields,
    }


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("2026-99-99T99:99", "Enter a date and time, e.g. 2027-01-31 18:00."),
        ("9999-12-31T23:59:59-23:59", "Enter a date and time between the years 1 and 9999."),
    ],
)
def test_it_refuses_an_expiry_that_is_no_time(tenancy, expires_at, message):
    response = _alice(tenancy).post(
        reverse("whitelist:group_create"), _group_form(tenancy, expires_at=expires_at)
    )

    assert response.status_code == 200
    assert response.context["errors"]["expires_at"] == [message]
    assert not RuleGroup.objects.exists()


def test_it_refuses_an_account_in_other_digits(tenancy):
    client = _alice(tenancy)
    form = _group_form(tenancy, accounts="²")

    editor = client.post(reverse("whitelist:group_create"), form)
    preview = client.post(reverse("whitelist:preview"), form)

    assert editor.status_code == 200
    assert editor.context["errors"]["account_ids"] == ["Unknown account “²”."]
    assert not RuleGroup.objects.exists()
    assert preview.status_code == 200
    assert preview.context["message"] == "Choose at least one account."


def test_it_refuses_a_nul_character_in_a_group(tenancy):
    # PostgreSQL refuses NUL in text: the database answered 500.
    response = _alice(tenancy).post(
        reverse("whitelist:group_create"), _group_form(tenancy, description="a\x00b")
    )

    assert response.status_code == 200
    assert response.context["errors"]["description"] == [
        "Remove the NUL character (\\x00): text cannot hold it."
    ]
    assert not RuleGroup.objects.exists()


def test_it_previews_nothing_for_a_scenario_that_is_no_key(tenancy):
    response = _alice(tenancy).post(
        reverse("whitelist:preview"), _group_form(tenancy, scenario="web\x00attack")
    )

    assert response.status_code == 200
    assert response.context["message"] == "Choose a scenario to see what the group would match."


def test_it_refuses_an_api_key_name_with_a_nul_character(tenancy):
    response = _alice(tenancy).post(reverse("alerts:create_api_key"), {"name": "a\x00b"})

    assert response.status_code == 302
    assert not ApiKey.objects.exists()
    [message] = get_messages(response.wsgi_request)
    assert str(message) == "API key name: Null characters are not allowed."


@pytest.mark.parametrize(
    "next_url", ["NaN", "events:list", "//evil.example/", "https://evil.example/"]
)
def test_it_returns_to_the_home_page_from_a_scope_switch_with_no_path(tenancy, next_url):
    # redirect() took "NaN" for a URL name and failed to reverse it.
    response = _alice(tenancy).post(reverse("change_scope"), {"region": "cn", "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_returns_to_the_page_the_scope_switch_was_on(tenancy):
    response = _alice(tenancy).post(
        reverse("change_scope"), {"account": "²", "next": "/events/?risk=3"}
    )

    assert response["Location"] == "/events/?risk=3"
    [message] = get_messages(response.wsgi_request)
    assert str(message) == "You are not a member of that account."


def test_it_does_not_find_events_with_ids_beyond_the_database(tenancy):
    response = _alice(tenancy).get(reverse("events:tracing_multi"), {"ids": "9" * 30})

    assert response.status_code == 404


@pytest.mark.parametrize("value", ["2026-02-30", "9" * 5000])
def test_it_reports_a_sigma_value_yaml_cannot_build(tenancy, value):
    response = _alice(tenancy).post(reverse("detection:check"), {"yaml": f"title: {value}\n"})

    assert response.status_code == 200
    [problem] = response.context["problems"]
    assert problem.message.startswith("YAML value: ")


# --- the shared parsing of numbers and times --------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1", 1),
        ("007", 7),
        (str(MAX_DATABASE_INTEGER), MAX_DATABASE_INTEGER),
        (str(MAX_DATABASE_INTEGER + 1), None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("²", None),
        ("١٢", None),
        ("1.0", None),
        ("9" * 5000, None),
        ("", None),
        (None, None),
    ],
)
def test_it_reads_only_ascii_digits_as_a_positive_number(text, number):
    assert positive_int(text) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("3", 3),
        (None, 1),
        ("", 1),
        ("0", 1),
        ("00", 1),
        ("²", 1),
        ("-2", 1),
        (str(MAX_PAGE_NUMBER + 1), MAX_PAGE_NUMBER),
        ("9" * 5000, MAX_PAGE_NUMBER),
    ],
)
def test_it_reads_a_page_number_within_bounds(text, number):
    assert page_number(text) == number


def test_it_reads_a_time_in_the_current_time_zone_and_refuses_the_impossible(settings):
    settings.TIME_ZONE = "Asia/Shanghai"

    assert aware_datetime("2027-01-31 18:00") == datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    assert aware_datetime("  ") is None
    for text in ("2026-99-99T99:99", "tomorrow", "0001-01-01 07:00", "9999-12-31T23:59-01:00"):
        with pytest.raises(InvalidTime):
            aware_datetime(text)
