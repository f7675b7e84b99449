"""DingTalk's two HMAC-SHA256 schemes; both sign `f"{timestamp_ms}\\n{secret}"` with the secret as key.

- Robot send (outbound, 加签): the base64 sign goes URL-encoded into the robot URL.
- Callback (inbound): the `timestamp` and `sign` headers, base64 and not URL-encoded.
DingTalk refuses a timestamp more than an hour off; so do we for callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

from opsbot.ingress.errors import Unauthorized

MAX_SKEW_MS = 3600 * 1000


def sign(timestamp_ms: str, secret: str) -> str:
    message = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed_robot_url(webhook: str, secret: str, now_ms: int | None = None) -> str:
    timestamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp}&sign={quote_plus(sign(timestamp, secret))}"


def verify_callback(headers, app_secret: str, now_ms: int | None = None) -> tuple[str, str]:
    """Raise Unauthorized unless the headers carry a fresh, valid sign; the (timestamp, sign) pair it checked."""
    timestamp, given = headers.get("timestamp"), headers.get("sign")
    if not timestamp or not given:
        raise Unauthorized("missing DingTalk timestamp or sign header")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
        raise Unauthorized("invalid DingTalk timestamp")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - int(timestamp)) > MAX_SKEW_MS:
        raise Unauthorized("stale DingTalk timestamp: outside the 1 hour window")
    # Bytes, not str: compare_digest refuses non-ASCII strings, and the header is the sender's to choose.
    if not hmac.compare_digest(sign(timestamp, app_secret).encode(), given.encode("utf-8", "replace")):
        raise Unauthorized("DingTalk sign does not match")
    return timestamp, given


def callback_headers(app_secret: str, now_ms: int | None = None) -> dict[str, str]:
    """Headers DingTalk would send with a callback (used by `make send` and the tests)."""
    timestamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return {"timestamp": timestamp, "sign": sign(timestamp, app_secret)}
