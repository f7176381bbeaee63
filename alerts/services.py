"""Ingestion: validate batches of alerts and logs, store them idempotently and
hand new alerts to the pipeline.

A batch is all-or-nothing by default: one invalid item rejects it and nothing
is written. With ``partial=True`` the valid items are stored and the invalid
ones reported. Either way every refused item is recorded for the Data Sources
page. Storing costs a constant number of statements per batch.
"""

import ipaddress
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone
from pydantic import TypeAdapter, ValidationError

from alerts import handoff, metrics
from alerts.models import (
    Alert,
    AlertEntity,
    AlertKey,
    AlertSource,
    Asset,
    Entity,
    IngestionKind,
    IngestionRejection,
    IngestionStat,
    LogRecord,
)
from alerts.schemas import AlertIn, AssetIn, LogIn, scrub_nul
from secops import db
from secops.enums import RegionGroup
from secops.models import Account
from secops.scope import Scope

MAX_BATCH_ITEMS = 5_000
MAX_RECORDED_REJECTIONS = 100

_alert_adapter = TypeAdapter(AlertIn)
_log_adapter = TypeAdapter(LogIn)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict] = field(default_factory=list)
    # Ids of the rows this call stored (alerts or log records).
    stored_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "errors": self.errors}


def _error(index: int, field_name: str, message: str) -> dict:
    return {"index": index, "field": field_name, "message": message}


def _errors_from(index: int, exc: ValidationError, tag: str | None = None) -> list[dict]:
    errors = []
    for detail in exc.errors(include_url=False, include_input=False):
        location = [str(part) for part in detail["loc"]]
        if tag and location and location[0] == tag:
            location = location[1:]  # the discriminated union's tag is not a field
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            location = ["type"]
        errors.append(_error(index, ".".join(location), message))
    return errors


def _validate(items: list, adapter: TypeAdapter) -> tuple[list[tuple[int, object]], list[dict]]:
    valid, errors = [], []
    # The whole batch at once: looking for NULs costs less per item that way.
    for index, item in enumerate(scrub_nul(list(items))):
        if not isinstance(item, dict):
            errors.append(_error(index, "", "each item must be a JSON object"))
            continue
        try:
            valid.append((index, adapter.validate_python(item)))
        except ValidationError as exc:
            tag = item.get("type") if isinstance(item.get("type"), str) else None
            errors.extend(_errors_from(index, exc, tag))
    return valid, errors


def _accounts_by_uid(scope: Scope, items: list) -> dict[str, Account]:
    """The scope's accounts named by the batch's items, valid or not (a refused
    item is recorded against the account it names)."""
    uids = {str(i.get("account")) for i in items if isinstance(i, dict) and i.get("account")}
    return {a.uid: a for a in Account.objects.in_scope(scope).filter(uid__in=uids)}


def _check_accounts(valid, accounts, errors) -> list:
    kept = []
    for index, item in valid:
        if item.account not in accounts:
            errors.append(
                _error(
                    index,
                    "account",
                    f"account {item.account} is unknown or not in this key's scope",
                )
            )
        else:
            kept.append((index, item))
    return kept


def _record_rejections(scope: Scope, kind: str, items: list, errors: list[dict], accounts) -> None:
    metrics.count_rejected(kind, items, errors)
    if not errors or scope.organisation_id is None:
        return
    rows = []
    for error in errors[:MAX_RECORDED_REJECTIONS]:
        item = items[error["index"]] if error["index"] < len(items) else None
        item = item if isinstance(item, dict) else {}
        account = accounts.get(str(item.get("account", "")))
        rows.append(
            IngestionRejection(
                organisation_id=scope.organisation_id,
                account=account,
                kind=kind,
                # Callers other than the API hand over unscrubbed items: a NUL
                # in any of these would make PostgreSQL refuse the whole record.
                source=scrub_nul(str(item.get("source") or item.get("type") or ""))[:32],
                index=error["index"],
                field=scrub_nul(error["field"])[:200],
                message=scrub_nul(error["message"]),
                excerpt=json.dumps(item, default=str)[:2000],
            )
        )
    IngestionRejection.objects.bulk_create(rows)


