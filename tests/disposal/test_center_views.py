"""The Disposal Center: policies, tasks and what is in force, in the Current and
the Global Account View; Retry, Unblock and policy editing; the simulated
cloud's page; who may do what, and what an outsider cannot see."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from disposal import center_views, queries, services
from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import (
    HandlingPolicy,
    HandlingTask,
    PolicySource,
    Scenario,
    SimulatedAction,
    SimulatedFailure,
    TaskStatus,
)
from events import feed
from events.models import EventStatus
from secops.enums import RegionGroup, View
from secops.services import SESSION_ACCOUNT, SESSION_REGION, SESSION_VIEW
from tests.disposal.conftest import ATTACKER_IP

INBOUND = "block-ip-cloud-firewall-inbound"
CENTER = reverse("disposal:center")
SIMULATED = reverse("disposal:simulated_cloud")
HTMX = {"HX-Request": "true"}


def client_for(user, *, view=View.CURRENT, account=None) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_VIEW] = view
    if account is not None:
        session[SESSION_ACCOUNT] = account.id
    session.save()
    return client


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Runs what a call queues on commit (the tasks run eagerly), as a worker would."""

    def run(fn):
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    return run


@pytest.fixture
def blocked(brute_force_event, run_on_commit):
    """The attacker IP blocked inbound in accounts A, B and D (one policy, three tasks)."""
    ctx = brute_force_event
    run_on_commit(
        lambda: handle_event(
            ctx.scope,
            ctx.event,
            HandlingRequest(
                status=EventStatus.HANDLING,
                actions=(
                    ActionChoice("ip", ATTACKER_IP, INBOUND, tuple(a.id for a in ctx.accounts)),
                ),
            ),
            cause=feed.Cause.by_user(ctx.analyst),
        )
    )
    return ctx


@pytest.fixture
def failed_in_b(brute_force_event, run_on_commit):
    """The same block, failing in account B on the simulated cloud's instruction."""
    ctx = brute_force_event
    SimulatedFailure.objects.create(
        account=ctx.accounts[1], target=ATTACKER_IP, message="Quota exceeded"
    )
    run_on_commit(
        lambda: handle_event(
            ctx.scope,
            ctx.event,
            HandlingRequest(
                status=EventStatus.HANDLING,
                actions=(
                    ActionChoice("ip", ATTACKER_IP, INBOUND, tuple(a.id for a in ctx.accounts)),
                ),
            ),
            cause=feed.Cause.by_user(ctx.analyst),
        )
    )
    return ctx


def global_admin(tenancy) -> Client:
    return client_for(tenancy.alice, view=View.GLOBAL)


def task_in(account) -> HandlingTask:
    return HandlingTask.objects.get(account=account)


def rows(response, testid="task-row") -> int:
    return response.content.decode().count(f'data-testid="{testid}"')


# --- lists ----------------------------------------------------------------------


def test_it_lists_the_policy_with_its_tasks_in_the_current_and_the_global_view(blocked, tenancy):
    current = client_for(tenancy.alice)

    page = current.get(CENTER)

    assert page.status_code == 200
    text = page.content.decode()
    assert "Handling Policies" in text and "Simulated cloud" in text
    assert rows(page, "policy-row") == 1
    assert ATTACKER_IP in text
    # Only account A's task is in the Current Account View of A.
    assert "1 blocked" in text and "+ 2 outside this view" in text
    assert f"Event #{blocked.event.pk}" in text
    assert "1 handling policy" in text
    assert "View Task" in text and 'data-testid="edit-policy"' not in text

    everywhere = global_admin(tenancy).get(CENTER)

    assert "3 blocked" in everywhere.content.decode()
    assert 'data-testid="edit-policy"' in everywhere.content.decode()
    assert rows(current.get(CENTER, {"tab": "tasks"})) == 1
    tasks = global_admin(tenancy).get(CENTER, {"tab": "tasks"})
    assert rows(tasks) == 3 and "3 handling tasks" in tasks.content.decode()
    assert tasks.content.decode().count(">Blocked<") == 3
    assert 'data-testid="simulated-badge"' in tasks.content.decode()


