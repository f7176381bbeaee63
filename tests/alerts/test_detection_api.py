"""Sigma detection rules over the API: list, read, create and update with the
editor's check and its problems at their lines, Check, Dry run, enable/disable
and delete; an organisation key changes them, an account key only reads."""

import pytest

from alerts.detection_models import DetectionRule
from alerts.detection_rules import DetectionRuleSpec, save_custom_rule, sync_predefined_rules
from alerts.services import ingest_logs
from tests.alerts.test_sigma_views import BROKEN_RULE, VALID_RULE, netcat_log
from tests.conftest import organisation_scope
from tests.disposal.test_api import key_client

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


@pytest.fixture
def org_key(tenancy):
    return key_client(tenancy.org)


@pytest.fixture
def own_rule(tenancy):
    return save_custom_rule(tenancy.org, DetectionRuleSpec(VALID_RULE), user=tenancy.alice)


def test_it_creates_a_rule_and_reads_it_back_with_its_yaml(org_key, tenancy):
    response = post(org_key, "/api/v1/detection-rules", {"yaml": VALID_RULE})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["title"], body["alert_type"], body["level"]) == (
        "Netcat listener",
        "suspicious_process",
        "high",
    )
    assert body["predefined"] is False and body["enabled"] is True
    assert org_key.get(f"/api/v1/detection-rules/{body['id']}").json()["yaml"] == VALID_RULE
    assert DetectionRule.objects.get(id=body["id"]).organisation == tenancy.org


def test_it_reports_every_problem_by_field_and_line_and_stores_nothing(org_key, tenancy):
    response = post(org_key, "/api/v1/detection-rules", {"yaml": BROKEN_RULE})

    assert response.status_code == 422
    body = response.json()
    assert "yaml" in body["errors"]
    lines = {p["line"] for p in body["problems"] if p["field"] == "yaml"}
    assert {2, 10} <= lines
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()


def test_check_says_what_the_rule_is_and_refuses_a_bad_alert_type(org_key):
    good = post(org_key, "/api/v1/detection-rules/check", {"yaml": VALID_RULE})
    bad = post(
        org_key, "/api/v1/detection-rules/check", {"yaml": VALID_RULE, "alert_type": "Not A Type"}
    )

    assert good.status_code == 200
    assert good.json()["kind"] == "detection" and good.json()["risk"] == 3
    assert bad.status_code == 422
    assert list(bad.json()["errors"]) == ["alert_type"]


def test_dry_run_reads_the_keys_logs_and_stores_nothing(org_key, tenancy):
    ingest_logs([netcat_log(tenancy.account_a)], scope=organisation_scope(tenancy.org))

    response = post(org_key, "/api/v1/detection-rules/dry-run", {"yaml": VALID_RULE})

    assert response.status_code == 200, response.content
    assert response.json()["records"] >= 1 and response.json()["matches"] == 1
    assert not DetectionRule.objects.filter(organisation=tenancy.org).exists()


def test_it_updates_switches_and_deletes_a_custom_rule(org_key, own_rule):
    path = f"/api/v1/detection-rules/{own_rule.id}"
    changed = org_key.put(
        path,
        {"yaml": VALID_RULE.replace("Netcat listener", "Netcat"), "enabled": True},
        content_type="application/json",
    )
    off = post(org_key, f"{path}/enabled", {"enabled": False})
    deleted = org_key.delete(path)

    assert changed.json()["title"] == "Netcat"
    assert off.json()["enabled"] is False
    assert deleted.status_code == 204
    assert not DetectionRule.objects.filter(id=own_rule.id).exists()


def test_a_predefined_rule_is_switched_off_for_the_organisation_only_and_not_edited(
    org_key, tenancy
):
    sync_predefined_rules()
    rule = DetectionRule.objects.predefined().order_by("key").first()

    off = post(org_key, f"/api/v1/detection-rules/{rule.id}/enabled", {"enabled": False})
    edited = org_key.put(
        f"/api/v1/detection-rules/{rule.id}", {"yaml": VALID_RULE}, content_type="application/json"
    )

    assert off.json()["enabled"] is False
    rule.refresh_from_db()
    assert rule.enabled and list(rule.disabled_by.all()) == [tenancy.org]
    assert edited.status_code == 409


def test_an_account_key_reads_rules_but_may_not_change_them(tenancy, own_rule):
    account_key = key_client(tenancy.org, tenancy.account_a)

    listed = account_key.get("/api/v1/detection-rules")
    created = post(account_key, "/api/v1/detection-rules", {"yaml": VALID_RULE})
    checked = post(account_key, "/api/v1/detection-rules/check", {"yaml": VALID_RULE})
    deleted = account_key.delete(f"/api/v1/detection-rules/{own_rule.id}")

    assert own_rule.id in [r["id"] for r in listed.json()]
    assert (created.status_code, checked.status_code, deleted.status_code) == (403, 403, 403)
    assert DetectionRule.objects.filter(organisation=tenancy.org).count() == 1


def test_another_organisations_rule_is_a_404(tenancy, own_rule):
    outsider = key_client(tenancy.other_org)

    assert outsider.get(f"/api/v1/detection-rules/{own_rule.id}").status_code == 404
    assert outsider.delete(f"/api/v1/detection-rules/{own_rule.id}").status_code == 404
    assert own_rule.id not in [r["id"] for r in outsider.get("/api/v1/detection-rules").json()]
    assert DetectionRule.objects.filter(id=own_rule.id).exists()
