"""Handling over the API: options, handle, policies and tasks, Retry and Unblock,
with the scope and role rules of the pages."""

import pytest

from disposal.models import HandlingPolicy, HandlingTask, SimulatedFailure, TaskStatus
from events.models import EventStatus
from tests.disposal.conftest import ATTACKER_IP
from tests.factories import key_client

pytestmark = pytest.mark.usefixtures("django_capture_on_commit_callbacks")


@pytest.fixture
def org_api(brute_force_event, tenancy):
    return key_client(tenancy.org)


def post(client, path, body=None):
    return client.post(path, body or {}, content_type="application/json")


def test_options_list_the_entities_with_the_recommendation(org_api, brute_force_event):
    response = org_api.get(f"/api/v1/events/{brute_force_event.event.pk}/handling")
    assert response.status_code == 200
    ip = next(e for e in response.json()["entities"] if e["type"] == "ip")
    assert ip["value"] == ATTACKER_IP
    assert ip["recommended_scenario"] == "block-ip-cloud-firewall-inbound"
    assert len(ip["accounts"]) == 3


def test_handle_with_two_scenarios_over_three_accounts(
    org_api, brute_force_event, django_capture_on_commit_callbacks
):
    uids = [a.uid for a in brute_force_event.accounts]
    body = {
        "status": "handling",
        "actions": [
            {"entity_type": "ip", "value": ATTACKER_IP, "scenario": scenario, "accounts": uids}
            for scenario in ("block-ip-cloud-firewall-inbound", "block-ip-waf")
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post(org_api, f"/api/v1/events/{brute_force_event.event.pk}/handle", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert len(data["policies"]) == 2 and len(data["tasks"]) == 6
    assert HandlingTask.objects.filter(status=TaskStatus.SUCCEEDED).count() == 6
    brute_force_event.event.refresh_from_db()
    assert brute_force_event.event.status == EventStatus.HANDLED
    listed = org_api.get("/api/v1/handling/policies", {"event": brute_force_event.event.pk})
    assert {p["scenario"] for p in listed.json()} == {
        "block-ip-cloud-firewall-inbound",
        "block-ip-waf",
    }
    assert all(p["tasks"] == {"succeeded": 3} for p in listed.json())


@pytest.mark.parametrize("status", ["failed", "FAILED"])
def test_failed_is_refused(org_api, brute_force_event, status):
    response = post(
        org_api, f"/api/v1/events/{brute_force_event.event.pk}/handle", {"status": status}
    )
    assert response.status_code == 422
    assert "status" in response.json()["errors"]
    brute_force_event.event.refresh_from_db()
    assert brute_force_event.event.status == EventStatus.UNHANDLED


def test_use_recommended_and_an_unknown_account(org_api, brute_force_event):
    path = f"/api/v1/events/{brute_force_event.event.pk}/handle"
    refused = post(
        org_api,
        path,
        {
            "status": "handling",
            "actions": [
                {
                    "entity_type": "ip",
                    "value": ATTACKER_IP,
                    "scenario": "block-ip-waf",
                    "accounts": ["0000000000000000"],
                }
            ],
        },
    )
    assert refused.status_code == 422
    assert "actions[0].accounts" in refused.json()["errors"]
    assert not HandlingPolicy.objects.exists()
    response = post(org_api, path, {"status": "handling", "use_recommended": True})
    assert response.status_code == 201
    assert [p["scenario"] for p in response.json()["policies"]] == [
        "block-ip-cloud-firewall-inbound"
    ]


def test_retry_and_unblock(org_api, brute_force_event, django_capture_on_commit_callbacks):
    SimulatedFailure.objects.create(target=ATTACKER_IP, message="Throttled")
    with django_capture_on_commit_callbacks(execute=True):
        post(
            org_api,
            f"/api/v1/events/{brute_force_event.event.pk}/handle",
            {"status": "handling", "use_recommended": True},
        )
    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED
    detail = org_api.get(f"/api/v1/handling/tasks/{task.pk}").json()
    assert detail["may_retry"] and "Throttled" in detail["error"]
    assert [t["to_status"] for t in detail["transitions"]] == ["pending", "running", "failed"]
    assert post(org_api, f"/api/v1/handling/tasks/{task.pk}/unblock").status_code == 409

    SimulatedFailure.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        retried = post(org_api, f"/api/v1/handling/tasks/{task.pk}/retry")
    assert retried.status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    with django_capture_on_commit_callbacks(execute=True):
        unblocked = post(org_api, f"/api/v1/handling/tasks/{task.pk}/unblock")
    assert unblocked.status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    assert org_api.get("/api/v1/handling/tasks", {"status": "bogus"}).status_code == 422


def test_an_outsider_key_sees_nothing(
    brute_force_event, tenancy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(
            key_client(tenancy.org),
            f"/api/v1/events/{brute_force_event.event.pk}/handle",
            {"status": "handling", "use_recommended": True},
        )
    task = HandlingTask.objects.get()
    outsider = key_client(tenancy.other_org)
    assert outsider.get(f"/api/v1/events/{brute_force_event.event.pk}/handling").status_code == 404
    assert (
        post(
            outsider, f"/api/v1/events/{brute_force_event.event.pk}/handle", {"status": "handled"}
        ).status_code
        == 404
    )
    assert outsider.get(f"/api/v1/handling/tasks/{task.pk}").status_code == 404
    assert post(outsider, f"/api/v1/handling/tasks/{task.pk}/unblock").status_code == 404
    assert outsider.get("/api/v1/handling/tasks").json() == []
    assert outsider.get("/api/v1/handling/policies").json() == []
    # A key of account B sees the task of B only, not the policy of account A.
    b_key = key_client(tenancy.org, tenancy.account_b)
    assert b_key.get("/api/v1/handling/policies").json() == []
    brute_force_event.event.refresh_from_db()
    assert brute_force_event.event.status == EventStatus.HANDLED
