"""Alibaba Cloud: handling tasks carried out in a customer's account through the
official SDKs (Cloud Firewall 2017-12-07, Security Center 2018-12-03, WAF 3.0
2021-10-01, STS 2015-04-01), all on the ``alibabacloud_tea_openapi`` client.

What each built-in scenario calls, and what undoing it calls:

=================  ==========================================  ===================
scenario           call (reference kept on the task)           undo
=================  ==========================================  ===================
Cloud Firewall     AddControlPolicy, drop, in or out (AclUuid)  DeleteControlPolicy
WAF                CreateDefenseRule, ip_blacklist (rule id)    DeleteDefenseRule
Security Center    HandleSecurityEvents block_ip, quara,        none: a block lapses
                   kill_process, kill_and_quara (TaskId)        at its expireTime
=================  ==========================================  ===================

The account's ``AccountConnector`` row holds the AccessKey pair (the secret
encrypted with ``secops.crypto``), an optional RAM role to assume, the region,
and in ``endpoints`` everything else: per-service
endpoint overrides (``cloudfw``, ``sas``, ``waf``, ``sts``: ``host[:port]``),
``protocol`` (``https`` unless it says ``http``), and the WAF instance and
protection template the IP blacklist rules go into. docs/connectors.md says
how to set it up and which RAM policies each scenario needs.

Every call is paced per account and service, times out after
``DISPOSAL_CONNECTOR_TIMEOUT`` seconds and is made once (the SDK's own retries
are off: a failed task is retried as a whole). Failures become a
``ConnectorError`` that says whether retrying can help and what to do; neither
it nor the log ever carries a secret.
"""

import hashlib
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alibabacloud_cloudfw20171207 import models as firewall_models
from alibabacloud_cloudfw20171207.client import Client as FirewallClient
from alibabacloud_sas20181203 import models as sas_models
from alibabacloud_sas20181203.client import Client as SecurityCenterClient
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_waf_openapi20211001 import models as waf_models
from alibabacloud_waf_openapi20211001.client import Client as WafClient
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.runtime import RuntimeOptions
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from Tea.exceptions import TeaException

from disposal.connectors import (
    ActionRequest,
    ActionResult,
    Connector,
    ConnectorError,
    pace,
    register,
    timeout_seconds,
)
from disposal.models import CloudService, ConnectorKind, HandlingTask, Operation
from disposal.scenarios import DEFAULT_BLOCK_DAYS
from secops.crypto import SecretUnreadable, decrypt

logger = logging.getLogger(__name__)

# How long an assumed role's credentials are asked for, and how long before
# their expiry they are renewed.
ROLE_SESSION_SECONDS = 3600
RENEW_BEFORE = timedelta(minutes=5)
ROLE_SESSION_NAME = "secops-console"


@dataclass(frozen=True)
class _Service:
    # The CloudService value (or "sts") it is known by in answers and pacing.
    key: str
    label: str
    # The key of its endpoint override in AccountConnector.endpoints.
    endpoint_key: str
    client_class: type
    # The system RAM policy that allows every call the connector makes to it.
    ram_policy: str
    # The service's own rate limit per account (None: DISPOSAL_CALLS_PER_SECOND).
    calls_per_second: int | None = None


_SERVICES = {
    service.key: service
    for service in (
        _Service(
            CloudService.CLOUD_FIREWALL,
            "Cloud Firewall",
            "cloudfw",
            FirewallClient,
            "AliyunYundunCloudFirewallFullAccess",
            calls_per_second=10,
        ),
        _Service(
            CloudService.SECURITY_CENTER,
            "Security Center",
            "sas",
            SecurityCenterClient,
            "AliyunYundunSASFullAccess",
        ),
        _Service(
            CloudService.WAF,
            "Web Application Firewall",
            "waf",
            WafClient,
            "AliyunYundunWAFFullAccess",
        ),
        _Service("sts", "STS", "sts", StsClient, "AliyunSTSAssumeRoleAccess"),
    )
}

# Security Center's operation codes for our operations.
_SECURITY_CENTER_CODES = {
    Operation.BLOCK_IP: "block_ip",
    Operation.QUARANTINE_FILE: "quara",
    Operation.KILL_PROCESS: "kill_process",
    Operation.KILL_AND_QUARANTINE: "kill_and_quara",
}
# kill_and_quara needs a sub-operation; a scenario may name another in its
# parameters ({"sub_operation": "killAndQuaraFileByPidAndMd5andPath"}).
DEFAULT_KILL_AND_QUARANTINE = "killAndQuaraFileByMd5andPath"


