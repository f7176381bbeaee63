"""Conditions compiled to predicates and a group's AND over them, on alerts as
the pipeline loads them (``AlertFacts``): every operator, the objects an
alert lacks or has several of, folded and canonical values, and the errors an
editor sees for a condition that cannot work."""

import pytest

from alerts.facts import AlertFacts
from whitelist.matching import (
    MAX_MATCHED_LENGTH,
    AlertValues,
    CompiledGroup,
    ConditionError,
    GroupIndex,
    compile_condition,
)
from whitelist.scenarios import destination_ports

MD5 = "0123456789abcdef0123456789abcdef"


def alert(*entities, type="malicious_process", **fields) -> AlertFacts:
    values = {
        "id": 1,
        "account_id": 1,
        "region": "china",
        "source": "security_center",
        "type": type,
        "name": "Malicious process",
        "level": 2,
        "occurred_at": None,
        "asset_id": 1,
        "asset_uuid": "host-1",
        "asset_name": "web-01",
        "asset_public_ip": "198.51.100.10",
        "asset_private_ip": "10.0.0.10",
        "entities": tuple(entities),
    }
    values.update(fields)
    return AlertFacts(**values)


def entity(entity_type, value, role="related", **attributes):
    return (entity_type, role, value, attributes)


def process(path, cmdline=None, **attributes):
    return entity("process", cmdline or path, path=path, cmdline=cmdline or path, **attributes)


def group(*conditions, scenario="malicious_process") -> CompiledGroup:
    return CompiledGroup(
        id=1,
        name="Known",
        scenario=scenario,
        enabled=True,
        expires_at=None,
        account_ids=None,
        conditions=[compile_condition(*condition, scenario) for condition in conditions],
    )


def meets(condition, facts, ports=()) -> bool:
    return group(condition, scenario=facts.type).matches(facts, ports)


# --- each operator --------------------------------------------------------------

WEB_ALERT = alert(
    entity("ip", "10.1.2.3", role="attacker"),
    entity("ip", "203.0.113.9", role="victim"),
    entity("file", MD5, path="/tmp/x.sh", md5=MD5),
    process("/usr/bin/curl", "curl -s http://203.0.113.9/x.sh"),
    entity("user", "admin", name="admin"),
)


@pytest.mark.parametrize(
    "condition, expected",
    [
        (("host_uuid", "equals", "host-1"), True),
        (("host_uuid", "equals", "host-2"), False),
        (("host_uuid", "equals", "HOST-1"), False),
        (("host_uuid", "not_equals", "host-2"), True),
        (("host_uuid", "not_equals", "host-1"), False),
        (("file_path", "contains", "/tmp/"), True),
        (("file_path", "contains", "/var/"), False),
        (("file_path", "not_contains", "/var/"), True),
        (("file_path", "not_contains", "/tmp/"), False),
        (("command_line", "starts_with", "curl -s"), True),
        (("command_line", "starts_with", "-s"), False),
        (("command_line", "regex", r"curl\s+-s\s+http://203\.0\.113\.\d+/"), True),
        (("command_line", "regex", r"^wget"), False),
        (("source_ip", "in_cidr", "10.0.0.0/8"), True),
        (("source_ip", "in_cidr", "192.168.0.0/16\n172.16.0.0/12"), False),
        (("source_ip", "in_cidr", "192.168.0.0/16, 10.1.0.0/16"), True),
        (("source_ip", "in_cidr", "::/0"), False),
        (("destination_ip", "in_cidr", "203.0.113.0/24"), True),
        (("destination_ip", "in_cidr", "10.0.0.0/8"), False),
        (("user", "in_list", "root\nadmin"), True),
        (("user", "in_list", "root\nguest"), False),
        (("source_ip", "in_list", "10.1.2.3, 10.1.2.4"), True),
        (("source_ip", "in_list", "10.1.2.4"), False),
    ],
)
def test_it_applies_each_operator(condition, expected):
    assert meets(condition, WEB_ALERT) is expected


