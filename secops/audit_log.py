"""Reading the audit log: who may, its filters, and its CSV and XLSX exports.

Administrators read it: a global administrator every entry of the
organisation, an account administrator the entries of the accounts they
administer (``AuditEntry.objects.in_scope``). The console offers no way to
change or delete an entry.
"""

import csv
import io
import json
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.db.models import Q
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from secops.enums import Role
from secops.filters import ListFilterForm
from secops.models import Account, AuditAction, AuditEntry
from secops.params import page_wanted
from secops.scope import Scope, get_in_scope_or_404, require
from secops.spreadsheets import excel_text

ENTRIES_PER_PAGE = 50
# An export holds at most this many entries; more is refused with the count,
# so that a file never leaves entries out without saying so.
MAX_EXPORT_ROWS = 50_000
MAX_ACTOR_LENGTH = 150
MAX_SEARCH_LENGTH = 200
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_FORMATS = ("csv", "xlsx")
NOT_PERMITTED = "Only administrators can read the audit log."
# Dates of the time range: outside these a day's bounds cannot be computed in
# every time zone.
FIRST_YEAR, LAST_YEAR = 1970, 9998


class ExportRefused(Exception):
    """Too many entries for one file; the message says how many and what to do."""


def may_read(scope: Scope) -> bool:
    """A global administrator, or an administrator of an account in the view."""
    if scope.organisation_id is None:
        return False
    return scope.organisation_admin or any(
        scope.role_in(account_id) == Role.ADMIN for account_id in scope.account_ids
    )


def require_reader(scope: Scope) -> None:
    require(may_read(scope), NOT_PERMITTED)


def get_entry_or_404(scope: Scope, entry_id) -> AuditEntry:
    require_reader(scope)
    return get_in_scope_or_404(AuditEntry.objects.select_related("account"), scope, id=entry_id)


# --- filters ---------------------------------------------------------------------


def _groups() -> list[str]:
    prefixes = dict.fromkeys(value.partition(".")[0] for value in AuditAction.values)
    return [p for p in prefixes if sum(v.startswith(p + ".") for v in AuditAction.values) > 1]


GROUP_SUFFIX = ".*"


def action_choices() -> list[tuple[str, str]]:
    """Every action, and ``group.*`` for each group of several (``handling.*``)."""
    groups = [(g + GROUP_SUFFIX, f"Every {g.replace('_', ' ')} action") for g in _groups()]
    return [("", "Any"), *groups, *AuditAction.choices]


class AuditFilterForm(ListFilterForm):
    """The audit log's filters, read from the query string (the page and the API)."""

    start = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date", "aria-describedby": "error-start"}),
        error_messages={"invalid": "A date such as 2026-11-01: no start applied."},
    )
    end = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date", "aria-describedby": "error-end"}),
        error_messages={"invalid": "A date such as 2026-11-30: no end applied."},
    )
    actor = forms.CharField(
        required=False,
        max_length=MAX_ACTOR_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Username or key"}),
    )
    action = forms.ChoiceField(
        required=False,
        choices=action_choices,
        error_messages={"invalid_choice": "There is no such action: every action is shown."},
    )
    account = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "No such account in your view: every account is shown."},
    )
    q = forms.CharField(
        required=False,
        label="Target",
        max_length=MAX_SEARCH_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Name, ID or type"}),
    )
    page = forms.CharField(required=False)

    def __init__(self, data=None, *, scope: Scope, **kwargs):
        super().__init__(data, **kwargs)
        accounts = Account.objects.in_scope(scope).order_by("name")
        self.fields["account"].choices = [("", "Any")] + [
            (a.id, f"{a.name} ({a.uid})") for a in accounts
        ]

    def clean(self):
        data = super().clean()
        data["page"] = page_wanted(data["page"])
        for name in ("start", "end"):
            day = data[name]
            if day and not FIRST_YEAR <= day.year <= LAST_YEAR:
                self.drop(name, f"A date from {FIRST_YEAR} to {LAST_YEAR}: none applied.")
        if data["start"] and data["end"] and data["end"] < data["start"]:
            self.drop("end", "The end date is before the start date: no end applied.")
        return data


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered_entries(scope: Scope, filters: dict):
    """The entries of the scope that the (cleaned) filters match, newest first."""
    require_reader(scope)
    entries = AuditEntry.objects.in_scope(scope).select_related("account")
    if filters.get("start"):
        entries = entries.filter(when__gte=_day_start(filters["start"]))
    if filters.get("end"):
        entries = entries.filter(when__lt=_day_start(filters["end"] + timedelta(days=1)))
    if filters.get("actor"):
        entries = entries.filter(actor_name__icontains=filters["actor"].strip())
    action = filters.get("action")
    if action and action.endswith(GROUP_SUFFIX):
        entries = entries.filter(action__startswith=action.removesuffix("*"))
    elif action:
        entries = entries.filter(action=action)
    if filters.get("account"):
        entries = entries.filter(account_id=filters["account"])
    text = (filters.get("q") or "").strip()
    if text:
        entries = entries.filter(
            Q(target_label__icontains=text) | Q(target_id=text) | Q(target_type__icontains=text)
        )
    return entries.order_by("-when", "-id")


