"""Typed readers for settings that come from the environment.

Each helper fails loudly (ImproperlyConfigured naming the variable) on a value
it cannot read, so a typo in a deployment stops the process at start-up
instead of silently falling back to a default.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"Environment variable {name}={raw!r} is not an integer."
        ) from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={value} must be >= {minimum}.")
    return value


# Django signs sessions, password-reset links and messages with SECRET_KEY; a
# short key can be brute-forced offline from any signed value an attacker holds.
SECRET_KEY_MINIMUM_LENGTH = 50
_DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105


def env_secret_key(name: str, *, debug: bool, key_file: Path | None = None) -> str:
    """Django's signing key.

    Given, it must be at least ``SECRET_KEY_MINIMUM_LENGTH`` characters when
    DEBUG is off. Not given, ``key_file`` (passed for the embedded SQLite
    database) holds one made at random on first use, with DEBUG on or off: the
    web server of `make run` (DEBUG on) and the README's `manage.py` commands
    run afterwards (DEBUG off) then sign and encrypt stored secrets with the
    same key. Otherwise (PostgreSQL) a fixed development key stands in with
    DEBUG on, and with DEBUG off the key is required.
    """
    value = os.environ.get(name, "")
    if not value and key_file is not None:
        return _generated_secret_key(name, key_file)
    if debug:
        return value or _DEVELOPMENT_SECRET_KEY
    if not value:
        raise ImproperlyConfigured(
            f"Environment variable {name} is required when DEBUG is off "
            "(set DEBUG=true for local development)."
        )
    if len(value) < SECRET_KEY_MINIMUM_LENGTH:
        raise ImproperlyConfigured(
            f"Environment variable {name} is {len(value)} characters long; it must be at "
            f"least {SECRET_KEY_MINIMUM_LENGTH} random characters when DEBUG is off "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    return value


def _generated_secret_key(name: str, key_file: Path) -> str:
    """The key in ``key_file``, made first if the file does not exist yet."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked into place: processes
        # starting together (`make run` starts beat and the web server at once)
        # never read a half-written key, and the first link wins.
        draft = key_file.with_name(f".{key_file.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(SECRET_KEY_MINIMUM_LENGTH) + "\n")
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = key_file.read_text().strip()
    if len(key) < SECRET_KEY_MINIMUM_LENGTH:
        raise ImproperlyConfigured(
            f"{key_file} holds no usable {name} (fewer than {SECRET_KEY_MINIMUM_LENGTH} "
            f"characters): delete it to have a new one made, or set {name}."
        )
    return key


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_database(name: str, default: str) -> dict:
    import dj_database_url

    url = env_str(name, default)
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:  # unknown scheme, unparsable URL
        raise ImproperlyConfigured(
            f"Environment variable {name} is not a database URL: {exc}"
        ) from None
    if config.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise ImproperlyConfigured(
            f"Environment variable {name} must point at PostgreSQL (postgres://) "
            "or SQLite (sqlite:///path)."
        )
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, aware of the tables partitioned by time.
        config["ENGINE"] = "secops.postgresql"
    return config


_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "smtp+tls": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}


def env_email(name: str, default: str) -> dict:
    """Read an e-mail URL such as ``smtp+tls://user:pass@mail.example.com:587``.

    Returns the ``MAILERS`` setting it stands for (Django's mailer aliases).
    """
    url = env_str(name, default)
    parsed = urlparse(url)
    backend = _EMAIL_BACKENDS.get(parsed.scheme)
    if backend is None:
        raise ImproperlyConfigured(
            f"Environment variable {name}={url!r}: unknown scheme {parsed.scheme!r} "
            f"(use one of {', '.join(sorted(_EMAIL_BACKENDS))})."
        )
    options: dict = {}
    if backend.endswith("smtp.EmailBackend"):
        if not parsed.hostname:
            raise ImproperlyConfigured(f"Environment variable {name}: SMTP URL needs a host.")
        query = parse_qs(parsed.query)
        try:
            port = parsed.port
            timeout = int(query.get("timeout", ["10"])[0])
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable {name}: bad port or timeout."
            ) from None
        default_port = {"smtps": 465, "smtp+tls": 587}.get(parsed.scheme, 25)
        options = {
            "host": parsed.hostname,
            "port": port or default_port,
            "username": unquote(parsed.username or ""),
            "password": unquote(parsed.password or ""),
            "use_tls": parsed.scheme == "smtp+tls",
            "use_ssl": parsed.scheme == "smtps",
            "timeout": timeout,
        }
    return {"default": {"BACKEND": backend, "OPTIONS": options}}


def env_networks(name: str, default: list[str]) -> tuple:
    """A comma-separated list of IP addresses or CIDR ranges, as networks."""
    import ipaddress

    networks = []
    for value in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable {name}: {value!r} is not an IP address or CIDR range."
            ) from None
    return tuple(networks)
