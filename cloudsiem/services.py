"""AccessKey pairs: creating (the secret is returned once), finding the secret
that verifies a request, revoking."""

import secrets
import string
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from cloudsiem.models import AccessKey
from secops import audit, crypto
from secops.models import AuditAction

ID_PREFIX = "SOAK"
_ALPHABET = string.ascii_letters + string.digits


class AccessKeyError(Exception):
    """A key that cannot be made; the message says why."""


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def create_access_key(user, *, name: str = "") -> tuple[AccessKey, str]:
    """A new pair for ``user``; returns it and the only plain copy of the secret."""
    if not user.is_active:
        raise AccessKeyError(f"User {user.get_username()!r} is inactive.")
    # 30 characters of 62 symbols: about 178 bits, like the cloud's own secrets.
    secret = _random(30)
    with transaction.atomic():
        key = AccessKey.objects.create(
            user=user,
            name=name.strip()[:100],
            access_key_id=ID_PREFIX + _random(20).upper(),
            secret_encrypted=crypto.encrypt(secret),
        )
        audit.record(
            AuditAction.ACCESS_KEY_CREATE,
            target=key,
            target_type="access_key",
            target_label=key.access_key_id,
            organisation=audit.organisation_of_user(user),
            changes=audit.changes_between(
                None, {"name": key.name, "access_key_id": key.access_key_id, "user": user.username}
            ),
        )
    return key, secret


def create_access_key_for_username(username: str, *, name: str = "") -> tuple[AccessKey, str]:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise AccessKeyError(f"No user named {username!r}.")
    return create_access_key(user, name=name)


def find_key(access_key_id: str) -> AccessKey | None:
    """The key (active or revoked) named by a request's Credential, or None."""
    if not access_key_id or len(access_key_id) > 32:
        return None
    return AccessKey.objects.select_related("user").filter(access_key_id=access_key_id).first()


def secret_of(key: AccessKey) -> str:
    return crypto.decrypt(key.secret_encrypted)


def record_use(key: AccessKey) -> None:
    now = timezone.now()
    # One write a minute at most: the column is informational.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        AccessKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def get_own_key_or_404(user, key_id) -> AccessKey:
    """One of the user's own keys; anyone else's does not exist (404)."""
    try:
        return AccessKey.objects.of_user(user).get(id=key_id)
    except (AccessKey.DoesNotExist, ValueError, TypeError):
        raise Http404("No AccessKey matches the given query.") from None


def revoke(key: AccessKey) -> None:
    now = timezone.now()
    with transaction.atomic():
        if AccessKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
            audit.record(
                AuditAction.ACCESS_KEY_REVOKE,
                target=key,
                target_type="access_key",
                target_label=key.access_key_id,
                organisation=audit.organisation_of_user(key.user),
                changes={"revoked_at": [None, now]},
            )
