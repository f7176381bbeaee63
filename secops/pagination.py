"""Pagination that never counts the whole result set."""

from dataclasses import dataclass


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
