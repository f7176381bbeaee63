"""Business operations of the tenancy core: provisioning and scope selection."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from secops import audit
from secops.enums import RegionGroup, Role, View
from secops.models import (
    Account,
    AccountMembership,
    ApiKey,
    AuditAction,
    Organisation,
    OrganisationMembership,
)
from secops.scope import Scope, get_for_change_or_404, require

SESSION_VIEW = "scope.view"
SESSION_ACCOUNT = "scope.account_id"
SESSION_REGION = "scope.region"


class ProvisioningError(Exception):
    """A provisioning request that cannot be carried out; the message says why."""


# --- who may see what ---------------------------------------------------------


def organisation_membership(user) -> OrganisationMembership | None:
    if not user.is_authenticated:
        return None
    try:
        return user.organisation_membership
    except OrganisationMembership.DoesNotExist:
        return None


def selectable_accounts(user):
    """Accounts the user may pick in the Current Account View."""
    membership = organisation_membership(user)
    if membership is None:
        return Account.objects.none()
    accounts = Account.objects.filter(organisation_id=membership.organisation_id)
    if membership.is_global_admin:
        return accounts
    return accounts.filter(memberships__user=user)


def can_use_global_view(user) -> bool:
    membership = organisation_membership(user)
    return bool(membership and membership.is_global_admin)


def _choosable_accounts(user) -> dict:
    """The accounts the user may pick, by id, with what a scope needs of them."""
    accounts = selectable_accounts(user).only("id", "name", "uid", "home_region", "managed")
    return {account.id: account for account in accounts}


def _permissions(user, membership) -> dict:
    permissions = {"organisation_admin": membership.is_global_admin}
    if not membership.is_global_admin:
        permissions["roles"] = frozenset(
            AccountMembership.objects.filter(user=user).values_list("account_id", "role")
        )
    return permissions


def _view_scope(membership, accounts: dict, permissions: dict, view, account_id, region) -> Scope:
    """The scope of one view: the Global Account View (every managed account)
    or the Current Account View of ``account_id``, in ``region``."""
    if view == View.GLOBAL:
        managed = frozenset(pk for pk, account in accounts.items() if account.managed)
        return Scope(
            organisation_id=membership.organisation_id,
            view=View.GLOBAL,
            account_id=None,
            account_ids=managed,
            region=region,
            **permissions,
        )
    return Scope(
        organisation_id=membership.organisation_id,
        view=View.CURRENT,
        account_id=account_id,
        account_ids=frozenset({account_id}),
        region=region,
        **permissions,
    )


def build_scope(user, session) -> Scope:
    """Read the scope stored in the session, falling back to valid choices.

    A stored value that is no longer allowed (membership removed, global admin
    right taken away) is silently replaced by the nearest allowed one, so the
    scope can never widen beyond what the user is entitled to.
    """
    membership = organisation_membership(user)
    if membership is None:
        return Scope.empty()
    accounts = _choosable_accounts(user)
    if not accounts:
        return Scope(organisation_id=membership.organisation_id)

    account_id = session.get(SESSION_ACCOUNT)
    if account_id not in accounts:
        account_id = min(accounts)
    region = session.get(SESSION_REGION)
    if region not in RegionGroup.values:
        region = accounts[account_id].home_region
    view = View.CURRENT
    if session.get(SESSION_VIEW) == View.GLOBAL and membership.is_global_admin:
        view = View.GLOBAL
    permissions = _permissions(user, membership)
    return _view_scope(membership, accounts, permissions, view, account_id, region)


@dataclass(frozen=True)
class ViewChoice:
    """A view the user may switch to, as ``change_scope`` takes it: the Current
    Account View of ``account`` or (``account`` None) the Global Account View,
    in ``region``."""

    view: str
    region: str
    account: Account | None = None

    @property
    def region_label(self) -> str:
        return RegionGroup(self.region).label


def views_showing(user, shows, current: Scope) -> list[ViewChoice]:
    """The views the user may switch to in which ``shows(scope)`` holds.

    At most two: the first Current Account View that shows it (accounts by
    name) and, for a global administrator, the Global Account View. Regions
    are tried with the current one first. Empty when no view of the user's
    shows it, so that the caller answers as if it did not exist.
    """
    membership = organisation_membership(user)
    if membership is None:
        return []
    accounts = _choosable_accounts(user)
    if not accounts:
        return []
    permissions = _permissions(user, membership)
    regions = sorted(RegionGroup.values, key=lambda region: region != current.region)
    # First one query per region over all the user's accounts at once: every
    # view's scope lies inside it, and most requests that end here are for
    # objects no view of the user's shows.
    regions = [
        region
        for region in regions
        if shows(
            Scope(
                organisation_id=membership.organisation_id,
                view=View.GLOBAL,
                account_ids=frozenset(accounts),
                region=region,
                **permissions,
            )
        )
    ]

    def first_region(view, account_id=None) -> str | None:
        for region in regions:
            scope = _view_scope(membership, accounts, permissions, view, account_id, region)
            if shows(scope):
                return region
        return None

    choices = []
    for account in sorted(accounts.values(), key=lambda account: (account.name, account.id)):
        if region := first_region(View.CURRENT, account.id):
            choices.append(ViewChoice(View.CURRENT, region, account))
            break
    if membership.is_global_admin and (region := first_region(View.GLOBAL)):
        choices.append(ViewChoice(View.GLOBAL, region))
    return choices


@dataclass
class ScopeChange:
    view: str | None = None
    account_id: int | None = None
    region: str | None = None


def change_scope(user, session, change: ScopeChange) -> list[str]:
    """Store a new view, account or region in the session. Returns error messages.
    What did change is written to the audit log."""
    keys = {"view": SESSION_VIEW, "account": SESSION_ACCOUNT, "region": SESSION_REGION}
    before = {name: session.get(key) for name, key in keys.items()}
    errors = []
    if change.view is not None:
        if change.view not in View.values:
            errors.append(f"Unknown view {change.view!r}.")
        elif change.view == View.GLOBAL and not can_use_global_view(user):
            errors.append("Only global administrators can use the Global Account View.")
        else:
            session[SESSION_VIEW] = change.view
    if change.account_id is not None:
        if not selectable_accounts(user).filter(id=change.account_id).exists():
            errors.append("You are not a member of that account.")
        else:
            session[SESSION_ACCOUNT] = change.account_id
            # Picking an account means working in that account.
            session[SESSION_VIEW] = View.CURRENT
    if change.region is not None:
        if change.region not in RegionGroup.values:
            errors.append(f"Unknown region {change.region!r}.")
        else:
            session[SESSION_REGION] = change.region
    changes = audit.changes_between(before, {name: session.get(key) for name, key in keys.items()})
    if changes:
        audit.record(
            AuditAction.VIEW_SWITCH,
            actor=user,
            account=None
            if session.get(SESSION_VIEW) == View.GLOBAL
            else session.get(SESSION_ACCOUNT),
            target_type="view",
            target_label=View(session.get(SESSION_VIEW) or View.CURRENT).label,
            changes=changes,
        )
    return errors


# --- provisioning -------------------------------------------------------------


def create_organisation(name: str) -> tuple[Organisation, bool]:
    name = name.strip()
    if not name:
        raise ProvisioningError("An organisation needs a name.")
    return Organisation.objects.get_or_create(name=name)


def get_organisation(name: str) -> Organisation:
    try:
        return Organisation.objects.get(name=name)
    except Organisation.DoesNotExist:
        raise ProvisioningError(f"No organisation named {name!r}.") from None


@transaction.atomic
def create_account(
    organisation: Organisation, *, uid: str, name: str, region: str, managed: bool = True
) -> tuple[Account, bool]:
    if region not in RegionGroup.values:
        raise ProvisioningError(f"Region must be one of {', '.join(RegionGroup.values)}.")
    if not uid.isdigit() or not 6 <= len(uid) <= 32:
        raise ProvisioningError(f"Account uid {uid!r} must be 6 to 32 digits.")
    existing = Account.objects.filter(uid=uid).first()
    if existing is not None:
        if existing.organisation_id != organisation.id:
            raise ProvisioningError(f"Account {uid} already belongs to another organisation.")
        changed = (existing.name, existing.home_region, existing.managed) != (name, region, managed)
        if changed:
            existing.name, existing.home_region, existing.managed = name, region, managed
            existing.save(update_fields=["name", "home_region", "managed"])
        return existing, False
    account = Account.objects.create(
        organisation=organisation, uid=uid, name=name, home_region=region, managed=managed
    )
    return account, True


def parse_membership(spec: str) -> tuple[str, str]:
    """``UID:ROLE`` as given on the command line."""
    uid, sep, role = spec.partition(":")
    if not sep or not uid or role not in Role.values:
        raise ProvisioningError(
            f"Membership {spec!r} must look like UID:ROLE with ROLE one of {', '.join(Role.values)}."
        )
    return uid, role


@transaction.atomic
def create_user(
    organisation: Organisation,
    *,
    username: str,
    password: str | None,
    memberships: list[tuple[str, str]] = (),
    global_admin: bool = False,
):
    """Create or update a user of the organisation. Idempotent.

    Memberships are added or their role updated; existing ones not named are
    kept. A password of None leaves an existing password unchanged.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        if not password:
            raise ProvisioningError("A new user needs a password.")
        user = User(username=username)
    else:
        current = organisation_membership(user)
        if current is not None and current.organisation_id != organisation.id:
            raise ProvisioningError(f"User {username!r} belongs to another organisation.")
    if password:
        user.set_password(password)
    user.save()

    OrganisationMembership.objects.update_or_create(
        user=user,
        defaults={"organisation": organisation, "is_global_admin": global_admin},
    )
    uids = [uid for uid, _ in memberships]
    accounts = {a.uid: a for a in Account.objects.filter(uid__in=uids)}
    for uid, role in memberships:
        account = accounts.get(uid)
        if account is None or account.organisation_id != organisation.id:
            raise ProvisioningError(f"No account {uid} in organisation {organisation.name!r}.")
        AccountMembership.objects.update_or_create(
            user=user, account=account, defaults={"role": role}
        )
    return user, created


