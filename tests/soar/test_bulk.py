"""Bulk handling from the Security Event Handling list: the bar, the
confirmation, the job (status changes, recommended policies, playbook runs, failures per
event, the owner's current rights, redelivery, progress, clean-up), its page,
who may see and start one, and a run on a real Celery worker."""

import time
from datetime import timedelta
from uuid import uuid4

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertEntity, Entity, EntityRole, EntityType
from disposal.models import HandlingPolicy, HandlingTask, PolicySource
from events.forms import EventFilterForm
from events.models import (
    ChangeCause,
    EventAlert,
    EventChange,
    EventStatus,
    EventStatusChange,
    SecurityEvent,
)
from secops import jobs
from secops.enums import RegionGroup, RiskLevel, Role, View
from secops.models import AccountMembership, OrganisationMembership
from secops.services import SESSION_VIEW, build_scope
from soar import bulk, tasks
from soar.models import (
    BulkAction,
    BulkHandlingItem,
    BulkHandlingJob,
    ItemOutcome,
    PlaybookRun,
    RunTrigger,
)
from soar.playbooks import PlaybookSpec, save_playbook
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HTMX = {"HX-Request": "true"}
START = reverse("soar:bulk_start")


# --- helpers --------------------------------------------------------------------


def job_url(job) -> str:
    return reverse("soar:bulk_job", args=[job.id])


def global_client(tenancy, user=None):
    """A client in the Global Account View (accounts A and B, region China)."""
    client = tenancy.client_for(user or tenancy.alice)
    session = client.session
    session[SESSION_VIEW] = View.GLOBAL
    session.save()
    return client


def form(*, target="selected", ids=(), status="handled", action=BulkAction.SET_STATUS, **extra):
    data = {
        "bulk-action": action,
        "bulk-status": status,
        "bulk-description": "False positives of the scanner",
        "bulk-target": target,
        **extra,
    }
    if ids:
        data["ids"] = [str(getattr(i, "pk", i)) for i in ids]
    return data


def start(client, data, capture, *, htmx=True):
    """Confirm and start; the job runs when the request commits, as in production
    without a broker (tasks run eagerly in the suite)."""
    with capture(execute=True):
        response = client.post(START, {**data, "confirmed": "yes"}, headers=HTMX if htmx else {})
    return response


def statuses(events) -> list[str]:
    return [SecurityEvent.objects.get(pk=e.pk).status for e in events]


def items(job) -> dict[int, tuple[str, str]]:
    return {i.event_id: (i.outcome, i.message) for i in BulkHandlingItem.objects.filter(job=job)}


def make_bulk_job(
    owner, scope, events, *, action=BulkAction.SET_STATUS, status="handled", playbook=None
):
    """A pending job, queued nowhere (the test runs it)."""
    return BulkHandlingJob.objects.create(
        owner=owner,
        **jobs.scope_fields(scope),
        action=action,
        target_status=status if action == BulkAction.SET_STATUS else "",
        description="Bulk",
        playbook=playbook,
        selection="selected",
        event_ids=[e.pk for e in events],
        event_count=len(events),
        expires_at=timezone.now() + bulk.JOB_LIFETIME,
    )


def current_scope(user):
    """The user's default scope: the Current Account View of their first account."""
    return build_scope(user, {})


def global_scope(user):
    return build_scope(user, {SESSION_VIEW: View.GLOBAL})


# --- the bar on the list ----------------------------------------------------------


def test_it_offers_the_bar_to_analysts_with_the_count_of_matching_events(tenancy):
    for _ in range(3):
        factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)

    page = tenancy.client_for(tenancy.bob).get(reverse("events:list"), {"risk": "3"})

    html = page.content.decode()
    assert 'data-testid="bulk-form"' in html
    assert "Handle all 3 matching" in html
    # The filters the "all matching" post carries, without the page number.
    assert 'name="query" value="risk=3"' in html


def test_the_bar_follows_the_filters_of_an_htmx_refresh(tenancy):
    factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)

    partial = tenancy.client_for(tenancy.bob).get(
        reverse("events:list"), {"risk": "1"}, headers=HTMX
    )

    assert "Handle all 1 matching" in partial.content.decode()


def test_a_viewer_sees_no_bar(tenancy):
    viewer = factories.make_user(tenancy.org, "vera", accounts=[tenancy.account_a], role="viewer")
    factories.make_event(tenancy.account_a)

    page = tenancy.client_for(viewer).get(reverse("events:list"))

    assert page.status_code == 200
    assert 'data-testid="bulk-form"' not in page.content.decode()