# --- export ------------------------------------------------------------------------

HEADERS = [
    "Time (UTC)",
    "Actor",
    "Actor kind",
    "Action",
    "Account",
    "Target type",
    "Target ID",
    "Target",
    "Changes",
    "Details",
    "Source address",
    "User agent",
    "Request ID",
]


def _row(entry: AuditEntry) -> list[str]:
    """Every column as text, made inert for spreadsheets (``excel_text``): the
    labels, user agents and changes carry attacker-controlled text."""
    values = [
        entry.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        entry.actor_name,
        entry.get_actor_kind_display(),
        entry.action,
        entry.account.uid if entry.account else "",
        entry.target_type,
        entry.target_id,
        entry.target_label,
        json.dumps(entry.changes, ensure_ascii=False, sort_keys=True) if entry.changes else "",
        json.dumps(entry.details, ensure_ascii=False, sort_keys=True) if entry.details else "",
        entry.source_address or "",
        entry.user_agent,
        entry.request_id,
    ]
    return [excel_text(value) for value in values]


def _export_rows(entries):
    count = entries.count()
    if count > MAX_EXPORT_ROWS:
        raise ExportRefused(
            f"{count:,} entries match; an export holds at most {MAX_EXPORT_ROWS:,}. "
            "Narrow the time range or the other filters and export again."
        )
    return entries.iterator(chunk_size=1000)


def export_csv(entries) -> bytes:
    """The entries as CSV (UTF-8 with a byte order mark, which Excel needs)."""
    rows = _export_rows(entries)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for entry in rows:
        writer.writerow(_row(entry))
    return ("\ufeff" + out.getvalue()).encode()


def export_xlsx(entries) -> bytes:
    rows = _export_rows(entries)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Audit log")
    bold = Font(bold=True)
    header = []
    for title in HEADERS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for entry in rows:
        cells = []
        for value in _row(entry):
            cell = WriteOnlyCell(sheet, value=value)
            # A string whatever it starts with (openpyxl types "=..." as a formula).
            cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def export(entries, file_format: str) -> tuple[bytes, str, str]:
    """(content, content type, file name) of an export in ``file_format``."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if file_format == "xlsx":
        return export_xlsx(entries), XLSX_CONTENT_TYPE, f"audit-log-{stamp}.xlsx"
    return export_csv(entries), "text/csv; charset=utf-8", f"audit-log-{stamp}.csv"


def _shown(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)


def changes_rows(entry: AuditEntry) -> list[tuple[str, str | None, str | None]]:
    """(field, before, after) of an entry's changes as text, for its detail page."""
    rows = []
    for name, values in sorted(entry.changes.items()):
        before, after = [*values, None, None][:2] if isinstance(values, list) else (None, values)
        rows.append((name, _shown(before), _shown(after)))
    return rows


def details_text(entry: AuditEntry) -> str:
    return json.dumps(entry.details, ensure_ascii=False, indent=2) if entry.details else ""
