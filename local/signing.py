"""Signing a request the way each sender does, with the local stack's secrets (for `make send`, `make event`, tests,
bench): the one place that knows how each route authenticates its sender."""

from __future__ import annotations

import base64
import copy
import time
from pathlib import Path

from local.fake_slack import signed_headers as slack_headers
from local.stack import LOCAL_SECRETS, request_time
from opsbot.dingtalk.signature import callback_headers
from opsbot.drone import signature as drone_signature


def _slack(body: bytes, now: float | None) -> dict[str, str]:
    """Slack's v0 headers; the Content-Type is the request's own (a form for presses, JSON for events)."""
    secret = LOCAL_SECRETS["SLACK_SIGNING_SECRET_PARAM"]
    signed = slack_headers(secret, body, None if now is None else int(now))
    return {k: v for k, v in signed.items() if k != "Content-Type"}


_SIGNERS = {  # route -> its sender's authentication headers for a body at a time (None: now)
    "/webhooks/drone": lambda body, now: drone_signature.sign(body, LOCAL_SECRETS["DRONE_WEBHOOK_SECRET_PARAM"], now),
    "/webhooks/gitlab": lambda body, now: {"X-Gitlab-Token": LOCAL_SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"]},
    "/webhooks/dingtalk": lambda body, now: callback_headers(
        LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"], None if now is None else int(now * 1000)
    ),
    "/webhooks/slack/interactivity": _slack,
    "/webhooks/slack/events": _slack,
}


def signs(path: str) -> bool:
    """Whether a request to `path` carries its sender's authentication (release links' senders do not sign)."""
    return path in _SIGNERS


def sign_for(path: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Fresh authentication headers for a request to `path` ({} for a route whose sender does not sign)."""
    return _SIGNERS[path](body, now) if signs(path) else {}


AUTH_HEADERS = {
    "date",
    "digest",
    "signature",
    "authorization",
    "x-gitlab-token",
    "timestamp",
    "sign",
    "x-slack-signature",
    "x-slack-request-timestamp",
}


def kept_as_stored(sample: str | Path) -> bool:
    """Samples named bad_* or stale_* exist to fail a check, so they are never signed afresh."""
    return Path(sample).name.startswith(("bad_", "stale_"))


def event_body(event: dict) -> bytes:
    """The request body an API Gateway v2 event carries."""
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def signed_afresh(event: dict, now: float | None = None) -> dict:
    """A copy of an API Gateway v2 sample event as if its sender had sent it at `now` (default: now): the
    authentication headers made anew (lower-case, as API Gateway passes them), the rest as stored, and
    requestContext's time. An event for a route whose sender does not sign (release links) is copied as it is."""
    now = time.time() if now is None else now
    signed = copy.deepcopy(event)
    if signs(event["rawPath"]):
        fresh = {k.lower(): v for k, v in sign_for(event["rawPath"], event_body(event), now).items()}
        stored = {k.lower(): v for k, v in event["headers"].items()}
        if "signature" in fresh and stored.get("authorization", "").startswith("Signature "):
            fresh["authorization"] = "Signature " + fresh.pop("signature")  # Drone's other form, kept
        signed["headers"] = {k: v for k, v in event["headers"].items() if k.lower() not in AUTH_HEADERS}
        signed["headers"].update(fresh)
        signed["requestContext"].update(request_time(now))
    return signed
