"""Event handling notifications: the message, its preview, and its delivery.

The preview on the Handle panel and the message sent are rendered by the same
function from the same template, so what the analyst sees is what is sent.
"""

import logging

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string

from disposal.errors import HandlingError
from disposal.models import Channel, Notification
from secops.jobs import registered_task

logger = logging.getLogger(__name__)

SEND_TASK = "disposal.send_notification"
MAX_RECIPIENTS = 20


def render_message(event, request, policies) -> str:
    """The body of the notification for handling ``event`` with ``request``."""
    return render_to_string(
        "disposal/notification_message.txt",
        {"event": event, "request": request, "policies": policies},
    ).strip()


def validate(choice) -> None:

    if not choice.channels:
        raise HandlingError("notification.channels", "Choose at least one channel.")
    unknown = [c for c in choice.channels if c not in Channel.values]
    if unknown:
        raise HandlingError("notification.channels", f"Unknown channel {unknown[0]!r}.")
    if not choice.recipients:
        raise HandlingError("notification.recipients", "Name at least one recipient.")
    if len(choice.recipients) > MAX_RECIPIENTS:
        raise HandlingError("notification.recipients", f"At most {MAX_RECIPIENTS} recipients.")
    if Channel.EMAIL in choice.channels:
        for recipient in choice.recipients:
            try:
                validate_email(recipient)
            except ValidationError:
                raise HandlingError(
                    "notification.recipients", f"{recipient!r} is not an e-mail address."
                ) from None
    if not choice.title.strip():
        raise HandlingError("notification.title", "The title is empty.")
    if len(choice.title) > 200:
        raise HandlingError("notification.title", "The title is longer than 200 characters.")


def create(event, choice, request, policies, *, cause) -> list[Notification]:
    """One Notification per channel, sent once the handling commits."""
    body = render_message(event, request, policies)
    made = [
        Notification.objects.create(
            event=event,
            channel=channel,
            recipients=list(choice.recipients),
            title=choice.title.strip(),
            body=body,
            created_by=cause.user,
        )
        for channel in dict.fromkeys(choice.channels)
    ]

    def queue():
        for notification in made:
            try:
                registered_task(SEND_TASK).delay(notification.pk)
            except Exception:  # the broker is down: retry_due sends it later
                logger.exception("Could not queue notification %s", notification.pk)

    transaction.on_commit(queue)
    return made


# --- delivery -------------------------------------------------------------------

# Waits between attempts: 1, 2, 4, 8, 16 minutes, then the delivery is failed.
MAX_ATTEMPTS = 6


def _backoff(attempts: int):
    from datetime import timedelta

    return timedelta(minutes=2 ** max(0, attempts - 1))


def send(notification_id: int) -> str | None:
    """Deliver one notification; a failure is recorded and retried later, and
    never touches the handling it reports."""
    from django.utils import timezone

    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True)
            .select_related("event")
            .filter(pk=notification_id, status__in=["pending", "retrying"])
            .first()
        )
        if notification is None:
            return None
        notification.attempts += 1
        try:
            _deliver(notification)
        except DeliveryError as exc:
            notification.last_error = str(exc)[:2000]
            if notification.attempts >= MAX_ATTEMPTS or not exc.retryable:
                notification.status = "failed"
                notification.next_attempt_at = None
            else:
                notification.status = "retrying"
                notification.next_attempt_at = timezone.now() + _backoff(notification.attempts)
        else:
            notification.status = "sent"
            notification.sent_at = timezone.now()
            notification.last_error = ""
            notification.next_attempt_at = None
        notification.save()
    return notification.status


def retry_due(now=None) -> int:
    """Send again every notification whose retry time has come (periodic job)."""
    from django.utils import timezone

    now = now or timezone.now()
    from datetime import timedelta

    from django.db.models import Q

    due = list(
        Notification.objects.filter(
            # Retries whose time has come, and first sends whose message was lost.
            Q(status="retrying", next_attempt_at__lte=now)
            | Q(status="pending", created_at__lte=now - timedelta(minutes=1))
        ).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        send(pk)
    return len(due)


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _deliver(notification: Notification) -> None:
    if notification.channel == Channel.EMAIL:
        from django.core.mail import send_mail

        try:
            send_mail(
                notification.title,
                notification.body,
                None,
                list(notification.recipients),
                fail_silently=False,
            )
        except OSError as exc:  # SMTP errors are OSErrors: refused, timed out, ...
            raise DeliveryError(f"The mail server refused or did not answer: {exc}") from None
    else:
        raise DeliveryError("Webhook notifications are not configured.", retryable=False)
