"""The SOAR pages: playbooks and the step editor, rules with dry run and the
kill switch, runs, approvals; for a global admin, an analyst, a viewer and an
outsider."""

import pytest
from django.urls import reverse

from secops.enums import Role
from soar import automation, runs
from soar.models import (
    AutomationRule,
    AutomationSwitch,
    Playbook,
    PlaybookRun,
    RuleAction,
    RunStatus,
    RunTrigger,
    Trigger,
)
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

BUILT_IN = "block-ip-cloud-firewall-inbound"
WAIT_STEP = {"kind": "wait", "name": "Pause", "params": {"minutes": 5}}


def _client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def viewer(tenancy):
    return factories.make_user(tenancy.org, "vera", accounts=[tenancy.account_a], role=Role.VIEWER)


@pytest.fixture
def custom(tenancy):
    from soar.playbooks import PlaybookSpec, save_playbook
    from tests.disposal.conftest import global_scope

    scope = global_scope(tenancy.org, [tenancy.account_a, tenancy.account_b])
    return save_playbook(scope, PlaybookSpec("Acme wait", "", [WAIT_STEP]), user=tenancy.alice)


def _editor_post(name, rows):
    data = {"name": name, "description": "", "step_count": str(len(rows))}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"step-{i}-{key}"] = value
    return data


def test_playbook_list_for_everyone_in_the_organisation(client, tenancy, custom, viewer):
    for user in (tenancy.alice, tenancy.bob, viewer):
        page = _client(client, user).get(reverse("soar:playbooks")).content.decode()
        assert "Acme wait" in page and "Pending Approvals" in page
        assert ("New playbook" in page) == (user == tenancy.alice)


def test_outsider_sees_nothing_of_the_organisation(client, tenancy, custom):
    c = _client(client, tenancy.charlie)
    assert "Acme wait" not in c.get(reverse("soar:playbooks")).content.decode()
    assert c.get(reverse("soar:playbook", args=[custom.pk])).status_code == 404
    assert c.get(reverse("soar:playbook_edit", args=[custom.pk])).status_code == 404
    rule = AutomationRule.objects.create(
        organisation=tenancy.org,
        name="Acme rule",
        trigger=Trigger.EVENT_CREATED,
        action=RuleAction.SET_RISK,
        parameters={"risk": 3},
    )
    assert "Acme rule" not in c.get(reverse("soar:rules")).content.decode()
    assert c.get(reverse("soar:rule_edit", args=[rule.pk])).status_code == 404
    assert c.post(reverse("soar:rule_delete", args=[rule.pk])).status_code == 404
    assert c.post(reverse("soar:rule_dry_run", args=[rule.pk])).status_code == 404
    event = factories.make_event(tenancy.account_a)
    run = runs.start_run(custom, event, trigger=RunTrigger.RULE, require_approval=True)
    assert c.get(reverse("soar:run", args=[run.pk])).status_code == 404
    assert c.post(reverse("soar:run_approve", args=[run.pk])).status_code == 404
    assert c.post(reverse("soar:run_rerun", args=[run.pk])).status_code == 404
    assert f"#{run.pk}" not in c.get(reverse("soar:runs")).content.decode()
    assert f"#{run.pk}" not in c.get(reverse("soar:approvals")).content.decode()
    assert AutomationRule.objects.filter(pk=rule.pk).exists()


def test_analyst_cannot_change_organisation_things(client, tenancy, custom):
    c = _client(client, tenancy.bob)
    assert c.get(reverse("soar:playbook_new")).status_code == 403
    assert c.get(reverse("soar:playbook_edit", args=[custom.pk])).status_code == 403
    assert c.get(reverse("soar:rule_new")).status_code == 403
    assert c.post(reverse("soar:automation_pause"), {"paused": "yes"}).status_code == 403
    assert not automation.is_paused(tenancy.org.pk)


def test_built_in_playbooks_are_not_editable(client, tenancy):
    built_in = Playbook.objects.get(key=BUILT_IN, organisation=None)
    c = _client(client, tenancy.alice)
    assert c.get(reverse("soar:playbook", args=[built_in.pk])).status_code == 200
    assert c.get(reverse("soar:playbook_edit", args=[built_in.pk])).status_code == 403


