"""Background jobs (secops.jobs), through the Excel export's model: the claim,
progress, the ways a job ends, the stall clean-up, expiry, the scope snapshot
and the queueing of a job's task by its registered name."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from events.models import ExportJob
from secops import jobs
from secops.enums import RegionGroup, View
from secops.jobs import JobStatus
from secops.scope import Scope

EXPORT_TASK = "events.export_events"


def global_view(tenancy, region=RegionGroup.CHINA) -> Scope:
    return Scope(
        organisation_id=tenancy.org.id,
        view=View.GLOBAL,
        account_ids=frozenset({tenancy.account_b.id, tenancy.account_a.id}),
        region=region,
    )


def make_job(tenancy, scope=None, **fields) -> ExportJob:
    return ExportJob.objects.create(
        owner=tenancy.alice,
        **jobs.scope_fields(scope or global_view(tenancy)),
        expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=1)),
        **fields,
    )


def state(job) -> tuple:
    job.refresh_from_db()
    return job.status, job.progress, job.error


# --- claim and progress -----------------------------------------------------------


def test_it_lets_only_the_first_claim_of_a_pending_job_win(tenancy):
    job = make_job(tenancy)

    first, second = jobs.claim(ExportJob, job.id), jobs.claim(ExportJob, job.id)

    job.refresh_from_db()
    assert (first, second) == (True, False)
    assert job.status == JobStatus.RUNNING
    assert job.started_at is not None


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED])
def test_it_does_not_claim_a_job_that_has_ended(tenancy, status):
    job = make_job(tenancy, status=status)

    assert jobs.claim(ExportJob, job.id) is False
    assert state(job)[0] == status


def test_it_records_progress_only_while_the_job_runs(tenancy):
    job = make_job(tenancy)
    jobs.report_progress(ExportJob, job.id, 10)
    pending = state(job)

    jobs.claim(ExportJob, job.id)
    jobs.report_progress(ExportJob, job.id, 40)
    running = state(job)
    jobs.finish_failed(ExportJob, job.id, "Stopped.")
    jobs.report_progress(ExportJob, job.id, 60)

    assert pending[1] == 0
    assert running[1] == 40
    assert state(job)[1] == 40


# --- how a job ends ---------------------------------------------------------------


def test_it_finishes_a_running_job_with_what_it_produced(tenancy):
    job = make_job(tenancy)
    jobs.claim(ExportJob, job.id)

    finished = jobs.finish_succeeded(ExportJob, job.id, file_path="exports/a.xlsx", row_count=7)

    job.refresh_from_db()
    assert finished is True
    assert (job.status, job.progress, job.file_path, job.row_count) == (
        JobStatus.DONE,
        100,
        "exports/a.xlsx",
        7,
    )
    assert job.finished_at >= job.started_at


def test_it_does_not_finish_a_job_that_is_not_running(tenancy):
    job = make_job(tenancy)

    assert jobs.finish_succeeded(ExportJob, job.id, file_path="exports/a.xlsx") is False
    job.refresh_from_db()
    assert (job.status, job.file_path) == (JobStatus.PENDING, "")


@pytest.mark.parametrize("claimed", [False, True], ids=["pending", "running"])
def test_it_fails_a_job_that_has_not_ended_with_the_error_for_the_user(tenancy, claimed):
    job = make_job(tenancy)
    if claimed:
        jobs.claim(ExportJob, job.id)

    failed = jobs.finish_failed(ExportJob, job.id, "The queue is down. Start it again.")

    job.refresh_from_db()
    assert failed is True
    assert (job.status, job.error) == (JobStatus.FAILED, "The queue is down. Start it again.")
    assert job.finished_at is not None
    assert not job.is_active


def test_it_does_not_fail_a_job_that_is_done(tenancy):
    job = make_job(tenancy)
    jobs.claim(ExportJob, job.id)
    jobs.finish_succeeded(ExportJob, job.id)

    assert jobs.finish_failed(ExportJob, job.id, "Too late.") is False
    assert state(job) == (JobStatus.DONE, 100, "")


# --- the runner -------------------------------------------------------------------


def test_it_runs_the_work_of_a_job_once_and_stores_what_it_produced(tenancy):
    job = make_job(tenancy)
    seen = []

    def work(claimed):
        seen.append((claimed.id, claimed.status))
        jobs.report_progress(ExportJob, claimed.id, 50)
        return {"row_count": 3}

    runs = [jobs.run_job(ExportJob, job.id, work) for _ in range(2)]

    job.refresh_from_db()
    assert runs == [True, False]
    assert seen == [(job.id, JobStatus.RUNNING)]
    assert (job.status, job.progress, job.row_count) == (JobStatus.DONE, 100, 3)


def test_it_fails_a_refused_job_with_the_refusal_s_message(tenancy):
    job = make_job(tenancy)

    def work(claimed):
        raise jobs.JobRefused("Too many events. Narrow the filters.")

    assert jobs.run_job(ExportJob, job.id, work) is True
    assert state(job) == (JobStatus.FAILED, 0, "Too many events. Narrow the filters.")


def test_it_fails_a_job_whose_work_broke_with_a_message_for_the_user_and_logs_why(tenancy, caplog):
    job = make_job(tenancy)

    def work(claimed):
        raise OSError("No space left on device")

    assert jobs.run_job(ExportJob, job.id, work, unexpected_failure="Start it again.") is True
    assert state(job) == (JobStatus.FAILED, 0, "Start it again.")
    assert "No space left on device" in caplog.text
    assert f"Export job {job.id} failed" in caplog.text


def test_it_discards_what_a_job_produced_once_it_was_failed_as_stalled(tenancy):
    job = make_job(tenancy)
    discarded = []

    def work(claimed):
        jobs.fail_stalled(ExportJob, timedelta(0), now=timezone.now() + timedelta(seconds=1))
        return {"file_path": "exports/late.xlsx"}

    jobs.run_job(ExportJob, job.id, work, discard=discarded.append)

    job.refresh_from_db()
    assert discarded == [{"file_path": "exports/late.xlsx"}]
    assert (job.status, job.file_path) == (JobStatus.FAILED, "")


# --- stall clean-up and expiry ----------------------------------------------------


def test_it_fails_jobs_pending_or_running_longer_than_the_stall_timeout(tenancy):
    now = timezone.now()
    timeout = timedelta(minutes=30)
    late, recent = now - timeout - timedelta(seconds=1), now - timedelta(minutes=1)
    never_picked_up = make_job(tenancy)
    worker_lost = make_job(tenancy, status=JobStatus.RUNNING, started_at=late)
    still_running = make_job(tenancy, status=JobStatus.RUNNING, started_at=recent)
    just_queued = make_job(tenancy)
    done = make_job(tenancy, status=JobStatus.DONE, started_at=late)
    ExportJob.objects.filter(id__in=[never_picked_up.id, done.id]).update(created_at=late)

    stalled = jobs.fail_stalled(ExportJob, timeout, error="It was interrupted.", now=now)

    assert stalled == 2
    assert [state(job)[0] for job in (never_picked_up, worker_lost)] == ["failed", "failed"]
    assert state(worker_lost)[2] == "It was interrupted."
    assert [state(job)[0] for job in (still_running, just_queued, done)] == [
        "running",
        "pending",
        "done",
    ]


def test_it_tells_the_user_a_stalled_job_was_interrupted_by_default(tenancy):
    job = make_job(tenancy)

    jobs.fail_stalled(ExportJob, timedelta(minutes=30), now=timezone.now() + timedelta(hours=1))

    assert state(job)[2] == jobs.INTERRUPTED


def test_it_deletes_jobs_only_once_they_expired_longer_ago_than_they_are_kept(tenancy):
    now = timezone.now()
    week = timedelta(days=7)
    long_expired = make_job(tenancy, expires_at=now - week)
    just_expired = make_job(tenancy, expires_at=now - timedelta(minutes=1))
    live = make_job(tenancy, expires_at=now + timedelta(hours=1))

    deleted = jobs.delete_expired(ExportJob, kept_for=week, now=now)

    assert deleted == 1
    remaining = set(ExportJob.objects.values_list("id", flat=True))
    assert remaining == {just_expired.id, live.id}
    assert long_expired.id not in remaining
    assert just_expired.is_expired(now) and not live.is_expired(now)
    assert jobs.delete_expired(ExportJob, now=now) == 1


# --- the scope snapshot -----------------------------------------------------------


@pytest.mark.parametrize("region", [RegionGroup.CHINA, None], ids=["one-region", "every-region"])
def test_it_rebuilds_the_scope_the_job_was_started_in(tenancy, region):
    asked_in = global_view(tenancy, region=region)

    job = ExportJob.objects.get(id=make_job(tenancy, asked_in).id)
    rebuilt = jobs.scope_of(job)

    assert job.account_ids == sorted(asked_in.account_ids)
    assert job.region == (region or "")
    assert rebuilt.organisation_id == asked_in.organisation_id
    assert rebuilt.account_ids == asked_in.account_ids
    assert rebuilt.region == region


def test_it_shows_a_job_to_its_owner_only_while_their_scope_covers_it(tenancy):
    scope = global_view(tenancy)
    job = make_job(tenancy, scope)
    narrower = Scope(
        organisation_id=tenancy.org.id,
        view=View.CURRENT,
        account_id=tenancy.account_a.id,
        account_ids=frozenset({tenancy.account_a.id}),
        region=RegionGroup.CHINA,
    )

    assert jobs.get_owned_job_or_404(ExportJob, scope, tenancy.alice, job.id) == job
    for user, seen_through in [
        (tenancy.bob, scope),
        (tenancy.alice, narrower),
        (tenancy.alice, global_view(tenancy, region=RegionGroup.OUTSIDE_CHINA)),
    ]:
        with pytest.raises(Http404):
            jobs.get_owned_job_or_404(ExportJob, seen_through, user, job.id)


# --- queueing ---------------------------------------------------------------------


def test_it_queues_the_task_by_its_name_once_the_job_is_committed(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(jobs.registered_task(EXPORT_TASK), "delay", queued.append)
    job = make_job(tenancy)

    with django_capture_on_commit_callbacks() as callbacks:
        jobs.queue_on_commit(ExportJob, job.id, EXPORT_TASK)
    assert queued == []
    for callback in callbacks:
        callback()

    assert queued == [job.id]


def test_it_fails_the_job_when_its_task_cannot_be_queued(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(job_id):
        raise BrokerError("Connection refused.")

    monkeypatch.setattr(jobs.registered_task(EXPORT_TASK), "delay", broker_down)
    job = make_job(tenancy)

    with django_capture_on_commit_callbacks(execute=True):
        jobs.queue_on_commit(ExportJob, job.id, EXPORT_TASK, not_queued="Queue is down.")

    assert state(job) == (JobStatus.FAILED, 0, "Queue is down.")


def test_a_service_queues_its_task_by_name():
    """The export service names its task (tests/architecture checks that it never
    imports its task module); a fresh process finds the task by that name,
    registered and routed to its queue."""
    probe = (
        "import django; django.setup()\n"
        "from events import export\n"
        "from secops.jobs import registered_task\n"
        "from secops.celery import app\n"
        "task = registered_task(export.EXPORT_TASK)\n"
        "print(task.name, app.amqp.router.route({}, task.name)['queue'].name)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "secops.settings"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == [EXPORT_TASK, "export"]
