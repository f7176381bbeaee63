"""The view scope: which accounts and which region a request may see.

Every read of tenant-owned data goes through ``Model.objects.in_scope(scope)``
or ``get_in_scope_or_404``. The scope is built once per request by
``secops.middleware.ScopeMiddleware`` (from the session) or by the API key
authentication (from the key), so views never filter by account by hand.
"""

from dataclasses import dataclass, field

from django.db import models
from django.http import Http404

from secops.enums import View


@dataclass(frozen=True)
class Scope:
    organisation_id: int | None
    view: str = View.CURRENT
    # The account chosen in the Current Account View (None in the global view).
    account_id: int | None = None
    account_ids: frozenset[int] = field(default_factory=frozenset)
    # A RegionGroup value, or None for "every region" (API keys, commands).
    region: str | None = None

    @property
    def is_global(self) -> bool:
        return self.view == View.GLOBAL

    @classmethod
    def empty(cls) -> "Scope":
        return cls(organisation_id=None)

    @classmethod
    def for_accounts(cls, organisation_id: int, account_ids) -> "Scope":
        """Every region of the given accounts: for API keys, commands and jobs."""
        return cls(
            organisation_id=organisation_id,
            view=View.GLOBAL,
            account_ids=frozenset(account_ids),
            region=None,
        )


class ScopedQuerySet(models.QuerySet):
    """Base queryset of every tenant-owned model.

    A model names the path to its account in ``scope_account_field`` and, when
    its rows belong to a region group, the field in ``scope_region_field``.
    """

    def in_scope(self, scope: Scope):
        account_field = getattr(self.model, "scope_account_field", "account")
        qs = self.filter(**{f"{account_field}_id__in": scope.account_ids})
        region_field = getattr(self.model, "scope_region_field", None)
        if region_field and scope.region:
            qs = qs.filter(**{region_field: scope.region})
        return qs


def get_in_scope_or_404(queryset_or_model, scope: Scope, **lookup):
    """Fetch one object inside the scope; anything outside it does not exist (404)."""
    if isinstance(queryset_or_model, type) and issubclass(queryset_or_model, models.Model):
        queryset = queryset_or_model._default_manager.all()
    else:
        queryset = queryset_or_model
    try:
        return queryset.in_scope(scope).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from None
