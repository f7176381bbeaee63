"""/api/v1/whitelist: the scenario catalogue, rule groups (list, read, create,
replace, change, delete), the preview, tenancy of keys, and a group made over
the API keeping a matching alert out of events."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert
from events.models import EventAlert, SecurityEvent
from secops.services import create_api_key
from tests.conftest import native_alert, organisation_scope
from whitelist.models import Operator, RuleGroup
from whitelist.services import ConditionSpec, GroupSpec, save_group

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

GROUPS = "/api/v1/whitelist/groups"


@pytest.fixture
def api(tenancy):
    """Clients of Acme (organisation key), of Acme's accounts A and B, and of Umbrella."""
    _, acme = create_api_key(organisation=tenancy.org, account=None, name="Acme")
    _, prod = create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="Prod")
    _, intl = create_api_key(organisation=tenancy.org, account=tenancy.account_b, name="Intl")
    _, umbrella = create_api_key(organisation=tenancy.other_org, account=None, name="Umbrella")
    return {
        name: Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        for name, key in (("acme", acme), ("prod", prod), ("intl", intl), ("umbrella", umbrella))
    }


def condition(object_key="alert_name", operator="equals", value="Known scanner") -> dict:
    return {"object": object_key, "operator": operator, "value": value}


def group_body(**changes) -> dict:
    """A valid body for POST/PUT /api/v1/whitelist/groups: a global group."""
    body = {"name": "Known scanner", "scenario": "mining", "conditions": [condition()]}
    body.update(changes)
    return body


def send(client, method: str, path: str = "", body=None):
    return getattr(client, method)(
        f"{GROUPS}{path}",
        json.dumps(body) if body is not None else None,
        content_type="application/json",
    )


def make_group(organisation, *conditions, accounts=(), name="Known scanner", **fields):
    """A group saved as a global administrator would; global unless accounts are given."""
    conditions = conditions or (("alert_name", Operator.EQUALS, "Known scanner"),)
    return save_group(
        GroupSpec(
            name=name,
            scenario=fields.pop("scenario", "mining"),
            conditions=[ConditionSpec(*c) for c in conditions],
            is_global=not accounts,
            account_ids=[a.id for a in accounts],
            **fields,
        ),
        organisation_scope(organisation),
        allow_global=True,
    )


# --- authentication and the catalogue ---------------------------------------------


def test_it_refuses_the_whitelist_api_without_a_key(tenancy):
    assert Client().get(GROUPS).status_code == 401
    assert Client().get("/api/v1/whitelist/scenarios").status_code == 401


def test_it_lists_the_scenarios_with_their_objects_and_operators(tenancy, api):
    response = api["prod"].get("/api/v1/whitelist/scenarios")

    assert response.status_code == 200
    scenarios = {s["key"]: s for s in response.json()}
    assert scenarios["rootkit"]["label"] == "Rootkit"
    rootkit = {o["key"]: o for o in scenarios["rootkit"]["objects"]}
    assert {"host_uuid", "file_path"} <= set(rootkit)
    assert rootkit["host_uuid"]["label"] == "Host UUID"
    assert rootkit["host_uuid"]["kind"] == "text"
    assert "regex" in rootkit["host_uuid"]["operators"]
    brute_force = {o["key"]: o for o in scenarios["brute_force"]["objects"]}
    assert "in_cidr" in brute_force["source_ip"]["operators"]
    assert brute_force["destination_port"]["operators"] == ["equals", "not_equals", "in_list"]


# --- create ---------------------------------------------------------------------


