"""The console's 400, 403, 404 and 500 pages: in the console's layout, saying
what happened and what to do, as a fragment for htmx, and under DEBUG too
unless DEBUG_ERROR_PAGES asks for Django's debug pages."""

import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client, RequestFactory, override_settings
from django.urls import include, path, reverse

from secops import errors
from tests import factories

HTMX = {"HX-Request": "true"}
WHITELIST_REFUSAL = "Only administrators can change whitelist rules."


def _fails(request):
    raise RuntimeError("the database fell over")


def _refuses(request):
    raise PermissionDenied


def _not_there(request):
    raise Http404("No widget matches the given query.")


# The project's URLs with views that fail, and the project's error handlers.
urlpatterns = [
    path("fails/", _fails),
    path("refuses/", _refuses),
    path("not-there/", _not_there),
    path("", include("secops.urls")),
]
handler400 = "secops.errors.bad_request"
handler403 = "secops.errors.permission_denied"
handler404 = "secops.errors.page_not_found"
handler500 = "secops.errors.server_error"
FAILING_URLS = override_settings(ROOT_URLCONF=__name__)


def test_it_answers_an_unknown_address_with_the_consoles_404_page(tenancy):
    response = tenancy.client_for(tenancy.bob).get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="error-page"' in html and "Page not found" in html
    assert 'aria-label="Main"' in html, "not in the console's layout"
    assert "Check the link" in html


def test_it_shows_the_404_page_to_a_visitor_without_the_menu(db):
    response = Client().get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'aria-label="Main"' not in html


def test_it_says_the_same_for_an_object_that_does_not_exist(tenancy):
    client = tenancy.client_for(tenancy.bob)

    response = client.get(reverse("events:detail", args=[987654]))

    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and "security event" not in html


def test_it_names_nothing_of_another_organisation_to_an_outsider(tenancy):
    event = factories.make_event(tenancy.account_a, name="Webshell on Acme Prod")

    response = tenancy.client_for(tenancy.charlie).get(reverse("events:detail", args=[event.id]))

    assert response.status_code == 404
    assert "Acme" not in response.content.decode()


def test_it_says_why_a_permission_is_refused(tenancy):
    response = tenancy.client_for(tenancy.bob).get(reverse("whitelist:group_create"))

    assert response.status_code == 403
    html = response.content.decode()
    assert WHITELIST_REFUSAL in html and "Not allowed" in html
    assert 'aria-label="Main"' in html


@override_settings(ROOT_URLCONF=__name__)
def test_it_explains_a_refusal_that_gives_no_reason(tenancy):
    response = tenancy.client_for(tenancy.bob).get("/refuses/")

    assert response.status_code == 403
    assert errors.PAGES[403].explanation in response.content.decode()


def test_it_answers_htmx_with_the_message_alone_marked_for_swapping(tenancy):
    response = tenancy.client_for(tenancy.bob).get(reverse("whitelist:group_create"), headers=HTMX)

    assert response.status_code == 403
    assert response[errors.ERROR_FRAGMENT_HEADER] == "true"
    html = response.content.decode()
    assert "<html" not in html and WHITELIST_REFUSAL in html
    assert 'class="card error-page"' in html
    assert "HX-Request" in response["Vary"]


def test_it_answers_a_history_restore_with_the_whole_page(tenancy):
    response = tenancy.client_for(tenancy.bob).get(
        "/no/such/page/", headers={**HTMX, "HX-History-Restore-Request": "true"}
    )

    assert "<html" in response.content.decode()
    assert errors.ERROR_FRAGMENT_HEADER not in response


def test_it_answers_a_refused_form_with_what_to_do(tenancy):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenancy.bob)

    response = client.post(reverse("change_scope"), {"region": "cn"})

    assert response.status_code == 403
    assert "Reload the page and send it again" in response.content.decode()


def test_it_answers_a_bad_request_without_echoing_it(db):
    response = Client().get("/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    html = response.content.decode()
    assert "Bad request" in html and "evil.example" not in html


@FAILING_URLS
def test_it_answers_an_error_with_the_500_page(tenancy):
    client = tenancy.client_for(tenancy.bob)
    client.raise_request_exception = False

    response = client.get("/fails/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "tell your administrator" in html
    assert "the database fell over" not in html


@FAILING_URLS
def test_it_answers_an_htmx_error_with_the_500_message_alone(tenancy):
    client = tenancy.client_for(tenancy.bob)
    client.raise_request_exception = False

    response = client.get("/fails/", headers=HTMX)

    assert response.status_code == 500
    assert response[errors.ERROR_FRAGMENT_HEADER] == "true"
    assert "<html" not in response.content.decode()


def test_the_500_page_needs_neither_the_database_nor_the_session():
    # No database fixture: any query here fails the test.
    request = RequestFactory().get("/events/")

    response = errors.server_error(request)

    assert response.status_code == 500
    html = response.content.decode()
    assert "<html" in html and "Something went wrong" in html


# --- under DEBUG (make run) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/no/such/page/", 404, "Page not found"),
        ("/not-there/", 404, "Page not found"),
        ("/refuses/", 403, "Not allowed"),
        ("/fails/", 500, "Something went wrong"),
    ],
)
@override_settings(ROOT_URLCONF=__name__, DEBUG=True, DEBUG_ERROR_PAGES=False)
def test_it_shows_the_consoles_pages_under_debug(tenancy, url, status, text):
    client = tenancy.client_for(tenancy.bob)
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code == status
    html = response.content.decode()
    assert text in html and 'data-testid="error-page"' in html
    assert "Traceback" not in html and "URLconf" not in html


@override_settings(ROOT_URLCONF=__name__, DEBUG=True, DEBUG_ERROR_PAGES=False)
def test_it_logs_an_error_under_debug_with_its_traceback(tenancy, caplog):
    client = tenancy.client_for(tenancy.bob)
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="django.request"):
        client.get("/fails/")

    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info and "the database fell over" in str(record.exc_info[1])


@pytest.mark.parametrize(
    ("url", "debug_text"),
    [
        ("/no/such/page/", "URLconf"),
        ("/fails/", "Traceback"),
    ],
)
@override_settings(ROOT_URLCONF=__name__, DEBUG=True, DEBUG_ERROR_PAGES=True)
def test_it_leaves_djangos_debug_pages_when_asked(tenancy, url, debug_text):
    client = tenancy.client_for(tenancy.bob)
    client.raise_request_exception = False

    response = client.get(url)

    assert debug_text in response.content.decode()
    assert 'data-testid="error-page"' not in response.content.decode()
