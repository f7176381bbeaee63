"""The whitelist catalogue: scenarios (alert types) and the objects of an alert
a condition can test.

An object reads zero or more values from an alert (``AlertFacts``): an alert
can carry several processes, IPs or files. Every scenario offers the objects
that make sense for its alerts; an alert type not in the catalogue is an
"other" scenario and offers every object.
"""

from collections.abc import Callable
from dataclasses import dataclass

from alerts.facts import AlertFacts
from alerts.models import AlertType, alert_type_label

# The kinds of values; FOLDED values are compared without regard to case (the
# pipeline stores them lower-cased).
from secops.conditions import FOLDED, IP, PORT, TEXT


@dataclass(frozen=True)
class WhitelistObject:
    key: str
    label: str
    kind: str  # TEXT, IP, PORT or FOLDED
    read: Callable[[AlertFacts], tuple[str, ...]]
    help: str = ""
    # Read from the alert's original data, loaded only when a rule needs it.
    needs_raw: bool = False


def _values(*values) -> tuple[str, ...]:
    seen = []
    for value in values:
        if value is None or value == "":
            continue
        text = str(value)
        if text not in seen:
            seen.append(text)
    return tuple(seen)


def _entities(alert: AlertFacts, entity_type: str, role: str | None = None):
    for etype, erole, value, attributes in alert.entities:
        if etype == entity_type and (role is None or erole == role):
            yield value, attributes


def _attribute(alert: AlertFacts, entity_type: str, *names: str) -> tuple[str, ...]:
    return _values(
        *(attributes.get(name) for _, attributes in _entities(alert, entity_type) for name in names)
    )


def _source_ips(alert: AlertFacts) -> tuple[str, ...]:
    attackers = [value for value, _ in _entities(alert, "ip", "attacker")]
    logon_sources = [attributes.get("src_ip") for _, attributes in _entities(alert, "user")]
    return _values(*attackers, *logon_sources)


def _destination_ips(alert: AlertFacts) -> tuple[str, ...]:
    victims = [value for value, _ in _entities(alert, "ip", "victim")]
    return _values(*victims)


def _host_ips(alert: AlertFacts) -> tuple[str, ...]:
    return _values(alert.asset_public_ip, alert.asset_private_ip)


def _any_ip(alert: AlertFacts) -> tuple[str, ...]:
    return _values(*(value for value, _ in _entities(alert, "ip")), *_source_ips(alert))


def _parent_processes(alert: AlertFacts) -> tuple[str, ...]:
    """A process entity is a parent when its pid is another process's ppid; a
    process may also name its parent itself (``parent_path``/``parent_cmdline``)."""
    processes = [attributes for _, attributes in _entities(alert, "process")]
    ppids = {p.get("ppid") for p in processes if p.get("ppid") is not None}
    parents = [p for p in processes if p.get("pid") is not None and p.get("pid") in ppids]
    return _values(
        *(p.get(name) for p in parents for name in ("path", "cmdline")),
        *(p.get(name) for p in processes for name in ("parent_path", "parent_cmdline")),
    )


def _users(alert: AlertFacts) -> tuple[str, ...]:
    return _values(
        *(value for value, _ in _entities(alert, "user")),
        *_attribute(alert, "process", "user"),
    )


# Keys of the destination port in the original data of the three cloud
# products' logs and of native alerts.
PORT_KEYS = ("dst_port", "dest_port", "destination_port", "dport", "DstPort", "port")


def destination_ports(raw) -> tuple[str, ...]:
    if not isinstance(raw, dict):
        return ()
    for key in PORT_KEYS:
        value = raw.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and 0 <= value <= 65535:
            return (str(value),)
        # The original data is the sender's: "²" passes isdigit() but not
        # int(), and int() refuses digit strings longer than 4,300 characters.
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535:
                return (str(int(text)),)
    return ()


OBJECTS: dict[str, WhitelistObject] = {
    obj.key: obj
    for obj in [
        WhitelistObject("host_uuid", "Host UUID", TEXT, lambda a: _values(a.asset_uuid)),
        WhitelistObject("host_name", "Host name", TEXT, lambda a: _values(a.asset_name)),
        WhitelistObject("host_ip", "Host IP", IP, _host_ips, "The host's public or private IP."),
        WhitelistObject("alert_name", "Alert name", TEXT, lambda a: _values(a.name)),
        WhitelistObject("file_path", "File path", TEXT, lambda a: _attribute(a, "file", "path")),
        WhitelistObject(
            "file_hash",
            "File hash",
            FOLDED,
            lambda a: _attribute(a, "file", "md5", "sha256"),
            "MD5 or SHA-256 of a file of the alert.",
        ),
        WhitelistObject(
            "process_path", "Process path", TEXT, lambda a: _attribute(a, "process", "path")
        ),
        WhitelistObject(
            "command_line", "Command line", TEXT, lambda a: _attribute(a, "process", "cmdline")
        ),
        WhitelistObject(
            "parent_process",
            "Parent process",
            TEXT,
            _parent_processes,
            "Path or command line of the parent process.",
        ),
        WhitelistObject("user", "User", TEXT, _users, "A logon user or the user of a process."),
        WhitelistObject(
            "source_ip",
            "Source IP",
            IP,
            _source_ips,
            "The attacker's address: the client of a web request, the origin of a logon.",
        ),
        WhitelistObject(
            "destination_ip", "Destination IP", IP, _destination_ips, "The attacked address."
        ),
        WhitelistObject(
            "destination_port",
            "Destination port",
            PORT,
            lambda a: (),
            "The destination port named in the alert's original data.",
            needs_raw=True,
        ),
        WhitelistObject("any_ip", "Any IP", IP, _any_ip, "Any IP address of the alert."),
        WhitelistObject(
            "domain", "Domain", FOLDED, lambda a: _values(*(v for v, _ in _entities(a, "domain")))
        ),
        WhitelistObject(
            "url", "URL", TEXT, lambda a: _values(*(v for v, _ in _entities(a, "url")))
        ),
    ]
}

