"""Event handling notifications: e-mail through a real SMTP server (aiosmtpd on
127.0.0.1), webhooks to a real HTTP receiver, retries with backoff, and the
handling left alone whatever happens to the message."""

import json
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from disposal import notifications, outbound
from disposal.handling import (
    ActionChoice,
    HandlingError,
    HandlingRequest,
    NotificationChoice,
    handle_event,
)
from disposal.models import AccountConnector, HandlingTask, Notification, TaskStatus
from events import feed
from events.models import EventStatus, SecurityEvent
from secops import crypto
from secops.enums import Role
from secops.env import env_email
from tests import factories
from tests.conftest import native_alert
from tests.disposal.conftest import ATTACKER_IP, global_scope
from tests.disposal.servers import Answer, MailServer, Receiver, free_port

SECRET = "notification-secret-42"
INBOUND = "block-ip-cloud-firewall-inbound"
TITLE = "SSH brute force handled"
HOSTILE = "=cmd|' /C calc'!A0 <script>alert(document.cookie)</script> & \"x\""


# --- servers ----------------------------------------------------------------------


def use_mail_server(settings, monkeypatch, url: str) -> None:
    """Point Django's default mailer at ``url`` the way a deployment does (EMAIL_URL)."""
    monkeypatch.setenv("EMAIL_URL", url)
    settings.MAILERS = env_email("EMAIL_URL", "console://")


@pytest.fixture
def mail_server(settings, monkeypatch):
    server = MailServer()
    use_mail_server(settings, monkeypatch, server.url)
    yield server
    server.stop()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1"]
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def signing_secret(brute_force_event):
    """Account A signs webhooks with SECRET (its tasks stay on the simulated cloud)."""
    AccountConnector.objects.create(
        account=brute_force_event.accounts[0],
        kind="simulated",
        webhook_secret=crypto.encrypt(SECRET),
    )


# --- handling -----------------------------------------------------------------------


def handling(ctx, *, channels=("email",), recipients=("soc@example.com",), actions=None):
    if actions is None:
        actions = (ActionChoice("ip", ATTACKER_IP, INBOUND, (ctx.accounts[0].id,), 7),)
    return HandlingRequest(
        status=EventStatus.HANDLING,
        description="Blocked at the edge.",
        actions=actions,
        notification=NotificationChoice(tuple(channels), tuple(recipients), TITLE),
    )


def handle(ctx, request, capture, *, event=None):
    """Handle and run what the commit queues (the tasks and the sending), as a worker would."""
    with capture(execute=True):
        return handle_event(
            ctx.scope, event or ctx.event, request, cause=feed.Cause.by_user(ctx.analyst)
        )


def handling_state(event):
    """What a notification must never change: the event and its tasks with their history."""
    event = SecurityEvent.objects.get(pk=event.pk)
    tasks = [
        (t.pk, t.status, t.transitions.count())
        for t in HandlingTask.objects.filter(policy__source_event=event).order_by("pk")
    ]
    return event.status, event.status_changes.count(), tasks


# --- e-mail ---------------------------------------------------------------------------


