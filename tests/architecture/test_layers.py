"""The import and page contracts between layers hold, and the checker catches a breach."""

import shutil
from pathlib import Path

import pytest

from tests.architecture.layers import check

REPO = Path(__file__).resolve().parents[2]


def test_the_code_base_keeps_its_layers():
    violations = check(REPO)
    assert violations == [], "\n".join(map(str, violations))


@pytest.fixture
def copy_of_repo(tmp_path):
    for name in ("secops", "alerts", "whitelist", "events", "disposal", "soar", "templates"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


def added(copy) -> list[str]:
    """What the checker reports for the copy beyond what it reports for the tree itself."""
    return sorted(set(map(str, check(copy))) - set(map(str, check(REPO))))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_function_level_import_of_a_higher_app_is_reported(copy_of_repo):
    _append(copy_of_repo / "alerts/models.py", "\n\ndef peek():\n    from events import models\n")
    messages = added(copy_of_repo)
    assert len(messages) >= 1
    assert all(m.startswith("alerts/models.py:") for m in messages), messages
    assert any("alerts imports events.models (events is above it)" in m for m in messages)


def test_a_plain_import_statement_is_checked_too(copy_of_repo):
    _append(copy_of_repo / "secops/enums.py", "\nimport whitelist.matching  # noqa\n")
    assert any("secops imports whitelist.matching" in v for v in added(copy_of_repo))


def test_a_relation_to_a_higher_apps_model_is_reported(copy_of_repo):
    _append(
        copy_of_repo / "whitelist/models.py",
        '\n\nclass Link(models.Model):\n    event = models.ForeignKey("events.SecurityEvent",'
        " on_delete=models.CASCADE)\n",
    )
    assert any(
        v.startswith("whitelist/models.py:") and "refers to a model of events" in v
        for v in added(copy_of_repo)
    )


def test_a_page_linking_up_by_url_name_is_reported(copy_of_repo):
    _append(
        copy_of_repo / "templates/alerts/alert_list.html",
        "\n<a href=\"{% url 'events:list' %}\">events</a>\n",
    )
    messages = added(copy_of_repo)
    assert len(messages) == 1 and messages[0].startswith("templates/alerts/alert_list.html:")


def test_a_redirect_to_a_higher_app_is_reported(copy_of_repo):
    _append(
        copy_of_repo / "whitelist/views.py",
        '\n\ndef away(request):\n    return redirect("events:list")\n',
    )
    assert any("links to the URL namespace 'events'" in v for v in added(copy_of_repo))


def test_a_service_importing_its_own_tasks_is_reported(copy_of_repo):
    _append(copy_of_repo / "alerts/services.py", "\n\ndef later():\n    from alerts import tasks\n")
    messages = added(copy_of_repo)
    assert any("alerts.services imports alerts.tasks" in m for m in messages), messages


def test_an_import_cycle_hidden_in_a_function_is_reported(copy_of_repo):
    (copy_of_repo / "alerts/first.py").write_text("from alerts import second  # noqa\n")
    (copy_of_repo / "alerts/second.py").write_text("def f():\n    from alerts import first\n")
    messages = added(copy_of_repo)
    assert "alerts/first.py:0: import cycle: alerts.first -> alerts.second -> alerts.first" in (
        messages
    )


def test_the_composition_root_may_use_every_app(copy_of_repo):
    _append(
        copy_of_repo / "secops/urls.py", "\nfrom events import views as _events_views  # noqa\n"
    )
    assert added(copy_of_repo) == []
