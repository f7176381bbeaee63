"""The whitelist's services: validation, who may see and change which group,
the cache of compiled rules, the preview of a group and the draft made from an
event."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import SecurityEvent, WhitelistGroupOrigin
from events.whitelisting import draft_for_event, latest_alert_facts, record_origin
from secops.services import build_scope
from tests import factories
from tests.conftest import native_alert, organisation_scope
from whitelist import services
from whitelist.models import Operator, RuleGroup
from whitelist.services import (
    ConditionSpec,
    GroupSpec,
    GroupValidationError,
    WhitelistPermissionError,
    delete_group,
    groups_in_scope,
    preview,
    save_group,
    set_group_enabled,
    validate,
)


def draft_from_event(event):
    return draft_for_event(event, latest_alert_facts(event))


pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HOST_X = "host-x"


def spec(name="Known noise", scenario="rootkit", *conditions, **fields) -> GroupSpec:
    conditions = conditions or (("host_uuid", "equals", HOST_X),)
    return GroupSpec(
        name=name,
        scenario=scenario,
        conditions=[ConditionSpec(*condition) for condition in conditions],
        **fields,
    )


def make_group(organisation, name, *, account_ids=None, **fields) -> RuleGroup:
    """A group saved as an organisation key would (allowed to make global groups)."""
    limited = {"is_global": False, "account_ids": account_ids} if account_ids else {}
    return save_group(
        spec(name, **limited, **fields), organisation_scope(organisation), allow_global=True
    )


@pytest.fixture
def bob_scope(tenancy):
    """Bob's Current Account View: account A."""
    scope = build_scope(tenancy.bob, {})
    assert scope.account_ids == {tenancy.account_a.id}
    return scope


@pytest.fixture
def groups(tenancy):
    return {
        "global": make_group(tenancy.org, "every account"),
        "a": make_group(tenancy.org, "A only", account_ids=[tenancy.account_a.id]),
        "b": make_group(tenancy.org, "B only", account_ids=[tenancy.account_b.id]),
        "ab": make_group(
            tenancy.org, "A and B", account_ids=[tenancy.account_a.id, tenancy.account_b.id]
        ),
        "umbrella": make_group(tenancy.other_org, "Umbrella's"),
    }


# --- validation -------------------------------------------------------------------


def test_it_reports_every_problem_of_a_group_by_field(tenancy):
    bad = GroupSpec(
        name=" ",
        scenario="Rootkit!",
        conditions=[ConditionSpec("host_uuid", "equals", "")],
        expires_at=timezone.now() - timedelta(minutes=1),
    )

    with pytest.raises(GroupValidationError) as raised:
        validate(bad, organisation_scope(tenancy.org), allow_global=True)

    assert raised.value.errors == {
        "name": ["Enter a name."],
        "scenario": ["Choose a scenario (an alert type: lower-case letters, digits and _)."],
        "conditions[0].value": ["Enter a condition value."],
        "expires_at": ["The expiry must be in the future."],
    }


@pytest.mark.parametrize(
    "condition, field, message",
    [
        (("command_line", "regex", "(?=a)"), "conditions[1].value", "Look-around"),
        (("host_ip", "in_cidr", "10.0.0.0/33"), "conditions[1].value", "not a CIDR block"),
        (("url", "equals", "http://a.io/"), "conditions[1].object", "not an object of"),
        (("destination_port", "equals", "22"), "conditions[1].object", "not an object of"),
        (("file_path", "in_cidr", "10.0.0.0/8"), "conditions[1].operator", "takes these"),
        (("file_path", "like", "x"), "conditions[1].operator", "takes these"),
    ],
)
def test_it_names_the_part_of_a_condition_that_is_wrong(tenancy, condition, field, message):
    bad = spec("Known", "rootkit", ("host_uuid", "equals", HOST_X), condition)

    with pytest.raises(GroupValidationError) as raised:
        validate(bad, organisation_scope(tenancy.org), allow_global=True)

    assert list(raised.value.errors) == [field]
    assert message in raised.value.errors[field][0]


def test_it_refuses_a_past_expiry_and_accepts_a_future_one(tenancy):
    scope = organisation_scope(tenancy.org)
    now = timezone.now()

    with pytest.raises(GroupValidationError) as raised:
        save_group(spec(expires_at=now), scope, allow_global=True)
    group = save_group(spec(expires_at=now + timedelta(days=1)), scope, allow_global=True)

    assert list(raised.value.errors) == ["expires_at"]
    assert group.expires_at == now + timedelta(days=1)
    assert RuleGroup.objects.count() == 1


