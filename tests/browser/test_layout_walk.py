"""Every page of the console at 1,024 and 1,280 pixels wide: nothing cut off
past the right edge, no horizontal scroll of the page, no script error.

The pages are discovered from the URL configuration (as the URL coverage test
does), with a sample object of every kind for the detail pages. Every GET
that answers a whole HTML page is visited; partials, downloads, JSON and
POST-only URLs are not pages. A screenshot of each is saved under
test-results/walk/ for a person to look at.
"""

import re

import pytest
from django.urls import reverse

from alerts.models import AlertSource, Entity, EntityType, LogType
from events.models import SecurityEvent
from events.views import DETAIL_TABS
from secops.services import create_api_key
from tests import factories
from tests.browser.conftest import RESULTS_DIR
from tests.conftest import PASSWORD
from tests.events.test_tracing import alert_in, entity, log, web_exploit_logs
from tests.secops.test_url_coverage import (
    ENDPOINTS,
    id_choices,
    make_objects_of_account_a,
    sample_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1024, 1280)
HEIGHT = 720
# Not pages: the API (except its documentation pages), the admin (Django's own
# layout), logging out, and the health probe.
SKIPPED_NAMES = {"logout", "healthz", "login"}
LONG_VALUE = "/opt/app/bin/" + "very-long-path-segment-" * 8 + "payload.sh"

# The elements of the page shell and its content whose box ends past the
# viewport's right edge, outside any container that scrolls or clips them.
CUT_OFF = """
() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " + width);
  }
  const clipped = (element) => {
    for (let parent = element.parentElement; parent && parent !== document.body; parent = parent.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(parent).overflowX)) return true;
    }
    return false;
  };
  const describe = (element) => {
    const id = element.id ? "#" + element.id : "";
    const classes = element.classList.length ? "." + [...element.classList].join(".") : "";
    const text = (element.textContent || "").trim().slice(0, 40);
    return element.tagName.toLowerCase() + id + classes + ' "' + text + '"';
  };
  // Only the outermost element cut off is named, not each of its descendants.
  const cut = new Set();
  for (const element of document.querySelectorAll("header, header *, nav, nav *, main, main *")) {
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(element).visibility === "hidden") continue;
    if (box.right > width + 0.5 && !clipped(element)) {
      cut.add(element);
      if (!cut.has(element.parentElement)) {
        found.push(describe(element) + " ends at " + Math.round(box.right));
      }
    }
  }
  return found.slice(0, 10);
}
"""


def console_pages(objects, values: dict[str, str]) -> list[tuple[str, str]]:
    """(URL name, path) of every GET page of the console, with sample objects
    and ``values`` for keywords that are not object ids."""
    pages = []
    for endpoint in ENDPOINTS:
        if (
            endpoint.in_admin
            or (endpoint.in_api and not endpoint.name.endswith("docs"))
            or endpoint.name in SKIPPED_NAMES
            or endpoint.is_public
        ):
            continue
        choices, _ = id_choices(endpoint, objects)
        try:
            path = sample_path(endpoint, {**values, **(choices[0] if choices else {})})
        except AssertionError:
            continue
        pages.append((endpoint.name or endpoint.route, path))
        if endpoint.name == "events:detail":
            # Every tab of the event details is a page of its own to the analyst.
            pages += [(f"events:detail:{tab}", f"{path}?tab={tab}") for tab, _ in DETAIL_TABS]
    return sorted(set(pages))


@pytest.fixture
def demo_like(tenancy):
    """A sample object of every kind in account A, and an event with the long,
    attacker-written values and the traced logs that stretch pages."""
    objects = make_objects_of_account_a(
        tenancy, create_api_key(organisation=tenancy.org, account=None, name="walk")
    )
    account = tenancy.account_a
    web = factories.make_asset(account, uuid="host-web-01", name="web-01")
    web_exploit_logs(account, web)
    log(account, web, LogType.FILE, 6, path=LONG_VALUE, operation="write", pid=3003)
    event = SecurityEvent.objects.get(pk=objects[SecurityEvent].pk)
    alert_in(
        event,
        web,
        entity(
            account, EntityType.PROCESS, LONG_VALUE, pid=3003, path="/tmp/kw", cmdline=LONG_VALUE
        ),
        entity(account, EntityType.FILE, LONG_VALUE, path=LONG_VALUE),
        entity(account, EntityType.IP, "203.0.113.5"),
    )
    alert_in(event, web, entity(account, EntityType.PAYLOAD, LONG_VALUE), source=AlertSource.WAF)
    return objects


def log_in(page):
    page.goto(reverse("login"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_it_shows_every_page_whole_at_1024_and_1280_pixels(
    browser, live_server, fast_password_hashing, demo_like
):
    attacker = Entity.digest_for(EntityType.IP, "203.0.113.5")
    pages = console_pages(demo_like, {"entity_type": EntityType.IP, "digest": attacker})
    assert len(pages) > 20, pages
    target = RESULTS_DIR / "walk"
    target.mkdir(parents=True, exist_ok=True)
    problems = {}
    visited = set()
    errors = []
    for width in WIDTHS:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": HEIGHT}
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page)
        for name, path in pages:
            response = page.request.get(path, max_redirects=0)
            is_page = (
                response.status == 200
                and response.headers.get("content-type", "").startswith("text/html")
                and "<!doctype html>" in response.text()[:200].lower()
            )
            if not is_page:
                continue
            visited.add(name)
            errors.clear()
            page.goto(path)
            page.wait_for_load_state("networkidle")
            label = re.sub(r"\W+", "-", name).strip("-")
            page.screenshot(path=str(target / f"{width}-{label}.png"), full_page=True)
            found = page.evaluate(CUT_OFF) + [f"script error: {error}" for error in errors]
            if found:
                problems[f"{width}px {path}"] = found
        context.close()

    assert {
        "home",
        "events:list",
        "events:detail",
        "alerts:list",
        "disposal:center",
        "disposal:entity",
        "events:detail:tracing",
    } <= visited
    assert not problems, "\n".join(f"{where}: {found}" for where, found in problems.items())
