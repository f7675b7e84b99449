"""The worker's side of chat: the `chat.command` job (an acting command, run once through acts.run_and_report, its
result posted into the conversation it came from, or the project's group, and its audit record finished), and the
`chat.feishu_message` job (a Feishu message, read from Feishu's API and answered as DingTalk's are at ingress)."""

from __future__ import annotations

from opsbot import audit, metrics
from opsbot.acts import run_and_report
from opsbot.channels import feishu_app
from opsbot.chat import dispatch, inbound
from opsbot.chat.commands import all_commands
from opsbot.chat.context import ChatRequest
from opsbot.chat.inbound import feishu
from opsbot.chat.ingress import answer, refuse_stale
from opsbot.config import store
from opsbot.delivery.post import post
from opsbot.ingress import shape
from opsbot.ingress.freshness import too_old
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure, read_payload
from opsbot.jobs.registry import handles
from opsbot.log import logger
from opsbot.message import Reply


@handles(kinds.CHAT_COMMAND)
def run_chat_command(job: Job) -> str:
    config = store.load()
    said = inbound.from_job(config, job.payload)
    command = all_commands().commands.get(job.payload["command"])
    if command is None:
        raise PermanentFailure(f"chat command {job.payload['command']} no longer exists")
    record = audit.AuditRecord(**job.payload["audit"])
    request = ChatRequest(
        config,
        said,
        said.actor,
        command,
        job.payload["arguments"],
        job.payload["language"],
        job.id,
        in_worker=True,
        record=record,
    )

    def gave_up(reason: str) -> Reply:
        return dispatch.failed(
            request,
            request.t(
                f"❌ `{command.name}` 没有完成：{reason}（已重试 {job.attempt} 次）。请稍后再试，或联系平台组。",
                f"❌ `{command.name}` did not complete: {reason} (tried {job.attempt} times). Try again later, "
                f"or ask the platform team.",
            ),
        )

    try:
        return run_and_report(job, config, record, lambda: dispatch.run(request), gave_up, said.conversation)
    finally:
        if record.result != "queued":  # finished: succeeded, failed or denied (a retry to come leaves it queued)
            metrics.count(metrics.CHAT_COMMANDS, Command=record.command, Outcome=record.result)


def _feishu_message_id(payload: dict) -> str:
    return shape.text(payload, "message_id", required=True, max_chars=200)


@handles(kinds.FEISHU_MESSAGE)
def answer_feishu_message(job: Job) -> str:
    """A message the Feishu app bot was told of: read it from Feishu's API (the callback is only a pointer), answer
    it as chat does, and reply to it once; an act is queued as its own chat.command job, as from DingTalk."""
    message_id = read_payload(_feishu_message_id, job.payload, "Feishu message")
    found = feishu_app.message(message_id)
    if found is None:
        return f"ignored: Feishu has no message {message_id[:60]} this app may read"
    fields, why_not = feishu.fields_from_api(message_id, found)
    if fields is None:
        return f"ignored: {why_not}"
    if not feishu.addressed(found):
        # Feishu's API says nobody asked the bot: a callback that claims otherwise was forged with the token.
        logger.warning("Feishu message not addressed to the bot; nothing done", extra={"message_id": message_id[:60]})
        return "ignored: a group message that does not @-mention the bot (as Feishu's API reports it)"
    config = store.load()
    said = feishu.inbound_message(config, fields)
    if why := too_old(fields["create_time"], int(job.created_at * 1000)):
        # A genuine old message read again (its callback replayed): never run, audited, and not parked.
        logger.warning("Feishu message too old; not acted on", extra={"message_id": message_id[:60], "why": why})
        stale = refuse_stale(config, said, why, job.id)
        return f"refused, stale: {post(config, stale, said.conversation, job.id) if stale else 'not told'}"
    # Posted once per job (post's run-once effect): a retry after the act was queued still acknowledges it, once.
    reply = answer(config, said, acknowledge_again=True)
    return f"answered: {post(config, reply, said.conversation, job.id)}"
