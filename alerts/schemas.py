"""The native ingestion formats, as pydantic models.

They are both the validators of ``alerts.services.ingest_*`` and the request
schemas of the API (so the OpenAPI document shows exactly what is accepted).
Everything in an alert or log is attacker-influenced: sizes are capped and
nothing is interpreted beyond its type.
"""

import ipaddress
import json
import math
import re
from datetime import UTC, datetime
from functools import cache
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
# Times outside these bounds are refused, whatever their shape: near the ends
# of datetime's range, converting to UTC or adding a window would overflow.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
# Containers (objects and arrays) nested deeper than this in one item are refused:
# real records nest a few levels, and every recursive reader downstream is safe
# within it.
MAX_NESTING = 64


def _parse_time(value: Any) -> datetime:
    """ISO-8601 (with an offset, or UTC when it has none) or epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO-8601 time or epoch milliseconds")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            millis = int(value)
        except (OverflowError, ValueError):  # inf, nan, digits int() cannot read
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
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_TIME <= in_utc < LATEST_TIME:
        raise ValueError("time must be between the years 2000 and 2100")
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


class UnstorableValueError(ValueError):
    """A value no JSON column can hold; ``field`` is its dotted path in the item."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    @property
    def field(self) -> str:
        return ".".join(self.path)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_KEY_LENGTH = 64


def storable_json(item: Any) -> Any:
    """One item of a request as the database can store it, else ``UnstorableValueError``.

    NUL characters (PostgreSQL stores none) and lone UTF-16 surrogates (an
    escape such as ``"\\ud800"`` that is not Unicode, so no UTF-8 encoder takes
    it) in keys and text become U+FFFD, as ``scrub_nul`` does: the rest of an
    attack payload is kept and the gap is visible. NaN and infinite numbers,
    which Python's JSON reader accepts and PostgreSQL's refuses, and containers
    nested deeper than ``MAX_NESTING`` levels are refused. Containers are
    changed in place; nothing is copied when nothing needs replacing.
    """
    return _storable(item, 1)


def _storable(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnstorableValueError(
                f"{value} is not a JSON number (NaN and Infinity cannot be stored)"
            )
        return value
    if isinstance(value, dict | list) and depth > MAX_NESTING:
        raise UnstorableValueError(f"nested deeper than {MAX_NESTING} levels")
    if isinstance(value, list):
        for index, element in enumerate(value):
            try:
                cleaned = _storable(element, depth + 1)
            except UnstorableValueError as exc:
                exc.path.insert(0, str(index))
                raise
            if cleaned is not element:
                value[index] = cleaned
        return value
    if isinstance(value, dict):
        renamed = []
        for key, element in value.items():
            try:
                cleaned = _storable(element, depth + 1)
            except UnstorableValueError as exc:
                exc.path.insert(0, _storable_text(str(key))[:_SHOWN_KEY_LENGTH])
                raise
            if cleaned is not element:
                value[key] = cleaned  # an existing key: the dict keeps its size
            if isinstance(key, str) and _storable_text(key) is not key:
                renamed.append(key)
        for key in renamed:
            value[_storable_text(key)] = value.pop(key)
        return value
    return value


def _storable_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


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


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Hex = Annotated[str | None, BeforeValidator(_blank_to_none), BeforeValidator(_lower)]
MAX_PID = 2**32 - 1  # process ids of every OS fit in 32 bits
MAX_COUNT = 2**31 - 1
# Constraints go on the number or text inside the optional, not on the
# optional: pydantic would apply them to None too, and fail on the comparison.
Port = Annotated[Annotated[int, Field(ge=0, le=65535)] | None, BeforeValidator(_blank_to_none)]
Pid = Annotated[Annotated[int, Field(ge=0, le=MAX_PID)] | None, BeforeValidator(_blank_to_none)]
Md5 = Annotated[
    Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None,
    BeforeValidator(_blank_to_none),
    BeforeValidator(_lower),
]
Sha256 = Annotated[
    Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None,
    BeforeValidator(_blank_to_none),
    BeforeValidator(_lower),
]
HttpStatus = Annotated[
    Annotated[int, Field(ge=100, le=999)] | None, BeforeValidator(_blank_to_none)
]


@cache
def _optional_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items() if not info.is_required())


class _NullMeansAbsent(BaseModel):
    """An explicit ``null`` in a field that may be left out counts as left out
    (real exports write nulls for values they do not have): the field takes its
    default. A null in a required field is still refused."""

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_of_optional_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or None not in data.values():
            return data
        optional = _optional_fields(cls)
        return {k: v for k, v in data.items() if v is not None or k not in optional}


class _Strict(_NullMeansAbsent):
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
        if not (self.uuid or self.instance_id or self.public_ip or self.private_ip):
            raise ValueError("an asset needs a uuid, an instance_id or an IP address")
        return self

    @property
    def host_key(self) -> str | None:
        """The key the host is stored under, or None when only its addresses are
        known (a firewall sees sessions, not agents): such an asset is looked up
        among the account's known hosts by address."""
        return self.uuid or self.instance_id or None


# The fields of which an entity needs at least one, by type (others: "value").
_IDENTITY_FIELDS = {
    "ip": ("value",),
    "file": ("sha256", "md5", "path"),
    "process": ("path", "cmdline"),
    "user": ("name",),
}


class EntityIn(_NullMeansAbsent):
    """One entity of an alert. Which fields identify it depends on its type."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    type: Literal["ip", "file", "process", "host", "domain", "url", "user", "payload"]
    role: Literal["attacker", "victim", "related"] = "related"
    value: Text = None
    # file
    path: Text = None
    md5: Md5 = None
    sha256: Sha256 = None
    # process
    pid: Pid = None
    ppid: Pid = None
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


class _LogBase(_NullMeansAbsent):
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
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1


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
    status: HttpStatus = None
    src_ip: IP = None
    user_agent: Text = None


LogIn = Annotated[
    ProcessLogIn | NetworkLogIn | LoginLogIn | FileLogIn | DnsLogIn | HttpLogIn,
    Field(discriminator="type"),
]
