"""Secrets kept at rest: cloud credentials, webhook signing secrets, access keys.

They are encrypted with Fernet (AES-128-CBC with an HMAC-SHA256 tag) under a
key from the settings (``SECRETS_ENCRYPTION_KEY``; without it, a key derived
from ``SECRET_KEY``), so a copy of the database alone does not reveal them.
Several keys may be given, newest first: values are encrypted with the first
and decrypted with any, which is how the key is rotated.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "enc1:"


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts."""


def _fernet_key(material: str) -> bytes:
    """A Fernet key from any configured text: a Fernet key as is, else its digest."""
    try:
        raw = base64.urlsafe_b64decode(material.encode())
        if len(raw) == 32:
            return material.encode()
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


def _cipher() -> MultiFernet:
    keys = list(getattr(settings, "SECRETS_ENCRYPTION_KEYS", []) or [])
    if not keys:
        keys = ["secrets-at-rest:" + settings.SECRET_KEY]
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return PREFIX + _cipher().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise SecretUnreadable("The stored value is not an encrypted secret.")
    try:
        return _cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured SECRETS_ENCRYPTION_KEY; "
            "enter it again."
        ) from None
