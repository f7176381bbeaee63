"""The whitelist in the pipeline: alerts ingested as in production, whitelisted
(flagged, with the group that matched) or aggregated into events. Groups of a
scenario are ANDs of conditions; groups are alternatives (OR)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.facts import load_alert_facts
from alerts.models import Alert
from alerts.services import ingest_alerts
from events.models import EventAlert, SecurityEvent
from events.pipeline import process_alerts
from tests.conftest import ALERT_TIME, native_alert, organisation_scope
from whitelist import services
from whitelist.models import Match, RuleGroup
from whitelist.services import (
    ConditionSpec,
    GroupSpec,
    delete_group,
    save_group,
    set_group_enabled,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HOST_X = "host-x"
HOST_Z = "host-z"
PATH_Y = "/usr/lib/.Y/"


@pytest.fixture
def ingest(tenancy, ingest_and_aggregate):
    """Ingest native alerts with Acme's organisation key, pipeline included."""

    def send(*items, scope=None):
        result = ingest_and_aggregate(list(items), scope=scope or organisation_scope(tenancy.org))
        assert result.errors == []
        return result

    return send


def whitelist(tenancy, scenario, *conditions, name=None, **fields) -> RuleGroup:
    spec = GroupSpec(
        name=name or f"{scenario} group",
        scenario=scenario,
        conditions=[ConditionSpec(*condition) for condition in conditions],
        **fields,
    )
    return save_group(spec, organisation_scope(tenancy.org), allow_global=True)


def host_alert(account, uuid, alert_type, host=HOST_X, file_path=None, **fields):
    entities = [{"type": "file", "path": file_path}] if file_path else []
    return native_alert(
        account,
        uuid=uuid,
        type=alert_type,
        name=alert_type.replace("_", " ").capitalize(),
        asset={"uuid": host, "name": host},
        entities=entities,
        **fields,
    )


def whitelisted_by(uuid: str) -> str | None:
    """The name of the group that whitelisted the alert, or None; checks the
    flag and the match record agree and that a whitelisted alert is in no event."""
    alert = Alert.objects.get(source_uuid=uuid)
    match = Match.objects.filter(alert=alert).select_related("group").first()
    in_event = EventAlert.objects.filter(alert=alert).exists()
    assert alert.whitelisted == (match is not None)
    assert in_event == (not alert.whitelisted)
    return match.group.name if match else None


# --- AND within a group, OR across groups: the documented example ----------------------


@pytest.fixture
def documented_groups(tenancy):
    return (
        whitelist(
            tenancy,
            "rootkit",
            ("host_uuid", "equals", HOST_X),
            ("file_path", "contains", PATH_Y),
            name="group 1",
        ),
        whitelist(tenancy, "compromised_software", ("host_uuid", "equals", HOST_X), name="group 2"),
    )


TRUTH_TABLE = [
    # alert type, host uuid, file path, the group that whitelists it
    ("rootkit", HOST_X, f"{PATH_Y}libhide.so", "group 1"),
    ("rootkit", HOST_X, "/usr/lib/libc.so.6", None),
    ("rootkit", HOST_Z, f"{PATH_Y}libhide.so", None),
    ("rootkit", HOST_X, None, None),
    ("compromised_software", HOST_X, None, "group 2"),
    ("compromised_software", HOST_X, "/usr/bin/ls", "group 2"),
    ("compromised_software", HOST_Z, f"{PATH_Y}libhide.so", None),
    ("mining", HOST_X, f"{PATH_Y}libhide.so", None),
]


@pytest.mark.parametrize("alert_type, host, file_path, group_name", TRUTH_TABLE)
def test_it_whitelists_by_the_documented_example(
    tenancy, ingest, documented_groups, alert_type, host, file_path, group_name
):
    ingest(host_alert(tenancy.account_a, "alert", alert_type, host, file_path))

    assert whitelisted_by("alert") == group_name
    assert SecurityEvent.objects.exists() == (group_name is None)


