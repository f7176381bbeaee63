"""Filters of the console's log records, named in ``LOGGING`` (settings).

Loaded while logging is configured, before the apps are: import no models here.
"""

import logging

from django.core.exceptions import PermissionDenied


class OneLineRefusals(logging.Filter):
    """Turns Django's record of a refused permission into one line without a traceback.

    Django logs every ``PermissionDenied`` on ``django.request`` with the
    exception's traceback. A refusal is the console answering as it should,
    not a fault: a user probing pages he may not use would otherwise bury the
    real errors under tracebacks. The line says who was refused what, and why.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        refusal = record.exc_info[1] if record.exc_info else None
        if isinstance(refusal, PermissionDenied):
            request = getattr(record, "request", None)
            user = getattr(request, "user", None)
            record.msg = "Forbidden (permission denied): %s %s by %s: %s"
            record.args = tuple(
                # Escaped as Django escapes the path: one record stays one line.
                text.encode("unicode_escape").decode("ascii")
                for text in (
                    getattr(request, "method", None) or "-",
                    getattr(request, "path", None) or "-",
                    user.get_username() if user and user.is_authenticated else "anonymous",
                    str(refusal) or "no reason given",
                )
            )
            record.exc_info = None
            record.exc_text = None
        return True