@pytest.mark.parametrize(
    "condition, expected",
    [
        (("destination_port", "equals", "22"), True),
        (("destination_port", "equals", "2222"), False),
        (("destination_port", "not_equals", "2222"), True),
        (("destination_port", "not_equals", "22"), False),
        (("destination_port", "in_list", "21\n22,23"), True),
        (("destination_port", "in_list", "80\n443"), False),
        (("destination_port", "equals", "022"), True),
    ],
)
def test_it_compares_the_destination_port_the_pipeline_read_from_the_raw_data(condition, expected):
    assert meets(condition, WEB_ALERT, ports=("22",)) is expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"dst_port": 22}, ("22",)),
        ({"dst_port": " 22 "}, ("22",)),
        ({"DstPort": "0443"}, ("443",)),
        ({"dst_port": True, "port": 8080}, ("8080",)),
        ({"dst_port": "ssh"}, ()),
        ({"dst_port": 70000}, ()),
        # Attacker-supplied data must not crash the pipeline.
        ({"dst_port": "²"}, ()),
        ({"dst_port": "9" * 5000}, ()),
        ({}, ()),
        ("not a dict", ()),
    ],
)
def test_it_reads_the_destination_port_from_the_original_data(raw, expected):
    assert destination_ports(raw) == expected


# --- an object the alert lacks, or has several of ---------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        ("file_path", "not_equals", "/tmp/x.sh"),
        ("file_path", "not_contains", "/tmp/"),
        ("domain", "not_equals", "example.com"),
        ("destination_port", "not_equals", "22"),
        ("parent_process", "not_contains", "sshd"),
    ],
)
def test_it_never_meets_a_negative_condition_on_an_object_the_alert_lacks(condition):
    bare = alert(process("/usr/bin/curl"))

    assert meets(condition, bare) is False


def test_it_meets_a_positive_condition_when_any_of_several_values_matches():
    facts = alert(process("/usr/bin/python3"), process("/usr/bin/curl"))

    assert meets(("process_path", "equals", "/usr/bin/curl"), facts)
    assert meets(("process_path", "in_list", "/bin/sh\n/usr/bin/python3"), facts)
    assert not meets(("process_path", "equals", "/bin/sh"), facts)


def test_it_meets_a_negative_condition_only_when_no_value_matches():
    facts = alert(process("/usr/bin/python3"), process("/usr/bin/curl"))

    assert not meets(("process_path", "not_equals", "/usr/bin/curl"), facts)
    assert not meets(("process_path", "not_contains", "python"), facts)
    assert meets(("process_path", "not_equals", "/bin/sh"), facts)
    assert meets(("process_path", "not_contains", "wget"), facts)


def test_it_ands_the_conditions_of_a_group():
    both = group(("host_uuid", "equals", "host-1"), ("process_path", "equals", "/usr/bin/curl"))

    assert both.matches(alert(process("/usr/bin/curl")))
    assert not both.matches(alert(process("/usr/bin/curl"), asset_uuid="host-2"))
    assert not both.matches(alert(process("/usr/bin/wget")))
    assert not both.matches(alert())


def test_it_never_matches_with_a_group_without_conditions():
    assert group().matches(WEB_ALERT) is False


# --- folded and canonical values -------------------------------------------------


def test_it_compares_file_hashes_without_regard_to_case():
    facts = alert(entity("file", MD5, path="/tmp/x", md5=MD5))

    assert meets(("file_hash", "equals", MD5.upper()), facts)
    assert meets(("file_hash", "in_list", f"{'f' * 32}\n{MD5.upper()}"), facts)
    assert not meets(("file_hash", "not_equals", MD5.upper()), facts)


def test_it_compares_domains_without_regard_to_case():
    facts = alert(entity("domain", "Pool.Example.COM"), type="mining")

    assert meets(("domain", "equals", "pool.example.com"), facts)
    assert meets(("domain", "equals", "POOL.example.com"), facts)
    assert meets(("domain", "starts_with", "POOL."), facts)
    assert meets(("domain", "contains", "Example"), facts)
    assert not meets(("domain", "not_contains", "EXAMPLE"), facts)


def test_it_keeps_the_escapes_of_a_regex_on_a_folded_object():
    """A regex on a folded object matches without regard to case; it is not
    lower-cased itself, which would make \\S mean \\s."""
    facts = alert(entity("domain", "pool.example.com"), type="mining")

    assert meets(("domain", "regex", r"^\S+\.EXAMPLE\.com$"), facts)
    assert not meets(("domain", "regex", r"\D{5}\.example\.org"), facts)
    assert meets(("domain", "regex", r"^[A-Z]+\.example"), facts)