def test_it_creates_a_global_group_with_an_organisation_key(tenancy, api):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)

    response = send(
        api["acme"],
        "post",
        body=group_body(
            description="The scanner of the red team.",
            expires_at=expires.isoformat(),
            conditions=[
                condition(),
                condition("source_ip", "in_cidr", "10.0.0.0/8\n192.168.0.0/16"),
            ],
        ),
    )

    assert response.status_code == 201
    body = response.json()
    group = RuleGroup.objects.get(id=body["id"])
    assert (group.organisation, group.is_global, group.expires_at) == (tenancy.org, True, expires)
    assert list(group.conditions.values_list("object", "operator", "value")) == [
        ("alert_name", "equals", "Known scanner"),
        ("source_ip", "in_cidr", "10.0.0.0/8\n192.168.0.0/16"),
    ]
    assert {k: body[k] for k in ("name", "scenario", "scenario_label", "description")} == {
        "name": "Known scanner",
        "scenario": "mining",
        "scenario_label": "Mining",
        "description": "The scanner of the red team.",
    }
    assert (body["enabled"], body["active"], body["is_global"], body["accounts"]) == (
        True,
        True,
        True,
        [],
    )
    assert body["conditions"][1] == condition("source_ip", "in_cidr", "10.0.0.0/8\n192.168.0.0/16")
    assert (body["hit_count"], body["last_hit_at"], body["source_event"]) == (0, None, None)
    assert body["expires_at"] is not None and body["created_at"] is not None


def test_it_creates_a_group_limited_to_accounts_named_by_uid(tenancy, api):
    response = send(
        api["acme"],
        "post",
        body=group_body(accounts=[tenancy.account_b.uid, tenancy.account_a.uid]),
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["is_global"], body["accounts"]) == (
        False,
        [tenancy.account_a.uid, tenancy.account_b.uid],
    )
    group = RuleGroup.objects.get(id=body["id"])
    assert set(group.accounts.all()) == {tenancy.account_a, tenancy.account_b}


def test_it_lets_an_account_key_limit_a_group_to_its_own_account(tenancy, api):
    response = send(api["prod"], "post", body=group_body(accounts=[tenancy.account_a.uid]))

    assert response.status_code == 201
    group = RuleGroup.objects.get(id=response.json()["id"])
    assert (group.is_global, list(group.accounts.all())) == (False, [tenancy.account_a])


def test_it_refuses_a_global_group_through_an_account_key(tenancy, api):
    response = send(api["prod"], "post", body=group_body())

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["is_global"]
    assert "organisation API key" in response.json()["errors"]["is_global"][0]
    assert not RuleGroup.objects.exists()


@pytest.mark.parametrize("owner", ["account_b", "account_x"])
def test_it_refuses_accounts_outside_the_keys_reach_naming_them(tenancy, api, owner):
    outside = getattr(tenancy, owner).uid

    response = send(api["prod"], "post", body=group_body(accounts=[tenancy.account_a.uid, outside]))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["accounts"]
    assert outside in errors["accounts"][0]
    assert tenancy.account_a.uid not in errors["accounts"][0]
    assert not RuleGroup.objects.exists()


def test_it_refuses_an_unknown_account_uid_with_the_other_errors(tenancy, api):
    response = send(
        api["acme"],
        "post",
        body=group_body(name=" ", accounts=["0000000000000000"]),
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"name", "accounts"}
    assert "0000000000000000" in errors["accounts"][0]


def test_it_refuses_a_global_group_that_also_names_accounts(tenancy, api):
    response = send(
        api["acme"], "post", body=group_body(is_global=True, accounts=[tenancy.account_a.uid])
    )

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["accounts"]
    assert not RuleGroup.objects.exists()


def test_it_refuses_a_group_limited_to_no_account(tenancy, api):
    response = send(api["acme"], "post", body=group_body(is_global=False))

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "accounts": ["Choose at least one account, or make the group global."]
    }


