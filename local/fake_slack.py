"""A fake Slack incoming webhook that answers as Slack does where opsbot cares.

`POST /services/<team>/<bot>/<secret>`: the whole path is the secret. A known team and bot with another secret is
403 `invalid_token`; an unknown webhook 404 `no_service`; a body without `text` or `blocks` 400 `no_text`; a
section whose text is over 3,000 characters, or over 50 blocks, 400 `invalid_blocks`; more than one message a
second 429 `rate_limited` with `Retry-After: 1`. Accepted: 200 `ok`, as text.

Button presses (the app's interactivity): `press(message, button, user)` builds the signed request Slack would post
to the app's Request URL for a press of that button (`block_actions`, form-encoded `payload`, v0 signature) with a
fresh `response_url` under `/actions/`, which takes at most 5 posts within 30 minutes (then 404 `used_url` /
`expired_url`), as Slack's do; a post with `replace_original` replaces the message (`.replaced`), any other is
shown to the presser alone (`.ephemeral`). `POST /_control/slack/press` `{"message", "button", "user", "app_id",
"base_url"}` answers `{"body": …}`, the form such a press posts (for `make press` and the integration tests);
`POST /_control/slack/responses` `{"url": path}` what was posted to one response_url, in order;
`POST /_control/slack/response_url` a fresh one's path (`make send` gives a press sample one).

The app's bot (the Events API and the Web API): `say(user, text, channel)` is a person writing to the bot, and
builds the signed `event_callback` Slack would post to the app's events Request URL (`app_mention` in a channel,
`message` with `channel_type: im` in a direct message, whose channel ids start with `D`), with a fresh `event_id`
and the message's `ts`. `POST /api/chat.postMessage` is the Web API's: `Authorization: Bearer <bot token>` (none:
`not_authed`, another: `invalid_auth`, both HTTP 200 with `ok: false` as Slack answers), a channel it knows
(`channel_not_found` otherwise), a fourth message within a second into a channel 429 `ratelimited` with
`Retry-After: 1`; accepted, `{"ok": true, "channel", "ts"}`, kept in `.posted`. `POST /_control/slack/say`
`{"user", "text", "channel"}` answers `{"body": …}` (the event's JSON, to sign and post); `GET
/_control/slack/posted` what the bot posted, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

from local.fake_channel import FakeChannel

PATH = "/services/"
ACTIONS = "/actions/"
WEB_API = "/api/"
BOT_USER = "U0OPSBOT"  # the app's bot user: what an @-mention of it says (`<@U0OPSBOT>`)
POST_BURST = 3  # chat.postMessage: about one a second per channel, "allowing for short bursts" (Slack's words)
CHANNELS = ("C0SHOP", "C0OPS")  # the workspace's channels the bot is in; any D… is a direct message with it
RESPONSE_URL_USES, RESPONSE_URL_SECONDS = 5, 30 * 60
LIMITS = ((1, 1.0),)
SECTION_CHARS, MAX_BLOCKS = 3000, 50


def _blocks_ok(message: dict) -> bool:
    blocks = message.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return False
    for block in blocks:
        if block.get("type") == "section" and len(block.get("text", {}).get("text", "")) > SECTION_CHARS:
            return False
    return True


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request to an app with (v0)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


class FakeSlack(FakeChannel):
    name, title = "slack", "Slack"

    def __init__(self, robots: dict[str, tuple[str, str]], echo: bool = True, bot_token: str = "", app_id: str = ""):
        self.bot_token, self.app_id = bot_token, app_id  # the app's Bot User OAuth Token and App ID
        super().__init__(robots, echo)

    def reset(self) -> None:
        super().reset()
        self.posted: list[dict] = []  # chat.postMessage, accepted
        self.post_times: dict[str, list[float]] = {}
        self.response_urls: dict[str, dict] = {}  # path -> {"created": t, "uses": n}
        self.replaced: list[dict] = []
        self.ephemeral: list[dict] = []
        self.responses: list[dict] = []  # both, in the order they came

    def issue_response_url(self) -> str:
        """A fresh response_url's path, as Slack gives one with each interaction."""
        path = f"{ACTIONS}T0LOCAL/{uuid.uuid4().int % 10**12}/{uuid.uuid4().hex[:24]}"
        self.response_urls[path] = {"created": time.time(), "uses": 0}
        return path

    def press(self, base_url: str, app_id: str, message: dict, button: int, user: tuple[str, str]) -> bytes:
        """The form body Slack posts when `user` (member id, name) presses `message`'s `button`-th button."""
        [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
        element = actions["elements"][button]
        path = self.issue_response_url()
        now = time.time()
        payload = {
            "type": "block_actions",
            "api_app_id": app_id,
            "team": {"id": "T0LOCAL", "domain": "local"},
            "user": {"id": user[0], "username": user[1], "name": user[1], "team_id": "T0LOCAL"},
            "trigger_id": f"{int(now)}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
            "container": {"type": "message", "message_ts": f"{now:.6f}", "channel_id": "C0SHOP", "is_ephemeral": False},
            "channel": {"id": "C0SHOP", "name": "shop-backend"},
            "response_url": base_url + path,
            "actions": [
                {
                    "type": "button",
                    "block_id": "b0",
                    "action_id": element.get("action_id", ""),
                    "text": element["text"],
                    "value": element.get("value", ""),
                    "action_ts": f"{now:.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()

    def say(self, user: str, text: str, channel: str = "C0SHOP", thread_ts: str = "", at: float | None = None) -> dict:
        """The event_callback Slack sends the app when `user` writes `text` to the bot in `channel` (a mention in a
        channel, any message in a direct message `D…`)."""
        now = time.time() if at is None else at
        ts = f"{now:.6f}"
        im = channel.startswith("D")
        event = {
            "type": "message" if im else "app_mention",
            "user": user,
            "text": text if im else f"<@{BOT_USER}> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            **({"channel_type": "im"} if im else {}),
            **({"thread_ts": thread_ts} if thread_ts else {}),
        }
        return {
            "token": "deprecated-verification-token",
            "team_id": "T0LOCAL",
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(now),
            "authorizations": [{"team_id": "T0LOCAL", "user_id": BOT_USER, "is_bot": True}],
        }

    def _web_api(self, method_name: str, headers, body: bytes) -> tuple:
        """Slack's Web API as opsbot calls it: chat.postMessage only."""
        if method_name != "chat.postMessage":
            return 200, {"ok": False, "error": "unknown_method"}
        authorization = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return self.refuse("web-api", 200, {"ok": False, "error": "not_authed"}, "not_authed")
        if not self.bot_token or not hmac.compare_digest(authorization[7:].encode(), self.bot_token.encode()):
            return self.refuse("web-api", 200, {"ok": False, "error": "invalid_auth"}, "invalid_auth")
        try:
            message = json.loads(body)
            assert isinstance(message, dict)
        except (ValueError, AssertionError):
            return self.refuse("web-api", 200, {"ok": False, "error": "invalid_json"}, "invalid_json")
        channel = message.get("channel")
        if not isinstance(channel, str) or not (channel in CHANNELS or channel.startswith("D")):
            return self.refuse("web-api", 200, {"ok": False, "error": "channel_not_found"}, "channel_not_found")
        if not message.get("text") and not message.get("blocks"):
            return self.refuse("web-api", 200, {"ok": False, "error": "no_text"}, "no_text")
        if not _blocks_ok(message):
            return self.refuse("web-api", 200, {"ok": False, "error": "invalid_blocks"}, "invalid_blocks")
        now = time.time()
        recent = [t for t in self.post_times.get(channel, []) if t > now - 1.0]
        if len(recent) >= POST_BURST:  # about one message a second per channel, short bursts allowed
            self.rejected.append({"at": now, "robot": "web-api", "status": 429, "reason": "ratelimited"})
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        self.post_times[channel] = [*recent, now]
        ts = f"{now:.6f}"
        self.posted.append({**message, "ts": ts})
        self.accept("chat.postMessage", message)
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.get("text", "")}}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
        if method == "POST" and path == f"/_control/{self.name}/say":
            spec = json.loads(body or b"{}")
            with self.lock:
                event = self.say(spec["user"], spec["text"], spec.get("channel") or "C0SHOP", spec.get("thread_ts", ""))
            return 200, {"body": json.dumps(event, ensure_ascii=False)}
        if method == "GET" and path == f"/_control/{self.name}/posted":
            with self.lock:
                return 200, {"posted": list(self.posted)}
        if method == "POST" and path == f"/_control/{self.name}/press":
            spec = json.loads(body or b"{}")
            with self.lock:
                form = self.press(spec["base_url"], spec["app_id"], spec["message"], spec["button"], spec["user"])
            return 200, {"body": form.decode()}
        if method == "POST" and path == f"/_control/{self.name}/response_url":
            with self.lock:
                return 200, {"path": self.issue_response_url()}
        if method == "POST" and path == f"/_control/{self.name}/responses":
            wanted = json.loads(body or b"{}")["url"]
            with self.lock:
                return 200, {"responses": [m for m in self.responses if m["url"] == wanted]}
        return super().control(method, path, body)

    def _respond(self, path: str, body: bytes) -> tuple:
        issued = self.response_urls.get(path)
        if issued is None:
            return self.refuse(path, 404, "no_service", "404 no_service")
        if time.time() - issued["created"] > RESPONSE_URL_SECONDS:
            return self.refuse(path, 404, "expired_url", "404 expired_url")
        if issued["uses"] >= RESPONSE_URL_USES:
            return self.refuse(path, 404, "used_url", "404 used_url")
        try:
            message = json.loads(body)
            assert isinstance(message, dict)
        except (ValueError, AssertionError):
            return self.refuse(path, 400, "invalid_payload", "400 invalid_payload")
        if not message.get("text") and not message.get("blocks"):
            return self.refuse(path, 400, "no_text", "400 no_text")
        issued["uses"] += 1
        shown = {"url": path, **message}
        (self.replaced if message.get("replace_original") else self.ephemeral).append(shown)
        self.responses.append(shown)
        self.accept("response_url", message)
        return 200, "ok"

    def handle(self, method: str, url, headers, body: bytes) -> tuple | None:
        path = url.path
        if method == "POST" and path.startswith(WEB_API):
            with self.lock:
                return self._web_api(path[len(WEB_API) :], headers, body)
        if method == "POST" and path.startswith(ACTIONS):
            with self.lock:
                return self._respond(path, body)
        if not (method == "POST" and path.startswith(PATH)):
            return None
        hook = path[len(PATH) :]
        with self.lock:
            if (status := self.fault(hook)) is not None:
                return self.refuse(hook, status, "internal_error", f"HTTP {status}")
            if hook not in self.robots:
                known = any(k.rsplit("/", 1)[0] == hook.rsplit("/", 1)[0] for k in self.robots)
                return (
                    self.refuse(hook, 403, "invalid_token", "403")
                    if known
                    else self.refuse(hook, 404, "no_service", "404")
                )
            try:
                message = json.loads(body)
                assert isinstance(message, dict)
            except (ValueError, AssertionError):
                return self.refuse(hook, 400, "invalid_payload", "400 invalid_payload")
            if not message.get("text") and not message.get("blocks"):
                return self.refuse(hook, 400, "no_text", "400 no_text")
            if not _blocks_ok(message):
                return self.refuse(hook, 400, "invalid_blocks", "400 invalid_blocks")
            if self.over_limit(hook, LIMITS, time.time()):
                self.rejected.append({"at": time.time(), "robot": hook, "status": 429, "reason": "429"})
                return 429, "rate_limited", {"Retry-After": "1"}
            self.accept(hook, message)
        return 200, "ok"

    def for_terminal(self, body: dict) -> str:
        parts = [body.get("text", "")]
        for block in body.get("blocks") or []:
            if block.get("type") == "section":
                parts.append(block["text"]["text"])
            for element in block.get("elements") or []:
                parts.append(f"[{element['text']['text']}] {element.get('url') or element.get('action_id', '')}")
        return "\n".join(parts)
