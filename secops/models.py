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


class AuditAction(models.TextChoices):
    """What an audit entry records. Grouped by the dotted prefix."""

    LOGIN_SUCCESS = "login.success", "Login"
    LOGIN_FAILURE = "login.failure", "Failed login"
    LOGOUT = "logout", "Logout"
    VIEW_SWITCH = "view.switch", "View switch"
    HANDLING_HANDLE = "handling.handle", "Event handled"
    HANDLING_STATUS = "handling.status", "Event status changed"
    HANDLING_RISK = "handling.risk", "Event risk changed"
    HANDLING_RETRY = "handling.retry", "Handling task retried"
    HANDLING_UNBLOCK = "handling.unblock", "Handling task unblocked"
    HANDLING_POLICY_EDIT = "handling.policy_edit", "Handling policy edited"
    WHITELIST_CREATE = "whitelist.create", "Whitelist group created"
    WHITELIST_UPDATE = "whitelist.update", "Whitelist group updated"
    WHITELIST_DELETE = "whitelist.delete", "Whitelist group deleted"
    WHITELIST_ENABLE = "whitelist.enable", "Whitelist group enabled or disabled"
    AGGREGATION_RULE_CREATE = "aggregation_rule.create", "Aggregation rule created"
    AGGREGATION_RULE_UPDATE = "aggregation_rule.update", "Aggregation rule updated"
    AGGREGATION_RULE_DELETE = "aggregation_rule.delete", "Aggregation rule deleted"
    AGGREGATION_RULE_ENABLE = "aggregation_rule.enable", "Aggregation rule enabled or disabled"
    DETECTION_RULE_CREATE = "detection_rule.create", "Sigma detection rule created"
    DETECTION_RULE_UPDATE = "detection_rule.update", "Sigma detection rule updated"
    DETECTION_RULE_DELETE = "detection_rule.delete", "Sigma detection rule deleted"
    DETECTION_RULE_ENABLE = "detection_rule.enable", "Sigma detection rule enabled or disabled"
    PLAYBOOK_CREATE = "playbook.create", "Playbook created"
    PLAYBOOK_UPDATE = "playbook.update", "Playbook updated"
    AUTOMATED_RULE_CREATE = "automated_rule.create", "Automated response rule created"
    AUTOMATED_RULE_UPDATE = "automated_rule.update", "Automated response rule updated"
    AUTOMATED_RULE_DELETE = "automated_rule.delete", "Automated response rule deleted"
    AUTOMATED_RULE_ENABLE = "automated_rule.enable", "Automated response rule enabled or disabled"
    AUTOMATION_PAUSE = "automation.pause", "Automation paused or resumed"
    API_KEY_CREATE = "api_key.create", "API key created"
    API_KEY_REVOKE = "api_key.revoke", "API key revoked"
    ACCESS_KEY_CREATE = "access_key.create", "AccessKey created"
    ACCESS_KEY_REVOKE = "access_key.revoke", "AccessKey revoked"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    AUTOMATION = "automation", "Automation"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class AuditEntryQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """An organisation administrator reads every entry of the organisation;
        an account administrator the entries of the accounts they administer."""
        if scope.organisation_id is None:
            return self.none()
        entries = self.filter(organisation_id=scope.organisation_id)
        if scope.organisation_admin:
            return entries
        administered = [
            account_id
            for account_id in scope.account_ids
            if scope.role_in(account_id) == Role.ADMIN
        ]
        return entries.filter(account_id__in=administered)


class AuditEntry(models.Model):
    """One thing someone (or the automation) did: who, when, from where and
    what changed. Written by ``secops.audit.record``; never changed afterwards
    (on PostgreSQL a trigger refuses UPDATE and DELETE)."""

    when = models.DateTimeField(db_index=True)
    # Set to NULL when the user is deleted: the one change the PostgreSQL
    # trigger lets through.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept as written: the user may be renamed or deleted later.
    actor_name = models.CharField(max_length=200)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    # No database constraint on the organisation and account: entries outlive
    # what they name.
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    source_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    # {field: [before, after]}
    changes = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-when", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The audit page: an organisation's entries, newest first.
            models.Index(fields=["organisation", "-when"], name="audit_org_when"),
        ]

    def __str__(self):
        return f"{self.when:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"
