"""A fake Slack incoming webhook that answers as Slack does where opsbot cares.

`POST /services/<team>/<bot>/<secret>`: the whole path is the secret. A known team and bot with another secret is
403 `invalid_token`; an unknown webhook 404 `no_service`; a body without `text` or `blocks` 400 `no_text`; a
section whose text is over 3,000 characters, or over 50 blocks, 400 `invalid_blocks`; more than one message a
second 429 `rate_limited` with `Retry-After: 1`. Accepted: 200 `ok`, as text.
"""

from __future__ import annotations

import json
import time

from local.fake_channel import FakeChannel

PATH = "/services/"
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


class FakeSlack(FakeChannel):
    name, title = "slack", "Slack"

    def handle(self, method: str, url, headers, body: bytes) -> tuple | None:
        path = url.path
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
                parts.append(f"[{element['text']['text']}] {element.get('url', '')}")
        return "\n".join(parts)
