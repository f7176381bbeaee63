"""The Alibaba Cloud connector against a local stand-in of the clouds
(tests/disposal/alibaba_stub.py), which verifies every request's ACS3
signature: what each scenario calls with which parameters, undoing, the
errors and whether a retry can help, assuming a RAM role, a handled event
end to end, and the account's connector settings page."""

import json
import logging
import socket
from dataclasses import replace
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from disposal import services
from disposal.connectors import ActionRequest, ConnectorError, alibaba, connector_for
from disposal.handling import ActionChoice, HandlingRequest, handle_event
from disposal.models import AccountConnector, ConnectorKind, HandlingTask, TaskStatus
from disposal.scenarios import BUILT_IN
from events import feed
from events.models import EventStatus
from secops.crypto import decrypt, encrypt
from tests.disposal.alibaba_stub import AlibabaStub
from tests.disposal.conftest import ATTACKER_IP

KEY_ID = "LTAI5tSecopsTestKey"
SECRET = "s3cr3t-AccessKey-value-0123456789"
ROLE_ARN = "acs:ram::1111111111111111:role/secops-response"
WAF_INSTANCE = "waf_v3prepaid_public_cn-test"
WAF_TEMPLATE = "4242"
SCENARIOS = {spec.key: spec for spec in BUILT_IN}
EXPIRES_AT = timezone.now().replace(microsecond=0) + timedelta(days=7)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def stub():
    server = AlibabaStub({KEY_ID: SECRET}).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_cached_role_credentials():
    alibaba.forget_role_credentials()
    yield
    alibaba.forget_role_credentials()


def configure(account, stub, **fields) -> AccountConnector:
    """The account's connector pointed at the stub over plain HTTP."""
    endpoint = stub.endpoint
    values = {
        "kind": ConnectorKind.ALIBABA,
        "access_key_id": KEY_ID,
        "access_key_secret": encrypt(SECRET),
        "cloud_region": "cn-hangzhou",
        "endpoints": {
            "cloudfw": endpoint,
            "sas": endpoint,
            "waf": endpoint,
            "sts": endpoint,
            "protocol": "http",
            "waf_instance_id": WAF_INSTANCE,
            "waf_template_id": WAF_TEMPLATE,
        },
    }
    values.update(fields)
    config, _ = AccountConnector.objects.update_or_create(account=account, defaults=values)
    return config


@pytest.fixture
def account(tenancy, stub):
    configure(tenancy.account_a, stub)
    return tenancy.account_a


def action(account, scenario_key, value=ATTACKER_IP, **fields) -> ActionRequest:
    spec = SCENARIOS[scenario_key]
    defaults = {
        "task_id": 77,
        "account_id": account.id,
        "account_uid": account.uid,
        "cloud_service": spec.cloud_service,
        "operation": spec.operation,
        "entity_type": spec.entity_type,
        "value": value,
        "parameters": dict(spec.parameters),
        "expires_at": EXPIRES_AT if spec.takes_validity else None,
    }
    defaults.update(fields)
    return ActionRequest(**defaults)


def perform(account, request):
    return connector_for(account).perform(request)


def failure(account, request, *, undo=False) -> ConnectorError:
    connector = connector_for(account)
    with pytest.raises(ConnectorError) as caught:
        (connector.undo if undo else connector.perform)(request)
    return caught.value


# --- Cloud Firewall -----------------------------------------------------------------


def test_it_blocks_inbound_traffic_from_the_ip_with_a_cloud_firewall_policy(account, stub):
    result = perform(account, action(account, "block-ip-cloud-firewall-inbound"))

    (call,) = stub.calls
    assert (call.action, call.version) == ("AddControlPolicy", "2017-12-07")
    assert call.access_key_id == KEY_ID  # and the stub verified its signature
    assert call.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={KEY_ID},")
    params = call.params
    assert params["Direction"] == "in"
    assert params["AclAction"] == "drop"
    assert (params["Source"], params["SourceType"]) == (f"{ATTACKER_IP}/32", "net")
    assert (params["Destination"], params["DestinationType"]) == ("0.0.0.0/0", "net")
    assert (params["Proto"], params["ApplicationName"]) == ("ANY", "ANY")
    assert params["NewOrder"] == "1"
    assert params["IpVersion"] == "4"
    assert "task 77" in params["Description"]
    assert result.reference in stub.policies
    assert result.answer["acl_uuid"] == result.reference
    assert result.answer["request_id"]