# --- confirming and starting ------------------------------------------------------


def test_it_asks_for_confirmation_before_it_starts(tenancy):
    events = [factories.make_event(tenancy.account_a) for _ in range(3)]

    response = tenancy.client_for(tenancy.bob).post(START, form(ids=events), headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Set 3 events to Handled?" in html
    assert f'name="ids" value="{events[0].pk},{events[1].pk},{events[2].pk}"' in html
    assert not BulkHandlingJob.objects.exists()
    assert statuses(events) == ["unhandled"] * 3


def test_it_sets_the_status_of_the_selected_events(tenancy, django_capture_on_commit_callbacks):
    events = [factories.make_event(tenancy.account_a) for _ in range(4)]
    client = tenancy.client_for(tenancy.bob)

    response = start(client, form(ids=events[:3]), django_capture_on_commit_callbacks)

    job = BulkHandlingJob.objects.get()
    assert response.headers["HX-Redirect"] == job_url(job)
    assert job.status == "done"
    assert statuses(events) == ["handled", "handled", "handled", "unhandled"]
    assert {outcome for outcome, _ in items(job).values()} == {ItemOutcome.HANDLED}
    history = EventStatusChange.objects.filter(event=events[0]).get()
    assert (history.changed_by, history.cause, history.cause_ref, history.note) == (
        tenancy.bob,
        ChangeCause.USER,
        f"bulk:{job.id}",
        "False positives of the scanner",
    )
    change = EventChange.objects.get(event=events[0])
    assert (change.cause_ref, change.user) == (f"bulk:{job.id}", tenancy.bob)
    page = client.get(job_url(job)).content.decode()
    assert 'data-testid="bulk-handled">3<' in page
    assert 'data-testid="bulk-failed">0<' in page
    detail = client.get(reverse("events:detail", args=[events[0].pk])).content.decode()
    assert 'data-testid="bulk-change"' in detail


def test_a_plain_form_post_is_sent_to_the_job_page(tenancy, django_capture_on_commit_callbacks):
    event = factories.make_event(tenancy.account_a)

    response = start(
        tenancy.client_for(tenancy.bob),
        form(ids=[event]),
        django_capture_on_commit_callbacks,
        htmx=False,
    )

    job = BulkHandlingJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job_url(job)


def test_it_handles_all_events_the_filters_match(tenancy, django_capture_on_commit_callbacks):
    high = [factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH) for _ in range(5)]
    low = factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)
    # Another view's event matches the filters too, and is not the analyst's.
    other = factories.make_event(tenancy.account_b, risk=RiskLevel.HIGH, region=RegionGroup.CHINA)
    client = tenancy.client_for(tenancy.bob)

    confirmation = client.post(START, form(target="all", query="risk=3"), headers=HTMX)
    assert "Set 5 events to Handled?" in confirmation.content.decode()
    start(client, form(target="all", query="risk=3&page=2"), django_capture_on_commit_callbacks)

    job = BulkHandlingJob.objects.get()
    assert job.selection == "filter"
    assert job.filters["risk"] == [3]
    assert sorted(job.event_ids) == sorted(e.pk for e in high)
    assert statuses(high) == ["handled"] * 5
    assert statuses([low, other]) == ["unhandled", "unhandled"]


def test_it_leaves_out_selected_events_of_another_view(tenancy):
    mine = factories.make_event(tenancy.account_a)
    theirs = factories.make_event(tenancy.account_x)

    response = tenancy.client_for(tenancy.bob).post(START, form(ids=[mine, theirs]), headers=HTMX)

    html = response.content.decode()
    assert "Set 1 event to Handled?" in html
    assert "1 of the selected events is not in your view" in html
    assert f'name="ids" value="{mine.pk}"' in html


# --- refusals ---------------------------------------------------------------------


