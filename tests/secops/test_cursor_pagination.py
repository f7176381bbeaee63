"""Cursor pages of the API's long lists: a total order, no repeats or gaps
when rows arrive meanwhile, and no tampered cursor reaching the database."""

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import SecurityEvent
from secops.pagination import InvalidCursor, cursor_page
from tests import factories

ORDER = ("-last_occurred_at", "-id")


def _cursor(tag: str, values: list) -> str:
    text = json.dumps([tag, values]).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.fixture
def events(tenancy):
    """Five events, two of them at the same moment (the id breaks the tie),
    one a microsecond after another."""
    now = timezone.now().replace(microsecond=500)
    moments = [now, now, now - timedelta(microseconds=1), now - timedelta(hours=1), now]
    return [factories.make_event(tenancy.account_a, last_occurred_at=m) for m in moments]


def _all_pages(size: int, between_pages=None) -> list[int]:
    ids, cursor = [], None
    while True:
        page = cursor_page(SecurityEvent.objects.all(), ORDER, cursor, size)
        ids += [event.id for event in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids
        if between_pages:
            between_pages()


@pytest.mark.parametrize("size", [1, 2, 5, 6])
def test_it_reads_every_row_once_in_order(events, size):
    expected = list(SecurityEvent.objects.order_by(*ORDER).values_list("id", flat=True))

    assert _all_pages(size) == expected


def test_a_row_that_arrives_meanwhile_neither_repeats_nor_hides_another(events, tenancy):
    expected = list(SecurityEvent.objects.order_by(*ORDER).values_list("id", flat=True))

    def a_newer_event_arrives():
        factories.make_event(tenancy.account_a, last_occurred_at=timezone.now())

    read = _all_pages(2, a_newer_event_arrives)

    assert read == expected


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _cursor("-last_occurred_at,-id", ["2026-01-01T00:00:00+00:00"]),
        _cursor("-risk,-id", [3, 1]),
        _cursor("-last_occurred_at,-id", ["2026-01-01T00:00:00+00:00", 2**70]),
        _cursor("-last_occurred_at,-id", ["9999-12-31T23:59:59-23:59", 1]),
        _cursor("-last_occurred_at,-id", [12, 1]),
        _cursor("-last_occurred_at,-id", ["2026-01-01T00:00:00+00:00", "1"]),
    ],
)
def test_it_refuses_a_cursor_it_did_not_hand_out(db, cursor):
    with pytest.raises(InvalidCursor):
        cursor_page(SecurityEvent.objects.all(), ORDER, cursor, 10)
