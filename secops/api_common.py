"""What the API routers of every app share: the shape of errors, reading a
page's filter form from the query string, and cursor pages.

The API root (``secops.api``) sits above every app, so the routers cannot
import from it; they import from here.
"""

from django.http import HttpResponse
from ninja import Field, Schema

from secops.pagination import CursorPage, InvalidCursor, cursor_page

# The most rows one request of a list returns.
MAX_LIMIT = 500
# A cursor is a few hundred characters; anything much longer was not handed out.
MAX_CURSOR_LENGTH = 1024
# The response header that carries the number of rows of an offset list.
TOTAL_HEADER = "X-Total-Count"


class FieldErrors(Schema):
    """Input read but refused: the messages by the name of the field (the
    query parameter or the body field), e.g. ``{"end": ["The end date is ..."]}``."""

    errors: dict[str, list[str]] = Field(description="Messages by field.")


class RequestErrors(Schema):
    """A request without the documented shape (a missing field, a wrong type),
    refused before anything is looked at."""

    detail: list[dict] = Field(description="One entry per problem: its type, loc and msg.")


Refused = FieldErrors | RequestErrors


class Message(Schema):
    detail: str


class CursorQuery(Schema):
    """The paging parameters of a list read with cursors."""

    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page; none for the first page.",
    )
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Rows per page.")


class OffsetQuery(Schema):
    """The paging parameters of a list whose total is counted (``X-Total-Count``)."""

    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=1_000_000)


class FieldsRefused(Exception):
    """Raised by a handler that documents ``Refused`` for 422: the API root
    answers it as ``FieldErrors``."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def form_errors(form) -> dict[str, list[str]]:
    """A bound Django form's errors by field; errors of no one field are
    named ``filters``, the query string as a whole."""
    return {
        ("filters" if name == "__all__" else name): [str(message) for message in messages]
        for name, messages in form.errors.items()
    }


def cleaned_filters(form) -> dict:
    """The cleaned data of a page's filter form, bound to the query string, or
    a 422 naming each field it refused. The page leaves such a field out and
    marks it; a program is told rather than given a list it did not ask for."""
    if not form.is_valid():
        raise FieldsRefused(form_errors(form))
    return form.cleaned_data


def cursor_page_or_422(queryset, ordering, paging: CursorQuery) -> CursorPage:
    try:
        return cursor_page(queryset, tuple(ordering), paging.cursor, paging.limit)
    except InvalidCursor as exc:
        raise FieldsRefused({"cursor": [str(exc)]}) from None


def offset_page(queryset, paging: OffsetQuery, response: HttpResponse) -> list:
    """One slice of a list whose count is cheap (an account's policies, tasks or
    groups), with the count in the ``X-Total-Count`` header."""
    response[TOTAL_HEADER] = str(queryset.count())
    return list(queryset[paging.offset : paging.offset + paging.limit])
