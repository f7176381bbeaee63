"""The README's `manage.py` commands work as written, after `make run`, in a
fresh copy of the repository.

The commands are read from README.md, so this follows the documentation: a
command added there is run here, and a placeholder the test cannot fill fails
it. The copy holds what a clone of the working tree would (tracked files and
new ones not ignored: no .venv, var/ or static/vendor), with `.venv` linked to
the interpreter running the tests. Every command runs with none of the
settings' variables set, as in a shell after `make run`: that target sets
DEBUG only for itself.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_deployment import REPO, SETTINGS_NAMES

PREFIX = ".venv/bin/python manage.py "
ORGANISATION = "Docs Example"
UID = "5555555555555555"
# What each placeholder stands for, by the option (or command) before it.
VALUES = {
    ("create_organisation", "NAME"): ORGANISATION,
    ("--organisation", "NAME"): ORGANISATION,
    ("--uid", "UID"): UID,
    ("--account", "UID"): UID,
    ("--name", "NAME"): "Docs Prod",
    ("--name", "LABEL"): "docs key",
    ("--region", "cn|intl"): "cn",
    ("--username", "NAME"): "docs-admin",
    ("--user", "NAME"): "docs-admin",
    ("--password", "PW"): "docs-password-7-horses",
    ("--member", "UID:ROLE"): f"{UID}:admin",
    ("import_intel", "FILE"): "docs/intel/example-iocs.csv",
    ("--source", "NAME"): "docs feed",
    ("--format", "stix|csv"): "csv",
    ("--days", "N"): "30",
}
_PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z_:]*|\w+(?:\|\w+)+)$")


def documented_commands(readme: str) -> list[str]:
    """Each `.venv/bin/python manage.py ...` line of the README's shell blocks,
    continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(line.split(" #")[0].split())
            if line.startswith(PREFIX):
                commands.append(line)
    return commands


def _option_group(tokens: list[str], start: int) -> int:
    """How many tokens the option at ``start`` takes: itself and its placeholder."""
    if start + 1 < len(tokens) and _PLACEHOLDER.match(tokens[start + 1]):
        return 2
    return 1


def variants(synopsis: list[str]) -> list[list[str]]:
    """The synopsis with each choice of ``a | b`` made, optional parts included."""
    tokens = [token.strip("[]") for token in synopsis if token.strip("[]") not in ("", "...")]
    if "|" not in tokens:
        return [tokens]
    bar = tokens.index("|")
    # The option group just before the bar, or the one just after it.
    before = max(i for i in range(bar) if tokens[i].startswith("--"))
    after = bar + 1
    without_after = tokens[:bar] + tokens[after + _option_group(tokens, after) :]
    without_before = tokens[:before] + tokens[after:]
    return variants(without_after) + variants(without_before)


def concrete(arguments: list[str]) -> list[str]:
    command, filled = arguments[0], [arguments[0]]
    for position, token in enumerate(arguments[1:], start=1):
        if not _PLACEHOLDER.match(token):
            filled.append(token)
            continue
        previous = arguments[position - 1]
        context = previous if previous.startswith("--") else command
        assert (context, token) in VALUES, (
            f"README: `{' '.join(arguments)}`: teach this test a value for {token} after {context}"
        )
        filled.append(VALUES[context, token])
    return filled


def test_it_reads_the_provisioning_commands_from_the_readme():
    commands = documented_commands((REPO / "README.md").read_text())
    names = [command.removeprefix(PREFIX).split()[0] for command in commands]

    assert {"create_organisation", "create_account", "create_user", "create_api_key"} <= set(names)
    synopsis = "create_api_key --account UID | --organisation NAME [--name LABEL]"
    assert variants(synopsis.split(" ")) == [
        ["create_api_key", "--account", "UID", "--name", "LABEL"],
        ["create_api_key", "--organisation", "NAME", "--name", "LABEL"],
    ]


def fresh_copy(target: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return target


def shell_after_make_run() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_NAMES
        and name not in ("DJANGO_SETTINGS_MODULE", "DATA_DIR", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the repository's files")
def test_the_readmes_manage_commands_work_as_written_after_make_run(tmp_path):
    checkout = fresh_copy(tmp_path / "checkout")
    environment = shell_after_make_run()

    def run(command: str, **extra):
        return subprocess.run(
            command.split()[:2] + concrete(command.split()[2:]),
            cwd=checkout,
            env={**environment, **extra},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    # What `make run` does first: migrate the embedded database, with DEBUG on.
    migrated = run(PREFIX + "migrate --noinput", DEBUG="true")
    assert migrated.returncode == 0, migrated.stderr

    commands = documented_commands((checkout / "README.md").read_text())
    for command in commands:
        synopsis = command.removeprefix(PREFIX).split()
        for arguments in variants(synopsis):
            line = PREFIX + " ".join(arguments)
            result = run(line)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
            assert "SECRET_KEY" not in result.stderr

    # The commands used the database `make run` serves from.
    assert (checkout / "var" / "secops.sqlite3").exists()
    listed = run(PREFIX + "create_organisation NAME")
    assert listed.stdout.strip() == f"Organisation {ORGANISATION} already exists"
