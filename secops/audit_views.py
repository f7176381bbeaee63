"""The audit log's pages: the filtered list, one entry, and its exports.
Read only: there is no page that changes or deletes an entry."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from secops import audit_log
from secops.models import AuditAction
from secops.pagination import page_of


def _filters(request):
    audit_log.require_reader(request.scope)
    form = audit_log.AuditFilterForm(request.GET, scope=request.scope)
    return form, form.filters()


@require_GET
def audit_list(request):
    form, filters = _filters(request)
    entries = audit_log.filtered_entries(request.scope, filters)
    page = page_of(entries, filters["page"], audit_log.ENTRIES_PER_PAGE)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "secops/audit_list.html",
        {
            "form": form,
            "shown": form.shown,
            "page": page,
            "entries": page.items,
            "query": query.urlencode(),
            "action_choices": audit_log.action_choices(),
            "account_choices": form.fields["account"].choices,
        },
    )


@require_GET
def audit_detail(request, audit_entry_id: int):
    entry = audit_log.get_entry_or_404(request.scope, audit_entry_id)
    return render(
        request,
        "secops/audit_detail.html",
        {
            "entry": entry,
            "action_label": dict(AuditAction.choices).get(entry.action, entry.action),
            "changes": audit_log.changes_rows(entry),
            "details": audit_log.details_text(entry),
        },
    )


@require_GET
def audit_export(request, file_format: str):
    _form, filters = _filters(request)
    entries = audit_log.filtered_entries(request.scope, filters)
    try:
        content, content_type, name = audit_log.export(entries, file_format)
    except audit_log.ExportRefused as refusal:
        messages.error(request, str(refusal))
        query = request.GET.urlencode()
        return redirect(reverse("audit_log") + (f"?{query}" if query else ""))
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
