"""The overview page, the scope switch, login and logout."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import EventStatus
from secops.enums import RegionGroup, View
from secops.services import SESSION_ACCOUNT, SESSION_REGION, SESSION_VIEW
from tests import factories
from tests.conftest import PASSWORD

CHINA = RegionGroup.CHINA
OUTSIDE_CHINA = RegionGroup.OUTSIDE_CHINA
SCOPE_KEYS = (SESSION_VIEW, SESSION_ACCOUNT, SESSION_REGION)


def text_of_testid(html: str, testid: str) -> str:
    """The text inside the element carrying ``data-testid`` (elements of one kind not nested)."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{re.escape(testid)}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element with data-testid={testid!r}"
    return match.group(2)


def status_count(html: str, status: EventStatus) -> int:
    return int(text_of_testid(html, f"events-{status.value}").strip())


def scope_in_session(client) -> dict:
    return {key: client.session.get(key) for key in SCOPE_KEYS}


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def overview_data(tenancy):
    """Events and alerts in A (both regions), B (outside China) and X, with telling names."""
    a, b, x = tenancy.account_a, tenancy.account_b, tenancy.account_x
    factories.make_event(a, region=CHINA, name="Webshell in A China")
    factories.make_event(a, region=CHINA, name="Brute force in A China")
    factories.make_event(a, region=CHINA, name="Old mining in A China", status=EventStatus.HANDLED)
    factories.make_event(a, region=OUTSIDE_CHINA, name="Scan in A Outside", status="handling")
    factories.make_event(b, region=OUTSIDE_CHINA, name="Backdoor in B Outside")
    factories.make_event(b, region=OUTSIDE_CHINA, name="Ransom in B Outside", status="failed")
    factories.make_event(tenancy.account_c, name="Lab test in C")
    for _ in range(3):
        factories.make_event(x, name="Secret of X")
    for _ in range(2):
        factories.make_alert(a, region=CHINA)
    factories.make_alert(a, region=CHINA, occurred_at=timezone.now() - timedelta(days=40))
    factories.make_alert(a, region=OUTSIDE_CHINA)
    for _ in range(3):
        factories.make_alert(b, region=OUTSIDE_CHINA)
    for _ in range(4):
        factories.make_alert(x)


# --- the overview -------------------------------------------------------------


def test_it_shows_an_analyst_the_data_of_their_account_in_its_region(tenancy, overview_data):
    response = tenancy.client_for(tenancy.bob).get(reverse("home"))
    html = response.content.decode()

    assert response.status_code == 200
    assert "Current Account View" in text_of_testid(html, "scope-summary")
    assert "China" in text_of_testid(html, "scope-summary")
    assert status_count(html, EventStatus.UNHANDLED) == 2
    assert status_count(html, EventStatus.HANDLED) == 1
    assert status_count(html, EventStatus.HANDLING) == 0
    assert status_count(html, EventStatus.FAILED) == 0
    assert text_of_testid(html, "alert-total").strip() == "2"
    events = text_of_testid(html, "recent-events")
    assert "Webshell in A China" in events
    assert "Old mining in A China" in events
    assert "Scan in A Outside" not in events
    accounts = text_of_testid(html, "accounts-table")
    assert "Acme Prod" in accounts
    assert "Acme Intl" not in accounts
    for foreign in ("Backdoor in B Outside", "Lab test in C", "Secret of X", "Umbrella Prod"):
        assert foreign not in html


