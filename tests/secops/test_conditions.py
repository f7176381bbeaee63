"""The shared condition engine: every operator on every kind of value, facts
with several values or none, AND/OR trees, their validation errors with the
path to the faulty part, and the explanation of a dry run."""

import itertools

import pytest

from secops.conditions import (
    CHOICE,
    FOLDED,
    IP,
    MAX_LIST_ENTRIES,
    MAX_MATCHED_LENGTH,
    MAX_TREE_DEPTH,
    MAX_TREE_LEAVES,
    OPERATORS_BY_KIND,
    PORT,
    TEXT,
    Choice,
    ConditionError,
    LeafOutcome,
    Operator,
    compile_condition,
    compile_tree,
    explain,
    list_entries,
    tree_errors,
)

RISK = Choice(("low", "medium", "high"))


def holds(kind, operator, value, fact) -> bool:
    return compile_condition(kind, operator, value)(fact)


# --- the operator set ---------------------------------------------------------------


def test_it_keeps_the_operator_values_the_whitelist_stores():
    assert Operator.choices == [
        ("equals", "Equal to"),
        ("not_equals", "Not equal to"),
        ("contains", "Includes"),
        ("not_contains", "Does not include"),
        ("starts_with", "Starts with"),
        ("regex", "Matches regex"),
        ("in_cidr", "In CIDR"),
        ("in_list", "In list"),
    ]
    assert Operator.negative() == {"not_equals", "not_contains"}


def test_it_is_the_operator_class_of_the_whitelist():
    from whitelist.models import Condition
    from whitelist.models import Operator as WhitelistOperator

    assert WhitelistOperator is Operator
    assert Condition._meta.get_field("operator").choices == Operator.choices


ALLOWED = {
    TEXT: {"equals", "not_equals", "contains", "not_contains", "starts_with", "regex", "in_list"},
    FOLDED: {"equals", "not_equals", "contains", "not_contains", "starts_with", "regex", "in_list"},
    IP: {"equals", "not_equals", "in_cidr", "in_list", "starts_with", "regex"},
    PORT: {"equals", "not_equals", "in_list"},
    CHOICE: {"equals", "not_equals", "in_list"},
}
A_VALUE = {TEXT: "x", FOLDED: "x", IP: "10.0.0.1", PORT: "22", CHOICE: "low"}


@pytest.mark.parametrize(
    "kind, operator", list(itertools.product(ALLOWED, [*Operator.values, "greater_than"]))
)
def test_it_offers_each_kind_its_operators_only(kind, operator):
    value = "10.0.0.0/8" if operator == "in_cidr" else A_VALUE[kind]
    compile = lambda: compile_condition(  # noqa: E731
        RISK if kind == CHOICE else kind, operator, value, label="Risk"
    )

    assert set(OPERATORS_BY_KIND[kind]) == ALLOWED[kind]
    if operator in ALLOWED[kind]:
        assert callable(compile())
    else:
        with pytest.raises(ConditionError) as raised:
            compile()
        assert raised.value.path == "operator"
        assert str(raised.value).startswith("Risk takes these conditions: Equal to, ")


# --- truth tables per kind ------------------------------------------------------------


@pytest.mark.parametrize(
    "operator, value, fact, expected",
    [
        ("equals", "curl -s", "curl -s", True),
        ("equals", "curl -s", "CURL -s", False),
        ("equals", "curl -s", "curl -s ", False),
        ("not_equals", "curl", "wget", True),
        ("not_equals", "curl", "curl", False),
        ("contains", "/tmp/", "/tmp/x.sh", True),
        ("contains", "/tmp/", "/TMP/x.sh", False),
        ("not_contains", "/var/", "/tmp/x.sh", True),
        ("not_contains", "/tmp/", "/tmp/x.sh", False),
        ("starts_with", "/usr/", "/usr/bin/curl", True),
        ("starts_with", "/bin", "/usr/bin/curl", False),
        ("regex", r"^/usr/s?bin/\w+$", "/usr/sbin/sshd", True),
        ("regex", r"^/usr/s?bin/\w+$", "/opt/usr/sbin/sshd", False),
        ("regex", "sshd", "/usr/sbin/SSHD", False),
        ("in_list", "root\nadmin", "admin", True),
        ("in_list", "root\r\n\n admin \n", "admin", True),
        ("in_list", "root\nadmin", "guest", False),
        # Commas are text: only lines separate the entries of a text list.
        ("in_list", "Doe, John\nroot", "Doe, John", True),
        ("in_list", "Doe, John", "Doe", False),
        # The value is trimmed; the fact is not.
        ("equals", "  admin  ", "admin", True),
    ],
)
def test_it_compares_text_exactly(operator, value, fact, expected):
    assert holds(TEXT, operator, value, fact) is expected


