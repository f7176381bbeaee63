"""POST /api/v1/alerts and /api/v1/logs: the 200/400/401/413/422 contract, key
scopes, cloud formats, the key command and the OpenAPI document."""

import json
from dataclasses import dataclass
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from alerts.api import MAX_BODY_BYTES
from alerts.models import Alert, AlertSource, IngestionRejection, LogRecord
from alerts.services import MAX_BATCH_ITEMS
from events.models import SecurityEvent
from secops.models import ApiKey
from secops.services import create_api_key, revoke_api_key
from tests.conftest import ALERT_TIME, native_alert

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

UNAUTHORISED = {"detail": "Missing, unknown or revoked API key."}


@dataclass
class Keys:
    acme: str  # organisation-wide key of Acme
    account_a: str  # key of Acme's account A only
    umbrella: str  # organisation-wide key of the outsider organisation
    revoked: str


@pytest.fixture
def keys(tenancy) -> Keys:
    _, acme = create_api_key(organisation=tenancy.org, account=None, name="Acme collector")
    _, account_a = create_api_key(
        organisation=tenancy.org, account=tenancy.account_a, name="Prod collector"
    )
    _, umbrella = create_api_key(organisation=tenancy.other_org, account=None, name="Umbrella")
    revoked_key, revoked = create_api_key(organisation=tenancy.org, account=None, name="Old")
    revoke_api_key(revoked_key)
    return Keys(acme=acme, account_a=account_a, umbrella=umbrella, revoked=revoked)


