"""Ingestion endpoints: POST /api/v1/alerts and POST /api/v1/logs; and what
the Alert and Data Sources pages show: the alerts (with the page's filters),
one alert, the entities, arrivals and rejected items.

The body is read and parsed here rather than by the framework so that the
contract holds exactly: 413 past the size or item limit, 400 for a body that
is not the expected JSON, 411 for a chunked body the server cannot end, 422
with per-item errors (index, field, message) when validation fails, 200 with
counts when stored. 2xx means committed; a refused batch writes nothing.
"""

import json
import re
from datetime import date, datetime
from itertools import islice
from typing import Any

from django.core.exceptions import RequestDataTooBig
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import TypeAdapter

from alerts import services
from alerts.extensions import attach_whitelist_notes
from alerts.forms import AlertFilterForm, ApiKeyForm
from alerts.models import Alert, AlertSource, Asset, Entity, EntityType, IngestionRejection
from alerts.schemas import (
    MAX_NESTING,
    AlertIn,
    LogIn,
    UnstorableValueError,
    storable_json,
)
from secops import services as secops_services
from secops.api_common import (
    CursorQuery,
    FieldsRefused,
    Message,
    Refused,
    cleaned_filters,
    cursor_page_or_422,
)
from secops.models import Account, ApiKey
from secops.scope import get_in_scope_or_404

router = Router(tags=["ingestion"])

MAX_BODY_BYTES = 10 * 1024 * 1024


def _inline_refs(schema: dict) -> dict:
    """Replace pydantic's local ``$defs`` references by the definitions, so the
    request schema stands alone inside the OpenAPI document."""
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _alert_item_schema() -> dict:
    """An alert as a client sends it: the SIEM source is this console's own."""
    schema = _inline_refs(TypeAdapter(AlertIn).json_schema())
    schema["properties"]["source"]["enum"] = [
        source for source in AlertSource.values if source in services.CLIENT_ALERT_SOURCES
    ]
    return schema


def _request_schema(key: str, item_schema: dict) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [key],
                        "properties": {
                            key: {
                                "type": "array",
                                "maxItems": services.MAX_BATCH_ITEMS,
                                "items": item_schema,
                            }
                        },
                    }
                }
            },
        }
    }


_RESULT = {
    200: dict,
    400: dict,
    411: dict,
    413: dict,
    422: dict,
}


def _too_big() -> HttpError:
    return HttpError(413, f"Request body over {MAX_BODY_BYTES // (1024 * 1024)} MB.")


def _read_body(request) -> bytes:
    """The request body, at most ``MAX_BODY_BYTES``.

    A body sent with ``Transfer-Encoding: chunked`` has no Content-Length, and
    Django then reads it as empty. A server that decodes the chunks and ends
    the input stream with the body says so with ``wsgi.input_terminated``
    (gunicorn does): the body is then read from that stream. Without it the end
    of the body is unknown, so the client is asked for a Content-Length.
    """
    declared = request.META.get("CONTENT_LENGTH")
    if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not request.META.get("wsgi.input_terminated"):
            raise HttpError(
                411,
                "A chunked request body cannot be read by this server: "
                "send the body with a Content-Length header.",
            )
        body = request.META["wsgi.input"].read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise _too_big()
        return body
    try:
        length = int(declared or 0)
    except ValueError:
        length = -1
    if length < 0:
        raise HttpError(400, f"Content-Length {declared[:32]!r} is not a number of bytes.")
    if length > MAX_BODY_BYTES:
        raise _too_big()
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_big() from None
    if len(body) > MAX_BODY_BYTES:
        raise _too_big()
    return body


# A JSON string or one bracket: enough to follow the nesting of a body.
_JSON_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
# The search for the position stops after this many strings and brackets (a
# tenth of a second), so a body built to make it long costs no more.
_MAX_TOKENS_SEARCHED = 200_000


def _nesting_overflow_position(body: bytes) -> int | None:
    """The byte offset of the first bracket nested deeper than the items may nest."""
    # The body's object and the list of items hold the items.
    limit = MAX_NESTING + 2
    depth = 0
    for token in islice(_JSON_STRING_OR_BRACKET.finditer(body), _MAX_TOKENS_SEARCHED):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return token.start()
        elif bracket in (b"]", b"}"):
            depth -= 1
    return None


