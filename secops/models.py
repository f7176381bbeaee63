"""The tenancy core: organisations, their cloud accounts and who may see them."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from secops.enums import RegionGroup, Role
from secops.scope import ScopedQuerySet


class Organisation(models.Model):
    """A customer. Owns cloud accounts; every user belongs to exactly one."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class AccountQuerySet(ScopedQuerySet):
    def in_scope(self, scope):
        return self.filter(id__in=scope.account_ids)


class Account(models.Model):
    """A cloud account (the product's "Alibaba Cloud account")."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="accounts"
    )
    uid = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(r"^\d{6,32}$", "An account uid is 6 to 32 digits.")],
    )
    name = models.CharField(max_length=200)
    home_region = models.CharField(max_length=8, choices=RegionGroup.choices)
    managed = models.BooleanField(
        default=True,
        help_text="Managed accounts make up the Global Account View of the organisation.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["organisation", "name"]

    def __str__(self):
        return f"{self.name} ({self.uid})"


class OrganisationMembership(models.Model):
    """Ties a user to their organisation; global administrators may use the global view."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organisation_membership"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="members")
    is_global_admin = models.BooleanField(default=False)

    def __str__(self):
        return f"{self.user} @ {self.organisation}"


class AccountMembership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANALYST)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="one_membership_per_account")
        ]

    def __str__(self):
        return f"{self.user} in {self.account} as {self.role}"


class ApiKeyQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """Keys of the scope's accounts, and organisation-wide keys for the global view."""
        keys = self.filter(organisation_id=scope.organisation_id)
        account_keys = Q(account_id__in=scope.account_ids)
        if scope.is_global:
            return keys.filter(account_keys | Q(account__isnull=True))
        return keys.filter(account_keys)

    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key for the HTTP API. Only a digest of the secret is stored.

    A key of an account sees that account; a key without one (an organisation
    key) sees every account of the organisation.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="api_keys"
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part, shown in lists.")
    digest = models.CharField(max_length=64, help_text="sha256 of the whole key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
