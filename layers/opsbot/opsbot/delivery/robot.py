"""Delivering one message to one robot, in one pass that this module owns: render it in the robot's dialect (within
its size), take a send slot from the robot's budget or fold it into the robot's digest, send it through the robot's
channel adapter, and record what happened (once per effect key: a retried job does not send again).

Nothing is dropped: folded news waits in DynamoDB and a delayed flush job sends it as one message as soon as every
window of the robot's budget has room. Failures surface as RetryLater/PermanentFailure for the worker to handle.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from types import ModuleType

from opsbot.channels import adapters
from opsbot.config.model import Config, Robot
from opsbot.delivery import budget
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, RetryLater
from opsbot.jobs.queue import enqueue, park_in_dead_letter_queue
from opsbot.log import logger
from opsbot.message import Mentions, Message, digest_entry
from opsbot.state import effects, keys


def _now_ms() -> int:
    return int(time.time() * 1000)


def _shared(adapter: ModuleType, robot: Robot) -> budget.Shared | None:
    """The limit this robot shares with its channel's others (SES's per account and region), if its channel has one."""
    named = getattr(adapter, "shared_budget", None)
    return budget.Shared(*named(robot)) if named else None


def deliver(config: Config, robot: Robot, message: Message, key: str) -> str:
    """Send `message`, or fold its one-line form into the robot's digest (once per `key`). Returns what happened."""
    adapter = adapters.for_robot(robot)
    body = adapter.render(message, config.person)
    adapter.credentials(robot)  # a slow secret read must not push the send past the slot it takes
    now = _now_ms()
    if budget.try_take_slot(robot.name, adapter.windows(robot), now, shared=_shared(adapter, robot)):
        effects.commit()  # no channel can be asked afterwards whether the message arrived
        adapter.send(robot, body)
        return "sent"
    # The flush is scheduled before the fold, so that a failure to schedule it leaves nothing folded (the retry
    # folds, and claims again a lease its first claim took); after the fold, one more claim covers a flush that
    # emptied the digest and ended in between.
    _ensure_flush(adapter, robot, now, key)
    effects.commit()  # once its digest is sent, the entry is no longer there to show that it was folded
    budget.fold(robot.name, digest_entry(key, message.one_line(), message.mentions))
    _ensure_flush(adapter, robot, now)
    return "folded"


def _ensure_flush(adapter: ModuleType, robot: Robot, now: int, by: str = "") -> None:
    if budget.claim_flush(robot.name, now, by):
        try:
            _schedule_flush(adapter, robot, now)
        except Exception:
            # No flush job exists: give the lease back so this job's retry (or the next build) schedules one.
            budget.abandon_flush_claim(robot.name, now)
            raise


def deliver_once(config: Config, robot: Robot, build: Callable[[], Message], key: str, effect_key: str) -> str:
    """`deliver` the message `build` makes, unless this effect key already did (then `build` is not called); what
    happened. Without an effect key it is delivered every time it is asked."""
    if not effect_key:
        return deliver(config, robot, build(), key)
    done = effects.once(effect_key, lambda: {"outcome": deliver(config, robot, build(), key)})
    # post_once's records from before projects had several robots kept where it went: "robot <name>: <outcome>".
    return done.get("outcome") or str(done.get("where", "sent")).rsplit(": ", 1)[-1]


def _schedule_flush(adapter: ModuleType, robot: Robot, now_ms: int) -> None:
    delay = budget.seconds_until_slot(robot.name, adapter.windows(robot), now_ms, _shared(adapter, robot))
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


def _send_digest(config: Config, robot: Robot, batch: list[dict]) -> dict:
    adapter = adapters.for_robot(robot)
    body = adapter.render(digest_message(batch, config.language), config.person)
    effects.commit()
    adapter.send(robot, body)
    return {"entries": len(batch)}


def _park_in_doubt(robot: Robot, batch: list[dict], key: str, reason: str) -> None:
    """The channel may have a digest whose send was cut off: its entries wait in the DLQ, in a job of their own
    that an operator redrives if the group did not get them (its id comes from the batch, so a second park is the
    same job)."""
    job = Job(
        kind=kinds.DIGEST_FLUSH,
        payload={"robot": robot.name, "entries": batch},
        id=hashlib.sha256(key.encode()).hexdigest()[:32],
    )
    logger.error("digest may have been sent; its entries are parked in the DLQ", extra={"reason": reason})
    park_in_dead_letter_queue(job.to_json(), job.kind, f"{reason} — check the group, then redrive to send it again")


def send_parked(config: Config, robot: Robot, entries: list[dict], job_id: str) -> str:
    """The entries of a digest that was in doubt, sent by an operator's redrive, within the robot's budget."""
    adapter = adapters.for_robot(robot)
    adapter.credentials(robot)
    now = _now_ms()
    shared = _shared(adapter, robot)
    if not budget.try_take_slot(robot.name, adapter.windows(robot), now, for_digest=True, shared=shared):
        raise RetryLater(
            f"robot {robot.name}'s budget is spent",
            delay=budget.seconds_until_slot(robot.name, adapter.windows(robot), now, shared),
        )
    effects.once(f"{keys.DIGEST_SENT}{robot.name}#{job_id}", lambda: _send_digest(config, robot, entries))
    return f"parked digest of {len(entries)}"


def flush_digest(config: Config, robot: Robot) -> str:
    """Send what is pending for this robot as one digest message, when the budget allows."""
    adapter = adapters.for_robot(robot)
    now = _now_ms()
    state = budget.read(robot.name)
    if not state.pending:
        if not budget.release_flush(robot.name):
            _schedule_flush(adapter, robot, now)
        return "empty"
    adapter.credentials(robot)
    if not budget.try_take_slot(
        robot.name, adapter.windows(robot), now, for_digest=True, shared=_shared(adapter, robot)
    ):
        budget.renew_flush(robot.name, now)
        _schedule_flush(adapter, robot, now)
        return "waiting"
    batch = _first_batch(adapter, state.pending, config.language, config)
    # Once per batch, named by its first entry (only the flush removes entries, from the front): a flush
    # redelivered after its send drops what that send delivered instead of sending it again.
    key = f"{keys.DIGEST_SENT}{robot.name}#{batch[0]['id']}"
    try:
        sent = state.pending[: effects.once(key, lambda: _send_digest(config, robot, batch))["entries"]]
    except effects.EffectInDoubt as exc:
        _park_in_doubt(robot, batch, key, exc.reason)  # and the digest goes on without them
        sent = batch
    budget.drop_sent(robot.name, sent)
    if not budget.release_flush(robot.name):
        budget.renew_flush(robot.name, now)
        _schedule_flush(adapter, robot, _now_ms())
    return f"digest of {len(sent)}"
