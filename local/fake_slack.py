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

    def reset(self) -> None:
        super().reset()
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

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
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
