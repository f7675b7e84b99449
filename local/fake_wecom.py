"""A fake WeCom (企业微信) group robot webhook that answers as WeCom does where opsbot cares.

`POST /cgi-bin/webhook/send?key=KEY`: an unknown key is errcode 93000 (invalid webhook url); a markdown message
whose content is over 4,096 bytes is errcode 40058; a text one over 2,048 bytes too; past 20 messages a minute
it is errcode 45009 (api freq out of limit). Accepted: `{"errcode": 0, "errmsg": "ok"}`.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from local.fake_channel import FakeChannel

PATH = "/cgi-bin/webhook/send"
LIMITS = ((20, 60.0),)
MAX_BYTES = {"markdown": 4096, "text": 2048}


class FakeWeCom(FakeChannel):
    name, title = "wecom", "WeCom"

    def handle(self, method: str, url, headers, body: bytes) -> tuple[int, dict] | None:
        if not (method == "POST" and url.path == PATH):
            return None
        key = parse_qs(url.query).get("key", [""])[0]
        hint = ", hint: [local], more info at https://open.work.weixin.qq.com/devtool/query"
        with self.lock:
            if (status := self.fault(key)) is not None:
                return self.refuse(key, status, {"errcode": -1, "errmsg": "system busy"}, f"HTTP {status}")
            if key not in self.robots:
                return self.refuse(key, 200, {"errcode": 93000, "errmsg": "invalid webhook url" + hint}, "93000")
            try:
                message = json.loads(body)
                kind = message["msgtype"]
                content = message[kind]["content"]
                assert kind in MAX_BYTES and isinstance(content, str)
            except (ValueError, KeyError, TypeError, AssertionError):
                return self.refuse(key, 200, {"errcode": 40008, "errmsg": "invalid message type" + hint}, "40008")
            if len(content.encode()) > MAX_BYTES[kind]:
                errmsg = f"{kind}.content exceed max length {MAX_BYTES[kind]}" + hint
                return self.refuse(key, 200, {"errcode": 40058, "errmsg": errmsg}, "40058")
            if self.over_limit(key, LIMITS, time.time()):
                return self.refuse(key, 200, {"errcode": 45009, "errmsg": "api freq out of limit" + hint}, "45009")
            self.accept(key, message)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def for_terminal(self, body: dict) -> str:
        return body[body["msgtype"]]["content"]
