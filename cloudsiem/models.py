"""AccessKey pairs of the cloud SIEM compatible API.

A pair belongs to one user and acts with that user's scope. The client signs
each request with the secret (ACS3-HMAC-SHA256), so the server needs the
secret itself, not a digest: it is kept encrypted (``secops.crypto``).
"""

from django.conf import settings
from django.db import models


class AccessKeyQuerySet(models.QuerySet):
    def of_user(self, user):
        """The caller's own keys: an AccessKey is personal, nobody else sees it."""
        return self.filter(user_id=user.pk)

    def active(self):
        return self.filter(revoked_at__isnull=True)


class AccessKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    access_key_id = models.CharField(max_length=32, unique=True, help_text="Public part.")
    secret_encrypted = models.TextField(help_text="The secret, encrypted with secops.crypto.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccessKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.access_key_id} of {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