def test_it_compares_ip_addresses_in_their_canonical_form():
    facts = alert(entity("ip", "2001:db8::1", role="attacker"), type="brute_force")

    assert meets(("source_ip", "equals", "2001:DB8:0:0::0001"), facts)
    assert meets(("source_ip", "in_list", "10.0.0.1\n2001:0db8::1"), facts)
    assert meets(("source_ip", "in_cidr", "2001:DB8::/32"), facts)
    assert not meets(("source_ip", "not_equals", "2001:0DB8::1"), facts)
    assert not meets(("source_ip", "equals", "2001:db8::2"), facts)


# --- parent processes ---------------------------------------------------------------


def test_it_finds_the_parent_process_by_pid_and_ppid():
    facts = alert(
        process("/usr/sbin/sshd", "sshd: root@pts/0", pid=100, ppid=1),
        process("/bin/bash", "bash -i", pid=200, ppid=100),
    )

    assert meets(("parent_process", "equals", "/usr/sbin/sshd"), facts)
    assert meets(("parent_process", "starts_with", "sshd: root"), facts)
    # The child is no one's parent.
    assert not meets(("parent_process", "equals", "/bin/bash"), facts)
    assert not meets(("parent_process", "not_contains", "sshd"), facts)


def test_it_finds_the_parent_process_a_process_names_itself():
    facts = alert(process("/bin/bash", pid=200, ppid=100, parent_path="/usr/sbin/cron"))

    assert meets(("parent_process", "equals", "/usr/sbin/cron"), facts)
    assert not meets(("parent_process", "equals", "/bin/bash"), facts)


def test_it_finds_no_parent_process_among_unrelated_processes():
    facts = alert(process("/bin/a", pid=1, ppid=0), process("/bin/b", pid=2, ppid=0))

    assert not meets(("parent_process", "regex", "."), facts)


# --- time bound of regular expressions ---------------------------------------------


def test_it_evaluates_a_regex_on_a_megabyte_long_command_line():
    long_command = "/usr/bin/python3 " + "a" * 1_000_000 + " END"
    facts = alert(process("/usr/bin/python3", long_command))

    assert meets(("command_line", "regex", r"^/usr/bin/python3 a+"), facts)
    # A pattern that backtracks exponentially in Python's re is linear in RE2.
    assert not meets(("command_line", "regex", r"^(a|aa)+$"), facts)
    # The regex reads a bounded prefix; the plain operators read everything.
    assert len(long_command) > MAX_MATCHED_LENGTH
    assert not meets(("command_line", "regex", "END$"), facts)
    assert meets(("command_line", "contains", " END"), facts)


# --- errors the editor sees ---------------------------------------------------------


@pytest.mark.parametrize(
    "condition, message",
    [
        (
            ("command_line", "regex", "("),
            "Invalid regular expression: missing ): (. Look-around and back-references are "
            "not supported (matching must stay linear in time).",
        ),
        (
            ("command_line", "regex", "(?=a)"),
            "Invalid regular expression: invalid perl operator: (?=. Look-around and "
            "back-references are not supported (matching must stay linear in time).",
        ),
        (("command_line", "regex", "a" * 1001), "longer than 1000 characters"),
        (("domain", "regex", "(?<!x)y"), "Look-around and back-references are not supported"),
        (("command_line", "regex", r"(a)\1"), "Invalid regular expression: invalid escape"),
        (
            ("source_ip", "in_cidr", "10.0.0.0/33"),
            "“10.0.0.0/33” is not a CIDR block (e.g. 10.0.0.0/8).",
        ),
        (
            ("source_ip", "in_cidr", "10.0.0.0/8\nlocalnet"),
            "“localnet” is not a CIDR block (e.g. 10.0.0.0/8).",
        ),
        (("source_ip", "in_cidr", ", ,"), "Enter at least one CIDR block."),
        (("source_ip", "equals", "10.0.0.256"), "“10.0.0.256” is not an IP address."),
        (("destination_ip", "in_list", "10.0.0.1\nrouter"), "“router” is not an IP address."),
        (("source_ip", "in_list", ","), "Enter at least one entry."),
        (("destination_port", "equals", "65536"), "“65536” is not a port (0 to 65535)."),
        (("destination_port", "equals", "ssh"), "“ssh” is not a port (0 to 65535)."),
        (("destination_port", "equals", "-1"), "“-1” is not a port (0 to 65535)."),
        (("destination_port", "equals", "²"), "“²” is not a port (0 to 65535)."),
        (("destination_port", "in_list", "22\n" + "9" * 5000), "is not a port (0 to 65535)."),
        (("destination_port", "contains", "22"), "Destination port takes these conditions"),
        (("host_uuid", "in_cidr", "10.0.0.0/8"), "Host UUID takes these conditions"),
        (("host_uuid", "equals", "   "), "Enter a condition value."),
        (("host_uuid", "equals", "x" * 4001), "The value is longer than 4000 characters."),
        (("registry_key", "equals", "x"), "Unknown object “registry_key”."),
    ],
)
def test_it_refuses_a_condition_that_cannot_work_with_a_clear_message(condition, message):
    with pytest.raises(ConditionError) as raised:
        compile_condition(*condition, "malicious_process")

    assert message in str(raised.value)
    assert "b'" not in str(raised.value)