def test_it_refuses_to_set_failed(tenancy, django_capture_on_commit_callbacks):
    event = factories.make_event(tenancy.account_a)

    response = start(
        tenancy.client_for(tenancy.bob),
        form(ids=[event], status="failed"),
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 200
    assert "Failed is set only when a handling task fails." in response.content.decode()
    assert not BulkHandlingJob.objects.exists()
    assert statuses([event]) == ["unhandled"]
    with pytest.raises(bulk.BulkRefused, match="Failed is set only"):
        bulk.BulkRequest(BulkAction.SET_STATUS, EventStatus.FAILED).check()
    # Nor can a job that would set it be stored.
    with pytest.raises(IntegrityError), transaction.atomic():
        make_bulk_job(tenancy.bob, current_scope(tenancy.bob), [event], status=EventStatus.FAILED)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (form(), "Select at least one event in the list."),
        (form(ids=["12x"]), "Select the events in the list."),
        (form(target="all", query="name=nothing-is-called-this"), "No security events match"),
        (form(status=""), "Choose the status to set."),
        (form(action="delete_everything"), "Select a valid choice"),
        (form(action="run_playbook"), "Choose the playbook to run."),
    ],
    ids=[
        "nothing selected",
        "not an id",
        "nothing matches",
        "no status",
        "no such action",
        "no playbook",
    ],
)
def test_it_starts_nothing_without_events_or_an_action(
    tenancy, django_capture_on_commit_callbacks, data, message
):
    factories.make_event(tenancy.account_a)

    response = start(tenancy.client_for(tenancy.bob), data, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'data-testid="bulk-refusal"' in response.content.decode()
    assert not BulkHandlingJob.objects.exists()


def test_it_refuses_more_than_10000_events(tenancy, django_capture_on_commit_callbacks):
    now = timezone.now()
    rule = factories.make_rule()
    SecurityEvent.objects.bulk_create(
        SecurityEvent(
            account=tenancy.account_a,
            rule=rule,
            group_key=uuid4().hex,
            name="Port scan",
            risk=RiskLevel.LOW,
            first_occurred_at=now,
            last_occurred_at=now,
            region=RegionGroup.CHINA,
        )
        for _ in range(bulk.MAX_EVENTS + 1)
    )
    client = tenancy.client_for(tenancy.bob)

    page = client.get(reverse("events:list")).content.decode()
    by_filter = start(
        client, form(target="all", query="occurred=7d"), django_capture_on_commit_callbacks
    )
    ids = ",".join(str(n) for n in range(1, bulk.MAX_EVENTS + 2))
    by_ids = start(client, form(ids=[ids]), django_capture_on_commit_callbacks)

    assert "Handle all 10,001 matching" in page
    assert "10,001 events match, and bulk handling takes at most 10,000" in (
        by_filter.content.decode()
    )
    assert "10,001 events are selected, and bulk handling takes at most 10,000" in (
        by_ids.content.decode()
    )
    assert not BulkHandlingJob.objects.exists()
    assert not SecurityEvent.objects.exclude(status="unhandled").exists()


def test_a_viewer_is_refused_even_with_a_forged_post(tenancy, django_capture_on_commit_callbacks):
    viewer = factories.make_user(tenancy.org, "vera", accounts=[tenancy.account_a], role="viewer")
    event = factories.make_event(tenancy.account_a)

    response = start(
        tenancy.client_for(viewer), form(ids=[event]), django_capture_on_commit_callbacks
    )

    assert response.status_code == 403
    assert not BulkHandlingJob.objects.exists()
    assert statuses([event]) == ["unhandled"]


def test_an_outsider_acts_on_nothing_and_sees_no_job(tenancy, django_capture_on_commit_callbacks):
    event = factories.make_event(tenancy.account_a)
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), [event])
    charlie = tenancy.client_for(tenancy.charlie)

    response = start(charlie, form(ids=[event]), django_capture_on_commit_callbacks)

    assert "None of the selected events is in your view" in response.content.decode()
    assert charlie.get(job_url(job)).status_code == 404
    assert charlie.get(job_url(job), headers=HTMX).status_code == 404
    assert statuses([event]) == ["unhandled"]
    assert BulkHandlingJob.objects.get() == job


def test_a_job_is_its_owners_only(tenancy):
    event = factories.make_event(tenancy.account_a)
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), [event])

    assert tenancy.client_for(tenancy.bob).get(job_url(job)).status_code == 200
    # Alice administers the organisation, and still does not see bob's jobs.
    assert tenancy.client_for(tenancy.alice).get(job_url(job)).status_code == 404
    assert (
        tenancy.client_for(tenancy.bob)
        .get(reverse("soar:bulk_job", args=[job.id + 1000]))
        .status_code
        == 404
    )


# --- per-event outcomes -----------------------------------------------------------