def test_it_blocks_outbound_traffic_to_the_ip(account, stub):
    perform(account, action(account, "block-ip-cloud-firewall-outbound"))

    params = stub.calls_of("AddControlPolicy")[0].params
    assert params["Direction"] == "out"
    assert (params["Source"], params["SourceType"]) == ("0.0.0.0/0", "net")
    assert (params["Destination"], params["DestinationType"]) == (f"{ATTACKER_IP}/32", "net")


def test_it_blocks_an_ipv6_address_as_a_128_bit_network(account, stub):
    perform(account, action(account, "block-ip-cloud-firewall-inbound", value="2001:db8::7"))

    params = stub.calls_of("AddControlPolicy")[0].params
    assert (params["Source"], params["Destination"]) == ("2001:db8::7/128", "::/0")
    assert params["IpVersion"] == "6"


def test_it_refuses_a_value_that_is_no_ip_without_calling_the_cloud(account, stub):
    error = failure(account, action(account, "block-ip-cloud-firewall-inbound", value="evil"))

    assert not error.retryable
    assert "not an IP address" in error.message
    assert stub.calls == []


def test_undoing_a_cloud_firewall_block_deletes_its_policy(account, stub):
    request = action(account, "block-ip-cloud-firewall-outbound")
    done = perform(account, request)

    connector_for(account).undo(replace(request, reference=done.reference))

    call = stub.calls_of("DeleteControlPolicy")[0]
    assert call.params["AclUuid"] == done.reference
    assert call.params["Direction"] == "out"
    assert stub.policies == {}


def test_undoing_a_policy_the_cloud_no_longer_has_succeeds(account, stub):
    request = action(account, "block-ip-cloud-firewall-inbound", reference="gone-uuid")

    result = connector_for(account).undo(request)

    assert result.answer["already_removed"] is True
    assert result.answer["code"] == "ErrorAclNotExist"


# --- WAF ------------------------------------------------------------------------------


def test_it_blocks_the_ip_with_a_rule_in_the_waf_templates_ip_blacklist(account, stub):
    result = perform(account, action(account, "block-ip-waf"))

    (call,) = stub.calls
    assert (call.action, call.version) == ("CreateDefenseRule", "2021-10-01")
    params = call.params
    assert params["InstanceId"] == WAF_INSTANCE
    assert params["TemplateId"] == WAF_TEMPLATE
    assert params["DefenseType"] == "template"
    assert params["DefenseScene"] == "ip_blacklist"
    assert params["RegionId"] == "cn-hangzhou"
    assert json.loads(params["Rules"]) == [
        {"name": "secops_task_77", "status": 1, "action": "block", "remoteAddr": [ATTACKER_IP]}
    ]
    assert result.reference in stub.waf_rules


def test_outside_the_chinese_mainland_waf_is_called_in_its_international_region(tenancy, stub):
    configure(tenancy.account_b, stub, cloud_region="eu-central-1")

    perform(tenancy.account_b, action(tenancy.account_b, "block-ip-waf"))

    assert stub.calls_of("CreateDefenseRule")[0].params["RegionId"] == "ap-southeast-1"


def test_undoing_a_waf_block_deletes_its_rule(account, stub):
    request = action(account, "block-ip-waf")
    done = perform(account, request)

    connector_for(account).undo(replace(request, reference=done.reference))

    call = stub.calls_of("DeleteDefenseRule")[0]
    assert call.params["RuleIds"] == done.reference
    assert (call.params["InstanceId"], call.params["TemplateId"]) == (WAF_INSTANCE, WAF_TEMPLATE)
    assert stub.waf_rules == {}


def test_a_waf_block_needs_the_instance_and_template_in_the_settings(tenancy, stub):
    config = configure(tenancy.account_a, stub)
    config.endpoints = {k: v for k, v in config.endpoints.items() if not k.startswith("waf_")}
    config.save()

    error = failure(tenancy.account_a, action(tenancy.account_a, "block-ip-waf"))

    assert not error.retryable
    assert "WAF instance id" in error.message
    assert stub.calls == []


