"""`make load` in miniature: the load test script runs its whole stack for a few
seconds at a low rate and writes a result that accounts for every alert.

It needs the PostgreSQL and Redis servers of LOAD_DATABASE_URL and
LOAD_REDIS_URL (the defaults of bench/load.py when unset), whatever database
the rest of the suite runs on, and uses a database of its own on that server
(the name with ``_smoke`` added), so it never touches a `make load` run's data.
It is skipped when either server does not answer. How a result is judged
(what makes a run fail) is tested without them.
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


def clean_result() -> dict:
    """A result as a clean run of 1,000 alerts leaves it."""
    return {
        "errors": {"count": 0, "first": []},
        "ingest": {
            "planned": 1000,
            "sent": 1000,
            "accepted": 1000,
            "expected": {"whitelisted": 30, "no_rule": 50},
        },
        "outcome": {
            "counts": {
                "stored": 1000,
                "whitelisted": 30,
                "whitelist_matches": 30,
                "whitelisted_in_events": 0,
                "in_events": 920,
                "no_event": 50,
            }
        },
        "pipeline": {"drain_seconds": 1.5, "alerts_waiting": 0},
        "stack": {"stopped_early": []},
    }


def test_it_finds_nothing_wrong_with_a_clean_run():
    assert load.problems_of(clean_result()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r["errors"].update(count=1), "1 requests failed"),
        (lambda r: r["ingest"].update(sent=900), "1000 alerts planned, 900 sent"),
        (lambda r: r["outcome"]["counts"].update(stored=999), "1000 alerts sent, 999 stored"),
        (
            lambda r: r["outcome"]["counts"].update(whitelisted=29, in_events=921),
            "30 alerts should be whitelisted, 29 are",
        ),
        (
            lambda r: r["outcome"]["counts"].update(no_event=49, in_events=921),
            "50 alerts match no rule, 49 are in no event",
        ),
        (
            lambda r: r["outcome"]["counts"].update(whitelisted_in_events=2),
            "2 whitelisted alerts are in events",
        ),
        (
            lambda r: r["pipeline"].update(drain_seconds=None, alerts_waiting=300),
            "the backlog did not drain: 300 alerts waiting",
        ),
        (
            lambda r: r["stack"].update(stopped_early=["worker-pipeline"]),
            "stopped during the run: worker-pipeline",
        ),
    ],
)
def test_it_fails_a_run_with_an_error_or_an_alert_unaccounted_for(change, problem):
    result = clean_result()
    change(result)
    assert problem in load.problems_of(result)
