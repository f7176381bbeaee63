"""Every ATT&CK mapping of the code base pairs a technique with a tactic it
belongs to, checked against the table in ``secops.attck``."""

import re
from pathlib import Path

import pytest
import yaml

from alerts.adapters.waf import SCENARIO_ATTCK
from alerts.detection_rules import predefined_rule_files
from alerts.sigma.compiler import TACTICS as SIGMA_TACTIC_TAGS
from alerts.sigma.compiler import compile_rule
from events.queries import timeline_stages
from secops import attck, demo

ROOT = Path(__file__).resolve().parents[2]
TECHNIQUE_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b", re.IGNORECASE)


def test_the_table_names_only_enterprise_tactics():
    assert len(attck.TACTICS) == 14
    for technique, (name, tactics) in attck.TECHNIQUES.items():
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", technique)
        assert name and tactics and set(tactics) <= set(attck.TACTIC_NAMES), technique


def test_every_technique_id_in_the_code_is_in_the_table():
    found = set()
    for folder in ("alerts", "events", "secops", "soar", "disposal", "whitelist"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yml") and "migrations" not in path.parts:
                found |= {match.upper() for match in TECHNIQUE_ID.findall(path.read_text())}
    assert found, "the scan found no technique at all"
    assert found - set(attck.TECHNIQUES) == set()


@pytest.mark.parametrize("scenario", sorted(SCENARIO_ATTCK))
def test_the_waf_mapping_pairs_a_technique_with_its_tactic(scenario):
    mapping = SCENARIO_ATTCK[scenario]

    assert attck.tactic_name(mapping["tactic"]) in attck.tactics_of(mapping["technique"])


DEMO_MAPPINGS = {**demo._ATTCK, **demo._HIT_ATTCK}


@pytest.mark.parametrize("key", sorted(DEMO_MAPPINGS))
def test_the_demo_mapping_pairs_a_technique_with_its_tactic_and_its_name(key):
    tactic, technique = DEMO_MAPPINGS[key]
    technique_id, _, name = technique.partition(" ")

    assert tactic in attck.tactics_of(technique_id)
    assert name == attck.TECHNIQUES[technique_id][0]


def test_smb_exploitation_is_lateral_movement():
    tactic, technique = demo._HIT_ATTCK["SMB remote code execution (MS17-010)"]

    assert (tactic, attck.technique_id(technique)) == ("Lateral Movement", "T1210")


@pytest.mark.parametrize("key", sorted(predefined_rule_files()))
def test_every_tactic_a_predefined_rule_tags_belongs_to_one_of_its_techniques(key):
    text = predefined_rule_files()[key]
    for document in yaml.safe_load_all(text):
        tags = [str(tag).lower() for tag in document.get("tags") or ()]
        techniques = [t.split(".", 1)[1].upper() for t in tags if TECHNIQUE_ID.search(t)]
        tactics = [
            SIGMA_TACTIC_TAGS[t.split(".", 1)[1]]
            for t in tags
            if t.split(".", 1)[1] in SIGMA_TACTIC_TAGS
        ]
        covered = {tactic for technique in techniques for tactic in attck.tactics_of(technique)}
        assert set(tactics) <= covered, f"{key}: {set(tactics) - covered} has no technique"

    rule = compile_rule(text)
    assert rule.tactic in attck.tactics_of(rule.technique)


def test_a_rule_shows_the_tactic_of_its_technique_whatever_the_tag_order():
    text = predefined_rule_files()["web-server-spawns-shell"]
    tags = re.search(r"tags:\n(?:  - .*\n)+", text).group()
    reordered = "tags:\n  - attack.initial-access\n  - attack.t1505.003\n  - attack.persistence\n"

    rule = compile_rule(text.replace(tags, reordered))

    assert (rule.tactic, rule.technique) == ("Persistence", "T1505.003")


class _Alert:
    def __init__(self, tactic):
        self.tactic = tactic


def test_the_timeline_reads_a_tactic_id_as_its_stage():
    stages = timeline_stages([_Alert("TA0001"), _Alert("Initial Access"), _Alert("TA0008")])

    assert [(s["tactic"], s["order"], len(s["alerts"])) for s in stages] == [
        ("Initial Access", 3, 2),
        ("Lateral Movement", 10, 1),
    ]
