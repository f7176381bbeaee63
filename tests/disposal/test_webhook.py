"""Outbound webhooks and the webhook connector, against a real HTTP receiver
on 127.0.0.1 (allowed through WEBHOOK_ALLOWED_PRIVATE where a test sends)."""

import socket
import time

import pytest
from django.core.exceptions import ValidationError

from disposal import outbound, services
from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import AccountConnector, HandlingTask, TaskStatus
from events import feed
from events.models import EventStatus
from secops import crypto
from tests.disposal.conftest import ATTACKER_IP
from tests.disposal.servers import Answer, Receiver

SECRET = "whsec-test-0123456789"
INBOUND = "block-ip-cloud-firewall-inbound"


@pytest.fixture
def receivers():
    started = []

    def start(answer: Answer | None = None) -> Receiver:
        receiver = Receiver(answer)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receivers):
    return receivers()


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1"]


@pytest.fixture
def no_connection(monkeypatch):
    """Fails the test if a connection is even attempted."""
    attempts = []

    def connect(self):
        attempts.append(self.host)
        raise AssertionError(f"a connection to {self.host} was attempted")

    monkeypatch.setattr(outbound._PinnedConnection, "connect", connect)
    return attempts


def post(url, document=None, *, secret=SECRET, delivery_id="delivery-1"):
    return outbound.post(
        url, outbound.encode(document or {"hello": "world"}), secret=secret, delivery_id=delivery_id
    )


def signed_by(received, secret=SECRET) -> bool:
    return outbound.verify_signature(
        secret,
        received.headers["X-Secops-Timestamp"],
        received.body,
        received.headers["X-Secops-Signature"],
    )


# --- outbound requests ------------------------------------------------------------


def test_it_posts_a_signed_json_request(receiver, allow_loopback):
    receiver.answer = Answer(200, {"reference": "rule-1"})
    response = post(receiver.url("/hook?tenant=a"), {"value": "<b>é</b>"}, delivery_id="d-42")

    assert response.status == 200 and response.json() == {"reference": "rule-1"}
    [received] = receiver.received
    assert received.path == "/hook?tenant=a"
    assert received.json() == {"value": "<b>é</b>"}
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"].startswith("SecOps-Console")
    assert received.headers["X-Secops-Delivery"] == "d-42"
    assert received.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert received.headers["X-Secops-Signature"].startswith("sha256=")
    assert abs(int(received.headers["X-Secops-Timestamp"]) - time.time()) < 5
    assert signed_by(received)
    assert not signed_by(received, secret="another secret")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False), (410, False)],
)
def test_an_error_answer_says_whether_to_retry(receiver, allow_loopback, status, retryable):
    receiver.answer = Answer(status, {"error": "nope"})
    with pytest.raises(outbound.OutboundError) as failed:
        post(receiver.url())
    assert failed.value.retryable is retryable
    assert failed.value.status == status
    assert str(status) in failed.value.message
    assert failed.value.answer == {"status": status, "body": {"error": "nope"}}


def test_a_redirect_is_not_followed(receivers, allow_loopback):
    target = receivers()
    redirecting = receivers(Answer(302, {}, headers={"Location": target.url("/elsewhere")}))

    with pytest.raises(outbound.OutboundError) as failed:
        post(redirecting.url())

    assert not failed.value.retryable
    assert failed.value.status == 302
    assert target.url("/elsewhere") in failed.value.message
    assert len(redirecting.received) == 1
    assert target.received == []


def test_a_receiver_slower_than_the_timeout_is_a_retryable_failure(
    receiver, allow_loopback, settings
):
    settings.DISPOSAL_CONNECTOR_TIMEOUT = 1
    receiver.answer = Answer(200, {}, delay=4)

    started = time.monotonic()
    with pytest.raises(outbound.OutboundError) as failed:
        post(receiver.url())
    elapsed = time.monotonic() - started

    assert failed.value.retryable
    assert "within 1 s" in failed.value.message
    assert 0.9 <= elapsed < 2.0, elapsed
    assert len(receiver.received) == 1


def test_a_closed_port_is_a_retryable_failure(allow_loopback):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(outbound.OutboundError) as failed:
        post(f"http://127.0.0.1:{port}/")
    assert failed.value.retryable and "refused the connection" in failed.value.message


def test_the_answer_is_read_up_to_a_bound(receiver, allow_loopback):
    receiver.answer = Answer(200, b"x" * (1024 * 1024))
    response = post(receiver.url())
    assert response.truncated and len(response.body) == outbound.MAX_RESPONSE_BYTES
    assert response.json() is None
    assert len(response.answer()["body"]) == 2048


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:{port}/hook", "loopback"),
        ("http://127.1:{port}/hook", "loopback"),
        ("http://2130706433:{port}/hook", "loopback"),
        ("http://localhost:{port}/hook", "loopback"),
        ("http://[::1]:{port}/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "loopback"),
        ("http://0.0.0.0:{port}/hook", "unspecified"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "non-public"),
    ],
)
def test_a_non_public_destination_is_refused_without_connecting(
    receiver, no_connection, settings, url, kind
):
    settings.WEBHOOK_ALLOWED_PRIVATE = []
    url = url.format(port=receiver.port)

    with pytest.raises(outbound.RefusedDestination) as refused:
        post(url)

    assert kind in refused.value.message
    assert not refused.value.retryable
    assert "WEBHOOK_ALLOWED_PRIVATE" in refused.value.message
    assert no_connection == [] and receiver.received == []


