"""Login throttling: repeated wrong passwords lock a username out from one
address, on the console's login page and the admin's, until the lockout runs
out or an administrator lifts it. API keys are not affected."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from secops.login_throttling import client_ip_address
from secops.services import create_api_key
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ATTACKER = "198.51.100.66"
ELSEWHERE = "203.0.113.20"
LOGIN_PAGES = [
    pytest.param("/login/", id="console-login"),
    pytest.param("/admin/login/", id="admin-login"),
]


@pytest.fixture
def alice(tenancy):
    """A global administrator who may also use the admin."""
    tenancy.alice.is_staff = True
    tenancy.alice.is_superuser = True
    tenancy.alice.save()
    return tenancy.alice


def log_in(login_page, username, password, *, address=ATTACKER, client=None):
    client = client or Client(REMOTE_ADDR=address)
    response = client.post(login_page, {"username": username, "password": password})
    return client, response


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def guess_passwords(login_page, username, *, times=30, address=ATTACKER) -> list[int]:
    return [
        log_in(login_page, username, f"wrong-{n}", address=address)[1].status_code
        for n in range(times)
    ]


@pytest.mark.parametrize("login_page", LOGIN_PAGES)
def test_it_refuses_the_right_password_after_thirty_wrong_ones(alice, login_page):
    statuses = guess_passwords(login_page, "alice")

    client, response = log_in(login_page, "alice", PASSWORD)

    # Four ordinary refusals, then the lockout from the fifth failure on.
    assert statuses == [200] * 4 + [429] * 26
    assert response.status_code == 429
    assert not is_logged_in(client)
    page = response.content.decode()
    assert 'data-testid="login-locked"' in page
    assert "Logging in is locked for 15 minutes" in page
    assert "An administrator can unlock it sooner." in page


@pytest.mark.parametrize("login_page", LOGIN_PAGES)
def test_it_still_lets_the_same_user_in_from_another_address(alice, login_page):
    guess_passwords(login_page, "alice")

    client, response = log_in(login_page, "alice", PASSWORD, address=ELSEWHERE)

    assert response.status_code == 302
    assert is_logged_in(client)


@pytest.mark.parametrize("login_page", LOGIN_PAGES)
def test_it_still_lets_another_user_in_from_the_same_address(alice, tenancy, login_page):
    tenancy.bob.is_staff = True
    tenancy.bob.save()
    guess_passwords(login_page, "alice")

    client, response = log_in(login_page, "bob", PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_it_counts_failures_on_both_login_pages_together(alice):
    guess_passwords("/login/", "alice", times=3)
    guess_passwords("/admin/login/", "alice", times=2)

    client, response = log_in("/login/", "alice", PASSWORD)

    assert response.status_code == 429
    assert not is_logged_in(client)


def test_it_forgets_failures_after_a_successful_login(alice):
    guess_passwords("/login/", "alice", times=4)
    log_in("/login/", "alice", PASSWORD)

    statuses = guess_passwords("/login/", "alice", times=4)

    assert statuses == [200] * 4


def test_it_lets_the_user_in_again_when_the_lockout_runs_out(alice):
    guess_passwords("/login/", "alice")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    client, response = log_in("/login/", "alice", PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_it_lets_the_user_in_again_after_a_reset_on_the_command_line(alice):
    guess_passwords("/login/", "alice")

    call_command("axes_reset_username", "alice")
    client, response = log_in("/login/", "alice", PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_it_lets_an_administrator_unlock_a_user_in_the_admin(alice, tenancy):
    guess_passwords("/login/", "bob")
    administrator = tenancy.client_for(alice)
    changelist = reverse("admin:axes_accessattempt_changelist")

    listed = administrator.get(changelist)
    attempt = AccessAttempt.objects.get(username="bob")
    administrator.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    client, response = log_in("/login/", "bob", PASSWORD)

    assert listed.status_code == 200
    assert "bob" in listed.content.decode()
    assert not AccessAttempt.objects.exists()
    assert response.status_code == 302
    assert is_logged_in(client)


def test_it_does_not_throttle_api_keys(tenancy):
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Acme")
    scenarios = "/api/v1/whitelist/scenarios"

    refused = [
        Client(REMOTE_ADDR=ATTACKER, HTTP_AUTHORIZATION=f"Bearer wrong-{n}").get(scenarios)
        for n in range(30)
    ]
    accepted = Client(REMOTE_ADDR=ATTACKER, HTTP_AUTHORIZATION=f"Bearer {key}").get(scenarios)

    assert {response.status_code for response in refused} == {401}
    assert accepted.status_code == 200
    assert not AccessAttempt.objects.exists()


# --- the client's address ---------------------------------------------------------


def request_from(remote_address, forwarded=None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().post("/login/", REMOTE_ADDR=remote_address, **headers)


def test_it_ignores_forwarded_addresses_unless_proxies_are_trusted(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_ip_address(request_from("10.0.0.5", "203.0.113.9")) == "10.0.0.5"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        # The proxy appended the address it saw; what the client sent is left of it.
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        # Fewer entries than trusted proxies: the request bypassed them.
        (2, "203.0.113.9", "10.0.0.5"),
        (1, "", "10.0.0.5"),
        (1, None, "10.0.0.5"),
    ],
)
def test_it_reads_the_address_the_outermost_trusted_proxy_added(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies

    assert client_ip_address(request_from("10.0.0.5", forwarded)) == expected


def test_it_locks_out_one_client_behind_a_proxy_not_all_of_them(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=ATTACKER)
    colleague = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    for n in range(10):
        # A forged left-hand entry does not give the attacker a fresh address.
        log_in("/login/", "alice", f"wrong-{n}", client=attacker)
        attacker.defaults["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}, {ATTACKER}"

    _, locked = log_in("/login/", "alice", PASSWORD, client=attacker)
    _, let_in = log_in("/login/", "alice", PASSWORD, client=colleague)

    assert locked.status_code == 429
    assert let_in.status_code == 302
