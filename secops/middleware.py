from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.utils.log import log_response

from secops import errors
from secops.scope import NotInScope, Scope
from secops.services import build_scope


class ScopeMiddleware:
    """Puts the user's view scope on ``request.scope`` (empty for anonymous users)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            request.scope = build_scope(request.user, request.session)
        else:
            request.scope = Scope.empty()
        return self.get_response(request)


class ErrorPageMiddleware:
    """Answers errors raised by views with the console's pages (``secops.errors``).

    An object that is outside the view but in another view the user may switch
    to gets the page that offers the switch; with DEBUG off, everything else is
    left to Django, which calls the same handlers (``handler404`` ... in
    ``secops.urls``). With DEBUG on (``make run``) Django would show its debug
    pages instead; this shows the console's pages there too, unless
    ``DEBUG_ERROR_PAGES`` asks for Django's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # No view matched the address: Django answered before any view ran, so
        # process_exception never saw it.
        if (
            response.status_code == 404
            and request.resolver_match is None
            and _replace_debug_pages()
        ):
            return errors.page_not_found(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, NotInScope):
            response = errors.in_another_view(request, exception)
            if response is not None:
                return response
        if not _replace_debug_pages():
            return None
        if isinstance(exception, Http404):
            return errors.page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            response = errors.permission_denied(request, exception)
        elif isinstance(exception, BadRequest | SuspiciousOperation):
            response = errors.bad_request(request, exception)
        else:
            signals.got_request_exception.send(sender=None, request=request)
            response = errors.server_error(request)
        # Logged as Django logs what it turns into a response itself, traceback
        # included (a refusal is shortened by secops.logging_filters).
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            exception=exception,
        )
        return response


def _replace_debug_pages() -> bool:
    return settings.DEBUG and not settings.DEBUG_ERROR_PAGES
