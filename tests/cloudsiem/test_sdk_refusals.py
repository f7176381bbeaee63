"""What the server refuses, as the official SDK reports it: a tampered body, a
wrong secret, a stale date, a replayed nonce, a revoked key, an unknown action;
always a JSON error whose Code and Message reach the script's exception."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from alibabacloud_cloud_siem20220616 import models as siem
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils

from cloudsiem.services import create_access_key, revoke

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]

REQUEST = siem.DescribeCloudSiemEventsRequest(current_page=1, page_size=10)


def _refused(client) -> ClientException:
    with pytest.raises(ClientException) as refused:
        client.describe_cloud_siem_events(REQUEST)
    return refused.value


def test_a_correct_request_is_answered(sdk, tenancy):
    body = sdk(tenancy.bob).describe_cloud_siem_events(REQUEST).body

    assert body.success is True and body.data.page_info.to_map() == {
        "CurrentPage": 1,
        "PageSize": 10,
        "TotalCount": 0,
    }


def test_a_tampered_body_is_refused(sdk, tenancy, monkeypatch):
    send = requests.Session.send

    def tamper(session, prepared, **kwargs):
        prepared.body = prepared.body.replace(b"PageSize=10", b"PageSize=99")
        return send(session, prepared, **kwargs)

    client = sdk(tenancy.bob)
    monkeypatch.setattr(requests.Session, "send", tamper)

    refused = _refused(client)

    assert (refused.status_code, refused.code) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in refused.message


def test_a_wrong_secret_is_refused(sdk, tenancy):
    key, _ = create_access_key(tenancy.bob)

    refused = _refused(sdk(key.access_key_id, "not-the-secret"))

    assert (refused.status_code, refused.code) == (400, "SignatureDoesNotMatch")


def test_an_unknown_access_key_is_refused(sdk, tenancy):
    refused = _refused(sdk("SOAKNOSUCHKEY", "secret"))

    assert (refused.status_code, refused.code) == (404, "InvalidAccessKeyId.NotFound")


def test_a_stale_date_is_refused(sdk, tenancy, monkeypatch):
    stale = (datetime.now(tz=UTC) - timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stale))

    refused = _refused(sdk(tenancy.bob))

    assert (refused.status_code, refused.code) == (400, "InvalidTimeStamp.Expired")


def test_a_replayed_nonce_is_refused(sdk, tenancy, monkeypatch):
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "5f" * 16))
    client = sdk(tenancy.bob)
    client.describe_cloud_siem_events(REQUEST)

    refused = _refused(client)

    assert (refused.status_code, refused.code) == (400, "SignatureNonceUsed")


def test_a_revoked_key_is_refused(sdk, tenancy):
    key, secret = create_access_key(tenancy.bob)
    client = sdk(key.access_key_id, secret)
    client.describe_cloud_siem_events(REQUEST)
    revoke(key)

    refused = _refused(client)

    assert (refused.status_code, refused.code) == (403, "InvalidAccessKeyId.Inactive")


def test_an_unknown_action_is_a_clear_error(sdk, tenancy):
    client = sdk(tenancy.bob)

    with pytest.raises(ClientException) as refused:
        client.describe_cloud_siem_assets(siem.DescribeCloudSiemAssetsRequest(current_page=1))

    assert (refused.value.status_code, refused.value.code) == (404, "InvalidAction.NotFound")
    assert "DescribeCloudSiemAssets" in refused.value.message
    assert refused.value.request_id


def test_a_bad_parameter_is_named(sdk, tenancy):
    client = sdk(tenancy.bob)

    with pytest.raises(ClientException) as refused:
        client.describe_cloud_siem_events(
            siem.DescribeCloudSiemEventsRequest(current_page=1, page_size=500)
        )

    assert refused.value.code == "InvalidParameter" and "PageSize" in refused.value.message


def test_other_requests_to_the_root_are_the_console_s(client, tenancy):
    """Without x-acs-action, POST / is the home page: login and CSRF apply."""
    response = client.post("/", {})

    assert response.status_code == 302 and "/login/" in response["Location"]