def test_editor_creates_edits_and_shows_old_versions(client, tenancy):
    c = _client(client, tenancy.alice)
    assert c.get(reverse("soar:playbook_new")).status_code == 200
    response = c.post(
        reverse("soar:playbook_new"),
        _editor_post(
            "Hold",
            [
                {"kind": "wait", "name": "Pause", "minutes": "5", "position": "1"},
                {"kind": "", "position": "2"},
            ],
        ),
    )
    playbook = Playbook.objects.get(name="Hold")
    assert response.status_code == 302 and playbook.current_version.number == 1
    response = c.post(
        reverse("soar:playbook_edit", args=[playbook.pk]),
        _editor_post(
            "Hold",
            [
                {"kind": "wait", "name": "Pause", "minutes": "5", "position": "2"},
                {"kind": "set_risk", "name": "Raise", "risk": "3", "position": "1"},
            ],
        ),
    )
    playbook.refresh_from_db()
    assert response.status_code == 302 and playbook.current_version.number == 2
    assert [s["kind"] for s in playbook.current_version.steps] == ["set_risk", "wait"]
    url = reverse("soar:playbook", args=[playbook.pk])
    assert "Raise" in c.get(url).content.decode()
    old = c.get(url, {"version": "1"}).content.decode()
    assert "Raise" not in old and "not the current version" in old
    assert c.get(url, {"version": "9"}).status_code == 404


def test_editor_errors_show_next_to_the_step(client, tenancy):
    c = _client(client, tenancy.alice)
    response = c.post(
        reverse("soar:playbook_new"),
        _editor_post(
            "Bad",
            [
                {"kind": "set_risk", "risk": "3", "position": "1"},
                {"kind": "wait", "minutes": "0", "position": "2"},
            ],
        ),
    )
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="step-1-error-minutes"' in page
    assert "Enter a number from 1 to" in page
    assert not Playbook.objects.filter(name="Bad").exists()
    page = c.post(
        reverse("soar:playbook_new"),
        _editor_post("Bad", [{"kind": "condition", "conditions": "{nope", "position": "1"}]),
    ).content.decode()
    assert 'data-testid="step-0-error-conditions"' in page


def test_editor_shows_and_reads_only_the_chosen_kinds_inputs(client, tenancy):
    import re

    c = _client(client, tenancy.alice)
    page = c.post(
        reverse("soar:playbook_new"),
        _editor_post("Bad", [{"kind": "wait", "minutes": "0", "position": "1"}]),
    ).content.decode()
    step = page[page.index('data-testid="step-0"') : page.index('data-testid="step-1"')]
    shown = re.findall(r'data-step-inputs="(\w+)"(?! hidden)>', step)
    hidden = re.findall(r'data-step-inputs="(\w+)" hidden>', step)
    assert shown == ["wait"]
    assert sorted(hidden) == sorted(
        ["action", "condition", "set_status", "set_risk", "notify", "approval"]
    )
    # Conditions typed while the step was a condition, then the kind changed:
    # the leftover (here not even JSON) neither blocks the save nor is stored.
    response = c.post(
        reverse("soar:playbook_new"),
        _editor_post(
            "Hold",
            [{"kind": "wait", "minutes": "5", "conditions": "{nope", "risk": "9", "position": "1"}],
        ),
    )
    assert response.status_code == 302
    steps = Playbook.objects.get(name="Hold").current_version.steps
    assert steps[0]["params"] == {"minutes": 5}


def _rule_post(**fields):
    built_in = Playbook.objects.get(key=BUILT_IN, organisation=None)
    return {
        "name": "Block",
        "position": "0",
        "enabled": "on",
        "trigger": "event_created",
        "conditions": '{"all": [{"field": "risk", "operator": "equals", "value": "high"}]}',
        "action": "run_playbook",
        "playbook": str(built_in.pk),
        "validity_days": "1",
        "max_runs_per_minute": "30",
        **fields,
    }


def test_rule_form_saves_and_reports_errors(client, tenancy):
    c = _client(client, tenancy.alice)
    assert c.get(reverse("soar:rule_new")).status_code == 200
    bad = c.post(
        reverse("soar:rule_new"),
        _rule_post(conditions='{"all": [{"field": "nope", "operator": "equals", "value": "x"}]}'),
    )
    assert bad.status_code == 200 and "conditions" in bad.content.decode()
    assert not AutomationRule.objects.exists()
    assert c.post(reverse("soar:rule_new"), _rule_post()).status_code == 302
    rule = AutomationRule.objects.get()
    assert rule.parameters == {"validity_days": 1} and rule.organisation == tenancy.org
    c.post(reverse("soar:rule_edit", args=[rule.pk]), _rule_post(action="set_status", status=""))
    rule.refresh_from_db()
    assert rule.action == RuleAction.RUN_PLAYBOOK
    assert "Block" in c.get(reverse("soar:rules")).content.decode()
    assert c.post(reverse("soar:rule_delete", args=[rule.pk])).status_code == 302
    assert not AutomationRule.objects.exists()


