"""Organisation-wide rules (aggregation rules, Sigma rules, the opt-outs of
predefined ones) are changed by global administrators only, on the pages as
over the API; an administrator of one account may not, an outsider gets 404."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from alerts.detection_models import DetectionRule
from alerts.detection_rules import DetectionRuleSpec, sync_predefined_rules
from alerts.detection_rules import save_custom_rule as save_sigma_rule
from events.models import AggregationRule
from secops.enums import Role
from secops.models import AccountMembership
from secops.services import build_scope, create_api_key
from tests import factories
from tests.alerts.test_sigma_views import VALID_RULE
from tests.events.test_rules_views import VALID as AGGREGATION_RULE_FORM

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

PREDEFINED_AGGREGATION = "mining-on-host"
PREDEFINED_SIGMA = "reverse-shell-command"


@pytest.fixture
def account_admin(tenancy):
    """Dave administers account A of Acme, and nothing else of it."""
    return factories.make_user(tenancy.org, "dave", accounts=[tenancy.account_a], role=Role.ADMIN)


@pytest.fixture
def rules(tenancy):
    """Acme's custom aggregation and Sigma rules, and the predefined ones."""
    sync_predefined_rules()
    return {
        "aggregation": factories.make_rule(organisation=tenancy.org, name="Acme scans"),
        "sigma": save_sigma_rule(tenancy.org, DetectionRuleSpec(VALID_RULE)),
        "predefined_aggregation": AggregationRule.objects.get(
            key=PREDEFINED_AGGREGATION, organisation=None
        ),
        "predefined_sigma": DetectionRule.objects.get(key=PREDEFINED_SIGMA, organisation=None),
    }


def changes(rules) -> list[tuple[str, str, dict]]:
    """(method, url, data) of every change to an organisation-wide rule on the pages."""
    aggregation, sigma = rules["aggregation"].id, rules["sigma"].id
    predefined_aggregation = rules["predefined_aggregation"].id
    return [
        ("get", reverse("events:rule_create"), {}),
        ("post", reverse("events:rule_create"), AGGREGATION_RULE_FORM),
        ("get", reverse("events:rule_edit", args=[aggregation]), {}),
        ("post", reverse("events:rule_edit", args=[aggregation]), AGGREGATION_RULE_FORM),
        ("post", reverse("events:rule_toggle", args=[aggregation]), {"enabled": "false"}),
        (
            "post",
            reverse("events:rule_toggle", args=[predefined_aggregation]),
            {"enabled": "false"},
        ),
        ("post", reverse("events:rule_delete", args=[aggregation]), {}),
        ("get", reverse("detection:rule_new"), {}),
        ("post", reverse("detection:rule_new"), {"yaml": VALID_RULE, "enabled": "on"}),
        ("get", reverse("detection:rule_edit", args=[sigma]), {}),
        ("post", reverse("detection:rule_edit", args=[sigma]), {"yaml": VALID_RULE}),
        ("post", reverse("detection:rule_toggle", args=[sigma]), {"enabled": "false"}),
        ("post", reverse("detection:rule_delete", args=[sigma]), {}),
        (
            "post",
            reverse("detection:predefined_toggle", args=[PREDEFINED_SIGMA]),
            {"enabled": "false"},
        ),
        ("post", reverse("detection:check"), {"yaml": VALID_RULE}),
        ("post", reverse("detection:dry_run"), {"yaml": VALID_RULE}),
    ]


def state(tenancy, rules) -> tuple:
    """What the changes above would alter."""
    aggregation = AggregationRule.objects.filter(organisation=tenancy.org)
    sigma = DetectionRule.objects.filter(organisation=tenancy.org)
    return (
        sorted(aggregation.values_list("id", "name", "enabled")),
        sorted(sigma.values_list("id", "yaml", "enabled")),
        AggregationRule.objects.enabled_for(tenancy.org.id)
        .filter(pk=rules["predefined_aggregation"].pk)
        .exists(),
        rules["predefined_sigma"].disabled_by.filter(id=tenancy.org.id).exists(),
    )


def test_it_tells_an_account_admin_from_a_global_admin(tenancy, account_admin):
    dave = build_scope(account_admin, {})
    assert dave.account_ids == {tenancy.account_a.id}

    # Dave manages his account's configuration (API keys, its whitelists) ...
    assert dave.may_configure() and dave.may_handle()
    # ... but not what applies to every account of the organisation.
    assert not dave.may_manage_organisation()
    assert build_scope(tenancy.alice, {}).may_manage_organisation()
    assert not build_scope(tenancy.bob, {}).may_manage_organisation()
    assert not build_scope(tenancy.charlie, {}).may_manage_organisation()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST, Role.VIEWER])