def _accept(items: list, adapter: TypeAdapter, scope: Scope, kind: str):
    """Validate a batch and check its accounts against the scope.

    Returns the valid items, the scope's accounts they name, and a result
    holding every error (by item index); refused items are recorded.
    """
    valid, errors = _validate(items, adapter)
    accounts = _accounts_by_uid(scope, items)
    valid = _check_accounts(valid, accounts, errors)
    errors.sort(key=lambda e: e["index"])
    if errors:
        _record_rejections(scope, kind, items, errors, accounts)
    return valid, accounts, IngestResult(errors=errors)


def _region(cloud_region: str | None, account: Account) -> str:
    return RegionGroup.for_cloud_region(cloud_region, account.home_region)


def _record_stats(
    kind: str, counts: dict[tuple[int, str], int], now: datetime, organisation_of: dict[int, int]
) -> None:
    by_source: dict[str, int] = defaultdict(int)
    for (_, source), count in counts.items():
        by_source[source] += count
    # Counted once the rows are there for good.
    transaction.on_commit(lambda: metrics.count_stored(kind, by_source), robust=True)
    rows = [
        {
            "organisation_id": organisation_of[account_id],
            "account_id": account_id,
            "kind": kind,
            "source": source,
            "day": now.date(),
            "count": n,
            "last_received_at": now,
        }
        for (account_id, source), n in sorted(counts.items())
    ]
    db.insert_on_conflict(
        IngestionStat,
        rows,
        conflict_fields=["account_id", "kind", "source", "day"],
        update={
            "count": f"{db.existing(IngestionStat, 'count')} + {db.excluded(IngestionStat, 'count')}",
            "last_received_at": db.excluded(IngestionStat, "last_received_at"),
        },
    )


# --- alerts -------------------------------------------------------------------


def _upsert_assets(
    assets: dict[tuple[int, str], tuple[AssetIn, Account]],
) -> dict[tuple[int, str], tuple[int, str]]:
    """Create or refresh the batch's assets; returns (account id, uuid) -> (asset id, region).

    A field the alert leaves empty never blanks a known value. Only new assets
    and those whose values change are written: most alerts name a host exactly
    as it is known, and rewriting its row anyway would lock it until the
    commit, so that concurrent batches about the same busy hosts would wait
    for each other (and leave a dead row version behind each time).
    """
    if not assets:
        return {}
    known = {
        (row["account_id"], row["uuid"]): row
        for row in Asset.objects.filter(
            account_id__in={account_id for account_id, _ in assets},
            uuid__in={uuid for _, uuid in assets},
        ).values("id", "account_id", "uuid", *_ASSET_FIELDS, "region")
    }
    result = {}
    rows = []
    for (account_id, uuid), (asset, account) in sorted(assets.items()):
        row = {
            "organisation_id": account.organisation_id,
            "account_id": account_id,
            "uuid": uuid,
            "instance_id": asset.instance_id or "",
            "name": asset.name or "",
            "public_ip": asset.public_ip,
            "private_ip": asset.private_ip,
            "os": asset.os or "",
            "cloud_region": asset.region or "",
            "region": _region(asset.region, account),
            "created_at": timezone.now(),
        }
        existing = known.get((account_id, uuid))
        if existing is not None and not _asset_changes(existing, row):
            result[(account_id, uuid)] = (existing["id"], existing["region"])
        else:
            rows.append(row)
    keep = {
        name: f"COALESCE(NULLIF({db.excluded(Asset, name)}, ''), {db.existing(Asset, name)})"
        for name in ("instance_id", "name", "os", "cloud_region")
    }
    keep.update(
        {
            name: f"COALESCE({db.excluded(Asset, name)}, {db.existing(Asset, name)})"
            for name in ("public_ip", "private_ip")
        }
    )
    # The region follows the cloud region; an alert that names none keeps the known one.
    keep["region"] = (
        f"CASE WHEN {db.excluded(Asset, 'cloud_region')} <> '' "
        f"THEN {db.excluded(Asset, 'region')} ELSE {db.existing(Asset, 'region')} END"
    )
    returned = db.insert_on_conflict(
        Asset,
        rows,
        conflict_fields=["account_id", "uuid"],
        update=keep,
        returning=["id", "account_id", "uuid", "region"],
    )
    result.update({(account_id, uuid): (pk, region) for pk, account_id, uuid, region in returned})
    return result