def post(path: str, body, key: str | None = None, **query):
    """POST a JSON body (or raw bytes) with an optional Bearer key."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    url = f"/api/v1/{path}" + (f"?{urlencode(query)}" if query else "")
    return Client().post(url, content, content_type="application/json", **headers)


def native_log(owner, **fields) -> dict:
    return {
        "type": "login",
        "account": owner.uid,
        "host_uuid": "host-web-01",
        "time": ALERT_TIME.isoformat(),
        "user": "root",
        "src_ip": "203.0.113.7",
        "result": "failure",
        **fields,
    }


# --- authentication -----------------------------------------------------------


@pytest.mark.parametrize("path", ["alerts", "logs"])
def test_it_refuses_a_request_without_a_key(tenancy, path):
    response = post(path, {path: []})

    assert response.status_code == 401
    assert response.json() == UNAUTHORISED


@pytest.mark.parametrize("key", ["sk_000000000000_not-a-real-secret", "garbage", "sk_x"])
def test_it_refuses_an_unknown_key(tenancy, keys, key):
    response = post("alerts", {"alerts": [native_alert(tenancy.account_a)]}, key=key)

    assert response.status_code == 401
    assert response.json() == UNAUTHORISED
    assert Alert.objects.count() == 0


def test_it_refuses_a_revoked_key(tenancy, keys):
    response = post("alerts", {"alerts": [native_alert(tenancy.account_a)]}, key=keys.revoked)

    assert response.status_code == 401
    assert response.json() == UNAUTHORISED
    assert Alert.objects.count() == 0


def test_it_refuses_a_key_with_a_wrong_secret_behind_a_real_prefix(tenancy, keys):
    prefix = keys.acme.rsplit("_", 1)[0]

    response = post("alerts", {"alerts": []}, key=f"{prefix}_{'A' * 43}")

    assert response.status_code == 401


def test_it_records_when_a_key_was_last_used(tenancy, keys):
    post("alerts", {"alerts": []}, key=keys.account_a)

    used = ApiKey.objects.get(account=tenancy.account_a)
    assert used.last_used_at is not None
    assert ApiKey.objects.get(name="Acme collector").last_used_at is None


# --- the contract -------------------------------------------------------------


def test_it_answers_200_with_counts_and_aggregates_after_commit(
    tenancy, keys, django_capture_on_commit_callbacks
):
    batch = [
        native_alert(tenancy.account_a, type="mining", name="Mining pool connection"),
        native_alert(tenancy.account_a, type="mining", name="Miner started"),
    ]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post("alerts", {"alerts": batch}, key=keys.acme)

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "skipped": 0, "errors": []}
    assert len(callbacks) >= 1  # the pipeline waits for the commit
    event = SecurityEvent.objects.get()
    assert (event.rule.key, event.alert_count) == ("mining-on-host", 2)


def test_it_answers_200_with_duplicates_when_a_batch_is_sent_again(tenancy, keys):
    body = {"alerts": [native_alert(tenancy.account_a), native_alert(tenancy.account_a)]}
    post("alerts", body, key=keys.acme)

    response = post("alerts", body, key=keys.acme)

    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 2, "skipped": 0, "errors": []}
    assert Alert.objects.count() == 2


def test_it_answers_422_naming_index_and_field_and_stores_nothing(tenancy, keys):
    bad_time = native_alert(tenancy.account_a, occurred_at=int(ALERT_TIME.timestamp()))  # seconds
    no_name = native_alert(tenancy.account_a)
    del no_name["name"]

    response = post(
        "alerts", {"alerts": [native_alert(tenancy.account_a), bad_time, no_name]}, key=keys.acme
    )

    assert response.status_code == 422
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "skipped": 0,
        "errors": [
            {
                "index": 1,
                "field": "occurred_at",
                "message": "epoch time must be in milliseconds (a 13-digit number)",
            },
            {"index": 2, "field": "name", "message": "Field required"},
        ],
    }
    assert Alert.objects.count() == 0
    assert IngestionRejection.objects.count() == 2


def test_it_stores_the_valid_items_with_partial_and_answers_200(tenancy, keys):
    batch = [
        native_alert(tenancy.account_a, level="urgent"),
        native_alert(tenancy.account_a),
        native_alert(tenancy.account_a, uuid=""),
    ]

    response = post("alerts", {"alerts": batch}, key=keys.acme, partial="true")

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "level"), (2, "uuid")]
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"alerts": [', "Body is not valid JSON"),
        ("", "Body is not valid JSON"),
        (b"\xff\xfe\x00", "Body is not valid JSON"),
        ("[]", 'Body must be a JSON object with a list under "alerts".'),
        ('{"alerts": {}}', 'Body must be a JSON object with a list under "alerts".'),
        ('{"logs": []}', 'Body must be a JSON object with a list under "alerts".'),
        ('"alerts"', 'Body must be a JSON object with a list under "alerts".'),
    ],
)
def test_it_answers_400_to_a_body_that_is_not_the_expected_json(tenancy, keys, body, detail):
    response = post("alerts", body, key=keys.acme)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_it_answers_400_for_a_body_that_is_not_an_object_of_logs(tenancy, keys):
    response = post("logs", {"alerts": []}, key=keys.acme)

    assert response.status_code == 400
    assert response.json() == {"detail": 'Body must be a JSON object with a list under "logs".'}


@pytest.mark.parametrize("path", ["alerts", "logs"])
def test_it_answers_413_past_the_item_limit(tenancy, keys, path):
    response = post(path, {path: [{}] * (MAX_BATCH_ITEMS + 1)}, key=keys.acme)

    assert response.status_code == 413
    assert response.json() == {"detail": "At most 5000 items per request (5001 sent)."}
    assert IngestionRejection.objects.count() == 0


def test_it_takes_exactly_the_item_limit(tenancy, keys):
    response = post("alerts", {"alerts": [{}] * MAX_BATCH_ITEMS}, key=keys.acme)

    assert response.status_code == 422  # 5,000 empty items: read, then refused one by one


@pytest.mark.parametrize("path", ["alerts", "logs"])
def test_it_answers_413_past_ten_megabytes(tenancy, keys, path):
    opening = f'{{"{path}": [], "padding": "'.encode()
    body = opening + b"x" * (MAX_BODY_BYTES - len(opening)) + b'"}'
    assert len(body) == MAX_BODY_BYTES + 2

    response = post(path, body, key=keys.acme)

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body over 10 MB."}


def test_it_answers_422_not_500_to_an_epoch_time_out_of_range(tenancy, keys):
    body = {"alerts": [native_alert(tenancy.account_a, occurred_at=10**20)]}

    response = Client(raise_request_exception=False).post(
        "/api/v1/alerts",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {keys.acme}",
    )

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "occurred_at")]


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "union select\x00--"},
        {"raw": {"payload": "GET /a\x00.php"}},
        {"entities": [{"type": "payload", "value": "cat /etc/passwd\x00.jpg"}]},
        {"exceptions": [{"name": "Payload", "value": "\x00"}]},
    ],
)
def test_it_never_answers_500_to_a_nul_character_in_an_alert(tenancy, keys, changes):
    """Attack payloads carry NUL bytes; PostgreSQL text and jsonb cannot store them
    as they are. The API must store the alert or refuse it naming the field."""
    body = {"alerts": [native_alert(tenancy.account_a, **changes)]}

    response = Client(raise_request_exception=False).post(
        "/api/v1/alerts",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {keys.acme}",
    )

    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert [e["field"].split(".")[0] for e in response.json()["errors"]] == list(changes)
    else:
        assert response.json()["accepted"] == 1


def test_it_never_answers_500_to_a_nul_character_in_a_log(tenancy, keys):
    body = {"logs": [native_log(tenancy.account_a, user="root\x00", tty="pts/0\x00")]}

    response = Client(raise_request_exception=False).post(
        "/api/v1/logs",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {keys.acme}",
    )

    assert response.status_code in (200, 422)
    if response.status_code == 200:
        assert response.json()["accepted"] == 1


# --- which accounts a key reaches ---------------------------------------------


def test_it_lets_an_organisation_key_post_to_every_account_of_its_organisation(tenancy, keys):
    batch = [
        native_alert(account)
        for account in (tenancy.account_a, tenancy.account_b, tenancy.account_c)
    ]

    response = post("alerts", {"alerts": batch}, key=keys.acme)

    assert response.status_code == 200
    assert response.json()["accepted"] == 3


def test_it_lets_an_account_key_post_only_to_its_account(tenancy, keys):
    accepted = post("alerts", {"alerts": [native_alert(tenancy.account_a)]}, key=keys.account_a)
    refused = post("alerts", {"alerts": [native_alert(tenancy.account_b)]}, key=keys.account_a)

    assert accepted.status_code == 200
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "index": 0,
            "field": "account",
            "message": "account 2222222222222222 is unknown or not in this key's scope",
        }
    ]
    assert list(Alert.objects.values_list("account_id", flat=True)) == [tenancy.account_a.id]


def test_it_gives_an_outsiders_key_account_errors_for_acme_accounts(tenancy, keys):
    batch = [native_alert(tenancy.account_a), native_alert(tenancy.account_b)]

    response = post("alerts", {"alerts": batch}, key=keys.umbrella, partial="true")

    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (0, "account"),
        (1, "account"),
    ]
    assert Alert.objects.count() == 0
    # The refusals are the outsider's to see, not Acme's.
    assert set(IngestionRejection.objects.values_list("organisation_id", flat=True)) == {
        tenancy.other_org.id
    }


def test_it_lets_an_outsiders_key_post_to_its_own_account(tenancy, keys):
    response = post("alerts", {"alerts": [native_alert(tenancy.account_x)]}, key=keys.umbrella)

    assert response.status_code == 200
    assert Alert.objects.get().account == tenancy.account_x


def test_the_same_uuid_in_two_organisations_is_two_alerts(tenancy, keys):
    """An alert's identity includes its account: another organisation's uuid
    neither collides with nor reveals this one's."""
    post("alerts", {"alerts": [native_alert(tenancy.account_a, uuid="shared")]}, key=keys.acme)

    response = post(
        "alerts", {"alerts": [native_alert(tenancy.account_x, uuid="shared")]}, key=keys.umbrella
    )

    assert (response.json()["accepted"], response.json()["duplicates"]) == (1, 0)
    assert sorted(Alert.objects.values_list("account__uid", flat=True)) == sorted(
        [tenancy.account_a.uid, tenancy.account_x.uid]
    )


