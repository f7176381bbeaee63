"""Property-based tests of POST /api/v1/alerts and /api/v1/logs in every format.

Hypothesis generates JSON documents: mutations of a valid item of each format
(a field set to null, to a value of another type, to a huge, deep or
non-finite value, or removed), arbitrary JSON items, NUL characters and lone
surrogates in keys and text, invalid UTF-8 and nesting deep enough to stop a
recursive reader. Whatever is sent:

- the answer is never a 5xx, and is one of the documented 200/400/413/422;
- every error names an item of the request (its index) and a field;
- every item is accounted for: accepted, a duplicate, skipped or in an error;
- a refused batch sent without ``partial`` writes no alert, log record,
  entity or asset.

Each example runs in a savepoint that is rolled back, so every example starts
from the same data. Examples are derandomised so that CI runs the same ones.
"""

import copy
import json
import re
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alerts.adapters import FORMATS
from alerts.models import Alert, AlertEntity, Asset, Entity, LogRecord
from alerts.schemas import AlertIn, AssetIn, EntityIn, LogIn
from secops.services import create_api_key
from tests.alerts.test_adapters import (
    cfw_mining_row,
    cfw_traffic_row,
    login_row,
    network_row,
    process_row_v2,
    sas_login_alert_row,
    susp_event_item,
    waf_block_row,
    waf_plain_row,
)
from tests.conftest import ALERT_TIME, native_alert

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ACCOUNT = "1111111111111111"  # account A of the tenancy fixture

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# --- values --------------------------------------------------------------------------
# What json.dumps cannot write is spliced into the body afterwards, in place of
# a marker string: nesting deeper than the encoder recurses, a number too big
# for a float, and bytes that are not UTF-8.

_DEEP = "@@deep:{}@@"
_OVERFLOWING_NUMBER = "@@1e400@@"
_NOT_UTF8 = "@@not-utf8@@"
_DEEP_MARKER = re.compile(r'"@@deep:(\d+)@@"')

deep_values = st.one_of(
    st.integers(min_value=60, max_value=70),  # about the items' bound
    st.integers(min_value=900, max_value=3000),  # past a recursive reader's
    st.just(60_000),  # past the JSON reader's own
).map(_DEEP.format)

hostile_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "²",
            "\uff11\uff12\uff13",
            "NaN",
            "Infinity",
            "1e400",
            "9" * 40,
            "-1",
            "0",
            "65536",
            "4294967296",
            "null",
            "true",
            "2024-05-01 10:00:00",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59-23:59",
            "1714528800",
            "99999999999999999999",
            "::1",
            "999.1.1.1",
            "serious",
            "__proto__",
        ]
    ),
    st.integers(min_value=9_000, max_value=40_000).map(lambda n: "A" * n),
)
hostile_keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "\x00", "a\x00", "\ud800", "raw", "type", "account", "model_config"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),  # NaN and both infinities among them
    hostile_text,
    deep_values,
    st.just(_OVERFLOWING_NUMBER),
    st.just(_NOT_UTF8),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(hostile_keys, children, max_size=4),
        st.integers(min_value=1_000, max_value=20_000).map(lambda n: [0] * n),
    ),
    max_leaves=10,
)


def encode(document) -> bytes:
    """The body for ``document``, with each marker replaced by what it stands for."""
    text = json.dumps(document)  # NaN and Infinity are written as Python reads them
    text = _DEEP_MARKER.sub(lambda found: "[" * int(found[1]) + "]" * int(found[1]), text)
    text = text.replace(json.dumps(_OVERFLOWING_NUMBER), "1e400")
    body = text.encode()
    return body.replace(json.dumps(_NOT_UTF8).encode(), b'"\xff\xfe\xc0"')


# --- items ---------------------------------------------------------------------------


def _native_log(log_type: str, **fields) -> dict:
    return {
        "type": log_type,
        "account": ACCOUNT,
        "host_uuid": "host-web-01",
        "time": ALERT_TIME.isoformat(),
        **fields,
    }