@pytest.mark.parametrize(
    "operator, value, fact, expected",
    [
        ("equals", "Pool.Example.COM", "pool.example.com", True),
        ("equals", "pool.example.com", "POOL.Example.com", True),
        ("equals", "pool.example.com", "pool.example.org", False),
        ("not_equals", "POOL.example.com", "pool.EXAMPLE.com", False),
        ("not_equals", "other.example.com", "pool.example.com", True),
        ("contains", "EXAMPLE", "pool.example.com", True),
        ("contains", "sample", "pool.example.com", False),
        ("not_contains", "Example", "POOL.EXAMPLE.COM", False),
        ("not_contains", "sample", "pool.example.com", True),
        ("starts_with", "POOL.", "pool.example.com", True),
        ("starts_with", "example", "pool.example.com", False),
        # The pattern is not lower-cased (\S would become \s): the engine ignores case.
        ("regex", r"^\S+\.EXAMPLE\.com$", "Pool.Example.com", True),
        ("regex", r"^[A-Z]+\.example", "pool.example.com", True),
        ("regex", r"\D{5}\.example\.org", "pool.example.com", False),
        ("in_list", "A.example.com\nPOOL.example.com", "pool.example.COM", True),
        ("in_list", "a.example.com", "pool.example.com", False),
    ],
)
def test_it_compares_folded_values_without_regard_to_case(operator, value, fact, expected):
    assert holds(FOLDED, operator, value, fact) is expected


@pytest.mark.parametrize(
    "operator, value, fact, expected",
    [
        ("equals", "10.1.2.3", "10.1.2.3", True),
        ("equals", "10.1.2.3", "10.1.2.4", False),
        ("equals", "2001:DB8:0:0::0001", "2001:db8::1", True),
        # Facts are put in canonical form too.
        ("equals", "2001:db8::1", "2001:0DB8::0001", True),
        ("equals", "2001:db8::1", "2001:db8::2", False),
        ("not_equals", "10.1.2.3", "10.1.2.4", True),
        ("not_equals", "2001:0db8::1", "2001:DB8::1", False),
        ("in_cidr", "10.0.0.0/8", "10.1.2.3", True),
        ("in_cidr", "10.0.0.0/8", "11.1.2.3", False),
        ("in_cidr", "192.168.0.0/16\n172.16.0.0/12", "172.31.255.255", True),
        ("in_cidr", "192.168.0.0/16, 10.1.0.0/16", "10.1.200.1", True),
        ("in_cidr", "192.168.0.0/16, 10.1.0.0/16", "10.2.0.1", False),
        # A host bit set in the block is ignored (strict=False).
        ("in_cidr", "10.1.2.3/24", "10.1.2.200", True),
        ("in_cidr", "2001:DB8::/32", "2001:db8:ffff::1", True),
        ("in_cidr", "2001:db8::/32", "2001:db9::1", False),
        # Versions never mix: ::/0 holds no IPv4 address, 0.0.0.0/0 no IPv6 one.
        ("in_cidr", "::/0", "10.1.2.3", False),
        ("in_cidr", "0.0.0.0/0", "::1", False),
        ("in_cidr", "10.0.0.0/8", "router", False),
        ("in_list", "10.0.0.1, 10.0.0.2\n2001:0db8::1", "2001:db8::1", True),
        ("in_list", "10.0.0.1, 10.0.0.2", "10.0.0.2", True),
        ("in_list", "10.0.0.1, 10.0.0.2", "10.0.0.3", False),
        ("starts_with", "10.1.", "10.1.2.3", True),
        ("starts_with", "10.1.", "110.1.2.3", False),
        ("regex", r"^10\.1\.\d+\.3$", "10.1.2.3", True),
        ("regex", r"^10\.1\.\d+\.3$", "10.1.2.4", False),
    ],
)
def test_it_compares_ip_addresses(operator, value, fact, expected):
    assert holds(IP, operator, value, fact) is expected


