"""The HTTP API root: authentication by API key and the routers of each app.

OpenAPI document: /api/v1/openapi.json, browsable at /api/v1/docs; both only
for a logged-in console user or an API key.
"""

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from ninja import Field, NinjaAPI, Schema, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.openapi.views import openapi_json
from ninja.security import HttpBearer

from secops import services
from secops.api_common import FieldsRefused
from secops.models import Account


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``; puts the key's scope on ``request.scope``."""

    def authenticate(self, request, token):
        api_key = services.authenticate_api_key(token)
        if api_key is None:
            return None
        request.api_key = api_key
        request.scope = services.scope_for_api_key(api_key)
        return api_key


def _for_console_users_and_api_keys(docs_view):
    """The API's description is for those who may use the API: a console session
    or a valid API key. Anyone else is sent to the login page (the docs page) or
    answered 401 (the OpenAPI document, read by programs)."""

    @functools.wraps(docs_view)
    def view(request, *args, **kwargs):
        if request.user.is_authenticated or ApiKeyAuth()(request) is not None:
            return docs_view(request, *args, **kwargs)
        if docs_view.func is openapi_json:
            response = JsonResponse(
                {"detail": "Log in to the console or send an API key as `Bearer <key>`."},
                status=401,
            )
            response["WWW-Authenticate"] = "Bearer"
            return response
        return redirect_to_login(request.get_full_path())

    return view


api = NinjaAPI(
    title="SecOps Console API",
    version="1",
    urls_namespace="api",
    auth=ApiKeyAuth(),
    # With "ninja" in INSTALLED_APPS, Swagger UI comes from our static files.
    # validatorUrl: no badge fetched from validator.swagger.io.
    docs=Swagger(settings={"validatorUrl": None}),
    docs_decorator=_for_console_users_and_api_keys,
    description="Everything the console does: ingestion of alerts and logs, API keys, "
    "security events (with the list page's filters, details, alerts, timeline, tracing "
    "graph, handling and its message preview, Add to Whitelist, Excel exports, bulk "
    "handling), alerts and entities, aggregation rules and Sigma detection rules, whitelist "
    "rule groups, the Disposal Center, connector settings, the simulated cloud's failure "
    "instructions, playbooks and automated response rules, and the audit log (read only). "
    "Authenticate with an API key (`manage.py create_api_key`, or the Data Sources page) "
    "as `Authorization: Bearer <key>`. Long lists (events, alerts, entities) are read with "
    "cursors: pass each answer's `next_cursor` as `cursor`; other lists take `limit` and "
    "`offset` and give their total in the `X-Total-Count` header.",
)


@api.exception_handler(AuthenticationError)
def _unauthorised(request, exc):
    return api.create_response(
        request, {"detail": "Missing, unknown or revoked API key."}, status=401
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    # The scope's checks (``secops.scope.require``, ``get_for_change_or_404``)
    # refuse with PermissionDenied, as for the pages.
    return api.create_response(request, {"detail": str(exc) or "Not permitted."}, status=403)


@api.exception_handler(FieldsRefused)
def _fields_refused(request, exc):
    return api.create_response(request, {"errors": exc.errors}, status=422)


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


class AccountOut(Schema):
    id: int = Field(description="What the pages' account filters take (account=ID).")
    uid: str
    name: str
    home_region: str
    managed: bool = Field(description="Part of the organisation's Global Account View.")


@api.get("/accounts", response=list[AccountOut], tags=["accounts"])
def list_accounts(request):
    """The accounts the key reaches."""
    return list(Account.objects.in_scope(request.scope).order_by("name", "id"))


def _add_routers():
    from alerts.api import router as ingestion_router
    from alerts.detection_api import router as detection_router
    from disposal.api import router as handling_router
    from disposal.connector_api import router as connector_router
    from events.api import router as events_router
    from secops.audit_api import router as audit_router
    from soar.api import router as soar_router
    from soar.bulk_api import router as bulk_router
    from whitelist.api import router as whitelist_router

    api.add_router("/", ingestion_router)
    api.add_router("/", detection_router)
    api.add_router("/", events_router)
    api.add_router("/", whitelist_router)
    api.add_router("/", handling_router)
    api.add_router("/", connector_router)
    api.add_router("/", soar_router)
    api.add_router("/", bulk_router)
    api.add_router("/", audit_router)


_add_routers()


def urlpatterns():
    """The API's URL patterns, exempt from the console's login requirement
    (they authenticate with API keys instead)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns, app_name, namespace
