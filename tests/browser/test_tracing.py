"""Incident Source Tracing in a real browser: open an event, switch to the
tracing tab, click nodes of the diagram, download it; several events from the
list on one diagram."""

import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from playwright.sync_api import expect

from alerts.models import AlertSource, EntityType
from tests import factories
from tests.conftest import PASSWORD
from tests.events.test_tracing import (
    C2,
    IMPLANT,
    alert_in,
    entity,
    make_event,
    process,
    web_exploit_logs,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"
# A process whose command line is markup: it must show as text, never as an
# element, in the page and in the SVG download. The bell character cannot be
# written in XML at all.
MARKUP = '<script>alert(1)</script>\x07<img src="x" id="injected">'
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def vendored_cytoscape():
    if not (VENDOR / "cytoscape.min.js").exists():
        reason = "static/vendor has no Cytoscape.js: run `make vendor` (npm ci && npm run vendor)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def intrusion(tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    process(account, web, 6, 3004, 3003, "/bin/sh", MARKUP, "/tmp/kw", IMPLANT)
    event = make_event(account, name="Malicious file on web-01")
    alert_in(
        event,
        web,
        entity(account, EntityType.PROCESS, IMPLANT, pid=3003, path="/tmp/kw", cmdline=IMPLANT),
        entity(account, EntityType.IP, C2),
    )
    return event


def log_in(page, path: str, username: str = "alice"):
    page.goto(path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def drawn_diagram(page):
    diagram = page.get_by_test_id("tracing-graph")
    expect(diagram).to_have_attribute("data-ready", "true")
    return diagram


def click_node(page, label: str):
    """Click the node with this label where Cytoscape drew it."""
    position = page.evaluate(
        """(label) => {
            const cy = document.querySelector('[data-tracing]').secopsDiagram.cy;
            const node = cy.nodes().filter((n) => n.data('label') === label)[0];
            return node.renderedPosition();
        }""",
        label,
    )
    box = page.get_by_test_id("tracing-graph").bounding_box()
    page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])


def test_it_shows_the_diagram_and_the_information_of_a_clicked_node(
    page, intrusion, screenshot, tmp_path
):
    log_in(page, f"/events/{intrusion.id}/")
    page.get_by_test_id("tab-tracing").click()
    expect(page).to_have_url(re.compile(r"\?tab=tracing$"))
    drawn_diagram(page)
    info = page.get_by_test_id("tracing-node-info")

    click_node(page, IMPLANT)
    expect(info).to_contain_text(IMPLANT)
    expect(info).to_contain_text("Process")
    expect(info).to_contain_text("3003")
    expect(info).to_contain_text("Named as malicious by an alert.")

    click_node(page, MARKUP)
    expect(info.get_by_role("heading")).to_have_text(MARKUP)
    expect(page.locator("#injected")).to_have_count(0)

    page.get_by_test_id("tracing-legend").locator("summary").click()
    expect(page.get_by_test_id("tracing-legend")).to_contain_text("Attack payload")
    page.get_by_test_id("tracing-layout").select_option("cose")
    drawn_diagram(page)
    screenshot("diagram")

    with page.expect_download() as download_info:
        page.get_by_test_id("tracing-download-png").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert download.suggested_filename == f"event-{intrusion.id}-tracing.png"
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    png_width = int.from_bytes(saved.read_bytes()[16:20], "big")

    with page.expect_download() as download_info:
        page.get_by_test_id("tracing-download-svg").click()
    download = download_info.value
    assert download.suggested_filename == f"event-{intrusion.id}-tracing.svg"
    svg = ElementTree.parse(download.path()).getroot()  # noqa: S314 (the test's own download)
    assert svg.tag == f"{SVG}svg"
    # The PNG is drawn at twice the scale over the same box.
    assert int(svg.get("width")) * 2 == png_width

    labels = page.evaluate(
        "() => document.querySelector('[data-tracing]').secopsDiagram.cy.nodes()"
        ".map((node) => node.data('label'))"
    )
    nodes = svg.findall(f".//{SVG}g[@class='node']")
    assert len(nodes) == len(labels)
    drawn = {node.findtext(f"{SVG}title"): node.findtext(f"{SVG}text") for node in nodes}
    readable_markup = MARKUP.replace("\x07", "\ufffd")
    assert sorted(drawn) == sorted(
        readable_markup if label == MARKUP else label for label in labels
    )
    assert drawn[IMPLANT] == IMPLANT
    # Too long for the diagram: shortened as Cytoscape shows it, still text.
    assert drawn[readable_markup].endswith("…")
    assert readable_markup.startswith(drawn[readable_markup][:-1])
    assert not [e for e in svg.iter() if e.tag in (f"{SVG}script", f"{SVG}img", "script", "img")]


