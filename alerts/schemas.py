"""The native ingestion formats, as pydantic models.

They are both the validators of ``alerts.services.ingest_*`` and the request
schemas of the API (so the OpenAPI document shows exactly what is accepted).
Everything in an alert or log is attacker-influenced: sizes are capped and
nothing is interpreted beyond its type.
"""

import ipaddress
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from secops.enums import RiskLevel

MAX_TEXT = 8192  # command lines, URLs and payloads longer than this are cut
EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: smaller numbers are not epoch milliseconds
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01


def _parse_time(value: Any) -> datetime:
    """ISO-8601 (with an offset, or UTC when it has none) or epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO-8601 time or epoch milliseconds")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            millis = int(value)
        except (OverflowError, ValueError):  # inf, nan
            raise ValueError("not a finite epoch time") from None
        if millis < EPOCH_MS_MIN:
            raise ValueError("epoch time must be in milliseconds (a 13-digit number)")
        if millis > EPOCH_MS_MAX:
            raise ValueError("epoch time is after the year 2100")
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value[:40]!r}") from None
    else:
        raise ValueError("expected an ISO-8601 time or epoch milliseconds")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# Almost no item holds a NUL, and serialising one in C is cheaper than walking
# it in Python: JSON writes a NUL of any key or text as "\u0000". Keys and
# objects JSON cannot encode hold no text the scrub would reach, so they are
# left out; a circular structure fails with RecursionError as the walk would.
_nul_probe = json.JSONEncoder(skipkeys=True, check_circular=False, default=lambda _: None)


def scrub_nul(value: Any) -> Any:
    """Replace NUL characters, which PostgreSQL cannot store in text or JSON,
    with U+FFFD so the rest of an attack payload is kept and the gap is visible."""
    if isinstance(value, dict | list) and "\\u0000" not in _nul_probe.encode(value):
        return value
    return _scrub(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT]
    return value


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() in ("", "-"):
        return None
    return value


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A dotted quad without leading zeros is already in the form ipaddress gives.
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _ip(value: Any) -> str | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    text = str(value).strip()
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"not an IP address: {str(value)[:64]!r}") from None


Time = Annotated[datetime, BeforeValidator(_parse_time)]
Text = Annotated[str | None, BeforeValidator(_blank_to_none), BeforeValidator(_cut)]
IP = Annotated[str | None, BeforeValidator(_ip)]
Key = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$"),
]
Uid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6,32}$")]
Hex = Annotated[
    str | None,
    BeforeValidator(_blank_to_none),
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AssetIn(_Strict):
    instance_id: Annotated[str | None, StringConstraints(max_length=64)] = None
    uuid: Annotated[str | None, StringConstraints(max_length=64)] = None
    name: Annotated[str | None, StringConstraints(max_length=255)] = None
    public_ip: IP = None
    private_ip: IP = None
    os: Annotated[str | None, StringConstraints(max_length=128)] = None
    region: Annotated[str | None, StringConstraints(max_length=64)] = None

    @model_validator(mode="after")
    def _needs_identity(self):
        if not (self.uuid or self.instance_id):
            raise ValueError("an asset needs a uuid or an instance_id")
        return self


# The fields of which an entity needs at least one, by type (others: "value").
_IDENTITY_FIELDS = {
    "ip": ("value",),
    "file": ("sha256", "md5", "path"),
    "process": ("path", "cmdline"),
    "user": ("name",),
}


class EntityIn(BaseModel):
    """One entity of an alert. Which fields identify it depends on its type."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    type: Literal["ip", "file", "process", "host", "domain", "url", "user", "payload"]
    role: Literal["attacker", "victim", "related"] = "related"
    value: Text = None
    # file
    path: Text = None
    md5: Annotated[Hex, Field(pattern=r"^[0-9a-f]{32}$")] = None
    sha256: Annotated[Hex, Field(pattern=r"^[0-9a-f]{64}$")] = None
    # process
    pid: int | None = Field(default=None, ge=0)
    ppid: int | None = Field(default=None, ge=0)
    cmdline: Text = None
    user: Text = None
    # user / logon
    name: Text = None
    logon_type: Text = None
    src_ip: IP = None

    @model_validator(mode="after")
    def _identity(self):
        required = _IDENTITY_FIELDS.get(self.type, ("value",))
        if not any(getattr(self, name) for name in required):
            raise ValueError(f"a {self.type} entity needs {' or '.join(required)}")
        if self.type == "ip":
            self.value = _ip(self.value)
        return self

    def identity(self) -> str:
        """The normalised value that identifies this entity within an account."""
        if self.type == "file":
            return self.sha256 or self.md5 or self.path
        if self.type == "process":
            return self.cmdline or self.path
        if self.type == "user":
            return self.name
        if self.type == "domain":
            return self.value.lower().rstrip(".")
        return self.value

    def attributes(self) -> dict:
        return self.model_dump(exclude={"type", "role"}, exclude_none=True)