# --- Security Center ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "code", "operation_params"),
    [
        (
            "block-ip-security-center",
            "block_ip",
            {"expireTime": int(EXPIRES_AT.timestamp() * 1000)},
        ),
        ("quarantine-file", "quara", None),
        ("kill-process", "kill_process", None),
        (
            "kill-process-and-quarantine",
            "kill_and_quara",
            {"subOperation": "killAndQuaraFileByMd5andPath"},
        ),
    ],
)
def test_it_handles_the_security_center_alerts_that_name_the_entity(
    account, stub, scenario, code, operation_params
):
    request = action(account, scenario, host_uuid="host-0", alert_refs=("8101", "8102"))

    result = perform(account, request)

    (call,) = stub.calls
    assert (call.action, call.version) == ("HandleSecurityEvents", "2018-12-03")
    params = call.params
    assert (params["SecurityEventIds.1"], params["SecurityEventIds.2"]) == ("8101", "8102")
    assert params["OperationCode"] == code
    if operation_params is None:
        assert "OperationParams" not in params
    else:
        assert json.loads(params["OperationParams"]) == operation_params
    assert "task 77" in params["Remark"]
    assert result.reference.isdigit()
    assert result.answer["task_id"] == int(result.reference)


def test_security_center_needs_an_alert_of_its_own_to_act_on(account, stub):
    error = failure(account, action(account, "kill-process", value="/tmp/x", alert_refs=()))

    assert not error.retryable
    assert f"No Security Center alert names this entity in account {account.uid}" in error.message
    assert stub.calls == []


def test_a_security_center_block_cannot_be_lifted_before_its_expiry(account, stub):
    request = action(account, "block-ip-security-center", alert_refs=("8101",), reference="9")

    error = failure(account, request, undo=True)

    assert not error.retryable
    assert "lapses by itself" in error.message
    assert stub.calls == []


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "headers"),
    [
        (400, "Throttling.User", {}),
        (400, "Throttling", {}),
        (429, "Throttling.Api", {"x-acs-retry-after": "1000"}),
        (503, "ServiceUnavailable", {}),
        (500, "InternalError", {}),
    ],
)
def test_throttling_and_unavailable_services_are_retryable(account, stub, status, code, headers):
    stub.fail_next("AddControlPolicy", status, code, "Request was denied.", headers=headers)

    error = failure(account, action(account, "block-ip-cloud-firewall-inbound"))

    assert error.retryable
    assert code in error.message
    assert error.answer["code"] == code


@pytest.mark.parametrize(
    ("scenario", "code", "policy"),
    [
        ("block-ip-cloud-firewall-inbound", "Forbidden.RAM", "AliyunYundunCloudFirewallFullAccess"),
        ("block-ip-waf", "NoPermission", "AliyunYundunWAFFullAccess"),
        ("kill-process", "NoPermission", "AliyunYundunSASFullAccess"),
    ],
)
def test_a_missing_permission_is_not_retryable_and_says_which_policy_to_grant(
    account, stub, scenario, code, policy
):
    action_name = {"cloud_firewall": "AddControlPolicy", "waf": "CreateDefenseRule"}.get(
        SCENARIOS[scenario].cloud_service, "HandleSecurityEvents"
    )
    stub.fail_next(action_name, 403, code, "You are not authorized to do this action.")

    error = failure(account, action(account, scenario, alert_refs=("8101",)))

    assert not error.retryable
    assert code in error.message
    assert f"Grant the RAM user of the AccessKey (or the assumed role) the RAM policy {policy}" in (
        error.message
    )


def test_a_bad_parameter_is_not_retryable(account, stub):
    stub.fail_next("AddControlPolicy", 400, "InvalidParameter", "Source is invalid.")

    error = failure(account, action(account, "block-ip-cloud-firewall-inbound"))

    assert not error.retryable
    assert "InvalidParameter" in error.message and "Source is invalid." in error.message


def test_a_call_that_outlasts_the_timeout_is_retryable(account, stub, settings):
    settings.DISPOSAL_CONNECTOR_TIMEOUT = 1
    stub.fail_next("AddControlPolicy", 200, delay=2.5)

    error = failure(account, action(account, "block-ip-cloud-firewall-inbound"))

    assert error.retryable
    assert "did not answer AddControlPolicy within 1 s" in error.message


