"""Every supported operation driven through the official, unmodified SDK
against the live server: what scripts written for the cloud API do."""

import json
import time
from datetime import timedelta

import pytest
from alibabacloud_cloud_siem20220616 import models as siem
from alibabacloud_tea_openapi.exceptions import ClientException

from alerts.models import Entity
from disposal.models import HandlingPolicy, HandlingTask, TaskStatus
from events.models import EventStatus, SecurityEvent, WhitelistGroupOrigin
from secops.enums import Role
from soar.models import AutomationRule
from tests import factories
from tests.cloudsiem.conftest import ATTACKER_IP
from tests.conftest import ALERT_TIME
from whitelist.models import RuleGroup

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]

REGION = "cn-hangzhou"
START = int((ALERT_TIME - timedelta(days=1)).timestamp() * 1000)
END = int((ALERT_TIME + timedelta(days=1)).timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000) + 60_000


def _refused(call) -> ClientException:
    with pytest.raises(ClientException) as refused:
        call()
    return refused.value


def test_it_lists_filters_and_reads_events(sdk, brute_force_event):
    event = brute_force_event.event
    client = sdk(brute_force_event.analyst)

    listed = client.describe_cloud_siem_events(
        siem.DescribeCloudSiemEventsRequest(
            current_page=1,
            page_size=10,
            region_id=REGION,
            start_time=START,
            end_time=END,
            thread_level=["serious", "suspicious"],
            status=0,
            event_name="logon attempts",
        )
    ).body
    high_only = client.describe_cloud_siem_events(
        siem.DescribeCloudSiemEventsRequest(
            current_page=1, page_size=10, start_time=START, end_time=END, thread_level=["remind"]
        )
    ).body
    detail = client.describe_cloud_siem_event_detail(
        siem.DescribeCloudSiemEventDetailRequest(incident_uuid=str(event.id), region_id=REGION)
    ).body
    counts = client.describe_event_count_by_threat_level(
        siem.DescribeEventCountByThreatLevelRequest(start_time=START, end_time=END)
    ).body

    assert listed.success is True and listed.code == 200 and listed.request_id
    assert listed.data.page_info.total_count == 1
    row = listed.data.response_data[0]
    assert (row.incident_uuid, row.threat_level, row.status) == (str(event.id), "serious", 0)
    assert row.alert_num == event.alert_count and row.asset_num == 1
    assert row.aliuid == int(brute_force_event.accounts[0].uid)
    assert row.data_sources == ["sas"]
    assert high_only.data.page_info.total_count == 0 and high_only.data.response_data == []
    assert detail.data.incident_name == event.name
    assert detail.data.gmt_create.startswith(ALERT_TIME.strftime("%Y-%m-%d"))
    # The rule of logon attempts and the one of high-risk host alerts made one event each.
    assert counts.data.event_num == 2 and counts.data.high_level_event_num == 2
    assert counts.data.undeal_event_num == 2
    assert counts.data.event_daily_num[0].date == ALERT_TIME.date().isoformat()


