"""A fake DingTalk robot API that behaves like the real one where opsbot cares.

- `POST /robot/send?access_token=…&timestamp=…&sign=…` checks the token, the 加签 signature and its
  timestamp (310000 on failure), the body (msgtype, 20,000-byte limit), and the rate limit: past 20 messages
  in any 60 seconds it answers 130101 and mutes the robot for 10 minutes, as DingTalk does.
- `POST /robot/sendBySession?session=…` is a callback's sessionWebhook: unsigned, as DingTalk's is, and open
  only for sessions this fake handed out (`local-session-…`), so a reply to a made-up session fails loudly.
- It prints every accepted message, so `make run` shows the chat.
- DingTalk's web login and the user endpoints that release links use (local/fake_dingtalk_login.py): the
  authorize page, the code exchange, the signed-in user, the app token and a user's staff id by unionId.
- `/_control/…` lets tests read what arrived, inject faults (HTTP 500s, or down for good) and reset a robot's
  secret (`/_control/rotate`), as the group's admin would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

from local import loopback
from local.fake_dingtalk_login import FakeDingTalkLogin

RATE_LIMIT, RATE_WINDOW, MUTE_SECONDS = 20, 60.0, 600.0
MAX_BODY_BYTES = 20000
SESSION_PREFIX = "local-session-"


class FakeDingTalk:
    def __init__(
        self,
        robots: dict[str, tuple[str, str]],
        echo: bool = True,
        app_key: str = "dinglocalappkey",
        app_secret: str = "",
        staff: list[dict] | None = None,
    ):
        self.robots = robots  # access_token -> (robot name, signing secret)
        self.echo = echo
        self.lock = threading.Lock()
        # The organisation's app (its AppKey and AppSecret) and staff, for the web login of release links.
        self.login = FakeDingTalkLogin(app_key, app_secret, staff or [])
        self.reset()

    def reset(self) -> None:
        self.accepted: list[dict] = []
        self.rejected: list[dict] = []
        self.sends: dict[str, list[float]] = {}
        self.muted_until: dict[str, float] = {}
        self.scripted: dict[str, list[int]] = {}
        self.down: set[str] = set()
        self.login.reset()

    def _reject(self, token, errcode, errmsg, status=200):
        self.rejected.append({"at": time.time(), "access_token": token, "errcode": errcode, "status": status})
        return status, {"errcode": errcode, "errmsg": errmsg}

    def robot_send(self, query: dict, body: bytes) -> tuple[int, dict]:
        token = query.get("access_token", [""])[0]
        with self.lock:
            if token in self.down:
                return self._reject(token, -1, "service unavailable", status=500)
            if self.scripted.get(token):
                return self._reject(token, -1, "internal error", status=self.scripted[token].pop(0))
            if token not in self.robots:
                return self._reject(token, 400101, "access_token不存在")
            name, secret = self.robots[token]
            timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600 * 1000:
                return self._reject(token, 310000, "invalid timestamp")
            expected = base64.b64encode(
                hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
            ).decode()
            if not hmac.compare_digest(expected, sign):
                return self._reject(token, 310000, "sign not match")
            if len(body) > MAX_BODY_BYTES:
                return self._reject(token, 460101, "message too long")
            try:
                message = json.loads(body)
                assert isinstance(message, dict) and message.get("msgtype") in (
                    "text",
                    "markdown",
                    "actionCard",
                    "link",
                    "feedCard",
                )
            except (ValueError, AssertionError):
                return self._reject(token, 40035, "缺少参数 json")
            now = time.time()
            if self.muted_until.get(token, 0) > now:
                return self._reject(token, 130101, "send too fast, exceed 20 times per minute")
            recent = [t for t in self.sends.get(token, []) if t > now - RATE_WINDOW]
            if len(recent) >= RATE_LIMIT:
                self.muted_until[token] = now + MUTE_SECONDS
                return self._reject(token, 130101, "send too fast, exceed 20 times per minute")
            self.sends[token] = recent + [now]
            self.accepted.append({"at": now, "robot": name, "access_token": token, "message": message})
        if self.echo:
            print(render_for_terminal(name, message), flush=True)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def session_send(self, query: dict, body: bytes) -> tuple[int, dict]:
        session = query.get("session", [""])[0]
        token = f"session:{session}"
        with self.lock:
            if not session.startswith(SESSION_PREFIX):
                return self._reject(token, 300001, "session is invalid or expired")
            try:
                message = json.loads(body)
                assert isinstance(message, dict) and message.get("msgtype") in ("text", "markdown", "actionCard")
            except (ValueError, AssertionError):
                return self._reject(token, 40035, "缺少参数 json")
            self.accepted.append({"at": time.time(), "robot": "session", "access_token": token, "message": message})
        if self.echo:
            print(render_for_terminal("reply in the conversation", message), flush=True)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        with self.lock:
            if method == "GET" and path == "/_control/messages":
                return 200, {"messages": self.accepted}
            if method == "GET" and path == "/_control/rejections":
                return 200, {"rejections": self.rejected}
            if method == "POST" and path == "/_control/reset":
                self.reset()
                return 200, {"ok": True}
            if method == "POST" and path == "/_control/rotate":  # the group's admin reset the robot's 加签 secret
                spec = json.loads(body or b"{}")
                name, _ = self.robots[spec["access_token"]]
                self.robots[spec["access_token"]] = (name, spec["secret"])
                return 200, {"ok": True}
            if method == "POST" and path == "/_control/faults":
                spec = json.loads(body or b"{}")
                token = spec["access_token"]
                self.scripted[token] = list(spec.get("statuses", []))
                (self.down.add if spec.get("down") else self.down.discard)(token)
                return 200, {"ok": True}
        return 404, {"error": "unknown control path"}


def render_for_terminal(robot: str, message: dict) -> str:
    kind = message.get("msgtype")
    part = message.get(kind) or {}
    text = part.get("text") or part.get("content") or json.dumps(part, ensure_ascii=False)
    for button in part.get("btns") or []:
        text += f"\n[{button.get('title')}] {button.get('actionURL')}"
    at = message.get("at") or {}
    mentions = ", ".join(at.get("atUserIds", []) + at.get("atMobiles", []))
    rule = "─" * 60
    return f"\n{rule}\n💬 DingTalk robot '{robot}' ({kind}){' @ ' + mentions if mentions else ''}\n{text}\n{rule}"


def make_server(fake: FakeDingTalk, host: str, port: int, channels: tuple = ()) -> ThreadingHTTPServer:
    """The sink: DingTalk (robots, sessions, the web login), and the other chat channels' fakes on the same port
    (local/fake_feishu.py, fake_wecom.py, fake_slack.py, fake_ses.py), each on its own paths."""

    def handle(method, url, headers, body):
        for channel in channels:
            answer = channel.control(method, url.path, body) or channel.handle(method, url, headers, body)
            if answer is not None:
                return answer
        if url.path.startswith("/_control/"):
            return fake.login.control(method, url.path, body) or fake.control(method, url.path, body)
        if method == "GET" and url.path == "/oauth2/auth":
            return fake.login.authorize(parse_qs(url.query))
        if (answer := fake.login.api(method, url.path, parse_qs(url.query), headers, body)) is not None:
            return answer
        if method == "POST" and url.path == "/robot/send":
            return fake.robot_send(parse_qs(url.query), body)
        if method == "POST" and url.path == "/robot/sendBySession":
            return fake.session_send(parse_qs(url.query), body)
        return 404, {"errcode": 404, "errmsg": "not found"}

    return loopback.json_server(handle, host, port, json_type="application/json;charset=utf-8")
