"""gunicorn's settings for the console (``gunicorn secops.wsgi -c python:secops.gunicorn_conf``).

Each gunicorn worker is a process of its own, so Prometheus metrics are kept
in multiprocess mode: every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever worker answers it,
adds them all up. Without the variable a new directory is made for this
server; given, the directory is emptied at start (samples of an earlier run
would be added in). When a worker exits, its live gauges are dropped.
Address, workers and the like stay on the command line (Dockerfile,
docker-compose.yml); requests are logged by the console itself
(``secops.access``, with their request ids), so gunicorn's access log is off.

Loaded by gunicorn's master before the application: import nothing of Django.
"""

import os
import tempfile

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="secops-metrics-")


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
