"""``make load``'s analysts find what to open in the pages as the console
renders them: events in the event list, alerts (and their details panel) on
the Alert page. Were the markup to change, the load test would stop opening
those pages without any error; this notices it."""

import pytest
from django.utils import timezone

from bench.load import LINK
from tests.conftest import native_alert, organisation_scope

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def stored(tenancy, ingest_and_aggregate):
    attacker = {"type": "ip", "role": "attacker", "value": "203.0.113.7"}
    item = native_alert(
        tenancy.account_a,
        type="brute_force",
        name="SSH brute force",
        entities=[attacker],
        occurred_at=timezone.now().isoformat(),
    )
    assert ingest_and_aggregate([item], scope=organisation_scope(tenancy.org)).errors == []


def test_the_event_list_links_the_events_the_analysts_open(client, tenancy, stored):
    client.force_login(tenancy.bob)
    found = LINK["event"].findall(client.get("/events/").content.decode())

    assert found
    for event_id in set(found):
        assert client.get(f"/events/{event_id}/?tab=alerts").status_code == 200


def test_the_alert_page_names_the_alerts_whose_details_the_analysts_open(client, tenancy, stored):
    client.force_login(tenancy.bob)
    found = LINK["alert"].findall(client.get("/alerts/").content.decode())

    assert found
    details = client.get(f"/alerts/{found[0]}/", HTTP_HX_REQUEST="true")
    assert details.status_code == 200


def test_an_outsider_finds_nothing_to_open(client, tenancy, stored):
    client.force_login(tenancy.charlie)  # of another organisation

    assert LINK["event"].findall(client.get("/events/").content.decode()) == []
    assert LINK["alert"].findall(client.get("/alerts/").content.decode()) == []
