"""Celery queues by kind of work: every task is routed to a declared queue, a
worker started without -Q consumes them all, and the production stack consumes
each of them in exactly one worker service, exports apart from the rest."""

import importlib
import importlib.util
import json
import os
import uuid

import pytest
from celery import Celery
from django.apps import apps
from django.conf import settings

from secops.celery import app as celery_app
from tests.test_deployment import WORKER_SERVICES, compose  # noqa: F401 (fixture)


def project_tasks() -> set[str]:
    """The tasks of every installed app's tasks module, as a worker registers them."""
    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.tasks"):
            importlib.import_module(f"{config.name}.tasks")
    # Test modules register probe tasks of their own, named tests.*.
    return {name for name in celery_app.tasks if not name.startswith(("celery.", "tests."))}


def app_from_settings(name: str = "queue-probe") -> Celery:
    """An app configured as the project's, without the state that tests which
    drive the shared app leave in it (queues they created on the fly)."""
    app = Celery(name)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    return app


def test_it_routes_every_task_to_a_declared_queue():
    routes = settings.CELERY_TASK_ROUTES

    assert set(routes) == project_tasks()
    assert {route["queue"] for route in routes.values()} <= set(settings.WORKER_QUEUES)


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("events.process_alert_batch", "ingest"),
        ("alerts.run_detection", "detect"),
        ("events.export_events", "export"),
    ],
)
def test_it_keeps_each_kind_of_work_on_its_own_queue(task, queue):
    assert app_from_settings().amqp.router.route({}, task)["queue"].name == queue


def test_a_worker_without_a_queue_option_consumes_every_queue():
    assert list(app_from_settings().amqp.queues) == list(settings.WORKER_QUEUES)


def test_the_production_workers_consume_every_queue_once_and_exports_apart(compose):  # noqa: F811
    consumed = {}
    for service in WORKER_SERVICES:
        command = compose["services"][service]["command"]
        consumed[service] = command[command.index("-Q") + 1].split(",")

    every = [queue for queues in consumed.values() for queue in queues]
    assert sorted(every) == sorted(settings.WORKER_QUEUES)
    assert consumed["worker-export"] == ["export"]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis broker (REDIS_URL)")
def test_it_puts_an_export_on_the_export_queue_of_the_broker():
    import redis

    prefix = f"test-queues-{uuid.uuid4().hex[:12]}:"
    sender = app_from_settings()
    sender.conf.update(
        broker_url=os.environ["REDIS_URL"],
        task_always_eager=False,
        broker_transport_options={"global_keyprefix": prefix},
    )
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        result = sender.send_task("events.export_events", args=[0])

        waiting = {
            queue: [json.loads(m)["headers"]["id"] for m in client.lrange(prefix + queue, 0, -1)]
            for queue in settings.WORKER_QUEUES
        }
        assert waiting == {"ingest": [], "detect": [], "respond": [], "export": [result.id]}
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        sender.close()