@pytest.mark.parametrize(
    "operator, value, fact, expected",
    [
        ("equals", "22", "22", True),
        ("equals", "22", 22, True),
        ("equals", "022", "22", True),
        ("equals", "443", "0443", True),
        ("equals", "22", 2222, False),
        ("not_equals", "22", 2222, True),
        ("not_equals", "22", " 22 ", False),
        ("in_list", "21\n22,23", 23, True),
        ("in_list", "21\n22,23", "24", False),
        ("in_list", "0, 65535", 65535, True),
        ("equals", "22", "ssh", False),
    ],
)
def test_it_compares_ports_as_numbers(operator, value, fact, expected):
    assert holds(PORT, operator, value, fact) is expected


@pytest.mark.parametrize(
    "operator, value, fact, expected",
    [
        ("equals", "high", "high", True),
        ("equals", "high", "medium", False),
        ("not_equals", "low", "medium", True),
        ("not_equals", "low", "low", False),
        # "At least medium".
        ("in_list", "medium, high", "high", True),
        ("in_list", "medium\nhigh", "medium", True),
        ("in_list", "medium, high", "low", False),
    ],
)
def test_it_compares_choices(operator, value, fact, expected):
    assert holds(RISK, operator, value, fact) is expected


def test_it_splits_list_entries_by_line():
    assert list_entries("a\r\n\n b \r c,d\n") == ["a", "b", "c,d"]


# --- facts with several values or none -----------------------------------------------


@pytest.mark.parametrize("many", [list, tuple, set, frozenset])
@pytest.mark.parametrize(
    "operator, value, expected",
    [
        # Positive operators: any value matches.
        ("equals", "brute_force", True),
        ("equals", "rootkit", False),
        ("contains", "force", True),
        ("contains", "kit", False),
        ("starts_with", "web", True),
        ("regex", "^mining$", True),
        ("regex", "^root", False),
        ("in_list", "rootkit\nmining", True),
        ("in_list", "rootkit\nransomware", False),
        # Negative operators: no value matches.
        ("not_equals", "brute_force", False),
        ("not_equals", "rootkit", True),
        ("not_contains", "force", False),
        ("not_contains", "kit", True),
    ],
)
def test_it_tests_every_value_of_a_fact(many, operator, value, expected):
    fact = many(["brute_force", "webshell", "mining"])

    assert holds(TEXT, operator, value, fact) is expected


@pytest.mark.parametrize("missing", [None, "", [], (), set(), [None, ""]])
@pytest.mark.parametrize(
    "kind, operator, value",
    [
        (TEXT, "equals", "x"),
        (TEXT, "not_equals", "x"),
        (TEXT, "contains", "x"),
        (TEXT, "not_contains", "x"),
        (TEXT, "starts_with", "x"),
        (TEXT, "regex", ".*"),
        (TEXT, "in_list", "x"),
        (FOLDED, "not_contains", "x"),
        (IP, "in_cidr", "0.0.0.0/0"),
        (IP, "not_equals", "10.0.0.1"),
        (PORT, "not_equals", "22"),
        (RISK, "not_equals", "low"),
    ],
)
def test_it_never_holds_for_a_fact_without_a_value(missing, kind, operator, value):
    """Whatever the operator, as in the whitelist: a rule must not act on
    something it was not written for."""
    assert holds(kind, operator, value, missing) is False


def test_it_skips_the_empty_values_of_a_fact():
    assert holds(TEXT, "not_equals", "x", [None, "", "y"]) is True
    assert holds(TEXT, "regex", "^$", ["", None, "y"]) is False


def test_it_reads_a_mixed_list_of_ports_and_addresses_in_canonical_form():
    assert holds(PORT, "in_list", "22", [80, "022"]) is True
    assert holds(IP, "not_equals", "2001:db8::1", ["10.0.0.1", "2001:DB8:0::1"]) is False


# --- regular expressions: time bound and limits -----------------------------------------


def test_it_evaluates_a_catastrophic_backtracking_pattern_in_linear_time():
    """A backtracking engine takes about 2**n steps for these patterns on n
    a's followed by a mismatch (this test would never end); RE2 answers at once."""
    attack = "a" * (MAX_MATCHED_LENGTH - 1) + "!"

    assert holds(TEXT, "regex", r"^(a+)+$", attack) is False
    assert holds(TEXT, "regex", r"^(a|aa)+$", attack) is False
    assert holds(FOLDED, "regex", r"^(a|A)*$", ["A" * 10_000 + "!", attack]) is False
    assert holds(TEXT, "regex", r"(x+x+)+y", "x" * 5_000) is False
    assert holds(TEXT, "regex", r"^(a+)+!$", attack) is True


