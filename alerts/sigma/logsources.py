"""How our log types look to a Sigma rule: log sources, field names and the
columns the batch evaluator stores them in.

Every native log type (``alerts.schemas``) is one SQLite table of the batch
evaluator. A Sigma rule names its log source (``category``/``service``) and
Sigma field names; this module says which table that is and which column each
field reads, and builds the pySigma processing pipeline that rewrites a rule
accordingly before the SQLite backend converts it.

=================  ==========================================  ======================================
Log type (table)   Sigma log sources                           Sigma field -> native field
=================  ==========================================  ======================================
process            category: process_creation                  Image -> path, CommandLine -> cmdline,
                                                               User -> user, ParentImage ->
                                                               parent_path, ParentCommandLine ->
                                                               parent_cmdline, ProcessId -> pid,
                                                               ParentProcessId -> ppid,
                                                               md5 / sha256 / Hash -> hash
network            category: network_connection                Image -> process_path, ProcessId ->
                                                               pid, SourceIp -> src_ip, SourcePort
                                                               -> src_port, DestinationIp -> dst_ip,
                                                               DestinationPort -> dst_port, Protocol
                                                               -> protocol, Initiated -> 'true' when
                                                               direction is out, 'false' when in
login              service: auth or sshd, category:            User / TargetUserName -> user,
                   authentication                              SourceIp / IpAddress -> src_ip,
                                                               SourcePort -> src_port, Result ->
                                                               result (success, failure), AuthMethod
                                                               -> method, Count -> count
file               category: file_event (create, write,        TargetFilename -> path, Image ->
                   rename, chmod), file_change (write, chmod),  process_path, ProcessId -> pid,
                   file_delete, file_rename, file_access        Operation -> operation,
                   (read, execute)                             md5 / sha256 / Hash -> hash
dns                category: dns_query or dns                  QueryName / query -> domain,
                                                               QueryResults / answer -> answer,
                                                               Image -> process_path, ProcessId -> pid
http               category: webserver                         cs-method -> method, cs-host -> host,
                                                               cs-uri -> path, cs-uri-stem -> path
                                                               before '?', cs-uri-query -> path after
                                                               '?', sc-status -> status, c-ip ->
                                                               src_ip, cs-user-agent -> user_agent
=================  ==========================================  ======================================

Every log source also has ``Hostname`` / ``Computer`` (the host uuid). The
product may be ``linux``, ``windows``, ``macos`` or absent: the agents report
the same record shapes on every operating system.

Lists: ``Field|expand: '%bad_ips%'`` matches the IP addresses the console
knows as malicious in the record's own account (IP entities that Security
Center, WAF, Cloud Firewall or a SIEM rule named as an attacker).

A login record the agent merged from several attempts carries their number
in ``count``; an ``event_count`` correlation counts such a record that many
times.
"""

from dataclasses import dataclass, field

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    QueryExpressionPlaceholderTransformation,
    RuleFailureTransformation,
    SetStateTransformation,
)
from sigma.rule import SigmaLogSource

from alerts.models import LogType

DOC = "?5"

# Operating systems whose agents report our record shapes.
SUPPORTED_PRODUCTS = frozenset({"linux", "windows", "macos"})

# The lists a rule can name with ``|expand``, and what each holds.
LISTS = {
    "bad_ips": "IP addresses named as attackers by an alert of the same account",
}
# The evaluator's table of list values; ``owner_account`` rather than
# ``account_id`` so that the unqualified ``account_id`` in the lookup below
# resolves to the record's table.
LIST_TABLE = "sigma_list"
LIST_LOOKUP = (
    "{field} IN (SELECT value FROM sigma_list WHERE name = '{id}' AND owner_account = account_id)"
)


