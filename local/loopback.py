"""HTTP on loopback for the local stack's API and its fakes (DingTalk, Drone, GitLab): quiet threaded servers,
and the JSON answering the fakes share."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import ParseResult, urlparse

# (method, parsed URL, request headers, body) -> (status, JSON-able payload or text[, extra response headers])
Handle = Callable[[str, ParseResult, object, bytes], tuple]


class LoopbackHandler(BaseHTTPRequestHandler):
    """Every method goes to `_handle`; no access log."""

    # Headers and body go out in separate writes; with Nagle on, a keep-alive client waits ~40 ms for them.
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        raise NotImplementedError

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, *args):
        pass


HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_PAGE_STYLE = (
    'body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px 16px;'
    "background:#f5f6f7;color:#1f2329;overflow-wrap:break-word}main{max-width:720px;margin:0 auto;background:#fff;"
    "border-radius:12px;padding:20px}h1{font-size:20px}dt{color:#646a73;font-size:13px;margin-top:10px}"
    "dd{margin:2px 0 0}pre{white-space:pre-wrap;background:#f5f6f7;padding:8px;border-radius:6px}"
    ".note{color:#646a73;font-size:13px}"
)


def html_page(
    peer: str, title: str, facts: list[tuple[str, str]], text: str = "", status: int = 200
) -> tuple[int, str, dict]:
    """A small page of one of the local stack's fakes: where a card's link to Drone's or GitLab's web UI leads
    (`peer` says which fake), instead of the API's 401 JSON. Every value is escaped."""
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts)
    body = f"<pre>{escape(text)}</pre>" if text else ""
    return (
        status,
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{_PAGE_STYLE}</style>'
        f"</head><body><main><h1>{escape(title)}</h1><dl>{rows}</dl>{body}<p class=note>本地栈的模拟 {escape(peer)}"
        f" · the local stack's fake {escape(peer)}</p></main></body></html>",
        HTML,
    )


def serve(handler: type[LoopbackHandler], host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def json_server(handle: Handle, host: str, port: int, json_type: str = "application/json") -> ThreadingHTTPServer:
    class Handler(LoopbackHandler):
        def _handle(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload, *extra = handle(self.command, urlparse(self.path), self.headers, body)
            text = isinstance(payload, str)
            data = payload.encode() if text else json.dumps(payload, ensure_ascii=False).encode()
            headers = {
                "Content-Type": "text/plain; charset=utf-8" if text else json_type,
                **(extra[0] if extra else {}),
            }
            self.send_response(status)
            for key, value in headers.items():  # an extra Content-Type (an HTML page) replaces the default
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return serve(Handler, host, port)


class FaultyFake:
    """What the Drone and GitLab fakes share: a log of calls, faults to inject (statuses answered in turn, or
    down for good), and the `/_control/calls`, `/_control/reset` and `/_control/faults` endpoints.

    A fault may be limited to some methods (`fault_methods`, e.g. only the POSTs), and may come after the work
    is done (`fault_after`): the peer did what was asked, but its answer was lost, as with a proxy timeout."""

    calls: list[dict]
    statuses: list[int]
    down: bool
    fault_methods: set = frozenset()
    fault_after: bool = False

    def reset(self) -> None:
        raise NotImplementedError

    def clear_faults(self) -> None:
        self.statuses, self.down, self.fault_methods, self.fault_after = [], False, frozenset(), False

    def injected_fault(self, method: str = "", after: bool = False) -> int | None:
        """The status to answer instead of the real thing, as from a proxy in front, if one is due: before the
        work (`after` False) or once it is done (`after` True)."""
        if after != self.fault_after or (self.fault_methods and method not in self.fault_methods):
            return None
        if self.down or self.statuses:
            return 503 if self.down else self.statuses.pop(0)
        return None

    def common_control(self, method: str, path: str, spec: dict) -> tuple[int, dict] | None:
        if method == "GET" and path == "/_control/calls":
            return 200, {"calls": copy.deepcopy(self.calls)}
        if method == "POST" and path == "/_control/reset":
            self.reset()
            return 200, {"ok": True}
        if method == "POST" and path == "/_control/faults":
            self.statuses, self.down = list(spec.get("statuses", [])), bool(spec.get("down"))
            self.fault_methods = frozenset(spec.get("methods") or ())
            self.fault_after = bool(spec.get("after"))
            return 200, {"ok": True}
        return None
