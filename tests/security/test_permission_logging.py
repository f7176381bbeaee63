"""A refused permission is logged as one warning line: who, what and why, no traceback.

Real errors keep their traceback: only ``PermissionDenied`` is shortened.
"""

import logging
import sys

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse

from secops.logging_filters import OneLineRefusals

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

REFUSAL = "Only administrators can change whitelist rules."


def _request_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "django.request"]


def _formatted(record: logging.LogRecord) -> str:
    """The record as the console handler writes it, traceback included if any."""
    return logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)


def test_it_logs_a_refused_permission_as_one_line(tenancy, caplog):
    client = tenancy.client_for(tenancy.bob)
    path = reverse("whitelist:group_create")

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(path)

    assert response.status_code == 403
    [record] = _request_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    line = _formatted(record)
    assert line == (
        f"WARNING django.request Forbidden (permission denied): GET {path} by bob: {REFUSAL}"
    )
    assert "\n" not in line
    assert "Traceback" not in caplog.text


def _refusal_record(request, refusal: PermissionDenied) -> logging.LogRecord:
    """A record as Django's ``log_response`` makes it for a refused request."""
    try:
        raise refusal
    except PermissionDenied:
        record = logging.LogRecord(
            "django.request",
            logging.WARNING,
            __file__,
            1,
            "Forbidden (Permission denied): %s",
            (request.path,),
            sys.exc_info(),
        )
    record.request = request
    record.status_code = 403
    return record


def test_it_names_an_anonymous_user_and_a_missing_reason():
    # No user: the authentication middleware did not run.
    record = _refusal_record(RequestFactory().post("/somewhere/"), PermissionDenied())

    assert OneLineRefusals().filter(record) is True
    assert record.getMessage() == (
        "Forbidden (permission denied): POST /somewhere/ by anonymous: no reason given"
    )
    assert record.exc_info is None


def test_it_keeps_a_hostile_path_and_reason_on_one_line():
    request = RequestFactory().get("/whitelist/")
    request.path = "/whitelist/\nERROR forged line/"  # as a server might pass it through
    record = _refusal_record(request, PermissionDenied("first\r\nsecond"))

    OneLineRefusals().filter(record)

    line = _formatted(record)
    assert "\n" not in line and "\r" not in line
    assert line.endswith("GET /whitelist/\\nERROR forged line/ by anonymous: first\\r\\nsecond")


def test_it_keeps_the_traceback_of_a_real_error(tenancy, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("whitelist.views.services.scenario_summary", broken)
    client = Client(raise_request_exception=False)
    client.force_login(tenancy.bob)

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("whitelist:settings"))

    assert response.status_code == 500
    [record] = _request_records(caplog)
    assert record.levelno == logging.ERROR
    assert "Traceback" in _formatted(record)
    assert "RuntimeError: a bug" in _formatted(record)
