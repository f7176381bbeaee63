"""Numbers and times read from query strings and forms.

Only ASCII digits make a number here. ``str.isdigit()`` also accepts "²",
which ``int()`` refuses; ``int()`` itself accepts "١٢", " 1 " and "+1", and
refuses more than 4,300 digits. Every number is bounded, so none reaches the
database beyond its integer types, and every time converts to UTC.
"""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

# The largest value of a 64-bit signed integer column (PostgreSQL bigint, SQLite INTEGER).
MAX_DATABASE_INTEGER = 2**63 - 1
# No one pages this far by hand; an offset beyond it only costs the database.
MAX_PAGE_NUMBER = 10_000


def positive_int(text, *, maximum: int = MAX_DATABASE_INTEGER) -> int | None:
    """The number ``text`` spells in ASCII digits, from 1 to ``maximum``; otherwise None."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return None
    if len(text.lstrip("0")) > len(str(maximum)):
        return None
    number = int(text)
    return number if 1 <= number <= maximum else None


def page_number(text) -> int:
    """A page number from a query string: page 1 unless ``text`` is a positive number.

    A number past ``MAX_PAGE_NUMBER`` is read as that page, which is past the
    end of any list a person pages through (``page_of`` then shows page 1).
    """
    if isinstance(text, str) and text.isascii() and text.isdigit() and text.strip("0"):
        return min(positive_int(text) or MAX_PAGE_NUMBER, MAX_PAGE_NUMBER)
    return 1


# The page parameter's name for the last page of a list, wherever it ends.
LAST_PAGE = "last"


def page_wanted(text) -> int | str:
    """A page number from a query string, or ``LAST_PAGE`` for the word "last"
    (the pager's link to the end of a list whose length is only estimated)."""
    return LAST_PAGE if text == LAST_PAGE else page_number(text)


class InvalidTime(ValueError):
    """A time that cannot be read or cannot be stored; the message says which."""


def aware_datetime(text: str) -> datetime | None:
    """The time ``text`` names (ISO 8601, the current time zone when it has no
    offset), or None for an empty text.

    Raises ``InvalidTime`` for a malformed or impossible time
    ("2026-99-99T99:99") and for one outside the years 1 to 9999 once in UTC
    ("9999-12-31T23:59:59-23:59"), which the database could not store.
    """
    text = text.strip()
    if not text:
        return None
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidTime("Enter a date and time, e.g. 2027-01-31 18:00.")
    try:
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidTime("Enter a date and time between the years 1 and 9999.") from None
    return parsed