def test_it_reads_only_a_bounded_prefix_with_a_regex():
    long_value = "start " + "a" * 1_000_000 + " END"

    assert holds(TEXT, "regex", "^start a+", long_value) is True
    assert holds(TEXT, "regex", "END$", long_value) is False
    # The plain operators read everything.
    assert holds(TEXT, "contains", " END", long_value) is True


# --- errors of one condition --------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, operator, value, message",
    [
        (TEXT, "regex", "(", "Invalid regular expression: missing ): (. Look-around"),
        (TEXT, "regex", "(?=a)", "Look-around and back-references are not supported"),
        (TEXT, "regex", r"(a)\1", "Invalid regular expression: invalid escape"),
        (FOLDED, "regex", "(?<!x)y", "Look-around and back-references are not supported"),
        (TEXT, "regex", "a" * 1001, "longer than 1000 characters"),
        (IP, "in_cidr", "10.0.0.0/33", "“10.0.0.0/33” is not a CIDR block (e.g. 10.0.0.0/8)."),
        (IP, "in_cidr", "10.0.0.0/8\nlocalnet", "“localnet” is not a CIDR block"),
        (IP, "in_cidr", ", ,", "Enter at least one CIDR block."),
        (IP, "equals", "10.0.0.256", "“10.0.0.256” is not an IP address."),
        (IP, "in_list", "10.0.0.1\nrouter", "“router” is not an IP address."),
        (IP, "in_list", ",", "Enter at least one entry."),
        (PORT, "equals", "65536", "“65536” is not a port (0 to 65535)."),
        (PORT, "equals", "-1", "“-1” is not a port (0 to 65535)."),
        (PORT, "equals", "²", "“²” is not a port (0 to 65535)."),
        (PORT, "in_list", "22\n" + "9" * 5000, "is not a port (0 to 65535)."),
        (RISK, "equals", "critical", "“critical” is not one of: low, medium, high."),
        (RISK, "in_list", "high, High", "“High” is not one of: low, medium, high."),
        (TEXT, "equals", "   ", "Enter a condition value."),
        (TEXT, "equals", None, "Enter a condition value."),
        (TEXT, "equals", "x" * 4001, "The value is longer than 4000 characters."),
        (TEXT, "in_list", "x\n" * (MAX_LIST_ENTRIES + 1), "At most 1000 entries in a list."),
        (TEXT, "in_list", "x" * 200_001, "The list is longer than 200000 characters."),
    ],
)
def test_it_refuses_a_condition_that_cannot_work_with_a_clear_message(
    kind, operator, value, message
):
    with pytest.raises(ConditionError) as raised:
        compile_condition(kind, operator, value)

    assert message in str(raised.value)
    assert raised.value.path == "value"
    assert "b'" not in str(raised.value)


def test_it_accepts_a_long_list_within_the_limits():
    entries = "\n".join(f"user-{i}" for i in range(MAX_LIST_ENTRIES))

    assert holds(TEXT, "in_list", entries, "user-999") is True


def test_it_refuses_a_choice_kind_without_its_values():
    with pytest.raises(TypeError):
        compile_condition(CHOICE, "equals", "high")
    with pytest.raises(ValueError, match="without commas"):
        Choice(["a,b"])


def test_it_offers_the_values_an_equal_to_or_in_list_condition_holds_for():
    assert compile_condition(FOLDED, "in_list", "A\nb").literals == {"a", "b"}
    assert compile_condition(IP, "equals", "2001:DB8::1").literals == {"2001:db8::1"}
    assert compile_condition(PORT, "in_list", "022, 23").literals == {"22", "23"}
    assert compile_condition(TEXT, "not_equals", "a").literals is None
    assert compile_condition(TEXT, "contains", "a").literals is None


# --- AND / OR trees ---------------------------------------------------------------------

FIELDS = {
    "risk": RISK,
    "source_ip": IP,
    "domain": FOLDED,
    "port": PORT,
    "alert_types": TEXT,
    "name": TEXT,
}
HIGH_RISK = {"field": "risk", "operator": "equals", "value": "high"}
INTERNAL = {"field": "source_ip", "operator": "in_cidr", "value": "10.0.0.0/8"}
EVIL_DOMAIN = {"field": "domain", "operator": "contains", "value": "evil"}


def facts_for(a: bool, b: bool, c: bool) -> dict:
    return {
        "risk": "high" if a else "low",
        "source_ip": "10.1.2.3" if b else "203.0.113.9",
        "domain": "EVIL.example.com" if c else "good.example.com",
    }


COMBINATIONS = list(itertools.product([False, True], repeat=3))


