"""How django-axes sees a login attempt: the client's address, and the page a
locked-out client gets (settings: "Login throttling")."""

import math

from django.conf import settings
from django.shortcuts import render


def client_ip_address(request) -> str | None:
    """The address failed logins are counted against.

    REMOTE_ADDR unless ``TRUSTED_PROXY_COUNT`` proxies stand in front of the
    console. Each of those appends the address it received the request from to
    X-Forwarded-For, so the entry that many places from the right was written
    by the outermost trusted proxy; everything left of it came from the client
    and may be forged.
    """
    remote_address = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote_address
    forwarded = [
        address.strip()
        for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address.strip()
    ]
    if len(forwarded) < proxies:
        # Reached the console without passing every trusted proxy.
        return remote_address
    return forwarded[-proxies]


def lockout_response(request, original_response=None, credentials=None):
    """The login page's answer while a username is locked out from this address."""
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return render(
        request,
        "registration/locked_out.html",
        {"lockout_minutes": minutes, "login_path": request.path},
        status=429,
    )