# --- logs ---------------------------------------------------------------------


def test_it_stores_logs_and_counts_repeats_as_duplicates(tenancy, keys):
    body = {"logs": [native_log(tenancy.account_a), native_log(tenancy.account_a, user="admin")]}

    first = post("logs", body, key=keys.account_a)
    again = post("logs", body, key=keys.account_a)

    assert (first.status_code, first.json()) == (
        200,
        {"accepted": 2, "duplicates": 0, "skipped": 0, "errors": []},
    )
    assert (again.status_code, again.json()) == (
        200,
        {"accepted": 0, "duplicates": 2, "skipped": 0, "errors": []},
    )
    assert LogRecord.objects.count() == 2


def test_it_answers_422_for_a_bad_log(tenancy, keys):
    response = post(
        "logs", {"logs": [native_log(tenancy.account_a, result="maybe")]}, key=keys.account_a
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 0, "field": "result", "message": "Input should be 'success' or 'failure'"}
    ]


# --- cloud formats ------------------------------------------------------------


def sas_alert_row(**changes) -> dict:
    """A Security Center ``sas-security-log`` row as Log Service delivers it."""
    row = {
        "__topic__": "sas-security-log",
        "owner_id": "1111111111111111",
        "level": "serious",
        "name": "Unusual Logon-Login with unusual location",
        "uuid": "bffb12c3-590a-4db2-b538-5c3e8a1f0a21",
        "unique_info": "73fc06fb175a7405697e402f528640c1",
        "detail": json.dumps([{"name": "Login Source IP", "value": "203.0.113.7"}]),
        "start_time": "1714528800",
        "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
    }
    row.update(changes)
    return row


