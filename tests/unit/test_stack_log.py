"""The local stack's terminal: one short line per log event by default, the JSON with --verbose, and every JSON line
in the stack's log file either way (local/stack_log.py)."""

from __future__ import annotations

import io
import json

from local import stack_log

RECORD = {
    "level": "INFO",
    "location": "run_record:92",
    "message": "job done",
    "timestamp": "2026-12-07 23:01:14,118+0000",
    "service": "opsbot",
    "cold_start": False,
    "function_name": "WorkerFunction",
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:WorkerFunction",
    "function_request_id": "5f276e9d-3865-4ab8-8f1f-6b8c35220435",
    "correlation_id": "3b8f8a45e67741b68aeba691e33df33d",
    "kind": "chat.command",
    "project": "shop-api",
    "xray_trace_id": "1-" + "0" * 30,
}


def test_an_event_is_one_short_line_with_its_telling_fields():
    assert stack_log.one_line(RECORD) == "23:01:14 worker job done · kind=chat.command project=shop-api"
    warning = dict(RECORD, level="WARNING", message="peer unavailable for a read", peer="Drone", kind="")
    assert (
        stack_log.one_line(warning)
        == "23:01:14 worker WARNING peer unavailable for a read · project=shop-api peer=Drone"
    )
    long = stack_log.one_line(dict(RECORD, reason="x" * 500))
    assert len(long) == stack_log.MAX_LINE and long.endswith("…")
    assert stack_log.short_function("DingtalkBotFunction") == "dingtalk-bot"


def test_the_function_running_in_the_thread_names_the_line():
    stack_log.RUNNING.function = "ActionsFunction"  # all functions share one logger in the stack's process
    try:
        assert stack_log.one_line(RECORD).startswith("23:01:14 actions ")
    finally:
        stack_log.RUNNING.function = ""


def test_the_file_gets_every_json_line_and_the_terminal_a_short_one(tmp_path):
    terminal = io.StringIO()
    tee = stack_log.Tee(tmp_path / "work" / "stack.log", terminal=terminal)
    line = json.dumps(RECORD)
    tee.write(line[:40])  # a logger may write a line in pieces
    tee.write(line[40:] + "\n")
    tee.write("not json\n")
    tee.flush()
    assert (tmp_path / "work" / "stack.log").read_text().splitlines() == [line, "not json"]
    assert terminal.getvalue().splitlines() == [stack_log.one_line(RECORD), "not json"]


def test_verbose_prints_the_json_itself(tmp_path):
    terminal = io.StringIO()
    tee = stack_log.Tee(tmp_path / "stack.log", verbose=True, terminal=terminal)
    tee.write(json.dumps(RECORD) + "\n")
    assert json.loads(terminal.getvalue()) == RECORD
