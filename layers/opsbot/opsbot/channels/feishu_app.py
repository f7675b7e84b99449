"""Feishu's (Lark's) open API, for the app bot that takes chat (chat/inbound/feishu.py): the app's tenant access
token, a message read by its id, and a reply to it. The custom bot that only posts is channels/feishu.py.

- `POST <api>/open-apis/auth/v3/tenant_access_token/internal` `{app_id, app_secret}` answers `{code: 0,
  tenant_access_token, expire}` (seconds, at most 2 h); a container keeps it until 5 minutes before then.
- `GET <api>/open-apis/im/v1/messages/<id>`: `data.items[0]` is the message as Feishu knows it: `sender` (`id`, an
  open_id for a user, `id_type`, `sender_type`), `chat_id`, `msg_type`, `create_time` (ms, as a string),
  `body.content` (a JSON string, `{"text": "@_user_1 status shop-api"}`) and `mentions[]` (`key`, `name`). HTTP 400
  with a code when the app may not read it: 230002 (the bot is not in the chat), 230110 (deleted), 230001 (no such
  id), 230050 (not visible to the bot), …: then there is no message.
- `POST <api>/open-apis/im/v1/messages/<id>/reply` `{msg_type, content (a JSON string), uuid}`: Feishu sends at most
  one message per uuid within an hour. 230011 (the message was recalled), 230002, 230025 (too long), …: refused;
  230020, 99991400 or HTTP 429 are "too frequent" (`x-ogw-ratelimit-reset` says for how long).
- `GET <api>/open-apis/bot/v3/info`: `bot.open_id`, the bot's own open_id, which a message's `mentions[].id` names
  when someone @-mentions it (kept per container: it never changes for an app).
- `GET <api>/open-apis/im/v1/chats/<chat_id>`: `data.chat_mode`, `p2p` for a one-to-one chat with the bot (`group`
  and `topic` otherwise; needs the `im:chat:readonly` scope); kept per container, as a chat never changes mode.

A token Feishu no longer takes (99991661, 99991663, 99991677) is dropped and the call retried with a new one. The
app secret and tokens are bearer secrets: never logged, nor put in a reason.
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import quote

from opsbot.channels import base
from opsbot.channels.http import Answer, get_json, post_json
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.secrets import get_parameter
from opsbot.settings import settings

LABEL = "Feishu app"
TOKEN_MARGIN_SECONDS = 300
STALE_TOKEN = {99991661, 99991663, 99991677}
TOO_FREQUENT = {230020, 99991400}
TOO_FREQUENT_DELAY = 10
NOT_READABLE = {230001, 230002, 230006, 230013, 230027, 230050, 230110}  # no message this app may read

_token: dict = {}  # app id -> (token, refresh after), per container
_lock = threading.Lock()
_known: dict = {}  # (app id, what) -> what Feishu said of it that never changes: the bot's open_id, chats' modes


def configured() -> bool:
    return bool(settings().feishu_app_id)


def forget_token() -> None:
    """Drop the container's token and what it knows of the app (tests; a token Feishu refuses is dropped by the
    call that saw it)."""
    _token.clear()
    _known.clear()


def _url(path: str) -> str:
    return f"{settings().feishu_api_url}/open-apis/{path}"


def _code(answer: Answer) -> int:
    body = answer.body if answer.is_json and isinstance(answer.body, dict) else {}
    code = body.get("code")
    return code if isinstance(code, int) else -1


def _reason(answer: Answer) -> str:
    body = answer.body if answer.is_json and isinstance(answer.body, dict) else {}
    return f"HTTP {answer.status}, Feishu code {_code(answer)} {str(body.get('msg') or '')[:200]}".strip()


def _tenant_token() -> str:
    app_id = settings().feishu_app_id
    with _lock:
        held = _token.get(app_id)
        if held and held[1] > time.time():
            return held[0]
    try:
        answer = post_json(
            _url("auth/v3/tenant_access_token/internal"),
            {"app_id": app_id, "app_secret": get_parameter(settings().feishu_app_secret_param)},
            f"{LABEL} token",
        )
    except RetryLater as exc:  # asking for a token does nothing in Feishu: a lost answer leaves nothing in doubt
        raise RetryLater(exc.reason, delay=exc.delay) from None
    body = answer.body if answer.is_json and isinstance(answer.body, dict) else {}
    token, expire = body.get("tenant_access_token"), body.get("expire")
    if answer.status == 429 or _code(answer) in TOO_FREQUENT:
        raise RetryLater(f"{LABEL} token: {_reason(answer)}", delay=TOO_FREQUENT_DELAY)
    if _code(answer) != 0 or not isinstance(token, str) or not token:
        # A wrong app id or secret (10003, 10014), a disabled app: an operator's fix, not a retry's.
        raise PermanentFailure(f"{LABEL} {app_id} has no tenant access token: {_reason(answer)}")
    lifetime = expire if isinstance(expire, int) and expire > 0 else 7200
    with _lock:
        _token[app_id] = (token, time.time() + max(lifetime - TOKEN_MARGIN_SECONDS, 60))
    return token


def _authorized(call) -> Answer:
    """`call(headers)` with the tenant token, once more with a new token when Feishu no longer takes the first."""
    for _ in range(2):
        answer = call({"Authorization": f"Bearer {_tenant_token()}"})
        if _code(answer) not in STALE_TOKEN:
            return answer
        _token.pop(settings().feishu_app_id, None)
    raise RetryLater(f"{LABEL}: the tenant access token was refused twice ({_reason(answer)})")


def _too_frequent(answer: Answer, what: str) -> RetryLater | None:
    if answer.status != 429 and _code(answer) not in TOO_FREQUENT:
        return None
    reset = answer.headers.get("x-ogw-ratelimit-reset", "")
    delay = int(reset) + 1 if reset.isdigit() else TOO_FREQUENT_DELAY
    return base.rate_limited("feishu", f"{LABEL} {what}", _reason(answer), delay)


def message(message_id: str) -> dict | None:
    """The message as Feishu's API has it (`data.items[0]`), or None when there is none this app may read."""
    url = _url(f"im/v1/messages/{quote(message_id, safe='')}")
    answer = _authorized(lambda headers: get_json(url, f"{LABEL} message", headers))
    if (limited := _too_frequent(answer, "message")) is not None:
        raise limited
    code = _code(answer)
    if code in NOT_READABLE or answer.status == 404:
        return None
    items = ((answer.body.get("data") or {}).get("items") if isinstance(answer.body, dict) else None) or []
    if code != 0 or not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise RetryLater(f"{LABEL} message: {_reason(answer)}")
    return items[0]


