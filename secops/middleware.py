from secops.scope import Scope
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