# --- API keys -----------------------------------------------------------------

API_KEY_PREFIX = "sk"


# What the audit log keeps of a new key (never its digest).
API_KEY_FIELDS = ("name", "prefix", "account")


def _key_digest(key: str) -> str:
    # The secret has 256 bits of entropy, so a plain digest is enough; a slow
    # password hash would only slow down every API call.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    *, organisation: Organisation, account: Account | None, name: str, created_by=None
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the only copy of its secret."""
    if account is not None and account.organisation_id != organisation.id:
        raise ProvisioningError("The account belongs to another organisation.")
    name = name.strip() or "API key"
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organisation=organisation,
            account=account,
            name=name[:100],
            prefix=prefix,
            digest=_key_digest(key),
            created_by=created_by,
        )
        audit.record(
            AuditAction.API_KEY_CREATE,
            target=api_key,
            target_type="api_key",
            organisation=organisation,
            account=account,
            actor=created_by if getattr(created_by, "is_authenticated", False) else None,
            changes=audit.changes_between(None, audit.snapshot(api_key, API_KEY_FIELDS)),
        )
    return api_key, key


def create_api_key_in_scope(
    scope: Scope, *, account: Account | None, name: str, created_by=None
) -> tuple[ApiKey, str]:
    """A key made by someone of ``scope`` (the Data Sources page, the API): a key
    of an account for its administrators, an organisation key for global
    administrators. ``account`` is one of the scope's, read through it."""
    if account is None:
        require(
            scope.may_manage_organisation(),
            "Only global administrators can create keys of the whole organisation.",
        )
    else:
        require(scope.may_configure([account.id]), "Only administrators can create API keys.")
    organisation = Organisation.objects.get(id=scope.organisation_id)
    return create_api_key(
        organisation=organisation, account=account, name=name, created_by=created_by
    )


