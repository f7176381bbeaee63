"""Event handling notifications: the message, its preview, and its delivery.

The preview on the Handle panel and the message sent are rendered by the same
function from the same template, so what the analyst sees is what is sent: the
e-mail's body and the webhook document's ``message`` are ``Notification.body``
as rendered when the event was handled.

One Notification per channel. Its recipients are e-mail addresses (channel
email, sent through Django's mail: ``MAILERS`` / ``EMAIL_URL``) or URLs
(channel webhook: a signed POST through ``disposal.outbound``, see
docs/webhooks.md). The notification is queued once the handling commits, so a
delivery that fails never touches the event or its tasks. It is sent when
every recipient accepted it; otherwise it is tried again with backoff (1, 2, 4,
8, 16 minutes) and failed after ``MAX_ATTEMPTS``, or at once when trying again
cannot help (a refused recipient, a refused destination, a 4xx answer). A retry
sends to every recipient again, with the same delivery id, so that webhook
receivers can tell a repeat.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from disposal import outbound
from disposal.connectors import ConnectorError
from disposal.connectors.webhook import webhook_settings
from disposal.errors import HandlingError
from disposal.models import Channel, DeliveryStatus, Notification
from secops.jobs import queue_rows_on_commit

logger = logging.getLogger(__name__)

SEND_TASK = "disposal.send_notification"
MAX_RECIPIENTS = 20
MAX_TITLE_LENGTH = 200


def render_message(event, request, policies) -> str:
    """The body of the notification for handling ``event`` with ``request``."""
    return render_to_string(
        "disposal/notification_message.txt",
        {"event": event, "request": request, "policies": policies},
    ).strip()


# --- what the analyst asks for --------------------------------------------------


def is_url(recipient: str) -> bool:
    return "://" in recipient


def recipients_for(channel: str, recipients) -> list[str]:
    """The recipients of ``recipients`` that ``channel`` sends to: URLs for
    webhooks, the rest (e-mail addresses) for e-mail."""
    wanted = channel == Channel.WEBHOOK
    return list(dict.fromkeys(r.strip() for r in recipients if is_url(r.strip()) == wanted))


def validate(choice) -> None:
    """Check a NotificationChoice before anything is written.

    One list of recipients serves every chosen channel: e-mail addresses go to
    the e-mail channel, URLs to the webhook channel, and each chosen channel
    needs at least one. A URL is checked as a request to it would be (scheme,
    the addresses its host resolves to, WEBHOOK_ALLOWED_PRIVATE).
    """
    if not choice.channels:
        raise HandlingError("notification.channels", "Choose at least one channel.")
    unknown = [c for c in choice.channels if c not in Channel.values]
    if unknown:
        raise HandlingError("notification.channels", f"Unknown channel {unknown[0]!r}.")
    recipients = [r.strip() for r in choice.recipients if r.strip()]
    if not recipients:
        raise HandlingError("notification.recipients", "Name at least one recipient.")
    if len(recipients) > MAX_RECIPIENTS:
        raise HandlingError("notification.recipients", f"At most {MAX_RECIPIENTS} recipients.")
    for recipient in recipients:
        _validate_recipient(recipient, choice.channels)
    for channel in choice.channels:
        if not recipients_for(channel, recipients):
            raise HandlingError(
                "notification.recipients",
                "Name at least one webhook URL for the Webhook channel."
                if channel == Channel.WEBHOOK
                else "Name at least one e-mail address for the Email channel.",
            )
    title = choice.title.strip()
    if not title:
        raise HandlingError("notification.title", "The title is empty.")
    if len(title) > MAX_TITLE_LENGTH:
        raise HandlingError(
            "notification.title", f"The title is longer than {MAX_TITLE_LENGTH} characters."
        )
    if "\n" in title or "\r" in title:
        raise HandlingError("notification.title", "The title is one line.")


def _validate_recipient(recipient: str, channels) -> None:
    if is_url(recipient):
        if Channel.WEBHOOK not in channels:
            raise HandlingError(
                "notification.recipients",
                f"{recipient!r} is a URL: choose the Webhook channel to send to it.",
            )
        try:
            outbound.check_destination(recipient)
        except outbound.OutboundError as exc:
            raise HandlingError(
                "notification.recipients", f"Webhook {recipient!r}: {exc.message}"
            ) from None
        return
    if Channel.EMAIL not in channels:
        raise HandlingError("notification.recipients", f"{recipient!r} is not a webhook URL.")
    try:
        validate_email(recipient)
    except ValidationError:
        raise HandlingError(
            "notification.recipients", f"{recipient!r} is not an e-mail address."
        ) from None


def create(event, choice, request, policies, *, cause) -> list[Notification]:
    """One Notification per channel, queued once the handling commits."""
    if Channel.WEBHOOK in choice.channels and not _signing_secret(event.account):
        raise HandlingError(
            "notification.channels",
            "Webhook notifications are signed with the account's webhook secret, and "
            f"account {event.account.uid} has none: set it on the account's connector "
            "settings page (or DISPOSAL_WEBHOOK_SECRET).",
        )
    body = render_message(event, request, policies)
    made = [
        Notification(
            event=event,
            channel=channel,
            recipients=recipients_for(channel, choice.recipients),
            title=choice.title.strip(),
            body=body,
            created_by=cause.user,
        )
        for channel in dict.fromkeys(choice.channels)
    ]
    return queue(made)


def queue(notifications: list[Notification]) -> list[Notification]:
    """Save the notifications and queue their delivery once the transaction
    commits; retry_due sends any the broker did not take."""
    for notification in notifications:
        notification.save()
    queue_rows_on_commit(SEND_TASK, [n.pk for n in notifications], what="notification")
    return notifications


# --- delivery -------------------------------------------------------------------


class DeliveryError(Exception):
    """A delivery that did not reach every recipient; ``retryable`` says
    whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


