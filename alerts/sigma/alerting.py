"""From what the rules found to native SIEM alerts.

``find`` collects what one rule's file raises alerts for in a batch: the
matches of its alert-raising detection rules and the firings of its
correlations (whose state the caller's store keeps). ``alerts_for`` turns
those into native alerts for ``alerts.services.ingest_detections``: source SIEM,
the rule's title as name and its alert type, the level as risk, the entities
the records name, the records themselves as the original data, the asset of
the host, ATT&CK from the rule's tags. Alert uuids are digests of the rule
and the record's content (or the correlation window), so a batch done twice
stores nothing twice, and they reveal no row id.
"""

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter

from alerts.models import AlertSource, LogRecord, LogType
from alerts.sigma.compiled_rule import CompiledRule
from alerts.sigma.correlation import CorrelationEngine, Firing
from alerts.sigma.evaluator import Evaluation, Match

# What an alert carries at most of the records behind it.
MAX_RECORDS_IN_ALERT = 50
MAX_ENTITIES_IN_ALERT = 200


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _hash_fields(value) -> dict:
    value = (_text(value) or "").lower()
    if re.fullmatch(r"[0-9a-f]{32}", value):
        return {"md5": value}
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return {"sha256": value}
    return {}


def entities_of(record: dict) -> list[dict]:
    """The entities a log record names. Remote addresses are the attacker's
    side of a detection, the host's own address the victim's."""
    fields = record["fields"] or {}
    log_type = record["log_type"]
    entities: list[dict] = []

    def process(path, cmdline, **extra):
        if _text(path) or _text(cmdline):
            entity = {"type": "process", "role": "related"}
            entity.update({k: v for k, v in (("path", path), ("cmdline", cmdline)) if _text(v)})
            entity.update({k: v for k, v in extra.items() if v not in (None, "")})
            entities.append(entity)

    def ip(value, role):
        if _text(value):
            entities.append({"type": "ip", "role": role, "value": value})

    def user(name, **extra):
        if _text(name):
            entities.append({"type": "user", "role": "related", "name": name, **extra})

    if log_type == LogType.PROCESS:
        process(
            fields.get("path"),
            fields.get("cmdline"),
            pid=fields.get("pid"),
            ppid=fields.get("ppid"),
            user=fields.get("user"),
            **_hash_fields(fields.get("hash")),
        )
        process(
            fields.get("parent_path"),
            fields.get("parent_cmdline"),
            pid=fields.get("ppid"),
            relation="parent",
        )
        if _text(fields.get("path")) and _hash_fields(fields.get("hash")):
            entities.append(
                {"type": "file", "role": "related", "path": fields["path"]}
                | _hash_fields(fields.get("hash"))
            )
        user(fields.get("user"))
    elif log_type == LogType.NETWORK:
        inbound = fields.get("direction") == "in"
        ip(fields.get("src_ip"), "attacker" if inbound else "victim")
        ip(fields.get("dst_ip"), "victim" if inbound else "attacker")
        process(fields.get("process_path"), None, pid=fields.get("pid"))
    elif log_type == LogType.LOGIN:
        ip(fields.get("src_ip"), "attacker")
        user(fields.get("user"), logon_type=fields.get("method"), src_ip=fields.get("src_ip"))
    elif log_type == LogType.FILE:
        if _text(fields.get("path")):
            entities.append(
                {"type": "file", "role": "related", "path": fields["path"]}
                | _hash_fields(fields.get("hash"))
            )
        process(fields.get("process_path"), None, pid=fields.get("pid"))
    elif log_type == LogType.DNS:
        if _text(fields.get("domain")):
            entities.append({"type": "domain", "role": "attacker", "value": fields["domain"]})
        process(fields.get("process_path"), None, pid=fields.get("pid"))
    elif log_type == LogType.HTTP:
        ip(fields.get("src_ip"), "attacker")
        if _text(fields.get("path")):
            host = fields.get("host") or record["host_uuid"] or ""
            entities.append({"type": "url", "role": "related", "value": f"{host}{fields['path']}"})
    for entity in entities:
        for key in [k for k, v in entity.items() if v is None]:
            del entity[key]
    return entities


def _unique_entities(records: list[dict]) -> list[dict]:
    seen, result = set(), []
    for record in records:
        for entity in entities_of(record):
            identity = json.dumps(entity, sort_keys=True, default=str)
            if identity not in seen:
                seen.add(identity)
                result.append(entity)
    return result[:MAX_ENTITIES_IN_ALERT]


def raw_record(record: dict) -> dict:
    return {
        "ref": LogRecord.reference_for(record["digest"]),
        "log_type": record["log_type"],
        "host_uuid": record["host_uuid"],
        "time": record["time"].isoformat(),
        "fields": record["fields"],
    }


@dataclass
class AlertContext:
    """What building one batch's alerts needs to know."""

    account_uids: dict[int, str]
    assets: dict[tuple[int, str], dict]
    records: dict[int, dict]


def _asset_of(context: AlertContext, record: dict) -> dict | None:
    host = record["host_uuid"]
    if not host:
        return None
    known = context.assets.get((record["account_id"], host), {})
    return {"uuid": host, **known}


