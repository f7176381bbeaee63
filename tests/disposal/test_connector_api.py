"""Connector settings and the simulated cloud's failure instructions over the
API: read without secrets, changed through the settings page's form (secrets
write-only), failures listed, added and removed; each for administrators of
the account only, and another tenant's account or failure a 404."""

import pytest

from disposal.models import AccountConnector, SimulatedFailure
from secops.crypto import decrypt
from tests.disposal.test_api import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

WEBHOOK = {
    "kind": "webhook",
    "webhook_url": "https://hooks.example.com/secops",
    "webhook_secret": "s3cret-s3cret",
}


def put(client, path, body):
    return client.put(path, body, content_type="application/json")


def test_it_stores_the_settings_and_never_shows_a_secret(tenancy):
    api = key_client(tenancy.org, tenancy.account_a)
    path = f"/api/v1/accounts/{tenancy.account_a.id}/connector"

    before = api.get(path).json()
    saved = put(api, path, WEBHOOK)
    kept = put(api, path, {**WEBHOOK, "webhook_secret": ""})

    assert before["configured"] is False
    assert saved.status_code == 200, saved.content
    assert saved.json()["webhook_secret_set"] is True
    assert "s3cret" not in saved.content.decode() + api.get(path).content.decode()
    assert kept.status_code == 200
    assert decrypt(AccountConnector.objects.get(account=tenancy.account_a).webhook_secret) == (
        "s3cret-s3cret"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "webhook_url": "https://hooks.example.com/x"}, "webhook_secret"),
        ({"kind": "teleport"}, "kind"),
        (
            {
                "kind": "alibaba",
                "access_key_id": "LTAI5tExample01",
                "access_key_secret": "x",
                "cloud_region": "cn-hangzhou",
                "endpoints": {"moon": "x"},
            },
            "endpoints",
        ),
        (
            {
                "kind": "alibaba",
                "access_key_id": "LTAI5tExample01",
                "access_key_secret": "x",
                "cloud_region": "cn-hangzhou",
                "endpoints": {"cloudfw": "http://x/"},
            },
            "endpoints",
        ),
    ],
)
def test_it_refuses_what_the_settings_page_refuses_naming_the_field(tenancy, body, field):
    api = key_client(tenancy.org, tenancy.account_a)

    response = put(api, f"/api/v1/accounts/{tenancy.account_a.id}/connector", body)

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert not AccountConnector.objects.filter(account=tenancy.account_a).exists()


def test_another_accounts_settings_are_refused_and_another_tenants_hidden(tenancy):
    account_key = key_client(tenancy.org, tenancy.account_a)
    outsider = key_client(tenancy.other_org)

    of_b = account_key.get(f"/api/v1/accounts/{tenancy.account_b.id}/connector")
    hidden = put(outsider, f"/api/v1/accounts/{tenancy.account_a.id}/connector", WEBHOOK)

    assert of_b.status_code == 404  # account B is not in an account A key's scope
    assert hidden.status_code == 404
    assert not AccountConnector.objects.exists()


def test_the_connection_check_of_the_simulated_cloud_needs_nothing(tenancy):
    response = key_client(tenancy.org).post(
        f"/api/v1/accounts/{tenancy.account_a.id}/connector/check"
    )

    assert response.status_code == 200
    assert response.json()["ok"] is True


def test_it_adds_lists_and_removes_a_simulated_failure(tenancy):
    api = key_client(tenancy.org, tenancy.account_a)

    added = api.post(
        "/api/v1/simulated-cloud/failures",
        {
            "account": tenancy.account_a.uid,
            "target": "203.0.113.7",
            "percent": 30,
            "message": "Quota exceeded",
        },
        content_type="application/json",
    )
    listed = api.get("/api/v1/simulated-cloud/failures").json()
    removed = api.delete(f"/api/v1/simulated-cloud/failures/{added.json()['id']}")

    assert added.status_code == 201, added.content
    assert added.json()["percent"] == 30.0
    assert [f["target"] for f in listed] == ["203.0.113.7"]
    assert removed.status_code == 204
    assert not SimulatedFailure.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account": "2222222222222222", "message": "x"}, "account"),
        ({"account": "1111111111111111", "message": "  "}, "message"),
        ({"account": "1111111111111111", "message": "x", "percent": 101}, "percent"),
    ],
)
def test_it_refuses_a_failure_naming_the_field(tenancy, body, field):
    api = key_client(tenancy.org, tenancy.account_a)

    response = api.post("/api/v1/simulated-cloud/failures", body, content_type="application/json")

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert not SimulatedFailure.objects.exists()


def test_another_tenants_failure_is_a_404_and_stays(tenancy):
    failure = SimulatedFailure.objects.create(account=tenancy.account_a, target="203.0.113.7")
    outsider = key_client(tenancy.other_org)

    assert outsider.delete(f"/api/v1/simulated-cloud/failures/{failure.id}").status_code == 404
    assert outsider.get("/api/v1/simulated-cloud/failures").json() == []
    assert SimulatedFailure.objects.filter(id=failure.id).exists()