_HOST = ("host_uuid", "host_name", "host_ip", "alert_name")
_FILE = ("file_path", "file_hash")
_PROCESS = ("process_path", "command_line", "parent_process", "user")
_NETWORK = ("source_ip", "destination_ip", "destination_port", "any_ip", "domain")
_WEB = ("source_ip", "destination_ip", "domain", "url", "any_ip")
ALL_OBJECTS = tuple(OBJECTS)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    objects: tuple[str, ...]
    # The objects an "Add to Whitelist" draft fills in from the event.
    draft_objects: tuple[str, ...]
    known: bool = True


def _scenario(key, objects, draft):
    # The label is the alert type's, from the one table of names.
    ordered = tuple(dict.fromkeys(objects))
    return Scenario(key, AlertType(key).label, ordered, tuple(draft))


_HOST_FILE = (*_HOST, *_FILE, *_PROCESS)
SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in [
        _scenario("rootkit", _HOST_FILE, ("host_uuid", "file_path")),
        _scenario("compromised_software", _HOST_FILE, ("host_uuid",)),
        _scenario("webshell", (*_HOST, *_FILE, "url"), ("host_uuid", "file_path")),
        _scenario(
            "reverse_shell",
            (*_HOST, *_PROCESS, *_NETWORK),
            ("host_uuid", "command_line"),
        ),
        _scenario(
            "brute_force",
            (*_HOST, "source_ip", "destination_ip", "destination_port", "user"),
            ("source_ip",),
        ),
        _scenario(
            "suspicious_login",
            (*_HOST, "source_ip", "user"),
            ("source_ip", "user"),
        ),
        _scenario(
            "malicious_process",
            (*_HOST_FILE, *_NETWORK),
            ("host_uuid", "process_path"),
        ),
        _scenario("suspicious_process", _HOST_FILE, ("host_uuid", "command_line")),
        _scenario("mining", (*_HOST_FILE, *_NETWORK), ("host_uuid", "process_path")),
        _scenario("malicious_file", (*_HOST, *_FILE), ("file_hash",)),
        _scenario("malicious_script", _HOST_FILE, ("host_uuid", "file_path")),
        _scenario("persistence", _HOST_FILE, ("host_uuid", "command_line")),
        _scenario(
            "privilege_escalation",
            _HOST_FILE,
            ("host_uuid", "process_path"),
        ),
        _scenario("log_tampering", _HOST_FILE, ("host_uuid", "command_line")),
        _scenario(
            "sensitive_file_tampering",
            _HOST_FILE,
            ("host_uuid", "file_path"),
        ),
        _scenario("ransomware", _HOST_FILE, ("host_uuid", "file_hash")),
        _scenario(
            "abnormal_network",
            (*_HOST, *_PROCESS, *_NETWORK),
            ("host_uuid", "destination_ip"),
        ),
        _scenario("web_attack", (*_HOST, *_WEB), ("source_ip", "url")),
        _scenario(
            "scanning",
            (*_HOST, "source_ip", "destination_ip", "destination_port"),
            ("source_ip",),
        ),
        _scenario("http_flood", (*_HOST, *_WEB), ("source_ip", "domain")),
        _scenario("bot", (*_HOST, *_WEB), ("source_ip", "domain")),
        _scenario("access_control", (*_HOST, *_WEB), ("source_ip", "domain")),
        _scenario(
            "command_execution",
            (*_HOST, *_NETWORK, *_PROCESS),
            ("source_ip",),
        ),
        _scenario("trojan", (*_HOST, *_NETWORK, *_FILE), ("destination_ip",)),
        _scenario("network_attack", (*_HOST, *_NETWORK), ("source_ip",)),
        _scenario(
            "vulnerability_exploit",
            (*_HOST, *_WEB, *_PROCESS),
            ("source_ip", "host_uuid"),
        ),
        _scenario("suspicious_account", (*_HOST, "user", "source_ip"), ("user",)),
        _scenario("threat_intelligence", ALL_OBJECTS, ("any_ip",)),
    ]
}


def scenario(key: str) -> Scenario:
    """The catalogue's scenario, or an "other" scenario for any other alert type."""
    found = SCENARIOS.get(key)
    if found is not None:
        return found
    # A type of the console's table keeps its name; a custom source's shows as it is.
    label = alert_type_label(key) if key else "Other"
    return Scenario(key, label, ALL_OBJECTS, ("host_uuid",), known=False)
