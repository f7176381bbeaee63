"""Excel export of the Security Event Handling list: start, progress, download.

The work is in ``events.export``. Each view answers an htmx request with the
``status`` partial of ``events/_export.html`` and a plain request with the
whole page, so the export also works where the list was posted without htmx.
"""

from django.http import FileResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from events import export
from events.forms import EventFilterForm
from secops.scope import require

TEMPLATE = "events/_export.html"


def _render(request, context: dict, *, status: int = 200):
    template = f"{TEMPLATE}#status" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)


def _job_context(job) -> dict:
    return {"job": job, "expired": export.is_expired(job)}


@require_POST
def export_start(request):
    # Starting an export is part of handling events: analysts and administrators.
    require(request.scope.may_handle(), "Only analysts and administrators can export events.")
    # htmx sends the filter form's current fields (the list updates without a
    # reload, so the page's own query string may be stale); a plain form post
    # sends the query string of the page it was rendered on.
    submitted = QueryDict(request.POST["query"]) if "query" in request.POST else request.POST
    form = EventFilterForm(submitted)
    if not form.is_valid():
        return _render(request, {"refusal": "Correct the filters before exporting."})
    try:
        job = export.start_export(
            owner=request.user, scope=request.scope, filters=form.cleaned_data
        )
    except export.ExportRefused as refusal:
        return _render(request, {"refusal": str(refusal)})
    if not request.htmx:
        return redirect("events:export_status", job_id=job.id)
    job.refresh_from_db()  # without a broker the export ran already
    return _render(request, _job_context(job))


@never_cache
@require_GET
def export_status(request, job_id: int):
    job = export.get_export_job_for_user_or_404(request.scope, request.user, job_id)
    return _render(request, _job_context(job))


@never_cache
@require_GET
def export_download(request, job_id: int):
    job = export.get_export_job_for_user_or_404(request.scope, request.user, job_id)
    try:
        handle = export.open_export_file(job)
    except export.ExportGone as gone:
        return _render(request, {**_job_context(job), "gone": str(gone)}, status=410)
    return FileResponse(
        handle,
        as_attachment=True,
        filename=export.download_name(job),
        content_type=export.XLSX_CONTENT_TYPE,
    )
