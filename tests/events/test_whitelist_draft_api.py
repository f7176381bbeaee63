"""Add to Whitelist over the API: the draft the console's editor starts from,
and a group created from an event remembering it; an account key only for its
own account, another tenant's event a 404."""

import pytest

from events.models import EventAlert, WhitelistGroupOrigin
from tests import factories
from tests.disposal.test_api import key_client
from whitelist.models import RuleGroup

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def _link(event, alert):
    EventAlert.objects.create(event=event, alert=alert)


@pytest.fixture
def linked_event(tenancy):
    event = factories.make_event(tenancy.account_a, name="Webshell on web-01")
    _link(event, factories.make_alert(tenancy.account_a, type="webshell", name="Webshell detected"))
    return event


def test_the_draft_is_the_consoles_limited_to_the_events_account(linked_event, tenancy):
    response = key_client(tenancy.org).get(f"/api/v1/events/{linked_event.id}/whitelist-draft")

    assert response.status_code == 200, response.content
    group = response.json()["group"]
    assert group["name"] == "Whitelist: Webshell on web-01"
    assert group["scenario"] == "webshell"
    assert group["accounts"] == [tenancy.account_a.uid] and group["is_global"] is False
    assert group["conditions"]
    assert response.json()["suggestions"]


def test_the_draft_posted_back_makes_a_group_that_remembers_the_event(linked_event, tenancy):
    api = key_client(tenancy.org, tenancy.account_a)
    draft = api.get(f"/api/v1/events/{linked_event.id}/whitelist-draft").json()["group"]

    response = api.post(
        f"/api/v1/events/{linked_event.id}/whitelist-groups", draft, content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["source_event"] == linked_event.id
    group = RuleGroup.objects.get(id=response.json()["id"])
    assert WhitelistGroupOrigin.objects.get(group=group).event_id == linked_event.id


def test_an_account_key_may_not_make_a_global_group_from_an_event(linked_event, tenancy):
    api = key_client(tenancy.org, tenancy.account_a)
    draft = api.get(f"/api/v1/events/{linked_event.id}/whitelist-draft").json()["group"]

    response = api.post(
        f"/api/v1/events/{linked_event.id}/whitelist-groups",
        {**draft, "accounts": [], "is_global": True},
        content_type="application/json",
    )

    assert response.status_code in (403, 422)
    assert not RuleGroup.objects.exists() and not WhitelistGroupOrigin.objects.exists()


def test_a_refused_group_leaves_no_origin(linked_event, tenancy):
    response = key_client(tenancy.org).post(
        f"/api/v1/events/{linked_event.id}/whitelist-groups",
        {"name": "", "scenario": "webshell", "conditions": []},
        content_type="application/json",
    )

    assert response.status_code == 422
    assert "name" in response.json()["errors"]
    assert not WhitelistGroupOrigin.objects.exists()


def test_another_tenants_event_is_a_404(linked_event, tenancy):
    outsider = key_client(tenancy.other_org)

    draft = outsider.get(f"/api/v1/events/{linked_event.id}/whitelist-draft")
    created = outsider.post(
        f"/api/v1/events/{linked_event.id}/whitelist-groups",
        {"name": "x", "scenario": "webshell", "conditions": []},
        content_type="application/json",
    )

    assert (draft.status_code, created.status_code) == (404, 404)
    assert not RuleGroup.objects.exists()
