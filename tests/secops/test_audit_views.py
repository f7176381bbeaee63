"""The Audit Log page, its entries, exports and API: administrators of the
organisation read it, filtered; nobody else does, and nothing changes it."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import Resolver404, resolve, reverse
from openpyxl import load_workbook

from secops.enums import Role
from secops.models import AccountMembership, AuditAction, AuditEntry
from tests import factories

FORMULA = '=HYPERLINK("http://evil.example","Open")'


def entry(organisation, *, account=None, when=None, **fields) -> AuditEntry:
    values = {
        "when": when or datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        "actor_name": "alice",
        "actor_kind": "user",
        "action": AuditAction.WHITELIST_UPDATE,
        "target_type": "whitelist_group",
        "target_id": "7",
        "target_label": "Known scanner",
        "changes": {"name": ["Known scanner", "Known scanners"]},
    } | fields
    return AuditEntry.objects.create(organisation=organisation, account=account, **values)


@pytest.fixture
def entries(tenancy):
    """Entries of Acme (accounts A and B) and one of Umbrella."""
    return {
        "a": entry(tenancy.org, account=tenancy.account_a, target_label="Scanner of A"),
        "b": entry(
            tenancy.org,
            account=tenancy.account_b,
            actor_name="bob",
            action=AuditAction.HANDLING_HANDLE,
            target_type="security_event",
            target_label="Brute force on web-01",
            when=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        ),
        "org": entry(tenancy.org, action=AuditAction.LOGIN_FAILURE, target_label=FORMULA),
        "x": entry(tenancy.other_org, account=tenancy.account_x, target_label="Umbrella secret"),
    }


def labels(response) -> set[str]:
    """The targets of the entries listed, apart from the logins of the test's
    own clients."""
    return {
        e.target_label for e in response.context["entries"] if e.action != AuditAction.LOGIN_SUCCESS
    }


# --- who may read it -----------------------------------------------------------------


def test_it_shows_an_organisation_admin_every_entry_of_the_organisation(tenancy, entries):
    response = tenancy.client_for(tenancy.alice).get(reverse("audit_log"))
    assert response.status_code == 200
    assert labels(response) == {"Scanner of A", "Brute force on web-01", FORMULA}
    assert b"Umbrella secret" not in response.content


def test_an_account_admin_sees_only_the_entries_of_their_accounts(tenancy, entries):
    AccountMembership.objects.filter(user=tenancy.bob).update(role=Role.ADMIN)
    response = tenancy.client_for(tenancy.bob).get(reverse("audit_log"))
    assert response.status_code == 200
    assert labels(response) == {"Scanner of A"}
    # An entry of another account of the organisation does not exist for bob.
    detail = reverse("audit_entry", args=[entries["b"].id])
    assert tenancy.client_for(tenancy.bob).get(detail).status_code == 404


def test_a_non_admin_is_refused(tenancy, entries):
    client = tenancy.client_for(tenancy.bob)  # an analyst
    assert client.get(reverse("audit_log")).status_code == 403
    assert client.get(reverse("audit_entry", args=[entries["a"].id])).status_code == 403
    assert client.get(reverse("audit_export_csv")).status_code == 403


def test_an_outsider_gets_404_for_an_entry_of_another_organisation(tenancy, entries):
    AccountMembership.objects.filter(user=tenancy.charlie).update(role=Role.ADMIN)
    client = tenancy.client_for(tenancy.charlie)
    assert client.get(reverse("audit_entry", args=[entries["a"].id])).status_code == 404
    response = client.get(reverse("audit_log"))
    assert response.status_code == 200
    assert labels(response) == {"Umbrella secret"}


def test_the_navigation_links_the_page_for_admins_only(tenancy):
    link = f'href="{reverse("audit_log")}"'
    assert link in tenancy.client_for(tenancy.alice).get(reverse("home")).text
    assert link not in tenancy.client_for(tenancy.bob).get(reverse("home")).text


# --- filters and pages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "BOB"}, {"Brute force on web-01"}),
        ({"action": AuditAction.HANDLING_HANDLE}, {"Brute force on web-01"}),
        ({"action": "handling.*"}, {"Brute force on web-01"}),
        ({"action": "login.*"}, {FORMULA}),
        ({"q": "scanner"}, {"Scanner of A"}),
        ({"q": "security_event"}, {"Brute force on web-01"}),
        ({"start": "2026-11-24"}, {"Brute force on web-01"}),
        ({"end": "2026-11-24"}, {"Scanner of A", FORMULA}),
        ({"start": "2026-11-25", "end": "2026-11-25"}, {"Brute force on web-01"}),
    ],
    ids=repr,
)
def test_the_filters_narrow_the_list(tenancy, entries, query, expected):
    response = tenancy.client_for(tenancy.alice).get(reverse("audit_log"), query)
    assert labels(response) == expected


def test_the_account_filter_takes_only_accounts_in_view(tenancy, entries):
    client = tenancy.client_for(tenancy.alice)
    response = client.get(reverse("audit_log"), {"account": tenancy.account_a.id})
    assert labels(response) == {"Scanner of A"}
    # Another organisation's account is named as refused and left out.
    response = client.get(reverse("audit_log"), {"account": tenancy.account_x.id})
    assert response.status_code == 200
    assert "account" in response.context["form"].errors
    assert labels(response) == {"Scanner of A", "Brute force on web-01", FORMULA}


def test_an_end_before_the_start_is_named_and_left_out(tenancy, entries):
    response = tenancy.client_for(tenancy.alice).get(
        reverse("audit_log"), {"start": "2026-11-24", "end": "2026-11-01"}
    )
    assert "end" in response.context["form"].errors
    assert labels(response) == {"Brute force on web-01"}


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_date_out_of_range_is_named_and_left_out(tenancy, entries, day):
    response = tenancy.client_for(tenancy.alice).get(
        reverse("audit_log"), {"start": day, "end": day}
    )
    assert response.status_code == 200
    assert {"start", "end"} <= set(response.context["form"].errors)
    assert labels(response) == {"Scanner of A", "Brute force on web-01", FORMULA}
    api = factories.key_client(tenancy.org).get("/api/v1/audit-entries", {"end": day})
    assert api.status_code == 422 and "end" in api.json()["errors"]


def test_the_list_is_paged(tenancy):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for index in range(55):
        entry(tenancy.org, target_label=f"entry {index}", when=base + timedelta(minutes=index))
    client = tenancy.client_for(tenancy.alice)
    first = client.get(reverse("audit_log"), {"q": "entry"})
    assert len(first.context["entries"]) == 50
    assert first.context["entries"][0].target_label == "entry 54"
    second = client.get(reverse("audit_log"), {"q": "entry", "page": 2})
    assert [e.target_label for e in second.context["entries"]] == [
        f"entry {i}" for i in range(4, -1, -1)
    ]


def test_the_detail_shows_the_changes_escaped(tenancy):
    item = entry(
        tenancy.org,
        target_label="<script>alert(1)</script>",
        changes={"name": ["<b>old</b>", "new"], "accounts": [[1], [1, 2]]},
        details={"note": "<img src=x>"},
    )
    response = tenancy.client_for(tenancy.alice).get(reverse("audit_entry", args=[item.id]))
    assert response.status_code == 200
    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"&lt;b&gt;old&lt;/b&gt;" in response.content
    assert b"<img src=x>" not in response.content
    assert ("accounts", "[\n 1\n]", "[\n 1,\n 2\n]") in response.context["changes"]


# --- exports ---------------------------------------------------------------------------


def test_the_csv_export_neutralises_formulas(tenancy, entries):
    response = tenancy.client_for(tenancy.alice).get(reverse("audit_export_csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Time (UTC)", "Actor", "Actor kind", "Action"]
    targets = {row[7] for row in rows[1:] if row[3] != AuditAction.LOGIN_SUCCESS}
    assert targets == {"Scanner of A", "Brute force on web-01", "'" + FORMULA}
    assert "Umbrella secret" not in response.content.decode()


def test_the_xlsx_export_keeps_formulas_as_text_and_follows_the_filters(tenancy, entries):
    response = tenancy.client_for(tenancy.alice).get(
        reverse("audit_export_xlsx"), {"action": AuditAction.LOGIN_FAILURE}
    )
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2
    cell = sheet.cell(row=2, column=8)
    assert cell.value == "'" + FORMULA and cell.data_type == "s"


def test_an_export_too_large_is_refused_with_the_count(tenancy, entries, monkeypatch):
    from secops import audit_log

    monkeypatch.setattr(audit_log, "MAX_EXPORT_ROWS", 2)
    client = tenancy.client_for(tenancy.alice)
    response = client.get(reverse("audit_export_csv"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("audit_log"))
    assert "entries match; an export holds at most 2." in response.text


# --- nothing changes an entry ------------------------------------------------------------


def test_there_is_no_route_that_changes_an_entry(tenancy, entries):
    client = tenancy.client_for(tenancy.alice)
    detail = reverse("audit_entry", args=[entries["a"].id])
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(detail).status_code == 405
    for suffix in ("edit/", "delete/"):
        with pytest.raises(Resolver404):
            resolve(detail + suffix)
    entries["a"].refresh_from_db()
    assert entries["a"].target_label == "Scanner of A"


def test_the_admin_offers_no_change(tenancy, entries, admin_client):
    change = reverse("admin:secops_auditentry_change", args=[entries["a"].id])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    admin_client.post(change, {"target_label": "edited"})
    delete = reverse("admin:secops_auditentry_delete", args=[entries["a"].id])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:secops_auditentry_add")).status_code == 403
    entries["a"].refresh_from_db()
    assert entries["a"].target_label == "Scanner of A"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a trigger of PostgreSQL")
def test_postgresql_refuses_to_update_or_delete_an_entry(tenancy, entries):
    kept = entries["a"]
    for statement in (
        "UPDATE secops_auditentry SET target_label = 'edited' WHERE id = %s",
        "DELETE FROM secops_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="audit entries cannot be changed"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [kept.id])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=kept.pk).update(actor_name="mallory")
    kept.refresh_from_db()
    assert (kept.target_label, kept.actor_name) == ("Scanner of A", "alice")


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a trigger of PostgreSQL")
def test_postgresql_lets_a_users_deletion_clear_only_the_actor(tenancy):
    tenancy.client_for(tenancy.bob)  # a login entry of bob
    kept = AuditEntry.objects.get(action=AuditAction.LOGIN_SUCCESS, actor=tenancy.bob)
    tenancy.bob.delete()
    kept.refresh_from_db()
    assert kept.actor_id is None and kept.actor_name == "bob"
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=kept.pk).update(actor=None, actor_name="someone")


# --- the API ------------------------------------------------------------------------------


def test_the_api_lists_the_organisations_entries_with_filters(tenancy, entries):
    client = factories.key_client(tenancy.org)
    answer = client.get("/api/v1/audit-entries", {"action": "handling.*"})
    assert answer.status_code == 200
    body = answer.json()
    assert [e["target_label"] for e in body["items"]] == ["Brute force on web-01"]
    assert body["items"][0]["account"] == tenancy.account_b.uid
    assert body["next_cursor"] is None
    everything = client.get("/api/v1/audit-entries").json()["items"]
    assert "Umbrella secret" not in {e["target_label"] for e in everything}


def test_the_api_pages_with_a_cursor(tenancy, entries):
    client = factories.key_client(tenancy.org)
    first = client.get("/api/v1/audit-entries", {"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get("/api/v1/audit-entries", {"limit": 2, "cursor": first["next_cursor"]})
    seen = [e["id"] for e in first["items"] + rest.json()["items"]]
    assert len(seen) == len(set(seen))
    # Another organisation's entries count too only for it; Acme has four
    # entries here: its three and the key's own creation.
    assert len(seen) == 4


def test_the_api_names_a_refused_filter(tenancy, entries):
    answer = factories.key_client(tenancy.org).get(
        "/api/v1/audit-entries", {"action": "nothing.at_all"}
    )
    assert answer.status_code == 422
    assert "action" in answer.json()["errors"]


def test_the_api_gives_an_outsider_404_and_has_no_write_operation(tenancy, entries):
    outsider = factories.key_client(tenancy.other_org)
    assert outsider.get(f"/api/v1/audit-entries/{entries['a'].id}").status_code == 404
    own = factories.key_client(tenancy.org)
    url = f"/api/v1/audit-entries/{entries['a'].id}"
    assert own.get(url).json()["target_label"] == "Scanner of A"
    assert own.delete(url).status_code == 405
    assert own.put(url, {}, content_type="application/json").status_code == 405
    assert own.post("/api/v1/audit-entries", {}, content_type="application/json").status_code == 405