def test_it_applies_the_truth_table_to_one_batch(tenancy, ingest, documented_groups):
    ingest(
        *[
            host_alert(tenancy.account_a, f"row-{n}", alert_type, host, file_path)
            for n, (alert_type, host, file_path, _) in enumerate(TRUTH_TABLE)
        ]
    )

    assert [whitelisted_by(f"row-{n}") for n in range(len(TRUTH_TABLE))] == [
        group_name for *_, group_name in TRUTH_TABLE
    ]
    aggregated = set(EventAlert.objects.values_list("alert__source_uuid", flat=True))
    assert aggregated == {f"row-{n}" for n, row in enumerate(TRUTH_TABLE) if row[3] is None}
    group_1, group_2 = documented_groups
    group_1.refresh_from_db()
    group_2.refresh_from_db()
    assert (group_1.hit_count, group_2.hit_count) == (1, 2)


def test_it_whitelists_an_alert_any_group_of_its_scenario_matches(tenancy, ingest):
    whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="by host")
    whitelist(tenancy, "rootkit", ("file_path", "starts_with", PATH_Y), name="by path")

    ingest(
        host_alert(tenancy.account_a, "on-x", "rootkit", HOST_X, "/usr/lib/libc.so.6"),
        host_alert(tenancy.account_a, "in-y", "rootkit", HOST_Z, f"{PATH_Y}libhide.so"),
        host_alert(tenancy.account_a, "neither", "rootkit", HOST_Z, "/usr/lib/libc.so.6"),
    )

    assert [whitelisted_by(uuid) for uuid in ("on-x", "in-y", "neither")] == [
        "by host",
        "by path",
        None,
    ]


# --- objects read by the pipeline ------------------------------------------------------


def brute_force(account, uuid, raw):
    attacker = {"type": "ip", "role": "attacker", "value": "203.0.113.7"}
    return native_alert(
        account, uuid=uuid, type="brute_force", name="SSH brute force", entities=[attacker], raw=raw
    )


def test_it_reads_the_destination_port_from_the_original_data(tenancy, ingest):
    whitelist(tenancy, "brute_force", ("destination_port", "in_list", "22\n2022"), name="ssh")

    ingest(
        brute_force(tenancy.account_a, "number", {"dst_port": 22}),
        brute_force(tenancy.account_a, "text", {"dest_port": "2022"}),
        brute_force(tenancy.account_a, "other-port", {"dst_port": 2222}),
        brute_force(tenancy.account_a, "no-port", {"user": "root"}),
        brute_force(tenancy.account_a, "not-a-port", {"dst_port": "²"}),
    )

    assert {
        uuid: whitelisted_by(uuid)
        for uuid in ("number", "text", "other-port", "no-port", "not-a-port")
    } == {"number": "ssh", "text": "ssh", "other-port": None, "no-port": None, "not-a-port": None}


def test_it_never_meets_a_negative_port_condition_without_a_port(tenancy, ingest):
    whitelist(tenancy, "brute_force", ("destination_port", "not_equals", "22"), name="not ssh")

    ingest(
        brute_force(tenancy.account_a, "rdp", {"dst_port": 3389}),
        brute_force(tenancy.account_a, "ssh", {"dst_port": 22}),
        brute_force(tenancy.account_a, "unknown", {}),
    )

    assert [whitelisted_by(uuid) for uuid in ("rdp", "ssh", "unknown")] == ["not ssh", None, None]


def test_it_keeps_the_first_group_by_id_when_an_earlier_one_needs_the_port(tenancy, ingest):
    whitelist(
        tenancy,
        "brute_force",
        ("destination_port", "equals", "22"),
        ("source_ip", "equals", "203.0.113.7"),
        name="ssh from the scanner",
    )
    whitelist(tenancy, "brute_force", ("alert_name", "equals", "SSH brute force"), name="any")

    ingest(
        brute_force(tenancy.account_a, "ssh", {"dst_port": 22}),
        brute_force(tenancy.account_a, "rdp", {"dst_port": 3389}),
    )

    assert [whitelisted_by(uuid) for uuid in ("ssh", "rdp")] == ["ssh from the scanner", "any"]