@pytest.mark.parametrize(
    ("conditions", "field", "message"),
    [
        ([condition("command_line", "regex", "(?<=x)y")], "conditions[0].value", "Invalid regular"),
        ([condition("command_line", "regex", "([unclosed")], "conditions[0].value", "Invalid"),
        (
            [condition(), condition("source_ip", "in_cidr", "10.0.0.0/33")],
            "conditions[1].value",
            "“10.0.0.0/33” is not a CIDR block",
        ),
        ([condition("source_ip", "equals", "10.0.0.300")], "conditions[0].value", "“10.0.0.300”"),
        ([condition("destination_port", "in_list", "22\n70000")], "conditions[0].value", "“70000”"),
        ([condition("mood", "equals", "calm")], "conditions[0].object", "Unknown object “mood”"),
        ([condition("url", "equals", "/")], "conditions[0].object", "URL is not an object"),
        (
            [condition("alert_name", "resembles", "x")],
            "conditions[0].operator",
            "Alert name takes these conditions",
        ),
        (
            [condition("destination_port", "regex", "2.")],
            "conditions[0].operator",
            "Destination port takes these conditions",
        ),
        ([condition(value="  ")], "conditions[0].value", "Enter a condition value."),
        ([], "conditions", "Add at least one condition."),
    ],
)
def test_it_refuses_a_bad_condition_naming_its_field(tenancy, api, conditions, field, message):
    response = send(api["acme"], "post", body=group_body(conditions=conditions))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert not RuleGroup.objects.exists()


def test_it_refuses_an_expiry_in_the_past(tenancy, api):
    yesterday = timezone.now() - timedelta(days=1)

    response = send(api["acme"], "post", body=group_body(expires_at=yesterday.isoformat()))

    assert response.status_code == 422
    assert response.json()["errors"] == {"expires_at": ["The expiry must be in the future."]}


