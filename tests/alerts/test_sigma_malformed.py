"""Malformed Sigma files: every one gives a list of problems, never an exception.

The corpus is made from the predefined rules by breaking them the ways an
editor does: cut short, a key dropped, a key holding the wrong kind of value,
unknown or misused modifiers, conditions that do not parse, correlation
settings pySigma refuses, YAML that is not YAML, documents that are not
mappings.
"""

import copy

import pytest
import yaml
from django.urls import reverse

from alerts.detection_rules import PREDEFINED_DIRECTORY
from alerts.sigma.compiled_rule import RuleProblems
from alerts.sigma.compiler import UNREADABLE, compile_rule

RULES = {path.stem: path.read_text() for path in sorted(PREDEFINED_DIRECTORY.glob("*.yml"))}
DROP = object()
WRONG_VALUES = [42, None, [1, "a"], {"a": "b"}]
MODIFIERS = ["|nosuch", "|re", "|cidr", "|base64offset", "|contains|all|windash", "|gt", "|"]
VALUES = ["(", "*?[", -1, "0.0.0.0/99", "%nolist%", None, ["a", None], [[1]], {"x": 1}]
CONDITIONS = [
    "",
    "selection and",
    "1 of",
    "(",
    ")",
    "selection |",
    "selection | count() by x > 2",
    "not",
    "selection or or",
    "nosuch",
    "42",
    "x of them",
    "sel* and",
    "AND",
    ["selection", "nosuch"],
    5,
    None,
    {"a": "b"},
    [],
    [None],
]
CORRELATION_VALUES = {
    "type": ["nosuch", "value_sum", "", 5, ["event_count"]],
    "timespan": ["5x", "-5m", 5, "25h"],
    "condition": [{"gte": "x"}, {"lt": 5}, {"field": "x"}, {"nosuch": 5}, "gte 5", {"gte": None}],
    "group-by": [["nosuch"], [None], 5],
    "rules": [["nosuch"], [], [None], {"a": 1}],
    "generate": ["yes", 5],
    "aliases": [{"a": "b"}, "x", {"a": {"nosuch": "c"}}],
}
BROKEN_YAML = [
    "title: [",
    "a: b\n c: d",
    "\tx: 1",
    "title: 'x",
    "- a\nb: c",
    "x: !!python/object:os.system x",
    "x: 2026-02-30",
    "{",
    "title: x\n---\n- 1",
    "title: x\n---\n5",
    "---\n---\n",
    "x: &a 1\ny: *a",
    "? [a, b]\n: c",
    "just text",
]
# What must never reach an analyst: Python's or pyparsing's own words.
RAW_OUTPUT = ("Traceback", "W:(", "(at char", "object has no attribute", "unhashable", "NoneType")


def _dump(documents) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def _paths(value, prefix=(), depth=2):
    if prefix:
        yield prefix
    if len(prefix) >= depth:
        return
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value[:2])
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield from _paths(item, (*prefix, key), depth)


def _replaced(documents, index, path, new):
    changed = copy.deepcopy(documents)
    target = changed[index]
    for step in path[:-1]:
        target = target[step]
    if new is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return changed


def _detection_mutants(name, documents, index):
    detection = documents[index]["detection"]
    selection_name, body = next((k, v) for k, v in detection.items() if isinstance(v, dict))
    key = next(iter(body))
    field = key.split("|")[0]
    for modifier in MODIFIERS:
        yield (
            f"{name}: {field}{modifier}",
            _dump(
                _replaced(documents, index, ("detection", selection_name), {field + modifier: "x"})
            ),
        )
    for value in VALUES:
        for modifier in ("", "|re") if isinstance(value, str) else ("",):
            yield (
                f"{name}: {field}{modifier}={value!r}",
                _dump(
                    _replaced(
                        documents, index, ("detection", selection_name), {field + modifier: value}
                    )
                ),
            )
    # Each rule gets a third of the conditions; the files together get them all.
    for condition in CONDITIONS[len(name) % 3 :: 3]:
        yield (
            f"{name}: condition={condition!r}",
            _dump(_replaced(documents, index, ("detection", "condition"), condition)),
        )


def _correlation_mutants(name, documents, index):
    for key, values in CORRELATION_VALUES.items():
        for value in values:
            yield (
                f"{name}: correlation {key}={value!r}",
                _dump(_replaced(documents, index, ("correlation", key), value)),
            )


