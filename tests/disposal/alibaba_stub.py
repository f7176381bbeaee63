"""A local stand-in for the Alibaba Cloud APIs the connector calls.

It speaks the wire form of the official SDKs (see
/work/shared/reference/cloud-siem-api.md): ``POST /`` with the operation in the
``x-acs-action`` header, its API version in ``x-acs-version``, parameters in the
query string or a form body, and an ``ACS3-HMAC-SHA256`` signature, which it
verifies with the secret of the AccessKey id it names (and, for temporary
credentials, the security token it issued). It answers like the real services
(``AclUuid``, ``TaskId``, ``RuleIds``, STS credentials) and keeps what is in
force, so a test can see a block appear and go. A test scripts failures with
``fail_next`` (an error body with its HTTP status, or a delay longer than the
client's timeout).
"""

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSIONS = {
    "cloudfw": "2017-12-07",
    "sas": "2018-12-03",
    "waf": "2021-10-01",
    "sts": "2015-04-01",
}

_AUTHORIZATION = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$"
)


@dataclass
class Call:
    """One request the stub received."""

    action: str
    version: str
    # Query and form parameters together, lists flattened as the SDK sends them
    # (``SecurityEventIds.1``, ...).
    params: dict
    access_key_id: str
    security_token: str
    headers: dict


@dataclass
class Scripted:
    status: int
    body: dict
    delay: float = 0.0
    headers: dict = field(default_factory=dict)


