"""A link to an object in another account: the page names the account and
switches to it in one click, for whoever may see the object in another view;
for everyone else it is the same 404 as for an object that never existed.

Every object page is found by walking the URL configuration (as the URL
coverage test does), with one object of each kind in account A.
"""

import re
from html import unescape

import pytest
from django.urls import reverse

from secops.enums import RegionGroup, Role
from tests import factories

# The walker of the URL coverage test, and its fixtures of one object of each kind in account A.
from tests.secops.test_url_coverage import (
    OBJECT_ENDPOINTS,
    alice_api_key,  # noqa: F401 (a fixture that ``objects_of_account_a`` uses)
    id_choices,
    objects_of_account_a,  # noqa: F401 (a fixture, used by ``objects``)
    sample_path,
)

PAGE_ENDPOINTS = [endpoint for endpoint in OBJECT_ENDPOINTS if not endpoint.in_api]
NO_SUCH_ID = "987654321"
_FORM = re.compile(r"<form [^>]*action=\"/scope/\"[^>]*>(.*?)</form>", re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
# What differs between two renderings of one page: tokens, nonces, the path itself.
_VOLATILE = re.compile(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]*')


def switch_forms(response) -> list[dict[str, str]]:
    """The hidden fields of each form of the page that posts to the scope switch."""
    forms = []
    for form in _FORM.findall(response.content.decode()):
        if "switch-to-" not in form:
            continue  # the top bar's selectors
        fields = {name: unescape(value) for name, value in _HIDDEN.findall(form)}
        assert fields.pop("csrfmiddlewaretoken"), "a form without its CSRF token is refused"
        forms.append(fields)
    return forms


def view_account(client, account):
    client.post(reverse("change_scope"), {"account": account.id, "next": "/"})


def normalised(response, path: str) -> str:
    return _VOLATILE.sub(r"\1", response.content.decode()).replace(path, "PATH")


@pytest.fixture
def people(tenancy):
    """alice: global administrator; dave: administrator of A and B only;
    erin: administrator of B only; charlie: another organisation's."""
    dave = factories.make_user(
        tenancy.org, "dave", accounts=[tenancy.account_a, tenancy.account_b], role=Role.ADMIN
    )
    erin = factories.make_user(tenancy.org, "erin", accounts=[tenancy.account_b], role=Role.ADMIN)
    clients = {
        name: tenancy.client_for(user)
        for name, user in [("alice", tenancy.alice), ("dave", dave), ("erin", erin)]
    }
    clients["charlie"] = tenancy.client_for(tenancy.charlie)
    return clients


@pytest.fixture
def objects(request) -> dict:
    return request.getfixturevalue("objects_of_account_a")


def _object_paths(endpoint, objects) -> list[str]:
    choices, mapped = id_choices(endpoint, objects)
    assert mapped, f"{endpoint}: map its id keyword in test_url_coverage.OBJECT_WORDS"
    return [sample_path(endpoint, ids) for ids in choices]


def _missing_path(endpoint, objects) -> str:
    """The same page for an id no object has."""
    choices, _ = id_choices(endpoint, objects)
    return sample_path(endpoint, dict.fromkeys(choices[0], NO_SUCH_ID))


@pytest.mark.parametrize("endpoint", PAGE_ENDPOINTS, ids=[str(e) for e in PAGE_ENDPOINTS])
def test_it_offers_the_switch_to_whoever_may_see_the_object(tenancy, objects, people, endpoint):
    account_a = tenancy.account_a
    for requested_path in _object_paths(endpoint, objects):
        for name in ("alice", "dave"):
            client = people[name]
            view_account(client, account_a)
            in_its_view = client.get(requested_path)
            if in_its_view.status_code == 405:
                continue  # an action, not a page: posted to, never opened
            view_account(client, tenancy.account_b)

            response = client.get(requested_path)

            if response.status_code == in_its_view.status_code:
                # A whole organisation's object (playbook, rule): every view shows it.
                continue
            assert response.status_code == 404, f"{name} GET {requested_path}: {response}"
            body = response.content.decode()
            assert "Acme Prod" in body and account_a.uid in body
            assert "Acme Intl" not in body.split('id="main"')[1], "names the wrong account"
            forms = switch_forms(response)
            # The region is the object's, or the current one for objects without.
            assert forms[0].pop("region") in RegionGroup.values
            assert forms[0] == {"next": requested_path, "account": str(account_a.id)}
            # Only a global administrator may use the Global Account View.
            assert len(forms) == (2 if name == "alice" else 1)

            switched = client.post(reverse("change_scope"), switch_forms(response)[0])

            assert switched.status_code == 302
            assert switched["Location"] == requested_path
            assert client.get(requested_path).status_code == in_its_view.status_code


@pytest.mark.parametrize("endpoint", PAGE_ENDPOINTS, ids=[str(e) for e in PAGE_ENDPOINTS])
def test_it_answers_everyone_else_as_if_the_object_did_not_exist(
    tenancy, objects, people, endpoint
):
    missing_path = _missing_path(endpoint, objects)
    for requested_path in _object_paths(endpoint, objects):
        for name in ("erin", "charlie"):
            client = people[name]
            response = client.get(requested_path)
            if response.status_code in (200, 405):
                continue  # a whole organisation's object, or an action
            if name == "erin" and response.status_code == 403:
                continue  # her organisation's own rule or playbook, which only its admins change
            never_existed = client.get(missing_path)

            assert response.status_code == never_existed.status_code, (
                f"{name} GET {requested_path}: {response}, but {never_existed} without the object"
            )
            assert response.status_code in (403, 404)
            assert normalised(response, requested_path) == normalised(never_existed, missing_path)
            assert "switch-to-" not in response.content.decode()


def test_it_shows_the_switch_in_place_of_an_htmx_panel(tenancy, people):
    event = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)
    alert = factories.make_alert(tenancy.account_a, region=RegionGroup.CHINA)
    client = people["dave"]
    view_account(client, tenancy.account_b)
    page = f"http://testserver{reverse('events:list')}?risk=3"

    for path in (
        reverse("events:detail", args=[event.id]),
        reverse("alerts:detail", args=[alert.id]),
    ):
        response = client.get(path, headers={"HX-Request": "true", "HX-Current-URL": page})

        assert response.status_code == 404
        assert response["X-Error-Fragment"] == "true"
        body = response.content.decode()
        assert "<html" not in body and "Acme Prod" in body
        # Back to the page the panel is on, not to the panel alone.
        assert switch_forms(response)[0]["next"] == f"{reverse('events:list')}?risk=3"


