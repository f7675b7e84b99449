"""Reading a webhook request: exact body bytes (for HMAC), content type, size and JSON shape."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

from opsbot.ingress.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from opsbot.settings import settings

# Real payloads nest 6 levels at most (tests/fixtures); far deeper documents only cost recursion later, when the
# job is serialised (a RecursionError there would be a 5xx for a body that can never succeed).
MAX_JSON_DEPTH = 32


def raw_body(event) -> bytes:
    """The bytes the sender signed. API Gateway base64-encodes bodies it considers binary."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise BadRequest("body is not valid base64") from None
    return body.encode("utf-8")


def check_envelope(event) -> bytes:
    """Cheap checks that need no secret: content type and size. Returns the raw body."""
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(f"content type must be application/json, got {content_type or 'none'}")
    body = raw_body(event)
    if len(body) > settings().max_body_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over the {settings().max_body_bytes} byte limit")
    if not body:
        raise BadRequest("empty body")
    return body


def parse_json_object(body: bytes) -> dict:
    try:
        # Strict UTF-8 first: json.loads on bytes would let surrogate byte sequences through.
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    if not _nested_within(document, MAX_JSON_DEPTH):
        raise BadRequest(f"body is nested more than {MAX_JSON_DEPTH} levels deep")
    if b"\\u" in body:
        # JSON may escape a lone surrogate (\ud800), which no UTF-8 store or queue will take later.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("body is not valid JSON: it contains a lone surrogate escape") from None
        except RecursionError:
            raise BadRequest("body is not valid JSON: nested too deeply") from None
    return document


def _nested_within(document: dict, limit: int) -> bool:
    """Whether no array or object lies more than `limit` levels deep; walked without recursion."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def checked_shape[Parsed](parse: Callable[[dict], Parsed], document: dict, what: str) -> Parsed:
    """`parse(document)` at ingress, with the parser the worker reads the job with: a shape it refuses
    (ValueError, naming the field) is the sender's fault, a 400, and nothing is queued."""
    try:
        return parse(document)
    except ValueError as exc:
        raise BadRequest(f"{what}: {exc}") from None