def test_it_reads_alerts_sources_and_entities(sdk, brute_force_event):
    event = brute_force_event.event
    client = sdk(brute_force_event.analyst)
    incident = str(event.id)

    with_event = client.describe_alerts_with_event(
        siem.DescribeAlertsWithEventRequest(
            incident_uuid=incident, current_page=1, page_size=20, level=["serious"]
        )
    ).body
    alerts = client.describe_alerts(
        siem.DescribeAlertsRequest(
            current_page=1, page_size=10, start_time=START, end_time=END, level=["serious"]
        )
    ).body
    sources = client.describe_alert_source_with_event(
        siem.DescribeAlertSourceWithEventRequest(incident_uuid=incident)
    ).body
    entities = client.list_entities(
        siem.ListEntitiesRequest(incident_uuid=incident, current_page=1, page_size=10)
    ).body
    ip_only = client.list_entities(
        siem.ListEntitiesRequest(
            incident_uuid=incident, entity_type="ip", current_page=1, page_size=10
        )
    ).body
    ip = ip_only.data.response_data[0]
    info = client.describe_entity_info(
        siem.DescribeEntityInfoRequest(entity_id=int(ip.entity_id), incident_uuid=incident)
    ).body

    assert with_event.data.page_info.total_count == 1
    alert = with_event.data.response_data[0]
    assert alert.alert_name == "SSH brute force" and alert.alert_level == "serious"
    assert alert.incident_uuid == incident and alert.alert_status == "0"
    assert {e["value"] for e in json.loads(alert.entity_list)} >= {ATTACKER_IP}
    # The analyst's view is account A: the alerts of B and D are not in it.
    assert alerts.data.page_info.total_count == 1
    assert [(s.source, s.source_name) for s in sources.data] == [("sas", "Security Center")]
    assert {e.entity_type for e in entities.data.response_data} == {"ip", "file", "process"}
    assert ip_only.data.page_info.total_count == 1 and ip.entity_name == ATTACKER_IP
    assert info.data.entity_type == "ip" and info.data.entity_info["value"] == ATTACKER_IP
    assert info.data.tip_info == {"malicious": False, "sources": []}


def test_it_handles_an_event_with_a_block_scenario(sdk, brute_force_event, tenancy):
    event = brute_force_event.event
    # A global administrator in the Global Account View handles it in two accounts.
    client = sdk(tenancy.alice)
    incident = str(event.id)
    options = client.describe_dispose_and_playbook(
        siem.DescribeDisposeAndPlaybookRequest(
            incident_uuid=incident, entity_type="ip", current_page=1, page_size=10, role_type=1
        )
    ).body
    ip = options.data.response_data[0]
    uids = [a.uid for a in brute_force_event.accounts]

    posted = client.post_event_dispose_and_whiterule_list(
        siem.PostEventDisposeAndWhiteruleListRequest(
            incident_uuid=incident,
            role_type=1,
            status=10,
            remark="blocked by script",
            event_dispose=json.dumps(
                [
                    {
                        "playbookUuid": "block-ip-cloud-firewall-inbound",
                        "entityUuid": ip.entity_uuid,
                        "scope": uids[:2],
                        "validityDays": 3,
                    }
                ]
            ),
        )
    ).body
    dispose = client.describe_event_dispose(
        siem.DescribeEventDisposeRequest(incident_uuid=incident)
    ).body
    strategies = client.list_dispose_strategy(
        siem.ListDisposeStrategyRequest(
            current_page=1,
            page_size=10,
            start_time=0,
            end_time=_now_ms(),
            incident_uuid=incident,
            role_type=1,
        )
    ).body
    grouped = client.list_dispose_strategy(
        siem.ListDisposeStrategyRequest(
            current_page=1,
            page_size=10,
            start_time=0,
            end_time=_now_ms(),
            role_type=1,
            group_by="playbook",
            status=2,  # succeeded
        )
    ).body
    none_failed = client.list_dispose_strategy(
        siem.ListDisposeStrategyRequest(
            current_page=1, page_size=10, start_time=0, end_time=_now_ms(), role_type=1, status=3
        )
    ).body
    used = client.describe_dispose_strategy_playbook(
        siem.DescribeDisposeStrategyPlaybookRequest(start_time=0, end_time=_now_ms())
    ).body

    assert sorted(ip.scope) == sorted(uids)
    assert ip.dispose == ATTACKER_IP and ip.opcode_set == ["block-ip-cloud-firewall-inbound"]
    assert "block-ip-waf" in {p.name for p in ip.playbook_list}
    assert posted.success and posted.data == incident
    # The same policy and tasks as the Handle panel makes: one policy, a task per account.
    policy = HandlingPolicy.objects.get(source_event=event)
    assert policy.scenario.key == "block-ip-cloud-firewall-inbound" and policy.validity_days == 3
    tasks = HandlingTask.objects.filter(policy=policy)
    assert tasks.count() == 2 and {t.status for t in tasks} == {TaskStatus.SUCCEEDED}
    event.refresh_from_db()
    assert event.status == EventStatus.HANDLED
    assert dispose.data.status == 10 and dispose.data.remark == "blocked by script"
    assert dispose.data.event_dispose[0]["tasks"] == {"succeeded": 2}
    row = strategies.data.response_data[0]
    assert strategies.data.page_info.total_count == 1
    assert (row.playbook_uuid, row.entity_type, row.effective_status) == (
        "block-ip-cloud-firewall-inbound",
        "ip",
        1,
    )
    assert sorted(row.scope) == sorted(uids[:2])
    assert [
        (g.group_key, g.total_count, g.success_count, g.failed_count) for g in grouped.data.groups
    ] == [("block-ip-cloud-firewall-inbound", 1, 2, 0)]
    assert grouped.data.page_info.total_count == 1
    assert none_failed.data.page_info.total_count == 0 and none_failed.data.groups == []
    assert [p.playbook_uuid for p in used.data] == ["block-ip-cloud-firewall-inbound"]


