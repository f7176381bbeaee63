"""Bad input to POST /api/v1/alerts and /api/v1/logs gets a 4xx naming the item
and field (or the body position), never a 500, and a refused batch writes
nothing: nulls in optional fields, NaN and Infinity, deep nesting, NUL
characters and lone surrogates, times at the ends of the calendar, a body
sent in chunks and a malformed Content-Length."""

import io
import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from alerts.api import MAX_BODY_BYTES
from alerts.models import Alert, Asset, Entity, LogRecord
from alerts.schemas import MAX_NESTING, AlertIn, AssetIn, AttckIn, EntityIn, LogIn
from secops.services import create_api_key
from tests.alerts.test_adapters import cfw_mining_row, network_row
from tests.conftest import ALERT_TIME, native_alert

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ACCOUNT = "1111111111111111"  # account A of the tenancy fixture
LOG_MODELS = LogIn.__origin__.__args__


@pytest.fixture
def key(tenancy) -> str:
    _, secret = create_api_key(organisation=tenancy.org, account=None, name="Collector")
    return secret


def post(path: str, body, key: str, **query):
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    url = f"/api/v1/{path}" + (f"?{urlencode(query)}" if query else "")
    return Client().post(
        url, content, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def native_log(log_type: str, **fields) -> dict:
    return {
        "type": log_type,
        "account": ACCOUNT,
        "host_uuid": "host-web-01",
        "time": ALERT_TIME.isoformat(),
        **fields,
    }


def nothing_stored() -> bool:
    return not any(m.objects.exists() for m in (Alert, LogRecord, Entity, Asset))


def _optional_fields(model) -> list[str]:
    return [name for name, info in model.model_fields.items() if not info.is_required()]


# --- an explicit null is an absent value ----------------------------------------------


@pytest.mark.parametrize(
    ("model", "field"),
    [(model, field) for model in LOG_MODELS for field in _optional_fields(model)],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_it_takes_a_null_in_any_optional_log_field_as_absent(tenancy, key, model, field):
    log_type = model.model_fields["type"].annotation.__args__[0]

    response = post("logs", {"logs": [native_log(log_type, **{field: None})]}, key)

    assert response.status_code == 200, response.json()
    assert LogRecord.objects.count() == 1


@pytest.mark.parametrize("field", _optional_fields(AlertIn))
def test_it_takes_a_null_in_any_optional_alert_field_as_absent(tenancy, key, field):
    response = post("alerts", {"alerts": [native_alert(ACCOUNT, **{field: None})]}, key)

    assert response.status_code == 200, response.json()
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(
    ("model", "field"),
    [(model, field) for model in (AssetIn, AttckIn) for field in _optional_fields(model)],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_it_takes_a_null_in_any_optional_asset_or_attck_field_as_absent(tenancy, key, model, field):
    nested = {"asset": {"uuid": "host-web-01"}, "attck": {"tactic": "TA0002"}}
    name = "asset" if model is AssetIn else "attck"
    nested[name][field] = None
    if model is AssetIn and field == "uuid":
        nested["asset"]["instance_id"] = "i-1"

    response = post("alerts", {"alerts": [native_alert(ACCOUNT, **nested)]}, key)

    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("field", [f for f in _optional_fields(EntityIn) if f != "role"] + ["role"])
def test_it_takes_a_null_in_any_optional_entity_field_as_absent(tenancy, key, field):
    entity = {"type": "process", "path": "/usr/bin/bash", "cmdline": "bash -i", field: None}

    response = post("alerts", {"alerts": [native_alert(ACCOUNT, entities=[entity])]}, key)

    assert response.status_code == 200, response.json()
    assert Entity.objects.count() == 1


def test_it_reads_a_sysmon_network_record_without_a_source_port(tenancy, key):
    record = native_log("network", src_ip="10.0.0.5", src_port=None, dst_port=443, pid=None)

    response = post("logs", {"logs": [record]}, key)

    assert response.status_code == 200
    assert "src_port" not in LogRecord.objects.get().fields


@pytest.mark.parametrize("value", ["", "-"])
def test_it_takes_a_blank_hash_of_a_file_entity_as_absent(tenancy, key, value):
    entity = {"type": "file", "path": "/tmp/x", "md5": value, "sha256": value}

    response = post("alerts", {"alerts": [native_alert(ACCOUNT, entities=[entity])]}, key)

    assert response.status_code == 200, response.json()


def test_it_still_refuses_a_null_in_a_required_field(tenancy, key):
    response = post("alerts", {"alerts": [native_alert(ACCOUNT, name=None)]}, key)

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "name")]


@pytest.mark.parametrize(
    ("field", "value"),
    [("pid", 2**32), ("src_port", 65536), ("pid", 10**30)],
)
def test_it_refuses_a_number_out_of_range_naming_its_field(tenancy, key, field, value):
    response = post("logs", {"logs": [native_log("network", **{field: value})]}, key)

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, field)]


