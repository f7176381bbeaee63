"""What every log-delivery adapter shares: cleaning, time parsing, accounts and identities.

Log Service (SLS) delivers each entry as a flat map of string keys to string
values: numbers, times and flags arrive as strings, and ``-`` or an empty
string means "no value". The products have renamed fields over time, so every
attribute is read through an ordered list of candidate keys and the first one
present wins.

Everything in a record is attacker-influenced (a request path, a command
line, a user name). Adapters only carry such values as strings: nothing is
evaluated, no URL is fetched, and a value longer than ``MAX_VALUE_LENGTH``
characters is cut to that length (the full value stays in ``raw``).
"""

import copy
import hashlib
import ipaddress
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal

from alerts.models import EntityRole, EntityType
from alerts.schemas import EARLIEST_TIME, LATEST_TIME, MAX_PID
from secops.enums import RiskLevel

# A field value longer than this is cut to this many characters.
MAX_VALUE_LENGTH = 8192
# Alert names longer than the Alert.name column are cut to fit it.
MAX_NAME_LENGTH = 255
# A description built from many detail lines is cut to this many characters.
MAX_DESCRIPTION_LENGTH = 16384
# The native alert uuid limit; a longer product id is replaced by its sha256.
MAX_UUID_LENGTH = 128
# Scenario keys fit the Alert.type column.
MAX_TYPE_LENGTH = 64

# Times written as "YYYY-MM-DD HH:MM:SS" (or ISO without an offset) carry no
# zone. We read them as UTC+08:00: every log project these products write to
# lives in cn-hangzhou or ap-southeast-1 (Singapore), both UTC+08:00, the
# consoles show China Standard Time, and the only documented example that does
# carry an offset (the WAF ``time`` field) is ``+08:00``.
NAIVE_TIME_ZONE = timezone(timedelta(hours=8), "UTC+08:00")

# Epoch values at or above this are milliseconds: as seconds they would be
# after the year 5000, as milliseconds they are after 1973.
EPOCH_MILLISECONDS_FROM = 100_000_000_000

# Values the products write for "no value".
MISSING_MARKERS = frozenset({"", "-"})

# Keys that carry the account uid in the records of every product: ``aliuid``
# in the products' own Logstores, ``owner_id`` in the Log Audit copies.
ACCOUNT_KEYS = ("owner_id", "aliuid")
# SLS envelope keys that may carry the project name, which embeds the uid
# (``sas-log-<uid>-<region>``, ``waf-project-<uid>-...``, ...).
PROJECT_KEYS = ("__project__", "project")
PROJECT_ACCOUNT_PATTERN = re.compile(
    r"^(?:sas-log|waf-project|cloudfirewall-project|slsaudit-center)-(\d{6,32})-"
)
ACCOUNT_UID_PATTERN = re.compile(r"^\d{6,32}$")

_EPOCH_PATTERN = re.compile(r"^\d+(?:\.\d+)?$")
_TRUE_WORDS = frozenset({"true", "on", "1", "yes"})
# Address ranges that belong to a private network rather than the Internet.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, used by Alibaba Cloud internal services
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


class AdapterError(ValueError):
    """A record cannot be mapped; ``field`` names the record field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotAnAttackRecord(AdapterError):
    """A valid record that holds no attack (a plain access or traffic line).

    The caller decides whether that is a client error or a line to skip.
    """

    def __init__(self, field: str, reason: str):
        super().__init__(field, f"not an attack record: {reason}")


def cap(text: str, limit: int = MAX_VALUE_LENGTH) -> str:
    return text if len(text) <= limit else text[:limit]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and value.strip() in MISSING_MARKERS


def parse_time(value: Any, field: str) -> datetime:
    """A delivered time as an aware UTC datetime.

    Accepts epoch seconds or milliseconds (numbers or digit strings),
    ``YYYY-MM-DD HH:MM:SS`` and ISO-8601 strings; times without an offset are
    in ``NAIVE_TIME_ZONE``.
    """
    if isinstance(value, bool):
        raise AdapterError(field, f"expected a time, got {value!r}")
    try:
        if isinstance(value, int | float):
            moment = _from_epoch(value)
        else:
            text = str(value).strip()
            if _EPOCH_PATTERN.match(text):
                moment = _from_epoch(float(text) if "." in text else int(text))
            else:
                moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=NAIVE_TIME_ZONE)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        shown = cap(str(value), 64)
        raise AdapterError(
            field,
            f"cannot read {shown!r} as a time (epoch seconds, ISO-8601 or YYYY-MM-DD HH:MM:SS)",
        ) from None
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise AdapterError(field, f"{moment.isoformat()} is not between the years 2000 and 2100")
    return moment


def _from_epoch(number: float) -> datetime:
    if number < 0:
        raise ValueError("negative epoch")
    seconds = number / 1000 if number >= EPOCH_MILLISECONDS_FROM else number
    return datetime.fromtimestamp(seconds, tz=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def clean_ip(value: Any) -> str | None:
    if not isinstance(value, str) or is_missing(value):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def is_private_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == network.version and ip in network for network in _PRIVATE_NETWORKS)


def slugify(text: str) -> str:
    """A lowercase snake_case key from ASCII letters and digits ('' if none)."""
    slug = re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")
    return slug[:MAX_TYPE_LENGTH].rstrip("_")


def label_key(text: str) -> str:
    """A detail label as a lookup key; keeps non-ASCII letters (localised labels)."""
    return re.sub(r"[\W_]+", "_", text.casefold()).strip("_")


def fingerprint(record: Mapping) -> str:
    """The sha256 of the record's canonical JSON: equal records, equal fingerprints."""
    canonical = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def alert_uuid(product_id: str | None, record: Mapping) -> str:
    """The product's own alert id when it has one, else the record's fingerprint."""
    if not product_id:
        return fingerprint(record)
    if len(product_id) > MAX_UUID_LENGTH:
        return hashlib.sha256(product_id.encode()).hexdigest()
    return product_id


