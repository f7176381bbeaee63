"""The Handle panel's Message Preview over the API: the message handling would
send, rendered by the function that renders the sent one; nothing handled."""

import pytest

from disposal.handling import (
    ActionChoice,
    HandlingRequest,
    NotificationChoice,
    handling_context,
    preview_message,
)
from disposal.models import HandlingPolicy, Notification
from events.models import EventStatus
from tests.disposal.conftest import ATTACKER_IP
from tests.disposal.test_api import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

BODY = {
    "status": "handling",
    "description": "Blocking the scanner",
    "actions": [
        {
            "entity_type": "ip",
            "value": ATTACKER_IP,
            "scenario": "block-ip-waf",
            "accounts": ["1111111111111111", "2222222222222222"],
            "validity_days": 3,
        }
    ],
    "notification": {"channels": ["email"], "recipients": ["soc@example.com"], "title": "Blocked"},
}


def preview(client, event, body=BODY):
    return client.post(
        f"/api/v1/events/{event.pk}/handle/preview", body, content_type="application/json"
    )


def test_it_renders_the_message_with_the_planned_policies_and_handles_nothing(
    brute_force_event, tenancy
):
    event = brute_force_event.event

    response = preview(key_client(tenancy.org), event)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["channels"], body["recipients"], body["title"]) == (
        ["Email"],
        ["soc@example.com"],
        "Blocked",
    )
    assert f"Security event #{event.pk}" in body["body"]
    assert "Status: Handling" in body["body"]
    assert f"{ATTACKER_IP} for 3 days, in 2 accounts" in body["body"]
    assert "Analyst's note: Blocking the scanner" in body["body"]
    event.refresh_from_db()
    assert event.status == EventStatus.UNHANDLED
    assert not HandlingPolicy.objects.exists() and not Notification.objects.exists()


def test_it_is_the_message_the_service_renders(brute_force_event, tenancy):
    """One renderer: the answer is what ``preview_message`` (which the panel uses) gives."""
    event = brute_force_event.event
    account_ids = (tenancy.account_a.id, tenancy.account_b.id)
    handling = HandlingRequest(
        status="handling",
        description="Blocking the scanner",
        actions=(ActionChoice("ip", ATTACKER_IP, "block-ip-waf", account_ids, 3),),
        notification=NotificationChoice(("email",), ("soc@example.com",), "Blocked"),
    )
    expected = preview_message(handling_context(brute_force_event.scope, event), handling)

    assert preview(key_client(tenancy.org), event).json()["body"] == expected


def test_an_account_outside_the_keys_scope_is_refused_naming_the_action(brute_force_event, tenancy):
    response = preview(key_client(tenancy.org, tenancy.account_a), brute_force_event.event)

    assert response.status_code == 422
    assert "actions[0].accounts" in response.json()["errors"]


def test_another_tenants_event_is_a_404(brute_force_event, tenancy):
    response = preview(key_client(tenancy.other_org), brute_force_event.event)

    assert response.status_code == 404