def test_it_reads_ports_only_for_alerts_that_meet_everything_else(tenancy, ingest):
    whitelist(
        tenancy,
        "brute_force",
        ("destination_port", "equals", "22"),
        ("source_ip", "equals", "192.0.2.1"),
    )
    ingest(brute_force(tenancy.account_a, "ssh", {"dst_port": 22}))
    facts = load_alert_facts(list(Alert.objects.values_list("id", flat=True)))

    with CaptureQueriesContext(connection) as queries:
        matched = services.match_alerts(facts, timezone.now())

    assert matched == {}
    assert not [q for q in queries.captured_queries if "dst_port" in q["sql"]]


def process_entity(path, cmdline, **attributes):
    return {"type": "process", "path": path, "cmdline": cmdline, **attributes}


def test_it_finds_the_parent_process_of_an_ingested_alert(tenancy, ingest):
    whitelist(
        tenancy, "malicious_process", ("parent_process", "equals", "/usr/sbin/sshd"), name="ssh"
    )

    ingest(
        native_alert(
            tenancy.account_a,
            uuid="by-pid",
            type="malicious_process",
            entities=[
                process_entity("/usr/sbin/sshd", "sshd: root@pts/0", pid=100, ppid=1),
                process_entity("/bin/bash", "bash -i", pid=200, ppid=100),
            ],
        ),
        native_alert(
            tenancy.account_a,
            uuid="by-attribute",
            type="malicious_process",
            entities=[
                process_entity("/bin/sh", "sh -c id", pid=300, parent_path="/usr/sbin/sshd"),
            ],
        ),
        native_alert(
            tenancy.account_a,
            uuid="orphan",
            type="malicious_process",
            entities=[
                process_entity("/usr/sbin/sshd", "sshd: listener", pid=400, ppid=1),
                process_entity("/bin/zsh", "zsh -i", pid=500, ppid=999),
            ],
        ),
    )

    assert [whitelisted_by(uuid) for uuid in ("by-pid", "by-attribute", "orphan")] == [
        "ssh",
        "ssh",
        None,
    ]


# --- expiry and disabled groups ---------------------------------------------------------


def test_it_no_longer_applies_an_expired_group(tenancy, ingest):
    group = whitelist(
        tenancy,
        "rootkit",
        ("host_uuid", "equals", HOST_X),
        expires_at=timezone.now() + timedelta(days=1),
    )
    # Expiry passed since: validation refuses to save a past expiry.
    RuleGroup.objects.filter(id=group.id).update(expires_at=timezone.now() - timedelta(minutes=1))

    ingest(host_alert(tenancy.account_a, "after-expiry", "rootkit"))

    assert whitelisted_by("after-expiry") is None


def test_it_checks_the_expiry_of_a_cached_group_at_each_batch(tenancy):
    expiry = timezone.now() + timedelta(hours=1)
    group = whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), expires_at=expiry)
    # Stored without the pipeline (no commit under the test transaction).
    ingest_alerts(
        [host_alert(tenancy.account_a, "alert", "rootkit")],
        scope=organisation_scope(tenancy.org),
    )
    facts = load_alert_facts(Alert.objects.values_list("id", flat=True))

    before = services.match_alerts(facts, expiry - timedelta(seconds=1))
    after = services.match_alerts(facts, expiry)

    assert [g.id for g in before.values()] == [group.id]
    assert after == {}


def test_it_never_applies_a_disabled_group(tenancy, ingest):
    whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), enabled=False)

    ingest(host_alert(tenancy.account_a, "alert", "rootkit"))

    assert whitelisted_by("alert") is None


# --- compiled rules: cached, and rebuilt on every change ---------------------------------


def test_it_sees_every_change_of_a_group_in_the_next_batch(tenancy, ingest):
    scope = organisation_scope(tenancy.org)
    group = whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="v1")
    counter = iter(range(100))

    def outcome(host=HOST_X):
        uuid = f"alert-{next(counter)}"
        ingest(host_alert(tenancy.account_a, uuid, "rootkit", host))
        return whitelisted_by(uuid)

    assert outcome() == "v1"
    set_group_enabled(group, False, scope, allow_global=True)
    assert outcome() is None
    set_group_enabled(group, True, scope, allow_global=True)
    assert outcome() == "v1"
    save_group(
        GroupSpec(
            name="v2", scenario="rootkit", conditions=[ConditionSpec("host_uuid", "equals", HOST_Z)]
        ),
        scope,
        allow_global=True,
        group=group,
    )
    assert (outcome(HOST_X), outcome(HOST_Z)) == (None, "v2")
    delete_group(group, scope, allow_global=True)
    assert outcome(HOST_Z) is None
    # The match of a deleted group keeps its name.
    assert list(Match.objects.filter(group=None).values_list("group_name", flat=True)) == [
        "v1",
        "v1",
        "v2",
    ]


