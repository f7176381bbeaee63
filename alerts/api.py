"""Ingestion endpoints: POST /api/v1/alerts and POST /api/v1/logs.

The body is read and parsed here rather than by the framework so that the
contract holds exactly: 413 past the size or item limit, 400 for a body that
is not the expected JSON, 422 with per-item errors (index, field, message)
when validation fails, 200 with counts when stored. 2xx means committed.
"""

import json

from django.core.exceptions import RequestDataTooBig
from ninja import Router, Status
from ninja.errors import HttpError
from pydantic import TypeAdapter

from alerts import services
from alerts.schemas import AlertIn, LogIn

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


def _request_schema(key: str, item_schema) -> dict:
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
                                "items": _inline_refs(TypeAdapter(item_schema).json_schema()),
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
    413: dict,
    422: dict,
}


def _read_items(request, key: str) -> list:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY_BYTES:
        raise HttpError(413, f"Request body over {MAX_BODY_BYTES // (1024 * 1024)} MB.")
    try:
        body = request.body
    except RequestDataTooBig:
        body = None
    if body is None or len(body) > MAX_BODY_BYTES:
        raise HttpError(413, f"Request body over {MAX_BODY_BYTES // (1024 * 1024)} MB.")
    try:
        payload = json.loads(body)
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


def _adapt(request, items: list, fmt: str | None, kind: str) -> tuple[list, list[dict], int]:
    """Map cloud log-delivery formats onto the native format.

    Returns the native items (None where an item was refused or skipped), the
    errors, and how many records were skipped because they are not attacks
    (plain WAF requests sent with format=waf are not alerts).
    """
    if not fmt or fmt == "native":
        return items, [], 0
    from alerts.adapters import FORMATS, AdapterError, NotAnAttackRecord

    adapter = FORMATS.get(fmt)
    if adapter is None:
        raise HttpError(
            400, f"Unknown format {fmt!r}; known: native, {', '.join(sorted(FORMATS))}."
        )
    if adapter.kind != kind:
        raise HttpError(
            400, f"Format {fmt!r} carries {adapter.kind}s; send it to /api/v1/{adapter.kind}s."
        )
    default_account = request.api_key.account.uid if request.api_key.account_id else None
    native, errors, skipped = [], [], 0
    for index, record in enumerate(items):
        try:
            if not isinstance(record, dict):
                raise AdapterError("", "each item must be a JSON object")
            native.append(adapter.to_native(record, default_account=default_account))
        except NotAnAttackRecord:
            skipped += 1
            native.append(None)
        except AdapterError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
            native.append(None)
    return native, errors, skipped


def _ingest(request, key: str, ingest, fmt, partial: bool, kind: str):
    items = _read_items(request, key)
    native, adapter_errors, skipped = _adapt(request, items, fmt, kind)
    if adapter_errors and not partial:
        return Status(
            422, {"accepted": 0, "duplicates": 0, "skipped": skipped, "errors": adapter_errors}
        )
    kept = [(i, item) for i, item in enumerate(native) if item is not None]
    result = ingest([item for _, item in kept], scope=request.scope, partial=partial)
    # Report indexes of the request, not of the adapted sub-list.
    errors = adapter_errors + [{**e, "index": kept[e["index"]][0]} for e in result.errors]
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
    openapi_extra=_request_schema("alerts", AlertIn),
    summary="Ingest a batch of alerts",
)
def post_alerts(request, format: str | None = None, partial: bool = False):
    """Up to 5,000 alerts or 10 MB. Idempotent on (source, uuid).

    `format`: `native` (default) or a cloud log-delivery format.
    `partial=true` stores the valid items even when others are invalid.
    """
    return _ingest(request, "alerts", services.ingest_alerts, format, partial, "alert")


@router.post(
    "/logs",
    response=_RESULT,
    openapi_extra=_request_schema("logs", LogIn),
    summary="Ingest a batch of log records",
)
def post_logs(request, format: str | None = None, partial: bool = False):
    """Up to 5,000 log records or 10 MB. Resending a record stores nothing twice."""
    return _ingest(request, "logs", services.ingest_logs, format, partial, "log")