def test_it_maps_a_cloud_format_onto_native_alerts(tenancy, keys):
    response = post("alerts", {"alerts": [sas_alert_row()]}, key=keys.acme, format="sas_alert")
    again = post("alerts", {"alerts": [sas_alert_row()]}, key=keys.acme, format="sas_alert")

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert again.json()["duplicates"] == 1
    alert = Alert.objects.get()
    assert (alert.account, alert.source) == (tenancy.account_a, AlertSource.SECURITY_CENTER)
    assert alert.raw["unique_info"] == "73fc06fb175a7405697e402f528640c1"


def test_it_reports_adapter_errors_at_the_index_of_the_request(tenancy, keys):
    rows = [sas_alert_row(), sas_alert_row(start_time="someday", unique_info="other")]

    refused = post("alerts", {"alerts": rows}, key=keys.acme, format="sas_alert")
    partial = post("alerts", {"alerts": rows}, key=keys.acme, format="sas_alert", partial="true")

    assert refused.status_code == 422
    assert [(e["index"], e["field"]) for e in refused.json()["errors"]] == [(1, "start_time")]
    assert partial.status_code == 200
    assert partial.json()["accepted"] == 1
    assert [e["index"] for e in partial.json()["errors"]] == [1]


def test_it_reports_native_errors_behind_adapted_items_at_the_index_of_the_request(tenancy, keys):
    rows = [
        sas_alert_row(start_time="someday"),  # the adapter refuses it
        sas_alert_row(unique_info="b", owner_id="2222222222222222"),  # outside the key's scope
    ]

    response = post(
        "alerts", {"alerts": rows}, key=keys.account_a, format="sas_alert", partial="true"
    )

    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (0, "start_time"),
        (1, "account"),
    ]


def waf_row(**changes) -> dict:
    """A WAF access-log line of a request the core web rules blocked."""
    row = {
        "__topic__": "waf_access_log",
        "time": "2026-11-23T20:00:00+08:00",
        "user_id": "1111111111111111",
        "host": "api.example.com",
        "real_client_ip": "203.0.113.7",
        "request_method": "GET",
        "request_path": "/news/search.php",
        "querystring": "id=1%20union%20select%20password%20from%20users",
        "status": "405",
        "request_traceid": "7837b11715410386943437009ea1f0",
        "final_action": "block",
        "final_plugin": "waf",
        "final_rule_id": "115341",
        "final_rule_type": "sqli",
    }
    row.update(changes)
    return row


def test_it_skips_the_records_of_a_cloud_format_that_hold_no_attack(tenancy, keys):
    plain = waf_row(status="200", request_traceid="7837b11715410386943437009ea1f1")
    for key in ("final_action", "final_plugin", "final_rule_id", "final_rule_type"):
        del plain[key]

    response = post("alerts", {"alerts": [waf_row(), plain]}, key=keys.account_a, format="waf")

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "skipped": 1, "errors": []}
    assert Alert.objects.get().source == AlertSource.WAF


