"""Compiling Sigma YAML: the field mapping of our log types, and every problem
of a custom rule reported with the line it is about."""

import pytest

from alerts.sigma.compiled_rule import RuleProblems
from alerts.sigma.compiler import compile_rule
from alerts.sigma.logsources import LOG_SOURCES

HEADER = """\
title: Test rule
level: medium
"""


def rule(logsource: str, selection: str, condition: str = "selection", extra: str = "") -> str:
    return (
        HEADER
        + f"logsource:\n{logsource}"
        + f"detection:\n  selection:\n{selection}  condition: {condition}\n"
        + extra
    )


PROCESS = "  product: linux\n  category: process_creation\n"


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(RuleProblems) as caught:
        compile_rule(text)
    return [(p.line, p.message) for p in caught.value.problems]


# --- the mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logsource", "field", "table", "column"),
    [
        ("  category: process_creation\n", "CommandLine", "process", "cmdline"),
        ("  category: process_creation\n", "ParentImage", "process", "parent_path"),
        ("  category: network_connection\n", "DestinationIp", "network", "dst_ip"),
        ("  category: network_connection\n", "Image", "network", "process_path"),
        ("  product: linux\n  service: auth\n", "SourceIp", "login", "src_ip"),
        ("  product: linux\n  service: sshd\n", "User", "login", "user"),
        ("  category: dns_query\n", "QueryName", "dns", "domain"),
        ("  category: webserver\n", "cs-uri-query", "http", "uri_query"),
        ("  category: webserver\n", "c-ip", "http", "src_ip"),
        ("  category: process_creation\n", "Hostname", "process", "host_uuid"),
    ],
)
def test_it_maps_sigma_fields_onto_the_columns_of_our_log_types(logsource, field, table, column):
    compiled = compile_rule(rule(logsource, f"    {field}: 'x'\n"))

    (query,) = compiled.queries.values()
    assert query.spec.table == table
    assert query.condition == f"{column}='x'"


def test_it_reads_file_categories_as_the_operations_they_stand_for():
    deleted = compile_rule(rule("  category: file_delete\n", "    TargetFilename: '/x'\n"))
    written = compile_rule(rule("  category: file_event\n", "    TargetFilename: '/x'\n"))

    assert "operation='delete'" in next(iter(deleted.queries.values())).condition
    condition = next(iter(written.queries.values())).condition
    assert "operation='create'" in condition and "operation='delete'" not in condition


def test_it_documents_every_mapped_field_in_the_log_source_table():
    documented = LOG_SOURCES["process"].known_fields()

    assert {"Image", "CommandLine", "ParentImage", "User", "Hostname"} <= set(documented)


def test_it_reads_metadata_of_the_rule_that_raises_alerts():
    compiled = compile_rule(
        rule(
            PROCESS,
            "    Image|endswith: '/nc'\n",
            extra="tags:\n  - attack.command-and-control\n  - attack.t1095\n"
            "alert_type: suspicious_process\ndescription: Netcat\nstatus: test\n",
        )
    )

    assert (compiled.title, compiled.level, compiled.kind, compiled.status) == (
        "Test rule",
        "medium",
        "detection",
        "test",
    )
    assert (compiled.tactic, compiled.technique, compiled.alert_type) == (
        "Command and Control",
        "T1095",
        "suspicious_process",
    )


# --- problems, at their lines -------------------------------------------------------------


def test_it_reports_a_yaml_syntax_error_at_its_line():
    [(line, message)] = problems(HEADER + "logsource:\n  category: [process_creation\n")

    assert line == 5 and message.startswith("YAML syntax")


def test_it_reports_an_empty_rule():
    assert problems("   \n") == [(1, "The rule is empty: paste or upload Sigma YAML.")]


def test_it_reports_every_unknown_field_at_its_line():
    found = problems(
        rule(PROCESS, "    CommandLine: 'x'\n    Commandline: 'y'\n    DestinationIp: '1.2.3.4'\n")
    )

    assert [line for line, _ in found] == [9, 10]
    assert found[0][1].startswith(
        "Unknown field 'Commandline' for the process log type; its fields are"
    )
    assert "'DestinationIp'" in found[1][1]


def test_it_reports_unknown_and_unsupported_modifiers():
    found = problems(
        rule(PROCESS, "    Image|endwith: '/nc'\n    User|minute: 5\n    CommandLine|contains: x\n")
    )

    assert found[0][0] == 8 and found[0][1].startswith("Unknown modifier 'endwith' on 'Image'")
    assert found[1][0] == 9 and found[1][1].startswith("Unsupported modifier 'minute' on 'User'")
    assert len(found) == 2


def test_it_reports_a_regular_expression_re2_cannot_run():
    [(line, message)] = problems(rule(PROCESS, "    CommandLine|re: '(?<!sudo )rm -rf'\n"))

    assert line == 8
    assert "cannot run here (RE2 syntax" in message


def test_it_reports_an_unknown_list():
    [(line, message)] = problems(
        rule("  category: network_connection\n", "    DestinationIp|expand: '%c2_ips%'\n")
    )

    assert line == 7 and message.startswith("Unknown list '%c2_ips%'")


def test_it_reports_a_keyword_search():
    text = (
        HEADER
        + f"logsource:\n{PROCESS}detection:\n  keywords:\n    - 'mimikatz'\n  condition: keywords\n"
    )

    [(line, message)] = problems(text)

    assert line == 8 and "keyword search" in message