def authenticate_api_key(key: str) -> ApiKey | None:
    """The active key for a presented secret, or None. Records its last use."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    api_key = (
        ApiKey.objects.active()
        .select_related("organisation", "account")
        .filter(prefix=parts[1])
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.digest, _key_digest(key)):
        return None
    now = timezone.now()
    # One write a minute at most: the column is informational.
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def scope_for_api_key(api_key: ApiKey) -> Scope:
    """An account key administers its account; an organisation key is the
    organisation's global administrator."""
    if api_key.account_id is not None:
        return Scope.for_accounts(api_key.organisation_id, [api_key.account_id], role=Role.ADMIN)
    account_ids = Account.objects.filter(organisation_id=api_key.organisation_id).values_list(
        "id", flat=True
    )
    return Scope.for_accounts(
        api_key.organisation_id, account_ids, role=Role.ADMIN, organisation_admin=True
    )


def get_api_key_for_change_or_404(scope: Scope, key_id) -> ApiKey:
    """A key the scope may revoke: an account's key for its administrators, an
    organisation key for global administrators."""
    return get_for_change_or_404(
        ApiKey,
        scope,
        lambda s, key: (
            s.may_manage_organisation()
            if key.account_id is None
            else s.may_configure([key.account_id])
        ),
        "Only administrators can revoke API keys.",
        id=key_id,
    )


def revoke_api_key(api_key: ApiKey) -> None:
    now = timezone.now()
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if revoked:
            audit.record(
                AuditAction.API_KEY_REVOKE,
                target=api_key,
                target_type="api_key",
                organisation=api_key.organisation_id,
                account=api_key.account_id,
                changes={"revoked_at": [None, now]},
            )
