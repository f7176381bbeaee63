"""The view scope: which accounts and which region a request may see.

Every read of tenant-owned data goes through ``Model.objects.in_scope(scope)``
or ``get_in_scope_or_404``. The scope is built once per request by
``secops.middleware.ScopeMiddleware`` (from the session) or by the API key
authentication (from the key), so views never filter by account by hand.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404

from secops.enums import Role, View
from secops.tenancy import TenantQuerySet, has_organisation

# What each role may do, lowest first: a viewer reads, an analyst also handles
# events, an administrator also changes the account's configuration (whitelist,
# API keys, connectors). A global administrator is an administrator of every
# account and also manages the organisation (its rules, the Global Account View).
ROLE_RANK = {Role.VIEWER: 0, Role.ANALYST: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Scope:
    organisation_id: int | None
    view: str = View.CURRENT
    # The account chosen in the Current Account View (None in the global view).
    account_id: int | None = None
    account_ids: frozenset[int] = field(default_factory=frozenset)
    # A RegionGroup value, or None for "every region" (API keys, commands).
    region: str | None = None
    # (account id, Role) for every account the caller holds a role in.
    roles: frozenset[tuple[int, str]] = field(default_factory=frozenset)
    # A global administrator of the organisation, or an organisation API key.
    organisation_admin: bool = False

    # --- what the caller may do ---------------------------------------------------

    def role_in(self, account_id: int) -> str | None:
        if self.organisation_admin:
            return Role.ADMIN
        return dict(self.roles).get(account_id)

    def _holds(self, role: str, account_ids) -> bool:
        account_ids = self.account_ids if account_ids is None else set(account_ids)
        if not account_ids or not set(account_ids) <= self.account_ids:
            return False
        if self.organisation_admin:
            return True
        needed, held = ROLE_RANK[role], dict(self.roles)
        return all(ROLE_RANK.get(held.get(account_id), -1) >= needed for account_id in account_ids)

    def may_handle(self, account_ids=None) -> bool:
        """Handle events of these accounts (default: every account in scope)."""
        return self._holds(Role.ANALYST, account_ids)

    def may_configure(self, account_ids=None) -> bool:
        """Change the configuration of these accounts (default: every account in scope)."""
        return self._holds(Role.ADMIN, account_ids)

    def may_manage_organisation(self) -> bool:
        """Change what applies to the whole organisation."""
        return self.organisation_admin

    @property
    def is_global(self) -> bool:
        return self.view == View.GLOBAL

    @classmethod
    def empty(cls) -> "Scope":
        return cls(organisation_id=None)

    @classmethod
    def for_accounts(
        cls, organisation_id: int, account_ids, *, role: str | None = None, organisation_admin=False
    ) -> "Scope":
        """Every region of the given accounts: for API keys, commands and jobs.
        Without a ``role`` the scope may read only."""
        account_ids = frozenset(account_ids)
        return cls(
            organisation_id=organisation_id,
            view=View.GLOBAL,
            account_ids=account_ids,
            region=None,
            roles=frozenset((a, role) for a in account_ids) if role else frozenset(),
            organisation_admin=organisation_admin,
        )


class ScopedQuerySet(TenantQuerySet):
    """Base queryset of every tenant-owned model.

    A model names the path to its account in ``scope_account_field`` and, when
    its rows belong to a region group, the field in ``scope_region_field``.
    Rows are also held to the scope's organisation, on the model and on every
    table the account path joins, so that a query never reaches another
    organisation's rows (and runs on one node when distributed: docs/citus.md).
    """

    def in_scope(self, scope: Scope):
        account_field = getattr(self.model, "scope_account_field", "account")
        qs = self.filter(**{f"{account_field}_id__in": scope.account_ids})
        if scope.organisation_id is not None:
            qs = qs.filter(**organisation_filter(self.model, account_field, scope.organisation_id))
        region_field = getattr(self.model, "scope_region_field", None)
        if region_field and scope.region:
            qs = qs.filter(**{region_field: scope.region})
        return qs


def organisation_filter(model, path: str, organisation_id: int) -> dict:
    """``organisation_id`` lookups for ``model`` and each table that ``path``
    (``event__account``) joins on the way, where they carry an organisation."""
    lookups = {}
    prefix = ""
    current = model
    for name in ["", *path.split("__")[:-1]]:
        if name:
            current = current._meta.get_field(name).related_model
            prefix = f"{prefix}{name}__"
        if has_organisation(current):
            lookups[f"{prefix}organisation_id"] = organisation_id
    return lookups


class NotInScope(Http404):
    """No object matches the lookup inside the caller's scope.

    For the caller it does not exist (a 404), but it carries the query, so that
    the error page can ask whether another view the user may switch to (another
    account, region, or the Global Account View) shows it, and then offer that
    switch instead (``secops.errors``). ``covered(obj, scope)``, when given, is
    a further condition the object must meet in a scope, beyond ``in_scope``.
    """

    def __init__(self, queryset, lookup: dict, covered: Callable | None = None):
        super().__init__(f"No {queryset.model._meta.verbose_name} matches the given query.")
        self.queryset = queryset
        self.lookup = lookup
        self.covered = covered

    @property
    def label(self) -> str:
        return str(self.queryset.model._meta.verbose_name)

    def found_in(self, scope: Scope) -> bool:
        """Whether a caller with ``scope`` would get the object."""
        try:
            obj = self.queryset.in_scope(scope).filter(**self.lookup).first()
        except (ValueError, TypeError, ValidationError):
            return False
        return obj is not None and (self.covered is None or self.covered(obj, scope))


def _queryset(queryset_or_model):
    if isinstance(queryset_or_model, type) and issubclass(queryset_or_model, models.Model):
        return queryset_or_model._default_manager.all()
    return queryset_or_model


def get_in_scope_or_404(queryset_or_model, scope: Scope, **lookup):
    """Fetch one object inside the scope; anything outside it does not exist (404)."""
    queryset = _queryset(queryset_or_model)
    try:
        return queryset.in_scope(scope).get(**lookup)
    except queryset.model.DoesNotExist:
        raise NotInScope(queryset, lookup) from None
    except (ValueError, TypeError, ValidationError):
        # A malformed lookup names nothing, in any scope.
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from None


def get_for_change_or_404(queryset_or_model, scope: Scope, allowed, message: str, **lookup):
    """Fetch one object inside the scope to change it: outside the scope it does
    not exist (404); inside, ``allowed(scope, obj)`` decides, else 403 with
    ``message``. Always in this order, so a refusal never confirms that an
    object of another tenant exists."""
    obj = get_in_scope_or_404(queryset_or_model, scope, **lookup)
    if not allowed(scope, obj):
        raise PermissionDenied(message)
    return obj


def require(permitted: bool, message: str) -> None:
    """Refuse (403) an action the scope does not permit."""
    if not permitted:
        raise PermissionDenied(message)
