"""Pages of a list and its length: counted while cheap, estimated by the planner beyond."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Asset
from secops import pagination
from secops.pagination import Total, count_rows, page_of
from secops.params import LAST_PAGE, page_wanted
from tests import factories


@pytest.fixture
def hosts(tenancy):
    """25 assets of account A, named host-00 to host-24 in that order."""
    for n in range(25):
        factories.make_asset(tenancy.account_a, name=f"host-{n:02}")
    return Asset.objects.filter(account=tenancy.account_a).order_by("name")


def names(page) -> list[str]:
    return [asset.name for asset in page.items]


def test_it_reads_the_word_last_as_the_last_page():
    assert page_wanted("last") == LAST_PAGE
    assert page_wanted("2") == 2
    assert page_wanted("LAST") == 1
    assert page_wanted(None) == 1


def test_it_counts_a_short_list_exactly(hosts):
    assert count_rows(hosts) == Total(25, exact=True)
    assert count_rows(hosts.filter(name__gte="host-20")) == Total(5, exact=True)


def test_it_gives_each_page_with_the_list_s_length(hosts):
    first = page_of(hosts, 1, 10)
    last = page_of(hosts, 3, 10)

    assert names(first) == [f"host-{n:02}" for n in range(10)]
    assert (first.total, first.last_number, first.has_next, first.is_last) == (
        Total(25),
        3,
        True,
        False,
    )
    assert names(last) == [f"host-{n:02}" for n in range(20, 25)]
    assert (last.has_next, last.has_previous, last.is_last) == (False, True, True)


def test_it_gives_the_last_page_by_name(hosts):
    page = page_of(hosts, LAST_PAGE, 10)

    assert (page.number, page.past_the_end) == (3, False)
    assert names(page) == [f"host-{n:02}" for n in range(20, 25)]


def test_it_says_a_page_lies_past_the_end_without_reading_it(hosts):
    with CaptureQueriesContext(connection) as queries:
        page = page_of(hosts, 40, 10)

    assert (page.number, page.past_the_end, page.items, page.last_number) == (40, True, [], 3)
    # The count tells it: no page of rows is read.
    assert not [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]


def test_it_uses_a_total_the_caller_knows_instead_of_counting(hosts):
    with CaptureQueriesContext(connection) as queries:
        page = page_of(hosts, 1, 10, total=Total(25))

    assert page.last_number == 3
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_it_has_page_1_for_an_empty_list(tenancy):
    page = page_of(Asset.objects.none().order_by("id"), 1, 10)

    assert (page.items, page.past_the_end, page.last_number, page.is_last) == ([], False, 1, True)


def test_it_shows_an_estimate_to_two_significant_digits():
    assert Total(52_347, exact=False).shown == 52_000
    assert Total(1_234_567, exact=False).shown == 1_200_000
    assert Total(52_347).shown == 52_347
    assert Total(87, exact=False).shown == 87


# --- on PostgreSQL: the planner's estimate ----------------------------------------


@pytest.mark.postgres
def test_it_estimates_a_list_the_planner_puts_over_the_limit(hosts):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE alerts_asset")
    with CaptureQueriesContext(connection) as queries:
        total = count_rows(hosts, limit=10)

    assert total.exact is False
    # Fresh statistics: the planner knows the table's 25 rows of account A.
    assert 15 <= total.rows <= 40
    statements = [q["sql"].upper() for q in queries.captured_queries]
    assert all(sql.startswith("EXPLAIN") for sql in statements), statements


@pytest.mark.postgres
def test_it_counts_exactly_a_list_the_planner_puts_under_the_limit(hosts):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE alerts_asset")

    assert count_rows(hosts, limit=10_000) == Total(25, exact=True)


@pytest.mark.postgres
def test_it_stops_counting_at_the_limit_when_the_planner_was_wrong(hosts, monkeypatch):
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 3)
    with CaptureQueriesContext(connection) as queries:
        total = count_rows(hosts, limit=10)

    # 11 rows counted: more than the limit, so the list's length is not known.
    assert total == Total(11, exact=False)
    assert [q for q in queries.captured_queries if "LIMIT 11" in q["sql"]]


@pytest.mark.postgres
def test_it_reads_the_last_page_of_an_estimated_list_from_its_end(hosts, monkeypatch):
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 50_000)

    page = page_of(hosts, LAST_PAGE, 10)

    assert page.total == Total(50_000, exact=False)
    assert (page.is_tail, page.is_last, page.last_number) == (True, True, None)
    # The last 10 rows, in the list's order.
    assert names(page) == [f"host-{n:02}" for n in range(15, 25)]


@pytest.mark.postgres
def test_it_finds_a_page_past_the_end_of_an_estimated_list(hosts, monkeypatch):
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 50_000)

    page = page_of(hosts, 9, 10)

    assert (page.past_the_end, page.items, page.last_number) == (True, [], None)
