"""The conventions of the cloud API: error answers, reading request fields,
the shapes of values in responses, and the table of operations.

Request fields arrive as text (form body, and for two operations the query
string): lists as ``Name.1``, ``Name.2`` or a JSON array, booleans as
``True``/``true``/``1``. Responses use the SDK's PascalCase keys and JSON
types exactly, since the SDK assigns values as they are.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from secops.enums import RiskLevel
from secops.scope import Scope

# Requests may not page deeper than this (the offset stays a small number).
MAX_PAGE_NUMBER = 100_000
LARGEST_INT = 2**63 - 1


class ApiError(Exception):
    """An answer ``{RequestId, Code, Message}`` with an HTTP error status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", f"{field}: {message}")


def missing(field: str) -> ApiError:
    return ApiError(400, "MissingParameter", f"{field} is required for this action.")


def not_found(what: str) -> ApiError:
    return ApiError(404, "EntityNotExist", f"{what} does not exist.")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


class Params:
    """The request's fields, from the query string and the form body."""

    def __init__(self, pairs):
        self._values: dict[str, str] = {}
        for key, value in pairs:
            self._values[key] = value

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str, *, required=False, max_length=1000) -> str | None:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return None
        if "\x00" in value:
            raise invalid(name, "must not contain a NUL character.")
        if len(value) > max_length:
            raise invalid(name, f"at most {max_length} characters.")
        return value

    def integer(self, name: str, *, required=False, minimum=0, maximum=LARGEST_INT) -> int | None:
        value = self.text(name, required=required, max_length=40)
        if value is None:
            return None
        digits = value[1:] if value.startswith("-") else value
        if not (digits.isascii() and digits.isdigit()):
            raise invalid(name, f"{value!r} is not a whole number.")
        number = int(value)
        if not minimum <= number <= maximum:
            raise invalid(name, f"must be from {minimum} to {maximum}.")
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.text(name, max_length=10)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise invalid(name, f"{value!r} is not true or false.")

    def strings(self, name: str) -> list[str]:
        """A list: ``Name.1``, ``Name.2``, ... (the Python SDK), a JSON array or
        a single value (other SDKs)."""
        numbered = sorted(
            (int(key[len(name) + 1 :]), value)
            for key, value in self._values.items()
            if key.startswith(name + ".") and key[len(name) + 1 :].isdigit()
        )
        values = [value for _, value in numbered]
        single = self.text(name, max_length=100_000)
        if single is not None:
            if single.startswith("["):
                parsed = self.json(name)
                if not isinstance(parsed, list):
                    raise invalid(name, "must be a JSON array.")
                values += [str(item) for item in parsed]
            else:
                values.append(single)
        if len(values) > 1000:
            raise invalid(name, "at most 1000 values.")
        return [v for v in values if v != ""]

    def json(self, name: str, *, required=False, max_length=200_000):
        value = self.text(name, required=required, max_length=max_length)
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise invalid(name, f"is not valid JSON ({exc}).") from None

    def page(self, *, default_size=10, max_size=100) -> tuple[int, int]:
        number = self.integer("CurrentPage", minimum=1, maximum=MAX_PAGE_NUMBER) or 1
        size = self.integer("PageSize", minimum=1, maximum=max_size) or default_size
        return number, size

    def epoch_ms(self, name: str, *, required=False) -> datetime | None:
        value = self.integer(name, required=required, maximum=253_402_300_799_000)
        if value is None:
            return None
        return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass
class Call:
    """One operation call: who makes it (the AccessKey's user), with which scope."""

    user: AbstractBaseUser
    scope: Scope
    params: Params


OPERATIONS: dict[str, Callable[[Call], object]] = {}


def operation(name: str):
    """Register the function that answers the action ``name`` (returns ``Data``)."""

    def register(function):
        OPERATIONS[name] = function
        return function

    return register


# --- values in responses --------------------------------------------------------

THREAT_LEVELS = {RiskLevel.HIGH: "serious", RiskLevel.MEDIUM: "suspicious", RiskLevel.LOW: "remind"}
RISK_OF_LEVEL = {word: level for level, word in THREAT_LEVELS.items()}
EVENT_STATUS_CODES = {"unhandled": 0, "handling": 1, "failed": 5, "handled": 10}
EVENT_STATUS_OF_CODE = {code: status for status, code in EVENT_STATUS_CODES.items()}
# The cloud's names of the products that raise alerts.
PRODUCT_CODES = {
    "security_center": "sas",
    "waf": "waf",
    "cloud_firewall": "cfw",
    "siem": "siem",
}
SOURCE_OF_PRODUCT = {code: source for source, code in PRODUCT_CODES.items()}


def threat_level(risk: int) -> str:
    return THREAT_LEVELS.get(risk, "remind")


def risks(params: Params, name: str) -> list[int]:
    found = []
    for word in params.strings(name):
        try:
            found.append(int(RiskLevel.parse(word)))
        except ValueError:
            raise invalid(name, f"{word!r}: use serious, suspicious or remind.") from None
    return found


def time_text(moment: datetime | None) -> str:
    """A time as the cloud's documents show it: ``2021-01-06 16:37:29`` (server time zone)."""
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def account_number(uid: str) -> int:
    return int(uid) if uid.isdigit() else 0


def page_info(number: int, size: int, total: int) -> dict:
    return {"CurrentPage": number, "PageSize": size, "TotalCount": total}


def paged(queryset, number: int, size: int):
    """(rows of the page, total): the cloud API reports totals."""
    total = queryset.count()
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size]) if offset < total else []
    return rows, total


def event_id(params: Params, name: str = "IncidentUuid", *, required=True) -> int | None:
    """Our events are named by their number, sent as the IncidentUuid text."""
    value = params.text(name, required=required, max_length=40)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= LARGEST_INT:
        raise not_found(f"Event {value!r}")
    return int(value)
