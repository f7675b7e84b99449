"""Sending to one group robot within its budget: send now, or fold into the robot's next digest.

Nothing is dropped: folded news waits in DynamoDB and a delayed flush job sends it as one message as soon as
the window has room. Failures surface as RetryLater/PermanentFailure for the worker to handle.
"""

from __future__ import annotations

import time

from opsbot.config.model import Robot
from opsbot.delivery import budget
from opsbot.dingtalk import robot as robot_api
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue

DIGEST_BYTE_BUDGET = 18_000  # DingTalk takes up to 20,000 bytes per message


def _now_ms() -> int:
    return int(time.time() * 1000)


def deliver(robot: Robot, message: dict, entry: dict) -> str:
    """Send `message`, or fold `entry` (its one-line form) into the robot's digest. Returns what happened."""
    robot_api.resolve_credentials(robot)
    now = _now_ms()
    if budget.try_take_slot(robot.name, robot.rate_limit_per_minute, now):
        robot_api.send(robot, message)
        return "sent"
    budget.fold(robot.name, entry)
    if budget.claim_flush(robot.name, now):
        try:
            _schedule_flush(robot, budget.read(robot.name), now)
        except Exception:
            # No flush job exists: give the lease back so this job's retry (or the next build) schedules one.
            budget.abandon_flush_claim(robot.name, now)
            raise
    return "folded"


def _schedule_flush(robot: Robot, state: budget.RobotState, now_ms: int) -> None:
    delay = state.seconds_until_slot(robot.rate_limit_per_minute, now_ms)
    enqueue(Job(kind=kinds.DIGEST_FLUSH, payload={"robot": robot.name}), delay_seconds=delay)


def digest_message(entries: list[dict], language: str) -> dict:
    """The folded news (message.digest_entry each) as one markdown message, every @-mention kept."""
    n = len(entries)
    mobiles = sorted({m for e in entries for m in e.get("mobiles", [])})
    user_ids = sorted({u for e in entries for u in e.get("user_ids", [])})
    head = t(
        language,
        f"📦 {n} 条构建通知（合并发送，避免触发钉钉限流）",
        f"📦 {n} build notifications (sent together to stay within DingTalk's rate limit)",
    )
    text = "\n\n".join([f"#### {head}"] + [e["line"] for e in entries])
    return {
        "msgtype": "markdown",
        "markdown": {"title": t(language, f"opsbot：{n} 条构建通知", f"opsbot: {n} build notifications"), "text": text},
        "at": {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": False},
    }


def _first_batch(entries: list[dict], language: str) -> list[dict]:
    """As many of the oldest entries as fit in one message, measured as the robot API will receive it."""
    batch: list[dict] = []
    for entry in entries:
        if batch and len(robot_api.encode(digest_message(batch + [entry], language))) > DIGEST_BYTE_BUDGET:
            break
        batch.append(entry)
    return batch


def flush_digest(robot: Robot, language: str) -> str:
    """Send what is pending for this robot as one digest message, when the budget allows."""
    now = _now_ms()
    state = budget.read(robot.name)
    if not state.pending:
        if not budget.release_flush(robot.name):
            _schedule_flush(robot, budget.read(robot.name), now)
        return "empty"
    robot_api.resolve_credentials(robot)
    if not budget.try_take_slot(robot.name, robot.rate_limit_per_minute, now, for_digest=True):
        budget.renew_flush(robot.name, now)
        _schedule_flush(robot, budget.read(robot.name), now)
        return "waiting"
    batch = _first_batch(state.pending, language)
    robot_api.send(robot, digest_message(batch, language))
    budget.drop_sent(robot.name, batch)
    if not budget.release_flush(robot.name):
        budget.renew_flush(robot.name, now)
        _schedule_flush(robot, budget.read(robot.name), _now_ms())
    return f"digest of {len(batch)}"
