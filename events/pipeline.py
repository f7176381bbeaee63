"""The aggregation engine and the business operations on security events.

``process_alerts`` is the pipeline for one batch of stored alerts:
whitelist -> aggregation rules -> upsert events -> automated-response hook.
It issues a constant number of statements per batch, and it decides "join the
Unhandled event or open a new one" inside the database: an
``INSERT ... ON CONFLICT (account, rule, group_key) WHERE status = 'unhandled'
DO UPDATE`` against the partial unique index, so concurrent workers can never
open two Unhandled events for one group.
"""

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from alerts import handoff
from alerts.facts import AlertFacts, load_alert_facts
from alerts.models import PendingAlertBatch
from events import feed, metrics
from events.grouping import GROUPING_FIELDS, render_template
from events.models import (
    AggregationRule,
    ChangeKind,
    EventAlert,
    EventStatus,
    EventStatusChange,
    SecurityEvent,
)
from secops import db
from secops.regex import LinearTimePattern, RegexError, compile_linear_time

logger = logging.getLogger(__name__)

# An event holds at most this many alerts; the next ones open a continuation.
MAX_ALERTS_PER_EVENT = 10_000
# A worker given a batch takes other waiting batches along up to this many
# alerts: behind a burst, a few big transactions instead of many small ones.
MAX_ALERTS_PER_RUN = 2_000


# --- rule matching ------------------------------------------------------------


@dataclass
class CompiledRule:
    rule: AggregationRule
    sources: frozenset
    types: frozenset
    levels: frozenset
    name_regex: LinearTimePattern | None

    @classmethod
    def compile(cls, rule: AggregationRule) -> "CompiledRule":
        return cls(
            rule=rule,
            sources=frozenset(rule.match_sources or ()),
            types=frozenset(rule.match_types or ()),
            levels=frozenset(int(level) for level in rule.match_levels or ()),
            # Alert names are chosen by whoever sends alerts: matched by RE2, in linear time.
            name_regex=compile_linear_time(rule.name_pattern, ignore_case=True)
            if rule.name_pattern
            else None,
        )

    def matches(self, alert: AlertFacts) -> bool:
        return (
            (not self.sources or alert.source in self.sources)
            and (not self.types or alert.type in self.types)
            and (not self.levels or alert.level in self.levels)
            and (self.name_regex is None or self.name_regex.search(alert.name) is not None)
        )

    def group_values(self, alert: AlertFacts) -> dict[str, str] | None:
        values = {}
        for key in self.rule.group_by:
            value = GROUPING_FIELDS[key].read(alert)
            if not value:
                return None
            values[key] = str(value)
        return values


def _applicable_rules(organisation_ids) -> dict[int, list[CompiledRule]]:
    """The rules enabled for each organisation, each compiled once."""
    rules_by_org = AggregationRule.objects.enabled_for_each(organisation_ids)
    compiled = {}
    for rule in {rule.id: rule for rules in rules_by_org.values() for rule in rules}.values():
        try:
            compiled[rule.id] = CompiledRule.compile(rule)
        except RegexError:
            # Saved before patterns were checked for RE2.
            logger.warning("Aggregation rule %s has an invalid name pattern; skipped", rule.pk)
    return {
        org: [compiled[rule.id] for rule in rules if rule.id in compiled]
        for org, rules in rules_by_org.items()
    }


# --- loading a batch ----------------------------------------------------------


# --- the pipeline -------------------------------------------------------------


@dataclass
class _Group:
    account_id: int
    region: str
    rule: AggregationRule
    key: str
    values: dict
    window_start: datetime
    alerts: list = field(default_factory=list)

    def template_values(self) -> dict[str, str]:
        first = self.alerts[0]
        values = {
            "alert_name": first.name,
            "alert_type": first.type,
            "source": first.source,
            "asset_name": first.asset_name or "unknown host",
            "attacker_ip": first.entity_value("ip", "attacker") or "unknown IP",
        }
        values.update(self.values)
        if "asset" in self.values:
            values["asset"] = values["asset_name"]
        return values


