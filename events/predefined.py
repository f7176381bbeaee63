"""The predefined aggregation rules, kept in the database by ``sync_predefined_rules``
(run after every migrate). Their ``key`` is stable; edits here reach existing
installations on the next migrate, except ``enabled``, which is the operator's.
"""

from secops.enums import RiskLevel

DAY = 24 * 3600

PREDEFINED_RULES = [
    {
        "key": "webshell-and-reverse-shell",
        "name": "Web intrusion on one host",
        "description": "A webshell and reverse shell activity on the same host within 24 h: "
        "typically a web exploit that gave the attacker interactive access.",
        "match_sources": ["security_center", "siem"],
        "match_types": ["webshell", "reverse_shell"],
        "group_by": ["asset"],
        "window_seconds": DAY,
        "event_name_template": "Web intrusion on {asset_name}: webshell and reverse shell",
        "event_description_template": "Webshell and reverse shell alerts on host {asset_name} "
        "within 24 h.",
        "risk": RiskLevel.HIGH,
    },
    {
        "key": "brute-force-then-login",
        "name": "Brute force and logon from one IP",
        "description": "Brute-force attempts and suspicious logons from the same source IP "
        "within 24 h: a password attack that may have succeeded.",
        "match_types": ["brute_force", "suspicious_login"],
        "group_by": ["attacker_ip"],
        "window_seconds": DAY,
        "event_name_template": "Brute force and logon attempts from {attacker_ip}",
        "event_description_template": "Brute-force and logon alerts sharing the source IP "
        "{attacker_ip}.",
    },
    {
        "key": "attacker-ip-across-waf-and-firewall",
        "name": "One attacker IP seen by WAF and Cloud Firewall",
        "description": "Alerts of the Web Application Firewall and Cloud Firewall that share "
        "the attacker IP within 24 h.",
        "match_sources": ["waf", "cloud_firewall"],
        "group_by": ["attacker_ip"],
        "window_seconds": DAY,
        "event_name_template": "Network attacks from {attacker_ip}",
        "event_description_template": "WAF and Cloud Firewall alerts from attacker IP "
        "{attacker_ip}.",
    },
    {
        "key": "malicious-file-on-several-hosts",
        "name": "Same malicious file on several hosts",
        "description": "Malicious-file and webshell alerts with the same file hash within 7 "
        "days, on one or many hosts: a spreading sample.",
        "match_types": ["malicious_file", "webshell", "malicious_process"],
        "group_by": ["file_hash"],
        "window_seconds": 7 * DAY,
        "event_name_template": "Malicious file {file_hash} found",
        "event_description_template": "Alerts about the file with hash {file_hash}.",
    },
    {
        "key": "mining-on-host",
        "name": "Cryptomining on a host",
        "description": "Mining processes or mining-pool connections on one host within 24 h.",
        "match_types": ["mining"],
        "group_by": ["asset"],
        "window_seconds": DAY,
        "event_name_template": "Cryptomining on {asset_name}",
        "event_description_template": "Mining activity on host {asset_name}.",
        "risk": RiskLevel.HIGH,
    },
    {
        "key": "high-risk-host-alert",
        "name": "High-risk host alert",
        "description": "Every high-risk alert of Security Center opens an event of its own, so "
        "none waits for others to accumulate.",
        "match_sources": ["security_center"],
        "match_levels": [RiskLevel.HIGH],
        "group_by": ["alert"],
        "window_seconds": DAY,
        "event_name_template": "{alert_name} on {asset_name}",
        "event_description_template": "High-risk alert: {alert_name}.",
    },
    {
        "key": "web-attack-campaign",
        "name": "Web attack campaign",
        "description": "Web attacks blocked or reported by the WAF from one attacker IP within "
        "24 h.",
        "match_sources": ["waf"],
        "match_types": ["web_attack"],
        "group_by": ["attacker_ip"],
        "window_seconds": DAY,
        "event_name_template": "Web attacks from {attacker_ip}",
        "event_description_template": "WAF alerts for requests from {attacker_ip}.",
    },
    {
        "key": "abnormal-network-from-host",
        "name": "Abnormal outbound connections of a host",
        "description": "Abnormal network connections of one host within 24 h (command and "
        "control, scanning, connections to listed IPs).",
        "match_types": ["abnormal_network"],
        "group_by": ["asset"],
        "window_seconds": DAY,
        "event_name_template": "Abnormal network connections from {asset_name}",
        "event_description_template": "Abnormal network connections of host {asset_name}.",
    },
    {
        "key": "rootkit-or-compromised-software",
        "name": "Rootkit or compromised basic software",
        "description": "Rootkit and compromised-software alerts of one host within 7 days.",
        "match_types": ["rootkit", "compromised_software"],
        "group_by": ["asset"],
        "window_seconds": 7 * DAY,
        "event_name_template": "Host {asset_name} may be compromised at system level",
        "event_description_template": "Rootkit or compromised basic software on {asset_name}.",
        "risk": RiskLevel.HIGH,
    },
    {
        "key": "siem-attack-chain-on-host",
        "name": "Attack chain on a host (SIEM)",
        "description": "Every detection of our SIEM rules on one host within 24 h, whatever "
        "the rule: the stages of one intrusion (exploit, shell, download, persistence, "
        "outbound connection) in a single event.",
        "match_sources": ["siem"],
        "group_by": ["asset"],
        "window_seconds": DAY,
        "event_name_template": "Attack activity on {asset_name} detected by SIEM rules",
        "event_description_template": "SIEM detections on host {asset_name} within 24 h.",
    },
    {
        "key": "siem-detection-on-host",
        "name": "SIEM detection on a host",
        "description": "Alerts of one SIEM detection rule on one host within 24 h.",
        "match_sources": ["siem"],
        "group_by": ["alert_name", "asset"],
        "window_seconds": DAY,
        "event_name_template": "{alert_name} on {asset_name}",
        "event_description_template": "Detections of the rule {alert_name} on {asset_name}.",
    },
    {
        "key": "suspicious-logins-of-user",
        "name": "Suspicious logons of one user",
        "description": "Suspicious logons of the same user on one host within 24 h.",
        "match_types": ["suspicious_login"],
        "group_by": ["user", "asset"],
        "window_seconds": DAY,
        "event_name_template": "Suspicious logons of {user} on {asset_name}",
        "event_description_template": "Unusual logons of user {user} on host {asset_name}.",
    },
    {
        "key": "malicious-processes-on-host",
        "name": "Malicious processes on a host",
        "description": "Malicious-process alerts of one host within 24 h.",
        "match_types": ["malicious_process"],
        "group_by": ["asset"],
        "window_seconds": DAY,
        "event_name_template": "Malicious processes on {asset_name}",
        "event_description_template": "Malicious processes started on host {asset_name}.",
    },
]


def sync_predefined_rules(**_signal_kwargs) -> None:
    from events.models import AggregationRule

    for spec in PREDEFINED_RULES:
        defaults = {
            "match_sources": [],
            "match_types": [],
            "match_levels": [],
            "name_pattern": "",
            "risk": None,
            **{k: v for k, v in spec.items() if k != "key"},
        }
        defaults["match_levels"] = [int(level) for level in defaults["match_levels"]]
        AggregationRule.objects.update_or_create(
            key=spec["key"], organisation=None, defaults=defaults
        )
