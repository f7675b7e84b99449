"""Release links: the "发布到 <env>" buttons of a build card, as short signed tokens backed by a grant kept
server-side.

When the worker puts a "发布到 <env>" button on a card, it stores the grant (project, build, target, commit,
branch, title, the build's event, expiry, nonce) in the state table under `action#<nonce>` and hands out
`<nonce>.<base64url HMAC-SHA256(key, nonce)>`, about 60 characters. That is short enough to travel whole as
OAuth's `state` through DingTalk's login, so the login's redirect URI is one fixed URL.

Reading a token checks the MAC before anything else (garbage costs no DynamoDB read): 400 unreadable, 403 not
ours, 410 when its grant is gone or expired. Single use is enforced where the link is used (actions/handler.py
claims the nonce through ingress.accept).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets as random_source
import time
from dataclasses import asdict, dataclass

from opsbot.authz import core as authz
from opsbot.aws import client
from opsbot.config.model import Config, Project
from opsbot.drone.builds import commit_title
from opsbot.i18n import both
from opsbot.log import logger
from opsbot.secrets import SecretError, get_parameter
from opsbot.settings import settings
from opsbot.state import keys

NONCE = re.compile(r"[0-9a-f]{16}")
MAC_CHARS = 43  # base64url of 32 bytes, unpadded
GRANT_GRACE_SECONDS = 86400  # the grant outlives its link by a day, so "expired" can be told from "never was"
TITLE_CHARS = 80


@dataclass(frozen=True)
class ReleaseGrant:
    project: str
    build: int
    target: str
    commit: str
    branch: str
    title: str  # the commit title, for the page
    event: str  # the build's Drone event (push, tag, …): the environment's rules look at it
    expires: int  # epoch seconds
    nonce: str


class Refused(Exception):
    """A release-link request that gets a 4xx page: the status, and the reason the page gives."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class TokenRefused(Refused):
    """The token is unreadable (400), not ours (403), or names no live grant (410)."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key() -> bytes:
    return get_parameter(settings().action_signing_key_param).encode()


def mac(message: str, key: bytes) -> str:
    return b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def _grant_key(nonce: str) -> dict:
    return {"pk": {"S": keys.LINK_GRANT + nonce}}


def issue(
    project: str,
    build: int,
    target: str,
    commit: str,
    branch: str,
    title: str,
    event: str,
    hours: int,
    key: bytes | None = None,
    now: float | None = None,
) -> str:
    """Store a grant for one project, build and target, and return the token that names it."""
    key = key or signing_key()  # first: without a key there is no link, and nothing is stored
    now = now or time.time()
    grant = ReleaseGrant(
        project=project,
        build=int(build),
        target=target,
        commit=commit,
        branch=branch,
        title=title[:TITLE_CHARS],
        event=event,
        expires=int(now + hours * 3600),
        nonce=random_source.token_hex(8),
    )
    store(grant)
    return token_for(grant.nonce, key)


def store(grant: ReleaseGrant) -> None:
    client("dynamodb").put_item(
        TableName=settings().state_table,
        Item={
            **_grant_key(grant.nonce),
            "grant": {"S": json.dumps(asdict(grant), ensure_ascii=False)},
            "expires_at": {"N": str(grant.expires + GRANT_GRACE_SECONDS)},
        },
        ConditionExpression="attribute_not_exists(pk)",
    )  # a nonce is never handed out twice


def token_for(nonce: str, key: bytes) -> str:
    return f"{nonce}.{mac(nonce, key)}"


def verify(token: str, key: bytes | None = None) -> str:
    """The nonce of a token we signed, or TokenRefused: 400 unreadable, 403 not signed with our key."""
    if not isinstance(token, str) or len(token) > 16 + 1 + MAC_CHARS + 8 or token.count(".") != 1:
        raise TokenRefused(400, both("这个发布链接不完整或已损坏。", "This release link is incomplete or damaged."))
    nonce, signature = token.split(".")
    if not NONCE.fullmatch(nonce):
        raise TokenRefused(400, both("这个发布链接不完整或已损坏。", "This release link is incomplete or damaged."))
    if not hmac.compare_digest(mac(nonce, key or signing_key()).encode(), signature.encode("utf-8", "replace")):
        raise TokenRefused(
            403,
            both(
                "这个发布链接无效：签名不符，可能被改动过。",
                "This release link is not valid: its signature does not match.",
            ),
        )
    return nonce


def read(token: str, key: bytes | None = None, now: float | None = None) -> ReleaseGrant:
    """The grant a token names, or TokenRefused: 400 unreadable, 403 tampered, 410 gone or expired."""
    nonce = verify(token, key)
    return grant(nonce, now)


def grant(nonce: str, now: float | None = None) -> ReleaseGrant:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key=_grant_key(nonce), ConsistentRead=True)
        .get("Item")
    )
    gone = TokenRefused(
        410,
        both(
            "这个发布链接已过期，请在群里等新的构建通知。",
            "This release link has expired; ask in the group for a fresh build notification.",
        ),
    )
    if not item:
        raise gone
    try:
        found = ReleaseGrant(**json.loads(item["grant"]["S"]))
    except (KeyError, ValueError, TypeError):
        raise TokenRefused(
            410,
            both(
                "这个发布链接的记录已损坏，请在群里要一个新的。",
                "This release link's record is damaged; ask in the group for a fresh one.",
            ),
        ) from None
    if found.nonce != nonce or found.expires < (now or time.time()):
        raise gone
    return found


def buttons(config: Config, project: Project, build: dict) -> list[tuple[str, str]]:
    """(environment, URL) of a release link for each environment whose rules take this build (its branch, its
    event, never a deployment): a short token naming a grant stored in the state table. Whoever clicks signs in
    with DingTalk; the link itself identifies nobody. [] without PUBLIC_BASE_URL or a signing key."""
    base = settings().public_base_url
    facts = authz.Build.of(build)
    if not base:
        return []
    found = []
    for env in project.environments.values():
        if authz.deployable(project, env, facts, project.language) is not None:
            continue
        try:
            token = issue(
                project.name,
                facts.number,
                env.name,
                facts.commit,
                facts.branch,
                commit_title(build),
                facts.event,
                config.action_link_hours,
            )
        except SecretError:
            # No signing key yet: the news matters more than the button, so send it without one.
            logger.warning(
                "release links are off: the signing key cannot be read",
                extra={"parameter": settings().action_signing_key_param},
            )
            return []
        found.append((env.name, f"{base}/actions/{token}"))
    return found
