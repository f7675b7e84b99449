"""A fake Feishu (Lark) custom bot webhook that answers as Feishu does where opsbot cares.

`POST /open-apis/bot/v2/hook/<token>`: an unknown token is code 19001 (the hook's token is invalid); the body must
be JSON with `timestamp` (seconds, within an hour) and `sign` (base64 of HMAC-SHA256 keyed with
`timestamp\\nsecret` over nothing), else code 19021; a body over 20 KB, or a message that is not a text, post or
interactive card with a header and elements, is code 9499 (Bad Request); past 5 messages in a second or 100 in a
minute it is code 11232 (frequency limited). Accepted: `{"code": 0, "msg": "success", "data": {}}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from local.fake_channel import FakeChannel

PATH = "/open-apis/bot/v2/hook/"
MAX_BODY_BYTES = 20_000
LIMITS = ((5, 1.0), (100, 60.0))


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


class FakeFeishu(FakeChannel):
    name, title = "feishu", "Feishu"

    def handle(self, method: str, url, headers, body: bytes) -> tuple[int, dict] | None:
        path = url.path
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
