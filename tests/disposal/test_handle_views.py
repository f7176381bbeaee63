"""The Handle panel: who sees it, what it shows, what OK writes, and the
Message Preview; and the handling section it adds to the event details."""

import html
import re

import pytest
from django.urls import reverse

from disposal.forms import NO_RECOMMENDATION, row_prefix
from disposal.handle_views import HANDLED_TRIGGER
from disposal.handling import handling_context
from disposal.models import (
    CloudService,
    HandlingPolicy,
    HandlingTask,
    Notification,
    Operation,
    Scenario,
    TaskStatus,
)
from events.models import EventStatus, EventStatusChange
from secops.enums import View
from secops.env import env_email
from tests.disposal.conftest import ATTACKER_IP

INBOUND = "block-ip-cloud-firewall-inbound"
HTMX = {"HX-Request": "true"}


def handle_url(event) -> str:
    return reverse("disposal:handle", args=[event.pk])


def preview_url(event) -> str:
    return reverse("disposal:handle_preview", args=[event.pk])


def section(page: str, testid: str) -> str:
    """The element carrying ``data-testid`` with everything in it (up to the
    closing tag of its kind at the same depth)."""
    start = re.search(rf'<(\w+)[^>]*data-testid="{testid}"', page)
    assert start, f"no element with data-testid={testid!r}"
    tag, depth, position = start.group(1), 0, start.start()
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", page[position:]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return page[position : position + match.end()]
    raise AssertionError(f"unclosed <{tag}> for {testid!r}")


def ip_row(ctx) -> str:
    context = handling_context(ctx.scope, ctx.event)
    return row_prefix(context.find("ip", ATTACKER_IP))


def ip_block(ctx, *, accounts=None, validity="7", scenario=INBOUND) -> dict:
    prefix = ip_row(ctx)
    return {
        f"{prefix}-selected": "1",
        f"{prefix}-scenario": scenario,
        f"{prefix}-scope": [str(a.id) for a in (ctx.accounts if accounts is None else accounts)],
        f"{prefix}-validity": validity,
    }


@pytest.fixture
def ctx(brute_force_event):
    return brute_force_event


@pytest.fixture
def admin_client(ctx, tenancy):
    """Alice in the Global Account View: the three accounts the IP was seen in."""
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL})
    return client


@pytest.fixture
def analyst_client(ctx, tenancy):
    return tenancy.client_for(ctx.analyst)


@pytest.fixture
def viewer_client(ctx, tenancy):
    return tenancy.client_for(ctx.viewer)


def post(client, url, data, *, htmx=False, capture=None, **headers):
    headers = {**(HTMX if htmx else {}), **headers}
    if capture is None:
        return client.post(url, data, headers=headers)
    with capture(execute=True):
        return client.post(url, data, headers=headers)


# --- who sees what ----------------------------------------------------------------


def test_it_shows_an_analyst_the_panel_with_its_three_parts(ctx, analyst_client):
    response = analyst_client.get(handle_url(ctx.event), headers=HTMX)
    page = response.content.decode()

    assert response.status_code == 200
    assert "<html" not in page  # the partial, for the side panel
    for part in ("Event Status", "Action Settings", "Event Handling Notification"):
        assert part in page
    assert 'data-testid="handle-ok"' in page
    assert 'data-testid="handle-read-only"' not in page
    assert not [tag for tag in re.findall(r"<fieldset[^>]*>", page) if " disabled" in tag]
    statuses = re.findall(r'name="status" value="(\w+)"', page)
    assert statuses == [EventStatus.UNHANDLED, EventStatus.HANDLING, EventStatus.HANDLED]
    # Opened to handle it: the Unhandled event starts as Handling.
    assert re.findall(r'name="status" value="(\w+)" checked', page) == [EventStatus.HANDLING]
    ip_tab = section(page, "handle-tab-body-ip")
    assert ATTACKER_IP in ip_tab
    assert "Attacker" in ip_tab and "Malicious" in ip_tab and "the alerts" in ip_tab
    assert "web-00" in ip_tab
    # The scope offers the accounts the analyst's view holds; the event's is ticked.
    assert ip_tab.count('data-testid="entity-scope"') == 1
    assert re.search(rf'value="{ctx.event.account_id}" checked', ip_tab)
    assert 'data-testid="use-recommended"' in ip_tab
    assert f"Security event #{ctx.event.pk} handled" in page