@pytest.mark.parametrize("a, b, c", COMBINATIONS)
def test_it_ands_a_condition_with_an_or_of_two(a, b, c):
    predicate = compile_tree({"all": [HIGH_RISK, {"any": [INTERNAL, EVIL_DOMAIN]}]}, FIELDS)

    assert predicate(facts_for(a, b, c)) is (a and (b or c))


@pytest.mark.parametrize("a, b, c", COMBINATIONS)
def test_it_ors_a_condition_with_an_and_of_two(a, b, c):
    predicate = compile_tree({"any": [HIGH_RISK, {"all": [INTERNAL, EVIL_DOMAIN]}]}, FIELDS)

    assert predicate(facts_for(a, b, c)) is (a or (b and c))


@pytest.mark.parametrize("a, b, c", COMBINATIONS)
def test_it_explains_which_conditions_held(a, b, c):
    tree = {"all": [HIGH_RISK, {"any": [INTERNAL, EVIL_DOMAIN]}]}

    explanation = explain(tree, FIELDS, facts_for(a, b, c))

    assert explanation.held is (a and (b or c))
    assert [(leaf.path, leaf.held) for leaf in explanation.leaves] == [
        ("conditions.all[0]", a),
        ("conditions.all[1].any[0]", b),
        ("conditions.all[1].any[1]", c),
    ]


def test_it_explains_each_condition_with_its_field_operator_and_value():
    explanation = compile_tree({"any": [EVIL_DOMAIN]}, FIELDS).explain({})

    assert explanation.held is False
    assert explanation.leaves == (
        LeafOutcome("conditions.any[0]", "domain", "contains", "evil", held=False),
    )


def test_it_applies_the_multi_value_rule_to_the_facts_of_a_tree():
    def holds_for(operator, facts):
        tree = {"all": [{"field": "alert_types", "operator": operator, "value": "webshell"}]}
        return compile_tree(tree, FIELDS)(facts)

    several = {"alert_types": ["brute_force", "webshell"]}
    others = {"alert_types": ("brute_force", "mining")}
    assert (holds_for("equals", several), holds_for("not_equals", several)) == (True, False)
    assert (holds_for("equals", others), holds_for("not_equals", others)) == (False, True)
    # A field the facts lack, or without a value, holds for neither.
    for facts in ({}, {"alert_types": []}, {"alert_types": None}):
        assert (holds_for("equals", facts), holds_for("not_equals", facts)) == (False, False)


def test_it_takes_a_number_or_a_list_as_the_value_of_a_condition():
    tree = {
        "all": [
            {"field": "port", "operator": "in_list", "value": [22, "3389"]},
            {"field": "risk", "operator": "in_list", "value": ["medium", "high"]},
            {"field": "port", "operator": "not_equals", "value": 23},
        ]
    }
    predicate = compile_tree(tree, FIELDS)

    assert predicate({"port": 3389, "risk": "medium"}) is True
    assert predicate({"port": [23, 22], "risk": "high"}) is False
    assert predicate({"port": 80, "risk": "high"}) is False


def nested(depth: int) -> dict:
    """Groups ``depth`` deep, alternating all/any, with one condition at the bottom."""
    node = HIGH_RISK
    for level in reversed(range(depth)):
        node = {("all", "any")[level % 2]: [node]}
    return node


def test_it_nests_groups_up_to_the_limit():
    predicate = compile_tree(nested(MAX_TREE_DEPTH), FIELDS)

    assert predicate({"risk": "high"}) is True
    assert predicate({"risk": "low"}) is False


def test_it_takes_as_many_conditions_as_the_limit():
    leaves = [{"field": "name", "operator": "equals", "value": str(i)} for i in range(50)]
    predicate = compile_tree({"any": leaves}, FIELDS)

    assert MAX_TREE_LEAVES == 50
    assert predicate({"name": "49"}) is True
    assert predicate({"name": "50"}) is False


def leaf(field="name", operator="equals", value="x", **extra) -> dict:
    return {"field": field, "operator": operator, "value": value, **extra}


