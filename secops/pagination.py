"""Pagination that never counts the whole result set: page numbers for the
pages, opaque cursors for the API's long lists."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import Q

from secops.params import MAX_DATABASE_INTEGER, InvalidTime, aware_datetime


@dataclass
class Page:
    items: list
    number: int
    has_previous: bool
    has_next: bool
    # True when the page asked for lies past the end and page 1 is shown instead.
    past_the_end: bool = False


def page_of(queryset, number: int, size: int) -> Page:
    """One page of an ordered queryset: fetch one row more than shown to know
    whether a next page exists, instead of a COUNT over millions of rows.

    A page past the end of the list shows page 1 instead (as Django's
    ``Paginator.get_page`` falls back to a page that exists), marked
    ``past_the_end`` so the template can say so; the last page is not known
    without the count.
    """
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size + 1])
    if not rows and number > 1:
        first = page_of(queryset, 1, size)
        first.past_the_end = True
        return first
    return Page(
        items=rows[:size], number=number, has_previous=number > 1, has_next=len(rows) > size
    )


# --- cursors, for the API's long lists --------------------------------------------


class InvalidCursor(ValueError):
    """A cursor that this list did not hand out (or one of another order)."""


@dataclass
class CursorPage:
    items: list
    # Opaque: what the next request passes back as ``cursor``; None on the last page.
    next_cursor: str | None


def _cursor_value(field, value):
    """A value read back from a cursor, checked so that no tampered cursor can
    reach the database as something it cannot compare (an integer past 64 bits,
    a time outside the years 1 to 9999)."""
    if isinstance(field, models.DateTimeField):
        if not isinstance(value, str):
            raise InvalidCursor("not a time")
        try:
            parsed = aware_datetime(value)
        except InvalidTime:
            raise InvalidCursor("not a time") from None
        if parsed is None:
            raise InvalidCursor("not a time")
        return parsed
    if isinstance(field, models.IntegerField | models.AutoField | models.BigAutoField):
        if type(value) is not int or abs(value) > MAX_DATABASE_INTEGER:
            raise InvalidCursor("not a number")
        return value
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidCursor("not a text")
    return value


def _decode_cursor(cursor: str, ordering: tuple[str, ...], model) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        tag, values = json.loads(raw)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidCursor(
            "This cursor cannot be read: pass next_cursor as it was given."
        ) from None
    if tag != ",".join(ordering) or not isinstance(values, list) or len(values) != len(ordering):
        raise InvalidCursor("This cursor belongs to another list or another order.")
    fields = [model._meta.get_field(key.lstrip("-")) for key in ordering]
    try:
        return [_cursor_value(field, value) for field, value in zip(fields, values, strict=True)]
    except InvalidCursor:
        raise InvalidCursor(
            "This cursor cannot be read: pass next_cursor as it was given."
        ) from None


def _encode_cursor(row, ordering: tuple[str, ...]) -> str:
    values = [getattr(row, key.lstrip("-")) for key in ordering]
    # Times in full: Django's JSON encoder keeps milliseconds only, and a row
    # a microsecond apart would then be skipped or repeated.
    values = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    text = json.dumps([",".join(ordering), values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def cursor_page(queryset, ordering: tuple[str, ...], cursor: str | None, size: int) -> CursorPage:
    """The rows after ``cursor`` in ``ordering`` (keyset pagination).

    ``ordering`` names non-null fields and ends with a unique one (``"-id"``),
    so the order is total and a row inserted or deleted meanwhile neither
    repeats nor hides another. The cost of a page does not grow with how far
    the client has paged, and nothing is counted. Raises ``InvalidCursor``.
    """
    queryset = queryset.order_by(*ordering)
    if cursor:
        values = _decode_cursor(cursor, ordering, queryset.model)
        after = Q()
        for index, key in enumerate(ordering):
            name = key.lstrip("-")
            step = Q(**{f"{name}__{'lt' if key.startswith('-') else 'gt'}": values[index]})
            for earlier, value in zip(ordering[:index], values, strict=False):
                step &= Q(**{earlier.lstrip("-"): value})
            after |= step
        queryset = queryset.filter(after)
    rows = list(queryset[: size + 1])
    next_cursor = _encode_cursor(rows[size - 1], ordering) if len(rows) > size else None
    return CursorPage(items=rows[:size], next_cursor=next_cursor)