def verify_acs3(method: str, raw_path: str, headers: dict, body: bytes, secrets: dict):
    """(access key id, None) for a valid signature, else (None, error code)."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if not match:
        return None, "IncompleteSignature"
    access_key_id, signed, signature = match.groups()
    if access_key_id not in secrets:
        return None, "InvalidAccessKeyId.NotFound"
    payload = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        return None, "SignatureDoesNotMatch"
    parts = urllib.parse.urlsplit(raw_path)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{key}={urllib.parse.quote(query[key], safe='~')}" for key in sorted(query)
    )
    names = signed.split(";")
    if any(name not in headers for name in names):
        return None, "SignatureDoesNotMatch"
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    canonical = "\n".join(
        [method, parts.path or "/", canonical_query, canonical_headers, signed, payload]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(
        secrets[access_key_id].encode(), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return None, "SignatureDoesNotMatch"
    return access_key_id, None


class AlibabaStub:
    """One HTTP server for every service (the SDKs tell them apart by action)."""

    def __init__(self, secrets: dict[str, str]):
        # AccessKey id -> secret; temporary credentials issued by AssumeRole join it.
        self.secrets = dict(secrets)
        self.tokens: dict[str, str] = {}
        self.calls: list[Call] = []
        # What is in force: Cloud Firewall policies by AclUuid, WAF rules by id.
        self.policies: dict[str, dict] = {}
        self.waf_rules: dict[str, dict] = {}
        self._scripted: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self._next_id = 1000
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                stub._handle(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> "AlibabaStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    # --- what a test asks of it -------------------------------------------------

    def fail_next(self, action: str, status: int, code: str = "", message: str = "", **kw):
        """The next call of ``action`` answers ``status`` with an error body (or,
        with ``delay``, answers only after that many seconds)."""
        body = {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}
        self._scripted.setdefault(action, []).append(
            Scripted(status, body if code else {}, kw.get("delay", 0.0), kw.get("headers", {}))
        )

    def calls_of(self, action: str) -> list[Call]:
        return [call for call in self.calls if call.action == action]

    # --- serving ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        access_key_id, error = verify_acs3("POST", handler.path, headers, body, self.secrets)
        token = headers.get("x-acs-security-token", "")
        if access_key_id and self.tokens.get(access_key_id, "") != token:
            access_key_id, error = None, "InvalidSecurityToken.MismatchWithAccessKey"
        if error:
            status = 404 if error.startswith("InvalidAccessKeyId") else 400
            return self._send(
                handler, status, {"RequestId": "R-SIG", "Code": error, "Message": error}
            )
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
        form = dict(urllib.parse.parse_qsl(body.decode())) if body else {}
        action = headers.get("x-acs-action", "")
        call = Call(
            action=action,
            version=headers.get("x-acs-version", ""),
            params={**query, **form},
            access_key_id=access_key_id,
            security_token=token,
            headers=headers,
        )
        with self._lock:
            self.calls.append(call)
            scripted = self._scripted.get(action, [])
            reply = scripted.pop(0) if scripted else None
        if reply is not None:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status >= 400 or reply.body:
                return self._send(handler, reply.status, reply.body, reply.headers)
        status, answer = self._answer(call)
        self._send(handler, status, answer)

    def _answer(self, call: Call) -> tuple[int, dict]:
        request_id = str(uuid.uuid4()).upper()
        expected = {
            "AddControlPolicy": "cloudfw",
            "DeleteControlPolicy": "cloudfw",
            "DescribeControlPolicy": "cloudfw",
            "HandleSecurityEvents": "sas",
            "CreateDefenseRule": "waf",
            "DeleteDefenseRule": "waf",
            "AssumeRole": "sts",
        }.get(call.action)
        if expected is None:
            return 404, {"RequestId": request_id, "Code": "InvalidApi.NotFound", "Message": ""}
        if call.version != VERSIONS[expected]:
            return 400, {"RequestId": request_id, "Code": "InvalidVersion", "Message": ""}
        params = call.params
        with self._lock:
            self._next_id += 1
            next_id = self._next_id
        if call.action == "AddControlPolicy":
            acl_uuid = str(uuid.uuid4())
            self.policies[acl_uuid] = dict(params)
            return 200, {"AclUuid": acl_uuid, "RequestId": request_id}
        if call.action == "DeleteControlPolicy":
            policy = self.policies.get(params.get("AclUuid", ""))
            if policy is None or policy.get("Direction") != params.get("Direction"):
                return 400, {
                    "RequestId": request_id,
                    "Code": "ErrorAclNotExist",
                    "Message": "The policy does not exist.",
                }
            del self.policies[params["AclUuid"]]
            return 200, {"RequestId": request_id}
        if call.action == "DescribeControlPolicy":
            return 200, {
                "RequestId": request_id,
                "TotalCount": str(len(self.policies)),
                "PageNo": params.get("CurrentPage", "1"),
                "PageSize": params.get("PageSize", "10"),
                "Policys": [],
            }
        if call.action == "HandleSecurityEvents":
            return 200, {
                "RequestId": request_id,
                "HandleSecurityEventsResponse": {"TaskId": next_id},
            }
        if call.action == "CreateDefenseRule":
            self.waf_rules[str(next_id)] = dict(params)
            return 200, {"RequestId": request_id, "RuleIds": str(next_id)}
        if call.action == "DeleteDefenseRule":
            for rule_id in params.get("RuleIds", "").split(","):
                self.waf_rules.pop(rule_id, None)
            return 200, {"RequestId": request_id}
        # AssumeRole: issue temporary credentials the stub will accept.
        temporary_id = f"STS.{uuid.uuid4().hex[:16]}"
        self.secrets[temporary_id] = uuid.uuid4().hex
        self.tokens[temporary_id] = f"token-{uuid.uuid4().hex}"
        duration = int(params.get("DurationSeconds", "3600"))
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + duration))
        return 200, {
            "RequestId": request_id,
            "AssumedRoleUser": {
                "Arn": f"{params.get('RoleArn')}/{params.get('RoleSessionName')}",
                "AssumedRoleId": "3" * 17 + ":" + params.get("RoleSessionName", ""),
            },
            "Credentials": {
                "AccessKeyId": temporary_id,
                "AccessKeySecret": self.secrets[temporary_id],
                "SecurityToken": self.tokens[temporary_id],
                "Expiration": expiration,
            },
        }

    def _send(self, handler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json;charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