def test_it_never_sends_an_htmx_switch_to_another_site(tenancy, people):
    event = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)
    client = people["dave"]
    view_account(client, tenancy.account_b)

    response = client.get(
        reverse("events:detail", args=[event.id]),
        headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/phish"},
    )

    assert switch_forms(response)[0]["next"] == reverse("home")


def test_it_answers_an_htmx_panel_of_a_hidden_object_with_the_plain_404(tenancy, people):
    event = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)

    for name in ("erin", "charlie"):
        response = people[name].get(
            reverse("events:detail", args=[event.id]), headers={"HX-Request": "true"}
        )

        assert response.status_code == 404
        assert response["X-Error-Fragment"] == "true"
        assert "Acme" not in response.content.decode()


def test_it_sends_a_form_posted_from_a_stale_page_back_to_that_page(tenancy, people):
    event = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)
    client = people["dave"]
    view_account(client, tenancy.account_b)
    detail = reverse("events:detail", args=[event.id])

    response = client.post(
        reverse("disposal:handle", args=[event.id]),
        {"status": "handling"},
        headers={"Referer": f"http://testserver{detail}"},
    )

    assert response.status_code == 404
    assert switch_forms(response)[0]["next"] == detail
    event.refresh_from_db()
    assert event.status == "unhandled"


def test_it_switches_the_region_within_the_same_account(tenancy, people):
    # An event of account B, held in China although B's home is outside China.
    event = factories.make_event(tenancy.account_b, region=RegionGroup.CHINA)
    client = people["dave"]
    view_account(client, tenancy.account_b)
    path = reverse("events:detail", args=[event.id])

    response = client.get(path)

    assert response.status_code == 404
    [form] = switch_forms(response)
    assert form == {"next": path, "region": "cn", "account": str(tenancy.account_b.id)}
    assert "China" in response.content.decode()
    client.post(reverse("change_scope"), form)
    assert client.get(path).status_code == 200


def test_it_offers_the_global_view_in_the_objects_region(tenancy, people):
    event = factories.make_event(tenancy.account_b, region=RegionGroup.OUTSIDE_CHINA)
    client = people["alice"]
    path = reverse("events:detail", args=[event.id])

    response = client.get(path)

    account_form, global_form = switch_forms(response)
    assert account_form["account"] == str(tenancy.account_b.id)
    assert global_form == {"next": path, "region": "intl", "view": "global"}
    client.post(reverse("change_scope"), global_form)
    assert client.get(path).status_code == 200
