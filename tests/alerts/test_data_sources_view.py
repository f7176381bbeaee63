"""The Data Sources page: arrivals, rejected items and API keys, per scope."""

import pytest
from django.urls import reverse

from alerts.services import ingest_alerts, ingest_logs
from secops.enums import Role
from secops.models import AccountMembership, ApiKey
from secops.services import authenticate_api_key, create_api_key
from tests.conftest import native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

URL = reverse("alerts:data_sources")


@pytest.fixture
def arrivals(tenancy, django_capture_on_commit_callbacks):
    scope = organisation_scope(tenancy.org)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_alerts(
            [native_alert(tenancy.account_a, uuid=f"a{n}") for n in range(3)]
            + [native_alert(tenancy.account_b, uuid="b0", source="waf")],
            scope=scope,
        )
    ingest_logs(
        [{"type": "login", "account": tenancy.account_a.uid, "time": "2026-11-23T12:00:00Z"}],
        scope=scope,
    )
    # One refused batch: a bad level for account B, and an unknown account.
    ingest_alerts(
        [
            native_alert(tenancy.account_b, uuid="bad", level="urgent"),
            native_alert(tenancy.account_b, uuid="lost") | {"account": "5555555555555555"},
        ],
        scope=scope,
    )
    umbrella = organisation_scope(tenancy.other_org)
    ingest_alerts([native_alert(tenancy.account_x, uuid="x0")], scope=umbrella)


def rows(response, testid: str) -> str:
    html = response.content.decode()
    start = html.find(f'data-testid="{testid}"')
    return html[start : html.find("</table>", start)] if start >= 0 else ""


def test_it_shows_the_arrivals_of_the_current_account_only(tenancy, arrivals):
    response = tenancy.client_for(tenancy.bob).get(URL)

    table = rows(response, "arrivals")
    assert response.status_code == 200
    assert "security_center" in table and "login" in table
    assert "waf" not in table  # account B's
    assert "Umbrella" not in response.content.decode()


def test_it_shows_every_managed_account_in_the_global_view(tenancy, arrivals):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": "global"})

    table = rows(client.get(URL), "arrivals")

    # Arrivals are counted per account, whatever region the data is in.
    assert tenancy.account_a.uid in table and tenancy.account_b.uid in table
    assert tenancy.account_x.uid not in table


def test_it_lists_rejected_items_with_field_and_message(tenancy, arrivals):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"account": tenancy.account_b.id, "region": "intl"})

    table = rows(client.get(URL), "rejections")

    assert "level" in table and "urgent" in table
    # The unknown account's item belongs to no account: global view only.
    assert "5555555555555555" not in table


def test_it_shows_rejections_without_an_account_in_the_global_view(tenancy, arrivals):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": "global"})

    table = rows(client.get(URL), "rejections")

    assert "5555555555555555" in table


def test_it_creates_a_key_shown_once_that_authenticates(tenancy):
    AccountMembership.objects.filter(user=tenancy.bob).update(role=Role.ADMIN)

    response = tenancy.client_for(tenancy.bob).post(
        reverse("alerts:create_api_key"), {"name": "shipper"}
    )

    html = response.content.decode()
    key = html.split('<pre class="mono secret">')[1].split("</pre>")[0]
    api_key = authenticate_api_key(key)
    assert (api_key.name, api_key.account) == ("shipper", tenancy.account_a)
    assert key not in tenancy.client_for(tenancy.bob).get(URL).content.decode()


def test_it_refuses_key_management_to_an_analyst(tenancy):
    api_key, _ = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="k")
    client = tenancy.client_for(tenancy.bob)

    assert client.post(reverse("alerts:create_api_key"), {"name": "x"}).status_code == 403
    revoke = reverse("alerts:revoke_api_key", args=[api_key.id])
    assert client.post(revoke).status_code == 403
    assert ApiKey.objects.get(id=api_key.id).revoked_at is None
    assert "Revoke" not in client.get(URL).content.decode()


def test_it_revokes_a_key(tenancy):
    api_key, secret = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="k")

    response = tenancy.client_for(tenancy.alice).post(
        reverse("alerts:revoke_api_key", args=[api_key.id])
    )

    assert response.status_code == 302
    assert authenticate_api_key(secret) is None


def test_it_hides_another_tenants_key(tenancy):
    api_key, secret = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="k")
    client = tenancy.client_for(tenancy.charlie)

    assert client.post(reverse("alerts:revoke_api_key", args=[api_key.id])).status_code == 404
    assert authenticate_api_key(secret) is not None
    assert api_key.prefix not in client.get(URL).content.decode()


def test_it_names_the_sources_and_log_types(tenancy, arrivals):
    response = tenancy.client_for(tenancy.bob).get(URL)

    table = rows(response, "arrivals")
    assert '<td title="security_center">Security Center</td>' in table
    assert '<td title="login">Login</td>' in table
