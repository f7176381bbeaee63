"""Excel export of the filtered Security Event Handling list.

An export is an ``ExportJob``. ``start_export`` checks what the filters match
and queues the job; a Celery worker runs ``run_export_job``, which writes a
workbook of three sheets:

- Incident: one row per event;
- Asset: one row per affected asset of each event;
- Entity: one row per entity of each event's alerts.

A file holds at most ``MAX_EVENTS_PER_FILE`` events. When more match, the
export is refused with the count and a request to narrow the filters: a file
never leaves events out without saying so. Files are served to their owner
for ``EXPORT_LIFETIME``; ``cleanup_exports`` removes them afterwards.

The job's life (claim, progress, failure, stall, expiry, scope snapshot) is
that of every background job, in ``secops.jobs``; this module adds the
filters, the file and the workbook.

Every text cell may carry attacker-controlled text (alert payloads, entity
values, names built from them): ``excel_text`` makes it inert.
"""

import json
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from alerts.models import AlertEntity, alert_type_label, source_label
from events.entities import entities_of_events
from events.models import EventAlert, ExportJob, ExportStatus, SecurityEvent
from events.queries import SORTS, filtered_events, grouping_explanation
from secops import jobs
from secops.enums import RegionGroup
from secops.scope import Scope
from secops.spreadsheets import excel_text

MAX_EVENTS_PER_FILE = 1_000
EXPORT_LIFETIME = timedelta(days=1)
# An expired job stays this long, so that its download link answers 410 Gone
# with an explanation rather than 404, before the row is deleted.
EXPIRED_JOB_RETENTION = timedelta(days=7)
# A job still pending or running after this long has lost its worker (or the
# broker lost its message): it is failed so that the user is told. Longer than
# the export task's time limit.
STALLED_AFTER = timedelta(minutes=30)
EXPORT_DIRECTORY = "exports"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The registered name of the Celery task that runs an export (events.tasks).
EXPORT_TASK = "events.export_events"

UNEXPECTED_FAILURE = "The export failed unexpectedly. Start it again."
NOT_QUEUED = "The export could not be queued: the task queue is unavailable."
INTERRUPTED = "The export did not finish: it was interrupted. Start it again."

# Events are read, and progress reported, this many at a time.
EVENTS_PER_CHUNK = 100

# Excel's own limit of rows per sheet.
EXCEL_MAX_ROWS = 1_048_576

INCIDENT_SHEET, ASSET_SHEET, ENTITY_SHEET = "Incident", "Asset", "Entity"


class ExportRefused(jobs.JobRefused):
    """The export cannot be made; the message tells the user why and what to do."""


class ExportGone(Exception):
    """The export's file is no longer available (410 Gone); the message says why."""


# --- starting an export -------------------------------------------------------


def filters_to_json(filters: dict) -> dict:
    """The cleaned ``EventFilterForm`` data as JSON, with the date range resolved:
    the worker exports the range the user saw, even when it runs after midnight."""
    return {
        "start": filters["start"].isoformat(),
        "end": filters["end"].isoformat(),
        "risk": [int(level) for level in filters.get("risk") or []],
        "status": list(filters.get("status") or []),
        "name": filters.get("name") or "",
        "event_id": filters.get("event_id"),
        "asset": filters.get("asset") or "",
        "sort": filters.get("sort") or "-last",
    }


def filters_from_json(data: dict) -> dict:
    return {
        **data,
        "start": date.fromisoformat(data["start"]),
        "end": date.fromisoformat(data["end"]),
    }


def too_many_events_message(count: int) -> str:
    return (
        f"{count:,} events match these filters, and an export holds at most "
        f"{MAX_EVENTS_PER_FILE:,}. Narrow the filters (a shorter Occurred Within range, "
        "a risk level, a status or a name) and export again."
    )


def _matching_count(events) -> int:
    """How many events match, counting no further than one past the cap."""
    capped = events[: MAX_EVENTS_PER_FILE + 1].count()
    return events.count() if capped > MAX_EVENTS_PER_FILE else capped