def _read_items(request, key: str) -> list:
    body = _read_body(request)
    try:
        payload = json.loads(body)
    except RecursionError:
        position = _nesting_overflow_position(body)
        where = f" (at byte {position})" if position is not None else ""
        raise HttpError(
            400, f"Body nests deeper than items may ({MAX_NESTING} levels){where}."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"Body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise HttpError(400, f'Body must be a JSON object with a list under "{key}".')
    items = payload[key]
    if len(items) > services.MAX_BATCH_ITEMS:
        raise HttpError(
            413, f"At most {services.MAX_BATCH_ITEMS} items per request ({len(items)} sent)."
        )
    return items


def _storable_items(items: list) -> tuple[list[tuple[int, object]], list[dict]]:
    """The items the database can store, by request index (see ``storable_json``),
    and an error naming the item and field of each one refused."""
    kept, errors = [], []
    for index, item in enumerate(items):
        try:
            kept.append((index, storable_json(item)))
        except UnstorableValueError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
    return kept, errors


def _adapter_for(fmt: str | None, kind: str):
    """The adapter of a cloud log-delivery format, or None for the native format."""
    if not fmt or fmt == "native":
        return None
    from alerts.adapters import FORMATS

    adapter = FORMATS.get(fmt)
    if adapter is None:
        raise HttpError(
            400, f"Unknown format {fmt!r}; known: native, {', '.join(sorted(FORMATS))}."
        )
    if adapter.kind != kind:
        raise HttpError(
            400, f"Format {fmt!r} carries {adapter.kind}s; send it to /api/v1/{adapter.kind}s."
        )
    return adapter


def _adapt(request, adapter, items: list[tuple[int, object]]):
    """Map records of a cloud log-delivery format onto the native format.

    Returns the native items by request index, the errors, and how many
    records were skipped because they are not attacks (plain WAF requests sent
    with format=waf are not alerts).
    """
    from alerts.adapters import AdapterError, NotAnAttackRecord

    default_account = request.api_key.account.uid if request.api_key.account_id else None
    native, errors, skipped = [], [], 0
    for index, record in items:
        try:
            if not isinstance(record, dict):
                raise AdapterError("", "each item must be a JSON object")
            native.append((index, adapter.to_native(record, default_account=default_account)))
        except NotAnAttackRecord:
            skipped += 1
        except AdapterError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
    return native, errors, skipped


def _ingest(request, key: str, ingest, fmt, partial: bool, kind: str):
    adapter = _adapter_for(fmt, kind)
    kept, errors = _storable_items(_read_items(request, key))
    skipped = 0
    if adapter is not None:
        kept, adapter_errors, skipped = _adapt(request, adapter, kept)
        errors += adapter_errors
    if errors and not partial:
        errors.sort(key=lambda e: e["index"])
        return Status(422, {"accepted": 0, "duplicates": 0, "skipped": skipped, "errors": errors})
    result = ingest([item for _, item in kept], scope=request.scope, partial=partial)
    # Report indexes of the request, not of the sub-list that reached the service.
    errors += [{**e, "index": kept[e["index"]][0]} for e in result.errors]
    errors.sort(key=lambda e: e["index"])
    body = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "skipped": skipped,
        "errors": errors,
    }
    if errors and not partial:
        return Status(422, body)
    return Status(200, body)


@router.post(
    "/alerts",
    response=_RESULT,
    openapi_extra=_request_schema("alerts", _alert_item_schema()),
    summary="Ingest a batch of alerts",
)
def post_alerts(request, format: str | None = None, partial: bool = False):
    """Up to 5,000 alerts or 10 MB. Idempotent on (account, source, uuid).

    `source` is `security_center`, `waf` or `cloud_firewall`; `siem` belongs to
    the alerts of this console's own detection rules and is refused.

    `format`: `native` (default) or a cloud log-delivery format.
    `partial=true` stores the valid items even when others are invalid.
    """
    return _ingest(request, "alerts", services.ingest_alerts, format, partial, "alert")


@router.post(
    "/logs",
    response=_RESULT,
    openapi_extra=_request_schema("logs", _inline_refs(TypeAdapter(LogIn).json_schema())),
    summary="Ingest a batch of log records",
)
def post_logs(request, format: str | None = None, partial: bool = False):
    """Up to 5,000 log records or 10 MB. Resending a record stores nothing twice."""
    return _ingest(request, "logs", services.ingest_logs, format, partial, "log")


# --- reading alerts (the Alert page) --------------------------------------------

# Newest first, as on the Alert page; the id makes the order total for cursors.
ALERT_ORDER = ("-occurred_at", "-id")


class AssetOut(Schema):
    uuid: str
    instance_id: str
    name: str
    public_ip: str | None
    private_ip: str | None
    os: str
    cloud_region: str
    region: str


class AlertOut(Schema):
    id: int
    source: str
    source_uuid: str
    type: str
    name: str
    level: int = Field(description="1 low, 2 medium, 3 high.")
    level_label: str
    occurred_at: datetime
    received_at: datetime
    account: str = Field(description="The account's uid.")
    region: str
    asset: AssetOut | None
    tactic: str
    technique: str
    whitelisted: bool