# --- tenancy and permissions ---------------------------------------------------------


def test_it_shows_an_analyst_the_groups_that_apply_to_their_account(groups, bob_scope):
    assert {g.name for g in groups_in_scope(bob_scope)} == {"every account", "A only", "A and B"}


def test_it_shows_an_outsider_none_of_another_organisations_groups(tenancy, groups):
    charlie_scope = build_scope(tenancy.charlie, {})

    assert [g.name for g in groups_in_scope(charlie_scope)] == ["Umbrella's"]


def test_it_shows_the_organisation_every_group_of_its_own_once(tenancy, groups):
    names = [g.name for g in groups_in_scope(organisation_scope(tenancy.org))]

    assert sorted(names) == ["A and B", "A only", "B only", "every account"]


def test_it_lets_only_a_global_administrator_make_a_global_group(bob_scope):
    with pytest.raises(GroupValidationError) as raised:
        save_group(spec(is_global=True), bob_scope, allow_global=False)

    assert list(raised.value.errors) == ["is_global"]
    assert not RuleGroup.objects.exists()


def test_it_refuses_to_limit_a_group_to_accounts_outside_the_scope(tenancy, bob_scope):
    limited = spec(is_global=False, account_ids=[tenancy.account_a.id, tenancy.account_b.id])

    with pytest.raises(GroupValidationError) as raised:
        save_group(limited, bob_scope, allow_global=False)

    assert raised.value.errors == {
        "account_ids": [f"Accounts outside your current view: {tenancy.account_b.uid}"]
    }


def test_it_lets_an_analyst_make_and_change_a_group_of_their_account(tenancy, bob_scope):
    limited = spec(is_global=False, account_ids=[tenancy.account_a.id])

    group = save_group(limited, bob_scope, allow_global=False, user=tenancy.bob)
    save_group(
        spec("Renamed", is_global=False, account_ids=[tenancy.account_a.id]),
        bob_scope,
        allow_global=False,
        group=group,
    )
    set_group_enabled(group, False, bob_scope, allow_global=False)

    group.refresh_from_db()
    assert (group.name, group.enabled, group.created_by, group.is_global) == (
        "Renamed",
        False,
        tenancy.bob,
        False,
    )
    assert [a.id for a in group.accounts.all()] == [tenancy.account_a.id]


@pytest.mark.parametrize("key", ["b", "ab", "global"])
def test_it_refuses_a_change_to_a_group_beyond_the_editors_reach(groups, bob_scope, key):
    group = groups[key]
    mine_only = spec("Taken over", is_global=False, account_ids=list(bob_scope.account_ids))

    with pytest.raises(WhitelistPermissionError):
        save_group(mine_only, bob_scope, allow_global=False, group=group)
    with pytest.raises(WhitelistPermissionError):
        set_group_enabled(group, False, bob_scope, allow_global=False)
    with pytest.raises(WhitelistPermissionError):
        delete_group(group, bob_scope, allow_global=False)

    group.refresh_from_db()
    assert (group.name, group.enabled) == (groups[key].name, True)


# --- the cache of compiled rules ------------------------------------------------------


def test_it_reuses_the_compiled_rules_while_the_revision_stands(tenancy, django_assert_num_queries):
    make_group(tenancy.org, "cached")

    first = services.rule_sets({tenancy.org.id})[tenancy.org.id]
    with django_assert_num_queries(1):
        second = services.rule_sets({tenancy.org.id})[tenancy.org.id]

    assert second is first
    assert [g.name for g in second.candidates("rootkit")] == ["cached"]


def test_it_compiles_nothing_for_an_organisation_without_groups(tenancy, django_assert_num_queries):
    with django_assert_num_queries(1):
        rule_set = services.rule_sets({tenancy.org.id})[tenancy.org.id]

    assert rule_set.candidates("rootkit") == []


