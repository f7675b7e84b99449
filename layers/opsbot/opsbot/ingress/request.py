"""Reading a webhook request: exact body bytes (for HMAC), content type, size and JSON shape."""

from __future__ import annotations

import base64
import binascii
import json

from opsbot.ingress.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from opsbot.settings import settings


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
    if b"\\u" in body:
        # JSON may escape a lone surrogate (\ud800), which no UTF-8 store or queue will take later.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("body is not valid JSON: it contains a lone surrogate escape") from None
        except RecursionError:
            raise BadRequest("body is not valid JSON: nested too deeply") from None
    return document