# --- a constant number of statements per batch ---------------------------------------------


def test_it_issues_as_many_statements_for_200_alerts_as_for_10_with_100_groups(tenancy):
    scope = organisation_scope(tenancy.org)
    for n in range(90):
        whitelist(tenancy, "mining", ("host_uuid", "equals", f"host-{n}"), name=f"host {n}")
    for n in range(10):
        whitelist(
            tenancy,
            "mining",
            ("host_uuid", "equals", "pool-host"),
            ("destination_port", "equals", str(3330 + n)),
            name=f"pool port {n}",
        )

    def batch(prefix: str, size: int) -> list[int]:
        """A quarter of the alerts whitelisted by host, a quarter by port, half
        aggregated: the larger the batch, the more groups hit and events touched."""
        items = []
        for n in range(size):
            host, raw = [
                (f"host-{n // 4}", {}),
                ("pool-host", {"dst_port": 3330 + n // 4 % 10}),
                (f"db-{n // 4 % 30}", {}),
                (f"db-{n // 4 % 30}", {"dst_port": 3330}),
            ][n % 4]
            items.append(
                native_alert(
                    tenancy.account_a,
                    uuid=f"{prefix}-{n}",
                    type="mining",
                    asset={"uuid": host, "name": host},
                    occurred_at=(ALERT_TIME + timedelta(seconds=n)).isoformat(),
                    raw=raw,
                )
            )
        # Stored without the pipeline (no commit under the test transaction).
        assert ingest_alerts(items, scope=scope).accepted == size
        return list(
            Alert.objects.filter(source_uuid__startswith=f"{prefix}-").values_list("id", flat=True)
        )

    warm_up, small, large = batch("warm", 4), batch("small", 10), batch("large", 200)
    process_alerts(warm_up)  # compiles the rule set

    with CaptureQueriesContext(connection) as ten:
        process_alerts(small)
    with CaptureQueriesContext(connection) as two_hundred:
        process_alerts(large)

    assert Alert.objects.filter(whitelisted=True).count() == 2 + 6 + 100
    assert RuleGroup.objects.filter(hit_count__gt=0).count() == 50 + 10
    assert len(two_hundred.captured_queries) == len(ten.captured_queries)


# --- tenancy ---------------------------------------------------------------------------


def test_it_applies_a_group_limited_to_an_account_to_that_account_only(tenancy, ingest):
    whitelist(
        tenancy,
        "rootkit",
        ("host_uuid", "equals", HOST_X),
        name="A only",
        is_global=False,
        account_ids=[tenancy.account_a.id],
    )

    ingest(
        host_alert(tenancy.account_a, "of-a", "rootkit"),
        host_alert(tenancy.account_b, "of-b", "rootkit"),
    )

    assert (whitelisted_by("of-a"), whitelisted_by("of-b")) == ("A only", None)


def test_it_never_applies_a_group_to_another_organisations_alerts(tenancy, ingest):
    whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="Acme's")

    ingest(
        host_alert(tenancy.account_x, "umbrella", "rootkit"),
        scope=organisation_scope(tenancy.other_org),
    )
    ingest(host_alert(tenancy.account_a, "acme", "rootkit"))

    assert (whitelisted_by("umbrella"), whitelisted_by("acme")) == (None, "Acme's")


# --- hits ---------------------------------------------------------------------------------


def test_it_counts_the_hits_of_a_group_over_batches(tenancy, ingest):
    counted = whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="counted")
    idle = whitelist(tenancy, "rootkit", ("host_uuid", "equals", "host-never"), name="idle")

    start = timezone.now()
    ingest(
        host_alert(tenancy.account_a, "first-1", "rootkit"),
        host_alert(tenancy.account_a, "first-2", "rootkit"),
        host_alert(tenancy.account_a, "other", "rootkit", HOST_Z),
    )
    counted.refresh_from_db()
    first_hit = counted.last_hit_at
    ingest(host_alert(tenancy.account_a, "second", "rootkit"))
    end = timezone.now()

    counted.refresh_from_db()
    idle.refresh_from_db()
    assert counted.hit_count == 3
    assert start <= first_hit <= counted.last_hit_at <= end
    assert first_hit < counted.last_hit_at
    assert (idle.hit_count, idle.last_hit_at) == (0, None)