def test_it_recompiles_the_rules_after_every_change(tenancy):
    scope = organisation_scope(tenancy.org)

    def compiled():
        rule_set = services.rule_sets({tenancy.org.id})[tenancy.org.id]
        return [(g.name, g.enabled) for g in rule_set.candidates("rootkit")]

    group = make_group(tenancy.org, "v1")
    assert compiled() == [("v1", True)]
    set_group_enabled(group, False, scope, allow_global=True)
    assert compiled() == [("v1", False)]
    set_group_enabled(group, True, scope, allow_global=True)
    assert compiled() == [("v1", True)]
    save_group(spec("v2"), scope, allow_global=True, group=group)
    assert compiled() == [("v2", True)]
    delete_group(group, scope, allow_global=True)
    assert compiled() == []


def test_it_keeps_an_organisations_compiled_rules_when_another_changes(tenancy):
    make_group(tenancy.org, "Acme's")
    acme = services.rule_sets({tenancy.org.id})[tenancy.org.id]

    make_group(tenancy.other_org, "Umbrella's")
    both = services.rule_sets({tenancy.org.id, tenancy.other_org.id})

    assert both[tenancy.org.id] is acme
    assert [g.name for g in both[tenancy.other_org.id].candidates("rootkit")] == ["Umbrella's"]


# --- preview ----------------------------------------------------------------------------


@pytest.fixture
def recent_alerts(tenancy):
    """Rootkit alerts on host X of the last week, and others a preview must leave out."""
    now = timezone.now()
    a_on_x = factories.make_asset(tenancy.account_a, uuid=HOST_X)
    a_on_z = factories.make_asset(tenancy.account_a, uuid="host-z")
    b_on_x = factories.make_asset(tenancy.account_b, uuid=HOST_X)
    umbrella_on_x = factories.make_asset(tenancy.account_x, uuid=HOST_X)

    def alert(asset, days_ago, alert_type="rootkit"):
        return factories.make_alert(
            asset.account,
            asset=asset,
            type=alert_type,
            occurred_at=now - timedelta(days=days_ago),
        )

    return {
        "now": now,
        "a-x-1": alert(a_on_x, 1),
        "a-x-6": alert(a_on_x, 6.9),
        "a-z-2": alert(a_on_z, 2),
        "a-x-8": alert(a_on_x, 8),
        "a-x-software": alert(a_on_x, 1, "compromised_software"),
        "b-x-3": alert(b_on_x, 3),
        "umbrella-x-1": alert(umbrella_on_x, 1),
    }


def test_it_previews_the_alerts_of_the_last_week_in_scope_a_group_would_match(
    recent_alerts, bob_scope
):
    result = preview(spec(), bob_scope, now=recent_alerts["now"])

    assert (result.matched, result.examined, result.capped, result.error) == (2, 3, False, "")
    assert [s["id"] for s in result.sample] == [
        recent_alerts["a-x-1"].id,
        recent_alerts["a-x-6"].id,
    ]


def test_it_previews_the_accounts_a_limited_group_applies_to(tenancy, recent_alerts):
    scope = organisation_scope(tenancy.org)
    now = recent_alerts["now"]

    everywhere = preview(spec(), scope, now=now)
    b_only = preview(spec(is_global=False, account_ids=[tenancy.account_b.id]), scope, now=now)

    assert (everywhere.matched, everywhere.examined) == (3, 4)
    assert (b_only.matched, b_only.examined) == (1, 1)
    assert [s["id"] for s in b_only.sample] == [recent_alerts["b-x-3"].id]


def test_it_says_when_the_preview_examined_only_the_latest_alerts(
    recent_alerts, bob_scope, monkeypatch
):
    monkeypatch.setattr(services, "PREVIEW_MAX_ALERTS", 2)

    result = preview(spec(), bob_scope, now=recent_alerts["now"])

    # The two latest: a-x-1 (matched) and a-z-2 (not).
    assert (result.matched, result.examined, result.capped) == (1, 2, True)


def test_it_previews_a_condition_on_the_destination_port(tenancy):
    now = timezone.now()
    for port in (22, 22, 80):
        factories.make_alert(
            tenancy.account_a, type="brute_force", occurred_at=now, raw={"dst_port": port}
        )
    ssh = spec("ssh", "brute_force", ("destination_port", "equals", "22"))

    result = preview(ssh, organisation_scope(tenancy.org), now=now)

    assert (result.matched, result.examined) == (2, 3)