def test_failed_is_refused_and_bad_input_names_the_field(sdk, brute_force_event):
    client = sdk(brute_force_event.analyst)
    incident = str(brute_force_event.event.id)

    failed = _refused(
        lambda: client.post_event_dispose_and_whiterule_list(
            siem.PostEventDisposeAndWhiteruleListRequest(incident_uuid=incident, status=5)
        )
    )
    no_status = _refused(
        lambda: client.post_event_dispose_and_whiterule_list(
            siem.PostEventDisposeAndWhiteruleListRequest(incident_uuid=incident)
        )
    )
    no_incident = _refused(
        lambda: client.describe_cloud_siem_event_detail(siem.DescribeCloudSiemEventDetailRequest())
    )
    bad_scenario = _refused(
        lambda: client.post_event_dispose_and_whiterule_list(
            siem.PostEventDisposeAndWhiteruleListRequest(
                incident_uuid=incident,
                status=1,
                event_dispose=json.dumps([{"playbookUuid": "nope", "entityValue": ATTACKER_IP}]),
            )
        )
    )

    assert (failed.status_code, failed.code) == (400, "InvalidParameter")
    assert "Status" in failed.message and "Failed" in failed.message
    assert (no_status.code, no_incident.code) == ("MissingParameter", "MissingParameter")
    assert "Status" in no_status.message and "IncidentUuid" in no_incident.message
    assert bad_scenario.code == "InvalidParameter" and "EventDispose[0]" in bad_scenario.message
    assert not HandlingPolicy.objects.exists()
    assert SecurityEvent.objects.get(id=incident).status == EventStatus.UNHANDLED


def test_a_viewer_cannot_handle(sdk, brute_force_event):
    client = sdk(brute_force_event.viewer)
    incident = str(brute_force_event.event.id)

    refused = _refused(
        lambda: client.post_event_dispose_and_whiterule_list(
            siem.PostEventDisposeAndWhiteruleListRequest(incident_uuid=incident, status=10)
        )
    )
    readable = client.describe_cloud_siem_event_detail(
        siem.DescribeCloudSiemEventDetailRequest(incident_uuid=incident)
    ).body

    assert (refused.status_code, refused.code) == (403, "Forbidden")
    assert readable.data.status == 0
    assert SecurityEvent.objects.get(id=incident).status == EventStatus.UNHANDLED


