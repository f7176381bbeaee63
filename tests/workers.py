"""Real processes for the fault suites: Celery workers, a private Redis, a
private PostgreSQL cluster and the web server, each started as a subprocess
that a test can kill, stop and start again.

Fixtures:
- ``worker_queue``: a Redis queue of the test's own on ``REDIS_URL``, where
  every task the test process sends goes (eager execution off meanwhile);
- ``start_worker``: ``celery worker`` processes on that queue, all stopped at
  the end of the test;
- ``private_redis``: a ``redis-server`` on a free port, only this test's.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from secops.celery import app as celery_app
from secops.celery import redis_transport_options

BIN = Path(sys.executable).parent
WAIT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(dbname: str | None = None) -> str:
    """The URL of the test database pytest-django created (``test_<name>``)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    name = quote(dbname or db["NAME"])
    return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{name}"


class Process:
    """A subprocess in a session of its own (a kill reaches its children too),
    logging to a file."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str]):
        self.command = command
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.killed = False

    def start(self):
        self.killed = False
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=settings.BASE_DIR,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def has_exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL to every process of the group, as when its container dies:
        no shutdown, no acknowledgement, no rollback sent to the database."""
        self.killed = True
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.has_exited():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Worker(Process):
    """``celery -A secops worker``, one process (prefork, production's pool, by
    default) on the given queues.

    ``queue``: one queue that also takes every task the worker sends itself
    (a queue of the test's own on a shared Redis); without it, the console's
    queues. ``visibility_timeout``: set as CELERY_VISIBILITY_TIMEOUT sets it;
    on a shared Redis the unacknowledged messages of the queue get a hash of
    their own, so that no other worker on that Redis puts them back early.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        queue: str | None = None,
        visibility_timeout: int | None = None,
        pool: str = "prefork",
    ):
        env = dict(env or {})
        command = [
            str(BIN / "celery"),
            "-A",
            "secops",
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            "-Q",
            queue or ",".join(settings.WORKER_QUEUES),
            f"--hostname=worker-{uuid.uuid4().hex[:8]}@%h",
            "--loglevel=info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "worker_enable_remote_control=False",
        ]
        if visibility_timeout is not None:
            env["CELERY_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
        if queue:
            options = redis_transport_options(visibility_timeout or 300)
            options.update(
                unacked_key=f"{queue}:unacked",
                unacked_index_key=f"{queue}:unacked_index",
                unacked_mutex_key=f"{queue}:unacked_mutex",
            )
            command += [
                f"task_default_queue={queue}",
                f"task_routes=(json){json.dumps({'*': {'queue': queue}})}",
                f"broker_transport_options=(json){json.dumps(options)}",
            ]
        env.setdefault("DEBUG", "true")
        env.setdefault("REDIS_URL", settings.REDIS_URL)
        env.setdefault("DATABASE_URL", database_url())
        # A session blocked on a lock notices a vanished client only when it
        # next writes to it; this makes the server check every 200 ms, as a
        # crashed worker's session would end once TCP gives up.
        env.setdefault("PGOPTIONS", "-c client_connection_check_interval=200")
        super().__init__(command, log_path, env)


def celery_call(task: str, kwargs: dict, *, env: dict[str, str], log_path: Path) -> None:
    """Send ``task`` with ``kwargs`` through ``celery call``, as beat would."""
    command = [str(BIN / "celery"), "-A", "secops", "call", task, "--kwargs", json.dumps(kwargs)]
    call = Process(command, log_path, {"DEBUG": "true", **env}).start()
    call.process.wait(timeout=60)
    assert call.process.returncode == 0, call.log()


class WebServer(Process):
    """The console under gunicorn (as in production), one process."""

    def __init__(self, log_path: Path, *, env: dict[str, str] | None = None):
        self.port = free_port()
        env = {"DEBUG": "true", "DATABASE_URL": database_url(), **(env or {})}
        command = [
            str(BIN / "gunicorn"),
            "secops.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--timeout",
            "60",
        ]
        super().__init__(command, log_path, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        super().start()
        wait_for(self._answers, process=self, what="the web server answering", seconds=60)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


class RedisServer(Process):
    """A ``redis-server`` of the test's own on a free port, keeping nothing on
    disk; stopped and started again on the same port."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        super().__init__(command, log_path, {})

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        super().start()
        wait_for(self.answers, process=self, what="redis-server answering", seconds=20)
        return self

    def answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
                return client.ping()
        except redis.RedisError:
            return False


