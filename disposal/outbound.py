"""Outbound HTTP to URLs our customers configure: the webhook connector and
webhook notifications. Nothing else in the console calls such URLs.

A customer-entered URL is a way into our own network (server-side request
forgery), so every request here:

- goes only to ``http`` or ``https`` URLs without credentials in them;
- resolves the host once and connects to the address it resolved to: the
  address that was checked is the one connected to, so a name that answers
  differently the second time (DNS rebinding) gains nothing;
- refuses loopback, private, link-local, multicast, reserved, unspecified and
  other non-public addresses (IPv4 and IPv6, IPv4-mapped and 6to4/Teredo/NAT64
  forms included) unless ``WEBHOOK_ALLOWED_PRIVATE`` names the host or a range
  holding the address;
- follows no redirect: a 3xx answer is a failure that names where it pointed;
- gives up after ``DISPOSAL_CONNECTOR_TIMEOUT`` seconds to connect and as many
  again for the whole answer, and reads at most ``MAX_RESPONSE_BYTES`` of it;
- is signed (``sign``; receivers check it with ``verify_signature``, see
  docs/webhooks.md) and carries a delivery id receivers may deduplicate on.

Failures raise ``OutboundError`` whose ``retryable`` says whether the same
request may succeed later: timeouts, refused or reset connections, 5xx, 408 and
429 may; a refused destination, a bad URL, a redirect and other 4xx may not.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

USER_AGENT = "SecOps-Console-Webhook/1.0"
TIMESTAMP_HEADER = "X-Secops-Timestamp"
SIGNATURE_HEADER = "X-Secops-Signature"
DELIVERY_HEADER = "X-Secops-Delivery"
SIGNATURE_SCHEME = "sha256"
# How far a receiver lets a signature's timestamp be from its own clock.
DEFAULT_TOLERANCE_SECONDS = 300

MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_LENGTH = 2000
SCHEMES = {"http": 80, "https": 443}

# NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundError(Exception):
    """A request that did not get a 2xx answer. ``retryable`` says whether the
    same request may succeed later; ``status`` and ``answer`` describe the
    receiver's answer when there was one."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, answer=None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.answer = answer or {}


class RefusedDestination(OutboundError):
    """A URL the console does not send to: bad, or pointing at a non-public
    address that the allow-list does not name. Never retryable."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class Target:
    """A checked URL, split into what a connection needs."""

    url: str
    scheme: str
    host: str  # lower-case, IDNA-encoded, without brackets
    port: int
    path: str  # path and query, percent-encoded

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # at most MAX_RESPONSE_BYTES
    truncated: bool
    headers: dict = field(default_factory=dict)

    def json(self):
        """The body as JSON, or None when it is not (or was cut off)."""
        if self.truncated:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def answer(self, limit: int = 2048) -> dict:
        """What to record of the answer: the status and the body's first
        ``limit`` bytes, as JSON when they parse."""
        excerpt = self.body[:limit]
        try:
            body = json.loads(excerpt)
        except ValueError:
            body = excerpt.decode("utf-8", errors="replace")
        return {"status": self.status, "body": body}


# --- signing ----------------------------------------------------------------------


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of
    ``"<timestamp>.<body>"`` under ``secret``."""
    message = _as_bytes(timestamp) + b"." + _as_bytes(body)
    digest = hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether a received request was signed by the console, for receivers.

    ``timestamp`` and ``signature`` are the values of the ``X-Secops-Timestamp``
    and ``X-Secops-Signature`` headers, ``body`` the raw request body (the
    bytes as received, before any JSON parsing), ``secret`` the webhook secret
    configured for the account. True only when the signature matches (compared
    in constant time, so that its value cannot be guessed byte by byte) and the
    timestamp is within ``tolerance`` seconds of this machine's clock, either
    way (a captured request cannot be replayed later). Malformed values are
    simply False.
    """
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    if not isinstance(signature, str) or not secret:
        return False
    expected = sign(secret, sent_at, body)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def encode(document) -> bytes:
    """A JSON document as the bytes that are signed and sent (UTF-8)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def signed_headers(secret: str, body: bytes, delivery_id: str, *, now: float | None = None):
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


# --- where a URL may point ---------------------------------------------------------