_ASSET_FIELDS = ("instance_id", "name", "public_ip", "private_ip", "os", "cloud_region")


def _asset_changes(existing: dict, row: dict) -> bool:
    """Whether upserting ``row`` would change the stored asset (the rules of
    ``_upsert_assets``' update: an empty value keeps the known one, and the
    region follows a named cloud region)."""
    for name in _ASSET_FIELDS:
        if row[name] and str(row[name]) != str(existing[name] or ""):
            return True
    return bool(row["cloud_region"]) and row["region"] != existing["region"]


def _known_hosts_by_address(
    address_only: list[tuple[int, AssetIn]],
) -> dict[tuple[int, str, str], tuple[int, str]]:
    """The account's known hosts at the addresses of assets that name no host:
    (account id, "public_ip" or "private_ip", address) -> (asset id, region)."""
    if not address_only:
        return {}
    account_ids = {account_id for account_id, _ in address_only}
    public = {asset.public_ip for _, asset in address_only if asset.public_ip}
    private = {asset.private_ip for _, asset in address_only if asset.private_ip}
    found = {}
    hosts = (
        Asset.objects.filter(account_id__in=account_ids)
        .filter(models.Q(public_ip__in=public) | models.Q(private_ip__in=private))
        # The oldest host wins when two claim one address (an address reused).
        .order_by("-id")
        .values_list("id", "account_id", "public_ip", "private_ip", "region")
    )
    for pk, account_id, public_ip, private_ip, region in hosts:
        if public_ip in public:
            found[(account_id, "public_ip", public_ip)] = (pk, region)
        if private_ip in private:
            found[(account_id, "private_ip", private_ip)] = (pk, region)
    return found


def _host_at_address(
    hosts: dict[tuple[int, str, str], tuple[int, str]],
    account_id: int,
    asset: AssetIn,
    fallback_region: str,
) -> tuple[int | None, str]:
    """A known host of the account at the asset's addresses (the public one
    first: private ranges repeat across VPCs), else no host."""
    for slot in ("public_ip", "private_ip"):
        address = getattr(asset, slot)
        if address and (account_id, slot, address) in hosts:
            return hosts[(account_id, slot, address)]
    return None, fallback_region


def _upsert_entities(entities: dict[tuple[int, str, str], dict]) -> dict[tuple[int, str, str], int]:
    rows = [entities[key] for key in sorted(entities)]
    returned = db.insert_on_conflict(
        Entity,
        rows,
        conflict_fields=["account_id", "type", "digest"],
        update={
            "first_seen_at": db.least(
                db.existing(Entity, "first_seen_at"), db.excluded(Entity, "first_seen_at")
            ),
            "last_seen_at": db.greatest(
                db.existing(Entity, "last_seen_at"), db.excluded(Entity, "last_seen_at")
            ),
            "malicious": f"({db.existing(Entity, 'malicious')} OR {db.excluded(Entity, 'malicious')})",
        },
        returning=["id", "account_id", "type", "digest"],
    )
    return {(account_id, etype, digest): pk for pk, account_id, etype, digest in returned}


ALL_ALERT_SOURCES = frozenset(AlertSource.values)
# Sources a client may send. SIEM alerts are raised by this console's own
# detection rules only: a client that could send them could also pre-empt a
# detection's (deterministic) uuid and have the real alert dropped as a repeat.
CLIENT_ALERT_SOURCES = ALL_ALERT_SOURCES - {AlertSource.SIEM}


def ingest_detections(items: list, *, scope: Scope) -> IngestResult:
    """Store the alerts raised by the SIEM detection rules."""
    return ingest_alerts(items, scope=scope, partial=True, sources=frozenset({AlertSource.SIEM}))