def _group_key(rule_id: int, region: str, values: dict, bucket: int) -> str:
    canonical = json.dumps([rule_id, region, values, bucket], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _group_alerts(facts, rules_by_org) -> dict[tuple[int, int, str], _Group]:
    groups: dict[tuple[int, int, str], _Group] = {}
    for alert, organisation_id in facts:
        for compiled in rules_by_org.get(organisation_id, []):
            if not compiled.matches(alert):
                continue
            values = compiled.group_values(alert)
            if values is None:
                continue
            window = compiled.rule.window_seconds or 1
            bucket = int(alert.occurred_at.timestamp()) // window
            key = _group_key(compiled.rule.id, alert.region, values, bucket)
            group = groups.get((alert.account_id, compiled.rule.id, key))
            if group is None:
                group = groups[(alert.account_id, compiled.rule.id, key)] = _Group(
                    account_id=alert.account_id,
                    region=alert.region,
                    rule=compiled.rule,
                    key=key,
                    values=values,
                    window_start=datetime.fromtimestamp(bucket * window, tz=UTC),
                )
            group.alerts.append(alert)
    return groups


def _event_row(group: _Group, alerts, now, *, continues_id=None) -> dict:
    rule = group.rule
    template_values = group.template_values()
    risk = rule.risk or max(a.level for a in alerts)
    window_end = group.window_start + timedelta(seconds=rule.window_seconds)
    return {
        "account_id": group.account_id,
        "region": group.region,
        "rule_id": rule.id,
        "group_key": group.key,
        "group_values": {
            "fields": group.values,
            # Readable forms of values that are identifiers (a host's uuid).
            "display": {k: template_values[k] for k in group.values if k == "asset"},
            "window_seconds": rule.window_seconds,
            "window_start": group.window_start.isoformat(),
            "window_end": window_end.isoformat(),
        },
        "name": render_template(rule.event_name_template, template_values)[:255],
        "description": render_template(rule.event_description_template, template_values),
        "risk": int(risk),
        "status": EventStatus.UNHANDLED,
        "first_occurred_at": min(a.occurred_at for a in alerts),
        "last_occurred_at": max(a.occurred_at for a in alerts),
        "alert_count": len(alerts),
        "continues_id": continues_id,
        "created_at": now,
        "updated_at": now,
    }


def _upsert_events(groups: list[_Group], now) -> list[tuple[int, int, int, str, int, int]]:
    """Join each group's Unhandled event or open one. Returns
    (event id, account id, rule id, group key, alert count, risk) after the upsert."""
    E = SecurityEvent
    rows = [_event_row(g, g.alerts, now) for g in groups]
    return db.insert_on_conflict(
        E,
        rows,
        conflict_fields=["account_id", "rule_id", "group_key"],
        conflict_where=f"{db.column(E, 'status')} = 'unhandled'",
        update={
            "alert_count": f"{db.existing(E, 'alert_count')} + {db.excluded(E, 'alert_count')}",
            "first_occurred_at": db.least(
                db.existing(E, "first_occurred_at"), db.excluded(E, "first_occurred_at")
            ),
            "last_occurred_at": db.greatest(
                db.existing(E, "last_occurred_at"), db.excluded(E, "last_occurred_at")
            ),
            "risk": db.greatest(db.existing(E, "risk"), db.excluded(E, "risk")),
            "updated_at": db.excluded(E, "updated_at"),
        },
        returning=["id", "account_id", "rule_id", "group_key", "alert_count", "risk"],
    )


def _seal_and_continue(event_id: int, group: _Group, overflow: list, now) -> int:
    """An event went past the cap: keep it full, move its slot to a continuation.

    Rare, so it may cost a few statements per overflowing event. The full
    event leaves the group's Unhandled slot by taking a sealed key (its
    grouping values stay for "why grouped"); the continuation takes the slot.
    """
    sealed_key = hashlib.sha256(f"{group.key}:sealed:{event_id}".encode()).hexdigest()
    SecurityEvent.objects.filter(id=event_id).update(group_key=sealed_key)
    row = _event_row(group, overflow, now, continues_id=event_id)
    ((continuation_id,),) = db.insert_on_conflict(
        SecurityEvent,
        [row],
        conflict_fields=["account_id", "rule_id", "group_key"],
        conflict_where=f"{db.column(SecurityEvent, 'status')} = 'unhandled'",
    )
    return continuation_id


def _refresh_totals(event_id: int) -> None:
    links = EventAlert.objects.filter(event_id=event_id)
    totals = links.aggregate(
        first=Min("alert__occurred_at"), last=Max("alert__occurred_at"), risk=Max("alert__level")
    )
    event = SecurityEvent.objects.select_related("rule").get(id=event_id)
    event.alert_count = links.count()
    event.first_occurred_at = totals["first"]
    event.last_occurred_at = totals["last"]
    event.risk = event.rule.risk or totals["risk"]
    event.save(update_fields=["alert_count", "first_occurred_at", "last_occurred_at", "risk"])


def process_batch(batch_id: int) -> list[int]:
    """Take one pending batch through the pipeline; returns the touched event ids.

    The batch row is locked and deleted in the same transaction as the events
    it produces: a second worker given the same batch waits for the first and
    then finds it gone (and does nothing), or takes it over if the first died.
    Other batches waiting meanwhile, that no worker holds, are taken along up
    to ``MAX_ALERTS_PER_RUN`` alerts in all (their changes name the batch given).
    """
    with transaction.atomic():
        batch = handoff.claim_batch(batch_id)
        if batch is None:
            return []
        room = MAX_ALERTS_PER_RUN - len(batch.alert_ids)
        batches = [batch, *handoff.claim_waiting_batches([batch.id], room)]
        touched = process_alerts(
            [alert_id for taken in batches for alert_id in taken.alert_ids],
            cause=feed.Cause.pipeline(batch.id),
        )
        PendingAlertBatch.objects.filter(id__in=[taken.id for taken in batches]).delete()
        done = [(taken.created_at, len(taken.alert_ids)) for taken in batches]

        def count_done():
            for received_at, count in done:
                metrics.batch_done(received_at, count)

        transaction.on_commit(count_done, robust=True)
    return touched


def process_pending_batches() -> int:
    """Process every pending batch now, oldest first; returns how many were taken."""
    taken = 0
    for batch_id in handoff.waiting_batch_ids():
        process_batch(batch_id)
        taken += 1
    return taken


def process_alerts(alert_ids, *, cause: feed.Cause | None = None) -> list[int]:
    """Whitelist and aggregate stored alerts; returns the touched event ids.

    Not idempotent by itself (alert counts are added): call it for alerts
    nobody else processes, as ``process_batch`` does for a claimed batch.
    Every event it opens or extends gets its change in the feed, in the same
    transaction.
    """
    cause = cause or feed.Cause.pipeline()
    from whitelist.services import apply_whitelist, count_hits

    with transaction.atomic():
        facts = load_alert_facts(alert_ids)
        if not facts:
            return []
        now = timezone.now()

        whitelisted = apply_whitelist(facts, now)
        candidates = [(a, org) for a, org in facts if a.id not in whitelisted]
        # Every row the batch writes carries its organisation; taken from the
        # alerts' accounts here rather than looked up again per table.
        organisation_of = {a.account_id: org for a, org in facts}

        groups = _group_alerts(candidates, _applicable_rules({org for _, org in candidates}))
        ordered = [groups[k] for k in sorted(groups)]  # a fixed order avoids deadlocks
        for group in ordered:
            group.alerts.sort(key=lambda a: (a.occurred_at, a.id))

        links: list[tuple[int, object]] = []
        created: list[int] = []
        touched: list[int] = []
        overflowing: list[int] = []
        continuations: dict[int, int] = {}  # continuation event id -> account id
        risk_before = _unhandled_risks(ordered)
        upserted = _upsert_events(ordered, now)
        for event_id, account_id, rule_id, key, count, _risk in upserted:
            group = groups[(account_id, rule_id, key)]
            previous = count - len(group.alerts)
            if previous == 0:
                created.append(event_id)
            if count > MAX_ALERTS_PER_EVENT:
                room = max(MAX_ALERTS_PER_EVENT - previous, 0)
                kept, overflow = group.alerts[:room], group.alerts[room:]
                continuation_id = _seal_and_continue(event_id, group, overflow, now)
                continuations[continuation_id] = account_id
                links += [(event_id, a) for a in kept] + [(continuation_id, a) for a in overflow]
                overflowing.append(event_id)
                created.append(continuation_id)
                touched += [event_id, continuation_id]
            else:
                links += [(event_id, a) for a in group.alerts]
                touched.append(event_id)

        db.insert_on_conflict(
            EventAlert,
            [
                {"organisation_id": organisation_of[a.account_id], "event_id": e, "alert_id": a.id}
                for e, a in links
            ],
            conflict_fields=["event_id", "alert_id"],
        )
        Assets = SecurityEvent.affected_assets.through
        asset_links = sorted(
            {(e, a.asset_id, organisation_of[a.account_id]) for e, a in links if a.asset_id}
        )
        db.insert_on_conflict(
            Assets,
            [
                {"organisation_id": organisation, "event_id": e, "asset_id": asset}
                for e, asset, organisation in asset_links
            ],
            conflict_fields=["event_id", "asset_id"],
        )
        account_of_event = {e: account for e, account, *_ in upserted} | continuations
        for event_id in overflowing:
            _refresh_totals(event_id)
        db.insert_on_conflict(
            EventStatusChange,
            [
                {
                    "organisation_id": organisation_of.get(account_of_event.get(e)),
                    "event_id": e,
                    "from_status": "",
                    "to_status": EventStatus.UNHANDLED,
                    "cause": cause.kind,
                    "cause_ref": cause.ref,
                    "note": "Opened by the aggregation pipeline.",
                    "created_at": now,
                }
                for e in created
            ],
            conflict_fields=None,
            returning=(),
        )

        feed.record(_pipeline_changes(links, created, upserted, risk_before), cause)
        # Last: the counted whitelist groups stay locked until the commit.
        count_hits(whitelisted, now)
    return sorted(set(touched))


def _unhandled_risks(groups: list[_Group]) -> dict[int, int]:
    """The risk of each Unhandled event the batch may join, before it does."""
    if not groups:
        return {}
    # One OR branch per group made PostgreSQL plan and run thousands of index
    # probes per batch; three array filters are one scan of the partial
    # unique index, and the few extra combinations they let through are
    # dropped here.
    wanted = {(g.account_id, g.rule.id, g.key) for g in groups}
    rows = SecurityEvent.objects.filter(
        account_id__in={account for account, _, _ in wanted},
        rule_id__in={rule for _, rule, _ in wanted},
        group_key__in={key for _, _, key in wanted},
        status=EventStatus.UNHANDLED,
    ).values_list("id", "risk", "account_id", "rule_id", "group_key")
    return {
        event_id: risk
        for event_id, risk, account, rule, key in rows
        if (account, rule, key) in wanted
    }


def _pipeline_changes(links, created, upserted, risk_before) -> list[feed.Change]:
    """Created, alerts added and risk raised, per event the batch touched."""
    alerts_of = defaultdict(list)
    accounts = {}
    for event_id, alert in links:
        alerts_of[event_id].append(alert.id)
        accounts[event_id] = alert.account_id
    created = set(created)
    changes = []
    for event_id in sorted(alerts_of):
        kind = ChangeKind.CREATED if event_id in created else ChangeKind.ALERTS_ADDED
        changes.append(
            feed.Change(
                event_id, accounts[event_id], kind, {"alert_ids": sorted(alerts_of[event_id])}
            )
        )
    for event_id, account_id, _rule, _key, _count, risk in upserted:
        before = risk_before.get(event_id)
        if event_id not in created and before is not None and risk != before:
            changes.append(
                feed.Change(
                    event_id, account_id, ChangeKind.RISK_CHANGED, {"from": before, "to": risk}
                )
            )
    return changes
