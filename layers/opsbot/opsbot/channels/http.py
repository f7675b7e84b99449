"""The chat channels' one HTTP session: JSON bodies as UTF-8, every call with the stack's timeout and within the job's
time budget, and a peer that cannot be reached (or answers 5xx) is a RetryLater (in doubt when its answer, not
the request, was lost). Webhook URLs carry their channel's secret (DingTalk's
access token and sign, WeCom's key, Slack's whole URL, Feishu's hook token): never log them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from opsbot.jobs import deadline
from opsbot.jobs.model import RetryLater
from opsbot.peers import answer_lost
from opsbot.settings import settings

_session = None
_JSON = {"Content-Type": "application/json; charset=utf-8"}
# urllib3 logs request lines, query string included, at DEBUG: that would put access tokens, keys and signs in
# the logs whenever someone turns root logging up.
logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").level))


def _http():
    # requests is imported on first send, not at cold start: jobs that send nothing never pay for it.
    global _session
    if _session is None:
        import requests

        _session = requests.Session()
    return _session


def close() -> None:
    """Drop the session (tests: a fresh connection pool per test)."""
    global _session
    if _session is not None:
        _session.close()
    _session = None


def encode(body: dict) -> bytes:
    """The body as sent: UTF-8, not `\\uXXXX` escapes, which would triple a Chinese message's size."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Answer:
    status: int
    body: object  # the parsed JSON (is_json), or the first 200 characters of the text
    is_json: bool
    headers: dict  # lower-case names


def post_json(url: str, body: dict, label: str, headers: dict | None = None) -> Answer:
    """POST `body`; a connection failure, a timeout or a 5xx raise RetryLater naming `label` (never the URL)."""
    return _call("POST", url, label, data=encode(body), headers={**_JSON, **(headers or {})})


def get_json(url: str, label: str, headers: dict | None = None) -> Answer:
    """GET `url`, failing as post_json does (a lost answer to a GET is never in doubt: nothing was done)."""
    return _call("GET", url, label, headers=headers or {})


def _call(method: str, url: str, label: str, **kwargs) -> Answer:
    import requests

    deadline.check(label)  # a job out of its time budget stops before the send, not in it
    try:
        send = _http().post if method == "POST" else _http().get
        response = send(url, timeout=settings().http_timeout_seconds, **kwargs)
    except requests.RequestException as exc:
        # A read timeout may come after the channel took the message: the sender must not just send it again.
        lost = method == "POST" and answer_lost(exc)
        raise RetryLater(f"{label}: {type(exc).__name__}", in_doubt=lost) from None
    if response.status_code >= 500:
        raise RetryLater(f"{label}: HTTP {response.status_code}")
    headers = {k.lower(): v for k, v in response.headers.items()}
    try:
        return Answer(response.status_code, response.json(), True, headers)
    except ValueError:
        return Answer(response.status_code, response.text[:200], False, headers)