# Waits between attempts: 1, 2, 4, 8, 16 minutes, then the delivery is failed.
MAX_ATTEMPTS = 6
# A first send whose message was lost is picked up by retry_due after this long.
LOST_AFTER = timedelta(minutes=1)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    return timedelta(minutes=2 ** max(0, attempts - 1))


def _lease() -> timedelta:
    """How long a sender holds a notification: enough to try every recipient
    (connecting and answering each take at most the connector timeout). A
    sender that dies mid-way leaves it to retry_due once this has passed."""
    return timedelta(seconds=MAX_RECIPIENTS * 2 * settings.DISPOSAL_CONNECTOR_TIMEOUT + 60)


def _claim(notification_id: int, now) -> Notification | None:
    """Take the notification for this sender (a conditional UPDATE, before any
    side effect), or None when it is sent, failed, or another sender holds it."""
    claimed = (
        Notification.objects.filter(
            pk=notification_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=now + _lease())
    )
    if not claimed:
        return None
    return Notification.objects.select_related("event__account").get(pk=notification_id)


def send(notification_id: int, *, now=None) -> str | None:
    """Deliver one notification. A failure is recorded and tried again later;
    it never touches the handling the notification reports. Returns the new
    status, or None when there was nothing to send (sent already, or being
    sent by another worker)."""
    now = now or timezone.now()
    notification = _claim(notification_id, now)
    if notification is None:
        return None
    error = _attempt(notification)
    if error is None:
        fields = {
            "status": DeliveryStatus.SENT,
            "sent_at": timezone.now(),
            "last_error": "",
            "next_attempt_at": None,
        }
    elif notification.attempts >= MAX_ATTEMPTS or not error.retryable:
        fields = {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        fields = {
            "status": DeliveryStatus.RETRYING,
            "next_attempt_at": now + backoff(notification.attempts),
        }
    if error is not None:
        fields["last_error"] = error.message[:2000]
        logger.warning(
            "Notification %s, attempt %s: %s", notification.pk, notification.attempts, error.message
        )
    Notification.objects.filter(pk=notification.pk).update(**fields)
    return fields["status"]


def _attempt(notification: Notification) -> DeliveryError | None:
    """Deliver the notification once; what went wrong, if anything."""
    try:
        _deliver(notification)
    except DeliveryError as exc:
        return exc
    except Exception as exc:  # a bug or an unexpected library error: recorded, tried again
        logger.exception("Notification %s failed unexpectedly", notification.pk)
        return DeliveryError(f"Unexpected error: {exc!r}")
    return None


def retry_due(now=None) -> int:
    """Send again every notification whose retry time has come, and first
    sends whose message was lost (the periodic job). Returns how many it tried."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(
            Q(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
            | Q(
                Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
                status=DeliveryStatus.PENDING,
                created_at__lte=now - LOST_AFTER,
            )
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        send(pk, now=now)
    return len(due)


def _deliver(notification: Notification) -> None:
    if notification.channel == Channel.EMAIL:
        _send_email(notification)
    elif notification.channel == Channel.WEBHOOK:
        _send_webhooks(notification)
    else:
        raise DeliveryError(f"Unknown channel {notification.channel!r}.", retryable=False)


def _send_email(notification: Notification) -> None:
    """One message to every recipient through Django's default mailer."""
    message = EmailMessage(
        subject=notification.title,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(notification.recipients),
    )
    try:
        message.send(using="default")
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(
            f"{address} ({code} {_text(reason)})"
            for address, (code, reason) in exc.recipients.items()
        )
        raise DeliveryError(
            f"The mail server refused the recipient(s) {refused}.", retryable=False
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"The mail server answered {exc.smtp_code} {_text(exc.smtp_error)}."
        ) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, ...
        raise DeliveryError(f"The mail server could not be reached: {exc!r}.") from None
    except ValueError as exc:  # an address or header the mail cannot carry
        raise DeliveryError(f"The message cannot be sent: {exc}.", retryable=False) from None


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _signing_secret(account) -> str:
    """The account's webhook secret, or DISPOSAL_WEBHOOK_SECRET without one."""
    try:
        secret = webhook_settings(account).secret
    except ConnectorError:  # unreadable: fall back as if there were none
        secret = ""
    return secret or settings.DISPOSAL_WEBHOOK_SECRET


def webhook_document(notification: Notification) -> dict:
    """What a webhook recipient receives (docs/webhooks.md)."""
    event = notification.event
    return {
        "event": {
            "id": event.id,
            "name": event.name,
            "risk": event.get_risk_display().lower(),
            "status": event.status,
            "account": event.account.uid,
        },
        "title": notification.title,
        "message": notification.body,
        "notification": notification.id,
    }


def _send_webhooks(notification: Notification) -> None:
    """The signed document to every recipient URL; every one must accept it."""
    secret = _signing_secret(notification.event.account)
    if not secret:
        raise DeliveryError(
            f"Account {notification.event.account.uid} has no webhook secret to sign "
            "notifications with: set it on the account's connector settings page.",
            retryable=False,
        )
    body = outbound.encode(webhook_document(notification))
    failures: list[tuple[str, outbound.OutboundError]] = []
    for url in notification.recipients:
        try:
            outbound.post(url, body, secret=secret, delivery_id=f"notification-{notification.id}")
        except outbound.OutboundError as exc:
            failures.append((url, exc))
    if failures:
        raise DeliveryError(
            "; ".join(f"{url}: {exc.message}" for url, exc in failures),
            retryable=any(exc.retryable for _, exc in failures),
        )