def test_it_filters_the_log_preview_to_a_clicked_node(page, intrusion):
    log_in(page, f"/events/{intrusion.id}/?tab=tracing")
    drawn_diagram(page)
    records = page.get_by_test_id("tracing-logs").locator("tbody tr")
    expect(records).to_have_count(12)

    click_node(page, C2)
    page.get_by_test_id("tracing-node-records").click()

    expect(records).to_have_count(3)
    expect(page.get_by_test_id("tracing-logs")).to_contain_text("Records behind the selected node")


def test_it_traces_events_selected_in_the_list_on_one_diagram(page, tenancy, screenshot):
    account = tenancy.account_a
    host = factories.make_asset(account, uuid="host-app", name="app-01")
    shared = entity(account, EntityType.IP, "203.0.113.9")
    first = factories.make_event(account, name="Web attacks from 203.0.113.9")
    second = factories.make_event(account, name="Network attacks from 203.0.113.9")
    factories.make_event(account, name="Unrelated event")
    alert_in(first, host, shared, source=AlertSource.WAF)
    alert_in(second, host, shared, source=AlertSource.CLOUD_FIREWALL)

    log_in(page, "/events/")
    table = page.get_by_test_id("event-table")
    table.get_by_role("row", name=first.name).get_by_test_id("select-event").check()
    table.get_by_role("row", name=second.name).get_by_test_id("select-event").check()
    page.get_by_test_id("trace-selected").click()

    # The list shows the newest first, so the ids come in that order.
    expect(page).to_have_url(re.compile(rf"/events/tracing/\?ids={second.id}&ids={first.id}$"))
    expect(page.get_by_test_id("tracing-joins")).to_contain_text(
        f"203.0.113.9 joins events #{first.id}, #{second.id}"
    )
    drawn_diagram(page)
    click_node(page, "203.0.113.9")
    info = page.get_by_test_id("tracing-node-info")
    expect(info).to_contain_text(f"#{first.id}, #{second.id}")
    screenshot("several-events")


def test_it_draws_the_alerts_of_an_event_whose_host_sent_no_logs(page, tenancy):
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    payload = '<img src="x" id="injected" onerror="alert(1)">'
    event = make_event(account, name="Implant on web-01, no logs")
    alert_in(
        event,
        web,
        entity(account, EntityType.PROCESS, IMPLANT, pid=3003, path="/tmp/kw", cmdline=IMPLANT),
        entity(account, EntityType.IP, C2),
        entity(account, EntityType.PAYLOAD, payload),
    )
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: problems.append("dialog: " + dialog.message))

    log_in(page, f"/events/{event.id}/?tab=tracing")
    drawn_diagram(page)

    labels = page.evaluate(
        "() => document.querySelector('[data-tracing]').secopsDiagram.cy.nodes()"
        ".map((node) => node.data('label'))"
    )
    assert sorted(labels) == sorted(["web-01", IMPLANT, C2, payload])
    tracing = page.get_by_test_id("tracing")
    expect(tracing).not_to_contain_text("cannot be reproduced")
    expect(page.get_by_test_id("tracing-unavailable")).to_have_count(0)
    expect(page.get_by_test_id("tracing-sources")).to_contain_text(
        "Drawn from the event's alerts alone"
    )
    info = page.get_by_test_id("tracing-node-info")
    click_node(page, IMPLANT)
    expect(info).to_contain_text("Source")
    expect(info).to_contain_text("the event's alerts")
    click_node(page, payload)
    expect(info.get_by_role("heading")).to_have_text(payload)
    expect(page.locator("#injected")).to_have_count(0)
    page.get_by_test_id("tracing-legend").locator("summary").click()
    expect(page.get_by_test_id("tracing-legend")).to_contain_text(
        "Relation given by the alerts only"
    )
    assert problems == []