def test_policies_follow_the_region_selector_and_tasks_do_not(blocked, tenancy):
    policy = HandlingPolicy.objects.get()
    assert policy.region == "cn"
    client = global_admin(tenancy)
    session = client.session
    session[SESSION_REGION] = RegionGroup.OUTSIDE_CHINA
    session.save()

    assert rows(client.get(CENTER), "policy-row") == 0
    assert rows(client.get(CENTER, {"tab": "tasks"})) == 3
    HandlingPolicy.objects.update(region="")  # made where no region is known: shown in both
    assert rows(client.get(CENTER), "policy-row") == 1


def test_the_menu_links_to_the_disposal_center(tenancy):
    page = client_for(tenancy.alice).get(reverse("home"))

    assert f'href="{CENTER}"' in page.content.decode()


def test_an_htmx_tab_switch_answers_with_the_tab_only(blocked, tenancy):
    response = global_admin(tenancy).get(CENTER, {"tab": "tasks"}, headers=HTMX)

    text = response.content.decode()
    assert '<div id="tab"' in text and "<html" not in text
    assert 'data-tab="tasks"' in text


def test_view_task_shows_the_tasks_of_one_policy(blocked, tenancy, run_on_commit):
    other = run_on_commit(
        lambda: services.create_policy(
            entity_type="ip",
            value="198.51.100.99",
            digest="other",
            scenario=Scenario.objects.get(key=INBOUND),
            accounts=[tenancy.account_a],
            validity_days=7,
            owner_account_id=tenancy.account_a.id,
            region=blocked.event.region,
            source=PolicySource.PLAYBOOK_RUN,
            source_run_id=12,
            cause=feed.Cause.system("test"),
        )
    )[0]
    policy = HandlingPolicy.objects.exclude(pk=other.pk).get()
    client = global_admin(tenancy)

    policies = client.get(CENTER).content.decode()
    assert "Playbook run #12" in policies
    assert f"?tab=tasks&amp;policy={policy.pk}" in policies

    only = client.get(CENTER, {"tab": "tasks", "policy": policy.pk})
    assert rows(only) == 3
    assert "198.51.100.99" not in only.content.decode().split('data-testid="task-table"')[1]
    assert rows(client.get(CENTER, {"tab": "tasks"})) == 4


def test_filters_narrow_the_lists(blocked, tenancy):
    client = global_admin(tenancy)
    account_b = blocked.accounts[1]

    assert rows(client.get(CENTER, {"entity_type": "ip"}), "policy-row") == 1
    assert rows(client.get(CENTER, {"entity_type": "file"}), "policy-row") == 0
    assert rows(client.get(CENTER, {"scenario": "block-ip-waf"}), "policy-row") == 0
    assert rows(client.get(CENTER, {"tab": "tasks", "account": account_b.id})) == 1
    assert rows(client.get(CENTER, {"tab": "tasks", "status": "failed"})) == 0
    assert rows(client.get(CENTER, {"tab": "tasks", "status": "succeeded"})) == 3
    assert rows(client.get(CENTER, {"tab": "tasks", "created": "1d"})) == 3
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert rows(client.get(CENTER, {"tab": "tasks", "end": yesterday})) == 0
    # The policy is found by an account of its scope, not only by its own account.
    assert rows(client.get(CENTER, {"account": account_b.id}), "policy-row") == 1


def test_an_end_before_the_start_is_left_out_and_the_start_still_applies(blocked, tenancy):
    client = global_admin(tenancy)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    today = timezone.localdate().isoformat()

    response = client.get(CENTER, {"tab": "tasks", "start": tomorrow, "end": today})

    text = response.content.decode()
    assert 'data-field="end"' in text and "The end date is before the start date." in text
    assert rows(response) == 0  # nothing was created from tomorrow on
    assert response.context["filters"]["end"] is None


