"""Excel export from the Security Event Handling list, driven through a real browser:
filter, Export, watch the progress bar finish, Download, open the file."""

import re
import time

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from events import tasks
from secops.celery import app as celery_app
from secops.enums import RiskLevel
from tests import factories
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HIGH_EVENT = "Webshell on web-01"
LOW_EVENT = "Port scan from 203.0.113.7"
FORMULA_NAME = '=HYPERLINK("http://evil.example","Details")'


@pytest.fixture
def events(tenancy):
    account = tenancy.account_a
    webshell = factories.make_event(account, name=HIGH_EVENT, risk=RiskLevel.HIGH)
    webshell.affected_assets.add(factories.make_asset(account, name="web-01"))
    factories.make_event(account, name=FORMULA_NAME, risk=RiskLevel.HIGH)
    factories.make_event(account, name=LOW_EVENT, risk=RiskLevel.LOW)
    factories.make_event(tenancy.account_x, name="Umbrella's event", risk=RiskLevel.HIGH)


@pytest.fixture
def queued_exports(monkeypatch, settings, tmp_path):
    """Export jobs the page queued, held back so that the test runs them itself
    while the page polls (no worker reads the broker during tests)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    queued = []
    monkeypatch.setattr(celery_app.tasks["events.export_events"], "delay", queued.append)
    return queued


def wait_for(queue: list, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not queue:
        assert time.monotonic() < deadline, "the page queued no export"
        time.sleep(0.05)
    return queue[0]


def test_it_exports_the_filtered_list_to_excel(
    page, tenancy, events, queued_exports, screenshot, tmp_path
):
    page.goto("/events/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    table = page.get_by_test_id("event-table")
    expect(table).to_contain_text(LOW_EVENT)

    page.get_by_label("High Risk").check()
    expect(table).not_to_contain_text(LOW_EVENT)
    expect(page).to_have_url(re.compile(r"risk=3"))
    page.get_by_test_id("export-button").click()

    status = page.get_by_test_id("export-status")
    expect(status).to_contain_text("Export of 2 events queued")
    expect(status.get_by_test_id("export-progress")).to_have_attribute("value", "0")
    screenshot("queued")

    tasks.export_events(wait_for(queued_exports))

    download_button = status.get_by_test_id("export-download")
    expect(download_button).to_be_visible()
    expect(status.get_by_test_id("export-progress")).to_have_attribute("value", "100")
    expect(status).to_contain_text("2 events exported")
    screenshot("ready")
    with page.expect_download() as download_info:
        download_button.click()
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)

    assert re.fullmatch(r"security-events-\d{8}-\d{6}\.xlsx", download.suggested_filename)
    workbook = load_workbook(target)
    assert workbook.sheetnames == ["Incident", "Asset", "Entity"]
    names = [row[1] for row in workbook["Incident"].iter_rows(min_row=2, values_only=True)]
    assert sorted(names) == sorted([HIGH_EVENT, "'" + FORMULA_NAME])
    assets = [row[2] for row in workbook["Asset"].iter_rows(min_row=2, values_only=True)]
    assert assets == ["web-01"]


def test_it_tells_the_user_when_nothing_matches(page, tenancy, events, queued_exports):
    page.goto("/events/?name=no+such+event")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("event-table")).to_contain_text("No security events match")

    page.get_by_test_id("export-button").click()

    expect(page.get_by_test_id("export-refusal")).to_contain_text("nothing to export")
    assert queued_exports == []