@dataclass(frozen=True)
class _Credentials:
    access_key_id: str
    # Kept out of the repr, so that no traceback or debug print shows them.
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)
    # When temporary credentials stop working (None: a permanent AccessKey).
    expires_at: datetime | None = None


# Assumed roles' temporary credentials, per process, until shortly before they
# expire. The key includes a digest of the stored (encrypted) secret, so new
# settings never reuse credentials obtained with the old ones.
_role_credentials: dict[tuple, _Credentials] = {}
_role_lock = threading.Lock()


def forget_role_credentials() -> None:
    with _role_lock:
        _role_credentials.clear()


@register
class AlibabaCloud(Connector):
    kind = ConnectorKind.ALIBABA

    # --- the interface ------------------------------------------------------------

    def perform(self, request: ActionRequest) -> ActionResult:
        service, operation = request.cloud_service, request.operation
        if service == CloudService.CLOUD_FIREWALL and operation == Operation.BLOCK_IP:
            return self._firewall_block(request)
        if service == CloudService.WAF and operation == Operation.BLOCK_IP:
            return self._waf_block(request)
        if service == CloudService.SECURITY_CENTER and operation in _SECURITY_CENTER_CODES:
            return self._security_center_handle(request)
        raise ConnectorError(
            f"The Alibaba Cloud connector cannot {operation} through {service}.",
            retryable=False,
        )

    def undo(self, request: ActionRequest) -> ActionResult:
        if request.operation == Operation.BLOCK_IP:
            if not request.reference:
                raise ConnectorError(
                    "The task holds no reference to what the cloud made, so there is "
                    "nothing to remove; check the cloud's console.",
                    retryable=False,
                )
            if request.cloud_service == CloudService.CLOUD_FIREWALL:
                return self._firewall_unblock(request)
            if request.cloud_service == CloudService.WAF:
                return self._waf_unblock(request)
            if request.cloud_service == CloudService.SECURITY_CENTER:
                return self._security_center_unblock(request)
        raise ConnectorError(
            f"{request.operation} through {request.cloud_service} cannot be undone.",
            retryable=False,
        )

    def check_connection(self) -> dict:
        """A harmless read (one Cloud Firewall policy) with the account's
        settings: the credentials, the role and the endpoint all work."""
        body = self._call(
            CloudService.CLOUD_FIREWALL,
            "DescribeControlPolicy",
            "describe_control_policy",
            firewall_models.DescribeControlPolicyRequest(
                current_page="1", page_size="1", direction="in", lang="en"
            ),
        )
        return {
            "service": CloudService.CLOUD_FIREWALL,
            "action": "DescribeControlPolicy",
            "request_id": body.request_id,
            "inbound_policies": body.total_count,
            "role_assumed": bool(self.config and self.config.role_arn),
        }

    # --- Cloud Firewall ----------------------------------------------------------

    def _firewall_block(self, request: ActionRequest) -> ActionResult:
        direction = _direction(request)
        network = _network(request.value)
        anywhere = "0.0.0.0/0" if network.version == 4 else "::/0"
        outbound = direction == "out"
        parameters = {
            "direction": direction,
            "acl_action": "drop",
            "source": anywhere if outbound else str(network),
            "source_type": "net",
            "destination": str(network) if outbound else anywhere,
            "destination_type": "net",
            "proto": "ANY",
            "application_name": "ANY",
            "dest_port_type": "port",
            "dest_port": "0/0",
            "ip_version": str(network.version),
            "new_order": "1",
            "description": _description(request),
            "lang": "en",
        }
        body = self._call(
            CloudService.CLOUD_FIREWALL,
            "AddControlPolicy",
            "add_control_policy",
            firewall_models.AddControlPolicyRequest(**parameters),
        )
        if not body.acl_uuid:
            raise ConnectorError(
                "Cloud Firewall accepted AddControlPolicy but named no policy (AclUuid); "
                "check its access control list before retrying.",
                retryable=False,
                answer={"request_id": body.request_id},
            )
        return ActionResult(
            reference=body.acl_uuid,
            answer=_answer(
                CloudService.CLOUD_FIREWALL,
                "AddControlPolicy",
                body.request_id,
                acl_uuid=body.acl_uuid,
                direction=direction,
                source=parameters["source"],
                destination=parameters["destination"],
            ),
        )

    def _firewall_unblock(self, request: ActionRequest) -> ActionResult:
        direction = _direction(request)
        try:
            body = self._call(
                CloudService.CLOUD_FIREWALL,
                "DeleteControlPolicy",
                "delete_control_policy",
                firewall_models.DeleteControlPolicyRequest(
                    acl_uuid=request.reference, direction=direction, lang="en"
                ),
            )
        except _Gone as gone:
            return _already_removed(CloudService.CLOUD_FIREWALL, "DeleteControlPolicy", gone)
        return ActionResult(
            reference=request.reference,
            answer=_answer(
                CloudService.CLOUD_FIREWALL,
                "DeleteControlPolicy",
                body.request_id,
                acl_uuid=request.reference,
                direction=direction,
            ),
        )

    # --- Web Application Firewall ------------------------------------------------

    def _waf_block(self, request: ActionRequest) -> ActionResult:
        instance_id, template_id = self._waf_target()
        network = _network(request.value)
        address = str(network.network_address) if network.num_addresses == 1 else str(network)
        rules = [
            {
                "name": f"secops_task_{request.task_id}",
                "status": 1,
                "action": "block",
                "remoteAddr": [address],
            }
        ]
        body = self._call(
            CloudService.WAF,
            "CreateDefenseRule",
            "create_defense_rule",
            waf_models.CreateDefenseRuleRequest(
                instance_id=instance_id,
                template_id=template_id,
                defense_type="template",
                defense_scene="ip_blacklist",
                region_id=self._waf_region(),
                rules=json.dumps(rules),
            ),
        )
        if not body.rule_ids:
            raise ConnectorError(
                "WAF accepted CreateDefenseRule but named no rule; check the protection "
                "template's IP blacklist before retrying.",
                retryable=False,
                answer={"request_id": body.request_id},
            )
        return ActionResult(
            reference=str(body.rule_ids),
            answer=_answer(
                CloudService.WAF,
                "CreateDefenseRule",
                body.request_id,
                rule_ids=str(body.rule_ids),
                instance_id=instance_id,
                template_id=template_id,
                address=address,
            ),
        )

    def _waf_unblock(self, request: ActionRequest) -> ActionResult:
        instance_id, template_id = self._waf_target()
        try:
            body = self._call(
                CloudService.WAF,
                "DeleteDefenseRule",
                "delete_defense_rule",
                waf_models.DeleteDefenseRuleRequest(
                    instance_id=instance_id,
                    template_id=template_id,
                    defense_type="template",
                    region_id=self._waf_region(),
                    rule_ids=request.reference,
                ),
            )
        except _Gone as gone:
            return _already_removed(CloudService.WAF, "DeleteDefenseRule", gone)
        return ActionResult(
            reference=request.reference,
            answer=_answer(
                CloudService.WAF, "DeleteDefenseRule", body.request_id, rule_ids=request.reference
            ),
        )

    def _waf_target(self) -> tuple[str, int]:
        endpoints = self._endpoints()
        instance_id = str(endpoints.get("waf_instance_id") or "").strip()
        template = str(endpoints.get("waf_template_id") or "").strip()
        if not instance_id or not template.isdigit():
            raise ConnectorError(
                "Blocking on WAF needs the WAF instance id and the id of the protection "
                "template whose IP blacklist takes the block; set both in the account's "
                "connector settings.",
                retryable=False,
            )
        return instance_id, int(template)

    def _waf_region(self) -> str:
        """WAF 3.0 has two regions: the Chinese mainland and everywhere else."""
        region = self._endpoints().get("waf_region")
        if region:
            return region
        cloud_region = self.config.cloud_region if self.config else ""
        mainland = cloud_region.startswith("cn-") and cloud_region != "cn-hongkong"
        return "cn-hangzhou" if mainland else "ap-southeast-1"

    # --- Security Center ---------------------------------------------------------

    def _security_center_handle(self, request: ActionRequest) -> ActionResult:
        if not request.alert_refs:
            where = f" on host {request.host_uuid}" if request.host_uuid else ""
            raise ConnectorError(
                f"No Security Center alert names this entity in account "
                f"{request.account_uid}{where}: Security Center handles its own alerts by "
                "id, so it has nothing to act on. Choose a Cloud Firewall or WAF scenario.",
                retryable=False,
            )
        code = _SECURITY_CENTER_CODES[request.operation]
        operation_params = None
        if request.operation == Operation.BLOCK_IP:
            expires_at = request.expires_at or timezone.now() + timedelta(days=DEFAULT_BLOCK_DAYS)
            operation_params = {"expireTime": int(expires_at.timestamp() * 1000)}
        elif request.operation == Operation.KILL_AND_QUARANTINE:
            sub_operation = request.parameters.get("sub_operation", DEFAULT_KILL_AND_QUARANTINE)
            operation_params = {"subOperation": sub_operation}
        body = self._call(
            CloudService.SECURITY_CENTER,
            "HandleSecurityEvents",
            "handle_security_events",
            sas_models.HandleSecurityEventsRequest(
                security_event_ids=list(request.alert_refs),
                operation_code=code,
                operation_params=json.dumps(operation_params) if operation_params else None,
                remark=_description(request),
            ),
        )
        handled = body.handle_security_events_response
        task_id = handled.task_id if handled else None
        return ActionResult(
            reference="" if task_id is None else str(task_id),
            answer=_answer(
                CloudService.SECURITY_CENTER,
                "HandleSecurityEvents",
                body.request_id,
                task_id=task_id,
                operation_code=code,
                operation_params=operation_params,
                security_event_ids=list(request.alert_refs),
            ),
        )

    def _security_center_unblock(self, request: ActionRequest) -> ActionResult:
        """Security Center offers no call that lifts a block made by handling its
        alert (HandleSecurityEvents has no unblock code): the block was sent with
        its expiry time and lapses then. Past it, the goal holds and the undo
        succeeds; before it, say so and how to lift it early."""
        expires_at = (
            HandlingTask.objects.filter(pk=request.task_id)
            .values_list("expires_at", flat=True)
            .first()
        )
        if expires_at is not None and expires_at <= timezone.now():
            return ActionResult(
                reference=request.reference,
                answer={
                    "service": CloudService.SECURITY_CENTER,
                    "lapsed": True,
                    "expired_at": expires_at.isoformat(),
                },
            )
        until = f" at {timezone.localtime(expires_at):%Y-%m-%d %H:%M %Z}" if expires_at else ""
        raise ConnectorError(
            "Security Center has no API to lift a block made by handling its alert: the "
            f"block lapses by itself{until}, the expiry time sent with it. To lift it "
            "sooner, remove it in the Security Center console.",
            retryable=False,
            answer={"service": CloudService.SECURITY_CENTER, "task_id": request.reference},
        )

    # --- calls ------------------------------------------------------------------

    def _call(self, cloud_service: str, action: str, method: str, sdk_request):
        """One SDK call, paced, with the timeout and without the SDK's retries;
        the response body, or a ConnectorError."""
        service = _SERVICES[cloud_service]
        credentials = self._credentials()
        per_second = service.calls_per_second
        if per_second:
            per_second = min(per_second, settings.DISPOSAL_CALLS_PER_SECOND)
        pace(self.account.pk, cloud_service, per_second=per_second)
        client = self._client(service, credentials)
        call = getattr(client, f"{method}_with_options")
        try:
            response = call(sdk_request, _runtime())
        except (TeaException, AlibabaCloudException) as exc:
            error = _error(service, action, exc, credentials)
            logger.warning(
                "Alibaba Cloud %s %s failed for account %s: %s",
                service.label,
                action,
                self.account.pk,
                error.answer.get("code") or error.message,
            )
            raise error from None
        body = response.body
        logger.info(
            "Alibaba Cloud %s %s for account %s: request %s",
            service.label,
            action,
            self.account.pk,
            getattr(body, "request_id", None),
        )
        return body

    def _client(self, service: _Service, credentials: _Credentials):
        endpoints = self._endpoints()
        region = self._waf_region() if service.endpoint_key == "waf" else self._region()
        milliseconds = timeout_seconds() * 1000
        return service.client_class(
            Config(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token or None,
                # None lets the SDK choose the public endpoint for the region.
                endpoint=endpoints.get(service.endpoint_key) or None,
                protocol=self._protocol(),
                region_id=region,
                connect_timeout=milliseconds,
                read_timeout=milliseconds,
            )
        )

    def _endpoints(self) -> dict:
        endpoints = self.config.endpoints if self.config else None
        return endpoints if isinstance(endpoints, dict) else {}

    def _protocol(self) -> str:
        return "http" if str(self._endpoints().get("protocol", "")).lower() == "http" else "https"

    def _region(self) -> str:
        return (self.config.cloud_region if self.config else "") or "cn-hangzhou"

    # --- credentials --------------------------------------------------------------

    @sensitive_variables("secret")
    def _credentials(self) -> _Credentials:
        config = self.config
        if config is None or not config.access_key_id or not config.access_key_secret:
            raise ConnectorError(
                f"Account {self.account.uid} has no Alibaba Cloud AccessKey: set the "
                "AccessKey ID and secret in the account's connector settings.",
                retryable=False,
            )
        try:
            secret = decrypt(config.access_key_secret)
        except SecretUnreadable as exc:
            raise ConnectorError(str(exc), retryable=False) from None
        own = _Credentials(config.access_key_id, secret)
        if not config.role_arn:
            return own
        key = (
            self.account.pk,
            config.access_key_id,
            config.role_arn,
            hashlib.sha256(config.access_key_secret.encode()).hexdigest(),
        )
        with _role_lock:
            cached = _role_credentials.get(key)
        if cached and cached.expires_at - RENEW_BEFORE > timezone.now():
            return cached
        assumed = self._assume_role(own, config.role_arn)
        with _role_lock:
            _role_credentials[key] = assumed
        return assumed

    @sensitive_variables("own", "body")
    def _assume_role(self, own: _Credentials, role_arn: str) -> _Credentials:
        service = _SERVICES["sts"]
        client = self._client(service, own)
        try:
            response = client.assume_role_with_options(
                sts_models.AssumeRoleRequest(
                    role_arn=role_arn,
                    role_session_name=ROLE_SESSION_NAME,
                    duration_seconds=ROLE_SESSION_SECONDS,
                ),
                _runtime(),
            )
        except (TeaException, AlibabaCloudException) as exc:
            error = _error(service, "AssumeRole", exc, own)
            logger.warning(
                "Alibaba Cloud AssumeRole failed for account %s: %s",
                self.account.pk,
                error.answer.get("code") or error.message,
            )
            raise ConnectorError(
                f"Assuming the role {role_arn} failed. {error.message}",
                retryable=error.retryable,
                answer=error.answer,
            ) from None
        body = response.body
        credentials = body.credentials if body else None
        if credentials is None or not credentials.access_key_id:
            raise ConnectorError(
                f"STS answered AssumeRole for {role_arn} without credentials.",
                retryable=True,
            )
        return _Credentials(
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token or "",
            _expiry(credentials.expiration),
        )


