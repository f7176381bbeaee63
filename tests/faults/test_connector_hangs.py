"""A connector whose cloud hangs (accepts the connection and never answers)
is cut off by DISPOSAL_CONNECTOR_TIMEOUT on a real worker, and the handling
task is marked failed with a retryable error. Skipped unless REDIS_URL is set
and the database is PostgreSQL."""

import socket
import threading
import time

import pytest

from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import HandlingTask, TaskStatus
from events import feed
from events.models import EventStatus, SecurityEvent
from tests.disposal.conftest import ATTACKER_IP, brute_force_event  # noqa: F401
from tests.workers import needs_postgres_and_redis, wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    needs_postgres_and_redis,
    pytest.mark.django_db(transaction=True),
]

TIMEOUT = 3


class SilentServer:
    """Accepts TCP connections on 127.0.0.1, reads what comes, never answers."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def stop(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_cloud(monkeypatch):
    server = SilentServer()
    monkeypatch.setenv("DISPOSAL_DEFAULT_CONNECTOR", "webhook")
    monkeypatch.setenv("DISPOSAL_WEBHOOK_URL", f"http://127.0.0.1:{server.port}/hook")
    monkeypatch.setenv("DISPOSAL_WEBHOOK_SECRET", "faults-webhook-secret")
    monkeypatch.setenv("WEBHOOK_ALLOWED_PRIVATE", "127.0.0.1")
    monkeypatch.setenv("DISPOSAL_CONNECTOR_TIMEOUT", str(TIMEOUT))
    yield server
    server.stop()


def test_a_hanging_connector_is_cut_off_and_the_task_fails_retryable(
    brute_force_event,  # noqa: F811
    silent_cloud,
    start_worker,
):
    ctx = brute_force_event
    account = ctx.accounts[0]
    request = HandlingRequest(
        status=EventStatus.HANDLING,
        actions=(
            ActionChoice("ip", ATTACKER_IP, "block-ip-cloud-firewall-inbound", (account.id,), 7),
        ),
    )
    [task] = handle_event(
        ctx.scope, ctx.event, request, cause=feed.Cause.by_user(ctx.analyst)
    ).tasks

    worker = start_worker()
    wait_for(lambda: silent_cloud.accepted, process=worker, what="the connector's connection")
    connected_at = time.monotonic()
    wait_for(
        lambda: HandlingTask.objects.get(pk=task.pk).status == TaskStatus.FAILED,
        process=worker,
        what="the task failed",
        seconds=TIMEOUT + 30,
    )
    cut_off = time.monotonic() - connected_at
    print(f"\nhanging connector cut off {cut_off:.1f} s after it connected (timeout {TIMEOUT} s)")

    task.refresh_from_db()
    assert task.retryable
    assert f"within {TIMEOUT} s" in task.error, task.error
    assert TIMEOUT - 0.5 <= cut_off <= TIMEOUT + 5
    # One connection: the worker did not call again on its own.
    assert len(silent_cloud.accepted) == 1
    wait_for(
        lambda: SecurityEvent.objects.get(pk=ctx.event.pk).status == EventStatus.FAILED,
        process=worker,
        what="the event failed with its task",
    )
