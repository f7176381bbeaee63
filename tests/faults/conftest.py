"""The fault suites share the real-process fixtures of tests/workers.py."""

from tests.workers import private_redis, start_worker, worker_queue  # noqa: F401
