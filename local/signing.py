"""Signing a request the way each sender does, with the local stack's secrets (for `make send`, tests, bench)."""
from __future__ import annotations

from opsbot.dingtalk.signature import callback_headers
from opsbot.drone import signature as drone_signature

from local.stack import LOCAL_SECRETS


def sign_for(path: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Fresh authentication headers for a request to `path`."""
    if path == "/webhooks/drone":
        return drone_signature.sign(body, LOCAL_SECRETS["DRONE_WEBHOOK_SECRET_PARAM"], now)
    if path == "/webhooks/gitlab":
        return {"X-Gitlab-Token": LOCAL_SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"]}
    if path == "/webhooks/dingtalk":
        return callback_headers(LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"], None if now is None else int(now * 1000))
    return {}


AUTH_HEADERS = {"date", "digest", "signature", "authorization", "x-gitlab-token", "timestamp", "sign"}
