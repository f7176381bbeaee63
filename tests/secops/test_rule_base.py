"""The base both rule families share (``secops.rules``): switching a rule for
an organisation, deleting custom rules, the query of which rules apply to an
organisation, and the typed specs whose errors name their field."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from alerts.detection_models import DetectionRule
from alerts.detection_rules import (
    DetectionRuleSpec,
    InvalidDetectionRule,
    sync_predefined_rules,
)
from alerts.detection_rules import delete_custom_rule as delete_detection_rule
from alerts.detection_rules import save_custom_rule as save_detection_rule
from events.models import AggregationRule
from events.rules import AggregationRuleSpec, RuleValidationError
from events.rules import delete_custom_rule as delete_aggregation_rule
from events.rules import save_custom_rule as save_aggregation_rule
from secops.rules import PredefinedRuleError, set_rule_enabled
from tests import factories
from tests.alerts.test_sigma_views import VALID_RULE

AGGREGATION_SPEC = AggregationRuleSpec(
    name="Port scans of a host",
    group_by=("asset",),
    event_name_template="Port scans of {asset_name}",
)


@dataclass
class Family:
    model: type
    save: Callable
    delete: Callable


FAMILIES = {
    "aggregation": Family(
        AggregationRule,
        lambda organisation: save_aggregation_rule(organisation, AGGREGATION_SPEC),
        delete_aggregation_rule,
    ),
    "detection": Family(
        DetectionRule,
        lambda organisation: save_detection_rule(organisation, DetectionRuleSpec(VALID_RULE)),
        delete_detection_rule,
    ),
}


@pytest.fixture(params=sorted(FAMILIES))
def family(request, tenancy) -> Family:
    sync_predefined_rules()
    return FAMILIES[request.param]


def predefined_rule(family: Family):
    return family.model.objects.predefined().order_by("id").first()


def applies_to(family: Family, rule, organisation) -> bool:
    return family.model.objects.enabled_for(organisation.id).filter(pk=rule.pk).exists()


def test_it_switches_a_custom_rule_itself(tenancy, family):
    rule = family.save(tenancy.org)

    set_rule_enabled(rule, False, tenancy.org)
    rule.refresh_from_db()
    assert (rule.enabled, applies_to(family, rule, tenancy.org)) == (False, False)

    set_rule_enabled(rule, True, tenancy.org)
    rule.refresh_from_db()
    assert (rule.enabled, applies_to(family, rule, tenancy.org)) == (True, True)


def test_it_switches_a_predefined_rule_off_for_one_organisation_only(tenancy, family):
    rule = predefined_rule(family)

    set_rule_enabled(rule, False, tenancy.org)

    rule.refresh_from_db()
    assert rule.enabled is True
    assert not applies_to(family, rule, tenancy.org)
    assert applies_to(family, rule, tenancy.other_org)

    set_rule_enabled(rule, True, tenancy.org)
    assert applies_to(family, rule, tenancy.org)


def test_it_refuses_to_switch_another_organisations_custom_rule(tenancy, family):
    theirs = family.save(tenancy.other_org)

    with pytest.raises(PredefinedRuleError, match="belongs to another organisation"):
        set_rule_enabled(theirs, False, tenancy.org)

    theirs.refresh_from_db()
    assert theirs.enabled is True


def test_it_deletes_a_custom_rule_and_refuses_to_delete_a_predefined_one(tenancy, family):
    rule = family.save(tenancy.org)
    predefined = predefined_rule(family)

    family.delete(rule)
    with pytest.raises(PredefinedRuleError, match="cannot be deleted"):
        family.delete(predefined)

    assert not family.model.objects.filter(pk=rule.pk).exists()
    assert family.model.objects.filter(pk=predefined.pk).exists()


def test_it_retires_an_aggregation_rule_in_use_instead_of_deleting_it(tenancy):
    rule = FAMILIES["aggregation"].save(tenancy.org)
    factories.make_event(tenancy.account_a, rule=rule)

    delete_aggregation_rule(rule)

    rule.refresh_from_db()
    assert rule.enabled is False


def test_it_refuses_to_save_over_a_predefined_or_foreign_rule(tenancy):
    sync_predefined_rules()
    theirs = FAMILIES["detection"].save(tenancy.other_org)

    with pytest.raises(PredefinedRuleError, match="cannot be edited"):
        save_detection_rule(
            tenancy.org, DetectionRuleSpec(VALID_RULE), rule=predefined_rule(FAMILIES["detection"])
        )
    with pytest.raises(PredefinedRuleError, match="another organisation"):
        save_detection_rule(tenancy.org, DetectionRuleSpec(VALID_RULE), rule=theirs)
    with pytest.raises(PredefinedRuleError, match="another organisation"):
        save_aggregation_rule(
            tenancy.org, AGGREGATION_SPEC, FAMILIES["aggregation"].save(tenancy.other_org)
        )


def test_the_three_forms_of_enabled_for_agree(tenancy, family):
    own, theirs = family.save(tenancy.org), family.save(tenancy.other_org)
    switched_off = family.save(tenancy.org)
    set_rule_enabled(switched_off, False, tenancy.org)
    opted_out = predefined_rule(family)
    set_rule_enabled(opted_out, False, tenancy.org)
    organisations = [tenancy.org, tenancy.other_org]

    each = family.model.objects.enabled_for_each(o.id for o in organisations)
    for organisation in organisations:
        queried = set(family.model.objects.enabled_for(organisation.id))
        annotated = {
            rule
            for rule in family.model.objects.with_enabled_for(organisation.id)
            if rule.enabled_for_organisation
        }
        assert queried == annotated == set(each[organisation.id])
    acme = set(each[tenancy.org.id])
    assert own in acme and theirs not in acme
    assert switched_off not in acme and opted_out not in acme
    assert opted_out in each[tenancy.other_org.id]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": " "}, "name", "This field is required."),
        ({"name": "x" * 201}, "name", "Ensure this value has at most 200 characters"),
        ({"description": "a\x00b"}, "description", "Null characters are not allowed."),
        ({"group_by": ("asset", "nope")}, "group_by", "Select a valid choice. nope is not"),
        ({"window_seconds": -1}, "window_seconds", "Ensure this value is greater than or equal"),
        ({"risk": 9}, "risk", "Select a valid choice. 9 is not"),
        ({"match_types": "port_scan, Port Scan"}, "match_types", "Not an alert type key"),
    ],
)
def test_an_aggregation_rule_spec_names_the_field_at_fault(changes, field, message):
    spec = replace(AGGREGATION_SPEC, **changes)

    with pytest.raises(RuleValidationError) as refused:
        spec.validate()

    assert list(refused.value.errors) == [field]
    assert refused.value.errors[field][0].startswith(message)


def test_a_detection_rule_spec_names_the_field_at_fault():
    with pytest.raises(InvalidDetectionRule) as bad_yaml:
        DetectionRuleSpec("title: no detection\n").validate()
    with pytest.raises(InvalidDetectionRule) as bad_type:
        DetectionRuleSpec(VALID_RULE, alert_type="Not A Type").validate()

    assert list(bad_yaml.value.errors) == ["yaml"]
    assert list(bad_type.value.errors) == ["alert_type"]
    assert bad_type.value.errors["alert_type"][0].startswith("Alert type: lower-case letters")
    assert isinstance(bad_type.value, RuleValidationError)
