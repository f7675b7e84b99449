"""Drone's webhook signature: draft-cavage HTTP Signatures over `date digest`, HMAC-SHA256.

Drone signs `date: <Date>\\ndigest: <Digest>` with the raw secret. Drone's own receiver does not check the
Digest against the body; we do, or a captured signature could carry any body. A Date more than
`MAX_SKEW_SECONDS` away from now is refused so that a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from opsbot.ingress.errors import Unauthorized

MAX_SKEW_SECONDS = 300
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def body_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def _signing_string(headers_to_sign: list[str], values: dict[str, str]) -> str:
    return "\n".join(f"{name}: {values[name]}" for name in headers_to_sign)


def _hmac_b64(secret: str, message: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def parse_signature(headers) -> dict[str, str]:
    """Signature parameters from `Signature: …` or `Authorization: Signature …`."""
    raw = headers.get("signature")
    if not raw:
        auth = headers.get("authorization") or ""
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    if not raw:
        raise Unauthorized("missing Drone signature")
    return dict(_PARAM.findall(raw))


def verify(headers, body: bytes, secret: str, now: float | None = None) -> None:
    """Raise Unauthorized unless the request carries a valid, fresh signature over this exact body."""
    params = parse_signature(headers)
    if params.get("algorithm", "hmac-sha256").lower() != "hmac-sha256":
        raise Unauthorized("unsupported signature algorithm")
    signed = (params.get("headers") or "date").lower().split()
    if "date" not in signed or "digest" not in signed:
        raise Unauthorized("signature must cover date and digest")
    values = {name: headers.get(name) for name in signed}
    if any(v is None for v in values.values()):
        raise Unauthorized("a signed header is missing")
    # Signature first, then the body, then freshness: each refusal then names the one thing that is wrong.
    expected = _hmac_b64(secret, _signing_string(signed, values))
    # Bytes, not str: compare_digest refuses non-ASCII strings, and these headers are the sender's to choose.
    if not hmac.compare_digest(expected.encode(), params.get("signature", "").encode("utf-8", "replace")):
        raise Unauthorized("signature does not match")
    if not hmac.compare_digest(body_digest(body).encode(), values["digest"].encode("utf-8", "replace")):
        raise Unauthorized("digest does not match the body")
    try:
        sent_at = parsedate_to_datetime(values["date"]).timestamp()
    except (TypeError, ValueError):
        raise Unauthorized("unreadable Date header") from None
    if abs((time.time() if now is None else now) - sent_at) > MAX_SKEW_SECONDS:
        raise Unauthorized("stale Date: outside the 5 minute window")


def sign(body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
    """Headers Drone would send with this body (used by `make send` and the tests)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    values = {"date": format_datetime(moment, usegmt=True), "digest": body_digest(body)}
    signature = _hmac_b64(secret, _signing_string(["date", "digest"], values))
    return {
        "Date": values["date"],
        "Digest": values["digest"],
        "Signature": f'keyId="hmac-key",algorithm="hmac-sha256",signature="{signature}",headers="date digest"',
    }