def _refuse_other_sources(valid: list, allowed: frozenset[str], errors: list[dict]) -> list:
    kept = []
    for index, item in valid:
        if item.source in allowed:
            kept.append((index, item))
        else:
            reason = (
                "is reserved for the alerts of this console's detection rules"
                if item.source == AlertSource.SIEM
                else "is not accepted here"
            )
            expected = ", ".join(sorted(allowed))
            errors.append(_error(index, "source", f"{item.source!r} {reason}; use {expected}"))
    return kept


def ingest_alerts(
    items: list,
    *,
    scope: Scope,
    partial: bool = False,
    sources: frozenset[str] = CLIENT_ALERT_SOURCES,
) -> IngestResult:
    """Validate and store alerts; new ones go to the pipeline after commit.

    An alert is identified by (account, source, source uuid): the answer for
    one account never depends on what another account holds. An item whose
    source is not in ``sources`` is refused like any invalid item.
    """
    valid, accounts, result = _accept(items, _alert_adapter, scope, IngestionKind.ALERT)
    source_errors: list[dict] = []
    valid = _refuse_other_sources(valid, sources, source_errors)
    if source_errors:
        _record_rejections(scope, IngestionKind.ALERT, items, source_errors, accounts)
        result.errors = sorted(result.errors + source_errors, key=lambda e: e["index"])
    if result.errors and not partial:
        return result

    # Repeats inside one batch are duplicates, not errors.
    unique: dict[tuple[str, str, str], AlertIn] = {}
    for _, item in valid:
        unique.setdefault((item.account, item.source, item.uuid), item)
    if not unique:
        result.duplicates = len(valid)
        return result

    now = timezone.now()
    organisation_of = {account.id: account.organisation_id for account in accounts.values()}
    with transaction.atomic():
        assets: dict[tuple[int, str], tuple[AssetIn, Account]] = {}
        for item in unique.values():
            if item.asset and item.asset.host_key:
                account = accounts[item.account]
                assets[(account.id, item.asset.host_key)] = (item.asset, account)
        stored_assets = _upsert_assets(assets)
        hosts_by_address = _known_hosts_by_address(
            [
                (accounts[item.account].id, item.asset)
                for item in unique.values()
                if item.asset and not item.asset.host_key
            ]
        )

        alert_rows = []
        for item in unique.values():
            account = accounts[item.account]
            asset_id, region = None, account.home_region
            if item.asset and item.asset.host_key:
                asset_id, region = stored_assets[(account.id, item.asset.host_key)]
            elif item.asset:
                asset_id, region = _host_at_address(
                    hosts_by_address, account.id, item.asset, _region(item.asset.region, account)
                )
            alert_rows.append(
                {
                    "organisation_id": account.organisation_id,
                    "account_id": account.id,
                    "asset_id": asset_id,
                    "source": item.source,
                    "source_uuid": item.uuid,
                    "type": item.type,
                    "name": item.name,
                    "level": int(item.level),
                    "occurred_at": item.occurred_at,
                    "received_at": now,
                    "region": region,
                    "tactic": (item.attck.tactic or "") if item.attck else "",
                    "technique": (item.attck.technique or "") if item.attck else "",
                    "description": item.description,
                    "exceptions": item.exceptions,
                    "raw": item.raw,
                    "whitelisted": False,
                }
            )
        # The keys decide what is new: a key inserted here is this batch's to
        # store; a concurrent batch with the same alert waits on the key's
        # unique index and then finds it taken.
        new_keys = {
            tuple(key)
            for key in db.insert_on_conflict(
                AlertKey,
                [
                    {
                        "organisation_id": row["organisation_id"],
                        "account_id": row["account_id"],
                        "source": row["source"],
                        "source_uuid": row["source_uuid"],
                        "occurred_at": row["occurred_at"],
                    }
                    for row in alert_rows
                ],
                conflict_fields=["account_id", "source", "source_uuid"],
                returning=["account_id", "source", "source_uuid"],
            )
        }
        inserted = db.insert_on_conflict(
            Alert,
            [
                row
                for row in alert_rows
                if (row["account_id"], row["source"], row["source_uuid"]) in new_keys
            ],
            conflict_fields=["account_id", "source", "source_uuid", "occurred_at"],
            returning=["id", "account_id", "source", "source_uuid"],
        )
        account_uids = {account.id: uid for uid, account in accounts.items()}
        new_ids = {
            (account_uids[account_id], source, uuid): pk
            for pk, account_id, source, uuid in inserted
        }

        entity_rows: dict[tuple[int, str, str], dict] = {}
        links: list[tuple[int, tuple[int, str, str], str]] = []
        stats: dict[tuple[int, str], int] = defaultdict(int)
        for key, item in unique.items():
            alert_id = new_ids.get(key)
            if alert_id is None:
                continue
            account = accounts[item.account]
            stats[(account.id, item.source)] += 1
            for entity in item.entities:
                value = entity.identity()
                digest = Entity.digest_for(entity.type, value)
                entity_key = (account.id, entity.type, digest)
                row = entity_rows.get(entity_key)
                if row is None:
                    entity_rows[entity_key] = {
                        "organisation_id": account.organisation_id,
                        "account_id": account.id,
                        "type": entity.type,
                        "value": value,
                        "digest": digest,
                        "attributes": entity.attributes(),
                        "malicious": entity.role == "attacker",
                        "first_seen_at": item.occurred_at,
                        "last_seen_at": item.occurred_at,
                    }
                else:
                    row["first_seen_at"] = min(row["first_seen_at"], item.occurred_at)
                    row["last_seen_at"] = max(row["last_seen_at"], item.occurred_at)
                    row["malicious"] = row["malicious"] or entity.role == "attacker"
                links.append(
                    (alert_id, entity_key, entity.role, entity.attributes(), item.occurred_at)
                )
        entity_ids = _upsert_entities(entity_rows)
        # Every row carries its organisation, taken from the batch's accounts
        # rather than looked up again from each row's parent.
        link_rows: dict[tuple[int, int, str], tuple] = {}
        for alert_id, entity_key, role, attributes, occurred_at in links:
            link_rows.setdefault(
                (alert_id, entity_ids[entity_key], role),
                (attributes, occurred_at, organisation_of[entity_key[0]]),
            )
        db.insert_on_conflict(
            AlertEntity,
            [
                {
                    "organisation_id": organisation,
                    "alert_id": a,
                    "entity_id": e,
                    "role": r,
                    "attributes": attributes,
                    "occurred_at": occurred_at,
                }
                for (a, e, r), (attributes, occurred_at, organisation) in link_rows.items()
            ],
            conflict_fields=["alert_id", "entity_id", "role", "occurred_at"],
        )
        _record_stats(IngestionKind.ALERT, stats, now, organisation_of)

        result.stored_ids = sorted(new_ids.values())
        result.accepted = len(result.stored_ids)
        result.duplicates = len(valid) - result.accepted
        if result.stored_ids:
            handoff.hand_off(result.stored_ids)
    return result