def test_dry_run_numbers(client, tenancy):
    factories.make_event(tenancy.account_a, risk=3)
    factories.make_event(tenancy.account_a, risk=1)
    rule = AutomationRule.objects.create(
        organisation=tenancy.org,
        name="High",
        trigger=Trigger.EVENT_CREATED,
        conditions={"all": [{"field": "risk", "operator": "equals", "value": "high"}]},
        action=RuleAction.SET_RISK,
        parameters={"risk": 3},
    )
    page = _client(client, tenancy.alice).post(reverse("soar:rule_dry_run", args=[rule.pk]))
    assert "would have acted on <strong>1</strong> of 2 events" in page.content.decode()
    assert (
        _client(client, tenancy.bob).post(reverse("soar:rule_dry_run", args=[rule.pk])).status_code
        == 403
    )


def test_kill_switch(client, tenancy):
    c = _client(client, tenancy.alice)
    assert c.post(reverse("soar:automation_pause"), {"paused": "yes"}).status_code == 302
    assert automation.is_paused(tenancy.org.pk)
    assert "Resume" in c.get(reverse("soar:rules")).content.decode()
    c.post(reverse("soar:automation_pause"), {"paused": "no"})
    assert not AutomationSwitch.objects.get(organisation=tenancy.org).paused


def test_approve_reject_and_rerun(client, tenancy, custom, viewer):
    event = factories.make_event(tenancy.account_a)
    first = runs.start_run(custom, event, trigger=RunTrigger.RULE, require_approval=True)
    second = runs.start_run(custom, event, trigger=RunTrigger.RULE, require_approval=True)
    page = _client(client, viewer).get(reverse("soar:approvals")).content.decode()
    assert f"#{first.pk}" in page and "Read-only" in page
    assert client.post(reverse("soar:run_approve", args=[first.pk])).status_code == 403
    c = _client(client, tenancy.alice)
    assert "Approve" in c.get(reverse("soar:approvals")).content.decode()
    c.post(reverse("soar:run_approve", args=[first.pk]))
    c.post(reverse("soar:run_reject", args=[second.pk]))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status != RunStatus.AWAITING_APPROVAL and second.status == RunStatus.REJECTED
    assert (
        _client(client, viewer).post(reverse("soar:run_rerun", args=[second.pk])).status_code == 403
    )
    response = _client(client, tenancy.bob).post(reverse("soar:run_rerun", args=[second.pk]))
    again = PlaybookRun.objects.get(rerun_of=second)
    assert response.url == reverse("soar:run", args=[again.pk])
    assert "Rerun" in client.get(reverse("soar:run", args=[second.pk])).content.decode()
    listed = client.get(reverse("soar:runs"), {"status": "rejected"}).content.decode()
    assert f"#{second.pk}" in listed and f"#{again.pk}" not in listed


def test_run_on_event_from_the_playbook_page(client, tenancy, custom, viewer):
    event = factories.make_event(tenancy.account_a)
    url = reverse("soar:playbook_run", args=[custom.pk])
    assert _client(client, viewer).post(url, {"event": event.pk}).status_code == 403
    response = _client(client, tenancy.bob).post(url, {"event": event.pk})
    run = PlaybookRun.objects.get()
    assert response.url == reverse("soar:run", args=[run.pk]) and run.started_by == tenancy.bob
    assert client.get(response.url).status_code == 200


def test_runs_list_marks_an_unknown_status_and_lists_every_run(client, tenancy, custom):
    event = factories.make_event(tenancy.account_a)
    first = runs.start_run(custom, event, trigger=RunTrigger.RULE, require_approval=True)

    listed = _client(client, tenancy.bob).get(reverse("soar:runs"), {"status": "lost"})

    html = listed.content.decode()
    assert listed.status_code == 200
    assert f"#{first.pk}" in html
    assert "There is no such run status: runs of every status are shown." in html
    assert 'id="error-status"' in html


def test_runs_list_is_paged_with_its_length(client, tenancy, custom, monkeypatch):
    monkeypatch.setattr("soar.views.RUNS_PER_PAGE", 2)
    event = factories.make_event(tenancy.account_a)
    started = [
        runs.start_run(custom, event, trigger=RunTrigger.RULE, require_approval=True)
        for _ in range(3)
    ]
    c = _client(client, tenancy.bob)

    first = c.get(reverse("soar:runs")).content.decode()
    last = c.get(reverse("soar:runs"), {"page": "last"}).content.decode()
    past = c.get(reverse("soar:runs"), {"page": "7"}).content.decode()

    assert "3 runs" in first and "Page 1 of 2" in first
    assert f"#{started[0].pk}<" not in first
    assert f"#{started[0].pk}<" in last and "Page 2 of 2" in last
    assert "Page 7 is past the end; the list has 2 pages." in past
    # An outsider's list has none of them.
    outsider = _client(client, tenancy.charlie).get(reverse("soar:runs")).content.decode()
    assert "0 runs" in outsider and f"#{started[0].pk}<" not in outsider