def test_an_allow_list_entry_lets_a_private_destination_through(receiver, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["10.0.0.0/8", "127.0.0.0/8"]
    post(receiver.url())
    settings.WEBHOOK_ALLOWED_PRIVATE = ["localhost"]  # a host name allows what it resolves to
    post(receiver.url(host="localhost"))
    assert len(receiver.received) == 2
    assert receiver.received[1].headers["Host"] == f"localhost:{receiver.port}"


def test_the_host_is_resolved_once_and_the_checked_address_connected_to(
    receiver, settings, monkeypatch
):
    """A name that answers 127.0.0.1 (allowed here) and then a forbidden address
    gains nothing: the request goes to the address that was checked."""
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.0/8"]
    answers = iter(["127.0.0.1", "169.254.169.254"])
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    post(f"http://hooks.customer.test:{receiver.port}/hook")

    assert lookups == ["hooks.customer.test"]
    assert receiver.received[0].headers["Host"] == f"hooks.customer.test:{receiver.port}"


def test_a_name_with_one_forbidden_address_is_refused(
    receiver, settings, monkeypatch, no_connection
):
    settings.WEBHOOK_ALLOWED_PRIVATE = ["127.0.0.1"]

    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.9.9", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(outbound.RefusedDestination, match=r"10\.9\.9\.9"):
        post(f"http://both.customer.test:{receiver.port}/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "hooks.example.com/no-scheme",
        "http://user:password@hooks.example.com/",
        "http:///no-host",
        "http://hooks.example.com:99999/",
        "http://hooks example.com/",
        "",
    ],
)
def test_a_bad_url_is_refused(url, no_connection):
    with pytest.raises(outbound.RefusedDestination) as refused:
        post(url)
    assert not refused.value.retryable


def test_the_form_validator_gives_a_plain_message(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE = []
    with pytest.raises(ValidationError) as refused:
        outbound.validate_webhook_url("http://10.0.0.5/hook")
    [message] = refused.value.messages
    assert message.startswith("10.0.0.5 is a private network address")
    with pytest.raises(ValidationError, match="http:// or https://"):
        outbound.validate_webhook_url("gopher://example.com/")
    settings.WEBHOOK_ALLOWED_PRIVATE = ["10.0.0.0/24"]
    outbound.validate_webhook_url("http://10.0.0.5/hook")
    outbound.validate_webhook_url("https://93.184.215.14/hook")


# --- signatures -------------------------------------------------------------------


def test_a_signature_verifies_and_any_tampering_fails_it():
    body = b'{"action":"perform"}'
    now = 1_800_000_000
    signature = outbound.sign(SECRET, now, body)

    assert outbound.verify_signature(SECRET, str(now), body, signature, now=now)
    assert outbound.verify_signature(SECRET, now, body.decode(), signature, now=now + 299)
    # Wrong secret, modified body, another timestamp.
    assert not outbound.verify_signature("wrong secret", now, body, signature, now=now)
    assert not outbound.verify_signature(SECRET, now, body + b" ", signature, now=now)
    assert not outbound.verify_signature(SECRET, now, b'{"action":"undo"}', signature, now=now)
    assert not outbound.verify_signature(SECRET, now + 1, body, signature, now=now)
    # A replay outside the tolerance, either way, with a valid signature.
    assert not outbound.verify_signature(SECRET, now, body, signature, now=now + 301)
    assert not outbound.verify_signature(SECRET, now, body, signature, now=now - 301)
    assert not outbound.verify_signature(SECRET, now, body, signature, tolerance=10, now=now + 11)
    # Malformed values are False, never an exception.
    assert not outbound.verify_signature(SECRET, "yesterday", body, signature, now=now)
    assert not outbound.verify_signature(SECRET, now, body, signature[7:], now=now)
    assert not outbound.verify_signature(SECRET, now, body, "sha1=" + signature[7:], now=now)
    assert not outbound.verify_signature("", now, body, outbound.sign("", now, body), now=now)


# --- the webhook connector --------------------------------------------------------


def configure_webhook(account, url, secret=SECRET):
    return AccountConnector.objects.create(
        account=account, kind="webhook", webhook_url=url, webhook_secret=crypto.encrypt(secret)
    )


def handle_block(ctx, django_capture_on_commit_callbacks, accounts):
    request = HandlingRequest(
        status=EventStatus.HANDLING,
        actions=(ActionChoice("ip", ATTACKER_IP, INBOUND, tuple(a.id for a in accounts), 3),),
    )
    with django_capture_on_commit_callbacks(execute=True):
        return handle_event(ctx.scope, ctx.event, request, cause=feed.Cause.by_user(ctx.analyst))


def test_a_handled_event_is_carried_out_and_undone_through_the_webhook(
    brute_force_event, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    account = ctx.accounts[0]
    configure_webhook(account, receiver.url("/secops"))
    receiver.answer = Answer(201, {"reference": "acl-7781", "note": "blocked"})

    handle_block(ctx, django_capture_on_commit_callbacks, [account])

    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.connector == "webhook"
    assert task.external_ref == "acl-7781"
    answer = task.transitions.last().answer
    assert answer["status"] == 201 and answer["body"]["reference"] == "acl-7781"
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED

    [performed] = receiver.received
    assert signed_by(performed)
    assert performed.headers["X-Secops-Delivery"] == f"task-{task.pk}-perform-r1"
    document = performed.json()
    assert document["expires_at"] is not None
    assert document | {"expires_at": None} == {
        "action": "perform",
        "task": task.pk,
        "account": account.uid,
        "cloud_service": "cloud_firewall",
        "operation": "block_ip",
        "entity": {
            "type": "ip",
            "value": ATTACKER_IP,
            "attributes": document["entity"]["attributes"],
        },
        "host": None,
        "parameters": {"direction": "in"},
        "alerts": [],
        "expires_at": None,
        "reference": None,
    }

    receiver.answer = Answer(200, {"removed": True})
    with django_capture_on_commit_callbacks(execute=True):
        services.unblock_task(ctx.scope, task, cause=feed.Cause.by_user(ctx.analyst))

    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    undone = receiver.received[1]
    assert signed_by(undone)
    assert undone.json()["action"] == "undo"
    assert undone.json()["reference"] == "acl-7781"
    assert undone.headers["X-Secops-Delivery"].startswith(f"task-{task.pk}-undo-")


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (400, False)])
def test_a_refusing_receiver_fails_the_task(
    brute_force_event,
    receiver,
    allow_loopback,
    django_capture_on_commit_callbacks,
    status,
    retryable,
):
    ctx = brute_force_event
    configure_webhook(ctx.accounts[0], receiver.url())
    receiver.answer = Answer(status, {"error": "quota"})

    handle_block(ctx, django_capture_on_commit_callbacks, ctx.accounts[:1])

    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED
    assert task.retryable is retryable
    assert f"answered {status}" in task.error
    assert task.transitions.last().answer["body"] == {"error": "quota"}
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.FAILED