def test_it_offers_the_scope_of_every_account_the_entity_was_seen_in(ctx, admin_client):
    page = admin_client.get(handle_url(ctx.event), headers=HTMX).content.decode()
    ip_tab = section(page, "handle-tab-body-ip")

    for account in ctx.accounts:
        assert f'value="{account.id}"' in ip_tab
    assert re.findall(r'name="[\w-]+-scope" value="(\d+)" checked', ip_tab) == [
        str(ctx.event.account_id)
    ]
    # The inbound block takes a validity, filled in with its default.
    assert re.search(r'name="[\w-]+-validity" value="7"', ip_tab)


def test_it_renders_a_page_of_its_own_without_htmx(ctx, analyst_client):
    page = analyst_client.get(handle_url(ctx.event)).content.decode()

    assert "<html" in page and 'data-testid="handle-panel"' in page
    assert "css/disposal.css" in page


def test_it_shows_a_viewer_the_panel_read_only(ctx, viewer_client):
    response = viewer_client.get(handle_url(ctx.event), headers=HTMX)
    page = response.content.decode()

    assert response.status_code == 200
    assert 'data-testid="handle-read-only"' in page
    assert 'data-testid="handle-ok"' not in page
    assert ATTACKER_IP in page
    # Every part's fields are disabled: the status, each tab, the notification.
    fieldsets = re.findall(r"<fieldset[^>]*>", page)
    assert len(fieldsets) == 5 and all(" disabled" in tag for tag in fieldsets)
    # The event's own status is shown, not a choice.
    assert re.findall(r'name="status" value="(\w+)" checked', page) == [EventStatus.UNHANDLED]


def test_it_refuses_a_viewer_s_post(ctx, viewer_client):
    data = {"status": EventStatus.HANDLING, **ip_block(ctx, accounts=[ctx.accounts[0]])}

    response = viewer_client.post(handle_url(ctx.event), data)

    assert response.status_code == 403
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED
    assert not HandlingPolicy.objects.exists()


def test_it_hides_the_event_from_an_outsider(ctx, tenancy):
    charlie = tenancy.client_for(tenancy.charlie)
    data = {"status": EventStatus.HANDLED}

    assert charlie.get(handle_url(ctx.event)).status_code == 404
    assert charlie.get(handle_url(ctx.event), headers=HTMX).status_code == 404
    assert charlie.post(handle_url(ctx.event), data).status_code == 404
    assert charlie.post(preview_url(ctx.event), data).status_code == 404
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED


def test_it_hides_an_event_of_another_account_from_an_analyst(ctx, tenancy):
    """Bob is an analyst of account A only; his view is A, the event's account."""
    other = ctx.event.__class__.objects.exclude(account=tenancy.account_a).first()
    bob = tenancy.client_for(tenancy.bob)

    assert bob.get(handle_url(ctx.event), headers=HTMX).status_code == 200
    if other is not None:
        assert bob.get(handle_url(other), headers=HTMX).status_code == 404


def test_it_answers_only_get_and_post(ctx, analyst_client):
    assert analyst_client.put(handle_url(ctx.event)).status_code == 405
    assert analyst_client.get(preview_url(ctx.event)).status_code == 405


# --- Use Recommended Handling Policy ---------------------------------------------------


def test_recommending_fills_in_the_recommended_scenario_and_ticks_the_entity(ctx, admin_client):
    response = admin_client.get(handle_url(ctx.event), {"recommend": "ip"}, headers=HTMX)
    ip_tab = section(response.content.decode(), "handle-tab-body-ip")

    assert re.search(r'name="[\w-]+-selected" value="1" checked', ip_tab)
    assert re.search(rf'<option value="{INBOUND}" selected', ip_tab)
    assert "filled in for 1 entity" in section(ip_tab, "recommend-note")
    assert not HandlingPolicy.objects.exists()