@pytest.mark.parametrize("path", ["alerts", "logs"])
def test_it_reports_a_null_item_rather_than_dropping_it(tenancy, key, path):
    response = post(path, {path: [None]}, key)

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "")]


# --- numbers JSON does not have ---------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_it_refuses_a_non_finite_number_in_raw_naming_item_and_field(tenancy, key, number):
    good = json.dumps(native_alert(ACCOUNT))
    bad = json.dumps(native_alert(ACCOUNT, raw={"detail": {"score": "@"}})).replace('"@"', number)

    response = post("alerts", f'{{"alerts": [{good}, {bad}]}}', key)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (1, "raw.detail.score")
    assert "NaN and Infinity" in error["message"]
    assert nothing_stored()


def test_it_refuses_a_non_finite_number_in_a_log_field_and_keeps_the_rest_when_partial(
    tenancy, key
):
    good = json.dumps(native_log("login", user="root"))
    bad = json.dumps(native_log("login", user="admin", score="@")).replace('"@"', "NaN")
    body = f'{{"logs": [{good}, {bad}]}}'

    response = post("logs", body, key, partial="true")

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(1, "score")]


def test_it_names_the_record_field_of_a_non_finite_number_in_a_cloud_format(tenancy, key):
    record = json.dumps(cfw_mining_row(in_packet_bytes="@")).replace('"@"', "Infinity")

    response = post("alerts", f'{{"alerts": [{record}]}}', key, format="cloud_firewall")

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "in_packet_bytes")]
    assert nothing_stored()


# --- nesting ---------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_it_stores_raw_nested_as_deep_as_items_may_nest(tenancy, key):
    # The item is one level and raw another: raw may hold MAX_NESTING - 2 more.
    inner = _nested(MAX_NESTING - 2)
    item = json.dumps(native_alert(ACCOUNT, raw={"a": "@"})).replace('"@"', inner)

    response = post("alerts", f'{{"alerts": [{item}]}}', key)

    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("depth", [MAX_NESTING, 1_000, 5_000])
def test_it_refuses_nesting_deeper_than_the_bound_naming_item_and_field(tenancy, key, depth):
    item = json.dumps(native_alert(ACCOUNT, raw={"a": "@"})).replace('"@"', _nested(depth))

    response = post("alerts", f'{{"alerts": [{json.dumps(native_alert(ACCOUNT))}, {item}]}}', key)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["index"] == 1
    assert error["field"].startswith("raw.a.0.0")
    assert f"deeper than {MAX_NESTING} levels" in error["message"]
    assert nothing_stored()


def test_it_refuses_a_body_too_deep_to_parse_naming_the_position(tenancy, key):
    opening = '{"logs": [{"raw": '
    body = opening + _nested(200_000) + "}]}"

    response = post("logs", body, key)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert f"deeper than items may ({MAX_NESTING} levels)" in detail
    # The item is the first of its levels: the first bracket too deep is raw's 64th.
    assert f"at byte {len(opening) + MAX_NESTING - 1}" in detail


# --- text PostgreSQL cannot hold ------------------------------------------------------------


