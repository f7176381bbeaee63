"""Security Center host logs (process starts, connections, logons, brute force) as native logs.

Candidate keys list the current (v2) names first and the older Log Audit
names after them: ``proc_path`` before ``filepath``, ``src_ip`` before
``warn_ip``, and so on.
"""

from abc import abstractmethod

from alerts.adapters.base import Adapter, AdapterError, Record, without_empty
from alerts.models import LogType
from alerts.schemas import MAX_COUNT

HOST_UUID_KEYS = ("uuid",)
HOST_IP_KEYS = ("host_ip", "ip")
# ``start_time`` (epoch seconds) is the event time in current data; ``__time__``
# is when SLS stored the entry.
TIME_KEYS = ("start_time", "__time__")

# ``warn_type`` values and the logon method they stand for.
LOGON_METHODS = {"SSHLOGIN": "ssh", "RDPLOGIN": "rdp", "IPCLOGIN": "ipc"}


class HostLogAdapter(Adapter):
    kind = "log"
    log_type: LogType

    def convert(self, entry: Record, account: str) -> dict:
        host_uuid = entry.text(*HOST_UUID_KEYS)
        if host_uuid is None:
            raise AdapterError("uuid", "the record has no host uuid (the agent's uuid)")
        return {
            "type": self.log_type.value,
            "account": account,
            "host_uuid": host_uuid,
            "time": entry.time(*TIME_KEYS),
            **without_empty(self.fields(entry)),
        }

    @abstractmethod
    def fields(self, entry: Record) -> dict:
        """The fields of this log type read from the record."""


class ProcessLogAdapter(HostLogAdapter):
    name = "sas_process"
    topics = frozenset({"aegis-log-process"})
    log_type = LogType.PROCESS

    def fields(self, entry: Record) -> dict:
        return {
            "pid": entry.pid("pid"),
            "ppid": entry.pid("ppid"),
            "path": entry.text("proc_path", "filepath"),
            "cmdline": entry.text("cmdline"),
            "user": entry.text("username", "user"),
            "parent_path": entry.text("parent_proc_path", "pfilepath"),
            "parent_cmdline": entry.text("pcmdline", "parent_cmdline"),
            "hash": entry.text("proc_md5", "md5"),
        }


class NetworkLogAdapter(HostLogAdapter):
    name = "sas_network"
    topics = frozenset({"aegis-log-network"})
    log_type = LogType.NETWORK

    def fields(self, entry: Record) -> dict:
        src_ip = entry.ip("src_ip")
        dst_ip = entry.ip("dst_ip")
        return {
            "pid": entry.pid("pid"),
            "process_path": entry.text("proc_path"),
            "src_ip": src_ip,
            "src_port": entry.port("src_port"),
            "dst_ip": dst_ip,
            "dst_port": entry.port("dst_port"),
            "protocol": (entry.text("proto", "protocol") or "").lower() or None,
            "direction": connection_direction(entry, src_ip, dst_ip),
        }


def connection_direction(entry: Record, src_ip: str | None, dst_ip: str | None) -> str | None:
    """``in``/``out`` as written, else as seen from the host's own address."""
    written = (entry.text("direction", "net_connect_dir", "in_out") or "").lower()
    if written in {"in", "out"}:
        return written
    host_ip = entry.ip(*HOST_IP_KEYS)
    if host_ip and host_ip == src_ip:
        return "out"
    if host_ip and host_ip == dst_ip:
        return "in"
    return None


class LoginLogAdapter(HostLogAdapter):
    """Successful logons; logons repeated within a minute arrive merged, with their count."""

    name = "sas_login"
    topics = frozenset({"aegis-log-login"})
    log_type = LogType.LOGIN
    result = "success"

    def fields(self, entry: Record) -> dict:
        # ``warn_port`` is the port logged into, not the client's port, so it
        # stays in ``raw`` rather than becoming ``src_port``.
        return {
            "user": entry.text("warn_user", "user", "username"),
            "src_ip": entry.ip("src_ip", "warn_ip"),
            "src_port": entry.port("src_port"),
            "result": self.result,
            "method": logon_method(entry.text("warn_type", "login_type")),
            "count": entry.integer("warn_count", minimum=1, maximum=MAX_COUNT) or 1,
        }


class BruteForceLogAdapter(LoginLogAdapter):
    """Failed logons: ``warn_count`` is the number of failed attempts."""

    name = "sas_crack"
    topics = frozenset({"aegis-log-crack"})
    result = "failure"


def logon_method(warn_type: str | None) -> str | None:
    if warn_type is None:
        return None
    upper = warn_type.upper()
    if upper in LOGON_METHODS:
        return LOGON_METHODS[upper]
    # Newer logon kinds (e.g. database logons) follow the same <METHOD>LOGIN shape.
    method = upper.removesuffix("LOGIN").lower()
    return method.strip("_- ") or warn_type.lower()
