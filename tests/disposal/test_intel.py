"""Importing threat intelligence (``manage.py import_intel``): STIX 2.1 bundles and
CSV IOC lists, normalised as alerts normalise entities, upserted in batches; and
what an imported indicator changes in the handling recommendations."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Entity
from alerts.services import ingest_alerts
from disposal import intel_import
from disposal.handling import handling_context
from disposal.intel_import import writing
from disposal.models import ThreatIndicator, Verdict
from tests.conftest import native_alert, organisation_scope
from tests.disposal.conftest import ATTACKER_IP

IDENTITY = "identity--aa7dc47c-8996-4ff8-863e-eb1f923c50a3"


def stix_indicator(uuid: str, pattern: str, **fields) -> dict:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid}",
        "created": "2026-01-05T08:00:00.000Z",
        "modified": "2026-01-05T08:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-01-05T08:00:00Z",
        **fields,
    }


BUNDLE_OBJECTS = [
    {
        "type": "identity",
        "spec_version": "2.1",
        "id": IDENTITY,
        "created": "2026-01-05T08:00:00.000Z",
        "modified": "2026-01-05T08:00:00.000Z",
        "name": "Example CERT",
    },
    stix_indicator(
        "0d736e43-43c6-4203-bf80-27e224a5fddc",
        "[ipv4-addr:value = '203.0.113.7']",
        created_by_ref=IDENTITY,
        indicator_types=["malicious-activity"],
        name="SSH brute-force source",
        description="Guesses SSH passwords.",
        confidence=85,
        valid_until="2027-01-05T08:00:00Z",
        x_acme_score=9,
    ),
    # OR'd comparisons: one indicator row per value.
    stix_indicator(
        "1ff3486c-697b-4a6f-8c4c-d798e7ea03e2",
        "[domain-name:value = 'Miner-Pool.Example.' OR url:value = 'http://miner-pool.example/x.sh']"
        " OR [ipv6-addr:value = '2001:DB8:0:0::17']",
        indicator_types=["anomalous-activity"],
        name="Miner download site",
    ),
    # One file by two hashes: a row per hash, hashes lower-case.
    stix_indicator(
        "6cd6903d-ec94-490a-90ce-484a7f918b88",
        "[file:hashes.MD5 = '44D88612FEA8A8F36DE82E1278ABB02F' AND "
        "file:hashes.'SHA-256' = '275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F']",
        labels=["benign"],
    ),
    stix_indicator(
        "6cb4f98e-259c-44ec-9494-01f9406c2ce8",
        "[ipv4-addr:value IN ('198.51.100.23', '198.51.100.24')]",
    ),
    # Malformed: stix2 refuses it.
    stix_indicator("9925e4f1-7a47-40a4-b524-eb274e9ec367", "[ipv4-addr:value = "),
    # Valid STIX, but no value an entity has.
    stix_indicator(
        "a412dbd7-9c14-4d76-b1ab-3843ae3ee4b5",
        "[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'example.org']",
    ),
    stix_indicator(
        "374b780a-3927-4eab-a799-8b1dcedeb699",
        "alert tcp any any -> any 22",
        pattern_type="snort",
    ),
    {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": "observed-data--10126dda-073e-48ed-826e-9cec6a5ee0ff",
        "created": "2026-01-05T08:00:00.000Z",
        "modified": "2026-01-05T08:00:00.000Z",
        "first_observed": "2026-01-04T21:00:00Z",
        "last_observed": "2026-01-04T21:10:00Z",
        "number_observed": 1,
        "object_refs": ["ipv4-addr--04725211-39d2-4629-8b83-98a42644f80b"],
    },
    {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--04725211-39d2-4629-8b83-98a42644f80b",
        "value": "203.0.113.7",
    },
    {
        "type": "x-acme-sighting",
        "spec_version": "2.1",
        "id": "x-acme-sighting--6cb4f98e-259c-44ec-9494-01f9406c2ce8",
        "where": "honeypot",
    },
]


def write_bundle(path, objects=BUNDLE_OBJECTS, **fields):
    path.write_text(
        json.dumps(
            {"type": "bundle", "id": f"bundle--{IDENTITY[10:]}", "objects": objects} | fields
        )
    )
    return path


def run(*args) -> str:
    out = StringIO()
    call_command("import_intel", *map(str, args), stdout=out)
    return out.getvalue()


def stored() -> dict[tuple[str, str], ThreatIndicator]:
    return {(i.entity_type, i.value): i for i in ThreatIndicator.objects.all()}


# --- STIX 2.1 ---------------------------------------------------------------------------


def test_it_imports_the_indicators_of_a_stix_bundle(db, tmp_path):
    output = run(write_bundle(tmp_path / "feed.json"))

    rows = stored()
    assert set(rows) == {
        ("ip", "203.0.113.7"),
        ("domain", "miner-pool.example"),
        ("url", "http://miner-pool.example/x.sh"),
        ("ip", "2001:db8::17"),
        ("file", "44d88612fea8a8f36de82e1278abb02f"),
        ("file", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        ("ip", "198.51.100.23"),
        ("ip", "198.51.100.24"),
    }
    ip = rows["ip", "203.0.113.7"]
    assert (ip.verdict, ip.source, ip.confidence, ip.organisation) == (
        Verdict.MALICIOUS,
        "Example CERT",
        85,
        None,
    )
    assert ip.description == "Guesses SSH passwords."
    assert ip.external_id == "indicator--0d736e43-43c6-4203-bf80-27e224a5fddc"
    assert ip.valid_from == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert ip.valid_until == datetime(2027, 1, 5, 8, tzinfo=UTC)
    assert ip.digest == Entity.digest_for("ip", "203.0.113.7")
    # Without created_by_ref: the default source; the verdict from the types or labels.
    assert rows["domain", "miner-pool.example"].source == "STIX import"
    assert rows["domain", "miner-pool.example"].verdict == Verdict.SUSPICIOUS
    assert rows["domain", "miner-pool.example"].description == "Miner download site"
    assert rows["file", "44d88612fea8a8f36de82e1278abb02f"].verdict == Verdict.BENIGN
    assert rows["ip", "198.51.100.23"].verdict == Verdict.MALICIOUS
    assert "ignored 4 objects that are not indicators" in output
    assert "ipv4-addr 1, observed-data 1, x-acme-sighting 1" in output
    assert "total   8 created, 0 updated" in output


def test_it_reports_each_indicator_it_cannot_use(db, tmp_path):
    output = run(write_bundle(tmp_path / "feed.json"))

    problems = [line.strip() for line in output.splitlines() if "feed.json: indicator--" in line]
    assert len(problems) == 3
    assert problems[0].startswith(
        "feed.json: indicator--9925e4f1-7a47-40a4-b524-eb274e9ec367: not a valid STIX 2.1 indicator"
    )
    assert problems[1] == (
        "feed.json: indicator--a412dbd7-9c14-4d76-b1ab-3843ae3ee4b5: the pattern names no "
        "usable value: observations joined by AND must all be seen, so no single value "
        "stands for them"
    )
    assert problems[2] == (
        "feed.json: indicator--374b780a-3927-4eab-a799-8b1dcedeb699: "
        "pattern_type 'snort': only STIX patterns are read"
    )
    assert "Skipped: 3" in output


@pytest.mark.parametrize(
    "pattern, expected, left_out",
    [
        ("[ipv4-addr:value = '192.0.2.1/32']", [("ip", "192.0.2.1/32")], []),
        ("[ipv4-addr:value NOT != '192.0.2.1']", [("ip", "192.0.2.1")], []),
        ("[url:value = 'http://x.example/it\\'s']", [("url", "http://x.example/it's")], []),
        (
            "[email-addr:value = 'a@b.example'] OR [ipv4-addr:value = '192.0.2.1']",
            [("ip", "192.0.2.1")],
            ["email-addr:value is not a value an alert's entity has"],
        ),
        (
            "[ipv4-addr:value = '192.0.2.1'] REPEATS 5 TIMES WITHIN 60 SECONDS",
            [("ip", "192.0.2.1")],
            [],
        ),
        ("[file:name = 'evil.exe' AND file:hashes.'SHA-1' = 'AB']", [("file", "AB")], []),
    ],
)
def test_it_reads_the_values_of_a_pattern(pattern, expected, left_out):
    values, reasons = intel_import.pattern_values(pattern)

    assert [(v.entity_type, v.value) for v in values] == expected
    assert reasons == left_out


@pytest.mark.parametrize(
    "pattern, reason",
    [
        ("[ipv4-addr:value != '192.0.2.1']", "a negated comparison of ipv4-addr:value"),
        ("[ipv4-addr:value NOT IN ('192.0.2.1')]", "a negated comparison of ipv4-addr:value"),
        ("[ipv4-addr:value LIKE '192.0.2.%']", "LIKE ...: only = and IN name values"),
        ("[file:hashes.'SHA-512' = 'ab']", "only MD5, SHA-1 and SHA-256 hashes match files"),
        ("[ipv4-addr:value = '192.0.2.1' AND ipv4-addr:value = '192.0.2.2']", "joined by AND"),
        ("[ipv4-addr:value = '1'] FOLLOWEDBY [ipv4-addr:value = '2']", "FOLLOWEDBY"),
        ("[ipv4-addr:value = ", "cannot be parsed"),
    ],
)
def test_it_refuses_patterns_that_name_no_value(pattern, reason):
    with pytest.raises(ValueError, match="pattern") as raised:
        intel_import.pattern_values(pattern)

    assert reason in str(raised.value)


def test_a_revoked_indicator_is_kept_as_expired(db, tmp_path):
    revoked = stix_indicator(
        "0d736e43-43c6-4203-bf80-27e224a5fddc",
        "[ipv4-addr:value = '203.0.113.7']",
        modified="2026-02-01T00:00:00.000Z",
        revoked=True,
    )
    run(write_bundle(tmp_path / "feed.json", [revoked]))

    assert ThreatIndicator.objects.get().valid_until == datetime(2026, 2, 1, tzinfo=UTC)


def test_source_option_names_the_source_of_every_indicator(db, tmp_path):
    run(write_bundle(tmp_path / "feed.json"), "--source", "Partner feed")

    assert set(ThreatIndicator.objects.values_list("source", flat=True)) == {"Partner feed"}


# --- CSV ----------------------------------------------------------------------------------

CSV = """\
# An IOC list
Type,Indicator,Verdict,Confidence,Source,Valid_From,Valid_Until,Description
ip,203.0.113.7,malicious,90,Blocklist,2026-01-01,2026-12-31T12:00:00Z,SSH brute force
ipv4,203.0.113.999,malicious,,Blocklist,,,
IPv6,2001:DB8:0::BAD,suspicious,50,Blocklist,,,Scanner
domain,Evil.Example.,,,Blocklist,,,
url,hxxp://evil[.]example/login.php,malicious,high,,,,Phishing page
md5,44D88612FEA8A8F36DE82E1278ABB02F,malicious,100,Blocklist,,,EICAR
md5,44d88612fea8a8f36de82e1278abb02,malicious,100,Blocklist,,,too short
sha256,zz5a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f,,,Blocklist,,,not hex
hash,3395856ce81f2b7382dee72602f798b642f14140,benign,,Blocklist,,,SHA-1
email,a@b.example,malicious,,Blocklist,,,
ip,192.0.2.1,malicious,101,Blocklist,,,
ip,192.0.2.2,evil,,Blocklist,,,
ip,192.0.2.3,,,Blocklist,yesterday,,
,198.51.100.4,,,Blocklist,,,no type: guessed
"""


def write_csv(path, text=CSV):
    path.write_text(text)
    return path


def test_it_imports_the_good_rows_of_a_csv_list(db, tmp_path):
    run(write_csv(tmp_path / "iocs.csv"))

    rows = stored()
    assert set(rows) == {
        ("ip", "203.0.113.7"),
        ("ip", "2001:db8::bad"),
        ("domain", "evil.example"),
        ("url", "http://evil.example/login.php"),
        ("file", "44d88612fea8a8f36de82e1278abb02f"),
        ("file", "3395856ce81f2b7382dee72602f798b642f14140"),
        ("ip", "198.51.100.4"),
    }
    ip = rows["ip", "203.0.113.7"]
    assert (ip.verdict, ip.confidence, ip.source, ip.description) == (
        Verdict.MALICIOUS,
        90,
        "Blocklist",
        "SSH brute force",
    )
    assert ip.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert ip.valid_until == datetime(2026, 12, 31, 12, tzinfo=UTC)
    assert rows["url", "http://evil.example/login.php"].source == "CSV import"
    assert rows["url", "http://evil.example/login.php"].confidence == 85
    assert rows["domain", "evil.example"].verdict == Verdict.MALICIOUS
    assert rows["file", "3395856ce81f2b7382dee72602f798b642f14140"].verdict == Verdict.BENIGN


def test_it_reports_bad_rows_with_their_line_numbers(db, tmp_path):
    output = run(write_csv(tmp_path / "iocs.csv"))

    problems = [line.strip() for line in output.splitlines() if "iocs.csv line" in line]
    assert problems == [
        "iocs.csv line 4: not an IP address: '203.0.113.999'",
        "iocs.csv line 9: not an MD5 hash (32 hex digits): '44d88612fea8a8f36de82e1278abb02'",
        "iocs.csv line 10: not a SHA-256 hash (64 hex digits): "
        "'zz5a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f'",
        "iocs.csv line 12: unknown type 'email'; use ip, domain, url, md5, sha1, sha256, hash "
        "or file",
        "iocs.csv line 13: confidence must be a whole number from 0 to 100, not 101",
        "iocs.csv line 14: unknown verdict 'evil'; use malicious, suspicious, benign or unknown",
        "iocs.csv line 15: valid_from: not an ISO-8601 date or time: 'yesterday'",
    ]
    assert "Skipped: 7" in output


def test_it_lists_the_first_twenty_problems_and_counts_the_rest(db, tmp_path):
    lines = ["type,value"] + [f"ip,10.0.0.{n}00" for n in range(3, 28)]
    output = run(write_csv(tmp_path / "bad.csv", "\n".join(lines)))

    assert output.count("bad.csv line") == 20
    assert "... and 5 more" in output
    assert "Skipped: 25" in output


def test_a_list_without_a_value_column_is_refused_with_its_name(db, tmp_path):
    path = write_csv(tmp_path / "iocs.csv", "type,address\nip,192.0.2.1\n")

    with pytest.raises(CommandError, match=r"iocs\.csv: the header row names no value column"):
        run(path)


# --- values meet the alerts' entities ---------------------------------------------------------


def test_indicator_values_match_the_entities_alerts_store(tenancy, tmp_path):
    """Whatever the spelling in an alert and in a feed, both end on one digest."""
    ingest_alerts(
        [
            native_alert(
                tenancy.account_a,
                entities=[
                    {"type": "ip", "value": "2001:DB8:0:0::1", "role": "attacker"},
                    {"type": "domain", "value": "Evil.Example."},
                    {"type": "file", "sha256": "A" * 64, "path": "/tmp/a"},
                    {"type": "file", "md5": "B" * 32},
                    {"type": "url", "value": " http://evil.example/a "},
                ],
            )
        ],
        scope=organisation_scope(tenancy.org),
    )
    csv_text = (
        "type,value\nip,2001:db8::1\ndomain,EVIL.example\nsha256,"
        + "a" * 64
        + "\nhash,"
        + "b" * 32
        + "\nurl,http://evil.example/a\n"
    )
    run(write_csv(tmp_path / "iocs.csv", csv_text))

    entities = set(Entity.objects.values_list("type", "digest"))
    indicators = set(ThreatIndicator.objects.values_list("entity_type", "digest"))
    assert len(indicators) == 5
    assert indicators <= entities


# --- upsert, batches, dry run, organisations ---------------------------------------------------


def test_importing_again_updates_instead_of_adding(db, tmp_path):
    run(write_csv(tmp_path / "iocs.csv"))
    first = stored()

    changed = CSV.replace("ip,203.0.113.7,malicious,90", "ip,203.0.113.7,benign,10")
    output = run(write_csv(tmp_path / "iocs.csv", changed))

    again = stored()
    assert set(again) == set(first)
    assert ThreatIndicator.objects.count() == len(first)
    assert again["ip", "203.0.113.7"].pk == first["ip", "203.0.113.7"].pk
    assert (again["ip", "203.0.113.7"].verdict, again["ip", "203.0.113.7"].confidence) == (
        Verdict.BENIGN,
        10,
    )
    assert "total   0 created, 7 updated" in output


def test_one_value_is_one_indicator_per_source_and_organisation(tenancy, tmp_path):
    path = write_csv(tmp_path / "iocs.csv", "type,value\nip,192.0.2.1\n")

    run(path)
    run(path, "--source", "Other feed")
    run(path, "--organisation", "Acme")
    run(path, "--organisation", "Acme")

    owners = sorted(ThreatIndicator.objects.values_list("organisation__name", "source"), key=str)
    assert owners == [("Acme", "CSV import"), (None, "CSV import"), (None, "Other feed")]


def test_a_value_repeated_in_the_input_is_written_once(db, tmp_path):
    output = run(
        write_csv(
            tmp_path / "iocs.csv", "type,value,confidence\nip,192.0.2.1,10\nip,192.0.2.1,20\n"
        )
    )

    assert ThreatIndicator.objects.get().confidence == 20
    assert "1 repeated an earlier type, value and source" in output


def test_it_writes_in_batches_not_row_by_row(db, tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "BATCH_SIZE", 50)
    lines = ["type,value"]
    for n in range(200):
        lines += [f"ip,10.0.{n}.1", f"domain,host{n}.example"]
    path = write_csv(tmp_path / "many.csv", "\n".join(lines))

    with CaptureQueriesContext(connection) as queries:
        run(path)

    assert ThreatIndicator.objects.count() == 400
    # Per batch of 50: one lookup per entity type and one write.
    assert len(queries) <= 8 * 3 + 5


def test_a_dry_run_writes_nothing(db, tmp_path):
    run(write_csv(tmp_path / "iocs.csv", "type,value\nip,192.0.2.1\n"))

    output = run(write_csv(tmp_path / "iocs.csv"), "--dry-run")

    assert list(ThreatIndicator.objects.values_list("value", flat=True)) == ["192.0.2.1"]
    assert "total   7 would be created, 0 would be updated" in output
    assert "Dry run: nothing was written." in output


# --- the command's failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content, reason",
    [
        ('{"type": "bundle", "objects": [', "not valid JSON"),
        ('{"type": "bundle", "spec_version": "2.0", "objects": []}', "a STIX 2.0 bundle"),
        ('[{"type": "indicator"}]', "not a STIX bundle"),
        ('{"type": "bundle", "objects": {}}', "the bundle's objects are not a list"),
    ],
)
def test_a_file_that_cannot_be_parsed_stops_the_command_before_anything_is_written(
    db, tmp_path, content, reason
):
    good = write_csv(tmp_path / "good.csv", "type,value\nip,192.0.2.1\n")
    bad = tmp_path / "bad.json"
    bad.write_text(content)

    with pytest.raises(CommandError) as raised:
        run(good, bad)

    assert str(raised.value).startswith(f"Nothing imported: {bad}: {reason}")
    assert not ThreatIndicator.objects.exists()


def test_a_missing_file_or_organisation_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"missing\.json: cannot be read"):
        run(tmp_path / "missing.json")
    with pytest.raises(CommandError, match="No organisation named 'Nobody'"):
        run(write_csv(tmp_path / "iocs.csv"), "--organisation", "Nobody")


def test_the_example_files_import_cleanly(db):
    output = run("docs/intel/example-bundle.json", "docs/intel/example-iocs.csv")

    assert "Skipped: 0" in output
    assert ThreatIndicator.objects.count() == 16


def test_indicators_are_in_the_admin(admin_client, db):
    indicator = ThreatIndicator.objects.create(
        entity_type="ip",
        value="192.0.2.1",
        digest=Entity.digest_for("ip", "192.0.2.1"),
        verdict=Verdict.MALICIOUS,
        source="Manual",
    )

    assert admin.site.is_registered(ThreatIndicator)
    response = admin_client.get("/admin/disposal/threatindicator/")
    assert response.status_code == 200 and "192.0.2.1" in response.content.decode()
    response = admin_client.post(
        f"/admin/disposal/threatindicator/{indicator.pk}/change/",
        {"entity_type": "domain", "value": "Evil.Example.", "verdict": "malicious", "source": "M"},
    )
    assert response.status_code == 302
    indicator.refresh_from_db()
    assert (indicator.value, indicator.digest) == (
        "evil.example",
        Entity.digest_for("domain", "evil.example"),
    )


# --- handling ---------------------------------------------------------------------------------


def test_an_imported_malicious_ip_makes_handling_recommend_blocking_it(brute_force_event, tmp_path):
    ctx = brute_force_event
    # The attacker IP as no alert flagged it malicious.
    Entity.objects.filter(type="ip", value=ATTACKER_IP).update(malicious=False)
    ip = handling_context(ctx.scope, ctx.event).find("ip", ATTACKER_IP)
    assert (ip.malicious, ip.recommended) == (False, None)

    path = write_csv(
        tmp_path / "iocs.csv", f"type,value,verdict,source\nip,{ATTACKER_IP},malicious,Acme CERT\n"
    )
    run(path, "--organisation", "Acme")

    ip = handling_context(ctx.scope, ctx.event).find("ip", ATTACKER_IP)
    assert ip.malicious and ip.malicious_because == ["Acme CERT"]
    assert ip.recommended.key == "block-ip-cloud-firewall-inbound"