def level_word(level: RiskLevel) -> str:
    return level.name.lower()


class Record:
    """One delivered entry, read through candidate keys with the shared cleaning rules.

    Optional values that cannot be read (a pid of ``N/A``, a malformed IP) are
    treated as missing: the products drift, and the raw entry keeps them.
    """

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw

    def find(self, *keys: str) -> tuple[str, Any] | None:
        """The first candidate key holding a value, with that value."""
        for key in keys:
            value = self.raw.get(key)
            if not is_missing(value):
                return key, value
        return None

    def text(self, *keys: str, limit: int = MAX_VALUE_LENGTH) -> str | None:
        for key in keys:
            value = self.raw.get(key)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            text = str(value).strip()
            if text not in MISSING_MARKERS:
                return cap(text, limit)
        return None

    def integer(self, *keys: str, minimum: int, maximum: int) -> int | None:
        """A whole number from ``minimum`` to ``maximum``; any other value is missing."""
        text = self.text(*keys)
        if text is None:
            return None
        try:
            number = int(text)
        except ValueError:
            return None
        return number if minimum <= number <= maximum else None

    def port(self, *keys: str) -> int | None:
        return self.integer(*keys, minimum=0, maximum=65535)

    def pid(self, *keys: str) -> int | None:
        return self.integer(*keys, minimum=0, maximum=MAX_PID)

    def ip(self, *keys: str) -> str | None:
        for key in keys:
            address = clean_ip(self.raw.get(key))
            if address:
                return address
        return None

    def flag(self, *keys: str) -> bool:
        text = self.text(*keys)
        return text is not None and text.lower() in _TRUE_WORDS

    def time(self, *keys: str) -> str:
        """The record time from the first candidate present; required."""
        found = self.find(*keys)
        if found is None:
            raise AdapterError(
                keys[0], f"the record has no time (expected one of {', '.join(keys)})"
            )
        key, value = found
        return iso(parse_time(value, key))


def resolve_account(
    record: Record, default_account: str | None, account_keys: Iterable[str]
) -> str:
    """The account uid the record names, else the caller's default account."""
    found = record.find(*account_keys)
    if found is not None:
        key, value = found
        uid = str(value).strip()
        if not ACCOUNT_UID_PATTERN.match(uid):
            raise AdapterError(key, f"{cap(uid, 64)!r} is not an account uid (6 to 32 digits)")
        return uid
    project = record.text(*PROJECT_KEYS)
    if project:
        match = PROJECT_ACCOUNT_PATTERN.match(project)
        if match:
            return match.group(1)
    if default_account is None:
        raise AdapterError(
            "account",
            f"the record names no account ({', '.join(account_keys)} or a project name "
            "holding the uid) and no default account was given",
        )
    if not ACCOUNT_UID_PATTERN.match(default_account):
        raise AdapterError("account", f"default account {default_account!r} is not an account uid")
    return default_account


class EntityList:
    """The entities of one alert, in order of discovery and without repeats."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, entity: dict) -> None:
        if entity not in self.items:
            self.items.append(entity)

    def ip(self, role: str, value: Any) -> None:
        address = clean_ip(value)
        if address:
            self.add({"type": EntityType.IP.value, "role": role, "value": address})

    def value(self, entity_type: EntityType, role: str, value: str | None) -> None:
        if value:
            self.add({"type": entity_type.value, "role": role, "value": cap(value)})

    def with_attributes(self, entity_type: EntityType, role: str, attributes: dict) -> None:
        present = {key: value for key, value in attributes.items() if value is not None}
        if present:
            self.add({"type": entity_type.value, "role": role, **present})


class Adapter(ABC):
    """Maps one product's log-delivery record onto our native alert or log format."""

    name: ClassVar[str]
    kind: ClassVar[Literal["alert", "log"]]
    # ``__topic__`` values this format accepts; a record without a topic is accepted.
    topics: ClassVar[frozenset[str]] = frozenset()
    account_keys: ClassVar[tuple[str, ...]] = ACCOUNT_KEYS

    def to_native(self, record: dict, *, default_account: str | None) -> dict:
        if not isinstance(record, Mapping):
            raise AdapterError("record", f"expected a JSON object, got {type(record).__name__}")
        entry = Record(record)
        self.check_topic(entry)
        account = resolve_account(entry, default_account, self.account_keys)
        native = self.convert(entry, account)
        native["raw"] = copy.deepcopy(dict(record))
        return native

    def check_topic(self, entry: Record) -> None:
        topic = entry.text("__topic__")
        if topic is not None and self.topics and topic not in self.topics:
            expected = ", ".join(sorted(self.topics))
            raise AdapterError(
                "__topic__", f"format {self.name} reads {expected} records, not {topic!r}"
            )

    @abstractmethod
    def convert(self, entry: Record, account: str) -> dict:
        """The native alert or log for one cleaned record of ``account``."""


def parse_level(entry: Record, *keys: str) -> str:
    """Our level word from the product's (serious/suspicious/remind) or ours."""
    found = entry.find(*keys)
    if found is None:
        raise AdapterError(keys[0], f"the record has no level (expected one of {', '.join(keys)})")
    key, value = found
    try:
        return level_word(RiskLevel.parse(str(value)))
    except ValueError as error:
        raise AdapterError(key, str(error)) from None


ATTACKER = EntityRole.ATTACKER.value
VICTIM = EntityRole.VICTIM.value
RELATED = EntityRole.RELATED.value


def without_empty(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if value is not None}
