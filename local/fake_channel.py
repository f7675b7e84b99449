"""What the fake chat webhooks share (local/fake_feishu.py, fake_wecom.py, fake_slack.py; DingTalk's own fake is
local/fake_dingtalk.py): the robots they know, a sliding log of each robot's sends against the channel's limits,
what arrived and what was refused, injected faults, and `/_control/<channel>/…` for tests:

- `GET /_control/<channel>/messages`, `GET /_control/<channel>/rejections`: what was accepted, what refused (each
  with the robot's key, the answer and the time);
- `POST /_control/<channel>/faults` `{"robot": key, "statuses": [500, 503], "down": false}`: the next sends to that
  robot answer these HTTP statuses in turn (or 503 while down), as a proxy in front would;
- `POST /_control/<channel>/rotate` `{"robot": key, "secret": new}` or `{"robot": key, "to": new key}`: the
  group's admin reset the robot's secret, or its webhook (the old one stops working), as in the chat's settings;
- `POST /_control/<channel>/reset`.

All of them share the sink's port (the DingTalk fake's): each channel's paths are its own, as its host is.
"""

from __future__ import annotations

import json
import threading
import time


class FakeChannel:
    name = ""  # the channel, in /_control/<name>/…
    title = ""  # how `make run` prints it

    def __init__(self, robots: dict[str, tuple[str, str]], echo: bool = True):
        self.robots = robots  # the robot's key in its URL -> (robot name, signing secret or "")
        self.echo = echo
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.accepted: list[dict] = []
        self.rejected: list[dict] = []
        self.sends: dict[str, list[float]] = {}
        self.scripted: dict[str, list[int]] = {}
        self.down: set[str] = set()

    # --- for the channel's handler, under self.lock -------------------------------------------------------------
    def fault(self, key: str) -> int | None:
        """An HTTP status to answer instead, while a fault is injected for this robot."""
        if key in self.down:
            return 503
        if self.scripted.get(key):
            return self.scripted[key].pop(0)
        return None

    def over_limit(self, key: str, windows: tuple[tuple[int, float], ...], now: float) -> bool:
        """True when one more send would exceed a (count, seconds) window; otherwise the send is logged."""
        log = self.sends.get(key, [])
        for count, seconds in windows:
            if len([t for t in log if t > now - seconds]) >= count:
                return True
        longest = max(seconds for _, seconds in windows)
        self.sends[key] = [t for t in log if t > now - longest] + [now]
        return False

    def refuse(self, key: str, status: int, answer, reason: str):
        self.rejected.append({"at": time.time(), "robot": key, "status": status, "reason": reason})
        return status, answer

    def accept(self, key: str, body: dict) -> None:
        name = self.robots.get(key, ("?", ""))[0]
        self.accepted.append({"at": time.time(), "robot": key, "name": name, "message": body})
        if self.echo:
            rule = "─" * 60
            print(f"\n{rule}\n💬 {self.title} robot '{name}'\n{self.for_terminal(body)}\n{rule}", flush=True)

    def for_terminal(self, body: dict) -> str:
        return json.dumps(body, ensure_ascii=False, indent=1)[:4000]

    def handle(self, method: str, url, headers, body: bytes) -> tuple | None:
        """The answer to a request on this channel's paths; None for any other path."""
        raise NotImplementedError

    # --- /_control/<name>/… ------------------------------------------------------------------------------------
    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
        prefix = f"/_control/{self.name}/"
        if not path.startswith(prefix):
            return None
        action = path[len(prefix) :]
        with self.lock:
            if method == "GET" and action == "messages":
                return 200, {"messages": self.accepted}
            if method == "GET" and action == "rejections":
                return 200, {"rejections": self.rejected}
            if method == "POST" and action == "reset":
                self.reset()
                return 200, {"ok": True}
            if method == "POST" and action == "rotate":
                spec = json.loads(body or b"{}")
                name, secret = self.robots.pop(spec["robot"])
                self.robots[spec.get("to") or spec["robot"]] = (name, spec.get("secret", secret))
                return 200, {"ok": True}
            if method == "POST" and action == "faults":
                spec = json.loads(body or b"{}")
                self.scripted[spec["robot"]] = list(spec.get("statuses", []))
                (self.down.add if spec.get("down") else self.down.discard)(spec["robot"])
                return 200, {"ok": True}
        return 404, {"error": "unknown control path"}
