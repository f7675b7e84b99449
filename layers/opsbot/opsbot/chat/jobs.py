"""The worker's side of acting commands: run once, post the result, finish the audit record.

"Once" holds across SQS redeliveries (state.effects keeps the result). Drone being unavailable is retried
through the queue; after REPORT_AFTER_ATTEMPTS the person is told it failed and the job goes to the DLQ,
so the outcome is always reported and never silently lost.
"""
from __future__ import annotations

from typing import Callable

from opsbot.chat import audit, dispatch, replies
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
    try:
        reply = Reply.from_dict(effects.once(job.id, lambda: effect().as_dict()))
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
    audit.finish(record, "succeeded" if reply.ok else "failed", reply.detail or reply.title)
    logger.info("command done", extra={"command": record.command, "ok": reply.ok, "posted_to": where})
    return where


@handles("chat.command")
def run_chat_command(job: Job) -> str:
    config = store.load()
    message = job.payload["message"]
    command = all_commands().commands.get(job.payload["command"])
    if command is None:
        raise PermanentFailure(f"chat command {job.payload['command']} no longer exists")
    person = config.person_for_dingtalk(str(message.get("senderStaffId") or ""), str(message.get("senderId") or ""))
    request = ChatRequest(config, message, person, command, job.payload["arguments"], job.payload["language"],
                          job.id, in_worker=True)
    record = audit.AuditRecord(**job.payload["audit"])

    def gave_up(reason: str) -> Reply:
        return dispatch.failed(request, request.t(
            f"❌ `{command.name}` 没有完成：{reason}（已重试 {job.attempt} 次）。请稍后再试，或联系平台组。",
            f"❌ `{command.name}` did not complete: {reason} (tried {job.attempt} times). Try again later, "
            f"or ask the platform team."))

    return run_and_report(job, config, record, lambda: dispatch.run(request), gave_up, message)