def test_it_stores_a_cloud_firewall_ips_hit_on_a_host_it_knows_by_address(tenancy, keys):
    post(
        "alerts",
        {
            "alerts": [
                {
                    **native_alert(tenancy.account_a),
                    "asset": {"uuid": "h-1", "public_ip": "198.51.100.10"},
                }
            ]
        },
        key=keys.account_a,
    )
    ips_hit = {
        "__topic__": "cloudfirewall_access_log",
        "aliuid": "1111111111111111",
        "src_ip": "203.0.113.7",
        "src_port": "51515",
        "dst_ip": "198.51.100.10",
        "dst_port": "6379",
        "direction": "in",
        "rule_result": "alert",
        "ips_rule_id": "5a2e7c1d-0b3f-4d9e-8a61-2f0c9e7b4d11",
        "ips_rule_name_en": "Redis unauthorized access",
        "attack_type_name_en": "Command Execution",
        "start_time": "1714528800",
        "region_id": "cn-beijing",
    }

    response = post("alerts", {"alerts": [ips_hit]}, key=keys.account_a, format="cloud_firewall")

    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 1
    alert = Alert.objects.get(source=AlertSource.CLOUD_FIREWALL)
    assert alert.asset.uuid == "h-1"


@pytest.mark.parametrize(
    ("path", "format_name", "detail"),
    [
        ("alerts", "syslog", "Unknown format 'syslog'; known: native, "),
        ("logs", "sas_alert", "Format 'sas_alert' carries alerts; send it to /api/v1/alerts."),
    ],
)
def test_it_answers_400_to_an_unknown_or_misdirected_format(
    tenancy, keys, path, format_name, detail
):
    response = post(path, {path: [sas_alert_row()]}, key=keys.acme, format=format_name)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


# --- the key command ----------------------------------------------------------


@pytest.mark.parametrize("target", ["account", "organisation"])
def test_it_prints_a_working_key_as_the_last_word(tenancy, target):
    out = StringIO()
    if target == "account":
        call_command("create_api_key", "--account", tenancy.account_b.uid, stdout=out)
    else:
        call_command("create_api_key", "--organisation", "Acme", "--name", "SIEM", stdout=out)
    key = out.getvalue().split()[-1]

    response = post("alerts", {"alerts": [native_alert(tenancy.account_b)]}, key=key)

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert ApiKey.objects.get().digest not in out.getvalue()


# --- the OpenAPI document -----------------------------------------------------


def openapi_document(key: str) -> dict:
    """The document as an API client reads it: only with a key."""
    response = Client().get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("path", "key", "item_property"),
    [("/api/v1/alerts", "alerts", "occurred_at"), ("/api/v1/logs", "logs", None)],
)
def test_it_documents_the_ingestion_endpoints_with_their_request_schemas(
    keys, path, key, item_property
):
    document = openapi_document(keys.account_a)

    operation = document["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == [key]
    items = schema["properties"][key]
    assert items["maxItems"] == MAX_BATCH_ITEMS
    if item_property:
        assert set(items["items"]["required"]) == {
            "source",
            "uuid",
            "account",
            "type",
            "name",
            "level",
            "occurred_at",
        }
        assert item_property in items["items"]["properties"]
    else:
        assert set(items["items"]["discriminator"]["mapping"]) == {
            "process",
            "network",
            "login",
            "file",
            "dns",
            "http",
        }
    assert {p["name"] for p in operation["parameters"]} == {"format", "partial"}


def test_it_documents_only_the_alert_sources_a_client_may_send(keys):
    document = openapi_document(keys.account_a)

    operation = document["paths"]["/api/v1/alerts"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    source = schema["properties"]["alerts"]["items"]["properties"]["source"]
    assert source["enum"] == ["security_center", "waf", "cloud_firewall"]


def test_it_publishes_an_openapi_document_whose_references_all_resolve(keys):
    document = openapi_document(keys.account_a)

    def references(node):
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "$ref":
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    def resolves(reference: str) -> bool:
        node = document
        for part in reference.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    dangling = sorted({ref for ref in references(document) if not resolves(ref)})
    assert dangling == []
