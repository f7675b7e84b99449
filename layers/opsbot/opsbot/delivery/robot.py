"""Delivering one message to one robot, in one pass that this module owns: render it in the robot's dialect (within
its size), take a send slot from the robot's budget or fold it into the robot's digest, send it through the robot's
channel adapter, and record what happened (once per effect key: a retried job does not send again).

Nothing is dropped: folded news waits in DynamoDB and a delayed flush job sends it as one message as soon as every
window of the robot's budget has room. Failures surface as RetryLater/PermanentFailure for the worker to handle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

from opsbot.channels import adapters
from opsbot.config.model import Config, Robot
from opsbot.delivery import budget
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.message import Mentions, Message, digest_entry
from opsbot.state import effects


def _now_ms() -> int:
    return int(time.time() * 1000)


def deliver(config: Config, robot: Robot, message: Message, key: str) -> str:
    """Send `message`, or fold its one-line form into the robot's digest (once per `key`). Returns what happened."""
    adapter = adapters.for_robot(robot)
    body = adapter.render(message, config.person)
    adapter.credentials(robot)  # a slow secret read must not push the send past the slot it takes
    now = _now_ms()
    if budget.try_take_slot(robot.name, adapter.windows(robot), now):
        adapter.send(robot, body)
        return "sent"
    budget.fold(robot.name, digest_entry(key, message.one_line(), message.mentions))
    if budget.claim_flush(robot.name, now):
        try:
            _schedule_flush(adapter, robot, budget.read(robot.name), now)
        except Exception:
            # No flush job exists: give the lease back so this job's retry (or the next build) schedules one.
            budget.abandon_flush_claim(robot.name, now)
            raise
    return "folded"


def deliver_once(config: Config, robot: Robot, build: Callable[[], Message], key: str, effect_key: str) -> str:
    """`deliver` the message `build` makes, unless this effect key already did (then `build` is not called); what
    happened. Without an effect key it is delivered every time it is asked."""
    if not effect_key:
        return deliver(config, robot, build(), key)
    done = effects.once(effect_key, lambda: {"outcome": deliver(config, robot, build(), key)})
    # post_once's records from before projects had several robots kept where it went: "robot <name>: <outcome>".
    return done.get("outcome") or str(done.get("where", "sent")).rsplit(": ", 1)[-1]


def _schedule_flush(adapter: ModuleType, robot: Robot, state: budget.RobotState, now_ms: int) -> None:
    delay = state.seconds_until_slot(adapter.windows(robot), now_ms)
    enqueue(Job(kind=kinds.DIGEST_FLUSH, payload={"robot": robot.name}), delay_seconds=delay)


def digest_message(entries: list[dict], language: str) -> Message:
    """The folded news (message.digest_entry each) as one message, every @-mention kept."""
    n = len(entries)
    mentions = Mentions()
    for entry in entries:
        mentions.add(Mentions.from_fields(entry))
    head = t(
        language,
        f"📦 {n} 条构建通知（合并发送，避免触发群机器人限流）",
        f"📦 {n} build notifications (sent together to stay within the group robot's rate limit)",
    )
    lines = [f"#### {head}"]
    for entry in entries:
        lines += ["", entry["line"]]
    return Message(
        title=t(language, f"opsbot：{n} 条构建通知", f"opsbot: {n} build notifications"),
        lines=lines,
        mentions=mentions,
        language=language,
    )


def _first_batch(adapter: ModuleType, entries: list[dict], language: str, config: Config) -> list[dict]:
    """As many of the oldest entries as fit in one message, measured as the robot's channel will receive it."""
    batch: list[dict] = []
    for entry in entries:
        if batch and not adapter.fits(digest_message(batch + [entry], language), config.person):
            break
        batch.append(entry)
    return batch


def flush_digest(config: Config, robot: Robot) -> str:
    """Send what is pending for this robot as one digest message, when the budget allows."""
    adapter = adapters.for_robot(robot)
    now = _now_ms()
    state = budget.read(robot.name)
    if not state.pending:
        if not budget.release_flush(robot.name):
            _schedule_flush(adapter, robot, budget.read(robot.name), now)
        return "empty"
    adapter.credentials(robot)
    if not budget.try_take_slot(robot.name, adapter.windows(robot), now, for_digest=True):
        budget.renew_flush(robot.name, now)
        _schedule_flush(adapter, robot, budget.read(robot.name), now)
        return "waiting"
    batch = _first_batch(adapter, state.pending, config.language, config)
    adapter.send(robot, adapter.render(digest_message(batch, config.language), config.person))
    budget.drop_sent(robot.name, batch)
    if not budget.release_flush(robot.name):
        budget.renew_flush(robot.name, now)
        _schedule_flush(adapter, robot, budget.read(robot.name), _now_ms())
    return f"digest of {len(batch)}"