def test_it_replaces_nul_characters_in_keys_and_text_of_raw(tenancy, key):
    alert = native_alert(ACCOUNT, raw={"pa\x00th": ["a\x00b", {"k\x00": "v"}]})

    response = post("alerts", {"alerts": [alert]}, key)

    assert response.status_code == 200
    assert Alert.objects.get().raw == {"pa\ufffdth": ["a\ufffdb", {"k\ufffd": "v"}]}


def test_it_replaces_nul_characters_in_the_keys_of_extra_log_fields(tenancy, key):
    response = post("logs", {"logs": [native_log("login", **{"note\x00": "x\x00"})]}, key)

    assert response.status_code == 200
    assert LogRecord.objects.get().fields["raw"] == {"note\ufffd": "x\ufffd"}


def test_it_replaces_lone_surrogates_which_no_utf8_encoder_takes(tenancy, key):
    alert = json.dumps(native_alert(ACCOUNT, name="Reverse shell @", raw={"@": "@"}))
    alert = alert.replace("@", "\\ud800")  # the escape, as a forwarder would write it

    response = post("alerts", f'{{"alerts": [{alert}]}}', key)

    assert response.status_code == 200, response.json()
    stored = Alert.objects.get()
    assert stored.name == "Reverse shell \ufffd"
    assert stored.raw == {"\ufffd": "\ufffd"}


def test_it_maps_a_cloud_record_holding_a_lone_surrogate(tenancy, key):
    record = json.dumps(cfw_mining_row(direction="-", app_name="@")).replace("@", "\\udc80")

    response = post("alerts", f'{{"alerts": [{record}]}}', key, format="cloud_firewall")

    assert response.status_code == 200, response.json()
    assert Alert.objects.get().raw["app_name"] == "\ufffd"


def test_it_refuses_a_body_that_is_not_utf8(tenancy, key):
    response = post("alerts", b'{"alerts": [{"name": "\xff\xfe"}]}', key)

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


# --- times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1999-12-31T23:59:59Z"],
)
def test_it_refuses_a_time_outside_the_supported_years_naming_its_field(tenancy, key, occurred_at):
    response = post("alerts", {"alerts": [native_alert(ACCOUNT, occurred_at=occurred_at)]}, key)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (0, "occurred_at")
    assert nothing_stored()


@pytest.mark.parametrize("start_time", ["0001-01-01 00:00:00", "9999-12-31 23:59:59", "1"])
def test_it_refuses_a_cloud_record_time_outside_the_supported_years_naming_its_key(
    tenancy, key, start_time
):
    record = network_row(start_time=start_time)

    response = post("logs", {"logs": [record]}, key, format="sas_network")

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "start_time")]


# --- how the body arrives ----------------------------------------------------------------


def post_chunked(path: str, body: bytes, key: str, *, terminated: bool):
    """A body without Content-Length, as a server hands on a chunked request:
    gunicorn decodes the chunks and marks the input as terminated."""
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return Client().generic("POST", f"/api/v1/{path}", content_type="application/json", **environ)


def test_it_reads_a_chunked_body_from_a_server_that_terminates_the_input(tenancy, key):
    body = json.dumps({"alerts": [native_alert(ACCOUNT)]}).encode()

    response = post_chunked("alerts", body, key, terminated=True)

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert Alert.objects.count() == 1


def test_it_refuses_a_chunked_body_over_ten_megabytes(tenancy, key):
    opening = b'{"logs": [], "padding": "'
    body = opening + b"x" * (MAX_BODY_BYTES - len(opening)) + b'"}'

    response = post_chunked("logs", body, key, terminated=True)

    assert response.status_code == 413
    assert "10 MB" in response.json()["detail"]


def test_it_asks_for_a_length_when_the_server_cannot_end_a_chunked_body(tenancy, key):
    body = json.dumps({"alerts": [native_alert(ACCOUNT)]}).encode()

    response = post_chunked("alerts", body, key, terminated=False)

    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert nothing_stored()


@pytest.mark.parametrize("length", ["abc", "1e3", "-5"])
def test_it_refuses_a_malformed_content_length(tenancy, key, length):
    response = Client().generic(
        "POST",
        "/api/v1/alerts",
        b'{"alerts": []}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        CONTENT_LENGTH=length,
    )

    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]