class AlertPageOut(Schema):
    items: list[AlertOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class WhitelistedByOut(Schema):
    group: str
    matched_at: datetime


class AlertEntityOut(Schema):
    type: str
    value: str
    digest: str = Field(description="Names the entity in /api/v1/entities/{type}/{digest}.")
    role: str
    malicious: bool
    attributes: dict[str, Any] = Field(description="What this alert says of the entity.")


class ExceptionOut(Schema):
    name: str
    value: str


class AlertDetailOut(AlertOut):
    description: str
    exceptions: list[ExceptionOut]
    entities: list[AlertEntityOut]
    whitelisted_by: WhitelistedByOut | None
    raw: Any = Field(description="The original data, verbatim: attacker-controlled.")


class AlertFilterQuery(Schema):
    """The filters of the Alert page, named as in its URL."""

    source: str | None = Field(None, description=", ".join(AlertSource.values))
    level: str | None = Field(None, description="1 low, 2 medium, 3 high.")
    type: str | None = Field(None, description="An alert type, e.g. brute_force.")
    whitelisted: str | None = Field(None, description="yes or no; none for both.")
    period: str | None = Field(None, description="1h, 1d, 7d (default), 30d or 180d.")


def asset_out(asset: Asset | None) -> dict | None:
    if asset is None:
        return None
    return {
        "uuid": asset.uuid,
        "instance_id": asset.instance_id,
        "name": asset.name,
        "public_ip": asset.public_ip,
        "private_ip": asset.private_ip,
        "os": asset.os,
        "cloud_region": asset.cloud_region,
        "region": asset.region,
    }


def alert_out(alert: Alert) -> dict:
    """An alert read with ``select_related("account", "asset")``."""
    return {
        "id": alert.id,
        "source": alert.source,
        "source_uuid": alert.source_uuid,
        "type": alert.type,
        "name": alert.name,
        "level": alert.level,
        "level_label": alert.get_level_display(),
        "occurred_at": alert.occurred_at,
        "received_at": alert.received_at,
        "account": alert.account.uid,
        "region": alert.region,
        "asset": asset_out(alert.asset),
        "tactic": alert.tactic,
        "technique": alert.technique,
        "whitelisted": alert.whitelisted,
    }


@router.get("/alerts", tags=["alerts"], response={200: AlertPageOut, 422: Refused})
def list_alerts(request, filters: Query[AlertFilterQuery], paging: Query[CursorQuery]):
    """The alerts of the key's accounts, newest first, with the Alert page's
    filters; read page after page with `cursor` (nothing is counted)."""
    form = AlertFilterForm({"period": "7d", **request.GET.dict()})
    alerts = services.filtered_alerts(request.scope, cleaned_filters(form))
    page = cursor_page_or_422(alerts.select_related("account", "asset"), ALERT_ORDER, paging)
    return {"items": [alert_out(a) for a in page.items], "next_cursor": page.next_cursor}


@router.get("/alerts/{alert_id}", tags=["alerts"], response={200: AlertDetailOut, 404: Message})
def get_alert(request, alert_id: int):
    alert = get_in_scope_or_404(
        Alert.objects.select_related("account", "asset"), request.scope, id=alert_id
    )
    attach_whitelist_notes([alert])
    note = alert.whitelist_note
    return {
        **alert_out(alert),
        "description": alert.description,
        "exceptions": [
            {"name": name, "value": value}
            for name, value in services.exception_rows(alert.exceptions)
        ],
        "entities": [
            {
                "type": link.entity.type,
                "value": link.entity.value,
                "digest": link.entity.digest,
                "role": link.role,
                "malicious": link.entity.malicious,
                "attributes": link.attributes or {},
            }
            for link in alert.entity_links.select_related("entity").order_by("role", "id")
        ],
        "whitelisted_by": {"group": note.group_name, "matched_at": note.matched_at}
        if note
        else None,
        "raw": alert.raw,
    }


# --- entities -------------------------------------------------------------------

ENTITY_ORDER = ("-last_seen_at", "-id")


class EntityOut(Schema):
    id: int
    type: str
    value: str
    digest: str = Field(description="Names the entity in /api/v1/entities/{type}/{digest}.")
    account: str = Field(description="The account's uid; an entity has one row per account.")
    malicious: bool = Field(description="An alert named it as the attacker.")
    first_seen_at: datetime
    last_seen_at: datetime


class EntityPageOut(Schema):
    items: list[EntityOut]
    next_cursor: str | None


def entity_out(entity: Entity) -> dict:
    """An entity read with ``select_related("account")``."""
    return {
        "id": entity.id,
        "type": entity.type,
        "value": entity.value,
        "digest": entity.digest,
        "account": entity.account.uid,
        "malicious": entity.malicious,
        "first_seen_at": entity.first_seen_at,
        "last_seen_at": entity.last_seen_at,
    }


@router.get("/entities", tags=["alerts"], response={200: EntityPageOut, 422: Refused})
def list_entities(
    request,
    paging: Query[CursorQuery],
    type: EntityType | None = None,
    malicious: bool | None = None,
):
    """The entities of the key's accounts, last seen first (one row per account)."""
    entities = Entity.objects.in_scope(request.scope).select_related("account")
    if type:
        entities = entities.filter(type=type)
    if malicious is not None:
        entities = entities.filter(malicious=malicious)
    page = cursor_page_or_422(entities, ENTITY_ORDER, paging)
    return {"items": [entity_out(e) for e in page.items], "next_cursor": page.next_cursor}


# --- the Data Sources page ------------------------------------------------------

REJECTIONS_SHOWN = 50


class ArrivalOut(Schema):
    account: str = Field(description="The account's uid.")
    kind: str = Field(description="alert or log.")
    source: str = Field(description="The alert source, or the log type.")
    counts: list[int] = Field(description="Items per day, for the days of the answer.")
    last_received_at: datetime


class RejectionOut(Schema):
    account: str | None
    kind: str
    source: str
    index: int
    field: str
    message: str
    excerpt: str = Field(description="The start of the refused item: attacker-controlled.")
    created_at: datetime


class ApiKeyOut(Schema):
    id: int = Field(description="Names the key in /api/v1/api-keys/{key_id}/revoke.")
    name: str
    prefix: str
    account: str | None = Field(description="None: a key of the whole organisation.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class DataSourcesOut(Schema):
    days: list[date]
    arrivals: list[ArrivalOut]
    rejections: list[RejectionOut] = Field(description=f"The latest {REJECTIONS_SHOWN}.")
    api_keys: list[ApiKeyOut]


@router.get("/data-sources", tags=["alerts"], response=DataSourcesOut)
def data_sources(request):
    """Arrivals per account and source over the last two weeks, the latest
    rejected items with their errors, and the API keys."""
    scope = request.scope
    days, rows = services.arrivals(scope)
    rejections = (
        IngestionRejection.objects.in_scope(scope)
        .select_related("account")
        .order_by("-created_at", "id")[:REJECTIONS_SHOWN]
    )
    return {
        "days": days,
        "arrivals": [
            {
                "account": row["account"].uid,
                "kind": row["kind"],
                "source": row["source"],
                "counts": row["counts"],
                "last_received_at": row["last"],
            }
            for row in rows
            if row["account"] is not None
        ],
        "rejections": [
            {
                "account": r.account.uid if r.account_id else None,
                "kind": r.kind,
                "source": r.source,
                "index": r.index,
                "field": r.field,
                "message": r.message,
                "excerpt": r.excerpt,
                "created_at": r.created_at,
            }
            for r in rejections
        ],
        "api_keys": [
            api_key_out(key) for key in ApiKey.objects.in_scope(scope).select_related("account")
        ],
    }


def api_key_out(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "account": key.account.uid if key.account_id else None,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


# --- API keys (the Data Sources page) -------------------------------------------


class ApiKeyIn(Schema):
    name: str = Field("", max_length=200, description="Shortened to 100 characters.")
    account: str | None = Field(
        None,
        max_length=64,
        description="The uid of the account the key is for; none: a key of the whole "
        "organisation (an organisation key only).",
    )


class NewApiKeyOut(ApiKeyOut):
    key: str = Field(
        description="The secret, shown only in this answer: send it as `Bearer <key>`."
    )


@router.post(
    "/api-keys",
    tags=["alerts"],
    response={201: NewApiKeyOut, 403: Message, 422: Refused},
)
def create_api_key(request, payload: ApiKeyIn):
    """A new API key, as the Data Sources page makes one: a key of an account
    for its administrators, a key of the organisation for an organisation key.
    Its secret is in this answer only; only a digest of it is stored."""
    form = ApiKeyForm({"name": payload.name})
    name = cleaned_filters(form)["name"]
    account = None
    if payload.account is not None:
        # A text with a NUL is no uid, and PostgreSQL refuses to compare one.
        if "\x00" not in payload.account:
            account = Account.objects.in_scope(request.scope).filter(uid=payload.account).first()
        if account is None:
            raise FieldsRefused({"account": ["No such account among this API key's accounts."]})
    api_key, secret = secops_services.create_api_key_in_scope(
        request.scope, account=account, name=name
    )
    return Status(201, {**api_key_out(api_key), "key": secret})


@router.post(
    "/api-keys/{key_id}/revoke",
    tags=["alerts"],
    response={200: ApiKeyOut, 403: Message, 404: Message},
)
def revoke_api_key(request, key_id: int):
    """Revoke a key at once (the key used for this call too, if it is the one
    named); a key of an account for its administrators, an organisation key
    for an organisation key."""
    api_key = secops_services.get_api_key_for_change_or_404(request.scope, key_id)
    secops_services.revoke_api_key(api_key)
    api_key.refresh_from_db()
    return api_key_out(api_key)
