"""Answering a cloud SIEM API request: check the transport, authenticate the
AccessKey by its signature, refuse stale or replayed requests, build the
caller's scope, run the operation and wrap its data in the API's envelope.

Every answer is JSON, errors included (``{RequestId, Code, Message}`` with a
4xx/5xx status), because the SDK parses the body of every response as JSON
and raises with its Code and Message; HTML or a redirect would reach the
script as an unreadable failure.
"""

import logging
import urllib.parse
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost, PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from redis.exceptions import RedisError

from cloudsiem import (
    operations,  # noqa: F401 -- registers the operations
    services,
    signature,
)
from cloudsiem.protocol import OPERATIONS, ApiError, Call, Params, forbidden, invalid
from secops import crypto
from secops.enums import RegionGroup, View
from secops.services import (
    ScopeChange,
    build_scope,
    can_use_global_view,
    change_scope,
    selectable_accounts,
)

logger = logging.getLogger(__name__)

API_VERSION = "2022-06-16"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def is_api_request(request) -> bool:
    return request.path_info == "/" and "HTTP_X_ACS_ACTION" in request.META


def _error(request_id: str, status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(
        {"RequestId": request_id, "Code": code, "Message": message}, status=status
    )
    response["x-acs-request-id"] = request_id
    return response


def _success(request_id: str, data) -> JsonResponse:
    response = JsonResponse(
        {"RequestId": request_id, "Code": 200, "Success": True, "Message": "success", "Data": data}
    )
    response["x-acs-request-id"] = request_id
    return response


def handle(request) -> JsonResponse:
    request_id = str(uuid.uuid4()).upper()
    try:
        call, action = _authenticated_call(request)
        answer = OPERATIONS.get(action)
        if answer is None:
            raise ApiError(
                404,
                "InvalidAction.NotFound",
                f"Unknown action {action!r}: docs/cloud-siem-api.md lists the supported ones.",
            )
        response = _success(request_id, answer(call))
    except ApiError as exc:
        response = _error(request_id, exc.status, exc.code, exc.message)
    except signature.SignatureError as exc:
        status = 404 if exc.code == "InvalidAccessKeyId.NotFound" else 400
        response = _error(request_id, status, exc.code, exc.message)
    except PermissionDenied as exc:
        response = _error(request_id, 403, "Forbidden", str(exc) or "Not allowed.")
    except Http404 as exc:
        response = _error(request_id, 404, "EntityNotExist", str(exc) or "Not found.")
    except Exception:
        logger.exception("Cloud SIEM API request %s failed", request_id)
        response = _error(
            request_id, 500, "InternalError", "The request failed on the server; try again later."
        )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _authenticated_call(request) -> tuple[Call, str]:
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        raise ApiError(400, "InvalidProtocol.NeedSsl", "Send the request over HTTPS.")
    try:
        request.get_host()
    except DisallowedHost:
        raise ApiError(
            400, "InvalidHost", "The Host header names no host this server answers to."
        ) from None
    if request.method != "POST":
        raise ApiError(405, "UnsupportedHTTPMethod", "The API takes POST requests only.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "RequestTooLarge", "The request body is too large.") from None
    headers = {name.lower(): value for name, value in request.headers.items()}
    authorization = signature.parse_authorization(headers.get("authorization"))
    key = services.find_key(authorization.access_key_id)
    if key is None:
        raise signature.SignatureError(
            "InvalidAccessKeyId.NotFound", "The AccessKeyId does not exist."
        )
    if not key.is_active or not key.user.is_active:
        raise ApiError(403, "InvalidAccessKeyId.Inactive", "The AccessKey has been revoked.")
    try:
        secret = services.secret_of(key)
    except crypto.SecretUnreadable:
        raise ApiError(
            403,
            "InvalidAccessKeyId.Inactive",
            "The AccessKey cannot be read with this server's SECRETS_ENCRYPTION_KEY; "
            "create a new one.",
        ) from None
    signature.verify(
        authorization,
        secret,
        method=request.method,
        path=request.path,
        query_string=request.META.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
    )
    _check_fresh(headers["x-acs-date"])
    _check_nonce(key.access_key_id, headers["x-acs-signature-nonce"])
    if headers["x-acs-version"] != API_VERSION:
        raise ApiError(
            400, "InvalidVersion", f"Unsupported x-acs-version; this server speaks {API_VERSION}."
        )
    services.record_use(key)
    params = Params(_fields(request, body))
    scope = scope_for(key.user, params)
    return Call(user=key.user, scope=scope, params=params), headers["x-acs-action"]


def _fields(request, body: bytes) -> list[tuple[str, str]]:
    """The query's fields, then the body's (both as the SDK encodes them)."""
    try:
        pairs = urllib.parse.parse_qsl(
            request.META.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict"
        )
        if request.content_type in ("application/x-www-form-urlencoded", ""):
            pairs += urllib.parse.parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=5000
            )
    except UnicodeDecodeError:
        raise ApiError(400, "InvalidParameter", "The request is not UTF-8 text.") from None
    except ValueError as exc:
        raise ApiError(400, "InvalidParameter", str(exc)) from None
    return pairs


def _check_fresh(date_header: str) -> None:
    try:
        sent = datetime.strptime(date_header, _DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(
            400, "InvalidTimeStamp.Format", "x-acs-date must read like 2026-01-31T12:00:00Z."
        ) from None
    skew = abs((datetime.now(tz=UTC) - sent).total_seconds())
    if skew > settings.CLOUD_SIEM_MAX_CLOCK_SKEW:
        raise ApiError(
            400,
            "InvalidTimeStamp.Expired",
            f"x-acs-date is more than {settings.CLOUD_SIEM_MAX_CLOCK_SKEW} seconds away "
            "from the server's time.",
        )


def _check_nonce(access_key_id: str, nonce: str) -> None:
    """A nonce is accepted once while its request could still be fresh.

    Remembered in the cache (Redis in production, shared by every process),
    for twice the skew: a request dated at the edge of the window stays
    refused until its date can no longer pass the freshness check."""
    if not 8 <= len(nonce) <= 64:
        raise ApiError(400, "InvalidParameter", "x-acs-signature-nonce: 8 to 64 characters.")
    key = f"cloudsiem:nonce:{access_key_id}:{nonce}"
    try:
        first_use = cache.add(key, 1, timeout=2 * settings.CLOUD_SIEM_MAX_CLOCK_SKEW)
    except RedisError:
        # Without the shared memory of nonces a replay cannot be told apart:
        # refuse the call (the client retries it) rather than answer it unchecked.
        logger.exception("The cache is unreachable; refusing a cloud SIEM API call")
        raise ApiError(
            503, "ServiceUnavailable", "The service is temporarily unavailable; try again."
        ) from None
    if not first_use:
        raise ApiError(400, "SignatureNonceUsed", "This x-acs-signature-nonce was used before.")


def scope_for(user, params: Params):
    """The user's scope as the console's switch would make it.

    ``RoleType`` 1 is the Global Account View, only for global administrators
    as in the
    console; any member may pick one of their own accounts with ``RoleFor``
    (the console's account switch). Without them: the Current Account View
    of the user's first account. ``RegionId`` picks the region group (``cn-*``: China, else
    outside China); without it every region."""
    role_type = params.integer("RoleType", minimum=0, maximum=1)
    role_for = params.integer("RoleFor", minimum=0)
    if role_type == 1 and not can_use_global_view(user):
        raise forbidden("RoleType 1 (every account) is for global administrators only.")
    change = ScopeChange()
    if role_for is not None:
        account = selectable_accounts(user).filter(uid=str(role_for)).first()
        if account is None:
            raise forbidden(f"RoleFor: you are not a member of account {role_for}.")
        change.account_id = account.id
    elif role_type == 1:
        change.view = View.GLOBAL
    session: dict = {}
    errors = change_scope(user, session, change)
    if errors:
        raise forbidden(" ".join(errors))
    scope = build_scope(user, session)
    region_id = params.text("RegionId", max_length=64)
    if region_id is not None and not region_id.replace("-", "").isalnum():
        raise invalid("RegionId", f"{region_id!r} is no region id, e.g. cn-hangzhou.")
    region = RegionGroup.for_cloud_region(region_id, RegionGroup.CHINA) if region_id else None
    return replace(scope, region=region)
