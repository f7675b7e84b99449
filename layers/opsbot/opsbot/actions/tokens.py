"""Release link tokens: signed (HMAC-SHA256 with a key from SSM), expiring, and bound to one project, build
and target. Single use is enforced where the link is used (a conditional write on the token's nonce).

A token is `<base64url(json)>.<base64url(mac)>`; the JSON carries what the confirmation page shows, so
showing it needs no Drone call.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as random_source
import time
from dataclasses import asdict, dataclass

from opsbot.secrets import get_parameter
from opsbot.settings import settings

MAX_TOKEN_CHARS = 2048


@dataclass(frozen=True)
class ReleaseGrant:
    project: str
    build: int
    target: str
    commit: str
    branch: str
    title: str  # the commit title, for the page
    author: str  # git login of the build's author: the requester when production needs approval
    expires: int  # epoch seconds
    nonce: str


class TokenRefused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key() -> bytes:
    return get_parameter(settings().action_signing_key_param).encode()


def _mac(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def issue(project: str, build: int, target: str, commit: str, branch: str, title: str, author: str,
          hours: int, key: bytes | None = None, now: float | None = None) -> str:
    grant = ReleaseGrant(project=project, build=int(build), target=target, commit=commit, branch=branch,
                         title=title[:80], author=author, expires=int((now or time.time()) + hours * 3600),
                         nonce=random_source.token_hex(8))
    payload = _b64(json.dumps(asdict(grant), ensure_ascii=False, separators=(",", ":")).encode())
    return f"{payload}.{_mac(payload, key or _key())}"


def read(token: str, key: bytes | None = None, now: float | None = None) -> ReleaseGrant:
    """The grant a token carries, or TokenRefused: 400 unreadable, 403 tampered, 410 expired."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenRefused(400, "this release link is incomplete or damaged")
    payload, mac = token.split(".")
    if not hmac.compare_digest(_mac(payload, key or _key()).encode(), mac.encode("utf-8", "replace")):
        raise TokenRefused(403, "this release link is not valid: its signature does not match")
    try:
        grant = ReleaseGrant(**json.loads(_unb64(payload)))
    except (binascii.Error, ValueError, TypeError):
        raise TokenRefused(400, "this release link is damaged") from None
    if grant.expires < (now or time.time()):
        raise TokenRefused(410, "this release link has expired; ask in the group for a fresh build notification")
    return grant
