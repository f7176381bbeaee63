"""The audit log over the API: read only, with the page's filters and scope."""

from ninja import Field, Query, Router, Schema

from secops import audit_log
from secops.api_common import CursorQuery, Message, Refused, cleaned_filters, cursor_page_or_422
from secops.models import AuditEntry

router = Router(tags=["audit log"])


class AuditFilterQuery(Schema):
    """The Audit Log page's filters, named as in its URL; the page's filter form
    reads them, so both refuse the same values."""

    start: str | None = Field(None, description="The first day, 2026-11-01.")
    end: str | None = Field(None, description="The last day, 2026-11-30.")
    actor: str | None = Field(None, description="Part of the actor's name (username or key).")
    action: str | None = Field(
        None, description="An action (`whitelist.update`) or a group of them (`handling.*`)."
    )
    account: str | None = Field(None, description="An account's id (`GET /accounts`).")
    q: str | None = Field(None, description="Part of the target's name or type, or its id.")


class AuditEntryOut(Schema):
    id: int
    when: str = Field(description="ISO 8601, UTC.")
    actor: str = Field(description="The username, API key or automation, as written then.")
    actor_kind: str = Field(description="user, api_key, automation, system or anonymous.")
    action: str
    action_label: str
    account: str | None = Field(description="The account's uid, if the entry has one.")
    target_type: str
    target_id: str
    target_label: str
    changes: dict = Field(description="{field: [before, after]}")
    details: dict
    source_address: str | None
    user_agent: str
    request_id: str


class AuditPageOut(Schema):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def _entry_out(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "when": entry.when.isoformat(),
        "actor": entry.actor_name,
        "actor_kind": entry.actor_kind,
        "action": entry.action,
        "action_label": entry.get_action_display(),
        "account": entry.account.uid if entry.account else None,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_label": entry.target_label,
        "changes": entry.changes,
        "details": entry.details,
        "source_address": entry.source_address,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
    }


@router.get("/audit-entries", response={200: AuditPageOut, 403: Message, 422: Refused})
def list_audit_entries(request, filters: Query[AuditFilterQuery], paging: Query[CursorQuery]):
    """The audit log of the key's organisation (an organisation key) or accounts
    (an account key), newest first; read page after page with `cursor`. Read
    only: no operation changes or deletes an entry."""
    audit_log.require_reader(request.scope)
    form = audit_log.AuditFilterForm(request.GET, scope=request.scope)
    chosen = cleaned_filters(form)
    entries = audit_log.filtered_entries(request.scope, chosen)
    page = cursor_page_or_422(entries, ("-when", "-id"), paging)
    return {"items": [_entry_out(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/audit-entries/{audit_entry_id}", response={200: AuditEntryOut, 403: Message, 404: Message}
)
def get_audit_entry(request, audit_entry_id: int):
    audit_log.require_reader(request.scope)
    return _entry_out(audit_log.get_entry_or_404(request.scope, audit_entry_id))