def test_recommending_keeps_the_analyst_s_other_choices(ctx, admin_client):
    data = {
        "status": EventStatus.UNHANDLED,
        "description": "Seen by the SOC",
        "tab": "ip",
        "recommend": "ip",
        f"{ip_row(ctx)}-scope": [str(a.id) for a in ctx.accounts],
        "notify_recipients": "soc@example.com",
    }

    page = post(admin_client, handle_url(ctx.event), data, htmx=True).content.decode()

    ip_tab = section(page, "handle-tab-body-ip")
    assert len(re.findall(r'name="[\w-]+-scope" value="\d+" checked', ip_tab)) == 3
    assert "Seen by the SOC" in page and "soc@example.com" in page
    # Actions need Handling: an Unhandled choice moves to it.
    assert re.search(r'name="status" value="handling" checked', page)
    assert 'data-testid="handle-errors"' not in page
    assert not HandlingPolicy.objects.exists()
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED


def test_recommending_works_without_htmx(ctx, admin_client):
    # Recommending objects to nothing yet: not the missing status, not the validity.
    data = {"recommend": "ip", f"{ip_row(ctx)}-selected": "1", f"{ip_row(ctx)}-validity": "x"}

    page = admin_client.post(handle_url(ctx.event), data).content.decode()

    assert "<html" in page
    assert 'data-testid="handle-errors"' not in page
    assert re.search(
        r'name="[\w-]+-selected" value="1" checked', section(page, "handle-tab-body-ip")
    )
    assert not HandlingPolicy.objects.exists()


def test_recommending_says_so_when_nothing_is_recommended(ctx, admin_client):
    data = {"status": EventStatus.HANDLING, "recommend": "file"}

    page = post(admin_client, handle_url(ctx.event), data, htmx=True).content.decode()

    file_tab = section(page, "handle-tab-body-file")
    assert NO_RECOMMENDATION in section(file_tab, "recommend-note")
    assert 'data-testid="entity-not-recommended"' in file_tab
    assert not re.search(r'name="[\w-]+-selected" value="1" checked', file_tab)
    # The tab that was asked about is the one shown.
    assert re.search(r'value="file" id="handle-tab-file" class="[^"]*" checked', page)


# --- OK ---------------------------------------------------------------------------


