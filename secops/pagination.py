"""Pagination that never counts the whole result set."""

from dataclasses import dataclass


@dataclass
class Page:
    items: list
    number: int
    has_previous: bool
    has_next: bool


def page_of(queryset, number: int, size: int) -> Page:
    """One page of an ordered queryset: fetch one row more than shown to know
    whether a next page exists, instead of a COUNT over millions of rows."""
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size + 1])
    return Page(
        items=rows[:size], number=number, has_previous=number > 1, has_next=len(rows) > size
    )
