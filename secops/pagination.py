"""Pagination that says how long a list is without counting a large one, and
opaque cursors for the API's long lists.

A page is read as one row more than it shows, so whether a next page exists
is known without a count. The length of the list is counted exactly only
while that is cheap: PostgreSQL's planner estimates the rows first (planning
reads no table), and only a list estimated under ``EXACT_COUNT_LIMIT`` rows is
counted, and then never past that limit. A longer list is "about N" rows.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, models
from django.db.models import Q

from secops.params import LAST_PAGE, MAX_DATABASE_INTEGER, InvalidTime, aware_datetime

# Lists up to this many rows are counted exactly; longer ones are estimated.
EXACT_COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Total:
    """How many rows a list has: counted (``exact``) or the planner's estimate."""

    rows: int
    exact: bool = True

    def pages(self, size: int) -> int:
        """Pages of ``size`` rows the list fills; an empty list still has page 1."""
        return max(1, math.ceil(self.rows / size))

    @property
    def shown(self) -> int:
        """The number to show: exact, or the estimate to two significant digits
        (the planner is rarely closer than that)."""
        if self.exact or self.rows < 100:
            return self.rows
        return round(self.rows, 2 - len(str(self.rows)))


def planner_estimate(queryset) -> int:
    """The number of rows PostgreSQL's planner expects ``queryset`` to return.

    ``EXPLAIN`` without ``ANALYZE`` plans the query and does not run it.
    """
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def count_rows(queryset, *, limit: int = EXACT_COUNT_LIMIT) -> Total:
    """How many rows ``queryset`` has: exact up to ``limit`` rows, estimated beyond.

    On SQLite (the embedded default, small by nature) the count is always exact.
    On PostgreSQL a list the planner puts over ``limit`` is not counted at all;
    one it puts under is counted, but the count stops after ``limit`` + 1 rows,
    so a planner that was wrong never makes the count read the whole table.
    """
    if queryset.query.is_empty():
        # ``.none()``: no statement to plan or count.
        return Total(0)
    # Only the rows matter, not the columns or relations a page shows.
    rows = queryset.order_by().values("pk")
    if connections[queryset.db].vendor != "postgresql":
        return Total(rows.count())
    estimate = planner_estimate(rows)
    if estimate > limit:
        return Total(estimate, exact=False)
    counted = rows[: limit + 1].count()
    if counted <= limit:
        return Total(counted)
    return Total(max(estimate, counted), exact=False)


@dataclass
class Page:
    items: list
    number: int
    has_previous: bool
    has_next: bool
    # True when the page asked for lies past the end: it shows no rows, and the
    # template says so and links to the last page.
    past_the_end: bool = False
    total: Total | None = None
    # The last page of a list whose length is estimated, read from its end:
    # ``number`` is then an estimate too.
    is_tail: bool = False
    # Rows per page.
    size: int = 0

    @property
    def last_number(self) -> int | None:
        """The number of the last page, when the list's length is exact."""
        if self.total is None or not self.total.exact:
            return None
        return self.total.pages(self.size)

    @property
    def is_last(self) -> bool:
        return self.is_tail or not (self.has_next or self.past_the_end)


def page_of(queryset, number: int | str, size: int, *, total: Total | None = None) -> Page:
    """Page ``number`` (or ``LAST_PAGE``) of an ordered queryset, with the list's ``total``
    (counted by ``count_rows`` unless the caller knows it already).

    A page past the end of the list has no rows and is marked ``past_the_end``.
    The last page of a list whose length is only estimated is read backwards
    from its end, so it costs what the first page costs.
    """
    if total is None:
        total = count_rows(queryset)
    if number == LAST_PAGE:
        if not total.exact:
            rows = list(queryset.reverse()[:size])
            rows.reverse()
            return Page(
                items=rows,
                number=total.pages(size),
                has_previous=False,
                has_next=False,
                total=total,
                is_tail=True,
                size=size,
            )
        number = total.pages(size)
    if total.exact and number > total.pages(size):
        return _past_the_end(number, size, total)
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size + 1])
    if not rows and number > 1:
        return _past_the_end(number, size, total)
    return Page(
        items=rows[:size],
        number=number,
        has_previous=number > 1,
        has_next=len(rows) > size,
        total=total,
        size=size,
    )


def _past_the_end(number: int, size: int, total: Total) -> Page:
    return Page(
        items=[],
        number=number,
        has_previous=False,
        has_next=False,
        past_the_end=True,
        total=total,
        size=size,
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