# --- logs ---------------------------------------------------------------------


def ingest_logs(items: list, *, scope: Scope, partial: bool = False) -> IngestResult:
    """Validate and store native log records."""
    valid, accounts, result = _accept(items, _log_adapter, scope, IngestionKind.LOG)
    if result.errors and not partial:
        return result
    if not valid:
        return result

    now = timezone.now()
    with transaction.atomic():
        host_uuids = {(accounts[i.account].id, i.host_uuid) for _, i in valid if i.host_uuid}
        known_assets = {
            (a.account_id, a.uuid): (a.id, a.region)
            for a in Asset.objects.filter(
                account_id__in={k[0] for k in host_uuids}, uuid__in={k[1] for k in host_uuids}
            ).only("id", "account_id", "uuid", "region")
        }
        rows: dict[tuple[int, str], dict] = {}
        for _, item in valid:
            account = accounts[item.account]
            asset_id, region = known_assets.get(
                (account.id, item.host_uuid), (None, account.home_region)
            )
            typed, raw = item.split_fields()
            if raw:
                typed["raw"] = raw
            digest = LogRecord.digest_for(item.type, item.host_uuid, item.time, typed)
            rows.setdefault(
                (account.id, digest),
                {
                    "organisation_id": account.organisation_id,
                    "account_id": account.id,
                    "asset_id": asset_id,
                    "host_uuid": item.host_uuid,
                    "log_type": item.type,
                    "time": item.time,
                    "received_at": now,
                    "region": region,
                    "fields": typed,
                    "digest": digest,
                },
            )
        inserted = db.insert_on_conflict(
            LogRecord,
            list(rows.values()),
            conflict_fields=["account_id", "digest", "time"],
            returning=["id", "account_id", "log_type"],
        )
        stats: dict[tuple[int, str], int] = defaultdict(int)
        for _, account_id, log_type in inserted:
            stats[(account_id, log_type)] += 1
        _record_stats(
            IngestionKind.LOG,
            stats,
            now,
            {account.id: account.organisation_id for account in accounts.values()},
        )
    result.stored_ids = sorted(pk for pk, _, _ in inserted)
    result.accepted = len(result.stored_ids)
    result.duplicates = len(valid) - result.accepted
    return result