def test_an_unreachable_endpoint_is_retryable(tenancy, stub):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    config = configure(tenancy.account_a, stub)
    config.endpoints = {**config.endpoints, "cloudfw": closed}
    config.save()

    error = failure(tenancy.account_a, action(tenancy.account_a, "block-ip-cloud-firewall-inbound"))

    assert error.retryable
    assert "could not be reached" in error.message


def test_a_wrong_secret_is_refused_by_the_signature_check_and_never_repeated(tenancy, stub, caplog):
    wrong = "not-the-right-secret-987654321"
    configure(tenancy.account_a, stub, access_key_secret=encrypt(wrong))
    caplog.set_level(logging.DEBUG)

    error = failure(tenancy.account_a, action(tenancy.account_a, "block-ip-cloud-firewall-inbound"))

    assert not error.retryable
    assert "SignatureDoesNotMatch" in error.message
    assert "Check the AccessKey ID and secret" in error.message
    assert stub.calls == []  # the stub refused it before recording
    for text in (error.message, json.dumps(error.answer), caplog.text):
        assert wrong not in text and SECRET not in text


def test_an_account_without_an_access_key_is_told_to_set_one(tenancy, stub):
    configure(tenancy.account_a, stub, access_key_id="", access_key_secret="")

    error = failure(tenancy.account_a, action(tenancy.account_a, "block-ip-waf"))

    assert not error.retryable
    assert "no Alibaba Cloud AccessKey" in error.message


# --- assuming a RAM role -----------------------------------------------------------


def test_with_a_role_it_assumes_it_and_calls_with_the_temporary_credentials(tenancy, stub):
    configure(tenancy.account_a, stub, role_arn=ROLE_ARN)
    account = tenancy.account_a

    perform(account, action(account, "block-ip-cloud-firewall-inbound"))
    perform(account, action(account, "block-ip-waf"))

    assume, *calls = stub.calls
    assert (assume.action, assume.version) == ("AssumeRole", "2015-04-01")
    assert assume.access_key_id == KEY_ID
    assert assume.params["RoleArn"] == ROLE_ARN
    assert assume.params["RoleSessionName"] == "secops-console"
    assert assume.params["DurationSeconds"] == "3600"
    # Both calls ran as the role, with one AssumeRole: its credentials are reused.
    assert [c.action for c in calls] == ["AddControlPolicy", "CreateDefenseRule"]
    for call in calls:
        assert call.access_key_id.startswith("STS.")
        assert call.security_token == stub.tokens[call.access_key_id]


def test_role_credentials_are_renewed_shortly_before_they_expire(tenancy, stub):
    configure(tenancy.account_a, stub, role_arn=ROLE_ARN)
    account = tenancy.account_a
    perform(account, action(account, "block-ip-cloud-firewall-inbound"))
    for key, credentials in list(alibaba._role_credentials.items()):
        alibaba._role_credentials[key] = replace(
            credentials, expires_at=timezone.now() + timedelta(minutes=2)
        )

    perform(account, action(account, "block-ip-cloud-firewall-inbound"))

    assert [c.action for c in stub.calls].count("AssumeRole") == 2


def test_a_role_that_may_not_be_assumed_says_what_to_grant(tenancy, stub):
    configure(tenancy.account_a, stub, role_arn=ROLE_ARN)
    stub.fail_next("AssumeRole", 403, "NoPermission", "You are not authorized.")

    error = failure(tenancy.account_a, action(tenancy.account_a, "block-ip-waf"))

    assert not error.retryable
    assert ROLE_ARN in error.message
    assert "AliyunSTSAssumeRoleAccess" in error.message
    assert stub.calls_of("CreateDefenseRule") == []


# --- a handled event, end to end -------------------------------------------------------


def handle(ctx, scenario_key, account, validity=7):
    choice = ActionChoice("ip", ATTACKER_IP, scenario_key, (account.id,), validity)
    return handle_event(
        ctx.scope,
        ctx.event,
        HandlingRequest(status=EventStatus.HANDLING, actions=(choice,)),
        cause=feed.Cause.by_user(ctx.analyst),
    )


