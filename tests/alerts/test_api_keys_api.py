"""Creating and revoking API keys over the API, with the Data Sources page's
rules: an account's key for its administrators, an organisation key for the
organisation's; the secret is in the creating answer only."""

import pytest
from django.test import Client

from secops.models import ApiKey
from secops.services import create_api_key
from tests.disposal.test_api import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def post(client, path, body=None):
    return client.post(path, body or {}, content_type="application/json")


def test_it_creates_a_key_of_an_account_that_works_and_shows_its_secret_once(tenancy):
    response = post(
        key_client(tenancy.org),
        "/api/v1/api-keys",
        {"name": "Collector", "account": "1111111111111111"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["account"]) == ("Collector", tenancy.account_a.uid)
    new_key = Client(headers={"authorization": f"Bearer {body['key']}"})
    assert new_key.get("/api/v1/accounts").json()[0]["uid"] == tenancy.account_a.uid
    listed = key_client(tenancy.org).get("/api/v1/data-sources").json()["api_keys"]
    assert body["id"] in [k["id"] for k in listed]
    assert all("key" not in k for k in listed)


def test_an_organisation_key_makes_a_key_of_the_organisation(tenancy):
    response = post(key_client(tenancy.org), "/api/v1/api-keys", {"name": "Org"})

    assert response.status_code == 201
    assert ApiKey.objects.get(id=response.json()["id"]).account is None


def test_an_account_key_may_not_make_a_key_of_the_organisation(tenancy):
    account_key = key_client(tenancy.org, tenancy.account_a)

    own = post(account_key, "/api/v1/api-keys", {"name": "A", "account": tenancy.account_a.uid})
    org = post(account_key, "/api/v1/api-keys", {"name": "Org"})
    other = post(account_key, "/api/v1/api-keys", {"name": "B", "account": tenancy.account_b.uid})

    assert own.status_code == 201
    assert org.status_code == 403
    assert other.status_code == 422 and "account" in other.json()["errors"]
    assert ApiKey.objects.filter(name__in=["Org", "B"]).count() == 0


def test_it_revokes_a_key(tenancy):
    key, secret = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="Old")

    response = post(key_client(tenancy.org, tenancy.account_a), f"/api/v1/api-keys/{key.id}/revoke")

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    revoked = Client(headers={"authorization": f"Bearer {secret}"})
    assert revoked.get("/api/v1/accounts").status_code == 401


def test_an_account_key_may_not_revoke_the_organisations_key(tenancy):
    key, _ = create_api_key(organisation=tenancy.org, account=None, name="Org")

    response = post(key_client(tenancy.org, tenancy.account_a), f"/api/v1/api-keys/{key.id}/revoke")

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_organisations_key_is_a_404_and_its_account_no_choice(tenancy):
    key, _ = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="A")
    outsider = key_client(tenancy.other_org)

    revoked = post(outsider, f"/api/v1/api-keys/{key.id}/revoke")
    created = post(outsider, "/api/v1/api-keys", {"account": tenancy.account_a.uid})

    assert revoked.status_code == 404
    assert created.status_code == 422
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not ApiKey.objects.filter(organisation=tenancy.org).exclude(id=key.id).exists()