@dataclass(frozen=True)
class Column:
    """One column of a log type's table, filled from the record's JSON fields.

    ``sql`` is an SQLite expression over the record's JSON text, bound as the
    parameter ``DOC``. ``verbatim`` columns hold a substring of what the JSON
    text spells literally, so a literal a rule looks for in them can be looked
    for in the JSON text first (the evaluator's prefilter); derived columns
    (``Initiated``, the host uuid) cannot. ``whole`` ones hold a JSON string
    value entire, between its quotes (not a part of it, not a number).
    """

    name: str
    sql: str
    numeric: bool = False
    verbatim: bool = True
    whole: bool = False

    @classmethod
    def json(cls, key: str, *, numeric: bool = False) -> "Column":
        return cls(key, f"json_extract({DOC}, '$.{key}')", numeric=numeric, whole=not numeric)


# Columns every table has, filled from the record row rather than its JSON.
# A row is inserted from the parameters (record id, account id, host uuid,
# time in epoch seconds, JSON text of the fields); DOC is the last one.
RECORD_ID = "rid"
ACCOUNT_ID = "account_id"
HOST_UUID = "host_uuid"
# How many events a record stands for (merged login attempts), for event_count.
WEIGHT = "weight"
# When the record happened, in epoch seconds (for correlations).
TIME = "event_time"
INTERNAL_COLUMNS = (RECORD_ID, ACCOUNT_ID, HOST_UUID, TIME, WEIGHT)
HOST_FIELDS = {"Hostname": HOST_UUID, "Computer": HOST_UUID}


@dataclass(frozen=True)
class LogSourceSpec:
    """One native log type as the Sigma log sources that read it."""

    log_type: str
    # (category, service) pairs a rule's log source may name; None matches
    # any value of the rule (a rule naming only the category matches).
    sources: tuple[tuple[str | None, str | None], ...]
    columns: tuple[Column, ...]
    # Sigma field name -> column name.
    fields: dict[str, str]
    weight_sql: str = "1"
    # Category -> the operations a file log source is restricted to.
    operations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.log_type

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def column_for_field(self, sigma_field: str) -> str | None:
        if sigma_field in HOST_FIELDS:
            return HOST_FIELDS[sigma_field]
        return self.fields.get(sigma_field)

    def known_fields(self) -> list[str]:
        return sorted({*self.fields, *HOST_FIELDS})

    def is_verbatim(self, column_name: str) -> bool:
        return any(c.name == column_name and c.verbatim for c in self.columns)

    def is_whole_string(self, column_name: str) -> bool:
        return any(c.name == column_name and c.whole for c in self.columns)

    def _chosen(self, names) -> list[Column]:
        """The columns named (all of them for None), in the table's order."""
        return [c for c in self.columns if names is None or c.name in names]

    def insert_sql(self, names=None) -> str:
        """INSERT of one record: the row's own columns, then each column's SQL over DOC."""
        columns = self._chosen(names)
        names = [*INTERNAL_COLUMNS, *(c.name for c in columns)]
        values = ["?1", "?2", "?3", "?4", self.weight_sql]
        values += [c.sql for c in columns]
        # Identifiers and expressions from this module only; values are parameters.
        return f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join(values)})"  # noqa: S608

    def create_sql(self, names=None) -> str:
        """Strings compare without case, as Sigma wants; numbers stay numbers.
        ``names``: only these columns (flattening costs per column)."""
        definitions = [
            f"{RECORD_ID} INTEGER PRIMARY KEY",
            f"{ACCOUNT_ID} INTEGER",
            f"{HOST_UUID} TEXT COLLATE NOCASE",
            f"{TIME} REAL",
            f"{WEIGHT} INTEGER",
        ]
        for column in self._chosen(names):
            kind = "INTEGER" if column.numeric else "TEXT COLLATE NOCASE"
            definitions.append(f"{column.name} {kind}")
        return f"CREATE TABLE {self.table} ({', '.join(definitions)})"


_HASH_FIELDS = {"md5": "hash", "sha256": "hash", "Hash": "hash"}
_PATH = f"json_extract({DOC}, '$.path')"
_URI_STEM = f"CASE WHEN instr({_PATH}, '?') > 0 THEN substr({_PATH}, 1, instr({_PATH}, '?') - 1) ELSE {_PATH} END"
_URI_QUERY = f"CASE WHEN instr({_PATH}, '?') > 0 THEN substr({_PATH}, instr({_PATH}, '?') + 1) END"

