"""Settings for the console. Every deployment-specific value comes from the
environment through the typed helpers in ``secops.env``; README.md lists them.
"""

from datetime import timedelta
from pathlib import Path

from django.utils.csp import CSP
from kombu import Queue

from secops.env import (
    env_bool,
    env_database,
    env_email,
    env_int,
    env_list,
    env_networks,
    env_secret_key,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# With DEBUG on, Django's debug pages (tracebacks, URL lists) instead of the
# console's error pages; `make run` sets DEBUG, and its users should see the
# pages the product shows (secops.middleware.ErrorPageMiddleware).
DEBUG_ERROR_PAGES = env_bool("DEBUG_ERROR_PAGES", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    # Failed logins and lockouts (login throttling below).
    "axes",
    # Serves the API docs' Swagger UI from our static files instead of a CDN.
    "ninja",
    "secops",
    "alerts",
    "events",
    "whitelist",
    "disposal",
    "soar",
    "cloudsiem",
]

MIDDLEWARE = [
    # First: every log line written while a request is served carries its id,
    # and the latency of everything after it is measured (secops.logs,
    # secops.metrics).
    "secops.logs.RequestIdMiddleware",
    "secops.metrics.RequestLatencyMiddleware",
    # Then: keeps the request for the audit log's entries (who, from where,
    # which request id), whichever layer below writes one.
    "secops.audit.AuditContextMiddleware",
    # Next: cloud SIEM API calls (POST / with x-acs-action) are signed requests
    # answered in JSON, never the home page behind CSRF and login.
    "cloudsiem.middleware.CloudSiemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "secops.middleware.ScopeMiddleware",
    # After the scope: its pages show the layout and may offer a switch of it.
    "secops.middleware.ErrorPageMiddleware",
    # Last, as django-axes requires: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "secops.urls"
# A refused form (CSRF) gets the console's 403 page, saying what to do.
CSRF_FAILURE_VIEW = "secops.errors.csrf_failure"
WSGI_APPLICATION = "secops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "secops.context_processors.scope",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'secops.sqlite3'}")}
# SQLite is only ever the embedded default (`make run` on a bare machine).
EMBEDDED_DATABASE = DATABASES["default"]["ENGINE"].endswith("sqlite3")

# On the embedded database a key made once into the data directory stands in
# for a missing one, so that the README's manage.py commands work after
# `make run` without DEBUG; on PostgreSQL one is required unless DEBUG is on.
SECRET_KEY = env_secret_key(
    "SECRET_KEY", debug=DEBUG, key_file=DATA_DIR / "secret_key" if EMBEDDED_DATABASE else None
)

if EMBEDDED_DATABASE:
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # SQLite is the embedded default: WAL lets the web process and the
    # in-process periodic jobs read while the other writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False

# Ingestion accepts bodies up to 10 MB (alerts.api answers 413 beyond).
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The lockout check comes first: a locked-out (username, address) pair is
# refused before its password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
# WhiteNoise serves from here; before the first collectstatic it must exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"