def test_it_refuses_an_expiry_without_a_time_zone(tenancy, api):
    response = send(api["acme"], "post", body=group_body(expires_at="2099-01-01T00:00:00"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "expires_at"
    assert not RuleGroup.objects.exists()


def test_it_answers_422_to_a_body_missing_required_fields(tenancy, api):
    response = send(api["acme"], "post", body={"name": "No scenario"})

    assert response.status_code == 422
    missing = {tuple(e["loc"])[-1] for e in response.json()["detail"]}
    assert missing == {"scenario", "conditions"}


# --- list and read --------------------------------------------------------------


def test_it_lists_the_groups_in_scope_by_scenario_and_name(tenancy, api):
    mining = make_group(tenancy.org, name="Scanner")
    rootkit = make_group(
        tenancy.org,
        ("host_uuid", "equals", "host-1"),
        name="Lab host",
        scenario="rootkit",
    )
    make_group(tenancy.other_org, name="Umbrella scanner")

    everything = api["acme"].get(GROUPS)
    of_mining = api["acme"].get(GROUPS, {"scenario": "mining"})

    assert everything.status_code == 200
    assert [g["id"] for g in everything.json()] == [mining.id, rootkit.id]
    assert [g["id"] for g in of_mining.json()] == [mining.id]


def test_it_pages_the_list_with_limit_and_offset(tenancy, api):
    groups = [make_group(tenancy.org, name=f"Group {n}") for n in range(5)]

    page = api["acme"].get(GROUPS, {"limit": 2, "offset": 2})
    too_many = api["acme"].get(GROUPS, {"limit": 501})

    assert page.status_code == 200
    assert [g["id"] for g in page.json()] == [groups[2].id, groups[3].id]
    assert too_many.status_code == 422


def test_it_reads_one_group(tenancy, api):
    group = make_group(tenancy.org, accounts=[tenancy.account_a])

    response = api["acme"].get(f"{GROUPS}/{group.id}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["is_global"], body["accounts"]) == (
        group.id,
        False,
        [tenancy.account_a.uid],
    )
    assert body["conditions"] == [condition()]


def test_it_shows_an_expired_group_as_inactive(tenancy, api):
    group = make_group(tenancy.org)
    RuleGroup.objects.filter(id=group.id).update(expires_at=timezone.now() - timedelta(hours=1))

    body = api["acme"].get(f"{GROUPS}/{group.id}").json()

    assert (body["enabled"], body["active"]) == (True, False)


def test_it_answers_404_for_a_group_that_does_not_exist(tenancy, api):
    assert api["acme"].get(f"{GROUPS}/999999").status_code == 404


# --- replace, change, delete ------------------------------------------------------


def test_it_replaces_a_group(tenancy, api):
    group = make_group(tenancy.org, description="Old notes.")

    response = send(
        api["acme"],
        "put",
        f"/{group.id}",
        group_body(
            name="Lab miners",
            accounts=[tenancy.account_c.uid],
            conditions=[condition("host_name", "starts_with", "lab-")],
        ),
    )

    assert response.status_code == 200
    group.refresh_from_db()
    assert (group.name, group.description, group.is_global) == ("Lab miners", "", False)
    assert list(group.accounts.all()) == [tenancy.account_c]
    assert list(group.conditions.values_list("object", "operator", "value")) == [
        ("host_name", "starts_with", "lab-")
    ]
    body = response.json()
    assert body["conditions"] == [condition("host_name", "starts_with", "lab-")]
    assert body["accounts"] == [tenancy.account_c.uid]


def test_it_answers_422_to_an_invalid_replacement_and_keeps_the_group(tenancy, api):
    group = make_group(tenancy.org)

    response = send(
        api["acme"],
        "put",
        f"/{group.id}",
        group_body(name="Broken", conditions=[condition("any_ip", "in_cidr", "not-a-block")]),
    )

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["conditions[0].value"]
    group.refresh_from_db()
    assert group.name == "Known scanner"
    assert group.conditions.get().value == "Known scanner"


def test_it_switches_a_group_off_and_on(tenancy, api):
    group = make_group(tenancy.org)

    off = send(api["acme"], "patch", f"/{group.id}", {"enabled": False})
    group.refresh_from_db()
    assert (off.status_code, off.json()["enabled"], off.json()["active"]) == (200, False, False)
    assert group.enabled is False

    on = send(api["acme"], "patch", f"/{group.id}", {"enabled": True})
    group.refresh_from_db()
    assert (on.status_code, on.json()["enabled"], group.enabled) == (200, True, True)


def test_it_switches_off_a_group_whose_expiry_has_passed(tenancy, api):
    group = make_group(tenancy.org)
    RuleGroup.objects.filter(id=group.id).update(expires_at=timezone.now() - timedelta(hours=1))

    response = send(api["acme"], "patch", f"/{group.id}", {"enabled": False})

    assert response.status_code == 200
    group.refresh_from_db()
    assert group.enabled is False


def test_it_changes_only_the_fields_sent(tenancy, api):
    group = make_group(tenancy.org, ("host_uuid", "equals", "host-1"), description="Notes.")

    response = send(
        api["acme"],
        "patch",
        f"/{group.id}",
        {"name": "Renamed", "conditions": [condition("host_uuid", "in_list", "host-1\nhost-2")]},
    )

    assert response.status_code == 200
    group.refresh_from_db()
    assert (group.name, group.description, group.scenario, group.is_global) == (
        "Renamed",
        "Notes.",
        "mining",
        True,
    )
    assert response.json()["conditions"] == [condition("host_uuid", "in_list", "host-1\nhost-2")]


def test_it_limits_a_group_to_the_accounts_patched_in_and_makes_it_global_again(tenancy, api):
    group = make_group(tenancy.org)

    limited = send(api["acme"], "patch", f"/{group.id}", {"accounts": [tenancy.account_b.uid]})
    group.refresh_from_db()
    assert limited.status_code == 200
    assert (group.is_global, list(group.accounts.all())) == (False, [tenancy.account_b])

    made_global = send(api["acme"], "patch", f"/{group.id}", {"is_global": True})
    group.refresh_from_db()
    assert made_global.status_code == 200
    assert (group.is_global, list(group.accounts.all())) == (True, [])


def test_it_answers_422_to_an_invalid_change(tenancy, api):
    group = make_group(tenancy.org)

    expired = send(
        api["acme"],
        "patch",
        f"/{group.id}",
        {"expires_at": (timezone.now() - timedelta(days=1)).isoformat()},
    )
    nameless = send(api["acme"], "patch", f"/{group.id}", {"name": None})

    assert expired.status_code == 422
    assert list(expired.json()["errors"]) == ["expires_at"]
    assert nameless.status_code == 422
    group.refresh_from_db()
    assert (group.name, group.expires_at) == ("Known scanner", None)


def test_it_deletes_a_group(tenancy, api):
    group = make_group(tenancy.org)

    response = send(api["acme"], "delete", f"/{group.id}")

    assert response.status_code == 204
    assert not RuleGroup.objects.filter(id=group.id).exists()


# --- tenancy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", group_body(name="Hijacked")),
        ("patch", {"enabled": False}),
        ("patch", {"name": "Hijacked"}),
        ("delete", None),
    ],
)
def test_it_answers_404_for_another_organisations_group(tenancy, api, method, body):
    acme = make_group(tenancy.org)

    response = send(api["umbrella"], method, f"/{acme.id}", body)

    assert response.status_code == 404
    acme.refresh_from_db()
    assert (acme.name, acme.enabled) == ("Known scanner", True)


