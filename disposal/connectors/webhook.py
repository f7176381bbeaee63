"""The webhook connector: each action is a signed JSON request to a URL the
customer configures, whose receiver carries it out in their own cloud.

``perform`` and ``undo`` POST the document of ``document()`` (described in
docs/webhooks.md) through ``disposal.outbound``, signed with the account's
webhook secret. A 2xx answer is success; the receiver's ``reference`` (what
undoing needs, such as a firewall rule id) is kept, or the delivery id when it
gives none. Other answers and network failures are ConnectorErrors, retryable
as ``disposal.outbound`` says.

An account's URL and secret are its connector settings (``AccountConnector``);
accounts without a row, when ``DISPOSAL_DEFAULT_CONNECTOR`` is "webhook", use
``DISPOSAL_WEBHOOK_URL`` and ``DISPOSAL_WEBHOOK_SECRET``.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings

from disposal import outbound
from disposal.connectors import (
    ActionRequest,
    ActionResult,
    Connector,
    ConnectorError,
    pace,
    register,
)
from disposal.models import AccountConnector, ConnectorKind, HandlingTask
from secops import crypto

# HandlingTask.external_ref holds the receiver's reference.
MAX_REFERENCE_LENGTH = 200
SETTINGS_PAGE = "the account's connector settings page"


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str
    # Whether they come from the account's connector settings (else the defaults).
    from_account: bool

    def where(self, setting: str) -> str:
        """How to configure what is missing, for messages."""
        if self.from_account:
            return f"set it on {SETTINGS_PAGE}"
        return f"set {setting}, or give the account a webhook on {SETTINGS_PAGE}"


def webhook_settings(account, config: AccountConnector | None = None) -> WebhookSettings:
    """The webhook URL and secret (decrypted) of ``account``: its connector
    settings, or without any the DISPOSAL_WEBHOOK_* settings. A secret that
    cannot be decrypted is a non-retryable ConnectorError."""
    if config is None:
        config = AccountConnector.objects.filter(account=account).first()
    if config is None:
        return WebhookSettings(
            settings.DISPOSAL_WEBHOOK_URL,
            settings.DISPOSAL_WEBHOOK_SECRET,
            from_account=False,
        )
    try:
        secret = crypto.decrypt(config.webhook_secret)
    except crypto.SecretUnreadable as exc:
        raise ConnectorError(
            f"The webhook secret of account {account.uid} is unreadable: {exc}",
            retryable=False,
        ) from None
    return WebhookSettings(config.webhook_url, secret, from_account=True)


def document(request: ActionRequest, action: str) -> dict:
    """What the receiver is asked to do (docs/webhooks.md)."""
    host = (
        {"uuid": request.host_uuid, "instance_id": request.host_instance_id}
        if request.host_uuid or request.host_instance_id
        else None
    )
    return {
        "action": action,
        "task": request.task_id,
        "account": request.account_uid,
        "cloud_service": request.cloud_service,
        "operation": request.operation,
        "entity": {
            "type": request.entity_type,
            "value": request.value,
            "attributes": request.attributes,
        },
        "host": host,
        "parameters": request.parameters,
        "alerts": list(request.alert_refs),
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        "reference": request.reference or None,
    }


def delivery_id(request: ActionRequest, action: str) -> str:
    """The idempotency key of one action: the same for every attempt at it, new
    when it changes. Running a task again at the same policy revision (Retry
    after a failure or a lost answer) is the same action; after the policy was
    edited it is a new one. Undoing is named by what it undoes."""
    if action == "perform":
        revision = (
            HandlingTask.objects.filter(pk=request.task_id)
            .values_list("policy_revision", flat=True)
            .first()
        )
        return f"task-{request.task_id}-perform-r{revision or 1}"
    undone = hashlib.sha256(request.reference.encode()).hexdigest()[:16]
    return f"task-{request.task_id}-undo-{undone}"


@register
class WebhookConnector(Connector):
    kind = ConnectorKind.WEBHOOK

    def perform(self, request: ActionRequest) -> ActionResult:
        return self._call(request, "perform")

    def undo(self, request: ActionRequest) -> ActionResult:
        return self._call(request, "undo")

    def _call(self, request: ActionRequest, action: str) -> ActionResult:
        configured = webhook_settings(self.account, self.config)
        if not configured.url:
            raise ConnectorError(
                f"No webhook URL is configured for account {request.account_uid}: "
                f"{configured.where('DISPOSAL_WEBHOOK_URL')}.",
                retryable=False,
            )
        if not configured.secret:
            raise ConnectorError(
                f"No webhook secret is configured for account {request.account_uid}: "
                f"{configured.where('DISPOSAL_WEBHOOK_SECRET')}.",
                retryable=False,
            )
        delivery = delivery_id(request, action)
        pace(request.account_id, request.cloud_service)
        try:
            response = outbound.post(
                configured.url,
                outbound.encode(document(request, action)),
                secret=configured.secret,
                delivery_id=delivery,
            )
        except outbound.OutboundError as exc:
            raise ConnectorError(
                f"Webhook: {exc.message}",
                retryable=exc.retryable,
                answer={**exc.answer, "delivery": delivery},
            ) from None
        answer = {**response.answer(), "delivery": delivery}
        reference = _reference(response, answer)
        if reference is None:
            reference = request.reference if action == "undo" and request.reference else delivery
        return ActionResult(reference=reference, answer=answer)


def _reference(response: outbound.Response, answer: dict) -> str | None:
    """The receiver's ``reference``, when its JSON answer has one."""
    body = response.json()
    if not isinstance(body, dict) or body.get("reference") in (None, ""):
        return None
    reference = body["reference"]
    if not isinstance(reference, str | int) or isinstance(reference, bool):
        raise ConnectorError(
            "Webhook: the answer's reference is not a string.", retryable=False, answer=answer
        )
    reference = str(reference)
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise ConnectorError(
            f"Webhook: the answer's reference is longer than {MAX_REFERENCE_LENGTH} "
            "characters; it could not be kept to undo the action.",
            retryable=False,
            answer=answer,
        )
    return reference
