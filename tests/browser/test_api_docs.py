"""The API docs render in a real browser with no network beyond the console:
Swagger UI comes from our static files and runs under the Content-Security-Policy."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import test_csp
from tests.browser.test_csp import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The same fixture as the other pages': CSP violations, console errors, exceptions.
problems = test_csp.problems


@pytest.fixture
def outside_requests(page, live_server):
    """Requests to anywhere but the console, refused as if the host were offline."""
    console_host = urlsplit(live_server.url).netloc
    refused = []

    def offline(route):
        if urlsplit(route.request.url).netloc == console_host:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", offline)
    return refused


def test_it_renders_the_docs_offline_under_the_policy(
    page,
    problems,
    outside_requests,
    tenancy,
    screenshot,
):
    page.goto("/api/v1/docs")
    expect(page.get_by_label("Username")).to_be_visible()
    log_in(page)

    page.goto("/api/v1/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SecOps Console API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/alerts")
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot("swagger")

    assert outside_requests == []
    assert not problems, "\n".join(problems)
