"""/healthz: the probe an orchestrator calls, without logging in."""

import copy
import os
import socket

import pytest
from django.db import connections
from django.db.utils import load_backend
from django.test import Client
from django.urls import reverse

from secops import health
from secops.celery import app as celery_app


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def unreachable_broker(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # The Celery app read Django's settings once; point its own copy elsewhere.
    # Item access stores and restores the configured values, not the ones
    # Celery derives from them (the write URL falls back to the broker URL).
    monkeypatch.setitem(celery_app.conf, "broker_write_url", None)
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed_port()}/0")


@pytest.fixture
def unreachable_database(monkeypatch):
    """A real PostgreSQL connection to a port nothing listens on, used as the probe's database."""
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict.update(
        ENGINE="django.db.backends.postgresql",
        NAME="secops",
        USER="postgres",
        PASSWORD="",
        HOST="127.0.0.1",
        PORT=str(closed_port()),
        OPTIONS={"connect_timeout": 2},
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=False,
    )
    backend = load_backend(settings_dict["ENGINE"])
    unreachable = backend.DatabaseWrapper(settings_dict, alias="unreachable")
    monkeypatch.setattr(health, "connection", unreachable)
    yield unreachable
    unreachable.close()


def test_it_reports_a_healthy_embedded_setup(db, eager_tasks):
    response = Client().get(reverse("healthz"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


def test_it_is_never_cached(db, eager_tasks):
    response = Client().get(reverse("healthz"))

    assert "no-cache" in response["Cache-Control"]


def test_it_answers_without_login_even_for_a_logged_in_user(tenancy, eager_tasks):
    response = tenancy.client_for(tenancy.charlie).get(reverse("healthz"))

    assert response.status_code == 200


def test_it_reports_an_unreachable_broker_but_stays_up(db, unreachable_broker):
    response = Client().get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"].startswith("unreachable")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis broker (REDIS_URL)")
def test_it_reports_a_reachable_broker(db, settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setitem(celery_app.conf, "broker_write_url", None)
    monkeypatch.setitem(celery_app.conf, "broker_url", os.environ["REDIS_URL"])

    response = Client().get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_it_is_unavailable_when_the_database_is_unreachable(db, eager_tasks, unreachable_database):
    response = Client().get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable: OperationalError",
        "broker": "eager",
    }


def test_it_answers_get_only(db):
    assert Client().post(reverse("healthz")).status_code == 405
