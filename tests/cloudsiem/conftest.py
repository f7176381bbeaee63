"""The official SDK pointed at the live test server, with AccessKeys of the
tenancy's users; the handling suites' brute-force event to work on."""

from urllib.parse import urlsplit

import pytest
from alibabacloud_cloud_siem20220616.client import Client
from alibabacloud_tea_openapi import models as open_api_models

from cloudsiem.services import create_access_key
from tests.disposal.conftest import ATTACKER_IP, brute_force_event  # noqa: F401

__all__ = ["ATTACKER_IP"]


@pytest.fixture
def sdk(live_server, monkeypatch):
    """``sdk(user)`` (or ``sdk(key_id, secret)``): an SDK client as a script makes it."""
    # The SDK sends even local traffic through a proxy named in the environment.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    endpoint = urlsplit(live_server.url).netloc

    def client(user_or_key_id, secret=None) -> Client:
        if secret is None:
            key, secret = create_access_key(user_or_key_id)
            key_id = key.access_key_id
        else:
            key_id = user_or_key_id
        config = open_api_models.Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
        return Client(config)

    return client
