"""The audit log is written by the services: one entry per action with who,
from where and what changed, and none for a change that is refused."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse

from alerts.detection_rules import (
    DetectionRuleSpec,
    InvalidDetectionRule,
    delete_custom_rule,
    save_custom_rule,
)
from cloudsiem import services as cloudsiem_services
from disposal import services as disposal_services
from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import HandlingTask, SimulatedFailure, TaskStatus
from events import feed
from events import rules as aggregation_rules
from events.models import AggregationRule, EventChange, EventStatus
from events.services import change_event_risk, change_event_status
from secops import audit, services
from secops.enums import View
from secops.models import ActorKind, AuditAction, AuditEntry
from secops.rules import RuleValidationError, set_rule_enabled
from soar import automation
from soar.models import AutomationRule, RuleAction, Trigger
from soar.playbooks import PlaybookError, PlaybookSpec, save_playbook
from tests.conftest import PASSWORD
from tests.disposal.conftest import ATTACKER_IP
from tests.secops.test_url_coverage import SIGMA_RULE
from whitelist.services import (
    ConditionSpec,
    GroupSpec,
    GroupValidationError,
    delete_group,
    save_group,
    set_group_enabled,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

INBOUND = "block-ip-cloud-firewall-inbound"


def only(action) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, [e.action for e in AuditEntry.objects.all()]
    return entries[0]


def as_request(user, address="192.0.2.44", agent="pytest-browser/1.0"):
    """A request of ``user`` as the middleware keeps it."""
    request = RequestFactory().get("/", REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    request.user = user
    return audit.request_context(request)


def scope_of(user):
    return services.build_scope(user, {})


# --- logins ------------------------------------------------------------------------


def test_it_records_a_login_with_the_address_and_user_agent(tenancy):
    client = Client(REMOTE_ADDR="198.51.100.9", HTTP_USER_AGENT="Firefox/140")
    response = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302

    entry = only(AuditAction.LOGIN_SUCCESS)
    assert (entry.actor_id, entry.actor_name, entry.actor_kind) == (
        tenancy.bob.id,
        "bob",
        ActorKind.USER,
    )
    assert entry.organisation_id == tenancy.org.id
    assert entry.source_address == "198.51.100.9"
    assert entry.user_agent == "Firefox/140"


def test_it_records_a_failed_login_without_the_password(tenancy):
    client = Client(REMOTE_ADDR="198.51.100.9")
    client.post(reverse("login"), {"username": "bob", "password": "wrong-guess-1"})

    entry = only(AuditAction.LOGIN_FAILURE)
    assert entry.actor_name == "bob" and entry.actor_kind == ActorKind.ANONYMOUS
    assert entry.organisation_id == tenancy.org.id
    assert entry.source_address == "198.51.100.9"
    assert "wrong-guess-1" not in str(entry.details) + str(entry.changes)
    assert not AuditEntry.objects.filter(action=AuditAction.LOGIN_SUCCESS).exists()


def test_a_failed_login_of_an_unknown_user_has_no_organisation(tenancy):
    Client().post(reverse("login"), {"username": "mallory", "password": "x"})
    entry = only(AuditAction.LOGIN_FAILURE)
    assert entry.actor_name == "mallory" and entry.actor_id is None
    assert entry.organisation_id is None


def test_it_records_a_logout(tenancy):
    client = tenancy.client_for(tenancy.bob)
    client.post(reverse("logout"))
    entry = only(AuditAction.LOGOUT)
    assert entry.actor_name == "bob"


def test_the_username_stays_when_the_user_is_deleted(tenancy):
    tenancy.client_for(tenancy.bob)
    tenancy.bob.delete()
    entry = only(AuditAction.LOGIN_SUCCESS)
    assert entry.actor_id is None and entry.actor_name == "bob"


# --- the view scope ----------------------------------------------------------------


def test_it_records_a_switch_to_the_global_view(tenancy):
    client = tenancy.client_for(tenancy.alice)
    client.post(reverse("change_scope"), {"view": View.GLOBAL, "next": "/"})
    entry = only(AuditAction.VIEW_SWITCH)
    assert entry.actor_name == "alice"
    assert entry.changes["view"] == [None, View.GLOBAL]
    assert entry.account_id is None


def test_a_refused_switch_writes_nothing(tenancy):
    client = tenancy.client_for(tenancy.bob)
    client.post(reverse("change_scope"), {"view": View.GLOBAL, "next": "/"})
    client.post(reverse("change_scope"), {"account": tenancy.account_x.id, "next": "/"})
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW_SWITCH).exists()


# --- handling ------------------------------------------------------------------------


def test_handling_an_event_records_the_actions_and_the_status(brute_force_event):
    ctx = brute_force_event
    request = HandlingRequest(
        status=EventStatus.HANDLING,
        actions=(ActionChoice("ip", ATTACKER_IP, INBOUND, (ctx.accounts[0].id,), None),),
    )
    with as_request(ctx.analyst):
        handle_event(ctx.scope, ctx.event, request, cause=feed.Cause.by_user(ctx.analyst))

    entry = only(AuditAction.HANDLING_HANDLE)
    assert entry.actor_name == "ann" and entry.source_address == "192.0.2.44"
    assert entry.target_id == str(ctx.event.pk) and entry.account_id == ctx.event.account_id
    assert entry.changes == {"status": [EventStatus.UNHANDLED, EventStatus.HANDLING]}
    assert entry.details["actions"][0]["scenario"] == INBOUND
    # One entry for the whole action, not another for its status change.
    assert not AuditEntry.objects.filter(action=AuditAction.HANDLING_STATUS).exists()


def test_a_refused_handling_writes_nothing(brute_force_event):
    ctx = brute_force_event
    request = HandlingRequest(status=EventStatus.HANDLED)
    with pytest.raises(PermissionDenied):
        handle_event(scope_of(ctx.viewer), ctx.event, request, cause=feed.Cause.by_user(ctx.viewer))
    assert not AuditEntry.objects.filter(action__startswith="handling.").exists()


def test_status_and_risk_changes_are_recorded(brute_force_event):
    ctx = brute_force_event
    change_event_status(ctx.event, EventStatus.HANDLED, user=ctx.analyst, note="false positive")
    change_event_risk(ctx.event, 1, cause=feed.Cause.by_user(ctx.analyst))

    status = only(AuditAction.HANDLING_STATUS)
    assert status.actor_name == "ann"
    assert status.changes == {"status": [EventStatus.UNHANDLED, EventStatus.HANDLED]}
    assert status.details == {"note": "false positive"}
    assert only(AuditAction.HANDLING_RISK).changes == {"risk": [3, 1]}


def test_a_status_the_rules_refuse_writes_nothing(brute_force_event):
    from events.services import EventStatusError

    with pytest.raises(EventStatusError):
        change_event_status(
            brute_force_event.event, EventStatus.FAILED, user=brute_force_event.analyst
        )
    assert not AuditEntry.objects.filter(action__startswith="handling.").exists()


def test_retry_and_unblock_of_a_task_are_recorded(
    brute_force_event, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    SimulatedFailure.objects.create(account=ctx.accounts[0], target=ATTACKER_IP)
    request = HandlingRequest(
        status=EventStatus.HANDLING,
        actions=(ActionChoice("ip", ATTACKER_IP, INBOUND, (ctx.accounts[0].id,), None),),
    )
    cause = feed.Cause.by_user(ctx.analyst)
    with django_capture_on_commit_callbacks(execute=True):
        handle_event(ctx.scope, ctx.event, request, cause=cause)
    task = HandlingTask.objects.get()
    assert task.status == TaskStatus.FAILED
    SimulatedFailure.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        disposal_services.retry_task(ctx.scope, task, cause=cause)
    retry = only(AuditAction.HANDLING_RETRY)
    assert retry.actor_name == "ann"
    assert retry.changes == {"status": [TaskStatus.FAILED, TaskStatus.PENDING]}

    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    disposal_services.unblock_task(ctx.scope, task, cause=cause)
    unblock = only(AuditAction.HANDLING_UNBLOCK)
    assert unblock.changes == {"status": [TaskStatus.SUCCEEDED, TaskStatus.UNBLOCKING]}


# --- whitelist ---------------------------------------------------------------------


def _group(tenancy, **fields):
    values = {
        "name": "Known scanner",
        "scenario": "web_attack",
        "conditions": [ConditionSpec("source_ip", "equals", "192.0.2.1")],
        "is_global": False,
        "account_ids": [tenancy.account_a.id],
    } | fields
    return GroupSpec(**values)


def test_whitelist_group_changes_are_recorded_with_what_changed(tenancy):
    scope = scope_of(tenancy.alice)
    with as_request(tenancy.alice):
        group = save_group(_group(tenancy), scope, allow_global=True, user=tenancy.alice)
        save_group(_group(tenancy, name="Known scanners"), scope, allow_global=True, group=group)
        set_group_enabled(group, False, scope, allow_global=True)
        delete_group(group, scope, allow_global=True)

    created = only(AuditAction.WHITELIST_CREATE)
    assert created.actor_name == "alice" and created.account_id == tenancy.account_a.id
    assert created.changes["conditions"] == [None, ["source_ip equals 192.0.2.1"]]
    updated = only(AuditAction.WHITELIST_UPDATE)
    assert updated.changes == {"name": ["Known scanner", "Known scanners"]}
    assert only(AuditAction.WHITELIST_ENABLE).changes == {"enabled": [True, False]}
    deleted = only(AuditAction.WHITELIST_DELETE)
    assert deleted.target_label == "Known scanners"
    assert deleted.changes["name"] == ["Known scanners", None]


def test_an_invalid_whitelist_group_writes_nothing(tenancy):
    with pytest.raises(GroupValidationError):
        save_group(_group(tenancy, name=""), scope_of(tenancy.alice), allow_global=True)
    assert not AuditEntry.objects.filter(action__startswith="whitelist.").exists()


# --- detection rules -----------------------------------------------------------------


def test_sigma_rule_changes_are_recorded(tenancy):
    with as_request(tenancy.alice):
        rule = save_custom_rule(
            tenancy.org, DetectionRuleSpec(SIGMA_RULE, "suspicious_process"), user=tenancy.alice
        )
        save_custom_rule(
            tenancy.org,
            DetectionRuleSpec(
                SIGMA_RULE.replace("level: high", "level: low"), "suspicious_process"
            ),
            rule=rule,
        )
        set_rule_enabled(rule, False, tenancy.org)
        rule_id = rule.pk
        delete_custom_rule(rule)

    created = only(AuditAction.DETECTION_RULE_CREATE)
    assert created.actor_name == "alice" and created.target_label == "Netcat listener"
    assert created.organisation_id == tenancy.org.id
    updated = only(AuditAction.DETECTION_RULE_UPDATE)
    assert updated.changes["level"] == ["high", "low"]
    assert only(AuditAction.DETECTION_RULE_ENABLE).changes == {"enabled": [True, False]}
    assert only(AuditAction.DETECTION_RULE_DELETE).target_id == str(rule_id)


def test_an_invalid_sigma_rule_writes_nothing(tenancy):
    with pytest.raises(InvalidDetectionRule):
        save_custom_rule(tenancy.org, DetectionRuleSpec("title: [unclosed"))
    assert not AuditEntry.objects.filter(action__startswith="detection_rule.").exists()


def test_aggregation_rule_changes_are_recorded(tenancy):
    spec = aggregation_rules.AggregationRuleSpec(
        name="Same attacker", group_by=("attacker_ip",), event_name_template="Attacks"
    )
    rule = aggregation_rules.save_custom_rule(tenancy.org, spec)
    predefined = AggregationRule.objects.predefined().first()
    set_rule_enabled(predefined, False, tenancy.org)

    created = only(AuditAction.AGGREGATION_RULE_CREATE)
    assert created.target_id == str(rule.pk) and created.actor_kind == ActorKind.SYSTEM
    assert created.changes["name"] == [None, "Same attacker"]
    switched = only(AuditAction.AGGREGATION_RULE_ENABLE)
    assert switched.target_id == str(predefined.pk)
    assert switched.organisation_id == tenancy.org.id

    with pytest.raises(RuleValidationError):
        aggregation_rules.save_custom_rule(
            tenancy.org,
            aggregation_rules.AggregationRuleSpec(name="", group_by=(), event_name_template=""),
            rule=rule,
        )
    assert not AuditEntry.objects.filter(action=AuditAction.AGGREGATION_RULE_UPDATE).exists()


# --- playbooks and automated rules ------------------------------------------------------


def test_playbook_changes_are_recorded(tenancy):
    scope = scope_of(tenancy.alice)
    steps = [{"kind": "set_risk", "params": {"risk": 3}}]
    with as_request(tenancy.alice):
        playbook = save_playbook(scope, PlaybookSpec("Raise", "", steps), user=tenancy.alice)
        save_playbook(
            scope,
            PlaybookSpec("Raise", "", [{"kind": "set_risk", "params": {"risk": 2}}]),
            user=tenancy.alice,
            playbook=playbook,
        )
    assert only(AuditAction.PLAYBOOK_CREATE).changes["version"] == [None, 1]
    updated = only(AuditAction.PLAYBOOK_UPDATE)
    assert updated.changes["version"] == [1, 2]
    assert updated.actor_name == "alice"

    with pytest.raises(PlaybookError):
        save_playbook(scope, PlaybookSpec("", "", steps), user=tenancy.alice, playbook=playbook)
    assert AuditEntry.objects.filter(action__startswith="playbook.").count() == 2


RAISE_RISK = {
    "name": "Raise risk of new events",
    "trigger": Trigger.EVENT_CREATED,
    "action": RuleAction.SET_RISK,
    "parameters": {"risk": 3},
}


def test_automated_rule_changes_are_recorded(tenancy):
    scope = scope_of(tenancy.alice)
    with as_request(tenancy.alice):
        rule = automation.save_rule(scope, RAISE_RISK, user=tenancy.alice)
        automation.save_rule(scope, {**RAISE_RISK, "enabled": False}, rule=rule)
        automation.save_rule(scope, {**RAISE_RISK, "enabled": False, "position": 5}, rule=rule)
        automation.delete_rule(rule)

    created = only(AuditAction.AUTOMATED_RULE_CREATE)
    assert created.actor_name == "alice" and created.target_label == RAISE_RISK["name"]
    assert only(AuditAction.AUTOMATED_RULE_ENABLE).changes == {"enabled": [True, False]}
    assert only(AuditAction.AUTOMATED_RULE_UPDATE).changes == {"position": [0, 5]}
    assert only(AuditAction.AUTOMATED_RULE_DELETE).target_id == str(created.target_id)
    assert not AutomationRule.objects.exists()


def test_an_invalid_automated_rule_writes_nothing(tenancy):
    with pytest.raises(automation.RuleInvalid):
        automation.save_rule(scope_of(tenancy.alice), {**RAISE_RISK, "name": ""})
    assert not AuditEntry.objects.filter(action__startswith="automated_rule.").exists()


def test_what_an_automated_rule_does_is_recorded_as_the_automation(brute_force_event):
    ctx = brute_force_event
    rule = AutomationRule.objects.create(organisation=ctx.event.account.organisation, **RAISE_RISK)
    rule.parameters = {"risk": 1}
    rule.save()
    change = EventChange.objects.filter(event=ctx.event).first()
    # Whoever's request or worker runs it, the rule acted.
    with as_request(ctx.analyst):
        automation.fire(rule, ctx.event, change)

    entry = only(AuditAction.HANDLING_RISK)
    assert entry.actor_kind == ActorKind.AUTOMATION
    assert entry.actor_name == 'automated rule "Raise risk of new events"'
    assert entry.actor_id is None


def test_the_kill_switch_is_recorded(tenancy):
    automation.set_paused(scope_of(tenancy.alice), True, user=tenancy.alice)
    automation.set_paused(scope_of(tenancy.alice), True, user=tenancy.alice)
    assert only(AuditAction.AUTOMATION_PAUSE).changes == {"paused": [False, True]}


# --- keys ------------------------------------------------------------------------------


def test_api_key_creation_and_revocation_are_recorded(tenancy):
    with as_request(tenancy.alice):
        api_key, secret = services.create_api_key(
            organisation=tenancy.org,
            account=tenancy.account_a,
            name="SIEM",
            created_by=tenancy.alice,
        )
        services.revoke_api_key(api_key)
        services.revoke_api_key(api_key)  # already revoked: nothing more

    created = only(AuditAction.API_KEY_CREATE)
    assert created.actor_name == "alice" and created.account_id == tenancy.account_a.id
    assert created.changes["name"] == [None, "SIEM"]
    assert secret not in str(created.changes) and api_key.digest not in str(created.changes)
    assert only(AuditAction.API_KEY_REVOKE).target_id == str(api_key.pk)


def test_a_refused_api_key_writes_nothing(tenancy):
    with pytest.raises(PermissionDenied):
        services.create_api_key_in_scope(
            scope_of(tenancy.bob), account=tenancy.account_a, name="no", created_by=tenancy.bob
        )
    assert not AuditEntry.objects.filter(action__startswith="api_key.").exists()


def test_an_api_key_is_the_actor_of_what_it_does(tenancy):
    api_key, _ = services.create_api_key(organisation=tenancy.org, account=None, name="robot")
    request = RequestFactory().get("/api/v1/", REMOTE_ADDR="203.0.113.80")
    request.api_key = api_key
    with audit.request_context(request):
        automation.set_paused(services.scope_for_api_key(api_key), True, user=None)
    entry = only(AuditAction.AUTOMATION_PAUSE)
    assert entry.actor_kind == ActorKind.API_KEY and "robot" in entry.actor_name
    assert entry.source_address == "203.0.113.80"


def test_access_key_creation_and_revocation_are_recorded(tenancy):
    with as_request(tenancy.bob):
        key, secret = cloudsiem_services.create_access_key(tenancy.bob, name="script")
        cloudsiem_services.revoke(key)
    created = only(AuditAction.ACCESS_KEY_CREATE)
    assert created.actor_name == "bob" and created.organisation_id == tenancy.org.id
    assert created.target_label == key.access_key_id
    assert secret not in str(created.changes)
    assert only(AuditAction.ACCESS_KEY_REVOKE).changes["revoked_at"][0] is None


def test_an_inactive_users_access_key_writes_nothing(tenancy):
    tenancy.bob.is_active = False
    with pytest.raises(cloudsiem_services.AccessKeyError):
        cloudsiem_services.create_access_key(tenancy.bob)
    assert not AuditEntry.objects.filter(action__startswith="access_key.").exists()


def test_outside_a_request_the_system_acts(tenancy):
    cloudsiem_services.create_access_key_for_username("bob")
    entry = only(AuditAction.ACCESS_KEY_CREATE)
    assert entry.actor_kind == ActorKind.SYSTEM and entry.source_address is None


def test_an_unknown_action_is_refused(tenancy):
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit.record("nothing.happened")


def test_forged_headers_never_make_an_entry_fail(tenancy, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="not-an-address",
        HTTP_USER_AGENT="agent\x00with nul",
        HTTP_X_REQUEST_ID="req-\x0042",
    )
    request.user = tenancy.alice
    with audit.request_context(request):
        entry = audit.record(
            AuditAction.WHITELIST_UPDATE,
            target_label="name\x00",
            changes={"value": ["a\x00", "b"]},
            details={"typed": "\\u0000 stays as typed"},
        )
    entry.refresh_from_db()
    assert entry.source_address is None
    assert (entry.user_agent, entry.request_id) == ("agentwith nul", "req-42")
    assert entry.target_label == "name" and entry.changes == {"value": ["a", "b"]}
    assert entry.details == {"typed": "\\u0000 stays as typed"}


def test_the_address_comes_from_the_trusted_proxy_and_the_request_id_from_its_header(
    tenancy, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.23",
        HTTP_X_REQUEST_ID="abc-123",
    )
    request.user = tenancy.alice
    with audit.request_context(request):
        entry = audit.record(AuditAction.WHITELIST_UPDATE)
    assert (entry.source_address, entry.request_id) == ("198.51.100.23", "abc-123")


def test_switching_an_automated_rule_records_it_once(tenancy):
    rule = automation.save_rule(scope_of(tenancy.alice), RAISE_RISK)
    automation.set_rule_enabled(rule, False)
    automation.set_rule_enabled(rule, False)
    assert only(AuditAction.AUTOMATED_RULE_ENABLE).changes == {"enabled": [True, False]}