# --- requests ------------------------------------------------------------------


def _runtime() -> RuntimeOptions:
    milliseconds = timeout_seconds() * 1000
    return RuntimeOptions(
        autoretry=False, max_attempts=1, read_timeout=milliseconds, connect_timeout=milliseconds
    )


def _direction(request: ActionRequest) -> str:
    direction = request.parameters.get("direction", "in")
    if direction not in ("in", "out"):
        raise ConnectorError(
            f"The scenario's direction {direction!r} is neither 'in' nor 'out'.",
            retryable=False,
        )
    return direction


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The IP (as a /32 or /128) or CIDR block to block."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ConnectorError(
            f"{value!r} is not an IP address or CIDR block, so it cannot be blocked.",
            retryable=False,
        ) from None


def _description(request: ActionRequest) -> str:
    return f"SecOps console handling task {request.task_id}: {request.value}"


def _answer(cloud_service: str, action: str, request_id, **fields) -> dict:
    return {"service": cloud_service, "action": action, "request_id": request_id, **fields}


def _expiry(text: str | None) -> datetime:
    """When temporary credentials expire (``2026-01-01T00:00:00Z``); unreadable
    means soon, so they are renewed on the next call."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return timezone.now() + RENEW_BEFORE + timedelta(seconds=60)


# --- errors ---------------------------------------------------------------------


class _Gone(ConnectorError):
    """Undoing something the cloud no longer has: the goal holds already."""


# Codes after which the same call may well succeed later.
_TRANSIENT_CODES = {
    "ServiceUnavailable",
    "ServiceBusy",
    "InternalError",
    "UnknownError",
    "RequestTimeout",
    "SignatureNonceUsed",
}
# Codes that say the AccessKey pair or the temporary credentials are wrong.
_CREDENTIAL_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeySecret",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidCredentials",
)
_PERMISSION_PREFIXES = ("NoPermission", "Forbidden", "NotAuthorized", "AccessDenied")


def _error(service: _Service, action: str, exc: Exception, credentials: _Credentials):
    """The ConnectorError an SDK exception means."""
    label = service.label
    if isinstance(exc, AlibabaCloudException):
        code = str(exc.code or "")
        status = exc.status_code or 0
        cloud_message = _cloud_message(exc)
        answer = {
            "service": service.key,
            "action": action,
            "code": code,
            "status": status,
            "request_id": exc.request_id,
            "message": _scrub(cloud_message, credentials),
        }
        said = f"{label} answered {action} with {code or f'HTTP {status}'}"
        if cloud_message:
            said += f" ({_scrub(cloud_message, credentials)})"
        if (
            isinstance(exc, ThrottlingException)
            or code.startswith("Throttling")
            or "TooFrequent" in code
            or status == 429
        ):
            return ConnectorError(
                f"{said}: too many calls. Retry the task in a moment.",
                retryable=True,
                answer=answer,
            )
        if status >= 500 or code in _TRANSIENT_CODES:
            return ConnectorError(
                f"{said}: the service is unavailable for now. Retry the task later.",
                retryable=True,
                answer=answer,
            )
        if code.startswith(_CREDENTIAL_PREFIXES):
            return ConnectorError(
                f"{said}: the AccessKey pair (or the role's temporary credentials) was "
                "refused. Check the AccessKey ID and secret in the account's connector "
                "settings; the key may be disabled or deleted.",
                retryable=False,
                answer=answer,
            )
        if code.startswith(_PERMISSION_PREFIXES) or status == 403:
            if service.key == "sts":
                advice = (
                    f"Grant the RAM user of the AccessKey the RAM policy {service.ram_policy} "
                    "and make sure the role's trust policy trusts that user's account"
                )
            else:
                advice = (
                    "Grant the RAM user of the AccessKey (or the assumed role) the RAM policy "
                    f"{service.ram_policy}, or a custom policy that allows {action}"
                )
            return ConnectorError(
                f"{said}: permission denied. {advice}, then retry the task.",
                retryable=False,
                answer=answer,
            )
        error_class = _Gone if _means_gone(code) else ConnectorError
        return error_class(
            f"{said}. The request or the account's connector settings need a change; "
            "the same call will fail again.",
            retryable=False,
            answer=answer,
        )
    if isinstance(exc, UnretryableException):
        inner = exc.inner_exception
        if isinstance(inner, RetryError):
            text = _scrub(str(inner.message), credentials)
            if "timed out" in text.lower():
                message = (
                    f"{label} did not answer {action} within {timeout_seconds()} s "
                    "(DISPOSAL_CONNECTOR_TIMEOUT); whether it took effect is unknown. Retry "
                    "the task."
                )
            else:
                message = f"{label} could not be reached for {action}: {text}. Retry the task."
            return ConnectorError(
                message,
                retryable=True,
                answer={"service": service.key, "action": action, "error": text},
            )
        text = _scrub(str(inner), credentials)[:300]
        return ConnectorError(
            f"{label} answered {action} with something that is not an API answer ({text}); "
            "check the endpoint in the connector settings if this persists.",
            retryable=True,
            answer={"service": service.key, "action": action, "error": text},
        )
    text = _scrub(str(getattr(exc, "message", "") or exc), credentials)[:300]
    return ConnectorError(
        f"The Alibaba Cloud SDK failed to call {label} {action}: {text}",
        retryable=False,
        answer={"service": service.key, "action": action, "error": text},
    )


def _cloud_message(exc: AlibabaCloudException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("Message") or data.get("message") or "")[:500]


def _means_gone(code: str) -> bool:
    lowered = code.lower()
    if code.startswith(("InvalidApi", "EntityNotExist.Role", *_CREDENTIAL_PREFIXES)):
        return False
    return "notexist" in lowered or "notfound" in lowered


def _already_removed(cloud_service: str, action: str, gone: ConnectorError) -> ActionResult:
    return ActionResult(answer={**gone.answer, "service": cloud_service, "already_removed": True})


@sensitive_variables("credentials")
def _scrub(text: str, credentials: _Credentials) -> str:
    """Text from the SDK or the cloud, never carrying a secret onwards."""
    for secret in (credentials.access_key_secret, credentials.security_token):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[secret]")
    return text
