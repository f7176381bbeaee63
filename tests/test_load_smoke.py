"""`make load` in miniature: the load test script runs its whole stack for a few
seconds at a low rate and writes a result that accounts for every alert.

It needs the PostgreSQL and Redis servers of LOAD_DATABASE_URL and
LOAD_REDIS_URL (the defaults of bench/load.py when unset), whatever database
the rest of the suite runs on, and uses a database of its own on that server
(the name with ``_smoke`` added), so it never touches a `make load` run's data.
It is skipped when either server does not answer.
"""

import json
import os
import socket
import subprocess
import sys
from urllib.parse import urlparse, urlunparse

import pytest

from bench import load
from tests.test_deployment import REPO

pytestmark = pytest.mark.load


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _smoke_database_url() -> str:
    parsed = urlparse(os.environ.get("LOAD_DATABASE_URL") or load.DEFAULT_DATABASE_URL)
    return urlunparse(parsed._replace(path=parsed.path.rstrip("/") + "_smoke"))


def _smoke_redis_url() -> str:
    return os.environ.get("LOAD_REDIS_URL") or "redis://127.0.0.1:6379/14"


@pytest.fixture
def smoke_environment():
    database, redis = _smoke_database_url(), _smoke_redis_url()
    if not _answers(database, 5432) or not _answers(redis, 6379):
        pytest.skip("the load test needs PostgreSQL and Redis (LOAD_DATABASE_URL, LOAD_REDIS_URL)")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG"}
    }
    environment.update(
        LOAD_DURATION="4",
        LOAD_RATE="50",
        LOAD_ANALYSTS="2",
        LOAD_DATABASE_URL=database,
        LOAD_REDIS_URL=redis,
    )
    return environment


def test_it_sends_browses_and_accounts_for_every_alert(smoke_environment, tmp_path):
    result_path = tmp_path / "result.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.load", "--result", str(result_path)],
        cwd=REPO,
        env=smoke_environment,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    result = json.loads(result_path.read_text())

    ingest = result["ingest"]
    counts = result["outcome"]["counts"]
    assert ingest["planned"] == 200
    assert ingest["sent"] == ingest["accepted"] == counts["stored"] == 200
    assert counts["whitelisted"] == ingest["expected"]["whitelisted"]
    assert counts["no_event"] == ingest["expected"]["no_rule"]
    assert counts["whitelisted"] + counts["in_events"] + counts["no_event"] == 200
    assert result["errors"] == {"count": 0, "first": []}
    assert result["problems"] == []
    assert result["pipeline"]["drain_seconds"] is not None
    assert result["outcome"]["ingestion_lag"]["alerts"] == counts["in_events"]
    assert result["outcome"]["ingestion_lag"]["p50"] >= 0
    assert result["pages"]["all"]["count"] > 0
    assert result["login"]["login"]["count"] >= 2
    assert result["ingest"]["latency"]["count"] == 4  # a batch of 50 alerts a second
    assert "Load test: 50 alerts/s for 4 s, 2 analysts" in finished.stdout


def test_it_refuses_a_database_not_meant_for_it(smoke_environment, tmp_path):
    smoke_environment["LOAD_DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/secops"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.load", "--result", str(tmp_path / "result.json")],
        cwd=REPO,
        env=smoke_environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 2
    assert "LOAD_DATABASE_URL must name a database with 'load' in its name" in finished.stderr
    assert not (tmp_path / "result.json").exists()


def test_it_names_a_bad_setting(smoke_environment, tmp_path):
    smoke_environment["LOAD_RATE"] = "fast"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.load", "--result", str(tmp_path / "result.json")],
        cwd=REPO,
        env=smoke_environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 2
    assert "LOAD_RATE must be a whole number; got 'fast'." in finished.stderr
