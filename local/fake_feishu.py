"""A fake Feishu (Lark) custom bot webhook that answers as Feishu does where opsbot cares.

`POST /open-apis/bot/v2/hook/<token>`: an unknown token is code 19001 (the hook's token is invalid); the body must
be JSON with `timestamp` (seconds, within an hour) and `sign` (base64 of HMAC-SHA256 keyed with
`timestamp\\nsecret` over nothing), else code 19021; a body over 20 KB, or a message that is not a text, post or
interactive card with a header and elements, is code 9499 (Bad Request); past 5 messages in a second or 100 in a
minute it is code 11232 (frequency limited). Accepted: `{"code": 0, "msg": "success", "data": {}}`.

The app bot that takes chat (opsbot's chat/inbound/feishu.py), as Feishu's open API answers it:

- `POST /open-apis/auth/v3/tenant_access_token/internal` `{app_id, app_secret}`: a token (`t-…`, 7200 s), or code
  10014 (app secret invalid);
- `GET /open-apis/im/v1/messages/<id>`: the message as Feishu keeps it, with the sender's open_id; HTTP 400 code
  230001 for an id it does not have, 99991663 for a token it did not issue;
- `POST /open-apis/im/v1/messages/<id>/reply` `{msg_type, content (a JSON string), uuid}`: one message per uuid
  (the same uuid again answers the first reply and sends nothing), 230025 over 30 KB, 230011 for a recalled
  message; past 50 calls a second, HTTP 429 code 99991400 with `x-ogw-ratelimit-reset`;
- `GET /open-apis/bot/v3/info`: `{code: 0, bot: {open_id, app_name, activate_status}}`, the bot's own open_id
  (BOT_OPEN_ID), which a message's `mentions[].id` names when someone @-mentions it;
- `GET /open-apis/im/v1/chats/<chat_id>`: `data.chat_mode`, `group` for a group and `p2p` for a person's one-to-one
  chat with the bot; 400 code 232011 for a chat the bot is not in.

A message as the API gives it has `mentions: [{key, id, id_type, name, tenant_key}]`, `id` the open_id as a string
(the event's own `mentions[].id` is an object of ids), and `create_time` in ms as a string.

`POST /_control/feishu/say` `{"open_id", "text", "chat_type": "group"}` is a person writing to the bot (in a group
with an @-mention of it, unless `"mention": false`; a p2p message goes to that person's own chat with the bot): the
fake keeps the message and answers `{"message_id", "event"}`, the `im.message.receive_v1` callback Feishu would
post (signed with nothing: the caller adds the verification token). `GET /_control/feishu/replies` lists the bot's
replies; `POST /_control/feishu/recall` `{"message_id"}` recalls a message; `POST /_control/feishu/backdate`
`{"message_id", "seconds"}` makes a message that much older (time passing, for replays). Faults for
`"robot": "app"` apply to the app's API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from html import escape
from urllib.parse import parse_qs, urlencode

from local.fake_channel import FakeChannel

PATH = "/open-apis/bot/v2/hook/"
MAX_BODY_BYTES = 20_000
LIMITS = ((5, 1.0), (100, 60.0))
APP = "app"  # the key the app's API is known by in faults and the rate log
APP_LIMITS = ((50, 1.0), (1000, 60.0))
MAX_CARD_BYTES = 30_000
LOCAL_CHAT = "oc_localshopbackend"
BOT_OPEN_ID = "ou_opsbotlocal"  # the app bot's own open_id


def expected_sign(timestamp: str, secret: str) -> str:
    return base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def _card_ok(message: dict) -> bool:
    kind = message.get("msg_type")
    if kind == "interactive":
        card = message.get("card")
        return (
            isinstance(card, dict) and isinstance(card.get("elements"), list) and isinstance(card.get("header"), dict)
        )
    return kind in ("text", "post") and isinstance(message.get("content"), dict)


class FakeFeishuLogin:
    """Feishu's web sign-in (OAuth 2.0 authorization code), as Feishu answers it:

    - `GET /open-apis/authen/v1/authorize?client_id&redirect_uri&state` checks the app id and shows "sign in as" for
      the config's people with a `feishu_open_id` (and one stranger); with `&as=<open_id>` it redirects at once to
      `redirect_uri?code=<code>&state=<state>`, the code good once for 5 minutes;
    - `POST /open-apis/authen/v2/oauth/token` `{grant_type: authorization_code, client_id, client_secret, code,
      redirect_uri}`: `{code: 0, access_token, expires_in, token_type}`; a wrong app secret 20002, an unknown or
      used code 20003, an expired one 20004, a redirect_uri other than the authorize request's 20071 (HTTP 400);
    - `GET /open-apis/authen/v1/user_info` with the user token: `{code: 0, data: {open_id, name, …}}`.
    """

    STRANGER = ("ou_stranger0login", "路人乙")

    def __init__(self, app_id: str, app_secret: str, people: dict[str, str]):
        self.app_id, self.app_secret = app_id, app_secret
        self.people = {**people, self.STRANGER[0]: self.STRANGER[1]}  # open_id -> name
        self.codes: dict[str, tuple[str, str, float]] = {}  # code -> (open_id, redirect_uri, expires)
        self.user_tokens: dict[str, str] = {}  # token -> open_id

    def authorize(self, query: dict) -> tuple:
        one = {k: v[0] for k, v in query.items()}
        if one.get("client_id") != self.app_id or not one.get("redirect_uri", "").startswith(("http://", "https://")):
            return 400, {"code": 20029, "msg": "client_id or redirect_uri is invalid"}
        if "as" not in one:
            rows = "".join(
                f'<li><a href="/open-apis/authen/v1/authorize?{escape(urlencode({**one, "as": oid}), quote=True)}">'
                f"{escape(name)} <small>({escape(oid)})</small></a></li>"
                for oid, name in self.people.items()
            )
            page = (
                f"<!doctype html><meta charset=utf-8><h1>以谁的身份登录飞书？ Sign in to Feishu as</h1><ul>{rows}</ul>"
            )
            return 200, page, {"Content-Type": "text/html; charset=utf-8"}
        if one["as"] not in self.people:
            return 400, {"code": 20008, "msg": "user not exist"}
        code = secrets.token_hex(16)
        self.codes[code] = (one["as"], one["redirect_uri"], time.time() + 300)
        joiner = "&" if "?" in one["redirect_uri"] else "?"
        location = f"{one['redirect_uri']}{joiner}{urlencode({'code': code, 'state': one.get('state', '')})}"
        return 302, "", {"Location": location, "Cache-Control": "no-store"}

    def token(self, body: bytes) -> tuple:
        try:
            asked = json.loads(body)
            assert isinstance(asked, dict)
        except (ValueError, AssertionError):
            return 400, {"code": 20001, "error": "invalid_request", "error_description": "body is not JSON"}
        if asked.get("grant_type") != "authorization_code":
            return 400, {"code": 20001, "error": "invalid_request", "error_description": "grant_type"}
        if asked.get("client_id") != self.app_id or asked.get("client_secret") != self.app_secret:
            return 401, {"code": 20002, "error": "invalid_client", "error_description": "client secret is invalid"}
        found = self.codes.pop(str(asked.get("code")), None)
        if found is None:
            return 400, {"code": 20003, "error": "invalid_grant", "error_description": "authorization code not found"}
        open_id, redirect_uri, expires = found
        if time.time() > expires:
            return 400, {"code": 20004, "error": "invalid_grant", "error_description": "authorization code expired"}
        if asked.get("redirect_uri") != redirect_uri:
            return 400, {"code": 20071, "error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        token = "u-" + secrets.token_hex(16)
        self.user_tokens[token] = open_id
        return 200, {"code": 0, "access_token": token, "expires_in": 7200, "token_type": "Bearer", "scope": ""}

    def user_info(self, headers) -> tuple:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        open_id = self.user_tokens.get(token)
        if open_id is None:
            return 401, {"code": 20005, "msg": "invalid access token"}
        return 200, {"code": 0, "msg": "success", "data": {"open_id": open_id, "name": self.people[open_id]}}


class FakeFeishu(FakeChannel):
    name, title = "feishu", "Feishu"

    def __init__(self, robots, echo: bool = True, app: tuple[str, str] = ("", ""), open_ids: dict | None = None):
        self.app_id, self.app_secret = app
        self.app_limits = APP_LIMITS  # the app API's (calls, seconds) windows
        self.open_ids = open_ids or {}  # open_id -> name, for the terminal
        self.login = FakeFeishuLogin(self.app_id, self.app_secret, self.open_ids)
        super().__init__(robots, echo)

    def reset(self) -> None:
        super().reset()
        self.tokens: set[str] = set()
        self.user_messages: dict[str, dict] = {}
        self.replies: list[dict] = []
        self.recalled: set[str] = set()
        self.chats: dict[str, str] = {LOCAL_CHAT: "group"}  # chat_id -> chat_mode, the chats the bot is in

    # --- the app bot's API -------------------------------------------------------------------------------------
    def _app(self, method: str, path: str, headers, body: bytes) -> tuple | None:
        api = "/open-apis/"
        if not path.startswith(api) or path.startswith(PATH):
            return None
        route = path[len(api) :]
        with self.lock:
            if (status := self.fault(APP)) is not None:
                return self.refuse(APP, status, {"code": -1, "msg": "internal error"}, f"HTTP {status}")
            if self.app_limits and self.over_limit(APP, self.app_limits, time.time()):
                self.refuse(APP, 429, {}, "99991400")
                return 429, {"code": 99991400, "msg": "request trigger frequency limit"}, {"x-ogw-ratelimit-reset": "1"}
            if method == "POST" and route == "auth/v3/tenant_access_token/internal":
                return self._token(body)
            token = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if token not in self.tokens:
                return 400, {
                    "code": 99991663,
                    "msg": "Invalid access token for authorization.",
                }
            parts = route.split("/")
            if method == "GET" and parts == ["bot", "v3", "info"]:
                bot = {"activate_status": 2, "app_name": "opsbot", "avatar_url": "", "ip_white_list": []}
                return 200, {"code": 0, "msg": "ok", "bot": {**bot, "open_id": BOT_OPEN_ID}}
            if method == "GET" and len(parts) == 4 and parts[:3] == ["im", "v1", "chats"]:
                return self._chat(parts[3])
            if len(parts) < 4 or parts[:3] != ["im", "v1", "messages"]:
                return 404, {"code": 404, "msg": "404 page not found"}
            found = self.user_messages.get(parts[3])
            if found is None:
                return 400, {
                    "code": 230001,
                    "msg": "invalid request parameter, ext=message not found",
                }
            if method == "GET" and len(parts) == 4:
                return 200, {"code": 0, "msg": "success", "data": {"items": [found]}}
            if method == "POST" and len(parts) == 5 and parts[4] == "reply":
                return self._reply(found, body)
        return 404, {"code": 404, "msg": "404 page not found"}

    def _chat(self, chat_id: str) -> tuple:
        mode = self.chats.get(chat_id)
        if mode is None:
            return 400, {"code": 232011, "msg": "Operator can NOT be out of the chat."}
        data = {"chat_id": chat_id, "chat_mode": mode, "chat_type": "private", "name": "" if mode == "p2p" else chat_id}
        return 200, {"code": 0, "msg": "success", "data": data}

    def _token(self, body: bytes) -> tuple:
        try:
            asked = json.loads(body)
        except ValueError:
            asked = {}
        if not self.app_id or asked.get("app_id") != self.app_id or asked.get("app_secret") != self.app_secret:
            return 200, {"code": 10014, "msg": "app secret invalid"}
        token = f"t-{secrets.token_hex(16)}"
        self.tokens.add(token)
        return 200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200}

    def _reply(self, found: dict, body: bytes) -> tuple:
        message_id = found["message_id"]
        if message_id in self.recalled:
            return 400, {"code": 230011, "msg": "The message was withdrawn."}
        if len(body) > MAX_CARD_BYTES:
            return 400, {"code": 230025, "msg": "The length of the message content reaches its limit."}
        try:
            asked = json.loads(body)
            content = json.loads(asked["content"])
            assert asked.get("msg_type") in ("text", "interactive") and isinstance(content, dict)
            assert asked["msg_type"] == "text" or _card_ok({"msg_type": "interactive", "card": content})
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"code": 230001, "msg": "Your request contains an invalid request parameter."}
        uuid = str(asked.get("uuid") or "")
        earlier = next((r for r in self.replies if uuid and r["uuid"] == uuid and r["at"] > time.time() - 3600), None)
        if earlier is None:
            earlier = {"at": time.time(), "uuid": uuid, "to": message_id, "id": f"om_{secrets.token_hex(12)}"}
            earlier.update({"msg_type": asked["msg_type"], "content": content})
            self.replies.append(earlier)
            if self.echo:
                rule = "─" * 60
                shown = self.for_terminal({"card": content}) if asked["msg_type"] == "interactive" else content
                print(f"\n{rule}\n💬 Feishu reply in {found['chat_id']}\n{shown}\n{rule}", flush=True)
        return 200, {"code": 0, "msg": "success", "data": {"message_id": earlier["id"], "chat_id": found["chat_id"]}}

    def say(self, spec: dict) -> dict:
        """A person's message to the bot: kept as Feishu keeps it, and the event callback Feishu would post."""
        now_ms = str(int(time.time() * 1000))
        message_id = f"om_{secrets.token_hex(12)}"
        chat_type = spec.get("chat_type", "group")
        mention = chat_type == "group" and spec.get("mention", True)
        said = spec["text"].encode("utf-8", "replace").decode("utf-8")  # Feishu keeps text, never a lone surrogate
        text = f"@_user_1 {said}" if mention else said
        content = json.dumps({"text": text}, ensure_ascii=False)
        mentions = [{"key": "@_user_1", "id": BOT_OPEN_ID, "id_type": "open_id", "name": "opsbot"}]
        mentions = [{**m, "tenant_key": "local"} for m in mentions] if mention else []
        chat_id = spec.get("chat_id") or (LOCAL_CHAT if chat_type == "group" else f"oc_p2p_{spec['open_id']}")
        self.chats.setdefault(chat_id, "p2p" if chat_type == "p2p" else "group")
        self.user_messages[message_id] = {
            "message_id": message_id,
            "msg_type": spec.get("msg_type", "text"),
            "create_time": now_ms,
            "chat_id": chat_id,
            "sender": {"id": spec["open_id"], "id_type": "open_id", "sender_type": "user", "tenant_key": "local"},
            "body": {"content": content},
            "mentions": mentions,
        }
        event = {
            "schema": "2.0",
            "header": {
                "event_id": secrets.token_hex(16),
                "event_type": "im.message.receive_v1",
                "create_time": now_ms,
                "token": "",
                "app_id": self.app_id,
                "tenant_key": "local",
            },
            "event": {
                "sender": {"sender_id": {"open_id": spec["open_id"]}, "sender_type": "user", "tenant_key": "local"},
                "message": {
                    "message_id": message_id,
                    "create_time": now_ms,
                    "chat_id": chat_id,
                    "chat_type": chat_type,
                    "message_type": spec.get("msg_type", "text"),
                    "content": content,
                    "mentions": [
                        {"key": m["key"], "id": {"open_id": m["id"]}, "name": m["name"], "tenant_key": m["tenant_key"]}
                        for m in mentions
                    ],
                },
            },
        }
        if self.echo:
            who = self.open_ids.get(spec["open_id"], spec["open_id"])
            print(f"\n🗨  Feishu: {who} in {chat_id}: {spec['text']}", flush=True)
        return {"message_id": message_id, "event": event}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
        prefix = f"/_control/{self.name}/"
        action = path[len(prefix) :] if path.startswith(prefix) else ""
        with self.lock:
            if method == "POST" and action == "say":
                return 200, self.say(json.loads(body or b"{}"))
            if method == "GET" and action == "replies":
                return 200, {"replies": self.replies}
            if method == "POST" and action == "recall":
                self.recalled.add(json.loads(body or b"{}").get("message_id", ""))
                return 200, {"ok": True}
            if method == "POST" and action == "backdate":
                spec = json.loads(body or b"{}")
                found = self.user_messages[spec["message_id"]]
                found["create_time"] = str(int(found["create_time"]) - int(spec["seconds"] * 1000))
                return 200, {"ok": True, "create_time": found["create_time"]}
        return super().control(method, path, body)

    def handle(self, method: str, url, headers, body: bytes) -> tuple[int, dict] | None:
        path = url.path
        with self.lock:  # the web sign-in (release links), which the app bot's token rules do not cover
            if method == "GET" and path == "/open-apis/authen/v1/authorize":
                return self.login.authorize(parse_qs(url.query))
            if method == "POST" and path == "/open-apis/authen/v2/oauth/token":
                return self.login.token(body)
            if method == "GET" and path == "/open-apis/authen/v1/user_info":
                return self.login.user_info(headers)
        if (answer := self._app(method, path, headers, body)) is not None:
            return answer
        if not (method == "POST" and path.startswith(PATH)):
            return None
        token = path[len(PATH) :]
        with self.lock:
            if (status := self.fault(token)) is not None:
                return self.refuse(token, status, {"code": -1, "msg": "internal error"}, f"HTTP {status}")
            if token not in self.robots:
                return self.refuse(
                    token, 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}, "19001"
                )
            if len(body) > MAX_BODY_BYTES:
                return self.refuse(token, 200, {"code": 9499, "msg": "Bad Request"}, "9499 body over 20 KB")
            try:
                message = json.loads(body)
                assert isinstance(message, dict)
            except (ValueError, AssertionError):
                return self.refuse(token, 200, {"code": 9499, "msg": "Bad Request"}, "9499 not JSON")
            _, secret = self.robots[token]
            timestamp, given = str(message.get("timestamp", "")), str(message.get("sign", ""))
            fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 3600
            if not fresh or not hmac.compare_digest(expected_sign(timestamp, secret), given):
                return self.refuse(
                    token,
                    200,
                    {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"},
                    "19021",
                )
            if not _card_ok(message):
                return self.refuse(token, 200, {"code": 9499, "msg": "Bad Request"}, "9499 message shape")
            if self.over_limit(token, LIMITS, time.time()):
                return self.refuse(token, 200, {"code": 11232, "msg": "frequency limited"}, "11232")
            self.accept(token, message)
        return 200, {"code": 0, "msg": "success", "data": {}}

    def for_terminal(self, body: dict) -> str:
        card = body.get("card") or {}
        title = ((card.get("header") or {}).get("title") or {}).get("content", "")
        parts = [title]
        for element in card.get("elements") or []:
            if element.get("tag") == "div":
                parts.append(element["text"]["content"])
            for action in element.get("actions") or []:
                parts.append(f"[{action['text']['content']}] {action.get('url', '')}")
        return "\n".join(parts)