def malformed_rules():
    for name, text in RULES.items():
        lines = text.splitlines(keepends=True)
        for count in range(0, len(lines), 3):
            yield f"{name}: first {count} lines", "".join(lines[:count])
        for cut in range(7, len(text), max(1, len(text) // 8)):
            yield f"{name}: cut at {cut}", text[:cut]
        documents = list(yaml.safe_load_all(text))
        for index, document in enumerate(documents):
            for path in list(_paths(document)):
                # Each path gets two of the wrong values, in turn, to keep the run short.
                turn = sum(len(str(step)) for step in path)
                for new in (DROP, WRONG_VALUES[turn % 4], WRONG_VALUES[(turn + 1) % 4]):
                    label = "dropped" if new is DROP else repr(new)
                    yield (
                        f"{name}#{index}: {'/'.join(map(str, path))} {label}",
                        _dump(_replaced(documents, index, path, new)),
                    )
            for new in WRONG_VALUES:
                changed = copy.deepcopy(documents)
                changed[index] = new
                yield f"{name}#{index}: document is {new!r}", _dump(changed)
            if isinstance(document.get("detection"), dict):
                yield from _detection_mutants(f"{name}#{index}", documents, index)
            if isinstance(document.get("correlation"), dict):
                yield from _correlation_mutants(f"{name}#{index}", documents, index)
    for text in BROKEN_YAML:
        yield f"YAML {text!r}", text


CORPUS = dict(malformed_rules())


def test_the_corpus_covers_every_predefined_rule_and_kind_of_damage():
    assert len(RULES) >= 10
    for name in RULES:
        assert any(label.startswith(f"{name}: first") for label in CORPUS)
        assert any(
            label.startswith(f"{name}#0: detection") or "correlation" in label
            for label in CORPUS
            if label.startswith(name)
        )
    assert len(CORPUS) > 1500


def test_every_malformed_rule_gives_problems_and_never_an_exception():
    failures = []
    reported = 0
    for label, text in CORPUS.items():
        line_count = max(len(text.splitlines()), 1)
        try:
            compile_rule(text)
        except RuleProblems as exc:
            reported += 1
            if not exc.problems:
                failures.append(f"{label}: an empty problem list")
            for problem in exc.problems:
                if not problem.message.strip() or any(raw in problem.message for raw in RAW_OUTPUT):
                    failures.append(f"{label}: unclear message {problem.message!r}")
                if problem.message == UNREADABLE:
                    failures.append(f"{label}: only the catch-all message")
                if problem.line is not None and not 1 <= problem.line <= line_count:
                    failures.append(f"{label}: line {problem.line} of {line_count}")
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    assert failures == []
    # Most of the damage is caught: the corpus is not made of harmless edits.
    assert reported > len(CORPUS) * 0.6


def _broken(name: str, index: int, path: tuple, value) -> str:
    return _dump(_replaced(list(yaml.safe_load_all(RULES[name])), index, path, value))


@pytest.mark.parametrize(
    "text",
    [
        _broken("base64-decoded-execution", 0, ("id",), 42),
        _broken("base64-decoded-execution", 0, ("detection", "condition"), {"a": "b"}),
        _broken("base64-decoded-execution", 0, ("detection", "condition"), "selection and"),
        _broken("login-after-brute-force", 0, ("correlation", "type"), 5),
        _broken("login-after-brute-force", 1, ("correlation", "condition"), {"gte": "x"}),
        "title: [",
    ],
)
def test_the_check_button_lists_the_problems_of_a_malformed_rule(tenancy, alice, text):
    response = alice.post(reverse("detection:check"), {"yaml": text})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="problem"' in html or 'data-testid="general-problems"' in html
    assert 'data-testid="check-ok"' not in html


def test_it_names_the_key_and_the_kind_of_value_it_holds():
    broken = _broken("base64-decoded-execution", 0, ("id",), 42)

    with pytest.raises(RuleProblems) as caught:
        compile_rule(broken)

    [problem] = caught.value.problems
    assert problem.message == "'id' must be text, not a number."
    assert broken.splitlines()[problem.line - 1].startswith("id:")


def test_it_reports_a_null_value_it_cannot_compare():
    text = RULES["miner-process"].replace("      - '/xmrig'\n", "      - null\n")

    with pytest.raises(RuleProblems) as caught:
        compile_rule(text)

    assert any("is compared with null" in p.message for p in caught.value.problems)


def test_it_checks_rules_only_for_who_may_write_them(tenancy):
    bob = tenancy.client_for(tenancy.bob)

    response = bob.post(reverse("detection:check"), {"yaml": "title: ["})

    assert response.status_code == 403


def test_an_outsider_sees_the_same_problems_and_nothing_of_another_organisation(tenancy):
    tenancy.charlie.organisation_membership.is_global_admin = True
    tenancy.charlie.organisation_membership.save()
    charlie = tenancy.client_for(tenancy.charlie)

    response = charlie.post(
        reverse("detection:check"), {"yaml": _broken("base64-decoded-execution", 0, ("id",), 42)}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "must be text, not a number" in html and "Acme" not in html


@pytest.fixture
def alice(tenancy):
    return tenancy.client_for(tenancy.alice)