@pytest.mark.parametrize(
    "tree, path, message",
    [
        ({"all": [leaf("nope")]}, "conditions.all[0].field", "Unknown field “nope”."),
        ({"all": [leaf(7)]}, "conditions.all[0].field", "Unknown field “7”."),
        (
            {"all": [leaf("risk", "contains", "high")]},
            "conditions.all[0].operator",
            "“risk” takes these conditions: Equal to, Not equal to, In list.",
        ),
        (
            {"any": [leaf("port", "greater_than", "22")]},
            "conditions.any[0].operator",
            "“port” takes these conditions: Equal to, Not equal to, In list.",
        ),
        ({"all": [leaf(operator=None)]}, "conditions.all[0].operator", "Expected a text."),
        (
            {
                "all": [
                    HIGH_RISK,
                    {"any": [INTERNAL, {"all": [leaf("source_ip", "in_cidr", "10/x")]}]},
                ]
            },
            "conditions.all[1].any[1].all[0].value",
            "“10/x” is not a CIDR block (e.g. 10.0.0.0/8).",
        ),
        (
            {"any": [HIGH_RISK, {"all": [leaf("name", "regex", "(?=a)")]}]},
            "conditions.any[1].all[0].value",
            "Look-around and back-references are not supported",
        ),
        ({"any": [leaf("risk", value="critical")]}, "conditions.any[0].value", "not one of"),
        ({"any": [leaf(value="  ")]}, "conditions.any[0].value", "Enter a condition value."),
        (
            {"any": [leaf(value={"x": 1})]},
            "conditions.any[0].value",
            "Expected a text, a number or a list of them.",
        ),
        (
            {"any": [leaf(value=True)]},
            "conditions.any[0].value",
            "Expected a text, a number or a list of them.",
        ),
        (
            {"any": [leaf(value=["a", None])]},
            "conditions.any[0].value",
            "Expected a text, a number or a list of them.",
        ),
        (
            nested(MAX_TREE_DEPTH + 1),
            "conditions.all[0].any[0].all[0].any[0]",
            "Groups nest at most 4 deep.",
        ),
        (
            {"all": [leaf(value=str(i)) for i in range(MAX_TREE_LEAVES + 1)]},
            "conditions",
            "At most 50 conditions.",
        ),
        (
            {"all": [leaf(), {"any": [leaf() for _ in range(MAX_TREE_LEAVES)]}]},
            "conditions",
            "At most 50 conditions.",
        ),
        # The shape of the JSON.
        ([HIGH_RISK], "conditions", 'Expected a group {"all": [...]} or {"any": [...]}.'),
        (HIGH_RISK, "conditions", 'Expected a group {"all": [...]} or {"any": [...]}.'),
        (None, "conditions", 'Expected a group {"all": [...]} or {"any": [...]}.'),
        ({"every": [HIGH_RISK]}, "conditions", "Expected a group"),
        (
            {"all": [HIGH_RISK], "any": [HIGH_RISK]},
            "conditions",
            'A group has exactly one key: "all" or "any".',
        ),
        ({"all": HIGH_RISK}, "conditions.all", "Expected a list."),
        ({"any": []}, "conditions.any", "Add at least one condition."),
        ({"all": [{"any": []}]}, "conditions.all[0].any", "Add at least one condition."),
        (
            {"all": ["risk = high"]},
            "conditions.all[0]",
            'Expected a group {"all": [...]} or {"any": [...]} or a condition '
            '{"field", "operator", "value"}.',
        ),
        ({"all": [{}]}, "conditions.all[0]", "or a condition"),
        (
            {"all": [{"field": "name", "operator": "equals"}]},
            "conditions.all[0].value",
            "Required.",
        ),
        ({"all": [leaf(negate=True)]}, "conditions.all[0]", "Unknown key “negate”."),
    ],
)
def test_it_refuses_a_tree_that_cannot_work_naming_where(tree, path, message):
    with pytest.raises(ConditionError) as raised:
        compile_tree(tree, FIELDS)

    assert (raised.value.path, message in str(raised.value)) == (path, True)


def test_it_lists_every_problem_of_a_tree():
    tree = {
        "any": [
            leaf("nope"),
            {"all": [HIGH_RISK, leaf("port", value="http")]},
            {"all": []},
        ]
    }

    errors = tree_errors(tree, FIELDS, path="rule")

    assert [(e.path, e.message) for e in errors] == [
        ("rule.any[0].field", "Unknown field “nope”."),
        ("rule.any[1].all[1].value", "“http” is not a port (0 to 65535)."),
        ("rule.any[2].all", "Add at least one condition."),
    ]
    assert tree_errors({"all": [HIGH_RISK]}, FIELDS) == []


def test_it_raises_an_error_that_reads_as_its_message():
    error = ConditionError("Enter a condition value.", "conditions.all[0].value")

    assert isinstance(error, ValueError)
    assert str(error) == "Enter a condition value."
