"""Handling on a real Celery worker: a ``celery worker`` subprocess on a Redis
queue of this test's own (see tests/events/test_worker.py) runs the handling
task against the simulated cloud and mails the notification through a real
SMTP server. Skipped unless REDIS_URL is set and the database is PostgreSQL."""

import uuid

import pytest
from django.conf import settings

from disposal.handling import ActionChoice, HandlingRequest, NotificationChoice, handle_event
from disposal.models import HandlingTask, Notification, SimulatedAction, TaskStatus
from events import feed
from events.models import EventStatus
from secops.celery import app as celery_app
from tests.disposal.conftest import ATTACKER_IP
from tests.disposal.servers import MailServer
from tests.events.test_worker import Worker, wait_for
from tests.workers import delete_redis_keys

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.REDIS_URL
        or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs REDIS_URL and PostgreSQL",
    ),
    # The worker is another process: it sees only committed rows.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def mail_server(monkeypatch):
    """A real SMTP server; the worker's EMAIL_URL points at it."""
    server = MailServer()
    monkeypatch.setenv("EMAIL_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def worker(mail_server, tmp_path):
    """A worker on a queue of this test's own, where every task of this process
    goes, with eager execution off for the test's duration."""
    queue = f"test-disposal-{uuid.uuid4().hex[:12]}"
    previous = {
        "task_routes": celery_app.conf.task_routes,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.update(task_routes={"*": {"queue": queue}}, task_always_eager=False)
    started = Worker(queue, tmp_path / "worker.log")
    try:
        yield started
    finally:
        started.stop()
        celery_app.conf.update(previous)
        delete_redis_keys(queue)


def test_the_worker_carries_out_the_handling_and_mails_the_notification(
    brute_force_event, mail_server, worker
):
    ctx = brute_force_event
    account = ctx.accounts[0]
    request = HandlingRequest(
        status=EventStatus.HANDLING,
        actions=(
            ActionChoice("ip", ATTACKER_IP, "block-ip-cloud-firewall-inbound", (account.id,), 7),
        ),
        notification=NotificationChoice(("email",), ("soc@example.com",), "Brute force handled"),
    )

    result = handle_event(ctx.scope, ctx.event, request, cause=feed.Cause.by_user(ctx.analyst))

    # Committed and queued, not run here: eager execution is off.
    [task] = result.tasks
    [notification] = result.notifications
    assert HandlingTask.objects.get(pk=task.pk).status == TaskStatus.PENDING
    assert Notification.objects.get(pk=notification.pk).status == "pending"

    worker.start()

    wait_for(
        lambda: HandlingTask.objects.get(pk=task.pk).status == TaskStatus.SUCCEEDED,
        worker=worker,
        what="handling task succeeded",
    )
    wait_for(
        lambda: Notification.objects.get(pk=notification.pk).status == "sent",
        worker=worker,
        what="notification sent",
    )
    assert SimulatedAction.objects.filter(account=account, target=ATTACKER_IP).count() == 1
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED
    [message] = mail_server.messages
    assert message["Subject"] == "Brute force handled"
    assert message["To"] == "soc@example.com"
    assert message.get_content().rstrip("\n") == Notification.objects.get(pk=notification.pk).body
    assert "disposal.send_notification" in worker.log()