def test_the_pager_says_how_many_tasks_there_are(blocked, tenancy):
    response = global_admin(tenancy).get(CENTER, {"tab": "tasks", "page": "9"})

    text = response.content.decode()
    assert "3 handling tasks" in text  # one per account of the policy's scope
    assert "Page 9 is past the end; the list has 1 page." in text


def test_an_invalid_filter_is_marked_and_the_valid_ones_still_apply(blocked, tenancy):
    client = global_admin(tenancy)

    response = client.get(
        CENTER,
        {
            "tab": "tasks",
            "account": tenancy.account_x.id,  # another organisation's account
            "status": "succeeded",
            "scenario": "no-such-scenario",
        },
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-field="account"' in text
    assert "Choose one of the accounts of this view." in text
    assert "There is no such scenario." in text
    assert rows(response) == 3  # status=succeeded still applies

    narrowed = client.get(
        CENTER, {"tab": "tasks", "status": "nonsense", "account": blocked.accounts[1].id}
    )
    assert "There is no such task status." in narrowed.content.decode()
    assert rows(narrowed) == 1  # the account still applies

    dates = client.get(CENTER, {"start": "2026-05-10", "end": "2026-05-01", "policy": "x"})
    assert "The end date is before the start date." in dates.content.decode()
    assert "A policy is named by its number" in dates.content.decode()


def test_lists_are_paginated_newest_first_with_the_total(tenancy, run_on_commit):
    scenario = Scenario.objects.get(key=INBOUND)
    for n in range(21):
        services.create_policy(
            entity_type="ip",
            value=f"192.0.2.{n}",
            digest=f"digest-{n}",
            scenario=scenario,
            accounts=[tenancy.account_a],
            validity_days=7,
            owner_account_id=tenancy.account_a.id,
            region=tenancy.account_a.home_region,
            source=PolicySource.PLAYBOOK_RUN,
            source_run_id=n,
            cause=feed.Cause.system("test"),
        )
    client = client_for(tenancy.alice)

    first = client.get(CENTER)
    second = client.get(CENTER, {"page": 2})

    assert "21 handling policies" in first.content.decode()
    assert rows(first, "policy-row") == 20 and rows(second, "policy-row") == 1
    assert "192.0.2.20" in first.content.decode()  # the newest
    assert "192.0.2.0<" in second.content.decode()  # the oldest
    assert 'data-testid="next-page"' in first.content.decode()
    # Not yet run: block wording for a task waiting for its worker.
    tasks = client.get(CENTER, {"tab": "tasks"}).content.decode()
    assert ">Blocking<" in tasks and "21 handling tasks" in tasks


# --- retry and unblock ----------------------------------------------------------


def test_a_failed_task_shows_block_failed_with_its_error_and_retry(failed_in_b, tenancy):
    response = global_admin(tenancy).get(CENTER, {"tab": "tasks", "status": "failed"})

    text = response.content.decode()
    assert rows(response) == 1
    assert ">Block failed<" in text and "Quota exceeded (simulated cloud)" in text
    assert 'data-testid="task-retry"' in text
    assert 'hx-confirm="Run task' in text
    assert "1 blocked" not in text


def test_retry_after_the_failure_is_removed_blocks_and_handles_the_event(
    failed_in_b, tenancy, run_on_commit
):
    ctx = failed_in_b
    task = task_in(ctx.accounts[1])
    ctx.event.refresh_from_db()
    assert task.status == TaskStatus.FAILED and ctx.event.status == EventStatus.FAILED
    SimulatedFailure.objects.all().delete()
    client = global_admin(tenancy)

    response = run_on_commit(
        lambda: client.post(
            reverse("disposal:task_retry", args=[task.pk]), {"row": "tasks"}, headers=HTMX
        )
    )

    # The answer is the row, waiting for its worker (here the test's commit runs
    # it); the row asks for itself until the worker is done.
    assert response.status_code == 200
    row = response.content.decode()
    assert row.startswith(f'<tbody data-task-id="{task.pk}"')
    assert ">Blocking<" in row and 'hx-trigger="every 3s"' in row
    done = client.get(reverse("disposal:task", args=[task.pk]), {"row": "tasks"})
    assert ">Blocked<" in done.content.decode() and "every 3s" not in done.content.decode()
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 2
    ctx.event.refresh_from_db()
    assert ctx.event.status == EventStatus.HANDLED
    retried = task.transitions.get(message="Retry")
    assert retried.user == tenancy.alice


def test_retry_without_htmx_redirects_back_with_a_message(failed_in_b, tenancy, run_on_commit):
    task = task_in(failed_in_b.accounts[1])
    SimulatedFailure.objects.all().delete()
    back = f"{CENTER}?tab=tasks&status=failed"

    response = run_on_commit(
        lambda: global_admin(tenancy).post(
            reverse("disposal:task_retry", args=[task.pk]), {"next": back}, follow=True
        )
    )

    assert response.redirect_chain[-1][0] == back
    assert f"Task #{task.pk}: running again." in response.content.decode()


def test_a_retry_the_task_does_not_allow_is_refused_with_a_message(blocked, tenancy):
    task = task_in(blocked.accounts[0])
    client = global_admin(tenancy)

    refused = client.post(reverse("disposal:task_retry", args=[task.pk]), headers=HTMX)

    assert refused.status_code == 400
    assert refused["HX-Refresh"] == "true"
    assert "Only a failed task" in refused.content.decode()
    page = client.get(CENTER, {"tab": "tasks"})
    assert "Only a failed task" in page.content.decode()  # the message after the reload
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED


def test_unblock_lifts_the_block(blocked, tenancy, run_on_commit):
    task = task_in(blocked.accounts[0])
    client = client_for(tenancy.alice)  # Current Account View of A

    response = run_on_commit(
        lambda: client.post(
            reverse("disposal:task_unblock", args=[task.pk]), {"row": "active"}, headers=HTMX
        )
    )

    assert response.status_code == 200
    assert 'data-testid="active-row"' in response.content.decode()
    assert ">Unblocking<" in response.content.decode()
    done = client.get(reverse("disposal:task", args=[task.pk]), {"row": "active"})
    assert ">Unblocked<" in done.content.decode()
    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    assert not SimulatedAction.objects.filter(
        account=blocked.accounts[0], removed_at__isnull=True
    ).exists()
    again = client.post(reverse("disposal:task_unblock", args=[task.pk]), headers=HTMX)
    assert again.status_code == 400


def test_active_blocks_show_what_is_in_force_and_its_time_left(blocked, tenancy, run_on_commit):
    client = global_admin(tenancy)
    task = task_in(blocked.accounts[0])
    run_on_commit(lambda: services.unblock_task(blocked.scope, task, cause=feed.Cause.system()))

    response = client.get(CENTER, {"tab": "active"})

    text = response.content.decode()
    assert rows(response, "active-row") == 2
    assert "6 d 23 h left" in text
    assert text.count('data-testid="task-unblock"') == 2
    assert "2 actions in force" in text
    # One group per account and cloud service.
    assert text.count('class="group-row"') == 2


def test_the_task_detail_shows_its_history_with_the_answer_escaped(failed_in_b, tenancy):
    task = task_in(failed_in_b.accounts[1])
    task.transitions.filter(to_status=TaskStatus.FAILED).update(
        answer={"echo": "<script>alert(1)</script>"}
    )

    page = global_admin(tenancy).get(reverse("disposal:task", args=[task.pk]))
    unfolded = global_admin(tenancy).get(
        reverse("disposal:task", args=[task.pk]), {"row": "tasks", "detail": "1"}, headers=HTMX
    )

    text = page.content.decode()
    assert page.status_code == 200
    assert "Blocking → <strong>Block failed</strong>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert(1)" not in text
    assert "Quota exceeded" in text
    row = unfolded.content.decode()
    assert row.startswith(f'<tbody data-task-id="{task.pk}"') and "<html" not in row
    assert 'data-testid="task-transitions"' in row and "Hide details" in row
    assert "Pending → <strong>Blocking</strong>" in row


def test_a_row_in_progress_refreshes_itself(brute_force_event, tenancy):
    ctx = brute_force_event
    handle_event(  # queued, not run: the tasks stay pending
        ctx.scope,
        ctx.event,
        HandlingRequest(
            status=EventStatus.HANDLING,
            actions=(ActionChoice("ip", ATTACKER_IP, INBOUND, (ctx.accounts[0].id,)),),
        ),
        cause=feed.Cause.by_user(ctx.analyst),
    )
    task = HandlingTask.objects.get()
    client = client_for(tenancy.alice)

    listed = client.get(CENTER, {"tab": "tasks"}).content.decode()
    assert 'hx-trigger="every 3s"' in listed
    services.run_task(task.pk)
    row = client.get(reverse("disposal:task", args=[task.pk]), {"row": "tasks"})
    assert ">Blocked<" in row.content.decode()
    assert "every 3s" not in row.content.decode()


# --- editing a policy -----------------------------------------------------------


def test_editing_a_policy_changes_its_scope_and_validity(blocked, tenancy, run_on_commit):
    policy = HandlingPolicy.objects.get()
    a, b, d = blocked.accounts
    client = global_admin(tenancy)
    url = reverse("disposal:policy_edit", args=[policy.pk])

    form = client.get(url, headers=HTMX)
    assert form.status_code == 200 and 'name="validity_days"' in form.content.decode()

    response = run_on_commit(
        lambda: client.post(url, {"accounts": [a.id, b.id], "validity_days": 3})
    )

    assert response.status_code == 302
    assert response["Location"] == f"{CENTER}?tab=tasks&policy={policy.pk}"
    policy.refresh_from_db()
    assert policy.revision == 2 and policy.validity_days == 3
    assert set(policy.scope_accounts.values_list("id", flat=True)) == {a.id, b.id}
    assert task_in(d).status == TaskStatus.UNBLOCKED
    tasks = client.get(CENTER, {"tab": "tasks", "policy": policy.pk}).content.decode()
    # The tasks that ran with the earlier validity can be retried to apply it.
    assert tasks.count('data-testid="task-retry"') == 2
    assert "policy changed since it ran" in tasks


def test_an_invalid_edit_shows_errors_next_to_the_fields(blocked, tenancy):
    policy = HandlingPolicy.objects.get()
    url = reverse("disposal:policy_edit", args=[policy.pk])
    client = global_admin(tenancy)

    response = client.post(url, {"validity_days": 0})

    assert response.status_code == 400
    text = response.content.decode()
    assert 'data-field="accounts"' in text and "Choose at least one account" in text
    assert 'data-field="validity_days"' in text
    outsider_account = client.post(
        url, {"accounts": [tenancy.account_x.id], "validity_days": 5}
    ).content.decode()
    assert "Choose accounts of this view." in outsider_account
    policy.refresh_from_db()
    assert policy.revision == 1


def test_editing_needs_every_account_of_the_policy(blocked, tenancy):
    policy = HandlingPolicy.objects.get()
    url = reverse("disposal:policy_edit", args=[policy.pk])
    # Alice's Current Account View holds only account A of the policy's three.
    client = client_for(tenancy.alice)

    assert client.get(url).status_code == 403
    assert (
        client.post(url, {"accounts": [tenancy.account_a.id], "validity_days": 1}).status_code
        == 403
    )
    policy.refresh_from_db()
    assert policy.revision == 1


# --- viewers and outsiders ------------------------------------------------------


def test_a_viewer_reads_but_cannot_act(failed_in_b, tenancy):
    ctx = failed_in_b
    viewer_of_a = client_for(ctx.viewer, account=ctx.accounts[0])
    viewer_of_b = client_for(ctx.viewer, account=ctx.accounts[1])
    failed, in_force = task_in(ctx.accounts[1]), task_in(ctx.accounts[0])
    policy = HandlingPolicy.objects.get()

    listed = viewer_of_b.get(CENTER, {"tab": "tasks"})
    active = viewer_of_a.get(CENTER, {"tab": "active"})
    policies = viewer_of_a.get(CENTER)
    detail = viewer_of_b.get(reverse("disposal:task", args=[failed.pk]))

    assert rows(listed) == 1 and ">Block failed<" in listed.content.decode()
    assert rows(active, "active-row") == 1 and rows(policies, "policy-row") == 1
    for page in (listed, active, policies, detail):
        text = page.content.decode()
        assert "task-retry" not in text and "task-unblock" not in text
        assert "edit-policy" not in text and ">Retry<" not in text
    assert viewer_of_b.post(reverse("disposal:task_retry", args=[failed.pk])).status_code == 403
    unblock = reverse("disposal:task_unblock", args=[in_force.pk])
    assert viewer_of_a.post(unblock).status_code == 403
    assert viewer_of_a.get(reverse("disposal:policy_edit", args=[policy.pk])).status_code == 403
    failed.refresh_from_db()
    in_force.refresh_from_db()
    assert failed.status == TaskStatus.FAILED and in_force.status == TaskStatus.SUCCEEDED


def test_an_outsider_sees_nothing_and_gets_404(failed_in_b, tenancy):
    task = task_in(failed_in_b.accounts[1])
    policy = HandlingPolicy.objects.get()
    failure = SimulatedFailure.objects.get()
    outsider = client_for(tenancy.charlie)

    for tab in ("policies", "tasks", "active"):
        page = outsider.get(CENTER, {"tab": tab})
        assert page.status_code == 200
        assert ATTACKER_IP not in page.content.decode()
    assert "Quota exceeded" not in outsider.get(SIMULATED).content.decode()
    assert outsider.get(reverse("disposal:task", args=[task.pk])).status_code == 404
    assert (
        outsider.get(reverse("disposal:task", args=[task.pk]), {"row": "tasks"}).status_code == 404
    )
    assert outsider.post(reverse("disposal:task_retry", args=[task.pk])).status_code == 404
    assert outsider.post(reverse("disposal:task_unblock", args=[task.pk])).status_code == 404
    assert outsider.get(reverse("disposal:policy_edit", args=[policy.pk])).status_code == 404
    assert outsider.post(reverse("disposal:policy_edit", args=[policy.pk])).status_code == 404
    remove = reverse("disposal:simulated_failure_remove", args=[failure.pk])
    assert outsider.post(remove).status_code == 404
    assert SimulatedFailure.objects.filter(pk=failure.pk).exists()
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED


def test_entity_values_are_escaped(tenancy, run_on_commit):
    SimulatedFailure.objects.create(
        account=tenancy.account_a, message="<script>alert('message')</script>"
    )
    run_on_commit(
        lambda: services.create_policy(
            entity_type="process",
            value="<script>alert('entity')</script>",
            digest="x",
            scenario=Scenario.objects.get(key=INBOUND),
            accounts=[tenancy.account_a],
            validity_days=7,
            owner_account_id=tenancy.account_a.id,
            region=tenancy.account_a.home_region,
            source=PolicySource.PLAYBOOK_RUN,
            cause=feed.Cause.system("test"),
        )
    )
    client = client_for(tenancy.alice)

    for response in (
        client.get(CENTER),
        client.get(CENTER, {"tab": "tasks"}),
        client.get(SIMULATED),
        client.get(reverse("disposal:task", args=[HandlingTask.objects.get().pk])),
    ):
        text = response.content.decode()
        assert "<script>alert(" not in text
        assert "&lt;script&gt;alert(" in text


def test_the_entity_link_appears_once_the_entity_page_exists(monkeypatch):
    def missing(*args, **kwargs):
        raise NoReverseMatch("no entity page yet")

    monkeypatch.setattr(center_views, "reverse", missing)
    assert center_views.entity_url("ip", "abc") is None
    monkeypatch.setattr(center_views, "reverse", lambda name, args: f"/{name}/{'/'.join(args)}")
    assert center_views.entity_url("ip", "abc") == "/disposal:entity/ip/abc"


def test_time_left_reads_like_a_person_would_say_it():
    now = timezone.now()

    assert queries.time_left(None, now) == "no expiry"
    assert queries.time_left(now + timedelta(days=6, hours=23, minutes=5), now) == "6 d 23 h left"
    assert queries.time_left(now + timedelta(hours=2, minutes=30), now) == "2 h 30 min left"
    assert queries.time_left(now + timedelta(seconds=20), now) == "1 min left"
    assert queries.time_left(now - timedelta(minutes=1), now).startswith("validity ended")


# --- the simulated cloud --------------------------------------------------------


def test_the_simulated_cloud_page_shows_what_it_holds(blocked, tenancy, run_on_commit):
    task = task_in(blocked.accounts[0])
    run_on_commit(lambda: services.unblock_task(blocked.scope, task, cause=feed.Cause.system()))

    page = global_admin(tenancy).get(SIMULATED)

    text = page.content.decode()
    assert page.status_code == 200
    assert "SIMULATED" in text and "nothing leaves the console" in text
    assert "SIMULATED_CLOUD_FAILURE_PERCENT" in text
    in_force = text.split('data-testid="simulated-in-force"')[1].split("</table>")[0]
    removed = text.split('data-testid="simulated-removed"')[1].split("</table>")[0]
    assert in_force.count(ATTACKER_IP) == 2 and removed.count(ATTACKER_IP) == 1


def test_the_page_names_the_failure_percent_setting(tenancy, settings):
    settings.SIMULATED_CLOUD_FAILURE_PERCENT = 30

    text = client_for(tenancy.alice).get(SIMULATED).content.decode()

    assert "<strong>30%</strong> of all calls fail" in text


def test_an_administrator_adds_and_removes_a_failure(tenancy):
    client = client_for(tenancy.alice)

    response = client.post(
        SIMULATED,
        {
            "account": tenancy.account_a.id,
            "target": " 203.0.113.7 ",
            "percent": "50",
            "applies_to_undo": "on",
            "retryable": "on",
            "message": "Quota exceeded",
        },
    )

    assert response.status_code == 302
    failure = SimulatedFailure.objects.get()
    assert failure.account == tenancy.account_a and failure.target == "203.0.113.7"
    assert failure.share == 0.5 and failure.applies_to_undo and failure.retryable
    assert "Quota exceeded" in client.get(SIMULATED).content.decode()

    removed = client.post(reverse("disposal:simulated_failure_remove", args=[failure.pk]))

    assert removed.status_code == 302
    assert not SimulatedFailure.objects.exists()


def test_an_invalid_failure_shows_errors_next_to_the_fields(tenancy):
    client = client_for(tenancy.alice)

    response = client.post(
        SIMULATED, {"account": tenancy.account_x.id, "percent": "150", "message": " "}
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert 'data-field="account"' in text and "Choose an account you administer." in text
    assert 'data-field="percent"' in text and 'data-field="message"' in text
    assert not SimulatedFailure.objects.exists()


def test_an_analyst_cannot_instruct_the_simulated_cloud(tenancy):
    failure = SimulatedFailure.objects.create(account=tenancy.account_a, message="Denied")
    bob = client_for(tenancy.bob)

    page = bob.get(SIMULATED)

    assert page.status_code == 200
    assert 'data-testid="failure-form"' not in page.content.decode()
    assert 'data-testid="remove-failure"' not in page.content.decode()
    assert "Denied" in page.content.decode()
    refused = bob.post(
        SIMULATED, {"account": tenancy.account_a.id, "percent": "100", "message": "x"}
    )
    assert refused.status_code == 403
    remove = reverse("disposal:simulated_failure_remove", args=[failure.pk])
    assert bob.post(remove).status_code == 403
    assert SimulatedFailure.objects.count() == 1