class PostgresCluster:
    """A PostgreSQL cluster of the test's own: ``initdb`` into a temporary
    directory, served on a free port; restarted or stopped like a real server."""

    def __init__(self):
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not versions:
            pytest.skip("needs PostgreSQL's server programs in /usr/lib/postgresql")
        self.bin = versions[-1].parent
        # The server refuses to run as root: as root, it runs as the postgres
        # user, in a directory of its own that user can reach.
        self.as_user: list[str] = []
        self.directory = Path(tempfile.mkdtemp(prefix="secops-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.directory / "data"
        self.port = free_port()
        self.log_path = self.directory / "postgres.log"

    def _run(self, *arguments: str) -> None:
        # Output to the log file, not a pipe: the server pg_ctl starts would
        # inherit a pipe and hold it open.
        with (self.directory / "pg_ctl.log").open("ab") as log:
            subprocess.run(
                [*self.as_user, str(self.bin / arguments[0]), *arguments[1:]],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.directory,
            )

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def remove(self) -> None:
        if self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def init(self) -> "PostgresCluster":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 50\n"
            )
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-m", mode, "-w", "restart"
        )

    def is_running(self) -> bool:
        result = subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            env=self._env(),
            cwd=self.directory,
        )
        return result.returncode == 0

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as session:
            session.execute(f'CREATE DATABASE "{dbname}"')

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True)


def wait_for(
    condition: Callable,
    *,
    what: str,
    process: Process | None = None,
    seconds: float = WAIT_SECONDS,
    interval: float = 0.2,
):
    """Poll ``condition`` until it returns something truthy, and return that.

    Gives up early when ``process`` is meant to be running and has exited.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.has_exited() and not process.killed:
            pytest.fail(f"{process.command[0]} exited before {what}:\n{process.log()[-5000:]}")
        time.sleep(interval)
    log = process.log()[-5000:] if process is not None else ""
    pytest.fail(f"no {what} after {seconds} s; log:\n{log}")


def delete_redis_keys(queue: str) -> None:
    """Everything Celery and kombu keep in Redis for ``queue``: the queue, its
    bindings, the unacknowledged messages of its workers."""
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
        deadlines = "_kombu.binding_deadlines"
        members = [m for m, _ in client.zscan_iter(deadlines, match=f"*{queue}*")]
        if members:
            client.zrem(deadlines, *members)


# --- database sessions a test holds ---------------------------------------------


@contextmanager
def table_locked(model):
    """Hold a lock, from another session, that makes an INSERT into the
    model's table wait: a worker that reaches that INSERT stops there."""
    with psycopg.connect(database_url()) as session:
        session.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            session.rollback()


def blocked_insert(model):
    """A check for the session of a worker waiting to INSERT into the model's
    table: its backend pid, or None."""

    def check() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [f'INSERT INTO "{model._meta.db_table}"%'],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    return check


def session_ended(pid: int):
    def check() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            return cursor.fetchone() is None

    return check


# --- fixtures ---------------------------------------------------------------------

needs_postgres_and_redis = pytest.mark.skipif(
    not settings.REDIS_URL or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs REDIS_URL and PostgreSQL",
)


@pytest.fixture
def worker_queue():
    """A queue of this test's own on REDIS_URL, where every task of this process goes."""
    name = f"test-faults-{uuid.uuid4().hex[:12]}"
    previous = {
        "task_routes": celery_app.conf.task_routes,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.update(task_routes={"*": {"queue": name}}, task_always_eager=False)
    try:
        yield name
    finally:
        celery_app.conf.update(previous)
        delete_redis_keys(name)


@pytest.fixture
def start_worker(worker_queue, tmp_path):
    """``start_worker(**options)`` starts a Worker on the test's queue; every one
    is stopped at the end."""
    started: list[Worker] = []

    def start(**options) -> Worker:
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        worker = Worker(log_path, queue=worker_queue, **options)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server only this test uses, stopped at the end."""
    server = RedisServer(tmp_path / "redis.log").start()
    try:
        yield server
    finally:
        server.stop()