def test_it_refuses_an_object_that_is_not_of_the_scenario():
    with pytest.raises(ConditionError) as raised:
        compile_condition("url", "equals", "http://a.io/", "rootkit")

    assert str(raised.value) == "URL is not an object of the scenario “Rootkit”."


def test_it_offers_every_object_to_an_alert_type_outside_the_catalogue():
    key, test, negative, fold, literals = compile_condition(
        "url", "equals", "http://a.io/", "custom_type"
    )

    assert (key, negative, fold, test("http://a.io/"), literals) == (
        "url",
        False,
        False,
        True,
        frozenset({"http://a.io/"}),
    )


# --- the index of a batch's groups by value ------------------------------------------


def numbered(group_id, *conditions, scenario="malicious_process") -> CompiledGroup:
    made = group(*conditions, scenario=scenario)
    made.id = group_id
    return made


def candidates(index: GroupIndex, facts: AlertFacts) -> list[int]:
    return [g.id for g in index.candidates(AlertValues(facts))]


def test_it_offers_a_group_only_to_alerts_carrying_one_of_its_values():
    index = GroupIndex(
        [
            numbered(3, ("host_uuid", "in_list", "host-1\nhost-2")),
            numbered(1, ("host_uuid", "equals", "host-1"), ("file_path", "contains", "/tmp")),
            numbered(2, ("file_path", "contains", "/tmp")),  # no value to file it under
            numbered(4, ("host_uuid", "not_equals", "host-9")),  # a negative is never filed
        ]
    )

    assert candidates(index, alert()) == [1, 2, 3, 4]
    assert candidates(index, alert(asset_uuid="host-2")) == [2, 3, 4]
    assert candidates(index, alert(asset_uuid="host-7")) == [2, 4]
    assert candidates(index, alert(asset_uuid=None)) == [2, 4]


def test_it_files_a_group_under_its_most_selective_condition():
    index = GroupIndex(
        [
            numbered(
                1,
                ("host_uuid", "in_list", "host-1\nhost-2\nhost-3"),
                ("alert_name", "equals", "Malicious process"),
            )
        ]
    )

    assert list(index.by_value) == [("alert_name", False)]
    assert candidates(index, alert()) == [1]
    assert candidates(index, alert(name="Other")) == []


def test_it_finds_folded_and_canonical_values_in_the_index():
    index = GroupIndex(
        [
            numbered(1, ("domain", "equals", "Pool.Example.COM"), scenario="mining"),
            numbered(2, ("source_ip", "equals", "2001:DB8:0::1"), scenario="mining"),
        ]
    )
    facts = alert(
        entity("domain", "pool.example.com"),
        entity("ip", "2001:db8::1", role="attacker"),
        type="mining",
    )

    assert candidates(index, facts) == [1, 2]


def test_it_never_files_a_group_under_the_port():
    index = GroupIndex([numbered(1, ("destination_port", "equals", "22"), scenario="brute_force")])

    assert index.unindexed and not index.by_value
