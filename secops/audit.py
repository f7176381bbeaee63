"""The audit log: who did what, when, from where, and what changed.

The services of every app call ``record`` for the actions the log keeps
(handling, rule and whitelist changes, playbooks and automated rules, keys,
view switches); the login signals are connected in ``SecopsConfig.ready``.
An entry is written in the caller's transaction, so a change that is refused
or rolled back leaves none.

Who acted comes, in this order, from an ``actor`` the caller names, from the
automation that is acting (``acting_as_automation``: an automated response
rule or a playbook run on a worker), from the ``cause`` of an event change,
and otherwise from the request being answered, which ``AuditContextMiddleware``
keeps in a context variable (the console user, or the API key). Anything else
is the system (a management command, a periodic job).
"""

import contextlib
import contextvars
import ipaddress
import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from secops.login_throttling import client_ip_address
from secops.models import (
    Account,
    ActorKind,
    ApiKey,
    AuditAction,
    AuditEntry,
    Organisation,
    OrganisationMembership,
)

MAX_USER_AGENT = 500
MAX_REQUEST_ID = 64
MAX_LABEL = 300
# The header a reverse proxy (or the client) names the request with; the
# request's own ``request_id`` attribute wins when something set it.
REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"

_request: contextvars.ContextVar = contextvars.ContextVar("audit_request", default=None)
_automation: contextvars.ContextVar = contextvars.ContextVar("audit_automation", default=None)


class AuditContextMiddleware:
    """Keeps the request being answered in a context variable for ``record``.

    First in ``MIDDLEWARE``, so that every later layer (the cloud SIEM API's
    middleware included) runs inside it. The user is read from the request
    only when an entry is written, after authentication has happened."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextlib.contextmanager
def acting_as_automation(label: str):
    """What is recorded inside this block was done by the automation named
    ``label`` (e.g. ``automated rule "Block scanners"``), whoever's request or
    worker runs it."""
    token = _automation.set(label[:200])
    try:
        yield
    finally:
        _automation.reset(token)


@contextlib.contextmanager
def request_context(request):
    """Record inside this block as if answering ``request`` (for requests that
    do not pass through the middleware, such as tests of services)."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def current_request():
    return _request.get()


# --- who ------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    kind: str
    name: str
    user: object = None


def _user_actor(user) -> Actor:
    return Actor(ActorKind.USER, user.get_username(), user)


def _api_key_actor(api_key) -> Actor:
    return Actor(ActorKind.API_KEY, f"API key {api_key.name} ({api_key.prefix}…)")


def _cause_actor(cause) -> Actor | None:
    """The actor of an event change's cause (``events.feed.Cause``, read by
    its fields: the core does not import the events app)."""
    if cause is None:
        return None
    if getattr(cause, "user", None) is not None:
        return _user_actor(cause.user)
    kind, ref = str(cause.kind), cause.ref or ""
    if kind == "api_key":
        what, _, number = ref.partition(":")
        if what == "api_key" and number.isdigit():
            api_key = ApiKey.objects.filter(pk=number).first()
            if api_key is not None:
                return _api_key_actor(api_key)
        if what == "bulk":
            return Actor(ActorKind.API_KEY, f"API key of bulk handling job {number}")
        return None
    if kind in ("automated_rule", "playbook_run"):
        return Actor(ActorKind.AUTOMATION, ref or kind)
    if kind == "system":
        return Actor(ActorKind.SYSTEM, f"system: {ref}" if ref else "system")
    return None


def _request_actor(request) -> Actor | None:
    if request is None:
        return None
    api_key = getattr(request, "api_key", None)
    if api_key is not None:
        return _api_key_actor(api_key)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return _user_actor(user)
    return None


def _resolve_actor(actor, cause, request) -> Actor:
    if actor is not None:
        return _user_actor(actor)
    automation = _automation.get()
    if automation is not None:
        return Actor(ActorKind.AUTOMATION, automation)
    return _cause_actor(cause) or _request_actor(request) or Actor(ActorKind.SYSTEM, "system")


# --- from where -----------------------------------------------------------------


def _text(value, limit: int) -> str:
    """Text as a column takes it: PostgreSQL refuses NUL characters, which a
    client may put in a header."""
    return str(value or "").replace("\x00", "")[:limit]


def _address(request) -> str | None:
    """The client's address, or None when what the headers give is no address
    (a forged X-Forwarded-For must not make the entry, and the change, fail)."""
    try:
        return str(ipaddress.ip_address(client_ip_address(request) or ""))
    except ValueError:
        return None