def test_it_shows_a_global_admin_every_managed_account_in_the_chosen_region(tenancy, overview_data):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL, "region": OUTSIDE_CHINA})

    html = client.get(reverse("home")).content.decode()

    summary = text_of_testid(html, "scope-summary")
    assert "Global Account View" in summary
    assert "2 managed accounts" in summary
    assert "Outside China" in summary
    assert status_count(html, EventStatus.UNHANDLED) == 1
    assert status_count(html, EventStatus.HANDLING) == 1
    assert status_count(html, EventStatus.FAILED) == 1
    assert status_count(html, EventStatus.HANDLED) == 0
    assert text_of_testid(html, "alert-total").strip() == "4"
    events = text_of_testid(html, "recent-events")
    assert "<th>Account</th>" in events
    assert "Backdoor in B Outside" in events
    assert "Scan in A Outside" in events
    assert "Webshell in A China" not in events
    assert "Lab test in C" not in events
    accounts = text_of_testid(html, "accounts-table")
    assert "Acme Prod" in accounts
    assert "Acme Intl" in accounts
    assert "Acme Lab" not in accounts
    assert "Secret of X" not in html
    assert "Umbrella" not in html


def test_it_shows_no_account_column_in_the_current_view(tenancy, overview_data):
    html = tenancy.client_for(tenancy.alice).get(reverse("home")).content.decode()

    assert "<th>Account</th>" not in text_of_testid(html, "recent-events")


def test_it_shows_an_outsider_only_their_own_organisation(tenancy, overview_data):
    html = tenancy.client_for(tenancy.charlie).get(reverse("home")).content.decode()

    assert status_count(html, EventStatus.UNHANDLED) == 3
    assert text_of_testid(html, "alert-total").strip() == "4"
    assert "Acme" not in html
    assert "in A China" not in html


def test_it_tells_a_user_without_accounts_to_ask_for_access(tenancy, overview_data):
    eve = factories.make_user(tenancy.org, "eve")

    html = tenancy.client_for(eve).get(reverse("home")).content.decode()

    assert "You are not a member of any account yet" in html
    assert "in A China" not in html


def test_it_offers_the_view_switch_to_global_admins_only(tenancy):
    alice_page = tenancy.client_for(tenancy.alice).get(reverse("home")).content.decode()
    bob_page = tenancy.client_for(tenancy.bob).get(reverse("home")).content.decode()

    assert 'data-testid="view-global"' in alice_page
    assert 'data-testid="view-current"' in alice_page
    assert 'data-testid="view-global"' not in bob_page
    assert 'data-testid="view-current"' not in bob_page


def test_it_lists_only_selectable_accounts_in_the_account_select(tenancy):
    bob_page = tenancy.client_for(tenancy.bob).get(reverse("home")).content.decode()
    alice_page = tenancy.client_for(tenancy.alice).get(reverse("home")).content.decode()

    bob_select = text_of_testid(bob_page, "account-select")
    assert "Acme Prod" in bob_select
    assert "Acme Intl" not in bob_select
    alice_select = text_of_testid(alice_page, "account-select")
    assert {"Acme Prod", "Acme Intl", "Acme Lab"} <= set(re.findall(r">([^<·]+?) ·", alice_select))
    assert "Umbrella" not in alice_select


# --- changing the scope -------------------------------------------------------


def test_it_changes_the_region(tenancy):
    client = tenancy.client_for(tenancy.bob)

    response = client.post(reverse("change_scope"), {"region": OUTSIDE_CHINA})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session[SESSION_REGION] == OUTSIDE_CHINA
    html = client.get(reverse("home")).content.decode()
    assert "Outside China" in text_of_testid(html, "scope-summary")


def test_it_changes_the_account(tenancy):
    client = tenancy.client_for(tenancy.alice)
    factories.make_event(tenancy.account_b, name="Backdoor in B Outside")

    client.post(reverse("change_scope"), {"account": tenancy.account_b.id})

    assert client.session[SESSION_ACCOUNT] == tenancy.account_b.id
    assert client.session[SESSION_VIEW] == View.CURRENT
    html = client.get(reverse("home")).content.decode()
    # No region was chosen yet, so the view follows B's home region.
    assert "Outside China" in text_of_testid(html, "scope-summary")
    assert "Backdoor in B Outside" in text_of_testid(html, "recent-events")
    client.post(reverse("change_scope"), {"region": CHINA})
    html = client.get(reverse("home")).content.decode()
    assert "Backdoor in B Outside" not in html