LOG_SOURCES: dict[str, LogSourceSpec] = {
    spec.log_type: spec
    for spec in [
        LogSourceSpec(
            log_type=LogType.PROCESS,
            sources=(("process_creation", None),),
            columns=(
                Column.json("path"),
                Column.json("cmdline"),
                Column.json("user"),
                Column.json("parent_path"),
                Column.json("parent_cmdline"),
                Column.json("pid", numeric=True),
                Column.json("ppid", numeric=True),
                Column.json("hash"),
            ),
            fields={
                "Image": "path",
                "CommandLine": "cmdline",
                "User": "user",
                "ParentImage": "parent_path",
                "ParentCommandLine": "parent_cmdline",
                "ProcessId": "pid",
                "ParentProcessId": "ppid",
                **_HASH_FIELDS,
            },
        ),
        LogSourceSpec(
            log_type=LogType.NETWORK,
            sources=(("network_connection", None),),
            columns=(
                Column.json("process_path"),
                Column.json("pid", numeric=True),
                Column.json("src_ip"),
                Column.json("src_port", numeric=True),
                Column.json("dst_ip"),
                Column.json("dst_port", numeric=True),
                Column.json("protocol"),
                Column(
                    "initiated",
                    f"CASE json_extract({DOC}, '$.direction') "
                    "WHEN 'out' THEN 'true' WHEN 'in' THEN 'false' END",
                    verbatim=False,
                ),
            ),
            fields={
                "Image": "process_path",
                "ProcessId": "pid",
                "SourceIp": "src_ip",
                "SourcePort": "src_port",
                "DestinationIp": "dst_ip",
                "DestinationPort": "dst_port",
                "Protocol": "protocol",
                "Initiated": "initiated",
            },
        ),
        LogSourceSpec(
            log_type=LogType.LOGIN,
            sources=(("authentication", None), (None, "auth"), (None, "sshd")),
            columns=(
                Column.json("user"),
                Column.json("src_ip"),
                Column.json("src_port", numeric=True),
                Column.json("result"),
                Column.json("method"),
                Column.json("count", numeric=True),
            ),
            fields={
                "User": "user",
                "TargetUserName": "user",
                "SourceIp": "src_ip",
                "IpAddress": "src_ip",
                "SourcePort": "src_port",
                "Result": "result",
                "AuthMethod": "method",
                "Count": "count",
            },
            weight_sql=f"MAX(COALESCE(json_extract({DOC}, '$.count'), 1), 1)",
        ),
        LogSourceSpec(
            log_type=LogType.FILE,
            sources=(
                ("file_event", None),
                ("file_change", None),
                ("file_delete", None),
                ("file_rename", None),
                ("file_access", None),
            ),
            columns=(
                Column.json("path"),
                Column.json("process_path"),
                Column.json("pid", numeric=True),
                Column.json("operation"),
                Column.json("hash"),
            ),
            fields={
                "TargetFilename": "path",
                "Image": "process_path",
                "ProcessId": "pid",
                "Operation": "operation",
                **_HASH_FIELDS,
            },
            operations={
                "file_event": ("create", "write", "rename", "chmod"),
                "file_change": ("write", "chmod"),
                "file_delete": ("delete",),
                "file_rename": ("rename",),
                "file_access": ("read", "execute"),
            },
        ),
        LogSourceSpec(
            log_type=LogType.DNS,
            sources=(("dns_query", None), ("dns", None)),
            columns=(
                Column.json("domain"),
                Column.json("answer"),
                Column.json("process_path"),
                Column.json("pid", numeric=True),
            ),
            fields={
                "QueryName": "domain",
                "query": "domain",
                "QueryResults": "answer",
                "answer": "answer",
                "Image": "process_path",
                "ProcessId": "pid",
            },
        ),
        LogSourceSpec(
            log_type=LogType.HTTP,
            sources=(("webserver", None),),
            columns=(
                Column.json("method"),
                Column.json("host"),
                Column.json("path"),
                Column("uri_stem", _URI_STEM),
                Column("uri_query", _URI_QUERY),
                Column.json("status", numeric=True),
                Column.json("src_ip"),
                Column.json("user_agent"),
            ),
            fields={
                "cs-method": "method",
                "cs-host": "host",
                "cs-uri": "path",
                "cs-uri-stem": "uri_stem",
                "cs-uri-query": "uri_query",
                "sc-status": "status",
                "c-ip": "src_ip",
                "cs-user-agent": "user_agent",
            },
        ),
    ]
}


