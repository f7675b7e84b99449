"""Slack's Web API, for the app's bot that takes typed commands (chat/inbound/slack.py): a reply posted into the
conversation a message came from, in its thread. The incoming webhook that only posts is channels/slack.py.

- `POST <api>/chat.postMessage` with `Authorization: Bearer <bot token>` (`xoxb-…`, from SLACK_BOT_TOKEN_PARAM) and a
  JSON body `{channel, thread_ts, text, blocks}` (needs the `chat:write` scope; the bot must be in the channel).
- Slack answers HTTP 200 with `{"ok": true, "ts": …}`, or HTTP 200 with `{"ok": false, "error": …}`: `not_authed`,
  `invalid_auth`, `account_inactive`, `token_revoked` (the token needs fixing), `channel_not_found`,
  `not_in_channel`, `is_archived`, `msg_too_long`, `invalid_blocks`, …: refused, as a retry cannot change them.
- HTTP 429 `ratelimited` with `Retry-After` (seconds): chat.postMessage allows about one message a second per
  channel; retried after it.

The token is a bearer secret: it goes only to a URL built here from SLACK_API_URL (the stack's, never the
config's), is never logged, nor put in a reason. A reply URL (message.Conversation.reply_url) is
`<api>/chat.postMessage?channel=C…&thread_ts=…`, built by `reply_url` and checked by `is_reply_url` before the
token goes with it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

from opsbot.channels import base
from opsbot.channels.http import post_json
from opsbot.jobs.model import PermanentFailure
from opsbot.secrets import get_parameter
from opsbot.settings import settings

LABEL = "Slack Web API"
METHOD = "chat.postMessage"
DEFAULT_RETRY_AFTER = 30
_ID = re.compile(r"^[A-Z0-9]{1,40}$")  # a channel id: C…, G… or D…
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")  # a message's ts: seconds.micro


def _method_url() -> str:
    return f"{settings().slack_api_url}/{METHOD}"


def reply_url(channel: str, thread_ts: str) -> str:
    """Where a reply into `channel`, in the thread of `thread_ts`, goes (the conversation's reply_url)."""
    return f"{_method_url()}?{urlencode({'channel': channel, 'thread_ts': thread_ts})}"


def _target(url: str) -> tuple[str, str] | None:
    """The channel and thread a reply URL names, or None when it is not one `reply_url` makes."""
    base_url, _, query = url.partition("?")
    if base_url != _method_url() or urlsplit(url).fragment:
        return None
    fields = parse_qs(query)
    channel, thread = fields.get("channel", []), fields.get("thread_ts", [])
    if len(channel) != 1 or len(thread) != 1 or set(fields) != {"channel", "thread_ts"}:
        return None
    if not _ID.match(channel[0]) or not _TS.match(thread[0]):
        return None
    return channel[0], thread[0]


def is_reply_url(url: str) -> bool:
    return _target(url) is not None


def _retry_after(headers: dict) -> int:
    value = headers.get("retry-after", "")
    return max(1, min(int(value), 900)) if value.isdigit() else DEFAULT_RETRY_AFTER


def post_message(url: str, body: dict) -> str:
    """Post `body` (`text`, `blocks`) into the conversation and thread `url` names; the new message's ts."""
    target = _target(url)
    if target is None:  # only reply_url()'s: anything else would carry the bot token away
        raise PermanentFailure(f"{LABEL}: not a Slack reply URL")
    channel, thread_ts = target
    token = get_parameter(settings().slack_bot_token_param)
    answer = post_json(
        _method_url(),
        {**body, "channel": channel, "thread_ts": thread_ts},
        f"{LABEL} {METHOD}",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
    )
    if answer.status == 429:
        raise base.rate_limited(
            "slack", f"{LABEL} {METHOD}", "Slack HTTP 429 ratelimited", _retry_after(answer.headers)
        )
    found = answer.body if answer.is_json and isinstance(answer.body, dict) else {}
    if answer.status != 200 or found.get("ok") is not True:
        error = str(found.get("error") or (answer.body if isinstance(answer.body, str) else ""))[:80]
        raise base.refused("slack", f"{LABEL} {METHOD}", f"HTTP {answer.status} {error}".strip())
    return str(found.get("ts") or "")