def test_it_records_failures_per_event_and_goes_on(tenancy):
    """An event that cannot be reopened (its group has an Unhandled event
    already) fails; the events before and after it are handled."""
    rule = factories.make_rule()
    before = factories.make_event(tenancy.account_a, status=EventStatus.HANDLED)
    stuck = factories.make_event(
        tenancy.account_a, rule=rule, group_key="web-01", status=EventStatus.HANDLED
    )
    factories.make_event(tenancy.account_a, rule=rule, group_key="web-01")  # collects new alerts
    already = factories.make_event(tenancy.account_a)
    after = factories.make_event(tenancy.account_a, status=EventStatus.HANDLING)
    job = make_bulk_job(
        tenancy.bob, current_scope(tenancy.bob), [before, stuck, already, after], status="unhandled"
    )

    assert bulk.run_bulk_job(job.id)

    job.refresh_from_db()
    assert job.status == "done"
    assert statuses([before, stuck, already, after]) == [
        "unhandled",
        "handled",
        "unhandled",
        "unhandled",
    ]
    outcomes = items(job)
    assert outcomes[before.pk] == (ItemOutcome.HANDLED, "Handled → Unhandled")
    assert outcomes[stuck.pk][0] == ItemOutcome.FAILED
    assert "Another Unhandled event already collects" in outcomes[stuck.pk][1]
    assert outcomes[already.pk] == (ItemOutcome.SKIPPED, "The event was Unhandled already.")
    assert outcomes[after.pk][0] == ItemOutcome.HANDLED
    assert bulk.tally(job) == bulk.Tally(handled=2, failed=1, skipped=1)

    page = tenancy.client_for(tenancy.bob).get(job_url(job)).content.decode()
    assert reverse("events:detail", args=[stuck.pk]) in page
    assert "Another Unhandled event already collects" in page
    assert 'data-testid="bulk-skipped">1<' in page


def test_it_acts_with_the_owners_rights_as_they_are_when_it_runs(tenancy):
    """Gina started the job as a global administrator over accounts A and B;
    by the time it runs she is an analyst of A and a viewer of B."""
    gina = factories.make_user(tenancy.org, "gina", global_admin=True)
    in_a = [factories.make_event(tenancy.account_a) for _ in range(2)]
    in_b = factories.make_event(tenancy.account_b, region=RegionGroup.CHINA)
    client = global_client(tenancy, gina)
    confirmation = client.post(START, form(ids=[*in_a, in_b]), headers=HTMX)
    assert "Set 3 events to Handled?" in confirmation.content.decode()
    client.post(START, form(ids=[*in_a, in_b], confirmed="yes"), headers=HTMX)
    job = BulkHandlingJob.objects.get()

    OrganisationMembership.objects.filter(user=gina).update(is_global_admin=False)
    AccountMembership.objects.create(user=gina, account=tenancy.account_a, role=Role.ANALYST)
    AccountMembership.objects.create(user=gina, account=tenancy.account_b, role=Role.VIEWER)
    tasks.run_bulk_handling(job.id)

    assert statuses([*in_a, in_b]) == ["handled", "handled", "unhandled"]
    outcome, message = items(job)[in_b.pk]
    assert outcome == ItemOutcome.FAILED
    assert message == (
        "You may not handle events of account Acme Intl: it takes the analyst or "
        "administrator role there."
    )


def test_a_member_removed_from_the_account_handles_nothing_more(tenancy):
    events = [factories.make_event(tenancy.account_a) for _ in range(2)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)
    AccountMembership.objects.filter(user=tenancy.bob).delete()

    bulk.run_bulk_job(job.id)

    assert statuses(events) == ["unhandled", "unhandled"]
    assert {outcome for outcome, _ in items(job).values()} == {ItemOutcome.FAILED}
    assert "no longer in your view" in items(job)[events[0].pk][1]


def test_a_deactivated_owner_handles_nothing(tenancy):
    event = factories.make_event(tenancy.account_a)
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), [event])
    get_user_model().objects.filter(pk=tenancy.bob.pk).update(is_active=False)

    bulk.run_bulk_job(job.id)

    job.refresh_from_db()
    assert job.status == "failed"
    assert "You no longer belong to the organisation" in job.error
    assert statuses([event]) == ["unhandled"]


def test_a_redelivered_message_acts_once(tenancy):
    events = [factories.make_event(tenancy.account_a) for _ in range(3)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)

    first = tasks.run_bulk_handling(job.id)
    second = tasks.run_bulk_handling(job.id)

    assert (first, second) == (True, False)
    assert EventStatusChange.objects.filter(event__in=events).count() == 3
    assert BulkHandlingItem.objects.filter(job=job).count() == 3
    job.refresh_from_db()
    assert job.status == "done"


