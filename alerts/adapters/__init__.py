"""Ingestion adapters: cloud products' log-delivery records mapped onto our native format.

``FORMATS`` maps each ``?format=`` name of the ingestion API to its adapter.
An adapter's ``kind`` says whether it produces native alerts or native logs;
``adapter.to_native(record, default_account=uid)`` returns the native dict
(with the original record, verbatim, under ``raw``) or raises
``AdapterError`` naming the record field at fault. ``NotAnAttackRecord``, a
kind of ``AdapterError``, marks a valid record that holds no attack (a plain
WAF access line, a firewall session no IPS rule matched), so the caller can
choose to skip it or store it with the matching log format instead.
"""

from alerts.adapters.base import (
    MAX_VALUE_LENGTH,
    NAIVE_TIME_ZONE,
    Adapter,
    AdapterError,
    NotAnAttackRecord,
)
from alerts.adapters.cloud_firewall import CloudFirewallAlertAdapter, CloudFirewallTrafficAdapter
from alerts.adapters.host_logs import (
    BruteForceLogAdapter,
    LoginLogAdapter,
    NetworkLogAdapter,
    ProcessLogAdapter,
)
from alerts.adapters.security_center import SecurityCenterAlertAdapter
from alerts.adapters.waf import WafAccessLogAdapter, WafAlertAdapter

FORMATS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        SecurityCenterAlertAdapter(),
        ProcessLogAdapter(),
        NetworkLogAdapter(),
        LoginLogAdapter(),
        BruteForceLogAdapter(),
        WafAlertAdapter(),
        WafAccessLogAdapter(),
        CloudFirewallAlertAdapter(),
        CloudFirewallTrafficAdapter(),
    )
}

__all__ = [
    "FORMATS",
    "MAX_VALUE_LENGTH",
    "NAIVE_TIME_ZONE",
    "Adapter",
    "AdapterError",
    "NotAnAttackRecord",
]
