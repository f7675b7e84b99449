"""The worker's side of acting commands: run once, post the result, finish the audit record.

"Once" holds across SQS redeliveries (state.effects keeps the result). Drone being unavailable is retried
through the queue; after REPORT_AFTER_ATTEMPTS the person is told it failed and the job goes to the DLQ,
so the outcome is always reported and never silently lost.
"""
from __future__ import annotations

from typing import Callable

from opsbot import audit
from opsbot.authz import core as authz
from opsbot.authz.actors import dingtalk_sender
from opsbot.chat import dispatch, replies
from opsbot.chat.context import ChatRequest, Reply
from opsbot.chat.registry import all_commands
from opsbot.config import store
from opsbot.config.model import Config
from opsbot.jobs.model import Job, PermanentFailure, RetryLater
from opsbot.jobs.registry import handles
from opsbot.log import logger
from opsbot.state import effects

REPORT_AFTER_ATTEMPTS = 3


def run_and_report(job: Job, config: Config, record: audit.AuditRecord, effect: Callable[[], Reply],
                   gave_up: Callable[[str], Reply], message: dict | None = None) -> str:
    """Run `effect` once for this job, post its Reply (to the conversation of `message` if still open) and
    audit it. Retries while the peer is unavailable; after REPORT_AFTER_ATTEMPTS reports `gave_up`."""
    def effect_and_decision() -> dict:
        # The core's decision is written into `record` while the effect runs; kept with the result, so that a
        # retry that only re-posts still audits it.
        result = effect().as_dict()
        return {**result, "audit": {k: getattr(record, k) for k in ("via", "target", "decision", "reason")}}

    try:
        stored = effects.once(job.id, effect_and_decision)
        for key, value in (stored.get("audit") or {}).items():
            setattr(record, key, value)
        reply = Reply.from_dict(stored)
    except PermanentFailure:
        raise
    except Exception as exc:  # a peer that stays down, or a bug: either way the person hears of it in the end
        if job.attempt < REPORT_AFTER_ATTEMPTS:
            raise
        reason = exc.reason if isinstance(exc, RetryLater) else f"internal error ({type(exc).__name__})"
        reply = gave_up(reason)
        replies.post(config, reply, message, job.id)
        audit.finish(record, "failed", reason)
        logger.exception("command gave up", extra={"command": record.command, "attempts": job.attempt})
        raise PermanentFailure(f"{record.command} gave up after {job.attempt} attempts: {reason}") from None
    reply.project = reply.project or record.project
    where = replies.post(config, reply, message, job.id)
    result = "denied" if record.decision == authz.DENY else "succeeded" if reply.ok else "failed"
    audit.finish(record, result, reply.detail or reply.title)
    logger.info("command done", extra={"command": record.command, "ok": reply.ok, "posted_to": where})
    return where


@handles("chat.command")
def run_chat_command(job: Job) -> str:
    config = store.load()
    message = job.payload["message"]
    command = all_commands().commands.get(job.payload["command"])
    if command is None:
        raise PermanentFailure(f"chat command {job.payload['command']} no longer exists")
    record = audit.AuditRecord(**job.payload["audit"])
    request = ChatRequest(config, message, dingtalk_sender(config, message), command, job.payload["arguments"],
                          job.payload["language"], job.id, in_worker=True, record=record)

    def gave_up(reason: str) -> Reply:
        return dispatch.failed(request, request.t(
            f"❌ `{command.name}` 没有完成：{reason}（已重试 {job.attempt} 次）。请稍后再试，或联系平台组。",
            f"❌ `{command.name}` did not complete: {reason} (tried {job.attempt} times). Try again later, "
            f"or ask the platform team."))

    return run_and_report(job, config, record, lambda: dispatch.run(request), gave_up, message)