def test_it_reports_progress_every_chunk(tenancy, monkeypatch):
    events = [factories.make_event(tenancy.account_a) for _ in range(60)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)
    reported = []
    original = jobs.report_progress

    def spy(model, job_id, percent):
        reported.append((percent, BulkHandlingItem.objects.filter(job_id=job_id).count()))
        original(model, job_id, percent)

    monkeypatch.setattr(jobs, "report_progress", spy)

    bulk.run_bulk_job(job.id)

    assert bulk.EVENTS_PER_CHUNK == 25
    assert reported == [(41, 25), (83, 50), (99, 60)]
    job.refresh_from_db()
    assert job.progress == 100


def test_a_job_failed_as_stalled_stops_handling(tenancy, monkeypatch):
    events = [factories.make_event(tenancy.account_a) for _ in range(30)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)
    original = jobs.report_progress

    def stall_after_first_chunk(model, job_id, percent):
        original(model, job_id, percent)
        jobs.finish_failed(model, job_id, bulk.INTERRUPTED)

    monkeypatch.setattr(jobs, "report_progress", stall_after_first_chunk)

    bulk.run_bulk_job(job.id)

    assert statuses(events).count("handled") == bulk.EVENTS_PER_CHUNK
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", bulk.INTERRUPTED)
    page = tenancy.client_for(tenancy.bob).get(job_url(job)).content.decode()
    assert "it was interrupted" in page
    assert 'data-testid="bulk-handled">25<' in page


def test_the_cleanup_fails_stalled_jobs_and_deletes_expired_ones(tenancy):
    scope = current_scope(tenancy.bob)
    event = factories.make_event(tenancy.account_a)
    stalled = make_bulk_job(tenancy.bob, scope, [event])
    expired = make_bulk_job(tenancy.bob, scope, [event])
    fresh = make_bulk_job(tenancy.bob, scope, [event])
    BulkHandlingJob.objects.filter(id=stalled.id).update(
        created_at=timezone.now() - bulk.STALLED_AFTER - timedelta(minutes=1)
    )
    BulkHandlingJob.objects.filter(id=expired.id).update(
        status="done", expires_at=timezone.now() - timedelta(seconds=1)
    )
    BulkHandlingItem.objects.create(job=expired, event_id=event.id, outcome="handled")

    assert tasks.cleanup_bulk_handling() == {"stalled": 1, "deleted": 1}

    assert BulkHandlingJob.objects.get(id=stalled.id).status == "failed"
    assert not BulkHandlingJob.objects.filter(id=expired.id).exists()
    assert not BulkHandlingItem.objects.filter(job_id=expired.id).exists()
    assert BulkHandlingJob.objects.get(id=fresh.id).status == "pending"


# --- the job page -----------------------------------------------------------------


def test_the_job_page_polls_until_the_job_ends(tenancy):
    events = [factories.make_event(tenancy.account_a) for _ in range(2)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)
    client = tenancy.client_for(tenancy.bob)

    pending = client.get(job_url(job), headers=HTMX)
    bulk.run_bulk_job(job.id)
    done = client.get(job_url(job), headers=HTMX)

    assert f'hx-get="{job_url(job)}"' in pending.content.decode()
    assert "Queued: 2 events" in pending.content.decode()
    assert "<html" not in pending.content.decode()
    assert "hx-get" not in done.content.decode()
    assert 'data-testid="bulk-done"' in done.content.decode()
    assert 'value="100"' in done.content.decode()


def test_the_job_page_pages_through_many_failures(tenancy):
    events = [factories.make_event(tenancy.account_a, status="handled") for _ in range(3)]
    job = make_bulk_job(tenancy.bob, current_scope(tenancy.bob), events)
    BulkHandlingItem.objects.bulk_create(
        BulkHandlingItem(
            job=job, event_id=n, event_name=f"Event {n}", outcome="failed", message="No"
        )
        for n in range(1, 61)
    )
    client = tenancy.client_for(tenancy.bob)

    first = client.get(job_url(job)).content.decode()
    second = client.get(job_url(job), {"page": "2"}).content.decode()

    assert first.count('data-testid="bulk-failure-reason"') == 50
    assert second.count('data-testid="bulk-failure-reason"') == 10
    assert 'href="?page=2"' in first


# --- the recommended handling policies -------------------------------------------


