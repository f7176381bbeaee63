"""The deployment files agree with the code they configure.

docker-compose.yml passes web, the workers and beat only variables that
secops/settings.py reads, and with its values the settings load and pass
Django's deployment checks. A bad value stops the process naming the
variable. README.md documents every variable. The Makefile refuses an
interpreter older than Python 3.12 and says so.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "worker-export", "beat")
WORKER_SERVICES = ("worker", "worker-export")
# Long and varied enough for check --deploy (security.W009).
PRODUCTION_SECRET_KEY = "compose-test-3f9a1c7e5b2d8046-a7c3e9f1b5d20864-c1e7a3f9d5b"
OPERATOR_VALUES = {
    "SECRET_KEY": PRODUCTION_SECRET_KEY,
    "POSTGRES_PASSWORD": "compose-test-password",
    "ALLOWED_HOSTS": "console.example.com",
    "EMAIL_URL": "smtp+tls://console:mail-password@mail.example.com:587",
}


def names_settings_read() -> set[str]:
    source = (REPO / "secops" / "settings.py").read_text()
    through_helpers = re.findall(r'\benv_\w+\(\s*"([A-Z][A-Z0-9_]*)"', source)
    directly = re.findall(r'os\.(?:environ(?:\.get)?|getenv)[\[(]\s*"([A-Z][A-Z0-9_]*)"', source)
    return set(through_helpers) | set(directly)


SETTINGS_NAMES = names_settings_read()
_COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<operator>:[-?])(?P<argument>[^}]*))?\}")


class MissingComposeVariable(Exception):
    pass


def interpolate(value: str, operator_values: dict[str, str]) -> str:
    """Substitute ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` as compose does."""

    def substitute(match: re.Match) -> str:
        given = operator_values.get(match["name"], "")
        if given:
            return given
        if match["operator"] == ":?":
            raise MissingComposeVariable(f"{match['name']}: {match['argument']}")
        return match["argument"] or ""

    return _COMPOSE_VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="pyyaml comes with the test extras (make test)")
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def app_environment(compose: dict, operator_values=OPERATOR_VALUES) -> dict[str, str]:
    environment = compose["services"]["web"]["environment"]
    return {name: interpolate(str(value), operator_values) for name, value in environment.items()}


def run_python(arguments: list[str], environment: dict[str, str], data_dir: Path):
    """Run the interpreter in the repository with only ``environment`` for settings."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_NAMES
        # The browser tests' async allowance makes `check --deploy` warn.
        and name not in ("DJANGO_SETTINGS_MODULE", "DATA_DIR", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "secops.settings",
        "DATA_DIR": str(data_dir),
        **environment,
    }
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_defines_the_five_services(compose):
    assert set(compose["services"]) == {
        "web",
        "worker",
        "worker-export",
        "beat",
        "postgres",
        "redis",
    }


@pytest.mark.parametrize("service", APP_SERVICES)
def test_it_passes_only_variables_the_settings_read(compose, service):
    environment = compose["services"][service]["environment"]
    assert environment, f"{service} has no environment"
    unknown = set(environment) - SETTINGS_NAMES
    assert not unknown, f"{service} passes {sorted(unknown)}, which secops/settings.py never reads"


def test_it_gives_web_workers_and_beat_the_same_environment(compose):
    environments = [compose["services"][name]["environment"] for name in APP_SERVICES]
    assert all(environment == environments[0] for environment in environments)


def test_it_runs_gunicorn_celery_worker_and_beat(compose):
    services = compose["services"]
    assert "gunicorn secops.wsgi" in " ".join(services["web"]["command"])
    for worker in WORKER_SERVICES:
        assert services[worker]["command"][:4] == ["celery", "-A", "secops", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "secops", "beat"]


def test_it_probes_web_health_on_healthz(compose):
    assert "/healthz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


@pytest.mark.parametrize(
    "required", ["SECRET_KEY", "POSTGRES_PASSWORD", "ALLOWED_HOSTS", "EMAIL_URL"]
)
def test_it_refuses_to_start_without_what_only_the_operator_can_give(compose, required):
    values = {name: value for name, value in OPERATOR_VALUES.items() if name != required}
    with pytest.raises(MissingComposeVariable, match=required):
        app_environment(compose, values)


def test_it_builds_production_settings_from_the_compose_values(compose, tmp_path):
    show_settings = (
        "import json, django\n"
        "django.setup()\n"
        "from django.conf import settings as s\n"
        "db = s.DATABASES['default']\n"
        "print(json.dumps({'debug': s.DEBUG, 'engine': db['ENGINE'], 'host': db['HOST'],"
        " 'name': db['NAME'], 'eager': s.CELERY_TASK_ALWAYS_EAGER,"
        " 'broker': s.CELERY_BROKER_URL, 'hosts': s.ALLOWED_HOSTS,"
        " 'proxy_header': getattr(s, 'SECURE_PROXY_SSL_HEADER', None),"
        " 'ssl_redirect': s.SECURE_SSL_REDIRECT, 'email': s.MAILERS['default']['BACKEND']}))\n"
    )
    result = run_python(["-c", show_settings], app_environment(compose), tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {
        "debug": False,
        "engine": "secops.postgresql",
        "host": "postgres",
        "name": "secops",
        "eager": False,
        "broker": "redis://redis:6379/0",
        "hosts": ["localhost", "console.example.com"],
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "ssl_redirect": True,
        "email": "django.core.mail.backends.smtp.EmailBackend",
    }


def test_it_passes_the_deployment_checks_with_the_compose_values(compose, tmp_path):
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        app_environment(compose),
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "bad_value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://x"),
        ("EMAIL_URL", "pop3://mail.example.com"),
        ("EVENT_RETENTION_DAYS", "half a year"),
        ("SECURE_HSTS_SECONDS", "-1"),
    ],
)
def test_it_stops_loudly_on_a_bad_value(tmp_path, name, bad_value):
    environment = {"DEBUG": "true", name: bad_value}
    result = run_python(["-c", "import django; django.setup()"], environment, tmp_path)
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert name in error


def load_settings(environment: dict[str, str], data_dir: Path):
    return run_python(
        [
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(len(settings.SECRET_KEY))",
        ],
        environment,
        data_dir,
    )


@pytest.mark.parametrize("length", [1, 16, 49])
def test_it_refuses_a_short_secret_key_when_debug_is_off(tmp_path, length):
    result = load_settings({"DEBUG": "false", "SECRET_KEY": "k" * length}, tmp_path)

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert f"SECRET_KEY is {length} characters long" in error
    assert "at least 50" in error


def test_it_refuses_a_missing_secret_key_when_debug_is_off(tmp_path):
    result = load_settings(
        {"DEBUG": "false", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/secops"}, tmp_path
    )

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert "SECRET_KEY is required when DEBUG is off" in error


def test_it_accepts_a_secret_key_of_50_characters_when_debug_is_off(tmp_path):
    result = load_settings({"DEBUG": "false", "SECRET_KEY": "k" * 50}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "50"


SHOW_KEY = (
    "import hashlib, django; django.setup(); from django.conf import settings; "
    "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest())"
)


def test_it_makes_one_key_for_the_embedded_database_with_debug_on_or_off(tmp_path):
    with_debug = run_python(["-c", SHOW_KEY], {"DEBUG": "true"}, tmp_path)
    without_debug = run_python(["-c", SHOW_KEY], {"DEBUG": "false"}, tmp_path)

    assert with_debug.returncode == 0, with_debug.stderr
    assert without_debug.returncode == 0, without_debug.stderr
    assert with_debug.stdout.split()[-1] == without_debug.stdout.split()[-1]
    key_file = tmp_path / "secret_key"
    assert len(key_file.read_text().strip()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Made at random for each data directory.
    elsewhere = run_python(["-c", SHOW_KEY], {"DEBUG": "false"}, tmp_path / "other")
    assert elsewhere.stdout.split()[-1] != without_debug.stdout.split()[-1]


def test_it_prefers_a_given_key_to_the_generated_one(tmp_path):
    result = load_settings({"DEBUG": "false", "SECRET_KEY": "k" * 60}, tmp_path)

    assert result.stdout.strip().splitlines()[-1] == "60"
    assert not (tmp_path / "secret_key").exists()


def test_it_refuses_a_broken_key_file(tmp_path):
    (tmp_path / "secret_key").write_text("short\n")

    result = load_settings({"DEBUG": "false"}, tmp_path)

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert "secret_key holds no usable SECRET_KEY" in error and "delete it" in error


def test_it_lets_a_development_setup_use_a_short_secret_key(tmp_path):
    result = load_settings({"DEBUG": "true", "SECRET_KEY": "short"}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "5"


def test_it_ships_a_compose_test_key_the_settings_accept():
    # The compose stack's own test values must pass the same rule as an operator's.
    assert len(PRODUCTION_SECRET_KEY) >= 50


def test_it_documents_every_variable_the_settings_read():
    readme = (REPO / "README.md").read_text()
    undocumented = sorted(name for name in SETTINGS_NAMES if f"`{name}`" not in readme)
    assert not undocumented, f"README.md's configuration table lacks {undocumented}"


def run_make_python_check(candidates: str):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON_CANDIDATES")
    }
    return subprocess.run(
        ["make", "--no-print-directory", "python-check", f"PYTHON_CANDIDATES={candidates}"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_refuses_a_python_older_than_3_12(tmp_path):
    old_python = tmp_path / "python3.11"
    # Answers the Makefile's two probes as a Python 3.11 interpreter would.
    old_python.write_text(
        '#!/bin/sh\ncase "$*" in\n  *version_info*) exit 1 ;;\n  *) echo 3.11.7 ;;\nesac\n'
    )
    old_python.chmod(0o755)

    result = run_make_python_check(str(old_python))

    assert result.returncode != 0
    assert "Python 3.12 or newer is required" in result.stderr
    assert f"{old_python} (3.11.7)" in result.stderr
    assert "pyenv install 3.12" in result.stderr


def test_it_says_so_when_no_candidate_exists(tmp_path):
    result = run_make_python_check(str(tmp_path / "no-such-python"))

    assert result.returncode != 0
    assert "Python 3.12 or newer is required; found: no Python at all" in result.stderr


def test_it_accepts_a_recent_python():
    result = run_make_python_check(sys.executable)

    assert result.returncode == 0, result.stderr
    assert f"Using {sys.executable}" in result.stdout


def test_it_shares_the_data_folder_between_web_worker_and_beat(compose):
    # The worker writes export files that web serves: both need the same folder.
    mounts = {
        service: set(compose["services"][service].get("volumes", [])) for service in APP_SERVICES
    }
    assert all("app-data:/app/var" in volumes for volumes in mounts.values()), mounts
    assert "app-data" in compose["volumes"]


# --- the image's front-end assets -------------------------------------------------------


class DockerStage:
    def __init__(self, image: str, name: str | None):
        self.image = image
        self.name = name
        self.instructions: list[tuple[str, str]] = []

    def arguments(self, instruction: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == instruction]


def dockerfile_stages() -> list[DockerStage]:
    """The Dockerfile's build stages in order, each with its instructions (name, arguments)."""
    lines = [
        line
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if not line.strip().startswith("#")
    ]
    logical = re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
    stages: list[DockerStage] = []
    for line in filter(str.strip, logical):
        instruction, _, arguments = line.strip().partition(" ")
        instruction, arguments = instruction.upper(), " ".join(arguments.split())
        if instruction == "FROM":
            image, name = re.fullmatch(
                r"(?:--platform=\S+ )?(\S+)(?: as (\S+))?", arguments, re.I
            ).groups()
            stages.append(DockerStage(image, name))
        else:
            stages[-1].instructions.append((instruction, arguments))
    return stages


def vendor_script() -> str:
    return json.loads((REPO / "package.json").read_text())["scripts"]["vendor"]


def test_it_builds_the_vendored_assets_in_a_node_stage():
    assets = dockerfile_stages()[0]
    assert assets.image.startswith("node:") and assets.name == "assets"

    steps = [" ".join(step) for step in assets.instructions]

    def first(prefix: str, containing: str = "") -> int:
        found = [
            i for i, step in enumerate(steps) if step.startswith(prefix) and containing in step
        ]
        assert found, f"the assets stage has no `{prefix}` step naming {containing or 'anything'}"
        return found[0]

    # Installs from the lock, then vendors from what it installed.
    assert first("COPY", "package-lock.json") < first("RUN npm ci") < first("RUN npm run vendor")


def test_it_copies_the_vendored_assets_into_the_final_image():
    stages = dockerfile_stages()
    assets, final = stages[0], stages[-1]
    assert final.image.startswith("python:")
    workdir = assets.arguments("WORKDIR")[-1]
    vendored = f"{workdir.rstrip('/')}/static/vendor"

    copies = [arguments.split() for arguments in final.arguments("COPY")]
    assert ["--from=assets", vendored, "/app/static/vendor"] in copies, copies


def test_it_vendors_every_library_the_templates_load():
    loaded = {
        name
        for template in (REPO / "templates").rglob("*.html")
        for name in re.findall(r"""\{%\s*static\s+['"]vendor/([^'"]+)['"]""", template.read_text())
    }
    assert loaded, "no template loads a vendored library"
    missing = sorted(name for name in loaded if f"static/vendor/{name}" not in vendor_script())
    assert not missing, f"`npm run vendor` does not produce {missing}"


def test_it_ships_no_copyleft_front_end_library():
    # The project is Apache-2.0 and the image ships these files.
    lock = json.loads((REPO / "package-lock.json").read_text())
    licences = {
        path: package.get("license", "") for path, package in lock["packages"].items() if path
    }
    assert licences, "package-lock.json lists no package"
    copyleft = {path: licence for path, licence in licences.items() if "GPL" in licence.upper()}
    assert not copyleft, copyleft


# --- docker-compose.workers.yml: workers on further machines ---------------------


@pytest.fixture(scope="module")
def workers_compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((REPO / "docker-compose.workers.yml").read_text())


def declared_queues() -> set[str]:
    source = (REPO / "secops" / "settings.py").read_text()
    (queues,) = re.findall(r"^WORKER_QUEUES = \(([^)]*)\)", source, re.MULTILINE)
    return set(re.findall(r'"(\w+)"', queues))


def test_the_scale_out_file_runs_two_workers_that_consume_every_declared_queue(
    workers_compose,
):
    services = workers_compose["services"]
    assert len(services) == 2
    consumed = set()
    for service in services.values():
        command = service["command"]
        assert command[:4] == ["celery", "-A", "secops", "worker"]
        consumed |= set(command[command.index("-Q") + 1].split(","))
        unknown = set(service["environment"]) - SETTINGS_NAMES
        assert not unknown, f"passes {sorted(unknown)}, which secops/settings.py never reads"
    assert consumed == declared_queues() == {"ingest", "detect", "respond", "export"}


def test_the_scale_out_workers_need_the_shared_database_and_broker(workers_compose):
    environment = next(iter(workers_compose["services"].values()))["environment"]
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        with pytest.raises(MissingComposeVariable, match=name):
            interpolate(environment[name], {})