def test_a_task_of_an_account_without_a_webhook_url_says_where_to_set_it(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    AccountConnector.objects.create(account=ctx.accounts[0], kind="webhook")

    handle_block(ctx, django_capture_on_commit_callbacks, ctx.accounts[:1])

    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED and not task.retryable
    assert "No webhook URL" in task.error and "connector settings page" in task.error


def test_the_default_webhook_serves_accounts_without_connector_settings(
    brute_force_event, receiver, allow_loopback, settings, django_capture_on_commit_callbacks
):
    settings.DISPOSAL_DEFAULT_CONNECTOR = "webhook"
    settings.DISPOSAL_WEBHOOK_URL = receiver.url("/default")
    settings.DISPOSAL_WEBHOOK_SECRET = "default-secret"
    ctx = brute_force_event
    receiver.answer = Answer(204, b"")

    handle_block(ctx, django_capture_on_commit_callbacks, ctx.accounts[:2])

    tasks = list(HandlingTask.objects.order_by("account_id"))
    assert [t.status for t in tasks] == [TaskStatus.SUCCEEDED] * 2
    # No reference in the answer: the delivery id stands for it.
    assert [t.external_ref for t in tasks] == [f"task-{t.pk}-perform-r1" for t in tasks]
    assert len(receiver.received) == 2
    assert all(signed_by(r, "default-secret") for r in receiver.received)
    assert {r.json()["account"] for r in receiver.received} == {a.uid for a in ctx.accounts[:2]}


def test_the_default_webhook_without_a_url_names_the_setting(
    brute_force_event, settings, django_capture_on_commit_callbacks
):
    settings.DISPOSAL_DEFAULT_CONNECTOR = "webhook"
    settings.DISPOSAL_WEBHOOK_URL = ""
    ctx = brute_force_event

    handle_block(ctx, django_capture_on_commit_callbacks, ctx.accounts[:1])

    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED and not task.retryable
    assert "set DISPOSAL_WEBHOOK_URL" in task.error


def test_a_receiver_that_times_out_leaves_a_retryable_failure(
    brute_force_event, receiver, allow_loopback, settings, django_capture_on_commit_callbacks
):
    settings.DISPOSAL_CONNECTOR_TIMEOUT = 1
    ctx = brute_force_event
    configure_webhook(ctx.accounts[0], receiver.url())
    receiver.answer = Answer(200, {}, delay=3)

    started = time.monotonic()
    handle_block(ctx, django_capture_on_commit_callbacks, ctx.accounts[:1])
    elapsed = time.monotonic() - started

    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED and task.retryable
    assert "did not answer within 1 s" in task.error
    assert elapsed < 3, elapsed
