"""Sending to a DingTalk group robot over its signed URL, with DingTalk's error codes sorted into
"deliver later" and "retrying cannot help". The URL carries the access token and sign: never log it."""

from __future__ import annotations

import json
import logging

from opsbot import metrics, secrets
from opsbot.config.model import Robot
from opsbot.dingtalk.signature import signed_robot_url
from opsbot.jobs import deadline
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.log import logger
from opsbot.peers import answer_lost
from opsbot.settings import settings

# Sending too fast mutes the robot for 10 minutes; DingTalk's docs say 410100, the API answers 130101.
RATE_LIMITED = {130101, 410100}
# Security rule failures (keyword, sign, IP) and bad, disabled or missing robots: fix the config, don't retry.
REFUSED = {310000, 400101, 400102, 400106, 300001}
MUTED_SECONDS = 600

_session = None
_JSON = {"Content-Type": "application/json; charset=utf-8"}
# urllib3 logs request lines, query string included, at DEBUG: that would put the access token and sign in
# the logs whenever someone turns root logging up.
logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").level))


def _http():
    # requests is imported on first send, not at cold start: jobs that send nothing never pay for it.
    global _session
    if _session is None:
        import requests

        _session = requests.Session()
    return _session


def encode(message: dict) -> bytes:
    """The body as sent: UTF-8, not `\\uXXXX` escapes, which would triple a Chinese message's size."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def resolve_credentials(robot: Robot) -> tuple[str, str]:
    """The robot's webhook and secret. Callers fetch them before taking a send slot, so that a slow SSM call
    cannot push the real send past the time the budget recorded."""
    return secrets.resolve(robot.webhook), secrets.resolve(robot.secret)


def send(robot: Robot, message: dict) -> None:
    """Deliver one message or raise RetryLater / PermanentFailure."""
    _post(signed_robot_url(*resolve_credentials(robot)), message, f"robot {robot.name}")


def send_by_session(session_webhook: str, message: dict) -> None:
    """Reply into the conversation a callback came from, through its short-lived sessionWebhook."""
    _post(session_webhook, message, "session webhook")


def _post(url: str, message: dict, label: str) -> None:
    import requests

    deadline.check(label)  # a job out of its time budget stops before the send, not in it
    try:
        response = _http().post(url, data=encode(message), headers=_JSON, timeout=settings().http_timeout_seconds)
    except requests.RequestException as exc:
        # A read timeout may come after DingTalk took the message: the sender must not just send it again.
        raise RetryLater(f"{label}: {type(exc).__name__}", in_doubt=answer_lost(exc)) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryLater(f"{label}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise RetryLater(f"{label}: HTTP {response.status_code} with a non-JSON body") from None
    code = body.get("errcode", 0) if isinstance(body, dict) else -1
    if response.ok and code == 0:
        return
    errmsg = body.get("errmsg", "") if isinstance(body, dict) else ""
    reason = f"{label}: errcode {code} {errmsg}".strip()
    if code in RATE_LIMITED:
        logger.warning("DingTalk robot is rate limited", extra={"target": label, "errcode": code})
        metrics.count(metrics.RATE_LIMITED, Channel="dingtalk")
        raise RetryLater(reason, delay=MUTED_SECONDS)
    logger.error("DingTalk refused the message", extra={"target": label, "errcode": code, "errmsg": errmsg})
    raise PermanentFailure(reason)