def _data(answer: Answer, what: str) -> dict:
    if (limited := _too_frequent(answer, what)) is not None:
        raise limited
    if _code(answer) != 0 or not isinstance(answer.body, dict):
        raise RetryLater(f"{LABEL} {what}: {_reason(answer)}")
    return answer.body


def bot_open_id() -> str:
    """The app bot's own open_id, as a message's `mentions[].id` names it."""
    key = (settings().feishu_app_id, "bot")
    if key not in _known:
        url = _url("bot/v3/info")
        body = _data(_authorized(lambda headers: get_json(url, f"{LABEL} bot info", headers)), "bot info")
        bot = body.get("bot") if isinstance(body.get("bot"), dict) else {}
        open_id = bot.get("open_id")
        if not isinstance(open_id, str) or not open_id:
            raise RetryLater(f"{LABEL} bot info: no open_id")
        _known[key] = open_id
    return _known[key]


def chat_mode(chat_id: str) -> str:
    """`p2p`, `group` or `topic`: the chat's mode as Feishu's API has it; "" when the app may not read the chat."""
    key = (settings().feishu_app_id, f"chat#{chat_id}")
    if key not in _known:
        url = _url(f"im/v1/chats/{quote(chat_id, safe='')}")
        answer = _authorized(lambda headers: get_json(url, f"{LABEL} chat", headers))
        if answer.status == 400 or answer.status == 404 or _code(answer) in NOT_READABLE:
            return ""  # not a chat this app is in (or no such chat): not one the bot may take unaddressed messages in
        data = _data(answer, "chat").get("data")
        mode = data.get("chat_mode") if isinstance(data, dict) else None
        _known[key] = mode if isinstance(mode, str) else ""
    return _known[key]


def reply_url(message_id: str) -> str:
    """Where a reply to `message_id` goes: the conversation's reply_url (message.Conversation)."""
    return _url(f"im/v1/messages/{quote(message_id, safe='')}/reply")


def is_reply_url(url: str) -> bool:
    prefix = _url("im/v1/messages/")
    return url.startswith(prefix) and url.endswith("/reply") and "/" not in url[len(prefix) : -len("/reply")]


def reply(url: str, msg_type: str, content: dict, uuid: str) -> None:
    """Reply with `content` (a card or a text); Feishu sends one message per `uuid` (≤ 50 characters) an hour."""
    if not is_reply_url(url):  # a reply_url is only ever reply_url()'s; anything else would carry our token away
        raise PermanentFailure(f"{LABEL}: not a Feishu reply URL")
    body = {"msg_type": msg_type, "content": json.dumps(content, ensure_ascii=False), "uuid": uuid[:50]}
    answer = _authorized(lambda headers: post_json(url, body, f"{LABEL} reply", headers))
    if (limited := _too_frequent(answer, "reply")) is not None:
        raise limited
    if _code(answer) != 0:
        raise base.refused("feishu", f"{LABEL} reply", _reason(answer))
