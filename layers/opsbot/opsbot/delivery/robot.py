"""Sending to one group robot within its budget: send now, or fold into the robot's next digest.

Nothing is dropped: folded news waits in DynamoDB and a delayed flush job sends it as one message as soon as
the window has room. Failures surface as RetryLater/PermanentFailure for the worker to handle.
"""

from __future__ import annotations

import hashlib
import time

from opsbot.config.model import Robot
from opsbot.delivery import budget
from opsbot.dingtalk import robot as robot_api
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, RetryLater
from opsbot.jobs.queue import enqueue, park_in_dead_letter_queue
from opsbot.log import logger
from opsbot.state import effects, keys

DIGEST_BYTE_BUDGET = 18_000  # DingTalk takes up to 20,000 bytes per message


def _now_ms() -> int:
    return int(time.time() * 1000)


def deliver(robot: Robot, message: dict, entry: dict) -> str:
    """Send `message`, or fold `entry` (its one-line form) into the robot's digest. Returns what happened."""
    robot_api.resolve_credentials(robot)
    now = _now_ms()
    if budget.try_take_slot(robot.name, robot.rate_limit_per_minute, now):
        effects.commit()  # DingTalk cannot be asked afterwards whether the message arrived
        robot_api.send(robot, message)
        return "sent"
    # The flush is scheduled before the fold, so that a failure to schedule it leaves nothing folded (the retry
    # folds, and claims again a lease its first claim took); after the fold, one more claim covers a flush that
    # emptied the digest and ended in between.
    _ensure_flush(robot, now, entry["id"])
    effects.commit()  # once its digest is sent, the entry is no longer there to show that it was folded
    budget.fold(robot.name, entry)
    _ensure_flush(robot, now)
    return "folded"


def _ensure_flush(robot: Robot, now: int, by: str = "") -> None:
    if budget.claim_flush(robot.name, now, by):
        try:
            _schedule_flush(robot, budget.read(robot.name), now)
        except Exception:
            # No flush job exists: give the lease back so this job's retry (or the next build) schedules one.
            budget.abandon_flush_claim(robot.name, now)
            raise


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


def _send_digest(robot: Robot, batch: list[dict], language: str) -> dict:
    effects.commit()
    robot_api.send(robot, digest_message(batch, language))
    return {"entries": len(batch)}


def _park_in_doubt(robot: Robot, batch: list[dict], key: str, reason: str) -> None:
    """DingTalk may have a digest whose send was cut off: its entries wait in the DLQ, in a job of their own that an
    operator redrives if the group did not get them (its id comes from the batch, so a second park is the same job)."""
    job = Job(
        kind=kinds.DIGEST_FLUSH,
        payload={"robot": robot.name, "entries": batch},
        id=hashlib.sha256(key.encode()).hexdigest()[:32],
    )
    logger.error("digest may have been sent; its entries are parked in the DLQ", extra={"reason": reason})
    park_in_dead_letter_queue(job.to_json(), job.kind, f"{reason} — check the group, then redrive to send it again")


def send_parked(robot: Robot, entries: list[dict], language: str, job_id: str) -> str:
    """The entries of a digest that was in doubt, sent by an operator's redrive, within the robot's budget."""
    robot_api.resolve_credentials(robot)
    now = _now_ms()
    if not budget.try_take_slot(robot.name, robot.rate_limit_per_minute, now, for_digest=True):
        raise RetryLater(
            f"robot {robot.name}'s budget is spent",
            delay=budget.read(robot.name).seconds_until_slot(robot.rate_limit_per_minute, now),
        )
    effects.once(f"{keys.DIGEST_SENT}{robot.name}#{job_id}", lambda: _send_digest(robot, entries, language))
    return f"parked digest of {len(entries)}"


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
    # Once per batch, named by its first entry (only the flush removes entries, from the front): a flush
    # redelivered after its send drops what that send delivered instead of sending it again.
    key = f"{keys.DIGEST_SENT}{robot.name}#{batch[0]['id']}"
    try:
        sent = state.pending[: effects.once(key, lambda: _send_digest(robot, batch, language))["entries"]]
    except effects.EffectInDoubt as exc:
        _park_in_doubt(robot, batch, key, exc.reason)  # and the digest goes on without them
        sent = batch
    budget.drop_sent(robot.name, sent)
    if not budget.release_flush(robot.name):
        budget.renew_flush(robot.name, now)
        _schedule_flush(robot, budget.read(robot.name), _now_ms())
    return f"digest of {len(sent)}"