def start_export(*, owner=None, api_key=None, scope: Scope, filters: dict) -> ExportJob:
    """Queue an export of the events ``filters`` match in ``scope``, for its
    ``owner`` (a user) or the ``api_key`` that asked.

    Raises ``ExportRefused`` when nothing matches or more than
    ``MAX_EVENTS_PER_FILE`` events do.
    """
    matching = _matching_count(filtered_events(scope, filters))
    if matching == 0:
        raise ExportRefused("No security events match these filters: there is nothing to export.")
    if matching > MAX_EVENTS_PER_FILE:
        raise ExportRefused(too_many_events_message(matching))
    with transaction.atomic():
        job = ExportJob.objects.create(
            owner=owner,
            api_key=api_key,
            **jobs.scope_fields(scope),
            filters=filters_to_json(filters),
            row_count=matching,
            expires_at=timezone.now() + EXPORT_LIFETIME,
        )
        jobs.queue_on_commit(ExportJob, job.id, EXPORT_TASK, not_queued=NOT_QUEUED)
    return job


# --- reading a job ------------------------------------------------------------


def get_export_job_for_user_or_404(scope: Scope, user, job_id: int) -> ExportJob:
    """The user's own export job, while their scope covers its accounts and region.

    Anyone else's job, or one made in a view the user has since left, does not
    exist for them (404).
    """
    return jobs.get_owned_job_or_404(ExportJob, scope, user, job_id)


def get_export_job_for_api_key_or_404(scope: Scope, api_key, job_id: int) -> ExportJob:
    """An export started with this API key, while the key's scope covers it;
    a job of a user or of another key does not exist for it (404)."""
    return jobs.get_job_of_or_404(ExportJob, scope, job_id, api_key_id=api_key.pk)


def is_expired(job: ExportJob, now: datetime | None = None) -> bool:
    return job.is_expired(now)


def open_export_file(job: ExportJob):
    """The finished file, opened for reading; ``ExportGone`` once it expired.

    Raises ``Http404`` for a job that has no file (not finished, or failed).
    """
    if is_expired(job):
        local = timezone.localtime(job.expires_at)
        raise ExportGone(
            f"This export expired on {local:%Y-%m-%d %H:%M} ({local.tzname()}): files are kept "
            "for one day. Export the events again from Security Event Handling."
        )
    if job.status != ExportStatus.DONE or not job.file_path:
        raise Http404("This export has no file.")
    try:
        return default_storage.open(job.file_path, "rb")
    except FileNotFoundError:
        raise ExportGone(
            "The file of this export is no longer available. Export the events again."
        ) from None


def download_name(job: ExportJob) -> str:
    return f"security-events-{timezone.localtime(job.created_at):%Y%m%d-%H%M%S}.xlsx"


# --- running a job ------------------------------------------------------------


def claim_export_job(job_id: int) -> bool:
    """Take a pending export for this worker (see ``secops.jobs.claim``)."""
    return jobs.claim(ExportJob, job_id)


def _report_progress(job_id: int, percent: int) -> None:
    jobs.report_progress(ExportJob, job_id, percent)


def run_export_job(job_id: int) -> bool:
    """Build the file of a pending job. Returns whether this call did the work."""
    return jobs.run_job(
        ExportJob,
        job_id,
        _write_export,
        unexpected_failure=UNEXPECTED_FAILURE,
        # The clean-up declared the job stalled while it ran: nobody will
        # download this file.
        discard=lambda produced: default_storage.delete(produced["file_path"]),
    )


def _write_export(job: ExportJob) -> dict:
    """Write the job's file; the fields that record it on the job."""
    scope = jobs.scope_of(job)
    filters = filters_from_json(job.filters)
    events = list(
        filtered_events(scope, filters)
        .select_related("account", "rule")
        .annotate(affected_asset_count=Count("affected_assets", distinct=True))
        .order_by(SORTS[filters["sort"]][0], "-id")[: MAX_EVENTS_PER_FILE + 1]
    )
    # New events may have arrived since the job was started.
    if len(events) > MAX_EVENTS_PER_FILE:
        raise ExportRefused(
            too_many_events_message(_matching_count(filtered_events(scope, filters)))
        )
    workbook = build_workbook(
        scope, events, on_progress=lambda percent: _report_progress(job.id, percent)
    )
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        name = f"{EXPORT_DIRECTORY}/{uuid.uuid4().hex}.xlsx"
        file_path = default_storage.save(name, File(handle, name=name))
    return {"file_path": file_path, "row_count": len(events)}


