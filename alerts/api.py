"""Ingestion endpoints: POST /api/v1/alerts and POST /api/v1/logs.

The body is read and parsed here rather than by the framework so that the
contract holds exactly: 413 past the size or item limit, 400 for a body that
is not the expected JSON, 411 for a chunked body the server cannot end, 422
with per-item errors (index, field, message) when validation fails, 200 with
counts when stored. 2xx means committed; a refused batch writes nothing.
"""

import json
import re
from itertools import islice

from django.core.exceptions import RequestDataTooBig
from ninja import Router, Status
from ninja.errors import HttpError
from pydantic import TypeAdapter

from alerts import services
from alerts.models import AlertSource
from alerts.schemas import (
    MAX_NESTING,
    AlertIn,
    LogIn,
    UnstorableValueError,
    storable_json,
)

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
