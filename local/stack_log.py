"""Where the local stack's log lines go: every JSON line (as CloudWatch would keep it) to a file in the stack's
working directory, and to the terminal either one short line per event (the default, between the cards) or the JSON
itself (`--verbose`).

    12:01:14 worker   job done · kind=chat.command project=shop-api
"""

from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path

# The fields worth a glance, in this order; the rest (the Lambda context, ids) stay in the file.
SHOWN = (
    "kind",
    "command",
    "outcome",
    "project",
    "repo",
    "build",
    "status",
    "robot",
    "channel",
    "target",
    "peer",
    "reason",
    "error",
)
MAX_LINE = 160
# The function running in this thread (LocalFunction.invoke sets it): every function shares one logger in the stack's
# process, so a record's own function_name may be another's.
RUNNING = threading.local()


def short_function(name: str) -> str:
    """`DingtalkBotFunction` → `dingtalk-bot`, `WorkerFunction` → `worker`."""
    import re

    stem = name.removesuffix("Function") or "opsbot"
    return re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower()


def one_line(record: dict) -> str:
    """A JSON log line as one short line: time, function, level (when not INFO), message, the telling fields."""
    clock = str(record.get("timestamp", ""))[11:19]
    where = short_function(getattr(RUNNING, "function", "") or str(record.get("function_name") or ""))
    level = str(record.get("level", "INFO"))
    parts = [f"{clock} {where:<14}", "" if level == "INFO" else f"{level} ", str(record.get("message", ""))]
    fields = [f"{key}={record[key]}" for key in SHOWN if record.get(key) not in (None, "", [], {})]
    text = "".join(parts) + (" · " + " ".join(fields) if fields else "")
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


class Tee(io.TextIOBase):
    """The stream the functions' logger writes to: each whole line goes to `path`, and to the terminal as
    `verbose` says."""

    def __init__(self, path: Path, verbose: bool = False, terminal=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = path.open("a", encoding="utf-8")
        self.verbose = verbose
        self.terminal = terminal or sys.stdout
        self.lock = threading.Lock()
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self.file.write(line + "\n")
        self.file.flush()
        if self.verbose:
            shown = line
        else:
            try:
                shown = one_line(json.loads(line))
            except (ValueError, AttributeError):
                shown = line  # not JSON: whatever it is, as it is
        self.terminal.write(shown + "\n")
        self.terminal.flush()

    def flush(self) -> None:
        with self.lock:
            self.file.flush()