def test_ok_blocks_the_ip_over_three_accounts_and_redirects_to_the_event(
    ctx, admin_client, django_capture_on_commit_callbacks
):
    data = {"status": EventStatus.HANDLING, "description": "Blocked", **ip_block(ctx)}

    response = post(
        admin_client, handle_url(ctx.event), data, capture=django_capture_on_commit_callbacks
    )

    detail = reverse("events:detail", args=[ctx.event.pk])
    assert response.status_code == 302 and response["Location"] == detail
    policy = HandlingPolicy.objects.get()
    assert policy.scenario.key == INBOUND and policy.entity_value == ATTACKER_IP
    assert policy.validity_days == 7
    assert {a.id for a in policy.scope_accounts.all()} == {a.id for a in ctx.accounts}
    assert policy.created_by.username == "alice"
    tasks = HandlingTask.objects.filter(policy=policy)
    assert {t.account_id for t in tasks} == {a.id for a in ctx.accounts}
    # The simulated cloud acted at once and the event followed its tasks.
    assert set(tasks.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED
    note = EventStatusChange.objects.get(event=ctx.event, to_status=EventStatus.HANDLING)
    assert note.note == "Blocked" and note.changed_by.username == "alice"
    # (The tasks ran after the response here: the test's transaction never commits.)
    page = admin_client.get(detail).content.decode()
    assert f"Event #{ctx.event.pk} is Handling: 1 policy, 3 tasks queued." in page


def test_ok_beside_the_list_shows_a_summary_and_reloads_the_list(
    ctx, admin_client, django_capture_on_commit_callbacks
):
    data = {"status": EventStatus.HANDLING, **ip_block(ctx)}
    list_page = "http://testserver" + reverse("events:list") + "?risk=3"

    response = post(
        admin_client,
        handle_url(ctx.event),
        data,
        htmx=True,
        capture=django_capture_on_commit_callbacks,
        **{"HX-Current-URL": list_page},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "1 policy, 3 tasks queued" in section(page, "handle-done")
    refresh = section(page, "list-refresh")
    assert f'hx-get="{reverse("events:list")}?risk=3"' in refresh
    assert HANDLED_TRIGGER in response["HX-Trigger"]
    assert HandlingTask.objects.count() == 3


def test_ok_from_the_event_details_sends_the_browser_back_to_them(ctx, admin_client):
    detail = reverse("events:detail", args=[ctx.event.pk])

    response = post(
        admin_client,
        handle_url(ctx.event),
        {"status": EventStatus.HANDLED},
        htmx=True,
        **{"HX-Current-URL": "http://testserver" + detail},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == detail


def test_a_scenario_without_a_validity_period_ignores_the_field(
    ctx, admin_client, django_capture_on_commit_callbacks
):
    Scenario.objects.create(
        key="watch-ip",
        name="Put the IP on the watch list",
        entity_type="ip",
        cloud_service=CloudService.CLOUD_FIREWALL,
        operation=Operation.BLOCK_IP,
        built_in=False,
        organisation=ctx.event.account.organisation,
    )
    data = {"status": EventStatus.HANDLING, **ip_block(ctx, scenario="watch-ip", validity="7")}

    response = post(
        admin_client, handle_url(ctx.event), data, capture=django_capture_on_commit_callbacks
    )

    assert response.status_code == 302
    policy = HandlingPolicy.objects.get()
    assert policy.scenario.key == "watch-ip" and policy.validity_days is None


def test_handled_needs_no_action_and_no_notification(ctx, analyst_client):
    data = {"status": EventStatus.HANDLED, "description": "False positive", "tab": "ip"}

    response = analyst_client.post(handle_url(ctx.event), data)

    assert response.status_code == 302
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED
    assert not HandlingPolicy.objects.exists()
    assert not Notification.objects.exists()
    change = EventStatusChange.objects.get(event=ctx.event, to_status=EventStatus.HANDLED)
    assert change.note == "False positive"


def test_a_forged_failed_status_is_refused_next_to_the_status(ctx, admin_client):
    data = {"status": EventStatus.FAILED, **ip_block(ctx)}

    response = post(admin_client, handle_url(ctx.event), data, htmx=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Failed is set only when a handling task fails." in section(page, "error-status")
    assert 'data-testid="handle-errors"' in page
    # What the analyst chose is shown again; nothing was written.
    assert re.search(rf'<option value="{INBOUND}" selected', page)
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED
    assert not EventStatusChange.objects.filter(event=ctx.event).exclude(from_status="").exists()
    assert not HandlingPolicy.objects.exists()


@pytest.mark.parametrize(
    ("change", "testid", "message"),
    [
        ({"accounts": []}, "error-scope", "Choose at least one account"),
        ({"validity": "999"}, "error-validity", "1 to 365 days"),
        ({"validity": "0"}, "error-validity", "1 or more"),
        ({"validity": "soon"}, "error-validity", "1 or more"),
    ],
)
def test_an_action_s_error_is_shown_next_to_its_field(ctx, admin_client, change, testid, message):
    data = {"status": EventStatus.HANDLING, **ip_block(ctx, **change)}

    page = post(admin_client, handle_url(ctx.event), data, htmx=True).content.decode()

    ip_tab = section(page, "handle-tab-body-ip")
    assert message in section(ip_tab, testid)
    assert not HandlingPolicy.objects.exists()
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED


def test_the_tab_with_an_error_is_the_one_shown(ctx, admin_client):
    file_row = row_prefix(handling_context(ctx.scope, ctx.event).tabs["file"][0])
    data = {
        "status": EventStatus.HANDLING,
        "tab": "ip",
        f"{file_row}-selected": "1",
        f"{file_row}-scenario": "quarantine-file",
    }

    page = post(admin_client, handle_url(ctx.event), data, htmx=True).content.decode()

    assert re.search(r'value="file" id="handle-tab-file" class="[^"]*" checked', page)
    assert "has-errors" in section(page, "handle-tab-file")
    assert "Choose at least one account" in section(page, "handle-tab-body-file")


def test_a_notification_error_is_shown_next_to_the_recipients(ctx, analyst_client):
    data = {
        "status": EventStatus.HANDLED,
        "notify_channels": "email",
        "notify_recipients": "soc@example.com, not-an-address",
        "notify_title": "Done",
    }

    page = post(analyst_client, handle_url(ctx.event), data, htmx=True).content.decode()

    assert "'not-an-address' is not an e-mail address." in html.unescape(
        section(page, "error-notify-recipients")
    )
    assert not Notification.objects.exists()
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED


def test_the_description_has_a_limit(ctx, analyst_client):
    data = {"status": EventStatus.HANDLED, "description": "x" * 2001}

    page = post(analyst_client, handle_url(ctx.event), data, htmx=True).content.decode()

    assert "longer than 2000" in section(page, "error-description")
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.UNHANDLED


# --- Message Preview --------------------------------------------------------------


def test_the_preview_escapes_what_attackers_control(ctx, analyst_client):
    ctx.event.name = "<script>alert(1)</script> brute force"
    ctx.event.save(update_fields=["name"])
    data = {
        "status": EventStatus.HANDLED,
        "description": "<img src=x onerror=alert(2)>",
        "notify_channels": "email",
        "notify_recipients": "soc@example.com\n<b>x</b>@example.com",
        "notify_title": "<i>title</i>",
    }

    response = post(analyst_client, preview_url(ctx.event), data, htmx=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; brute force" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;i&gt;title&lt;/i&gt;" in page and "&lt;b&gt;x&lt;/b&gt;@example.com" in page
    for raw in ("<script>", "<img", "<i>", "<b>"):
        assert raw not in page


def test_the_preview_is_the_message_that_is_sent(
    ctx, admin_client, django_capture_on_commit_callbacks, mailoutbox
):
    data = {
        "status": EventStatus.HANDLING,
        "description": "Blocking the attacker",
        **ip_block(ctx, validity="30"),
        "notify_channels": "email",
        "notify_recipients": "soc@example.com",
        "notify_title": "Event handled",
    }

    preview = post(admin_client, preview_url(ctx.event), data, htmx=True).content.decode()
    post(admin_client, handle_url(ctx.event), data, capture=django_capture_on_commit_callbacks)

    body = html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", preview, re.S).group(1))
    assert "Block inbound traffic from the IP on Cloud Firewall" in body
    assert "for 30 days, in 3 accounts (Acme Intl, Acme Prod, Acme Shop)" in body
    assert "Status: Handling" in body
    sent = Notification.objects.get()
    assert sent.body == body
    assert [m.body for m in mailoutbox] == [body]


# --- the event's handling section and the Handle action ---------------------------


def test_the_event_details_list_the_policies_and_notifications(
    ctx, admin_client, django_capture_on_commit_callbacks, settings, monkeypatch
):
    monkeypatch.setenv("EMAIL_URL", "locmem://")
    settings.MAILERS = env_email("EMAIL_URL", "console://")
    detail = reverse("events:detail", args=[ctx.event.pk])
    assert 'data-testid="event-handling"' not in admin_client.get(detail).content.decode()
    data = {
        "status": EventStatus.HANDLING,
        **ip_block(ctx),
        "notify_channels": "email",
        "notify_recipients": "soc@example.com",
        "notify_title": "<b>Blocked</b>",
    }
    post(admin_client, handle_url(ctx.event), data, capture=django_capture_on_commit_callbacks)

    handling = section(admin_client.get(detail).content.decode(), "event-handling")

    policies = section(handling, "event-policies")
    assert "Block inbound traffic from the IP on Cloud Firewall" in policies
    assert ATTACKER_IP in policies and "7 days" in policies
    assert "3 Succeeded" in section(policies, "policy-tasks")
    notifications = section(handling, "event-notifications")
    assert "Email" in notifications and "soc@example.com" in notifications
    assert "Sent" in notifications
    assert "&lt;b&gt;Blocked&lt;/b&gt;" in notifications and "<b>" not in notifications


def test_the_section_counts_only_the_tasks_in_view(
    ctx, admin_client, analyst_client, django_capture_on_commit_callbacks
):
    post(
        admin_client,
        handle_url(ctx.event),
        {"status": EventStatus.HANDLING, **ip_block(ctx)},
        capture=django_capture_on_commit_callbacks,
    )
    detail = reverse("events:detail", args=[ctx.event.pk])

    handling = section(analyst_client.get(detail).content.decode(), "event-handling")

    assert "1 Succeeded" in handling
    assert "2 accounts outside your view" in handling


def test_the_list_and_the_details_offer_handle_to_everyone_who_sees_the_event(ctx, viewer_client):
    listed = viewer_client.get(reverse("events:list"), {"occurred": "180d"}).content.decode()
    detail = viewer_client.get(reverse("events:detail", args=[ctx.event.pk])).content.decode()

    assert f'hx-get="{handle_url(ctx.event)}" hx-target="#side-panel"' in listed
    assert '<aside id="side-panel"' in listed
    assert f'hx-get="{handle_url(ctx.event)}" hx-target="#alert-panel"' in detail