def test_it_lists_no_group_of_another_organisation(tenancy, api):
    make_group(tenancy.org)
    theirs = make_group(tenancy.other_org, name="Umbrella scanner")

    response = api["umbrella"].get(GROUPS)

    assert response.status_code == 200
    assert [g["id"] for g in response.json()] == [theirs.id]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", group_body(accounts=["1111111111111111"])),
        ("patch", {"enabled": False}),
        ("delete", None),
    ],
)
def test_it_answers_404_to_an_account_key_for_another_accounts_group(tenancy, api, method, body):
    of_b = make_group(tenancy.org, accounts=[tenancy.account_b])

    response = send(api["prod"], method, f"/{of_b.id}", body)

    assert response.status_code == 404
    assert [g["id"] for g in api["prod"].get(GROUPS).json()] == []
    assert [g["id"] for g in api["intl"].get(GROUPS).json()] == [of_b.id]
    of_b.refresh_from_db()
    assert (of_b.enabled, list(of_b.accounts.all())) == (True, [tenancy.account_b])


def test_it_refuses_an_account_key_changes_to_a_global_group(tenancy, api):
    group = make_group(tenancy.org)

    seen = api["prod"].get(f"{GROUPS}/{group.id}")
    switched = send(api["prod"], "patch", f"/{group.id}", {"enabled": False})
    deleted = send(api["prod"], "delete", f"/{group.id}")

    assert seen.status_code == 200
    assert (switched.status_code, deleted.status_code) == (403, 403)
    assert "global administrator" in switched.json()["detail"]
    group.refresh_from_db()
    assert group.enabled is True


def test_it_shows_an_account_key_only_its_own_account_of_a_shared_group(tenancy, api):
    shared = make_group(tenancy.org, accounts=[tenancy.account_a, tenancy.account_b])

    seen = api["prod"].get(f"{GROUPS}/{shared.id}")
    replaced = send(
        api["prod"], "put", f"/{shared.id}", group_body(accounts=[tenancy.account_a.uid])
    )

    assert seen.status_code == 200
    assert seen.json()["accounts"] == [tenancy.account_a.uid]
    assert replaced.status_code == 403
    assert "outside your current view" in replaced.json()["detail"]
    assert set(shared.accounts.all()) == {tenancy.account_a, tenancy.account_b}


# --- preview ------------------------------------------------------------------------


