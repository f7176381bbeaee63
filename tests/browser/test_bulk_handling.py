"""Bulk handling from the Security Event Handling list, driven through a real
browser: tick three events, set them to Handled, confirm, watch the job's page
reach the end, and find them Handled in the list."""

import re
import time

import pytest
from playwright.sync_api import expect

from secops.celery import app as celery_app
from soar import tasks
from tests import factories
from tests.browser.test_csp import log_in, problems  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def held_jobs(monkeypatch):
    """Bulk handling jobs the page queues, held back so that the test runs them
    itself while the page polls (no worker reads the broker during tests)."""
    queued = []
    monkeypatch.setattr(celery_app.tasks["soar.run_bulk_handling"], "delay", queued.append)
    return queued


def wait_for(queue: list, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not queue:
        assert time.monotonic() < deadline, "the page queued no bulk handling"
        time.sleep(0.05)
    return queue[0]


def test_it_handles_the_selected_events_at_once(
    page,
    problems,  # noqa: F811
    tenancy,
    held_jobs,
    screenshot,
):
    events = [
        factories.make_event(tenancy.account_a, name=f"Port scan from 203.0.113.{n}")
        for n in range(1, 6)
    ]
    chosen = events[1:4]
    log_in(page, "bob")
    page.goto("/events/")
    table = page.get_by_test_id("event-table")
    expect(table.get_by_test_id("select-event")).to_have_count(5)
    bar = page.get_by_test_id("bulk-form")
    expect(bar.get_by_test_id("bulk-all")).to_have_text("Handle all 5 matching")
    expect(bar.get_by_test_id("bulk-selected")).to_be_disabled()

    for event in chosen:
        table.locator(f'tr[data-event-id="{event.pk}"]').get_by_test_id("select-event").check()
    expect(bar.get_by_test_id("bulk-selected")).to_have_text("Handle selected (3)")
    bar.get_by_test_id("bulk-status").select_option("handled")
    bar.get_by_test_id("bulk-description").fill("Our own vulnerability scanner")
    bar.get_by_test_id("bulk-selected").click()

    panel = page.get_by_test_id("bulk-panel")
    expect(panel.get_by_test_id("bulk-summary")).to_contain_text("Set 3 events to Handled?")
    screenshot("confirm")
    panel.get_by_test_id("bulk-confirm").click()

    status = page.get_by_test_id("bulk-status")
    expect(page).to_have_url(re.compile(r"/soar/bulk/\d+/$"))
    expect(status).to_contain_text("Queued: 3 events")
    expect(status.get_by_test_id("bulk-progress")).to_have_attribute("value", "0")
    screenshot("queued")

    tasks.run_bulk_handling(wait_for(held_jobs))

    expect(status.get_by_test_id("bulk-done")).to_be_visible()
    expect(status.get_by_test_id("bulk-progress")).to_have_attribute("value", "100")
    expect(status.get_by_test_id("bulk-handled")).to_have_text("3")
    expect(status.get_by_test_id("bulk-failed")).to_have_text("0")
    screenshot("done")

    page.get_by_test_id("back-to-events").click()
    for event in events:
        row = page.get_by_test_id("event-table").locator(f'tr[data-event-id="{event.pk}"]')
        expect(row.locator(".badge.status-handled, .badge.status-unhandled")).to_have_text(
            "Handled" if event in chosen else "Unhandled"
        )
    expect(page.get_by_test_id("count-status-handled")).to_have_text("3")
    page.wait_for_load_state("networkidle")
    assert problems == []