def _request_fields(request) -> dict:
    if request is None:
        return {"source_address": None, "user_agent": "", "request_id": ""}
    request_id = getattr(request, "request_id", None) or request.META.get(REQUEST_ID_HEADER, "")
    return {
        "source_address": _address(request),
        "user_agent": _text(request.META.get("HTTP_USER_AGENT"), MAX_USER_AGENT),
        "request_id": _text(request_id, MAX_REQUEST_ID),
    }


# --- what changed ---------------------------------------------------------------


def _plain(value):
    """``value`` as JSON can hold it (dates as ISO text, objects by primary key)."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)
    return _without_nul(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def _without_nul(value):
    """JSON without NUL characters, which PostgreSQL's jsonb cannot hold."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def snapshot(obj, fields) -> dict:
    """The values of ``fields`` of ``obj``, as ``changes_between`` compares them."""
    values = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, models.Model):
            value = value.pk
        values[name] = _plain(value)
    return values


def changes_between(before: dict | None, after: dict | None) -> dict:
    """``{field: [before, after]}`` for every field whose value differs. A
    creation has no ``before`` (each field is ``[None, value]``), a deletion
    no ``after``."""
    before, after = before or {}, after or {}
    changes = {}
    for name in [*before, *(n for n in after if n not in before)]:
        old, new = _plain(before.get(name)), _plain(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


# --- writing --------------------------------------------------------------------


def organisation_of_user(user) -> int | None:
    return (
        OrganisationMembership.objects.filter(user=user)
        .values_list("organisation_id", flat=True)
        .first()
    )


def _organisation_id(organisation, account, actor: Actor):
    if organisation is not None:
        return organisation.pk if isinstance(organisation, Organisation) else organisation
    if isinstance(account, Account):
        return account.organisation_id
    if account is not None:
        return Account.objects.filter(pk=account).values_list("organisation_id", flat=True).first()
    if actor.user is not None:
        return organisation_of_user(actor.user)
    return None


def record(
    action: str,
    *,
    target=None,
    target_type: str = "",
    target_id="",
    target_label: str = "",
    organisation=None,
    account=None,
    changes: dict | None = None,
    details: dict | None = None,
    actor=None,
    cause=None,
) -> AuditEntry:
    """Write one entry. ``target`` (a model instance) fills the target's type,
    id and label unless they are given. ``organisation`` and ``account`` may be
    objects or ids; without an organisation, the account's or the actor's is
    used. ``actor`` names a user explicitly; ``cause`` is an event change's
    cause. ``changes`` is ``{field: [before, after]}`` (``changes_between``)."""
    if action not in AuditAction.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    request = _request.get()
    who = _resolve_actor(actor, cause, request)
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or target.pk
        target_label = target_label or str(target)
    account_id = account.pk if isinstance(account, Account) else account
    return AuditEntry.objects.create(
        when=timezone.now(),
        actor=who.user,
        actor_name=_text(who.name, 200),
        actor_kind=who.kind,
        organisation_id=_organisation_id(organisation, account, who),
        account_id=account_id,
        action=action,
        target_type=_text(target_type, 64),
        target_id=_text(target_id, 64),
        target_label=_text(target_label, MAX_LABEL),
        changes=_plain(changes or {}),
        details=_plain(details or {}),
        **_request_fields(request),
    )


# --- logins (connected in SecopsConfig.ready) -------------------------------------


def _with_request(request):
    """The signal's request for the entry, when the middleware did not set it."""
    return request_context(request) if request is not None else contextlib.nullcontext()


def on_login(sender, request, user, **kwargs):
    with _with_request(request):
        record(AuditAction.LOGIN_SUCCESS, actor=user, target=user, target_type="user")


def on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with _with_request(request):
        record(AuditAction.LOGOUT, actor=user, target=user, target_type="user")


def on_login_failed(sender, credentials, request=None, **kwargs):
    """A refused login (a wrong password, an unknown user, or a lockout by
    django-axes). The username tried is kept; the password never is (Django
    hands the signal cleansed credentials)."""
    from django.contrib.auth import get_user_model

    username = _text(credentials.get("username"), 150)
    user = get_user_model().objects.filter(username=username).first() if username else None
    organisation_id = organisation_of_user(user) if user is not None else None
    with _with_request(request):
        entry_request = _request.get()
        AuditEntry.objects.create(
            when=timezone.now(),
            actor=user,
            actor_name=username or "(no username)",
            actor_kind=ActorKind.ANONYMOUS,
            organisation_id=organisation_id,
            action=AuditAction.LOGIN_FAILURE,
            target_type="user",
            target_id=str(user.pk) if user is not None else "",
            target_label=username,
            details={"known_user": user is not None},
            **_request_fields(entry_request),
        )