class UnsupportedLogSource(ValueError):
    """A rule's log source that no native log type serves; the message says why."""


def _matches(spec: LogSourceSpec, logsource: SigmaLogSource) -> bool:
    """A rule naming a category is read by the log type serving it; one naming
    only a service (``auth``, ``sshd``) by the log type serving the service."""
    if logsource.category:
        return any(category == logsource.category for category, _ in spec.sources)
    return bool(logsource.service) and any(
        service == logsource.service for _, service in spec.sources
    )


def spec_for(logsource: SigmaLogSource) -> LogSourceSpec:
    """The log type a rule's log source reads, or UnsupportedLogSource."""
    if logsource.product and logsource.product not in SUPPORTED_PRODUCTS:
        raise UnsupportedLogSource(
            f"product {logsource.product!r} has no log type here; use one of "
            f"{', '.join(sorted(SUPPORTED_PRODUCTS))} or leave it out"
        )
    for spec in LOG_SOURCES.values():
        if _matches(spec, logsource):
            return spec
    named = ", ".join(
        f"{key}: {value}"
        for key, value in (("category", logsource.category), ("service", logsource.service))
        if value
    )
    raise UnsupportedLogSource(
        f"no log type serves the log source ({named or 'nothing named'}); "
        f"use one of {', '.join(supported_log_sources())}"
    )


def supported_log_sources() -> list[str]:
    names = []
    for spec in LOG_SOURCES.values():
        for category, service in spec.sources:
            names.append(f"category {category}" if category else f"service {service}")
    return names


def _logsource_conditions(spec: LogSourceSpec) -> list[LogsourceCondition]:
    return [
        LogsourceCondition(category=category, service=service) for category, service in spec.sources
    ]


def processing_pipeline() -> ProcessingPipeline:
    """The pySigma pipeline: per log type, restrict file categories to their
    operations, map Sigma field names onto columns and name the table; turn
    ``%list%`` placeholders into lookups; refuse any other log source."""
    items = []
    for spec in LOG_SOURCES.values():
        for category, operations in spec.operations.items():
            items.append(
                ProcessingItem(
                    identifier=f"{spec.log_type}-{category}-operations",
                    transformation=AddConditionTransformation({"Operation": list(operations)}),
                    rule_conditions=[LogsourceCondition(category=category)],
                )
            )
        mapping = {**spec.fields, **HOST_FIELDS}
        items.append(
            ProcessingItem(
                identifier=f"{spec.log_type}-fields",
                transformation=FieldMappingTransformation(mapping),
                rule_conditions=_logsource_conditions(spec),
                rule_condition_linking=any,
            )
        )
        items.append(
            ProcessingItem(
                identifier=f"{spec.log_type}-table",
                transformation=SetStateTransformation("table", spec.table),
                rule_conditions=_logsource_conditions(spec),
                rule_condition_linking=any,
            )
        )
    items.append(
        ProcessingItem(
            identifier="lists",
            transformation=QueryExpressionPlaceholderTransformation(
                expression=LIST_LOOKUP, include=list(LISTS)
            ),
        )
    )
    items.append(
        ProcessingItem(
            identifier="unsupported-log-source",
            transformation=RuleFailureTransformation(
                "no log type serves this log source; use one of "
                + ", ".join(supported_log_sources())
            ),
            rule_conditions=[
                condition
                for spec in LOG_SOURCES.values()
                for condition in _logsource_conditions(spec)
            ],
            rule_condition_linking=any,
            rule_condition_negation=True,
        )
    )
    return ProcessingPipeline(
        name="SecOps console log types",
        priority=20,
        items=items,
    )
