"""Bulk handling over the API: a job started from event ids or from the event
list's filters, as the list's Bulk handling does; its progress and failures
are read by the key that started it only."""

import pytest
from django.test import Client

from events.models import EventStatus, SecurityEvent
from secops.services import create_api_key, revoke_api_key, scope_for_api_key
from soar import bulk
from soar.models import BulkHandlingJob
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def client_of(api_key_and_secret) -> Client:
    return Client(headers={"authorization": f"Bearer {api_key_and_secret[1]}"})


def start(client, body, query=""):
    return client.post(f"/api/v1/bulk-handling{query}", body, content_type="application/json")


@pytest.fixture
def org_key(tenancy):
    return create_api_key(organisation=tenancy.org, account=None, name="Bulk")


def test_it_sets_the_status_of_the_selected_events_and_reports_the_job(
    tenancy, org_key, django_capture_on_commit_callbacks
):
    events = [factories.make_event(tenancy.account_a) for _ in range(2)]
    api = client_of(org_key)

    with django_capture_on_commit_callbacks(execute=True):
        response = start(
            api,
            {
                "action": "set_status",
                "status": "handled",
                "description": "Known scanner",
                "target": "selected",
                "event_ids": [e.id for e in events] + [999_999],
            },
        )

    assert response.status_code == 202, response.content
    assert response.json()["left_out"] == 1
    job = api.get(f"/api/v1/bulk-handling/{response.json()['id']}").json()
    assert (job["status"], job["handled"], job["event_count"]) == ("done", 2, 2)
    assert job["summary"] == "Set 2 events to Handled"
    assert {e.status for e in SecurityEvent.objects.filter(id__in=[e.id for e in events])} == {
        EventStatus.HANDLED
    }
    assert BulkHandlingJob.objects.get(id=job["id"]).api_key_id == org_key[0].id


def test_it_takes_every_event_the_list_filters_match(tenancy, org_key):
    high = factories.make_event(tenancy.account_a, risk=3)
    factories.make_event(tenancy.account_a, risk=1)

    response = start(
        client_of(org_key),
        {"action": "set_status", "status": "handling", "target": "all"},
        "?risk=3",
    )

    assert response.status_code == 202, response.content
    job = BulkHandlingJob.objects.get(id=response.json()["id"])
    assert job.event_ids == [high.id]
    assert job.filters["risk"] == ["3"] or job.filters["risk"] == [3]


@pytest.mark.parametrize(
    ("body", "query", "field"),
    [
        ({"action": "set_status", "status": "failed", "target": "selected"}, "", "status"),
        ({"action": "explode", "target": "selected", "event_ids": [1]}, "", "action"),
        ({"action": "run_playbook", "target": "selected", "event_ids": [1]}, "", "playbook"),
        ({"action": "set_status", "status": "handled", "target": "selected"}, "", "event_ids"),
        ({"action": "set_status", "status": "handled", "target": "all"}, "?risk=9", "risk"),
        (
            {"action": "set_status", "status": "handled", "target": "all"},
            "?name=nothing",
            "filters",
        ),
    ],
)
def test_it_refuses_what_the_list_refuses_naming_the_field(tenancy, org_key, body, query, field):
    factories.make_event(tenancy.account_a)

    response = start(client_of(org_key), body, query)

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert not BulkHandlingJob.objects.exists()


def test_the_job_and_its_failures_belong_to_the_key_that_started_it(tenancy, org_key):
    event = factories.make_event(tenancy.account_a)
    api = client_of(org_key)
    job_id = start(
        api,
        {
            "action": "set_status",
            "status": "handled",
            "target": "selected",
            "event_ids": [event.id],
        },
    ).json()["id"]
    other_key = client_of(create_api_key(organisation=tenancy.org, account=None, name="Other"))
    outsider = client_of(create_api_key(organisation=tenancy.other_org, account=None, name="X"))

    assert api.get(f"/api/v1/bulk-handling/{job_id}/failures").json() == []
    assert other_key.get(f"/api/v1/bulk-handling/{job_id}").status_code == 404
    assert outsider.get(f"/api/v1/bulk-handling/{job_id}").status_code == 404
    assert outsider.get(f"/api/v1/bulk-handling/{job_id}/failures").status_code == 404


def test_an_outsiders_event_ids_select_nothing(tenancy):
    event = factories.make_event(tenancy.account_a)
    outsider = client_of(create_api_key(organisation=tenancy.other_org, account=None, name="X"))

    response = start(
        outsider,
        {
            "action": "set_status",
            "status": "handled",
            "target": "selected",
            "event_ids": [event.id],
        },
    )

    assert response.status_code == 422
    assert "event_ids" in response.json()["errors"]
    event.refresh_from_db()
    assert event.status == EventStatus.UNHANDLED


def test_a_job_of_a_key_revoked_meanwhile_handles_nothing_more(tenancy, org_key):
    event = factories.make_event(tenancy.account_a)
    scope = scope_for_api_key(org_key[0])
    job = bulk.start_bulk_handling(
        api_key=org_key[0],
        scope=scope,
        plan=bulk.plan_selected(scope, [event.id]),
        request=bulk.BulkRequest("set_status", "handled"),
    )
    revoke_api_key(org_key[0])

    bulk.run_bulk_job(job.id)

    job.refresh_from_db()
    assert job.status == "failed" and "revoked" in job.error
    event.refresh_from_db()
    assert event.status == EventStatus.UNHANDLED


def test_the_failures_name_the_events_an_account_key_could_not_handle(tenancy):
    """An account key's job reaches its account's events only: one of account B
    named in the same job is left out when it starts."""
    in_a = factories.make_event(tenancy.account_a)
    in_b = factories.make_event(tenancy.account_b)
    api = client_of(create_api_key(organisation=tenancy.org, account=tenancy.account_a, name="A"))

    response = start(
        api,
        {
            "action": "set_status",
            "status": "handled",
            "target": "selected",
            "event_ids": [in_a.id, in_b.id],
        },
    )

    assert response.status_code == 202
    assert response.json()["left_out"] == 1
    in_b.refresh_from_db()
    assert in_b.status == EventStatus.UNHANDLED
