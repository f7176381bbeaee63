"""The console's error pages (400, 403, 404, 500) and the page that offers to
switch to the view an object is in.

Each page is shown in the console's layout and says what happened and what to
do. An htmx request gets the message alone, marked with
``ERROR_FRAGMENT_HEADER``: htmx swaps no error response by itself, so
static/js/console.js swaps marked ones into the panel that asked, instead of
leaving it blank.

Django calls these views (``handler400`` ... in ``secops.urls``) when DEBUG is
off; ``secops.middleware.ErrorPageMiddleware`` calls them when it is on too,
unless ``DEBUG_ERROR_PAGES`` asks for Django's debug pages.
"""

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme

from secops import services
from secops.scope import NotInScope

logger = logging.getLogger(__name__)

ERROR_FRAGMENT_HEADER = "X-Error-Fragment"
TEMPLATE = "errors/error.html"


@dataclass(frozen=True)
class ErrorPage:
    status: int
    title: str
    # What happened, when the error itself gives no better sentence.
    explanation: str
    # What the user can do about it.
    advice: str


PAGES = {
    400: ErrorPage(
        400,
        "Bad request",
        "The console could not understand this request.",
        "Go back, reload the page and try again.",
    ),
    403: ErrorPage(
        403,
        "Not allowed",
        "Your role in this view does not allow this.",
        "Ask an administrator of the account if you need it, or switch to an account "
        "where you hold that role.",
    ),
    404: ErrorPage(
        404,
        "Page not found",
        "There is nothing at this address that you can see.",
        "Check the link: it may be mistyped or out of date, or what it named has been "
        "removed. The menu leads to every page.",
    ),
    500: ErrorPage(
        500,
        "Something went wrong",
        "The console failed to answer this request. The error has been logged.",
        "Try again in a moment. If it happens again, tell your administrator what you did.",
    ),
}
CSRF_REFUSAL = (
    "The form was refused because it was out of date or came from another site. "
    "Reload the page and send it again."
)


def wants_fragment(request) -> bool:
    """An htmx request for a part of a page (not a history restore, which needs all of it)."""
    headers = request.headers
    return headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != (
        "true"
    )


def _finish(request, response: HttpResponse) -> HttpResponse:
    # Whether the page or the fragment comes back depends on this header.
    patch_vary_headers(response, ["HX-Request"])
    if wants_fragment(request):
        response[ERROR_FRAGMENT_HEADER] = "true"
    return response


def error_response(request, status: int, message: str = "") -> HttpResponse:
    """The console's page (or htmx fragment) for a 400, 403 or 404."""
    page = PAGES[status]
    template = f"{TEMPLATE}#message" if wants_fragment(request) else TEMPLATE
    context = {"error": page, "message": message or page.explanation}
    return _finish(request, render(request, template, context, status=status))


def bad_request(request, exception=None):
    # The exception's text may quote what the client sent (a host header, a
    # field count): it is logged, not shown.
    return error_response(request, 400)


def permission_denied(request, exception=None):
    # The reasons given to PermissionDenied (secops.scope.require and the
    # views) are written for the user: "Only administrators can ...".
    return error_response(request, 403, str(exception or ""))


def page_not_found(request, exception=None):
    # One body for every 404, whatever the exception says, so that a page of
    # another tenant cannot be told from a page that never existed.
    return error_response(request, 404)


def csrf_failure(request, reason=""):
    return error_response(request, 403, CSRF_REFUSAL)


def server_error(request):
    """The 500 page, rendered without the request: no context processor, no
    database and no session, any of which may be what failed."""
    page = PAGES[500]
    template = f"{TEMPLATE}#message" if wants_fragment(request) else TEMPLATE
    try:
        body = loader.get_template(template).render({"error": page, "message": page.explanation})
    except Exception:
        # Even the template could not be rendered (a missing static manifest
        # entry, a broken template): plain words still reach the user.
        logger.exception("The 500 page could not be rendered")
        body = f"<h1>{page.title}</h1><p>{page.explanation}</p><p>{page.advice}</p>"
    return _finish(request, HttpResponseServerError(body))


# --- an object in another view ------------------------------------------------------


def _same_site_path(request, url: str) -> str:
    """The path and query of ``url`` when it points at this site, else ""."""
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(url)
    if not parts.path.startswith("/"):
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _return_path(request) -> str:
    """Where the switch should lead: the page the user was opening.

    A page request comes back to its own address. A panel (htmx) cannot be
    opened alone, so the page around it is reloaded; a form sent from a page
    goes back to that page, as the switch cannot send the form again.
    """
    if wants_fragment(request):
        path = _same_site_path(request, request.headers.get("HX-Current-URL", ""))
    elif request.method in ("GET", "HEAD"):
        path = request.get_full_path()
    else:
        path = _same_site_path(request, request.headers.get("Referer", ""))
    return path or reverse("home")


def in_another_view(request, missing: NotInScope) -> HttpResponse | None:
    """The page that names the account an object is in and switches to it in one
    click, when a view the user may switch to shows the object; else None, and
    the caller answers 404 as for anything else that does not exist.

    The answer is a 404, as for every object outside the current scope: the
    page is not shown in this view, and scripts and link checkers must not
    take it for the object. Only its body differs, for the user who may see
    the object elsewhere: it offers the switch.
    """
    user = getattr(request, "user", None)
    scope = getattr(request, "scope", None)
    if user is None or scope is None or not user.is_authenticated:
        return None
    choices = services.views_showing(user, missing.found_in, scope)
    if not choices:
        return None
    context = {
        "label": missing.label,
        "choices": choices,
        "account_choice": next((c for c in choices if c.account is not None), None),
        "next": _return_path(request),
    }
    template = "errors/in_another_view.html"
    if wants_fragment(request):
        template += "#switch"
    response = render(request, template, context, status=404)
    add_never_cache_headers(response)
    return _finish(request, response)