class AttckIn(_Strict):
    tactic: Annotated[str | None, StringConstraints(max_length=128)] = None
    technique: Annotated[str | None, StringConstraints(max_length=128)] = None


_RISK_LEVEL_VALUES = frozenset(RiskLevel.values)


class AlertIn(_Strict):
    source: Literal["security_center", "waf", "cloud_firewall", "siem"]
    uuid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    account: Uid
    type: Key
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    level: RiskLevel
    occurred_at: Time
    asset: AssetIn | None = None
    entities: list[EntityIn] = Field(default_factory=list, max_length=200)
    attck: AttckIn | None = None
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    exceptions: list[Any] = Field(default_factory=list, max_length=100)
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value):
        if isinstance(value, bool):
            raise ValueError("level must be high, medium or low")
        if isinstance(value, int) and value in _RISK_LEVEL_VALUES:
            return value
        return RiskLevel.parse(value)


Port = Annotated[int | None, BeforeValidator(_blank_to_none), Field(ge=0, le=65535)]
Pid = Annotated[int | None, BeforeValidator(_blank_to_none), Field(ge=0)]


class _LogBase(BaseModel):
    """Common part of a native log record. Fields of the record's type are
    checked and normalised; any other field is kept verbatim in ``raw`` so
    nothing sent is lost (see ``split_fields``)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    account: Uid
    host_uuid: Annotated[str, StringConstraints(max_length=64)] = ""
    time: Time
    raw: dict[str, Any] = Field(default_factory=dict)

    def split_fields(self) -> tuple[dict, dict]:
        """(the typed fields of this log type, everything else for ``raw``)."""
        typed = self.model_dump(
            exclude={"type", "account", "host_uuid", "time", "raw"}, exclude_none=True
        )
        for name in self.__pydantic_extra__ or {}:
            typed.pop(name, None)
        raw = {**(self.__pydantic_extra__ or {}), **self.raw}
        return typed, raw


class ProcessLogIn(_LogBase):
    type: Literal["process"]
    pid: Pid = None
    ppid: Pid = None
    path: Text = None
    cmdline: Text = None
    user: Text = None
    parent_path: Text = None
    parent_cmdline: Text = None
    hash: Hex = None


class NetworkLogIn(_LogBase):
    type: Literal["network"]
    pid: Pid = None
    process_path: Text = None
    src_ip: IP = None
    src_port: Port = None
    dst_ip: IP = None
    dst_port: Port = None
    protocol: Text = None
    direction: Literal["in", "out"] | None = None


class LoginLogIn(_LogBase):
    type: Literal["login"]
    user: Text = None
    src_ip: IP = None
    src_port: Port = None
    result: Literal["success", "failure"] | None = None
    method: Text = None
    count: Annotated[int, Field(ge=1)] = 1


class FileLogIn(_LogBase):
    type: Literal["file"]
    path: Text = None
    operation: Literal["create", "write", "delete", "execute", "chmod", "rename", "read"] | None = (
        None
    )
    pid: Pid = None
    process_path: Text = None
    hash: Hex = None


class DnsLogIn(_LogBase):
    type: Literal["dns"]
    domain: Text = None
    answer: Text = None
    pid: Pid = None
    process_path: Text = None


class HttpLogIn(_LogBase):
    type: Literal["http"]
    method: Text = None
    host: Text = None
    path: Text = None
    status: Annotated[int | None, Field(ge=100, le=999)] = None
    src_ip: IP = None
    user_agent: Text = None


LogIn = Annotated[
    ProcessLogIn | NetworkLogIn | LoginLogIn | FileLogIn | DnsLogIn | HttpLogIn,
    Field(discriminator="type"),
]