def parse_url(url: str) -> Target:
    """Split and check a URL's form (no lookup). Raises RefusedDestination."""
    url = (url or "").strip()
    if not url:
        raise RefusedDestination("The URL is empty.")
    if len(url) > MAX_URL_LENGTH:
        raise RefusedDestination(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise RefusedDestination(f"{url!r} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination(f"{url!r} is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RefusedDestination(f"{url!r} is not an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination(
            f"Put no user name or password in the URL {parts.hostname or url!r}: requests "
            "are authenticated by their signature."
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedDestination(f"{url!r} names no host.")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        # An IP literal (IPv6) is not a name IDNA knows; anything else is bad.
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise RefusedDestination(f"{host!r} is not a valid host name.") from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Target(
        url=url, scheme=scheme, host=host.lower(), port=port or SCHEMES[scheme], path=path
    )


def _allow_list():
    hosts, networks = set(), []
    for entry in getattr(settings, "WEBHOOK_ALLOWED_PRIVATE", []) or []:
        entry = entry.strip()
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return hosts, networks


def non_public_kind(address) -> str | None:
    """What makes ``address`` non-public ("a loopback address", ...), or None."""
    if address.version == 6:
        # IPv6 forms that stand for an IPv4 address are judged by that address.
        if address.ipv4_mapped:
            return non_public_kind(address.ipv4_mapped)
        if address in _NAT64:
            return non_public_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        for inner in (address.sixtofour, address.teredo and address.teredo[1]):
            kind = inner and non_public_kind(inner)
            if kind:
                return kind
        if address.is_site_local:
            return "a site-local address"
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private network address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, kind in checks:
        if getattr(address, attribute):
            return kind
    if not address.is_global:
        return "a non-public address"
    return None


def _refusal(target: Target, address, kind: str) -> RefusedDestination:
    shown = target.host if target.host == str(address) else f"{target.host} ({address})"
    return RefusedDestination(
        f"{shown} is {kind}: webhooks are sent only to public addresses unless the "
        "administrator allows the destination in WEBHOOK_ALLOWED_PRIVATE."
    )


@dataclass(frozen=True)
class Destination:
    """An address a checked URL resolved to, as a socket connects to it."""

    family: int
    sockaddr: tuple
    address: object  # ipaddress.IPv4Address | IPv6Address


def resolve(target: Target) -> list[Destination]:
    """Resolve the URL's host once and check every address it gives.

    Refused when any address is not public and not allowed: a name that points
    at both a public and an internal address is not sent to at all.
    """
    hosts, networks = _allow_list()
    host_allowed = target.host in hosts
    try:
        infos = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(
            f"The host {target.host} could not be resolved ({exc}).", retryable=True
        ) from None
    destinations, seen = [], set()
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if address in seen:
            continue
        seen.add(address)
        if not host_allowed and not any(
            address.version == network.version and address in network for network in networks
        ):
            kind = non_public_kind(address)
            if kind:
                raise _refusal(target, address, kind)
        destinations.append(Destination(family, sockaddr, address))
    if not destinations:
        raise OutboundError(f"The host {target.host} has no IP address.", retryable=True)
    return destinations


def check_destination(url: str) -> Target:
    """Check a URL as a request to it would (form, then the addresses its host
    resolves to). Raises OutboundError: RefusedDestination for a URL the console
    will not send to, a retryable one when the host does not resolve."""
    target = parse_url(url)
    resolve(target)
    return target


def validate_webhook_url(value: str) -> None:
    """Django validator for fields that hold a webhook URL (connector settings,
    notification recipients): a plain message for a URL the console will not
    send to, including a host that does not resolve (a typo, most likely)."""
    try:
        check_destination(value)
    except RefusedDestination as exc:
        raise ValidationError(exc.message, code="refused_destination") from None
    except OutboundError as exc:
        raise ValidationError(exc.message, code="unresolvable") from None


# --- sending ------------------------------------------------------------------------


class _PinnedConnection(http.client.HTTPConnection):
    """A connection whose socket goes to an address resolved and checked
    beforehand, never to a new lookup of the host; TLS still checks the
    certificate against the URL's host name."""

    def __init__(self, target: Target, destination: Destination, *, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._destination = destination
        self._tls = ssl.create_default_context() if target.scheme == "https" else None

    def connect(self):
        sock = socket.socket(self._destination.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._destination.sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _timeout() -> float:
    return float(settings.DISPOSAL_CONNECTOR_TIMEOUT)


def _connect(target: Target, destinations: list[Destination], timeout: float):
    """Connect to the first address that answers, within ``timeout`` overall."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for destination in destinations:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _PinnedConnection(target, destination, timeout=remaining)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            raise OutboundError(
                f"The certificate of {target.host} is not valid: {exc.verify_message}.",
                retryable=False,
            ) from None
        except OSError as exc:
            last = exc
            continue
        return connection
    if isinstance(last, TimeoutError) or last is None:
        raise OutboundError(
            f"{target.host} did not accept a connection within {timeout:g} s.", retryable=True
        )
    if isinstance(last, ConnectionRefusedError):
        raise OutboundError(f"{target.host} refused the connection.", retryable=True)
    raise OutboundError(f"Could not connect to {target.host}: {last}.", retryable=True)


def _read_answer(connection, target: Target, deadline: float, timeout: float) -> Response:
    # The connection lets go of its socket once the answer says it will close;
    # the answer still reads from it, so hold it to keep the deadline on it.
    sock = connection.sock

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        return left

    response = None
    try:
        remaining()
        response = connection.getresponse()
        chunks, size = [], 0
        # A fully read answer closes itself (and may take the socket with it).
        while size <= MAX_RESPONSE_BYTES and not response.isclosed():
            remaining()
            chunk = response.read(MAX_RESPONSE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        response.close()
    except TimeoutError:
        raise OutboundError(
            f"{target.host} did not answer within {timeout:g} s.", retryable=True
        ) from None
    except ConnectionError as exc:  # reset, broken pipe, closed without an answer
        raise OutboundError(
            f"{target.host} closed the connection without a complete answer ({exc}).",
            retryable=True,
        ) from None
    except (http.client.HTTPException, OSError) as exc:
        raise OutboundError(
            f"{target.host} sent an answer that could not be read ({exc!r}).", retryable=True
        ) from None
    body = b"".join(chunks)
    return Response(
        status=response.status,
        body=body[:MAX_RESPONSE_BYTES],
        truncated=len(body) > MAX_RESPONSE_BYTES,
        headers={name.lower(): value for name, value in response.getheaders()},
    )


def _failure(target: Target, response: Response) -> OutboundError:
    status, answer = response.status, response.answer()
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        return OutboundError(
            f"{target.host} answered {status}, a redirect to {location or 'nowhere'}; "
            "redirects are not followed: configure the final URL.",
            retryable=False,
            status=status,
            answer=answer,
        )
    retryable = status >= 500 or status in (408, 429)
    reason = http.client.responses.get(status, "")
    return OutboundError(
        f"{target.host} answered {status}{' ' + reason if reason else ''}.",
        retryable=retryable and status < 600,
        status=status,
        answer=answer,
    )


def post(url: str, body: bytes, *, secret: str, delivery_id: str) -> Response:
    """POST ``body`` (JSON bytes, see ``encode``) to ``url``, signed with
    ``secret``. Returns the 2xx answer; raises OutboundError otherwise."""
    if not secret:
        raise OutboundError("No signing secret is configured for this webhook.", retryable=False)
    timeout = _timeout()
    target = parse_url(url)
    destinations = resolve(target)
    headers = {
        **signed_headers(secret, body, delivery_id),
        "Host": target.host_header,
        "Accept": "application/json",
        "Connection": "close",
    }
    connection = _connect(target, destinations, timeout)
    try:
        # The answer has its own allowance, counted from the request on.
        deadline = time.monotonic() + timeout
        try:
            connection.request("POST", target.path, body=body, headers=headers)
        except TimeoutError:
            raise OutboundError(
                f"{target.host} did not take the request within {timeout:g} s.", retryable=True
            ) from None
        except OSError as exc:
            raise OutboundError(
                f"{target.host} closed the connection during the request ({exc}).",
                retryable=True,
            ) from None
        response = _read_answer(connection, target, deadline, timeout)
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise _failure(target, response)
    return response
