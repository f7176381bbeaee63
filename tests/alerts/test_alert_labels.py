"""One table of names for alert types and data sources, and every type the
console itself produces has a name in it."""

import pytest
import yaml
from django.template import Context, Template

from alerts.adapters import cloud_firewall, security_center, waf
from alerts.detection_rules import KNOWN_ALERT_TYPES, predefined_rule_files
from alerts.models import AlertSource, AlertType, LogType, alert_type_label, source_label
from events.predefined import PREDEFINED_RULES
from whitelist.scenarios import SCENARIOS, scenario


def produced_types() -> set[str]:
    """Every alert type an adapter, a predefined rule or an editor list can give."""
    types = {
        *cloud_firewall.ATTACK_TYPE_SCENARIOS.values(),
        *cloud_firewall.ATTACK_TYPE_CODES.values(),
        cloud_firewall.FALLBACK_SCENARIO,
        *security_center.ALERT_CATEGORY_SCENARIOS.values(),
        *(key for _, key in security_center.ALERT_SUBTYPE_PHRASES),
        *security_center.DATA_SOURCE_SCENARIOS.values(),
        security_center.FALLBACK_SCENARIO,
        *waf.MODULE_SCENARIOS.values(),
        *KNOWN_ALERT_TYPES,
        "siem_detection",  # the type of a predefined rule that names none
    }
    for text in predefined_rule_files().values():
        for document in yaml.safe_load_all(text):
            if document.get("alert_type"):
                types.add(document["alert_type"])
    for spec in PREDEFINED_RULES:
        types.update(spec.get("match_types") or ())
    return types


def test_every_type_the_console_produces_has_a_name():
    assert produced_types() - set(AlertType.values) == set()


def test_the_whitelist_scenarios_take_their_names_from_the_table():
    for key, found in SCENARIOS.items():
        assert found.label == AlertType(key).label
    assert scenario("worm").label == "Worm"


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("abnormal_network", "Abnormal network connection"),
        ("webshell", "Webshell"),
        ("sql_injection", "sql_injection"),
        ("", ""),
        (None, ""),
    ],
)
def test_an_unknown_type_shows_as_it_is(value, label):
    assert alert_type_label(value) == label


def test_sources_and_log_types_have_names():
    assert source_label("cloud_firewall") == "Cloud Firewall"
    assert source_label("waf") == AlertSource.WAF.label
    assert source_label("dns") == LogType.DNS.label
    assert source_label("my_feed") == "my_feed"


def test_the_filters_escape_what_a_sender_made_up():
    template = Template("{% load alert_labels %}{{ t|alert_type_label }}|{{ s|source_label }}")

    html = template.render(Context({"t": "<img src=x>", "s": "cloud_firewall"}))

    assert html == "&lt;img src=x&gt;|Cloud Firewall"