def test_it_counts_the_hits_once_per_batch_after_the_rest_of_the_pipeline(tenancy, ingest):
    counted = whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="counted")
    ingest(
        host_alert(tenancy.account_a, "hit-1", "rootkit"),
        host_alert(tenancy.account_a, "hit-2", "rootkit"),
        host_alert(tenancy.account_a, "grouped", "webshell", HOST_Z),
    )
    ids = list(Alert.objects.values_list("id", flat=True))
    # The same alerts through the pipeline again: their hits are counted again.
    Match.objects.all().delete()
    Alert.objects.update(whitelisted=False)

    with CaptureQueriesContext(connection) as queries:
        process_alerts(ids)

    statements = [q["sql"] for q in queries.captured_queries]
    hit_updates = [
        n
        for n, sql in enumerate(statements)
        if sql.startswith("UPDATE") and "whitelist_rulegroup" in sql and "hit_count" in sql
    ]
    feed_writes = [
        n
        for n, sql in enumerate(statements)
        if "INSERT INTO" in sql and "events_eventchange" in sql
    ]
    assert len(hit_updates) == 1
    # The counted groups stay locked until the commit: counted after the events and the feed.
    assert feed_writes and hit_updates[0] > max(feed_writes)
    counted.refresh_from_db()
    assert counted.hit_count == 4


def test_it_keeps_the_hits_counted_while_a_group_was_being_edited(tenancy, ingest):
    group = whitelist(tenancy, "rootkit", ("host_uuid", "equals", HOST_X), name="before")
    # The editor holds the group as loaded; the pipeline counts a hit meanwhile.
    ingest(host_alert(tenancy.account_a, "hit", "rootkit"))

    save_group(
        GroupSpec(
            name="after",
            scenario="rootkit",
            conditions=[ConditionSpec("host_uuid", "equals", HOST_X)],
        ),
        organisation_scope(tenancy.org),
        allow_global=True,
        group=group,
    )

    group.refresh_from_db()
    assert (group.name, group.hit_count, group.last_hit_at is not None) == ("after", 1, True)


# --- each alert judged by its own values ------------------------------------------------

SHA = "a" * 64


def test_it_judges_a_file_by_the_path_this_alert_reports(tenancy, ingest):
    """The same file (one hash, one entity of the account) seen at a new path:
    the whitelist reads the path of this alert, not the first alert's."""
    whitelist(tenancy, "malicious_file", ("file_path", "starts_with", "/opt/scanner/"))

    def file_alert(uuid, path):
        return native_alert(
            tenancy.account_a,
            uuid=uuid,
            type="malicious_file",
            name="Malicious file",
            entities=[{"type": "file", "sha256": SHA, "path": path}],
        )

    ingest(file_alert("first", "/tmp/x"), file_alert("second", "/opt/scanner/x"))
    ingest(file_alert("third", "/tmp/y"))

    assert [whitelisted_by(u) for u in ("first", "second", "third")] == [
        None,
        "malicious_file group",
        None,
    ]


def test_it_finds_the_parent_by_the_pids_of_this_alert(tenancy, ingest):
    """A repeated command line (one process entity) with another pid each time."""
    whitelist(tenancy, "suspicious_process", ("parent_process", "equals", "/usr/sbin/cron"))

    def process_alert(uuid, pid):
        return native_alert(
            tenancy.account_a,
            uuid=uuid,
            entities=[
                process_entity("/bin/sh", "/bin/sh -c backup.sh", pid=pid, ppid=pid - 1),
                process_entity("/usr/sbin/cron", f"/usr/sbin/cron -f #{pid}", pid=pid - 1),
            ],
        )

    ingest(process_alert("earlier", 100))
    ingest(process_alert("later", 200))

    assert whitelisted_by("earlier") == whitelisted_by("later") == "suspicious_process group"