def test_it_changes_the_view(tenancy):
    client = tenancy.client_for(tenancy.alice)

    client.post(reverse("change_scope"), {"view": View.GLOBAL})
    assert client.session[SESSION_VIEW] == View.GLOBAL
    client.post(reverse("change_scope"), {"view": View.CURRENT})
    assert client.session[SESSION_VIEW] == View.CURRENT


def test_it_leaves_the_global_view_when_an_account_is_picked(tenancy):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL})

    client.post(reverse("change_scope"), {"account": tenancy.account_b.id})

    assert client.session[SESSION_VIEW] == View.CURRENT


@pytest.mark.parametrize(
    ("user_name", "field", "value", "message"),
    [
        ("bob", "view", View.GLOBAL, "Only global administrators can use the Global Account View."),
        ("alice", "view", "everything", "Unknown view 'everything'."),
        ("alice", "region", "mars", "Unknown region 'mars'."),
        ("alice", "account", "not-a-number", "You are not a member of that account."),
        ("alice", "account", "account_x", "You are not a member of that account."),
        ("bob", "account", "account_b", "You are not a member of that account."),
    ],
)
def test_it_refuses_an_invalid_scope_change(tenancy, user_name, field, value, message):
    client = tenancy.client_for(getattr(tenancy, user_name))
    if value.startswith("account_"):
        value = getattr(tenancy, value).id
    before = scope_in_session(client)

    response = client.post(reverse("change_scope"), {field: value}, follow=True)

    assert page_messages(response) == [message]
    assert scope_in_session(client) == before


def test_it_lets_a_global_admin_pick_an_unmanaged_account(tenancy):
    client = tenancy.client_for(tenancy.alice)

    response = client.post(reverse("change_scope"), {"account": tenancy.account_c.id}, follow=True)

    assert page_messages(response) == []
    assert client.session[SESSION_ACCOUNT] == tenancy.account_c.id
    assert "Acme Lab" in text_of_testid(response.content.decode(), "accounts-table")


def test_it_redirects_to_the_page_the_change_came_from(tenancy):
    client = tenancy.client_for(tenancy.bob)

    response = client.post(reverse("change_scope"), {"region": CHINA, "next": "/?page=2"})

    assert response["Location"] == "/?page=2"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "http://evil.example.com/phish",
        "javascript:alert(1)",
        "\\\\evil.example.com",
    ],
)
def test_it_refuses_to_redirect_to_another_host(tenancy, next_url):
    client = tenancy.client_for(tenancy.bob)

    response = client.post(reverse("change_scope"), {"region": CHINA, "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_accepts_scope_changes_only_by_post(tenancy):
    response = tenancy.client_for(tenancy.alice).get(reverse("change_scope"), {"view": "global"})

    assert response.status_code == 405


def test_it_refuses_a_scope_change_without_csrf_token(tenancy):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenancy.alice)

    response = client.post(reverse("change_scope"), {"view": View.GLOBAL})

    assert response.status_code == 403
    assert client.session.get(SESSION_VIEW) is None


# --- login and logout ---------------------------------------------------------


def test_it_renders_the_login_page_for_anonymous_users(db):
    response = Client().get(reverse("login"))
    html = response.content.decode()

    assert response.status_code == 200
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'data-testid="region-select"' not in html


def test_it_logs_in_with_the_right_password(tenancy):
    client = Client()

    response = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200


def test_it_refuses_a_wrong_password(tenancy):
    client = Client()

    response = client.post(reverse("login"), {"username": "bob", "password": "wrong"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert client.get(reverse("home")).status_code == 302


def test_it_sends_a_logged_in_user_from_the_login_page_home(tenancy):
    response = tenancy.client_for(tenancy.bob).get(reverse("login"))

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_logs_out_by_post(tenancy):
    client = tenancy.client_for(tenancy.bob)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    after = client.get(reverse("home"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("login"))


def test_it_does_not_log_out_on_get(tenancy):
    client = tenancy.client_for(tenancy.bob)

    response = client.get(reverse("logout"))

    assert response.status_code == 405
    assert client.get(reverse("home")).status_code == 200
