"""SOAR over the API: playbooks with versions, rules with validated conditions,
runs, and the scope rules."""

import pytest
from django.test import Client

from secops.services import create_api_key
from soar.models import AutomationRule, Playbook, PlaybookRun
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def client_for(organisation, account=None) -> Client:
    _, secret = create_api_key(organisation=organisation, account=account, name="t")
    return Client(headers={"authorization": f"Bearer {secret}"})


def post(client, path, body=None, method="post"):
    return getattr(client, method)(path, body or {}, content_type="application/json")


def test_playbooks_get_versions_and_errors_name_the_step(tenancy):
    api = client_for(tenancy.org)
    bad = post(
        api,
        "/api/v1/playbooks",
        {"name": "P", "steps": [{"kind": "wait", "params": {"minutes": 0}}]},
    )
    assert bad.status_code == 422
    assert list(bad.json()["errors"]) == ["steps[0].params.minutes"]
    made = post(
        api,
        "/api/v1/playbooks",
        {"name": "P", "steps": [{"kind": "set_risk", "params": {"risk": 3}}]},
    )
    assert made.status_code == 201 and made.json()["version"] == 1
    pid = made.json()["id"]
    edited = post(
        api,
        f"/api/v1/playbooks/{pid}",
        {"name": "P", "steps": [{"kind": "set_risk", "params": {"risk": 1}}]},
        method="put",
    )
    assert edited.json()["version"] == 2
    assert [v["number"] for v in api.get(f"/api/v1/playbooks/{pid}/versions").json()] == [2, 1]
    # The built-in playbooks are listed and cannot be changed.
    builtin = next(p for p in api.get("/api/v1/playbooks").json() if p["built_in"])
    assert (
        post(
            api, f"/api/v1/playbooks/{builtin['id']}", {"name": "x", "steps": []}, method="put"
        ).status_code
        == 403
    )


def test_rules_validate_their_conditions_with_the_path(tenancy):
    api = client_for(tenancy.org)
    body = {
        "name": "R",
        "trigger": "event_created",
        "action": "set_risk",
        "parameters": {"risk": 3},
        "conditions": {"all": [{"field": "risk", "operator": "in_cidr", "value": "10.0.0.0/8"}]},
    }
    bad = post(api, "/api/v1/automation-rules", body)
    assert bad.status_code == 422
    assert list(bad.json()["errors"]) == ["conditions.all[0].operator"]
    body["conditions"] = {
        "any": [{"field": "attacker_ip", "operator": "in_cidr", "value": "203.0.113.0/24"}]
    }
    made = post(api, "/api/v1/automation-rules", body)
    assert made.status_code == 201
    failed = dict(body, parameters={"status": "failed"}, action="set_status")
    assert "parameters.status" in post(api, "/api/v1/automation-rules", failed).json()["errors"]
    # An account key may read the rules but not change them.
    account_api = client_for(tenancy.org, tenancy.account_a)
    assert account_api.get("/api/v1/automation-rules").status_code == 200
    assert post(account_api, "/api/v1/automation-rules", body).status_code == 403
    assert AutomationRule.objects.count() == 1


def test_an_outsider_reaches_nothing(tenancy):
    api = client_for(tenancy.org)
    pid = post(
        api,
        "/api/v1/playbooks",
        {"name": "P", "steps": [{"kind": "set_risk", "params": {"risk": 3}}]},
    ).json()["id"]
    event = factories.make_event(tenancy.account_a, name="E")
    run = post(api, f"/api/v1/playbooks/{pid}/runs", {"event": event.id})
    assert run.status_code == 201
    outsider = client_for(tenancy.other_org)
    assert outsider.get(f"/api/v1/playbooks/{pid}").status_code == 404
    assert outsider.get(f"/api/v1/playbook-runs/{run.json()['id']}").status_code == 404
    assert post(outsider, f"/api/v1/playbooks/{pid}/runs", {"event": event.id}).status_code == 404
    assert outsider.get("/api/v1/playbook-runs").json() == []
    assert not [p for p in outsider.get("/api/v1/playbooks").json() if not p["built_in"]]
    assert (
        PlaybookRun.objects.count() == 1
        and Playbook.objects.filter(organisation=tenancy.org).count() == 1
    )
