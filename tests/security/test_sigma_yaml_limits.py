"""Sigma YAML that is cheap to send and expensive to read: aliases that repeat
a value tenfold per level, nesting thousands of levels deep, a condition of
thousands of "not"s. Each is refused quickly, with a problem at its line,
wherever a rule is read (check, dry run, save)."""

import time
import tracemalloc

import pytest
from django.urls import reverse

from alerts.detection_models import DetectionRule
from alerts.detection_rules import check_rule, predefined_rule_files, sync_predefined_rules
from alerts.sigma.compiled_rule import RuleProblems
from alerts.sigma.compiler import compile_rule
from alerts.sigma.documents import MAX_YAML_DEPTH, MAX_YAML_NODES
from tests.alerts.test_sigma_views import VALID_RULE, problems_by_line

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

SECONDS = 2.0
MEGABYTES = 50


def alias_bomb(levels: int) -> str:
    """A valid-looking rule whose description stands for 10 ** (levels + 1)
    strings: each level is a list of ten aliases of the level before. The
    first anchor is on line 2."""
    lines = ["title: Bomb", 'a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    lines += [
        f"description: *a{levels}",
        "logsource:",
        "  product: linux",
        "  category: process_creation",
        "detection:",
        "  selection:",
        "    Image|endswith: '/nc'",
        "  condition: selection",
        "level: high",
    ]
    return "\n".join(lines) + "\n"


def nested_title(depth: int) -> str:
    return "title: " + "[" * depth + "x" + "]" * depth + "\nlevel: high\n"


@pytest.fixture
def alice(tenancy):
    return tenancy.client_for(tenancy.alice)


def timed(call):
    """(result, seconds) of ``call()``."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def peak_megabytes(call) -> float:
    """The most memory ``call()`` held at once (traced apart from the timing,
    which tracing slows down)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("levels", [1, 5, 9])
@pytest.mark.parametrize("endpoint", ["detection:check", "detection:dry_run"])
def test_it_refuses_an_alias_bomb_quickly(tenancy, alice, endpoint, levels):
    def send():
        return alice.post(
            reverse(endpoint), {"yaml": alias_bomb(levels)}, headers={"HX-Request": "true"}
        )

    response, seconds = timed(send)

    assert response.status_code == 200
    assert problems_by_line(response.content.decode()) == {
        2: ["YAML aliases and anchors (*name, &amp;name) are not allowed in rules."]
    }
    assert seconds < SECONDS
    assert peak_megabytes(send) < MEGABYTES


def test_it_refuses_to_save_an_alias_bomb(tenancy, alice):
    response, seconds = timed(
        lambda: alice.post(
            reverse("detection:rule_new"),
            {"yaml": alias_bomb(9), "alert_type": "suspicious_process"},
        )
    )

    assert response.status_code == 422
    assert "YAML aliases and anchors" in problems_by_line(response.content.decode())[2][0]
    assert seconds < SECONDS
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()


def test_it_refuses_a_single_alias_at_its_line():
    text = VALID_RULE.replace("    Image|endswith: '/nc'\n", "    Image|endswith: &nc '/nc'\n")
    text += "related_image: *nc\n"

    with pytest.raises(RuleProblems) as refused:
        check_rule(text)

    assert [(p.line, p.message) for p in refused.value.problems] == [
        (10, "YAML aliases and anchors (*name, &name) are not allowed in rules.")
    ]


@pytest.mark.parametrize("endpoint", ["detection:check", "detection:dry_run"])
def test_it_refuses_a_title_nested_5000_deep(alice, endpoint):
    response, seconds = timed(lambda: alice.post(reverse(endpoint), {"yaml": nested_title(5000)}))

    assert response.status_code == 200
    assert problems_by_line(response.content.decode()) == {
        1: [f"The YAML is nested more than {MAX_YAML_DEPTH} levels deep."]
    }
    assert seconds < SECONDS


def test_it_refuses_a_condition_of_thousands_of_nots(alice):
    text = VALID_RULE.replace("condition: selection", "condition: '" + "not " * 3000 + "selection'")

    response = alice.post(reverse("detection:check"), {"yaml": text})

    assert response.status_code == 200
    assert problems_by_line(response.content.decode())[12] == [
        "The condition is nested too deeply (a long chain of &#x27;not&#x27; or of "
        "parentheses); simplify it."
    ]


def test_it_refuses_a_rule_of_too_many_values():
    values = ",".join(["1"] * (MAX_YAML_NODES + 1))

    with pytest.raises(RuleProblems) as refused:
        check_rule(VALID_RULE + f"references: [{values}]\n")

    assert [p.message for p in refused.value.problems] == [
        f"The rule holds more than {MAX_YAML_NODES:,} YAML values."
    ]


def test_it_still_reads_every_predefined_rule(db):
    files = predefined_rule_files()

    compiled = {key: compile_rule(text) for key, text in files.items()}
    sync_predefined_rules()

    assert len(compiled) >= 10
    assert set(DetectionRule.objects.predefined().values_list("key", flat=True)) == set(files)