# --- the workbook -------------------------------------------------------------

INCIDENT_HEADERS = [
    "Event ID",
    "Event Name",
    "Risk Level",
    "Status",
    "Account",
    "Account ID",
    "Region",
    "First Occurred",
    "Last Occurred",
    "Alerts",
    "Affected Assets",
    "Alert Types",
    "Data Sources",
    "Aggregation Rule",
    "Grouped By",
    "Continues Event",
    "Description",
]
ASSET_HEADERS = [
    "Event ID",
    "Event Name",
    "Asset Name",
    "Instance ID",
    "Asset UUID",
    "Public IP",
    "Private IP",
    "Operating System",
    "Cloud Region",
    "Account ID",
]
ENTITY_HEADERS = [
    "Event ID",
    "Event Name",
    "Entity Type",
    "Entity",
    "Role",
    "Malicious",
    "Alerts",
    "First Seen",
    "Last Seen",
    "Attributes",
]
COLUMN_WIDTHS = {"Event Name": 40, "Description": 60, "Entity": 50, "Attributes": 50}
# Times are written in the console's time zone, named in the header.
TIME_COLUMNS = frozenset({"First Occurred", "Last Occurred", "First Seen", "Last Seen"})


class _Sheet:
    """A write-only sheet that types every cell itself and keeps to Excel's row limit."""

    def __init__(self, workbook: Workbook, title: str, headers: list[str]):
        self.title = title
        self.sheet = workbook.create_sheet(title)
        self.sheet.freeze_panes = "A2"
        zone = timezone.get_current_timezone_name()
        for index, header in enumerate(headers):
            self.sheet.column_dimensions[get_column_letter(index + 1)].width = COLUMN_WIDTHS.get(
                header, 18
            )
        bold = Font(bold=True)
        self.rows = 0
        self.append(
            [f"{header} ({zone})" if header in TIME_COLUMNS else header for header in headers],
            font=bold,
        )

    def append(self, values, *, font=None) -> None:
        if self.rows == EXCEL_MAX_ROWS:
            raise ExportRefused(
                f"The {self.title} sheet would pass Excel's limit of {EXCEL_MAX_ROWS:,} rows. "
                "Narrow the filters and export again."
            )
        cells = [self._cell(value) for value in values]
        if font is not None:
            for cell in cells:
                cell.font = font
        self.sheet.append(cells)
        self.rows += 1

    def _cell(self, value) -> WriteOnlyCell:
        if isinstance(value, str):
            cell = WriteOnlyCell(self.sheet, value=excel_text(value))
            # openpyxl types text starting with "=" as a formula; excel_text
            # has prefixed it already, and the explicit type keeps any text a
            # plain string whatever it starts with.
            cell.data_type = "s"
            return cell
        if isinstance(value, datetime):
            # Excel has no time zones: the local wall-clock time, as the header says.
            cell = WriteOnlyCell(self.sheet, value=timezone.localtime(value).replace(tzinfo=None))
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
        return WriteOnlyCell(self.sheet, value=value)