def test_whitelist_rules_from_an_event(sdk, brute_force_event, tenancy):
    event = brute_force_event.event
    admin = factories.make_user(tenancy.org, "ada", accounts=[tenancy.account_a], role=Role.ADMIN)
    client = sdk(admin)
    rule = {
        "alertName": "Known scanner",
        "alertType": "brute_force",
        "expression": {
            "conditions": [
                {"left": {"value": "source_ip"}, "operator": "=", "right": {"value": ATTACKER_IP}}
            ],
            "logic": "and",
        },
    }

    posted = client.post_event_whiterule_list(
        siem.PostEventWhiteruleListRequest(
            incident_uuid=str(event.id), whiterule_list=json.dumps(rule)
        )
    ).body
    group = RuleGroup.objects.get(id=int(posted.data))
    group_accounts = list(group.accounts.all())
    origin = WhitelistGroupOrigin.objects.get(group=group).event
    listed = client.describe_white_rule_list(
        siem.DescribeWhiteRuleListRequest(current_page=1, page_size=10, incident_uuid=str(event.id))
    ).body
    bad = _refused(
        lambda: client.update_white_rule_list(
            siem.UpdateWhiteRuleListRequest(
                white_rule_id=group.id,
                expression=json.dumps(
                    {
                        "conditions": [
                            {
                                "left": {"value": "source_ip"},
                                "operator": "=",
                                "right": {"value": "not an ip"},
                            }
                        ]
                    }
                ),
            )
        )
    )
    client.update_white_rule_list(
        siem.UpdateWhiteRuleListRequest(
            white_rule_id=group.id,
            expression=json.dumps(
                {
                    "conditions": [
                        {
                            "left": {"value": "source_ip"},
                            "operator": "in",
                            "right": {"value": [ATTACKER_IP, "198.51.100.1"]},
                        }
                    ],
                    "logic": "and",
                }
            ),
        )
    )
    updated = list(RuleGroup.objects.get(id=group.id).conditions.values_list("operator", "value"))
    analyst_refused = _refused(
        lambda: sdk(brute_force_event.analyst).delete_white_rule_list(
            siem.DeleteWhiteRuleListRequest(id=group.id)
        )
    )
    client.delete_white_rule_list(siem.DeleteWhiteRuleListRequest(id=group.id))

    assert (group.name, group.scenario, group.is_global) == ("Known scanner", "brute_force", False)
    assert group_accounts == [tenancy.account_a]
    assert origin == event
    row = listed.data.response_data[0]
    assert (row.id, row.alert_type, row.incident_uuid, row.status) == (
        group.id,
        "brute_force",
        str(event.id),
        1,
    )
    condition = row.expression.conditions[0]
    assert (condition.left.value, condition.operator, condition.right.value) == (
        "source_ip",
        "=",
        ATTACKER_IP,
    )
    assert bad.code == "InvalidParameter" and "conditions[0]" in bad.message
    assert updated == [("in_list", f"{ATTACKER_IP}\n198.51.100.1")]
    assert analyst_refused.code == "Forbidden"
    assert not RuleGroup.objects.filter(id=group.id).exists()


def test_automated_response_rules(sdk, brute_force_event, tenancy):
    client = sdk(tenancy.alice)

    created = client.post_automate_response_config(
        siem.PostAutomateResponseConfigRequest(
            rule_name="block-bad-ip",
            auto_response_type="event",
            action_type="doPlaybook",
            action_config=json.dumps([{"playbookUuid": "block-ip-waf"}]),
            execution_condition=json.dumps(
                [{"left": {"value": "alert_level"}, "operator": "=", "right": {"value": "serious"}}]
            ),
        )
    ).body
    rule = AutomationRule.objects.get(id=int(created.data))
    listed = client.list_automate_response_configs(
        siem.ListAutomateResponseConfigsRequest(current_page=1, page_size=10, rule_name="bad")
    ).body
    client.update_automate_response_config_status(
        siem.UpdateAutomateResponseConfigStatusRequest(ids=json.dumps([rule.id]), in_use=False)
    )
    disabled = AutomationRule.objects.get(id=rule.id).enabled
    invalid = _refused(
        lambda: client.post_automate_response_config(
            siem.PostAutomateResponseConfigRequest(
                rule_name="x",
                action_type="doPlaybook",
                action_config=json.dumps([{"playbookUuid": "no-such-playbook"}]),
            )
        )
    )
    analyst = _refused(
        lambda: sdk(brute_force_event.analyst).delete_automate_response_config(
            siem.DeleteAutomateResponseConfigRequest(id=rule.id)
        )
    )
    client.delete_automate_response_config(siem.DeleteAutomateResponseConfigRequest(id=rule.id))

    assert (rule.trigger, rule.action, rule.playbook.key) == (
        "event_created",
        "run_playbook",
        "block-ip-waf",
    )
    assert rule.conditions == {"all": [{"field": "risk", "operator": "equals", "value": "high"}]}
    row = listed.data.response_data[0]
    assert (row.id, row.status, row.action_type) == (rule.id, 100, "doPlaybook")
    assert json.loads(row.action_config)[0]["playbookUuid"] == "block-ip-waf"
    assert disabled is False
    assert invalid.code == "InvalidParameter" and "ActionConfig.playbookUuid" in invalid.message
    assert analyst.code == "Forbidden"
    assert not AutomationRule.objects.filter(id=rule.id).exists()


