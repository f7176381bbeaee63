"""The Disposal Center over the API: policies, tasks and active blocks with the
center's filters and totals, one policy and its editing, the entity page; each
within the key's scope."""

import pytest

from alerts.models import Entity, EntityType
from disposal.models import HandlingPolicy, HandlingTask, TaskStatus
from tests.disposal.conftest import ATTACKER_IP
from tests.disposal.test_api import key_client, post

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def handled(brute_force_event, tenancy, django_capture_on_commit_callbacks):
    """The brute-force event handled with blocks of its IP on Cloud Firewall and
    WAF in its three accounts: 2 policies, 6 tasks, all in force."""
    uids = [a.uid for a in brute_force_event.accounts]
    body = {
        "status": "handling",
        "actions": [
            {"entity_type": "ip", "value": ATTACKER_IP, "scenario": scenario, "accounts": uids}
            for scenario in ("block-ip-cloud-firewall-inbound", "block-ip-waf")
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            key_client(tenancy.org), f"/api/v1/events/{brute_force_event.event.pk}/handle", body
        )
    assert response.status_code == 201, response.content
    return brute_force_event


@pytest.fixture
def api(tenancy):
    return key_client(tenancy.org)


def test_it_lists_policies_with_the_center_filters_and_a_total(api, handled, tenancy):
    every = api.get("/api/v1/handling/policies")
    waf = api.get("/api/v1/handling/policies", {"scenario": "block-ip-waf"})
    files = api.get("/api/v1/handling/policies", {"entity_type": "file"})
    first = api.get("/api/v1/handling/policies", {"limit": 1})

    assert every["X-Total-Count"] == "2"
    assert [p["scenario"] for p in waf.json()] == ["block-ip-waf"]
    assert waf["X-Total-Count"] == "1"
    assert files.json() == []
    assert len(first.json()) == 1 and first["X-Total-Count"] == "2"


def test_it_lists_tasks_and_active_blocks_with_the_center_filters(api, handled, tenancy):
    account_b = tenancy.account_b.id
    in_b = api.get("/api/v1/handling/tasks", {"account": account_b})
    succeeded = api.get("/api/v1/handling/tasks", {"status": "succeeded", "created": "1d"})
    active = api.get("/api/v1/handling/active-blocks", {"scenario": "block-ip-waf"})

    assert {t["account"] for t in in_b.json()} == {tenancy.account_b.uid}
    assert in_b["X-Total-Count"] == "2"
    assert succeeded["X-Total-Count"] == "6"
    assert active["X-Total-Count"] == "3"
    assert {t["status"] for t in active.json()} == {TaskStatus.SUCCEEDED}


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/handling/policies", {"entity_type": "payload"}, "entity_type"),
        ("/api/v1/handling/policies", {"scenario": "nuke"}, "scenario"),
        ("/api/v1/handling/tasks", {"status": "bogus"}, "status"),
        ("/api/v1/handling/tasks", {"policy": "x"}, "policy"),
        ("/api/v1/handling/tasks", {"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ("/api/v1/handling/active-blocks", {"created": "2y"}, "created"),
    ],
)
def test_it_refuses_a_filter_the_center_refuses_naming_it(api, path, query, field):
    response = api.get(path, query)

    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_an_account_of_another_tenant_is_no_filter(api, handled, tenancy):
    response = api.get("/api/v1/handling/tasks", {"account": tenancy.account_x.id})

    assert response.status_code == 422
    assert "account" in response.json()["errors"]


def test_it_changes_a_policys_scope_and_validity(
    api, handled, tenancy, django_capture_on_commit_callbacks
):
    policy = HandlingPolicy.objects.get(scenario__key="block-ip-waf")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/v1/handling/policies/{policy.id}",
            {"accounts": [tenancy.account_a.uid], "validity_days": 3},
            content_type="application/json",
        )

    assert response.status_code == 200, response.content
    assert response.json()["accounts"] == [tenancy.account_a.uid]
    assert response.json()["validity_days"] == 3
    policy.refresh_from_db()
    assert (policy.revision, policy.validity_days) == (2, 3)
    removed = HandlingTask.objects.filter(policy=policy).exclude(account=tenancy.account_a)
    assert {t.status for t in removed} == {TaskStatus.UNBLOCKED}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accounts": []}, "accounts"),
        ({"accounts": ["0000000000000000"]}, "accounts"),
        ({"accounts": ["1111111111111111"], "validity_days": 999}, "validity_days"),
    ],
)
def test_it_refuses_a_policy_change_naming_the_field(api, handled, body, field):
    policy = HandlingPolicy.objects.get(scenario__key="block-ip-waf")

    response = api.patch(
        f"/api/v1/handling/policies/{policy.id}", body, content_type="application/json"
    )

    assert response.status_code == 422
    assert field in response.json()["errors"]
    policy.refresh_from_db()
    assert policy.revision == 1


def test_a_key_of_one_account_may_not_change_a_policy_of_three(handled, tenancy):
    policy = HandlingPolicy.objects.get(scenario__key="block-ip-waf")
    account_a_key = key_client(tenancy.org, tenancy.account_a)

    response = account_a_key.patch(
        f"/api/v1/handling/policies/{policy.id}",
        {"accounts": [tenancy.account_a.uid], "validity_days": 3},
        content_type="application/json",
    )

    assert response.status_code == 403
    policy.refresh_from_db()
    assert policy.revision == 1


def test_an_outsider_reads_and_changes_no_policy(handled, tenancy):
    policy = HandlingPolicy.objects.get(scenario__key="block-ip-waf")
    outsider = key_client(tenancy.other_org)

    assert outsider.get(f"/api/v1/handling/policies/{policy.id}").status_code == 404
    changed = outsider.patch(
        f"/api/v1/handling/policies/{policy.id}",
        {"accounts": [tenancy.account_x.uid]},
        content_type="application/json",
    )
    assert changed.status_code == 404
    assert outsider.get("/api/v1/handling/active-blocks").json() == []
    policy.refresh_from_db()
    assert policy.revision == 1


def test_it_shows_an_entity_across_the_keys_accounts(api, handled, tenancy):
    digest = Entity.digest_for(EntityType.IP, ATTACKER_IP)

    body = api.get(f"/api/v1/entities/ip/{digest}").json()
    only_a = key_client(tenancy.org, tenancy.account_a).get(f"/api/v1/entities/ip/{digest}")

    assert body["value"] == ATTACKER_IP
    assert len(body["accounts"]) == 3
    assert body["named_attacker"] is True
    assert handled.event.pk in body["events"]
    assert len(body["policies"]) == 2
    assert only_a.json()["accounts"] == [tenancy.account_a.uid]


def test_an_entity_no_account_of_the_key_saw_is_not_found(handled, tenancy):
    digest = Entity.digest_for(EntityType.IP, ATTACKER_IP)
    outsider = key_client(tenancy.other_org)

    assert outsider.get(f"/api/v1/entities/ip/{digest}").status_code == 404
    assert outsider.get("/api/v1/entities/ip/not-a-digest").status_code == 422
    assert outsider.get(f"/api/v1/entities/planet/{digest}").status_code == 422