@pytest.mark.parametrize(
    "condition, message",
    [
        (("command_line", "regex", "("), "Invalid regular expression: missing ): ("),
        (("url", "equals", "http://a.io/"), "URL is not an object of the scenario “Rootkit”."),
    ],
)
def test_it_previews_a_bad_condition_as_an_error(recent_alerts, bob_scope, condition, message):
    result = preview(spec("bad", "rootkit", condition), bob_scope, now=recent_alerts["now"])

    assert (result.matched, result.examined, result.sample) == (0, 0, [])
    assert message in result.error


# --- the draft made from an event ------------------------------------------------------


def rootkit_event_alert(account, uuid, alert_type="rootkit", path=None, host=HOST_X):
    return native_alert(
        account,
        uuid=uuid,
        type=alert_type,
        name=alert_type,
        asset={"uuid": host, "name": "web-01"},
        entities=[{"type": "file", "path": path}] if path else [],
    )


@pytest.fixture
def ingest(tenancy, ingest_and_aggregate):
    def send(*items):
        result = ingest_and_aggregate(list(items), scope=organisation_scope(tenancy.org))
        assert result.errors == []
        return SecurityEvent.objects.get()

    return send


def test_it_drafts_a_group_from_the_most_common_scenario_of_an_event(tenancy, ingest, bob_scope):
    event = ingest(
        rootkit_event_alert(tenancy.account_a, "r1", path="/lib/a.so"),
        rootkit_event_alert(tenancy.account_a, "r2", path="/lib/b.so"),
        rootkit_event_alert(tenancy.account_a, "s1", "compromised_software", "/bin/ls"),
    )

    draft = draft_from_event(event)

    assert (draft.scenario, draft.is_global, draft.account_ids) == (
        "rootkit",
        False,
        [tenancy.account_a.id],
    )
    assert draft.conditions == [
        ConditionSpec("host_uuid", Operator.EQUALS, HOST_X),
        ConditionSpec("file_path", Operator.IN_LIST, "/lib/a.so\n/lib/b.so"),
    ]
    assert draft.name == f"Whitelist: {event.name}"
    # An analyst of the event's account can save the draft as it is.
    group = save_group(draft, bob_scope, allow_global=False)
    record_origin(group, event)
    assert WhitelistGroupOrigin.objects.get(group=group).event == event


def test_it_drafts_equal_to_for_the_one_value_of_an_event(tenancy, ingest):
    event = ingest(
        rootkit_event_alert(tenancy.account_b, "s1", "compromised_software", "/bin/ls"),
        rootkit_event_alert(tenancy.account_b, "s2", "compromised_software", "/bin/ps"),
        rootkit_event_alert(tenancy.account_b, "r1", path="/lib/a.so"),
    )

    draft = draft_from_event(event)

    assert (draft.scenario, draft.account_ids) == ("compromised_software", [tenancy.account_b.id])
    assert draft.conditions == [ConditionSpec("host_uuid", Operator.EQUALS, HOST_X)]


def test_it_leaves_out_of_a_draft_values_no_condition_can_hold(tenancy, ingest):
    long_path = "/srv/" + "a" * 5_000
    event = ingest(
        rootkit_event_alert(tenancy.account_a, "r1", path="/lib/a\nb.so"),
        rootkit_event_alert(tenancy.account_a, "r2", path="/lib/c.so"),
        rootkit_event_alert(tenancy.account_a, "r3", path=long_path),
    )

    draft = draft_from_event(event)

    # One path spans two lines, one is too long: no file path condition.
    assert draft.conditions == [ConditionSpec("host_uuid", Operator.EQUALS, HOST_X)]
    validate(draft, organisation_scope(tenancy.org), allow_global=True)


def test_it_keeps_a_group_when_retention_removes_its_matches_and_event(tenancy):
    from events.retention import purge_expired
    from whitelist.models import Match

    old = timezone.now() - timedelta(days=200)
    event = factories.make_event(tenancy.account_a, first_occurred_at=old, last_occurred_at=old)
    group = save_group(
        spec("From an old event"),
        organisation_scope(tenancy.org),
        allow_global=True,
    )
    record_origin(group, event)
    alert = factories.make_alert(tenancy.account_a, occurred_at=old, whitelisted=True)
    Match.objects.create(alert=alert, group=group, group_name=group.name, matched_at=old)

    purge_expired()

    group.refresh_from_db()
    assert Match.objects.count() == 0
    assert not WhitelistGroupOrigin.objects.filter(group=group).exists()
