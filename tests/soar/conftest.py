"""Fixtures shared with other test packages: an event to act on, and real
Celery workers on a queue of the test's own."""

from tests.disposal.conftest import brute_force_event  # noqa: F401
from tests.events.test_worker import queue, workers  # noqa: F401