# --- Celery -----------------------------------------------------------------
# With REDIS_URL set, tasks go to Redis and run on workers; beat schedules the
# periodic jobs. Without it (the embedded default) tasks run eagerly in the
# calling process and `make run` starts beat beside the web server, so the
# periodic jobs run there.
REDIS_URL = env_str("REDIS_URL", "")
WORKER_QUEUES = ("ingest", "detect", "respond", "export")
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One queue per kind of work, so that a flood of one kind cannot starve
# another: ingest (the aggregation pipeline), detect (the SIEM detection
# rules), respond (handling and playbooks), export (Excel exports and the
# clean-up of stored data). A worker started without -Q consumes all of them;
# docker-compose.yml gives exports a worker of their own.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WORKER_QUEUES]
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {
    "events.process_alert_batch": {"queue": "ingest"},
    "events.process_stale_batches": {"queue": "ingest"},
    # Consumers of the event change feed are automated response and notifications.
    "events.deliver_changes": {"queue": "respond"},
    "events.sweep_change_feed": {"queue": "respond"},
    "alerts.run_detection": {"queue": "detect"},
    # Handling tasks, their sweeps and notifications.
    "disposal.run_task": {"queue": "respond"},
    "disposal.undo_task": {"queue": "respond"},
    "disposal.expire_due": {"queue": "respond"},
    "disposal.sweep_tasks": {"queue": "respond"},
    "disposal.send_notification": {"queue": "respond"},
    "disposal.retry_notifications": {"queue": "respond"},
    # Bulk handling of security events and its clean-up.
    "soar.run_bulk_handling": {"queue": "respond"},
    "soar.cleanup_bulk_handling": {"queue": "respond"},
    # Playbook runs and their waits and approvals.
    "soar.advance_run": {"queue": "respond"},
    "soar.resume_runs": {"queue": "respond"},
    "events.export_events": {"queue": "export"},
    "events.cleanup_exports": {"queue": "export"},
    "events.purge_expired": {"queue": "export"},
    "alerts.maintain_partitions": {"queue": "export"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # SIEM detection rules read the logs received since their last run.
    "run-detection-rules": {"task": "alerts.run_detection", "schedule": 60.0},
    # Alert batches whose pipeline task was lost (broker down at enqueue,
    # worker killed past its retries) are taken through the pipeline again.
    "process-stale-alert-batches": {"task": "events.process_stale_batches", "schedule": 60.0},
    # Consumers of the event change feed whose wake-up was lost are woken again.
    "sweep-event-change-feed": {"task": "events.sweep_change_feed", "schedule": 30.0},
    # Blocks whose action validity period has ended are lifted.
    "expire-handling-blocks": {"task": "disposal.expire_due", "schedule": 60.0},
    # Handling tasks whose message was lost are queued again, stalled ones failed.
    "sweep-handling-tasks": {"task": "disposal.sweep_tasks", "schedule": 60.0},
    # Notifications whose delivery failed are tried again with backoff.
    "retry-notifications": {"task": "disposal.retry_notifications", "schedule": 60.0},
    # Playbook runs whose wait is over go on; approvals past their deadline end.
    "resume-playbook-runs": {"task": "soar.resume_runs", "schedule": 60.0},
    "purge-expired-data": {"task": "events.purge_expired", "schedule": 6 * 3600.0},
    # On PostgreSQL the weeks ahead of alerts and logs are made in advance.
    "maintain-partitions": {"task": "alerts.maintain_partitions", "schedule": 3600.0},
    # Expired export files and jobs are removed, stalled exports failed.
    "cleanup-expired-exports": {"task": "events.cleanup_exports", "schedule": 600.0},
    # Stalled bulk handling jobs are failed, expired ones deleted.
    "cleanup-bulk-handling-jobs": {"task": "soar.cleanup_bulk_handling", "schedule": 600.0},
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Mail -------------------------------------------------------------------
MAILERS = env_email("EMAIL_URL", "console://")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "secops@localhost")
# Where the console is reached, for the links in messages sent out of it
# (an approval request links to the run to approve).
CONSOLE_URL = env_str("CONSOLE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Product rules ----------------------------------------------------------
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 180, minimum=1)

# --- Secrets at rest (secops.crypto) -----------------------------------------
# Comma-separated, newest first; without it a key is derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEYS = env_list("SECRETS_ENCRYPTION_KEY", [])

# --- Cloud SIEM compatible API (cloudsiem) -----------------------------------
# How far (seconds) a request's x-acs-date may be from the server's clock; its
# nonce is remembered for twice as long, so it cannot be replayed meanwhile.
CLOUD_SIEM_MAX_CLOCK_SKEW = env_int("CLOUD_SIEM_MAX_CLOCK_SKEW", 900, minimum=1)

# --- Handling (disposal) -----------------------------------------------------
# The connector of accounts that have none configured: "simulated" (the
# embedded default: a simulated cloud kept in our database) or "webhook".
DISPOSAL_DEFAULT_CONNECTOR = env_str("DISPOSAL_DEFAULT_CONNECTOR", "simulated")
# With the "webhook" default, where accounts without connector settings send
# their signed requests, and the secret that signs them (docs/webhooks.md).
DISPOSAL_WEBHOOK_URL = env_str("DISPOSAL_WEBHOOK_URL", "")
DISPOSAL_WEBHOOK_SECRET = env_str("DISPOSAL_WEBHOOK_SECRET", "")
# Every call to a cloud or webhook gives up after this many seconds.
DISPOSAL_CONNECTOR_TIMEOUT = env_int("DISPOSAL_CONNECTOR_TIMEOUT", 10, minimum=1)
# Calls per second per account and cloud service (Cloud Firewall allows 10).
DISPOSAL_CALLS_PER_SECOND = env_int("DISPOSAL_CALLS_PER_SECOND", 5, minimum=1)
# A share (percent) of the simulated cloud's calls that fail, for demonstrations.
SIMULATED_CLOUD_FAILURE_PERCENT = env_int("SIMULATED_CLOUD_FAILURE_PERCENT", 0, minimum=0)
# Destinations of webhooks (connector and notifications) that may be on
# loopback or private networks: hosts or CIDR ranges, comma-separated.
WEBHOOK_ALLOWED_PRIVATE = env_list("WEBHOOK_ALLOWED_PRIVATE", [])

# --- SOAR ----------------------------------------------------------------------
# A worker advancing a playbook run holds it with a claim it renews before each
# step; a claim older than this is taken to be a dead worker's, and the run is
# picked up again by the next resume sweep (every 60 s) or redelivered message.
SOAR_RUN_CLAIM_SECONDS = env_int("SOAR_RUN_CLAIM_SECONDS", 120, minimum=2)

# --- Production hardening (all on unless DEBUG) ------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Health probes from the orchestrator arrive over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Preloading HSTS is a commitment the operator makes for the whole domain.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Content-Security-Policy -------------------------------------------------
# Scripts come only from our own static files; an inline <script> runs only
# with the response's nonce ({{ csp_nonce }} in templates), so markup slipped
# into a page cannot execute. Styles likewise: no template uses <style> blocks,
# style="" or on...="" attributes, so 'unsafe-inline' is needed for neither
# scripts nor styles. Scripts may still set element.style through the DOM
# (Cytoscape, Swagger UI), which CSP does not restrict.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    # The tracing diagram's PNG and SVG downloads are built as data: and blob:
    # URLs; Swagger UI's stylesheet draws its icons from data: URLs.
    "img-src": [CSP.SELF, "data:", "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# --- Login throttling (django-axes) ------------------------------------------
# Failed logins, on the console's login page and the admin's, are counted per
# pair of username and client address. LOGIN_FAILURE_LIMIT failures lock that
# pair out for LOGIN_LOCKOUT_MINUTES (another try while locked out starts the
# wait again); the same user from another address, or another user from the
# same address, can still log in. A global administrator unlocks early in the
# admin (Axes > Access attempts: delete the row) or with
# `manage.py axes_reset_username NAME`.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login clears its pair's failures, so typos do not add up over days.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "secops.login_throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "secops.login_throttling.client_ip_address"
# Behind reverse proxies that append to X-Forwarded-For, the client address is
# the entry the outermost trusted proxy added; 0 trusts no header (REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
# Failed attempts are kept (they are the lockout); successful logins are not
# recorded, as nothing would ever purge them.
AXES_DISABLE_ACCESS_LOG = True

# --- Logs ----------------------------------------------------------------------
# One JSON object per line (secops.logs.JsonFormatter) unless LOG_FORMAT=text;
# with DEBUG the default is text, easier to read in a terminal. Either way each
# line carries the request id and, inside a Celery task, the task's id and name.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in ("json", "text"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"Environment variable LOG_FORMAT={LOG_FORMAT!r}: use json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "secops.logs.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s task=%(task_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "filters": {
        "one_line_refusals": {"()": "secops.logging_filters.OneLineRefusals"},
        "context": {"()": "secops.logs.ContextFilter"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # In eager mode every task would log its success inside the caller.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
        # A refused permission is one warning line, not a traceback.
        "django.request": {"filters": ["one_line_refusals"]},
    },
}
# Workers log through LOGGING above (JSON lines with task ids) rather than
# Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Metrics (secops.metrics, /metrics) ------------------------------------------
# Prometheus reads /metrics with this bearer token, or from these networks.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
# A Celery worker serves its own metrics (tasks, connector errors) on this
# port when it is not 0.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
# With several processes (gunicorn, Celery's pool) each writes its samples
# here; prometheus_client reads the variable itself, the directory must exist
# before the first metric is made.
if PROMETHEUS_MULTIPROC_DIR := env_str("PROMETHEUS_MULTIPROC_DIR", ""):
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
