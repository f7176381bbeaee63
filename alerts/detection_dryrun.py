"""The dry run of the rule editor: how often a rule would have matched the
scope's logs of the last 24 h, with a sample, storing nothing."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter

from django.utils import timezone

from alerts.detection_logs import BATCH_SIZE, list_values, log_rows, whole_records
from alerts.detection_models import DetectionRuleKind
from alerts.detection_rules import check_rule
from alerts.models import LogRecord
from alerts.sigma.alerting import find
from alerts.sigma.correlation import MemoryStore
from alerts.sigma.evaluator import BatchEvaluator
from secops.scope import Scope

DRY_RUN_WINDOW = timedelta(hours=24)
DRY_RUN_MAX_RECORDS = 1_000_000
DRY_RUN_SAMPLE = 20


@dataclass
class DryRun:
    records: int = 0
    matches: int = 0
    sample: list[dict] = field(default_factory=list)
    truncated: bool = False
    seconds: float = 0.0
    window_start: datetime | None = None
    window_end: datetime | None = None
    kind: str = DetectionRuleKind.DETECTION
    errors: list[str] = field(default_factory=list)


def _sample_row(record: dict, extra: str = "") -> dict:
    fields = record["fields"] or {}
    summary = (
        fields.get("cmdline")
        or fields.get("path")
        or fields.get("domain")
        or " ".join(
            str(fields[k])
            for k in ("user", "src_ip", "dst_ip", "dst_port", "result")
            if k in fields
        )
    )
    return {
        "ref": LogRecord.reference_for(record["digest"]),
        "time": record["time"],
        "log_type": record["log_type"],
        "host_uuid": record["host_uuid"],
        "summary": f"{extra}{summary}",
        "fields": record["fields"],
    }


def dry_run(
    yaml_text: str,
    scope: Scope,
    *,
    now: datetime | None = None,
    window: timedelta = DRY_RUN_WINDOW,
    sample_size: int = DRY_RUN_SAMPLE,
    max_records: int = DRY_RUN_MAX_RECORDS,
    batch_size: int = BATCH_SIZE,
) -> DryRun:
    """How often a rule would have matched the scope's logs of the last 24 h.

    Nothing is stored: correlations keep their state in memory. Records are
    taken by their own time, in id order, up to ``max_records``.
    """
    started = perf_counter()
    compiled_rule = check_rule(yaml_text)
    now = now or timezone.now()
    result = DryRun(window_start=now - window, window_end=now, kind=compiled_rule.kind)
    queries = {(0, name): query for name, query in compiled_rule.queries.items()}
    store = MemoryStore()
    evaluator = BatchEvaluator(queries, list_values(scope, compiled_rule.lists))
    candidates = LogRecord.objects.in_scope(scope).filter(
        time__gte=now - window, time__lte=now, log_type__in=compiled_rule.log_types
    )
    last_id = 0
    try:
        while result.records < max_records:
            limit = min(batch_size, max_records - result.records)
            rows = log_rows(candidates.filter(id__gt=last_id), limit)
            if not rows:
                break
            last_id = rows[-1][0]
            result.records += len(rows)
            evaluation = evaluator.evaluate(rows)
            result.errors += [e for e in evaluation.errors.values() if e not in result.errors]
            found = find(0, compiled_rule, evaluation, store)
            result.matches += len(found.detections) + len(found.firings)
            # Only the records the sample shows are read whole.
            room = max(sample_size - len(result.sample), 0)
            shown = [(match.record_id, "") for _, match in found.detections[:room]]
            shown += [
                (firing.record_ids[-1], f"{firing.count} within the window, e.g. ")
                for firing in found.firings[: room - len(shown)]
            ]
            records = whole_records(scope, {record_id for record_id, _ in shown})
            result.sample += [
                _sample_row(records[record_id], prefix)
                for record_id, prefix in shown
                if record_id in records
            ]
        result.truncated = result.records >= max_records
    finally:
        evaluator.close()
    result.seconds = perf_counter() - started
    return result