def native_alert(
    rule,
    compiled_rule: CompiledRule,
    *,
    source_uuid: str,
    name: str,
    records: list[dict],
    context: AlertContext,
    occurred_at: datetime,
    correlation: dict | None = None,
) -> dict:
    latest = max(records, key=lambda r: (r["time"], r["id"]))
    raw = {
        "rule": {
            "key": rule.key,
            "title": rule.title,
            "sigma_id": rule.sigma_id,
            "level": rule.level,
            "predefined": rule.is_predefined,
        },
        "records": [raw_record(r) for r in records[:MAX_RECORDS_IN_ALERT]],
    }
    if len(records) > MAX_RECORDS_IN_ALERT:
        raw["records_omitted"] = len(records) - MAX_RECORDS_IN_ALERT
    if correlation is not None:
        raw["correlation"] = correlation
    alert = {
        "source": AlertSource.SIEM,
        "uuid": source_uuid,
        "account": context.account_uids[latest["account_id"]],
        "type": rule.alert_type,
        "name": name[:255],
        "level": int(rule.risk),
        "occurred_at": occurred_at.isoformat(),
        "entities": _unique_entities(records),
        "description": compiled_rule.description[:8000],
        "raw": raw,
    }
    asset = _asset_of(context, latest)
    if asset is not None:
        alert["asset"] = asset
    if compiled_rule.tactic or compiled_rule.technique:
        alert["attck"] = {
            "tactic": compiled_rule.tactic or None,
            "technique": compiled_rule.technique or None,
        }
    return alert


def window_digest(firing: Firing) -> str:
    canonical = json.dumps(
        [firing.correlation, firing.account_id, firing.group, round(firing.window_start, 3)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass
class Findings:
    """What one rule found in one batch: matches of its alert-raising detection
    rules and firings of its alert-raising correlations."""

    detections: list[tuple[str, Match]] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _observations(compiled_rule: CompiledRule, rule_key, evaluation: Evaluation) -> dict:
    """The matches of the rules a correlation names: what it counts."""
    return {name: evaluation.matches.get((rule_key, name), []) for name in compiled_rule.queries}


def find(rule_key, compiled_rule: CompiledRule, evaluation: Evaluation, store) -> Findings:
    """Run one rule's correlations over the batch's matches; collect what raises alerts."""
    findings = Findings()
    started = perf_counter()
    for name in compiled_rule.queries:
        key = (rule_key, name)
        findings.seconds += evaluation.seconds.get(key, 0.0)
        if key in evaluation.errors:
            findings.errors.append(f"{compiled_rule.titles[name]}: {evaluation.errors[key]}")
        if name in compiled_rule.generating:
            findings.detections += [(name, m) for m in evaluation.matches.get(key, [])]
    if compiled_rule.correlations:
        engine = CorrelationEngine(compiled_rule, store)
        firings = engine.process(_observations(compiled_rule, rule_key, evaluation))
        findings.firings = [f for f in firings if f.correlation in compiled_rule.generating]
    findings.seconds += perf_counter() - started
    return findings


def alerts_for(
    rule, compiled_rule: CompiledRule, findings: Findings, context: AlertContext
) -> tuple[list[dict], Counter]:
    """Native SIEM alerts of a rule's findings, and its hits per account."""
    alerts, hits = [], Counter()

    def name_of(document: str) -> str:
        return rule.title if document == compiled_rule.output else compiled_rule.titles[document]

    for document, match in findings.detections:
        record = context.records.get(match.record_id)
        if record is None:
            continue
        alerts.append(
            native_alert(
                rule,
                compiled_rule,
                source_uuid=detection_uuid(rule.id, document, record["digest"]),
                name=name_of(document),
                records=[record],
                context=context,
                occurred_at=record["time"],
            )
        )
        hits[match.account_id] += 1
    for firing in findings.firings:
        records = [context.records[i] for i in firing.record_ids if i in context.records]
        if not records:
            continue
        alerts.append(
            native_alert(
                rule,
                compiled_rule,
                source_uuid=detection_uuid(rule.id, "window", window_digest(firing)),
                name=name_of(firing.correlation),
                records=records,
                context=context,
                occurred_at=datetime.fromtimestamp(firing.window_end, tz=UTC),
                correlation={
                    "name": compiled_rule.titles[firing.correlation],
                    "group": firing.group,
                    "window_start": _iso(firing.window_start),
                    "window_end": _iso(firing.window_end),
                    "count": firing.count,
                },
            )
        )
        hits[firing.account_id] += 1
    return alerts, hits


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def detection_uuid(rule_id: int, document: str, what: str) -> str:
    """The uuid of the alert a rule's document raises for one record (by its
    content digest) or one correlation window: stable across runs, opaque."""
    canonical = json.dumps([rule_id, document, what])
    return "siem-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def alerting_ids(keyed_rules, evaluation: Evaluation) -> set[int]:
    """Ids of the matches that raise an alert of their own."""
    return {
        match.record_id
        for rule_key, compiled_rule in keyed_rules
        for name in compiled_rule.generating
        for match in evaluation.matches.get((rule_key, name), [])
    }