def exception_rows(exceptions: list) -> list[tuple[str, str]]:
    """Associated exceptions as (name, value) rows, whatever shape the source used:
    strings, ``{"name": ..., "value": ...}`` pairs or plain objects."""
    rows = []
    for item in exceptions or []:
        if isinstance(item, dict) and "name" in item and "value" in item:
            rows.append((str(item["name"]), str(item["value"])))
        elif isinstance(item, dict):
            rows.extend((str(k), str(v)) for k, v in item.items())
        else:
            rows.append(("", str(item)))
    return rows


def assets_named(scope, text: str):
    """The assets of the scope that ``text`` names: by instance id, uuid, host
    name (in any case) or, when it is an IP address, public or private IP."""
    text = text.strip()
    named = Q(instance_id=text) | Q(uuid=text) | Q(name__iexact=text)
    try:
        address = str(ipaddress.ip_address(text))
    except ValueError:
        pass
    else:
        named |= Q(public_ip=address) | Q(private_ip=address)
    return Asset.objects.in_scope(scope).filter(named)


def filtered_alerts(scope, filters: dict):
    """Alerts of the scope matching the Alert page filters (cleaned AlertFilterForm data)."""
    alerts = Alert.objects.in_scope(scope).filter(occurred_at__gte=filters["since"])
    if filters.get("source"):
        alerts = alerts.filter(source=filters["source"])
    if filters.get("level"):
        alerts = alerts.filter(level=filters["level"])
    if filters.get("type"):
        alerts = alerts.filter(type=filters["type"].strip().lower())
    if filters.get("whitelisted") == "yes":
        alerts = alerts.filter(whitelisted=True)
    elif filters.get("whitelisted") == "no":
        alerts = alerts.filter(whitelisted=False)
    return alerts


# The Data Sources page and its API show arrivals of this many days.
ARRIVAL_DAYS = 14


def arrivals(scope, days: int = ARRIVAL_DAYS):
    """Per account, kind and source: the count per day over the last ``days``
    days, oldest first, and the last arrival. Returns (days, rows)."""
    today = timezone.localdate()
    dates = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    stats = IngestionStat.objects.in_scope(scope).filter(day__gte=dates[0])
    per_day = {}
    for account_id, kind, source, day, count in stats.values_list(
        "account_id", "kind", "source", "day", "count"
    ):
        per_day.setdefault((account_id, kind, source), {})[day] = count
    latest = (
        IngestionStat.objects.in_scope(scope)
        .values("account_id", "kind", "source")
        .annotate(last=Max("last_received_at"))
    )
    accounts = {a.id: a for a in Account.objects.in_scope(scope)}
    rows = []
    for row in latest.order_by("account_id", "kind", "source"):
        key = (row["account_id"], row["kind"], row["source"])
        counts = [per_day.get(key, {}).get(day, 0) for day in dates]
        rows.append(
            {
                "account": accounts.get(row["account_id"]),
                "kind": row["kind"],
                "source": row["source"],
                "counts": counts,
                "peak": max(counts) or 1,
                "recent": sum(counts),
                "last": row["last"],
            }
        )
    return dates, rows