def test_it_refuses_every_change_of_an_organisation_wide_rule_to_others_than_global_admins(
    tenancy, rules, role
):
    member = factories.make_user(tenancy.org, accounts=[tenancy.account_a], role=role)
    client = tenancy.client_for(member)
    before = state(tenancy, rules)

    answers = {
        (method, url): getattr(client, method)(url, data).status_code
        for method, url, data in changes(rules)
    }

    assert answers == dict.fromkeys(answers, 403)
    assert state(tenancy, rules) == before


def test_it_lets_a_global_admin_change_organisation_wide_rules(tenancy, rules):
    alice = tenancy.client_for(tenancy.alice)

    answers = [
        getattr(alice, method)(url, data).status_code for method, url, data in changes(rules)
    ]

    assert all(status < 400 for status in answers), answers
    assert not (
        AggregationRule.objects.enabled_for(tenancy.org.id)
        .filter(pk=rules["predefined_aggregation"].pk)
        .exists()
    )
    assert rules["predefined_sigma"].disabled_by.filter(id=tenancy.org.id).exists()
    assert not AggregationRule.objects.filter(id=rules["aggregation"].id).exists()
    assert not DetectionRule.objects.filter(id=rules["sigma"].id).exists()


def test_it_answers_404_to_an_outsider_even_an_administrator_of_his_own_account(tenancy, rules):
    AccountMembership.objects.filter(user=tenancy.charlie).update(role=Role.ADMIN)
    charlie = tenancy.client_for(tenancy.charlie)
    before = state(tenancy, rules)
    aggregation, sigma = rules["aggregation"].id, rules["sigma"].id
    urls = [
        reverse("events:rule_edit", args=[aggregation]),
        reverse("events:rule_toggle", args=[aggregation]),
        reverse("events:rule_delete", args=[aggregation]),
        reverse("detection:rule_edit", args=[sigma]),
        reverse("detection:rule_toggle", args=[sigma]),
        reverse("detection:rule_delete", args=[sigma]),
    ]

    answers = {url: charlie.post(url, {"enabled": "false"}).status_code for url in urls}

    assert answers == dict.fromkeys(urls, 404)
    assert state(tenancy, rules) == before


@pytest.mark.parametrize("kind", ["aggregation", "sigma"])
def test_it_shows_edit_buttons_to_global_admins_only(tenancy, rules, account_admin, kind):
    if kind == "aggregation":
        url, new_button = reverse("events:rules"), 'data-testid="new-rule"'
        editor = reverse("events:rule_edit", args=[rules["aggregation"].id])
    else:
        url, new_button = reverse("detection:rules"), 'data-testid="new-sigma-rule"'
        editor = reverse("detection:rule_edit", args=[rules["sigma"].id])
    buttons = [new_button, f'href="{editor}"', ">Disable</button>", "<th>Actions</th>"]

    shown_to_alice = tenancy.client_for(tenancy.alice).get(url).content.decode()
    shown_to_dave = tenancy.client_for(account_admin).get(url).content.decode()

    assert [button in shown_to_alice for button in buttons] == [True] * len(buttons)
    assert [button in shown_to_dave for button in buttons] == [False] * len(buttons)


def test_it_shows_a_predefined_sigma_rule_without_its_buttons_to_an_account_admin(
    tenancy, rules, account_admin
):
    url = reverse("detection:predefined", args=[PREDEFINED_SIGMA])

    alice_page = tenancy.client_for(tenancy.alice).get(url).content.decode()
    dave_page = tenancy.client_for(account_admin).get(url)

    assert dave_page.status_code == 200
    for button in ("for my organisation</button>", 'data-testid="dry-run-button"'):
        assert button in alice_page
        assert button not in dave_page.content.decode()


# --- the API: an organisation key, never an account's ---------------------------------


def test_it_refuses_every_rule_change_through_an_account_key(tenancy, rules):
    _, account_key = create_api_key(
        organisation=tenancy.org, account=tenancy.account_a, name="Account A"
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {account_key}")
    before = state(tenancy, rules)
    custom, predefined = rules["aggregation"].id, rules["predefined_aggregation"].id
    body = {
        "name": "Scans",
        "group_by": ["asset"],
        "event_name_template": "Scans of {asset_name}",
    }
    requests = [
        ("post", "/api/v1/aggregation-rules", body),
        ("put", f"/api/v1/aggregation-rules/{custom}", body),
        ("post", f"/api/v1/aggregation-rules/{custom}/enabled", {"enabled": False}),
        ("post", f"/api/v1/aggregation-rules/{predefined}/enabled", {"enabled": False}),
        ("delete", f"/api/v1/aggregation-rules/{custom}", None),
    ]

    answers = [
        getattr(client, method)(
            path, json.dumps(data) if data is not None else None, content_type="application/json"
        )
        for method, path, data in requests
    ]

    assert [answer.status_code for answer in answers] == [403] * len(requests)
    assert all("organisation API key" in answer.json()["detail"] for answer in answers)
    assert state(tenancy, rules) == before
