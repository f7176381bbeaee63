"""ACS3-HMAC-SHA256: checking the signature the cloud SDK puts on a request.

The client builds a canonical request (method, path, sorted query, the headers
it names in ``SignedHeaders``, the SHA-256 of the body), hashes it, and signs
the hash with HMAC-SHA256 under the AccessKey secret. The server rebuilds the
same text from what it received and compares signatures in constant time.
The headers to use are taken from the Authorization header, never from a
fixed list: other SDK versions sign more (STS tokens, retry counters).

Pure functions over plain values, so the verifier can be tested against the
captured request of the wire contract without a server.
"""

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

ALGORITHM = "ACS3-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$"
)
# What must be signed for a request to mean anything: who it is for, what it
# does, when, once, and with which body.
REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)


class SignatureError(Exception):
    """A request whose signature cannot be accepted: an error code of the
    cloud API and a message saying what is wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    match = _AUTHORIZATION.match(value or "")
    if not match:
        if (value or "").split(" ", 1)[0] not in ("", ALGORITHM):
            raise SignatureError(
                "IncompleteSignature", f"Only {ALGORITHM} signatures are accepted."
            )
        raise SignatureError(
            "IncompleteSignature",
            f"The Authorization header must read '{ALGORITHM} Credential=<AccessKeyId>,"
            "SignedHeaders=<names>,Signature=<hex>'.",
        )
    access_key_id, signed, signature = match.groups()
    names = tuple(signed.split(";"))
    if any(name != name.lower() or not name for name in names):
        raise SignatureError("IncompleteSignature", "SignedHeaders are lower-case names.")
    return Authorization(access_key_id, names, signature)


def check_signed_headers(authorization: Authorization, headers: Mapping[str, str]) -> None:
    """Every header the verification relies on is signed, and so is every
    ``x-acs-*`` header sent: an unsigned one could have been added on the way."""
    signed = set(authorization.signed_headers)
    missing = [name for name in REQUIRED_SIGNED if name not in signed]
    if missing:
        raise SignatureError(
            "IncompleteSignature", f"These headers must be signed: {', '.join(missing)}."
        )
    unsigned = sorted(name for name in headers if name.startswith("x-acs-") and name not in signed)
    if unsigned:
        raise SignatureError(
            "IncompleteSignature", f"These headers are sent but not signed: {', '.join(unsigned)}."
        )
    absent = [name for name in authorization.signed_headers if name not in headers]
    if absent:
        raise SignatureError(
            "IncompleteSignature", f"Signed headers missing from the request: {', '.join(absent)}."
        )


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_query(query_string: str) -> str:
    """The query decoded, sorted by key and encoded as RFC 3986 (space is %20)."""
    pairs = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
    return "&".join(f"{key}={urllib.parse.quote(pairs[key], safe='~')}" for key in sorted(pairs))


def canonical_request(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    hashed_payload: str,
) -> str:
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query_string),
            canonical_headers,
            ";".join(signed_headers),
            hashed_payload,
        ]
    )


def sign(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    authorization: Authorization,
    secret: str,
    *,
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Raise ``SignatureError`` unless the request is signed with ``secret``.

    ``headers`` maps lower-case names to values (one per name)."""
    check_signed_headers(authorization, headers)
    hashed = payload_hash(body)
    if not hmac.compare_digest(headers.get("x-acs-content-sha256", ""), hashed):
        raise SignatureError(
            "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body."
        )
    canonical = canonical_request(
        method, path, query_string, headers, authorization.signed_headers, hashed
    )
    if not hmac.compare_digest(sign(secret, canonical), authorization.signature):
        raise SignatureError(
            "SignatureDoesNotMatch",
            "The request signature does not match: check the AccessKeySecret.",
        )