@pytest.fixture
def recent_alerts(tenancy, ingest_and_aggregate):
    """Acme's alerts of the last 7 days, and two the preview must not examine."""
    now = timezone.now()

    def mining(uuid, name, hours_ago, account=tenancy.account_a, **fields):
        return native_alert(
            account,
            uuid=uuid,
            type=fields.pop("type", "mining"),
            name=name,
            occurred_at=(now - timedelta(hours=hours_ago)).isoformat(),
            **fields,
        )

    result = ingest_and_aggregate(
        [
            mining("scanner-1", "Known scanner", 1),
            mining("scanner-2", "Known scanner", 2, account=tenancy.account_b),
            mining("pool", "Mining pool connection", 3),
            mining("old-scanner", "Known scanner", 8 * 24),
            mining("other-type", "Known scanner", 1, type="malicious_process"),
        ],
        scope=organisation_scope(tenancy.org),
    )
    assert result.errors == []


def test_it_previews_how_many_recent_alerts_a_group_would_match(tenancy, api, recent_alerts):
    response = send(api["acme"], "post", "/preview", group_body(name=""))

    assert response.status_code == 200
    body = response.json()
    assert (body["matched"], body["examined"], body["capped"]) == (2, 3, False)
    assert [a["id"] for a in body["sample"]] == [
        Alert.objects.get(source_uuid=uuid).id for uuid in ("scanner-1", "scanner-2")
    ]
    assert {a["name"] for a in body["sample"]} == {"Known scanner"}
    assert not RuleGroup.objects.exists()


def test_it_previews_within_the_accounts_and_the_keys_scope(tenancy, api, recent_alerts):
    limited = send(api["acme"], "post", "/preview", group_body(accounts=[tenancy.account_b.uid]))
    through_account_key = send(api["prod"], "post", "/preview", group_body())
    outsider = send(api["umbrella"], "post", "/preview", group_body())

    assert (limited.json()["matched"], limited.json()["examined"]) == (1, 1)
    assert (through_account_key.json()["matched"], through_account_key.json()["examined"]) == (
        1,
        2,
    )
    assert (outsider.json()["matched"], outsider.json()["examined"]) == (0, 0)


def test_it_answers_422_to_a_preview_of_a_bad_condition(tenancy, api):
    response = send(
        api["acme"],
        "post",
        "/preview",
        group_body(conditions=[condition(), condition("command_line", "regex", "(a")]),
    )

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["conditions[1].value"]


# --- the pipeline and the OpenAPI document --------------------------------------------


def test_it_keeps_an_alert_a_group_made_over_the_api_matches_out_of_events(
    tenancy, api, django_capture_on_commit_callbacks
):
    created = send(
        api["acme"],
        "post",
        body=group_body(conditions=[condition(), condition("host_uuid", "equals", "host-web-01")]),
    )
    assert created.status_code == 201

    def post_alert(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = api["acme"].post(
                "/api/v1/alerts",
                json.dumps({"alerts": [native_alert(tenancy.account_a, type="mining", **fields)]}),
                content_type="application/json",
            )
        assert response.status_code == 200
        assert response.json()["accepted"] == 1

    post_alert(uuid="noise", name="Known scanner", level="low")
    noise = Alert.objects.get(source_uuid="noise")
    assert noise.whitelisted is True
    assert noise.whitelist_match.group_id == created.json()["id"]
    assert not SecurityEvent.objects.exists()

    post_alert(uuid="real", name="Mining pool connection", level="low")
    real = Alert.objects.get(source_uuid="real")
    assert real.whitelisted is False
    assert EventAlert.objects.filter(alert=real).count() == 1
    assert not EventAlert.objects.filter(alert=noise).exists()
    counted = api["acme"].get(f"{GROUPS}/{created.json()['id']}").json()
    assert (counted["hit_count"], counted["last_hit_at"] is not None) == (1, True)


def test_it_documents_the_whitelist_endpoints(api):
    response = api["umbrella"].get("/api/v1/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/v1/whitelist/groups"]) == {"get", "post"}
    assert set(paths["/api/v1/whitelist/groups/{group_id}"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/whitelist/groups/preview"]) == {"post"}
    assert set(paths["/api/v1/whitelist/scenarios"]) == {"get"}
    assert paths["/api/v1/whitelist/groups"]["post"]["tags"] == ["whitelist"]
