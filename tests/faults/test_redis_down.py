"""Redis stopped under a running console: ingestion commits and queues its
batches for later, drained once Redis is back, or refuses with 503 — never
accepts and forgets; pages keep working.

The console runs under gunicorn against the test database and a redis-server
of the test's own, which the test stops and starts again; a Celery worker on
that Redis drains what waited. Skipped unless the database is PostgreSQL.
"""

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
from alibabacloud_cloud_siem20220616 import models as siem
from alibabacloud_cloud_siem20220616.client import Client as SiemClient
from alibabacloud_tea_openapi import models as open_api_models
from django.conf import settings
from django.test import Client

from alerts.models import Alert, PendingAlertBatch
from cloudsiem.services import create_access_key
from events.models import EventAlert, SecurityEvent
from secops.services import create_api_key
from tests import factories
from tests.workers import WebServer, Worker, celery_call, database_url, wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs PostgreSQL",
    ),
    # The console and the worker are other processes: they see only committed rows.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]

PAGES = ["/", "/events/", "/alerts/", "/disposal/", "/whitelist/", "/data-sources/"]


@pytest.fixture
def console(private_redis, tmp_path):
    server = WebServer(
        tmp_path / "web.log",
        env={"REDIS_URL": private_redis.url(0), "DATABASE_URL": database_url()},
    ).start()
    yield server
    server.stop()


@pytest.fixture
def mining_rule(tenancy):
    return factories.make_rule(
        organisation=tenancy.org,
        match_types=["mining"],
        group_by=["asset"],
        event_name_template="Mining on {asset_name}",
    )


def mining_alerts(account, count: int) -> list[dict]:
    occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return [
        {
            "source": "security_center",
            "uuid": str(uuid.uuid4()),
            "account": account.uid,
            "type": "mining",
            "name": "Cryptomining program",
            "level": "medium",
            "occurred_at": occurred_at,
            "asset": {"uuid": "uuid-web-01", "name": "web-01"},
            "entities": [{"type": "process", "path": "/tmp/xmrig", "cmdline": f"xmrig -t {n}"}],
        }
        for n in range(count)
    ]


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, *, data: dict | None = None, headers: dict | None = None):
    """(status, body) of a GET, or of a POST of ``data`` as JSON; redirects
    are answers too (a page that sends to the login page is not working)."""
    body = json.dumps(data).encode() if data is not None else None
    sent = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310 (local)
    if body is not None:
        sent.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(sent, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def session_cookie(user) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    }


def test_native_ingestion_commits_and_queues_while_redis_is_down(
    tenancy, mining_rule, private_redis, console, tmp_path
):
    _, secret = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="faults")
    bearer = {"Authorization": f"Bearer {secret}"}
    private_redis.stop()

    items = mining_alerts(tenancy.account_a, 30)
    started = time.monotonic()
    status, body = request(f"{console.url}/api/v1/alerts", data={"alerts": items}, headers=bearer)
    answered = time.monotonic() - started
    print(f"\nPOST /api/v1/alerts with Redis down: {status} in {answered:.2f} s")

    # Accepted means committed: the alerts and their batch, waiting for the broker.
    assert status == 200, body
    assert json.loads(body)["accepted"] == 30
    stored = set(
        Alert.objects.filter(source_uuid__in=[i["uuid"] for i in items]).values_list(
            "id", flat=True
        )
    )
    assert len(stored) == 30
    [batch] = PendingAlertBatch.objects.all()
    assert set(batch.alert_ids) == stored
    assert not SecurityEvent.objects.filter(rule=mining_rule).exists()

    # The same batch sent again (a client unsure of the first answer) is all duplicates.
    status, body = request(f"{console.url}/api/v1/alerts", data={"alerts": items}, headers=bearer)
    assert status == 200 and json.loads(body)["duplicates"] == 30
    assert PendingAlertBatch.objects.count() == 1

    # Redis is back: a worker starts and the sweeper beat runs every minute
    # finds the batch (run here at once); the batch is aggregated, once.
    private_redis.start()
    back_at = time.monotonic()
    env = {"REDIS_URL": private_redis.url(0)}
    worker = Worker(tmp_path / "worker.log", env=env).start()
    try:
        celery_call(
            "events.process_stale_batches",
            {"older_than_seconds": 0},
            env=env,
            log_path=tmp_path / "call.log",
        )
        wait_for(
            lambda: (
                not PendingAlertBatch.objects.exists()
                and list(
                    SecurityEvent.objects.filter(rule=mining_rule).values_list(
                        "alert_count", flat=True
                    )
                )
                == [30]
            ),
            process=worker,
            what="the waiting batch drained",
        )
    finally:
        worker.stop()
    print(f"batch drained {time.monotonic() - back_at:.1f} s after Redis came back")
    assert (
        set(EventAlert.objects.filter(event__rule=mining_rule).values_list("alert_id", flat=True))
        == stored
    )


def test_pages_work_and_the_cloud_siem_api_refuses_with_503_while_redis_is_down(
    tenancy, private_redis, console, monkeypatch
):
    cookie = session_cookie(tenancy.alice)
    private_redis.stop()

    for path in PAGES:
        status, body = request(f"{console.url}{path}", headers=cookie)
        assert status == 200, (path, status, body[-2000:])

    # The health probe says what is down, and that the console still serves.
    status, body = request(f"{console.url}/healthz")
    health = json.loads(body)
    assert status == 200 and health["database"] == "ok"
    assert health["broker"].startswith("unreachable")

    # The cloud SIEM API cannot check a request's nonce for replays: it refuses.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    key, key_secret = create_access_key(tenancy.bob)
    client = SiemClient(
        open_api_models.Config(
            access_key_id=key.access_key_id,
            access_key_secret=key_secret,
            endpoint=console.url.removeprefix("http://"),
            protocol="http",
            region_id="cn-hangzhou",
        )
    )
    with pytest.raises(Exception) as refused:
        client.describe_cloud_siem_events(
            siem.DescribeCloudSiemEventsRequest(current_page=1, page_size=10)
        )
    assert getattr(refused.value, "status_code", None) == 503, refused.value
    assert getattr(refused.value, "code", None) == "ServiceUnavailable"

    # Once Redis is back, the same call is answered.
    private_redis.start()
    body = client.describe_cloud_siem_events(
        siem.DescribeCloudSiemEventsRequest(current_page=1, page_size=10)
    ).body
    assert body.success is True