def build_workbook(scope: Scope, events: list[SecurityEvent], *, on_progress=None) -> Workbook:
    """The three sheets for ``events`` (in their order), read through ``scope``.

    ``on_progress`` is called with a percentage (below 100) after each chunk.
    """
    workbook = Workbook(write_only=True)
    incidents = _Sheet(workbook, INCIDENT_SHEET, INCIDENT_HEADERS)
    assets = _Sheet(workbook, ASSET_SHEET, ASSET_HEADERS)
    entities = _Sheet(workbook, ENTITY_SHEET, ENTITY_HEADERS)
    regions = dict(RegionGroup.choices)
    for start in range(0, len(events), EVENTS_PER_CHUNK):
        chunk = events[start : start + EVENTS_PER_CHUNK]
        kinds = _alert_kinds(chunk)
        for event in chunk:
            types, sources = kinds.get(event.pk, ((), ()))
            incidents.append(
                [
                    event.pk,
                    event.name,
                    event.get_risk_display(),
                    event.get_status_display(),
                    event.account.name,
                    event.account.uid,
                    regions.get(event.region, event.region),
                    event.first_occurred_at,
                    event.last_occurred_at,
                    event.alert_count,
                    event.affected_asset_count,
                    ", ".join(types),
                    ", ".join(sources),
                    event.rule.name,
                    grouping_explanation(event),
                    event.continues_id,
                    event.description,
                ]
            )
        for row in _asset_rows(chunk):
            assets.append(row)
        for row in _entity_rows(scope, chunk):
            entities.append(row)
        if on_progress is not None:
            on_progress(min(99, 5 + 90 * (start + len(chunk)) // max(len(events), 1)))
    return workbook


def _alert_kinds(events: list[SecurityEvent]) -> dict[int, tuple[list[str], list[str]]]:
    """Per event, the names of its alerts' types and data sources, sorted."""
    types, sources = defaultdict(set), defaultdict(set)
    for event_id, alert_type, source in (
        EventAlert.objects.filter(event_id__in=[event.pk for event in events])
        .values_list("event_id", "alert__type", "alert__source")
        .distinct()
    ):
        types[event_id].add(alert_type_label(alert_type))
        sources[event_id].add(source_label(source))
    return {event_id: (sorted(types[event_id]), sorted(sources[event_id])) for event_id in types}


def _asset_rows(events: list[SecurityEvent]):
    """One row per affected asset of each event, events in the given order."""
    names = {event.pk: event.name for event in events}
    links = (
        SecurityEvent.affected_assets.through.objects.filter(event_id__in=names)
        .select_related("asset", "asset__account")
        .order_by("asset__name", "asset_id")
    )
    by_event = defaultdict(list)
    for link in links:
        by_event[link.event_id].append(link.asset)
    for event_id, name in names.items():
        for asset in by_event[event_id]:
            yield [
                event_id,
                name,
                asset.name,
                asset.instance_id,
                asset.uuid,
                asset.public_ip or "",
                asset.private_ip or "",
                asset.os,
                asset.cloud_region,
                asset.account.uid,
            ]


def _entity_rows(scope: Scope, events: list[SecurityEvent]):
    """One row per entity of each event's alerts, with its roles and alert count."""
    role_labels = dict(AlertEntity._meta.get_field("role").choices)
    by_event = entities_of_events(scope, [event.pk for event in events])
    for event in events:
        for item in by_event[event.pk]:
            entity = item.entity
            yield [
                event.pk,
                event.name,
                entity.get_type_display(),
                entity.value,
                ", ".join(role_labels[role] for role in item.roles),
                "Yes" if entity.malicious else "No",
                item.alert_count,
                entity.first_seen_at,
                entity.last_seen_at,
                _json_text(entity.attributes),
            ]


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


# --- cleanup ------------------------------------------------------------------


@dataclass
class ExportCleanup:
    stalled: int = 0
    files: int = 0
    jobs: int = 0


def cleanup_exports(*, now: datetime | None = None) -> ExportCleanup:
    """Fail stalled jobs, remove expired files, and delete long-expired jobs."""
    now = now or timezone.now()
    result = ExportCleanup()
    result.stalled = jobs.fail_stalled(ExportJob, STALLED_AFTER, error=INTERRUPTED, now=now)
    expired_with_file = ExportJob.objects.expired(now).exclude(file_path="")
    for job in expired_with_file.only("id", "file_path").iterator():
        default_storage.delete(job.file_path)
        ExportJob.objects.filter(id=job.id).update(file_path="")
        result.files += 1
    result.files += _delete_orphan_files(now)
    result.jobs = jobs.delete_expired(ExportJob, kept_for=EXPIRED_JOB_RETENTION, now=now)
    return result


def _delete_orphan_files(now: datetime) -> int:
    """Files no job names (a worker killed between saving and recording the
    file, a job deleted with its owner), once they are older than any file
    a live job could still be writing."""
    try:
        _, names = default_storage.listdir(EXPORT_DIRECTORY)
    except FileNotFoundError:
        return 0
    known = set(ExportJob.objects.exclude(file_path="").values_list("file_path", flat=True))
    deleted = 0
    for name in names:
        path = f"{EXPORT_DIRECTORY}/{name}"
        if path in known or default_storage.get_modified_time(path) > now - EXPORT_LIFETIME:
            continue
        default_storage.delete(path)
        deleted += 1
    return deleted