def test_a_handled_event_blocks_in_the_cloud_and_unblock_deletes_the_policy(
    brute_force_event, stub, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    account = ctx.accounts[0]
    configure(account, stub)

    with django_capture_on_commit_callbacks(execute=True):
        result = handle(ctx, "block-ip-cloud-firewall-inbound", account)

    (task,) = result.tasks
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.connector == ConnectorKind.ALIBABA
    assert list(stub.policies) == [task.external_ref]
    assert stub.policies[task.external_ref]["Source"] == f"{ATTACKER_IP}/32"
    assert f"task {task.pk}" in stub.policies[task.external_ref]["Description"]

    cause = feed.Cause.by_user(ctx.analyst)
    with django_capture_on_commit_callbacks(execute=True):
        services.unblock_task(ctx.scope, task, cause=cause)

    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCKED
    assert stub.calls_of("DeleteControlPolicy")[0].params["AclUuid"] == task.external_ref
    assert stub.policies == {}


def handle_on_security_center(ctx, stub, capture):
    account = ctx.accounts[0]
    configure(account, stub)
    with capture(execute=True):
        result = handle(ctx, "block-ip-security-center", account, validity=3)
    (task,) = result.tasks
    task.refresh_from_db()
    return task


def test_a_security_center_block_of_a_handled_event_expires_with_its_validity(
    brute_force_event, stub, django_capture_on_commit_callbacks
):
    task = handle_on_security_center(brute_force_event, stub, django_capture_on_commit_callbacks)
    call = stub.calls_of("HandleSecurityEvents")[0]
    alert_ids = [v for k, v in call.params.items() if k.startswith("SecurityEventIds.")]
    assert task.status == TaskStatus.SUCCEEDED
    assert task.external_ref == str(stub._next_id)
    assert len(alert_ids) == 1 and alert_ids[0].startswith("alert-")
    assert json.loads(call.params["OperationParams"]) == {
        "expireTime": int(task.expires_at.timestamp() * 1000)
    }

    # Once the validity has ended the block has lapsed in the cloud: expired, no call.
    HandlingTask.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.expire_due() == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.EXPIRED
    assert [c.action for c in stub.calls] == ["HandleSecurityEvents"]


def test_unblocking_a_security_center_block_before_its_expiry_says_when_it_lapses(
    brute_force_event, stub, django_capture_on_commit_callbacks
):
    ctx = brute_force_event
    task = handle_on_security_center(ctx, stub, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        services.unblock_task(ctx.scope, task, cause=feed.Cause.by_user(ctx.analyst))

    task.refresh_from_db()
    assert task.status == TaskStatus.UNBLOCK_FAILED
    assert not task.retryable
    assert "lapses by itself" in task.error
    assert f"{timezone.localtime(task.expires_at):%Y-%m-%d %H:%M}" in task.error


# --- the connector settings page --------------------------------------------------------


def settings_url(account) -> str:
    return reverse("disposal:connector_settings", args=[account.id])


def alibaba_form(**fields) -> dict:
    data = {
        "kind": "alibaba",
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "role_arn": "",
        "cloud_region": "cn-shanghai",
        "waf_instance_id": WAF_INSTANCE,
        "waf_template_id": WAF_TEMPLATE,
        "protocol": "https",
    }
    data.update(fields)
    return data


def test_an_administrator_saves_the_alibaba_settings_with_the_secret_encrypted(tenancy):
    client = tenancy.client_for(tenancy.alice)

    response = client.post(settings_url(tenancy.account_a), alibaba_form(role_arn=ROLE_ARN))

    assert response.status_code == 302
    config = AccountConnector.objects.get(account=tenancy.account_a)
    assert config.kind == ConnectorKind.ALIBABA
    assert config.access_key_secret.startswith("enc1:")
    assert SECRET not in config.access_key_secret
    assert decrypt(config.access_key_secret) == SECRET
    assert config.role_arn == ROLE_ARN
    assert config.cloud_region == "cn-shanghai"
    assert config.endpoints == {"waf_instance_id": WAF_INSTANCE, "waf_template_id": WAF_TEMPLATE}
    assert config.updated_by == tenancy.alice


def test_the_page_never_shows_a_stored_secret_and_a_blank_one_keeps_it(tenancy):
    client = tenancy.client_for(tenancy.alice)
    client.post(settings_url(tenancy.account_a), alibaba_form())
    stored = AccountConnector.objects.get(account=tenancy.account_a).access_key_secret

    html = client.get(settings_url(tenancy.account_a)).content.decode()
    client.post(settings_url(tenancy.account_a), alibaba_form(access_key_secret=""))

    assert SECRET not in html and stored not in html
    assert "Set — leave blank to keep it." in html
    assert KEY_ID in html
    assert AccountConnector.objects.get(account=tenancy.account_a).access_key_secret == stored


def test_a_refused_form_shows_the_error_by_its_field_and_not_the_secret(tenancy):
    client = tenancy.client_for(tenancy.alice)

    response = client.post(
        settings_url(tenancy.account_a), alibaba_form(cloud_region="", protocol="http")
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Choose the account&#x27;s region" in html
    assert 'data-testid="error-cloud_region"' in html
    assert 'data-testid="error-protocol"' in html
    assert SECRET not in html
    assert not AccountConnector.objects.filter(account=tenancy.account_a).exists()


def test_a_new_access_key_id_needs_its_own_secret(tenancy):
    client = tenancy.client_for(tenancy.alice)
    client.post(settings_url(tenancy.account_a), alibaba_form())

    response = client.post(
        settings_url(tenancy.account_a),
        alibaba_form(access_key_id="LTAI5tAnotherKey", access_key_secret=""),
    )

    assert 'data-testid="error-access_key_secret"' in response.content.decode()
    assert AccountConnector.objects.get(account=tenancy.account_a).access_key_id == KEY_ID


def test_the_webhook_settings_keep_their_signing_secret_encrypted(tenancy):
    client = tenancy.client_for(tenancy.alice)

    client.post(
        settings_url(tenancy.account_a),
        {
            "kind": "webhook",
            "webhook_url": "https://soc.example.com/hooks/handling",
            "webhook_secret": "hook-signing-secret",
        },
    )

    config = AccountConnector.objects.get(account=tenancy.account_a)
    assert config.kind == ConnectorKind.WEBHOOK
    assert config.webhook_url == "https://soc.example.com/hooks/handling"
    assert config.webhook_secret.startswith("enc1:")
    assert decrypt(config.webhook_secret) == "hook-signing-secret"


def test_test_connection_reads_one_policy_with_the_saved_settings(tenancy, stub):
    configure(tenancy.account_a, stub, role_arn=ROLE_ARN)
    client = tenancy.client_for(tenancy.alice)

    html = client.post(settings_url(tenancy.account_a), {"action": "check"}).content.decode()

    assert "Connection works" in html
    call = stub.calls_of("DescribeControlPolicy")[0]
    assert (call.params["PageSize"], call.params["CurrentPage"]) == ("1", "1")
    assert call.access_key_id.startswith("STS.")
    assert SECRET not in html


def test_test_connection_shows_the_clouds_refusal(tenancy, stub):
    configure(tenancy.account_a, stub)
    stub.fail_next("DescribeControlPolicy", 403, "Forbidden.RAM", "Not authorized.")
    client = tenancy.client_for(tenancy.alice)

    html = client.post(settings_url(tenancy.account_a), {"action": "check"}).content.decode()

    assert "Connection failed" in html
    assert "Forbidden.RAM" in html and "AliyunYundunCloudFirewallFullAccess" in html


def test_the_overview_links_an_administrator_to_the_connector_settings(tenancy):
    alice = tenancy.client_for(tenancy.alice).get(reverse("home")).content.decode()
    bob = tenancy.client_for(tenancy.bob).get(reverse("home")).content.decode()

    assert settings_url(tenancy.account_a) in alice
    assert settings_url(tenancy.account_a) not in bob


def test_an_analyst_of_the_account_may_not_see_or_change_it(tenancy):
    client = tenancy.client_for(tenancy.bob)

    assert client.get(settings_url(tenancy.account_a)).status_code == 403
    assert client.post(settings_url(tenancy.account_a), alibaba_form()).status_code == 403
    assert not AccountConnector.objects.filter(account=tenancy.account_a).exists()


def test_an_account_outside_the_current_view_does_not_exist(tenancy):
    client = tenancy.client_for(tenancy.alice)  # in the Current Account View of account A

    assert client.get(settings_url(tenancy.account_b)).status_code == 404


def test_it_checks_ownership(tenancy):
    client = tenancy.client_for(tenancy.charlie)

    assert client.get(settings_url(tenancy.account_a)).status_code == 404
    assert client.post(settings_url(tenancy.account_a), alibaba_form()).status_code == 404
    assert client.post(settings_url(tenancy.account_a), {"action": "check"}).status_code == 404
    assert not AccountConnector.objects.filter(account=tenancy.account_a).exists()