def events_with_recommendations(account, count: int, *, asset) -> list[SecurityEvent]:
    """``count`` events of ``account``, each with its own malicious attacker IP,
    a malicious file on ``asset`` and a process nobody calls malicious."""
    now = timezone.now()
    rule = factories.make_rule()
    events = SecurityEvent.objects.bulk_create(
        SecurityEvent(
            account=account,
            rule=rule,
            group_key=uuid4().hex,
            name=f"Brute force {n}",
            risk=RiskLevel.HIGH,
            first_occurred_at=now,
            last_occurred_at=now,
            region=asset.region,
        )
        for n in range(count)
    )
    alerts = [factories.make_alert(account, asset=asset, occurred_at=now) for _ in range(count)]
    EventAlert.objects.bulk_create(
        EventAlert(event=event, alert=alert) for event, alert in zip(events, alerts, strict=True)
    )
    base = account.id * 100_000
    entities, links = [], []
    for n, alert in enumerate(alerts):
        ip = f"10.{(base + n) >> 16 & 255}.{(base + n) >> 8 & 255}.{(base + n) & 255}"
        md5 = f"{base + n:032x}"
        for entity_type, value, role, malicious in (
            (EntityType.IP, ip, EntityRole.ATTACKER, True),
            (EntityType.FILE, md5, EntityRole.RELATED, True),
            (EntityType.PROCESS, f"/tmp/job-{base + n}", EntityRole.RELATED, False),
        ):
            attributes = {"md5": md5, "path": "/tmp/x"} if entity_type == EntityType.FILE else {}
            entities.append(
                Entity(
                    account=account,
                    type=entity_type,
                    value=value,
                    digest=Entity.digest_for(entity_type, value),
                    attributes=attributes,
                    malicious=malicious,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
            links.append((alert, role))
    entities = Entity.objects.bulk_create(entities)
    AlertEntity.objects.bulk_create(
        AlertEntity(alert=alert, entity=entity, role=role, occurred_at=alert.occurred_at)
        for entity, (alert, role) in zip(entities, links, strict=True)
    )
    return events


def test_it_handles_500_events_with_their_recommended_policies(tenancy, record_property):
    """Alice in the Global Account View: 250 events in account A, 250 in B.
    Each gets one policy per recommended entity (its attacker IP blocked, its
    file quarantined; the process is recommended nothing), with its tasks in
    the event's own account."""
    host_a = factories.make_asset(tenancy.account_a, name="web-a")
    # In the China region, where alice's Global Account View looks.
    host_b = factories.make_asset(tenancy.account_b, name="web-b", region=RegionGroup.CHINA)
    events = events_with_recommendations(tenancy.account_a, 250, asset=host_a)
    events += events_with_recommendations(tenancy.account_b, 250, asset=host_b)
    scope = global_scope(tenancy.alice)
    assert scope.account_ids == {tenancy.account_a.id, tenancy.account_b.id}
    job = make_bulk_job(tenancy.alice, scope, events, action=BulkAction.RECOMMENDED)

    began = time.perf_counter()
    assert bulk.run_bulk_job(job.id)
    seconds = time.perf_counter() - began
    record_property("seconds_for_500_events", round(seconds, 1))
    print(f"\nrecommended handling of 500 events: {seconds:.1f} s")

    job.refresh_from_db()
    assert (job.status, job.error) == ("done", "")
    assert bulk.tally(job) == bulk.Tally(handled=500)
    policies = HandlingPolicy.objects.filter(source_event__in=events)
    assert policies.count() == 1000
    assert set(policies.values_list("source", flat=True)) == {PolicySource.EVENT}
    for event in (events[0], events[-1]):
        mine = policies.filter(source_event=event)
        assert sorted(mine.values_list("entity_type", "scenario__key")) == [
            ("file", "quarantine-file"),
            ("ip", "block-ip-cloud-firewall-inbound"),
        ]
        assert set(mine.values_list("account_id", flat=True)) == {event.account_id}
    tasks_by_account = dict(
        HandlingTask.objects.filter(policy__in=policies)
        .order_by()
        .values_list("account_id")
        .annotate(n=Count("id"))
    )
    assert tasks_by_account == {tenancy.account_a.id: 500, tenancy.account_b.id: 500}
    # A task's account is its event's account.
    assert (
        not HandlingTask.objects.filter(policy__in=policies)
        .exclude(account_id=F("policy__source_event__account_id"))
        .exists()
    )
    assert set(statuses(events)) == {EventStatus.HANDLING}
    assert items(job)[events[0].pk] == (ItemOutcome.HANDLED, "2 policies, 2 tasks")


def test_it_skips_an_event_with_nothing_recommended(tenancy):
    asset = factories.make_asset(tenancy.account_a)
    [recommended] = events_with_recommendations(tenancy.account_a, 1, asset=asset)
    bare = factories.make_event(tenancy.account_a)
    job = make_bulk_job(
        tenancy.bob, current_scope(tenancy.bob), [recommended, bare], action=BulkAction.RECOMMENDED
    )

    bulk.run_bulk_job(job.id)

    assert items(job)[bare.pk] == (
        ItemOutcome.SKIPPED,
        "No handling policy is recommended for this event's IPs, files and processes.",
    )
    assert statuses([recommended, bare]) == ["handling", "unhandled"]
    assert HandlingPolicy.objects.filter(source_event=recommended).count() == 2


def test_recommended_policies_fail_for_an_account_the_owner_may_only_view(tenancy):
    """Bob, analyst of A when he started, is a viewer of A when the job runs."""
    asset = factories.make_asset(tenancy.account_a)
    events = events_with_recommendations(tenancy.account_a, 2, asset=asset)
    job = make_bulk_job(
        tenancy.bob,
        current_scope(tenancy.bob),
        events,
        action=BulkAction.RECOMMENDED,
    )
    AccountMembership.objects.filter(user=tenancy.bob).update(role=Role.VIEWER)

    bulk.run_bulk_job(job.id)

    assert {outcome for outcome, _ in items(job).values()} == {ItemOutcome.FAILED}
    assert "You may not handle events of account Acme Prod" in items(job)[events[0].pk][1]
    assert not HandlingPolicy.objects.exists()
    assert statuses(events) == ["unhandled", "unhandled"]


# --- on a real worker -----------------------------------------------------------


@pytest.fixture
def worker(tmp_path):
    """A ``celery worker`` subprocess on a Redis queue of this test's own, where
    every task of this process goes, with eager execution off meanwhile (see
    tests/events/test_worker.py)."""
    from secops.celery import app as celery_app
    from tests.events.test_worker import Worker
    from tests.workers import delete_redis_keys

    queue = f"test-soar-{uuid4().hex[:12]}"
    previous = {
        "task_routes": celery_app.conf.task_routes,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.update(task_routes={"*": {"queue": queue}}, task_always_eager=False)
    started = Worker(queue, tmp_path / "worker.log")
    try:
        yield started
    finally:
        started.stop()
        celery_app.conf.update(previous)
        delete_redis_keys(queue)


@pytest.mark.postgres
@pytest.mark.skipif(
    not settings.REDIS_URL or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs REDIS_URL and PostgreSQL",
)
# The worker is another process: it sees only committed rows.
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_handles_500_events_to_the_end(tenancy, worker, record_property):
    from tests.events.test_worker import wait_for

    now = timezone.now()
    rule = factories.make_rule()
    events = SecurityEvent.objects.bulk_create(
        SecurityEvent(
            account=tenancy.account_a,
            rule=rule,
            group_key=uuid4().hex,
            name=f"Port scan {n}",
            risk=RiskLevel.LOW,
            first_occurred_at=now,
            last_occurred_at=now,
            region=RegionGroup.CHINA,
        )
        for n in range(500)
    )
    scope = current_scope(tenancy.bob)
    plan = bulk.plan_matching(scope, EventFilterForm.default_filters())
    assert len(plan.event_ids) == 500

    job = bulk.start_bulk_handling(
        owner=tenancy.bob,
        scope=scope,
        plan=plan,
        request=bulk.BulkRequest(BulkAction.SET_STATUS, EventStatus.HANDLED, "Scanner"),
    )
    # Committed and queued, not run here: eager execution is off.
    assert BulkHandlingJob.objects.get(id=job.id).status == "pending"

    began = time.perf_counter()
    worker.start()
    wait_for(
        lambda: BulkHandlingJob.objects.get(id=job.id).status not in ("pending", "running"),
        worker=worker,
        what="bulk handling job ended",
        seconds=180,
    )
    seconds = time.perf_counter() - began
    record_property("worker_seconds_for_500_events", round(seconds, 1))
    print(f"\n500 events set to Handled on a real worker: {seconds:.1f} s (with its start)")

    job.refresh_from_db()
    assert (job.status, job.error, job.progress) == ("done", "", 100)
    assert bulk.tally(job) == bulk.Tally(handled=500)
    assert set(statuses(events)) == {EventStatus.HANDLED}
    assert EventStatusChange.objects.filter(cause_ref=f"bulk:{job.id}").count() == 500
    assert "soar.run_bulk_handling" in worker.log()


# --- running a playbook on each event ------------------------------------------------


def raise_risk_playbook(scope, user):
    """A playbook of the scope's organisation with one step: set the risk to High."""
    return save_playbook(
        scope,
        PlaybookSpec("Raise the risk", "", [{"kind": "set_risk", "params": {"risk": 3}}]),
        user=user,
    )


def test_it_runs_a_playbook_on_each_selected_event(tenancy, django_capture_on_commit_callbacks):
    playbook = raise_risk_playbook(global_scope(tenancy.alice), tenancy.alice)
    events = [factories.make_event(tenancy.account_a, risk=RiskLevel.LOW) for _ in range(4)]
    client = tenancy.client_for(tenancy.bob)
    data = form(ids=events[:3], action=BulkAction.RUN_PLAYBOOK, **{"bulk-playbook": playbook.pk})

    bar = client.get(reverse("events:list")).content.decode()
    assert f'<option value="{playbook.pk}">Raise the risk</option>' in bar
    confirmation = client.post(START, data, headers=HTMX).content.decode()
    assert "Run the playbook Raise the risk on 3 events?" in confirmation
    assert f'name="bulk-playbook" value="{playbook.pk}"' in confirmation
    start(client, data, django_capture_on_commit_callbacks)

    job = BulkHandlingJob.objects.get()
    assert (job.status, job.action, job.playbook) == ("done", BulkAction.RUN_PLAYBOOK, playbook)
    runs = PlaybookRun.objects.order_by("id")
    assert [run.event_id for run in runs] == [e.pk for e in events[:3]]
    assert {(run.trigger, run.started_by, run.playbook) for run in runs} == {
        (RunTrigger.BULK, tenancy.bob, playbook)
    }
    assert [SecurityEvent.objects.get(pk=e.pk).risk for e in events] == [3, 3, 3, 1]
    assert items(job) == {
        run.event_id: (ItemOutcome.HANDLED, f"Run #{run.pk} started.") for run in runs
    }
    page = client.get(job_url(job)).content.decode()
    assert 'data-testid="bulk-handled">3<' in page
    for run in runs:
        assert f'href="{reverse("soar:run", args=[run.pk])}"' in page


def test_it_refuses_a_playbook_of_another_organisation(tenancy, django_capture_on_commit_callbacks):
    theirs = raise_risk_playbook(current_scope(tenancy.charlie), tenancy.charlie)
    event = factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)
    data = form(ids=[event], action=BulkAction.RUN_PLAYBOOK, **{"bulk-playbook": theirs.pk})

    response = start(tenancy.client_for(tenancy.bob), data, django_capture_on_commit_callbacks)

    assert 'data-testid="bulk-refusal"' in response.content.decode()
    scope = current_scope(tenancy.bob)
    plan = bulk.plan_selected(scope, [event.pk])
    with pytest.raises(bulk.BulkRefused):
        bulk.start_bulk_handling(
            owner=tenancy.bob,
            scope=scope,
            plan=plan,
            request=bulk.BulkRequest(BulkAction.RUN_PLAYBOOK, playbook=theirs),
        )
    assert not BulkHandlingJob.objects.exists()
    assert not PlaybookRun.objects.exists()
    assert SecurityEvent.objects.get(pk=event.pk).risk == RiskLevel.LOW


def test_a_run_playbook_job_must_name_its_playbook(tenancy):
    event = factories.make_event(tenancy.account_a)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_bulk_job(tenancy.bob, current_scope(tenancy.bob), [event], action="run_playbook")


def test_a_playbook_switched_off_meanwhile_fails_each_event(tenancy):
    playbook = raise_risk_playbook(global_scope(tenancy.alice), tenancy.alice)
    events = [factories.make_event(tenancy.account_a, risk=RiskLevel.LOW) for _ in range(2)]
    job = make_bulk_job(
        tenancy.bob,
        current_scope(tenancy.bob),
        events,
        action=BulkAction.RUN_PLAYBOOK,
        playbook=playbook,
    )
    playbook.enabled = False
    playbook.save()

    bulk.run_bulk_job(job.id)

    assert items(job) == {
        e.pk: (ItemOutcome.FAILED, "The playbook is switched off.") for e in events
    }
    assert not PlaybookRun.objects.exists()


def test_a_viewer_may_not_run_a_playbook_in_bulk(tenancy, django_capture_on_commit_callbacks):
    playbook = raise_risk_playbook(global_scope(tenancy.alice), tenancy.alice)
    viewer = factories.make_user(tenancy.org, "vera", accounts=[tenancy.account_a], role="viewer")
    event = factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)
    data = form(ids=[event], action=BulkAction.RUN_PLAYBOOK, **{"bulk-playbook": playbook.pk})

    response = start(tenancy.client_for(viewer), data, django_capture_on_commit_callbacks)

    assert response.status_code == 403
    assert not BulkHandlingJob.objects.exists()
    assert not PlaybookRun.objects.exists()
