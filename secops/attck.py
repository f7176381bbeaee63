"""The MITRE ATT&CK (Enterprise) tactics, and the techniques the console's own
mappings use, with the tactics each belongs to.

Alerts carry a tactic and a technique: the products send them (as ids such
as ``TA0001`` or as names), and the console's own mappings give them (the
WAF adapter, the predefined Sigma rules' tags, the demo data). A mapping
pairs a technique with a tactic it belongs to in ATT&CK; a test checks every
mapping of the code base against this table, so a technique added to a
mapping is added here first, from ATT&CK's own page.
"""

# Tactic id -> name, in kill-chain order.
TACTICS = {
    "TA0043": "Reconnaissance",
    "TA0042": "Resource Development",
    "TA0001": "Initial Access",
    "TA0002": "Execution",
    "TA0003": "Persistence",
    "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0007": "Discovery",
    "TA0008": "Lateral Movement",
    "TA0009": "Collection",
    "TA0011": "Command and Control",
    "TA0010": "Exfiltration",
    "TA0040": "Impact",
}
TACTIC_NAMES = tuple(TACTICS.values())
_TACTIC_IDS = {name: tactic_id for tactic_id, name in TACTICS.items()}

# Technique id -> (name, the tactics it belongs to).
TECHNIQUES = {
    "T1014": ("Rootkit", ("Defense Evasion",)),
    "T1033": ("System Owner/User Discovery", ("Discovery",)),
    "T1053.003": (
        "Scheduled Task/Job: Cron",
        ("Execution", "Persistence", "Privilege Escalation"),
    ),
    "T1059": ("Command and Scripting Interpreter", ("Execution",)),
    "T1059.004": ("Command and Scripting Interpreter: Unix Shell", ("Execution",)),
    "T1070.002": ("Indicator Removal: Clear Linux or Mac System Logs", ("Defense Evasion",)),
    "T1070.003": ("Indicator Removal: Clear Command History", ("Defense Evasion",)),
    "T1071": ("Application Layer Protocol", ("Command and Control",)),
    "T1078": (
        "Valid Accounts",
        ("Defense Evasion", "Persistence", "Privilege Escalation", "Initial Access"),
    ),
    "T1082": ("System Information Discovery", ("Discovery",)),
    "T1095": ("Non-Application Layer Protocol", ("Command and Control",)),
    "T1105": ("Ingress Tool Transfer", ("Command and Control",)),
    "T1110.001": ("Brute Force: Password Guessing", ("Credential Access",)),
    "T1140": ("Deobfuscate/Decode Files or Information", ("Defense Evasion",)),
    "T1190": ("Exploit Public-Facing Application", ("Initial Access",)),
    "T1204.002": ("User Execution: Malicious File", ("Execution",)),
    "T1210": ("Exploitation of Remote Services", ("Lateral Movement",)),
    "T1496": ("Resource Hijacking", ("Impact",)),
    "T1499": ("Endpoint Denial of Service", ("Impact",)),
    "T1505.003": ("Server Software Component: Web Shell", ("Persistence",)),
    "T1543.002": (
        "Create or Modify System Process: Systemd Service",
        ("Persistence", "Privilege Escalation"),
    ),
    "T1548.001": (
        "Abuse Elevation Control Mechanism: Setuid and Setgid",
        ("Privilege Escalation", "Defense Evasion"),
    ),
    "T1554": ("Compromise Host Software Binary", ("Persistence",)),
    "T1595": ("Active Scanning", ("Reconnaissance",)),
}


def tactic_name(value: str) -> str:
    """A tactic's name, whether given by id (``TA0001``) or by name; others as they are."""
    return TACTICS.get(value.strip().upper(), value) if value else value


def tactic_id(name: str) -> str | None:
    return _TACTIC_IDS.get(tactic_name(name))


def technique_id(value: str) -> str:
    """The id at the start of a technique as alerts carry it ("T1190 Exploit ...")."""
    return value.split(" ", 1)[0].upper() if value else ""


def tactics_of(technique: str) -> tuple[str, ...]:
    """The tactics a technique (by id, or "id name") belongs to; () when not in the table."""
    found = TECHNIQUES.get(technique_id(technique))
    return found[1] if found else ()