def test_it_reports_a_log_source_no_log_type_serves():
    found = problems(
        rule("  product: windows\n  category: registry_set\n", "    TargetObject: x\n")
    )
    aws = problems(rule("  product: aws\n  service: cloudtrail\n", "    eventName: x\n"))

    assert (
        found[0][0] == 3
        and "no log type serves the log source (category: registry_set)" in found[0][1]
    )
    assert aws[0][0] == 3 and "product 'aws' has no log type here" in aws[0][1]


def test_it_reports_a_condition_naming_an_undefined_selection():
    [(line, message)] = problems(
        rule(PROCESS, "    Image: x\n", condition="selection and not filter")
    )

    assert line == 9 and message == (
        "The condition names 'filter', which is not a selection of the detection "
        "(its selections: selection)."
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "selection and",
            "it ends after 'and': a selection name, 'not', '1 of …', 'all of …' or '(' "
            "was expected next",
        ),
        ("1 of", "after '1 of' at column 3 a selection name or pattern"),
        ("(selection", "the '(' at column 1 is not closed: ')' was expected before the end"),
        ("selection)", "the ')' at column 10 closes no '('"),
        ("selection or or selection", "it has 'or' at column 14 where a selection name"),
        ("selection AND selection", "(operators are written in lower case)"),
        ("selection*", "the pattern 'selection*' at column 1 needs '1 of' or 'all of'"),
        ("selection = 1", "it has '=' at column 11"),
        ("selection selection", "where 'and', 'or' or the end of the condition was expected"),
    ],
)
def test_it_says_in_words_why_a_condition_cannot_be_parsed(condition, expected):
    [(line, message)] = problems(rule(PROCESS, "    Image: x\n", condition=f"'{condition}'"))

    assert line == 9
    assert message.startswith(f"The condition '{condition}' cannot be read: ")
    assert expected in message
    # Nothing of pyparsing's own notation reaches the analyst.
    assert "W:(" not in message and "(at char" not in message


def test_it_points_to_correlation_rules_for_the_old_pipe_syntax():
    [(line, message)] = problems(
        rule(PROCESS, "    Image: x\n", condition="'selection | count() > 5'")
    )

    assert line == 9 and "replaced by correlation rules" in message


def test_it_reports_sigmas_own_checks_at_their_lines():
    text = rule(PROCESS, "    Image: x\n").replace("level: medium", "level: severe")
    text += "status: done\n"

    found = problems(text)

    assert (2, "'severe' is not a valid Sigma rule level") in found
    assert any(line == 10 and "status" in message for line, message in found)


def test_it_requires_a_level():
    text = rule(PROCESS, "    Image: x\n").replace("level: medium\n", "")

    [(line, message)] = problems(text)

    assert line == 1 and message.startswith("The rule needs a level")


def test_it_refuses_two_rules_that_raise_alerts_in_one_file():
    one = rule(PROCESS, "    Image: x\n")

    [(line, message)] = problems(one + "---\n" + one.replace("Test rule", "Other"))

    assert line == 11 and message.startswith("A file holds one rule that raises alerts")


def test_it_refuses_a_bad_alert_type():
    [(line, message)] = problems(
        rule(PROCESS, "    Image: x\n", extra="alert_type: Reverse Shell\n")
    )

    assert line == 10 and message.startswith("alert_type:")


CORRELATION = """\
title: Correlated
level: high
correlation:
  type: {kind}
  rules:
    - {reference}
  group-by:
    - {group_by}
  timespan: {timespan}
  condition:
    {condition}
---
title: Base
name: base
logsource:
  product: linux
  service: auth
detection:
  selection:
    Result: failure
  condition: selection
level: low
"""


def correlation(**changes):
    values = {
        "kind": "event_count",
        "reference": "base",
        "group_by": "SourceIp",
        "timespan": "5m",
        "condition": "gte: 10",
    }
    values.update(changes)
    return CORRELATION.format(**values)


def test_it_compiles_a_correlation_with_the_rules_it_names():
    compiled = compile_rule(correlation())

    (spec,) = compiled.correlations
    assert compiled.kind == "correlation" and compiled.output == "rule 1"
    assert (spec.type, spec.sources, spec.timespan, spec.minimum) == (
        "event_count",
        ("base",),
        300,
        10,
    )
    assert spec.keys == {"base": {"SourceIp": "src_ip"}}
    assert compiled.queries["base"].columns == ("src_ip", "weight")


@pytest.mark.parametrize(
    ("changes", "line", "start"),
    [
        ({"reference": "missing"}, 6, "Correlation refers to 'missing'"),
        (
            {"kind": "value_sum", "condition": "gte: 10\n    field: Count"},
            4,
            "Correlation type 'value_sum' is not supported",
        ),
        ({"condition": "lte: 3"}, 10, "Only thresholds reached from below"),
        (
            {"group_by": "DestinationIp"},
            7,
            "Group-by field 'DestinationIp' is not a field of the rule",
        ),
        ({"timespan": "2d"}, 9, "The timespan may be at most 24h"),
        (
            {"kind": "value_count", "condition": "gte: 3\n    field: Image"},
            10,
            "value_count needs a field",
        ),
    ],
)
def test_it_reports_what_the_correlation_engine_does_not_offer(changes, line, start):
    found = problems(correlation(**changes))

    assert (found[0][0], found[0][1][: len(start)]) == (line, start)