def test_role_type_selects_the_view_as_the_console_switch(sdk, brute_force_event, tenancy):
    alice, analyst = sdk(tenancy.alice), sdk(brute_force_event.analyst)

    def total(client, **role):
        return client.describe_cloud_siem_events(
            siem.DescribeCloudSiemEventsRequest(
                current_page=1, page_size=10, start_time=START, end_time=END, **role
            )
        ).body.data.page_info.total_count

    account_b = brute_force_event.accounts[1]
    refused = _refused(lambda: total(analyst, role_type=1))

    # Two events in each of the accounts A, B and D.
    assert total(alice) == 2  # the Current Account View of account A
    # The Global Account View: every managed account.
    assert total(alice, role_type=1) == 6
    assert total(alice, role_type=1, role_for=int(account_b.uid)) == 2
    assert (refused.status_code, refused.code) == (403, "Forbidden")
    # An analyst picks among his own accounts, as with the console's account switch.
    assert total(analyst, role_for=int(account_b.uid)) == 2


def test_an_outsider_gets_nothing_of_another_tenant(sdk, brute_force_event, tenancy):
    outsider = sdk(tenancy.charlie)
    incident = str(brute_force_event.event.id)
    entity = Entity.objects.filter(account=tenancy.account_a, type="ip").first()

    listed = outsider.describe_cloud_siem_events(
        siem.DescribeCloudSiemEventsRequest(
            current_page=1, page_size=10, start_time=START, end_time=END
        )
    ).body
    alerts = outsider.describe_alerts(
        siem.DescribeAlertsRequest(current_page=1, page_size=10, start_time=START, end_time=END)
    ).body
    rules = outsider.describe_white_rule_list(
        siem.DescribeWhiteRuleListRequest(current_page=1, page_size=10)
    ).body
    hidden = [
        _refused(
            lambda: outsider.describe_cloud_siem_event_detail(
                siem.DescribeCloudSiemEventDetailRequest(incident_uuid=incident)
            )
        ),
        _refused(
            lambda: outsider.describe_alerts_with_event(
                siem.DescribeAlertsWithEventRequest(
                    incident_uuid=incident, current_page=1, page_size=10
                )
            )
        ),
        _refused(
            lambda: outsider.list_entities(
                siem.ListEntitiesRequest(incident_uuid=incident, current_page=1, page_size=10)
            )
        ),
        _refused(
            lambda: outsider.describe_entity_info(
                siem.DescribeEntityInfoRequest(entity_id=entity.id)
            )
        ),
        _refused(
            lambda: outsider.post_event_dispose_and_whiterule_list(
                siem.PostEventDisposeAndWhiteruleListRequest(incident_uuid=incident, status=10)
            )
        ),
        _refused(
            lambda: outsider.post_event_whiterule_list(
                siem.PostEventWhiteruleListRequest(incident_uuid=incident, whiterule_list="{}")
            )
        ),
    ]
    other_org_global = _refused(
        lambda: outsider.describe_cloud_siem_events(
            siem.DescribeCloudSiemEventsRequest(
                current_page=1, page_size=10, role_for=int(tenancy.account_a.uid)
            )
        )
    )

    assert listed.data.page_info.total_count == 0 and listed.data.response_data == []
    assert alerts.data.page_info.total_count == 0 and rules.data.response_data == []
    assert {(e.status_code, e.code) for e in hidden} == {(404, "EntityNotExist")}
    assert other_org_global.code == "Forbidden"
    assert SecurityEvent.objects.get(id=incident).status == EventStatus.UNHANDLED
