"""Services' health URLs for the local stack, served on the chat sink's port: `GET /_health/<name>` answers 200
`{"status": "ok"}`, or what `/_control/health` scripted for that name (a 503 to fail a release's verification).
A GitOps environment's `verify.url` points here locally; on AWS it is the service's own health URL."""

from __future__ import annotations

import json
import threading


class FakeHealth:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.statuses: dict[str, int] = {}
            self.looks: dict[str, int] = {}

    def handle(self, method: str, url, headers, body: bytes) -> tuple | None:
        if method != "GET" or not url.path.startswith("/_health/"):
            return None
        name = url.path.removeprefix("/_health/")
        with self.lock:
            self.looks[name] = self.looks.get(name, 0) + 1
            status = self.statuses.get(name, 200)
        return status, {"status": "ok" if status < 300 else "unhealthy", "service": name}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
        if path == "/_control/health" and method == "POST":
            spec = json.loads(body or b"{}")
            with self.lock:
                self.statuses[str(spec["name"])] = int(spec.get("status", 200))
            return 200, {"ok": True}
        if path == "/_control/health" and method == "GET":
            with self.lock:
                return 200, {"statuses": dict(self.statuses), "looks": dict(self.looks)}
        if path == "/_control/health/reset" and method == "POST":
            self.reset()
            return 200, {"ok": True}
        return None