VALID_ALERTS = [
    native_alert(
        ACCOUNT,
        uuid="fuzz-alert",
        entities=[
            {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
            {"type": "process", "path": "/usr/bin/bash", "pid": 23811, "ppid": 1200},
            {"type": "file", "path": "/tmp/x", "md5": "0" * 32, "sha256": "a" * 64},
        ],
        attck={"tactic": "TA0002", "technique": "T1059"},
        description="Reverse shell",
        exceptions=[{"name": "cmdline", "value": "bash -i"}],
        raw={"detail": {"nested": [1, 2.5, "three"]}},
    )
]
VALID_LOGS = [
    _native_log("process", pid=23811, ppid=1200, path="/usr/bin/bash", hash="0" * 32),
    _native_log("network", pid=1, src_ip="10.0.0.1", src_port=51514, dst_port=4444),
    _native_log("login", user="root", src_ip="203.0.113.7", result="failure", count=3),
    _native_log("file", path="/etc/passwd", operation="write", pid=7),
    _native_log("dns", domain="pool.example.net", answer="203.0.113.50"),
    _native_log("http", method="GET", host="example.com", path="/", status=200),
]
VALID_RECORDS = {
    "sas_alert": [sas_login_alert_row(), susp_event_item()],
    "sas_process": [process_row_v2()],
    "sas_network": [network_row()],
    "sas_login": [login_row()],
    "sas_crack": [login_row(topic="aegis-log-crack")],
    "waf": [waf_block_row()],
    "waf_access": [waf_plain_row()],
    "cloud_firewall": [cfw_mining_row()],
    "cloud_firewall_traffic": [cfw_traffic_row()],
}
assert set(VALID_RECORDS) == set(FORMATS)


def _fields_of(*models) -> list[str]:
    return sorted({name for model in models for name in model.model_fields})


ALERT_FIELDS = _fields_of(AlertIn, AssetIn, EntityIn)
LOG_FIELDS = _fields_of(*LogIn.__origin__.__args__)  # the models of the union
# Keys the adapters read besides those of the sample records.
RECORD_FIELDS = sorted(
    {key for records in VALID_RECORDS.values() for record in records for key in record}
    | {"Details", "TacticItems", "Level", "OccurrenceTimeStamp", "SourceAliUid", "__project__"}
)


def _containers(value) -> list:
    """Every object and array inside ``value``, ``value`` first."""
    found, pending = [], [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            found.append(current)
            pending.extend(current.values())
        elif isinstance(current, list):
            found.append(current)
            pending.extend(current)
    return found


@st.composite
def mutated(draw, valid_items: list[dict], field_names: list[str]):
    """A valid item with up to four changes: a field set to null or to any value,
    a field removed, a value appended to an array."""
    item = copy.deepcopy(draw(st.sampled_from(valid_items)))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        target = draw(st.sampled_from(_containers(item)))
        if isinstance(target, list):
            target.append(draw(json_values))
            continue
        key = draw(st.one_of(st.sampled_from(sorted(target) or [""]), st.sampled_from(field_names)))
        change = draw(st.sampled_from(["null", "value", "remove"]))
        if change == "remove":
            target.pop(key, None)
        else:
            target[key] = None if change == "null" else draw(json_values)
    return item


def batches(valid_items: list[dict], field_names: list[str]):
    items = st.one_of(
        mutated(valid_items, field_names), mutated(valid_items, field_names), json_values
    )
    return st.lists(items, max_size=4)


# --- requests and what they must answer ----------------------------------------------

STORED = (Alert, AlertEntity, Asset, Entity, LogRecord)


@pytest.fixture
def post(tenancy):
    """Posts a body with an organisation key of Acme inside a savepoint that is
    rolled back; returns the response and the stored row counts before and after."""
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Fuzz")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def send(path: str, body: bytes, **query):
        url = f"/api/v1/{path}" + (f"?{urlencode(query)}" if query else "")
        with transaction.atomic():
            try:
                before = [model.objects.count() for model in STORED]
                response = client.post(url, body, content_type="application/json")
                after = [model.objects.count() for model in STORED]
            finally:
                transaction.set_rollback(True)
        return response, before, after

    return send


def assert_answered_without_loss(response, before, after, items, partial: bool):
    event(f"answered {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code < 500, response.content[:2000]
    assert response.status_code in (200, 400, 413, 422), response.content[:2000]
    answer = response.json()
    if response.status_code in (400, 413):
        assert answer["detail"]
        assert after == before
        return
    for error in answer["errors"]:
        assert isinstance(error["index"], int) and 0 <= error["index"] < len(items), error
        assert isinstance(error["field"], str), error
        assert error["message"], error
    refused = {error["index"] for error in answer["errors"]}
    if response.status_code == 422:
        assert refused and not partial
        assert answer["accepted"] == 0
        assert after == before, "a refused batch wrote rows"
    else:
        assert not refused or partial
        # Every item is accounted for once.
        counted = answer["accepted"] + answer["duplicates"] + answer["skipped"] + len(refused)
        assert counted == len(items), answer


# --- the properties ------------------------------------------------------------------


@FUZZ_SETTINGS
@given(items=batches(VALID_ALERTS, ALERT_FIELDS), partial=st.booleans())
def test_it_answers_any_native_alert_batch_without_a_server_error(post, items, partial):
    response, before, after = post("alerts", encode({"alerts": items}), partial=partial)

    assert_answered_without_loss(response, before, after, items, partial)


@FUZZ_SETTINGS
@given(items=batches(VALID_LOGS, LOG_FIELDS), partial=st.booleans())
def test_it_answers_any_native_log_batch_without_a_server_error(post, items, partial):
    response, before, after = post("logs", encode({"logs": items}), partial=partial)

    assert_answered_without_loss(response, before, after, items, partial)


@st.composite
def format_batches(draw):
    name = draw(st.sampled_from(sorted(FORMATS)))
    items = draw(batches(VALID_RECORDS[name], RECORD_FIELDS))
    return name, items


@settings(FUZZ_SETTINGS, max_examples=200)
@given(batch=format_batches(), partial=st.booleans())
def test_it_answers_any_batch_of_every_cloud_format_without_a_server_error(post, batch, partial):
    name, items = batch
    key = f"{FORMATS[name].kind}s"

    response, before, after = post(key, encode({key: items}), format=name, partial=partial)

    assert_answered_without_loss(response, before, after, items, partial)


@settings(FUZZ_SETTINGS, max_examples=100)
@given(
    document=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from(["alerts", "logs", "x"]), json_values, max_size=2),
    ),
    path=st.sampled_from(["alerts", "logs"]),
    fmt=st.sampled_from(["native", *sorted(FORMATS)]),
)
def test_it_answers_any_json_body_without_a_server_error(post, document, path, fmt):
    response, _, _ = post(path, encode(document), format=fmt)

    assert response.status_code < 500, response.content[:2000]
    assert response.status_code in (200, 400, 413, 422)


@settings(FUZZ_SETTINGS, max_examples=100)
@given(body=st.binary(max_size=200), path=st.sampled_from(["alerts", "logs"]))
def test_it_answers_any_bytes_without_a_server_error(post, body, path):
    response, before, after = post(path, body)

    assert response.status_code < 500
    assert response.status_code in (200, 400, 422)
    assert after == before


@settings(FUZZ_SETTINGS, max_examples=100)
@given(
    value=st.one_of(
        st.sampled_from([float("nan"), float("inf"), float("-inf")]),
        st.sampled_from([_OVERFLOWING_NUMBER, _DEEP.format(70), _DEEP.format(1000)]),
    ),
    index=st.integers(min_value=0, max_value=2),
    path=st.sampled_from(
        [("raw", "detail"), ("raw", "a", "b"), ("exceptions",), ("entities", "extra")]
    ),
)
def test_it_names_the_item_and_field_of_a_value_it_cannot_store(post, value, index, path):
    items = [native_alert(ACCOUNT, uuid=f"fuzz-{i}") for i in range(3)]
    target = items[index]
    if path == ("exceptions",):
        target["exceptions"] = [value]
        expected = "exceptions.0"
    elif path == ("entities", "extra"):
        target["entities"] = [{"type": "ip", "value": "203.0.113.7", "extra": value}]
        expected = "entities.0.extra"
    else:
        target["raw"] = {path[1]: {path[2]: value}} if len(path) == 3 else {path[1]: value}
        expected = ".".join(path)

    response, before, after = post("alerts", encode({"alerts": items}))

    assert response.status_code == 422, response.content[:500]
    [error] = response.json()["errors"]
    assert error["index"] == index
    assert error["field"] == expected or error["field"].startswith(expected + ".")
    assert after == before