def test_it_mails_the_message_that_was_previewed(
    brute_force_event, mail_server, settings, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    request = handling(ctx, recipients=("soc@example.com", "oncall@example.com"))

    result = handle(ctx, request, django_capture_on_commit_callbacks)

    [notification] = result.notifications
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.attempts == 1
    assert notification.sent_at is not None and notification.last_error == ""
    [message] = mail_server.messages
    assert message["Subject"] == TITLE
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message["To"] == "soc@example.com, oncall@example.com"
    assert mail_server.handler.envelopes[0].rcpt_tos == ["soc@example.com", "oncall@example.com"]
    # The preview is the message: the same rendering, stored, and sent.
    preview = notifications.render_message(result.event, request, result.policies)
    assert notification.body == preview
    assert message.get_content().rstrip("\n") == preview
    assert ATTACKER_IP in preview and "Blocked at the edge." in preview


def test_a_mail_server_that_is_down_is_tried_again_later(
    brute_force_event, settings, monkeypatch, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    port = free_port()  # nothing listens there yet
    use_mail_server(settings, monkeypatch, f"smtp://127.0.0.1:{port}?timeout=5")
    before = timezone.now()

    result = handle(ctx, handling(ctx), django_capture_on_commit_callbacks)

    notification = Notification.objects.get(pk=result.notifications[0].pk)
    assert notification.status == "retrying" and notification.attempts == 1
    assert "mail server" in notification.last_error
    first_retry = notification.next_attempt_at
    assert before + timedelta(minutes=1) <= first_retry <= timezone.now() + timedelta(minutes=1)
    state = handling_state(ctx.event)
    assert state[0] == EventStatus.HANDLED

    server = MailServer(port=port)
    try:
        # Not yet due: nothing is tried.
        assert notifications.retry_due(now=first_retry - timedelta(seconds=1)) == 0
        assert server.messages == []
        assert notifications.retry_due(now=first_retry + timedelta(seconds=1)) == 1
    finally:
        server.stop()

    notification.refresh_from_db()
    assert notification.status == "sent" and notification.attempts == 2
    assert [m["Subject"] for m in server.messages] == [TITLE]
    assert handling_state(ctx.event) == state


def test_a_refused_recipient_fails_the_notification_at_once(
    brute_force_event, mail_server, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    mail_server.handler.refuse = {"nobody@example.com"}

    result = handle(
        ctx, handling(ctx, recipients=("nobody@example.com",)), django_capture_on_commit_callbacks
    )

    notification = Notification.objects.get(pk=result.notifications[0].pk)
    assert notification.status == "failed" and notification.attempts == 1
    assert notification.next_attempt_at is None
    assert "refused the recipient(s) nobody@example.com (550" in notification.last_error
    assert mail_server.messages == []
    assert notifications.retry_due(now=timezone.now() + timedelta(days=1)) == 0


def test_a_lost_first_send_is_picked_up_by_the_periodic_job(brute_force_event, mail_server):
    ctx = brute_force_event
    # Handled without running what the commit queues: the message never left.
    result = handle_event(
        ctx.scope, ctx.event, handling(ctx, actions=()), cause=feed.Cause.by_user(ctx.analyst)
    )
    [notification] = result.notifications
    now = timezone.now()
    assert notifications.retry_due(now=now) == 0  # just made: its own task may still come
    assert notifications.retry_due(now=now + timedelta(minutes=2)) == 1
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert len(mail_server.messages) == 1


def test_a_notification_being_sent_is_not_sent_twice(brute_force_event, mail_server):
    ctx = brute_force_event
    result = handle_event(
        ctx.scope, ctx.event, handling(ctx, actions=()), cause=feed.Cause.by_user(ctx.analyst)
    )
    [notification] = result.notifications
    now = timezone.now()
    assert notifications._claim(notification.pk, now) is not None  # another worker holds it
    assert notifications.send(notification.pk) is None
    assert notifications.retry_due(now=now + timedelta(minutes=2)) == 0
    assert mail_server.messages == []


# --- webhooks ---------------------------------------------------------------------------


def test_it_posts_a_signed_webhook_notification(
    brute_force_event, receiver, signing_secret, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    request = handling(ctx, channels=("webhook",), recipients=(receiver.url("/notify"),))

    result = handle(ctx, request, django_capture_on_commit_callbacks)

    [notification] = result.notifications
    notification.refresh_from_db()
    assert notification.channel == "webhook" and notification.status == "sent"
    [received] = receiver.received
    assert received.path == "/notify"
    assert outbound.verify_signature(
        SECRET,
        received.headers["X-Secops-Timestamp"],
        received.body,
        received.headers["X-Secops-Signature"],
    )
    assert received.headers["X-Secops-Delivery"] == f"notification-{notification.pk}"
    assert received.json() == {
        "event": {
            "id": ctx.event.pk,
            "name": ctx.event.name,
            "risk": "high",
            "status": "handled",
            "account": ctx.accounts[0].uid,
        },
        "title": TITLE,
        "message": notifications.render_message(result.event, request, result.policies),
        "notification": notification.pk,
    }


def test_one_list_of_recipients_serves_both_channels(
    brute_force_event, receiver, mail_server, signing_secret, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    request = handling(
        ctx, channels=("email", "webhook"), recipients=("soc@example.com", receiver.url())
    )

    result = handle(ctx, request, django_capture_on_commit_callbacks)

    by_channel = {n.channel: n for n in Notification.objects.filter(event=ctx.event)}
    assert by_channel["email"].recipients == ["soc@example.com"]
    assert by_channel["webhook"].recipients == [receiver.url()]
    assert {n.status for n in by_channel.values()} == {"sent"}
    assert len(mail_server.messages) == 1 and len(receiver.received) == 1
    assert len(result.notifications) == 2


def test_a_failing_webhook_is_retried_with_backoff_then_failed_and_the_handling_stands(
    brute_force_event, receiver, signing_secret, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    receiver.answer = Answer(503, {"error": "maintenance"})

    result = handle(
        ctx,
        handling(ctx, channels=("webhook",), recipients=(receiver.url(),)),
        django_capture_on_commit_callbacks,
    )
    state = handling_state(ctx.event)
    assert state[0] == EventStatus.HANDLED
    assert {status for _, status, _ in state[2]} == {TaskStatus.SUCCEEDED}

    notification = Notification.objects.get(pk=result.notifications[0].pk)
    first_failure = timezone.now()
    scheduled = []
    while notification.status == "retrying":
        scheduled.append(notification.next_attempt_at)
        assert "answered 503" in notification.last_error
        notifications.retry_due(now=notification.next_attempt_at)
        notification.refresh_from_db()

    assert notification.status == "failed"
    assert notification.attempts == notifications.MAX_ATTEMPTS
    assert notification.next_attempt_at is None
    # Waits of 1, 2, 4, 8 and 16 minutes, each from the attempt before.
    assert timedelta(seconds=50) < scheduled[0] - first_failure <= timedelta(minutes=1)
    gaps = [later - earlier for earlier, later in pairwise(scheduled)]
    assert gaps == [timedelta(minutes=m) for m in (2, 4, 8, 16)]
    assert len(receiver.received) == notifications.MAX_ATTEMPTS
    assert {r.headers["X-Secops-Delivery"] for r in receiver.received} == {
        f"notification-{notification.pk}"
    }
    assert handling_state(ctx.event) == state


def test_the_backoff_doubles_up_to_the_last_attempt():
    assert [notifications.backoff(n) for n in range(1, notifications.MAX_ATTEMPTS)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 16)
    ]


def test_a_webhook_that_refuses_the_request_fails_at_once(
    brute_force_event, receiver, signing_secret, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    receiver.answer = Answer(400, {"error": "unknown tenant"})

    result = handle(
        ctx,
        handling(ctx, channels=("webhook",), recipients=(receiver.url(),)),
        django_capture_on_commit_callbacks,
    )

    notification = Notification.objects.get(pk=result.notifications[0].pk)
    assert notification.status == "failed" and notification.attempts == 1
    assert "answered 400" in notification.last_error
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED


# --- what is refused before anything is written ---------------------------------------


@pytest.mark.parametrize(
    ("channels", "recipients", "message"),
    [
        (("webhook",), ("http://10.0.0.7/hook",), "'http://10.0.0.7/hook': 10.0.0.7 is a private"),
        (("webhook",), ("http://169.254.169.254/",), "is a link-local address"),
        (("webhook",), ("ftp://hooks.example.com/",), "not an http:// or https:// URL"),
        (("webhook",), ("soc@example.com",), "'soc@example.com' is not a webhook URL"),
        (("email",), ("https://hooks.example.com/x",), "choose the Webhook channel"),
        (("email",), ("not-an-address",), "is not an e-mail address"),
        (("email", "webhook"), ("soc@example.com",), "at least one webhook URL"),
    ],
)
def test_a_recipient_the_channel_cannot_reach_is_refused(
    brute_force_event, settings, channels, recipients, message
):
    settings.WEBHOOK_ALLOWED_PRIVATE = []
    ctx = brute_force_event
    with pytest.raises(HandlingError) as refused:
        handle_event(
            ctx.scope,
            ctx.event,
            handling(ctx, channels=channels, recipients=recipients),
            cause=feed.Cause.by_user(ctx.analyst),
        )
    assert refused.value.field == "notification.recipients"
    assert message in refused.value.message
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED
    assert not Notification.objects.exists()


def test_a_title_on_two_lines_is_refused(brute_force_event):
    ctx = brute_force_event
    request = HandlingRequest(
        status=EventStatus.HANDLED,
        notification=NotificationChoice(("email",), ("soc@example.com",), "Done\r\nBcc: x@y.z"),
    )
    with pytest.raises(HandlingError) as refused:
        handle_event(ctx.scope, ctx.event, request, cause=feed.Cause.by_user(ctx.analyst))
    assert refused.value.field == "notification.title"


def test_a_webhook_notification_needs_a_signing_secret(brute_force_event, receiver):
    ctx = brute_force_event
    with pytest.raises(HandlingError) as refused:
        handle_event(
            ctx.scope,
            ctx.event,
            handling(ctx, channels=("webhook",), recipients=(receiver.url(),)),
            cause=feed.Cause.by_user(ctx.analyst),
        )
    assert "webhook secret" in refused.value.message
    assert "connector settings page" in refused.value.message
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED
    assert not Notification.objects.exists() and not HandlingTask.objects.exists()


# --- untrusted values --------------------------------------------------------------------


@pytest.fixture
def hostile_event(tenancy, ingest_and_aggregate, fast_password_hashing):
    """An event whose process entity carries markup and a spreadsheet formula."""
    account = tenancy.account_a
    alert = native_alert(
        account,
        type="brute_force",
        name="SSH brute force",
        level="high",
        asset={"uuid": "host-hostile", "name": "web-07"},
        entities=[
            {"type": "ip", "value": ATTACKER_IP, "role": "attacker"},
            {"type": "process", "path": "/bin/sh", "cmdline": HOSTILE, "role": "related"},
        ],
    )
    scope = global_scope(tenancy.org, [account])
    ingest_and_aggregate([alert], scope=scope)
    event = SecurityEvent.objects.get(account=account, rule__key="brute-force-then-login")
    analyst = factories.make_user(tenancy.org, "ann", accounts=[account], role=Role.ANALYST)
    AccountConnector.objects.create(account=account, webhook_secret=crypto.encrypt(SECRET))

    class Context:
        pass

    ctx = Context()
    ctx.event, ctx.scope, ctx.analyst, ctx.accounts = event, scope, analyst, [account]
    return ctx


def test_untrusted_values_reach_mail_and_json_verbatim(
    hostile_event, mail_server, receiver, django_capture_on_commit_callbacks
):
    ctx = hostile_event
    request = handling(
        ctx,
        channels=("email", "webhook"),
        recipients=("soc@example.com", receiver.url()),
        actions=(ActionChoice("process", HOSTILE, "kill-process", (ctx.accounts[0].id,)),),
    )

    result = handle(ctx, request, django_capture_on_commit_callbacks, event=ctx.event)

    body = Notification.objects.get(event=ctx.event, channel="email").body
    assert HOSTILE in body
    [message] = mail_server.messages
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    assert HOSTILE in message.get_content()
    assert "&lt;script&gt;" not in message.get_content()
    [received] = receiver.received
    assert HOSTILE in received.json()["message"]
    assert json.loads(received.body)["message"] == body
    assert len(result.notifications) == 2
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
