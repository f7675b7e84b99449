"""The worker's side of chat: the `chat.command` job (an acting command, run once through acts.run_and_report, its
result posted into the conversation it came from, or the project's group, and its audit record finished), and the
`chat.feishu_message` job (a Feishu message, read from Feishu's API and answered as DingTalk's are at ingress), the
`chat.slack_message` job (a typed Slack message, answered in its thread) and the `chat.slack_press` job (a button
pressed on opsbot's Slack message: its command, run as the presser)."""

from __future__ import annotations

import time

from opsbot import audit, metrics
from opsbot.acts import run_and_report
from opsbot.channels import feishu_app
from opsbot.chat import dispatch, inbound
from opsbot.chat.commands import all_commands
from opsbot.chat.context import ChatRequest
from opsbot.chat.inbound import feishu, slack
from opsbot.chat.ingress import acknowledgements, answer, refuse_stale
from opsbot.config import store
from opsbot.delivery.post import post
from opsbot.ingress import shape
from opsbot.ingress.freshness import too_old
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure, read_payload
from opsbot.jobs.registry import handles
from opsbot.log import logger
from opsbot.markup import plain as md
from opsbot.message import Reply
from opsbot.state import effects, idempotency, keys

# Channels whose chat.command jobs come from a pressed button: the outcome replaces the message and names the presser.
PRESSED_CHANNELS = (slack.CHANNEL,)
# How long a button remembers which press took its act: far past any client that could still show it (Slack's
# response_url, the message's update, lasts 30 minutes); the act's own marker is kept for good.
PRESS_MEMORY_SECONDS = 365 * 86400


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

    def run() -> Reply:
        reply = dispatch.run(request)
        if said.channel in PRESSED_CHANNELS and "press_id" in said.job_fields:  # it replaces the pressed message
            at = time.strftime("%H:%M UTC", time.gmtime())
            reply.text += "\n\n" + request.t(
                f"— {md(said.actor.name)} 按下，{at}", f"— pressed by {md(said.actor.name)}, {at}"
            )
        return reply

    try:
        return run_and_report(job, config, record, run, gave_up, said.conversation)
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


@handles(kinds.SLACK_MESSAGE)
def answer_slack_message(job: Job) -> str:
    """A typed message to opsbot in Slack (signed by Slack, so its sender, place and time are Slack's word): refused
    when too old, otherwise answered as chat does, in its thread; an act is queued as its own chat.command job."""
    fields = read_payload(slack.message_fields, job.payload, "Slack message")
    config = store.load()
    said = slack.inbound_message(config, fields)
    if why := too_old(said.created_ms, int(job.created_at * 1000)):
        # A genuine old message delivered again (Slack's late retry, or a replay with a fresh signature): never run.
        logger.warning("Slack message too old; not acted on", extra={"why": why})
        stale = refuse_stale(config, said, why, job.id)
        return f"refused, stale: {post(config, stale, said.conversation, job.id) if stale else 'not told'}"
    # Posted once per job (post's run-once effect): a retry after the act was queued still acknowledges it, once.
    reply = answer(config, said, acknowledge_again=True)
    return f"answered: {post(config, reply, said.conversation, job.id)}"


def _press_fields(payload: dict) -> dict:
    for key in ("trigger_id", "user_id", "value", "response_url"):
        shape.text(payload, key, required=key != "value", max_chars=2000)
    return payload


@handles(kinds.SLACK_PRESS)
def answer_slack_press(job: Job) -> str:
    """A button pressed on opsbot's Slack message: run the button's command as the presser, as if they had typed it
    (the authorization core decides). What they alone should read (why not, "got it", "already pressed") goes to
    them only; the act's outcome replaces the message (chat.command's job, through the press's response_url)."""
    from opsbot.authz.actors import slack_user
    from opsbot.channels import buttons
    from opsbot.channels import slack as slack_channel

    fields = read_payload(_press_fields, job.payload, "Slack press")
    try:
        command = buttons.command_of(fields.get("value") or "")
    except buttons.NotOurButton as exc:
        # Signed by Slack for this app, yet not a button opsbot made: nothing to run, nobody to trust with an answer.
        logger.warning("Slack press of a button opsbot never sent", extra={"why": str(exc)})
        return f"ignored: {exc}"
    config = store.load()
    actor = slack_user(config, fields["user_id"], str(fields.get("user_name") or ""))
    said = slack.inbound_message(
        config, {**fields, "press_id": buttons.press_id(fields["value"], actor.id), "text": command}
    )
    url = said.conversation.open_reply_url()
    if why := too_old(said.created_ms, int(job.created_at * 1000)):
        reply = refuse_stale(config, said, why, job.id)
    else:
        # A retry of this press (stopped after its act was queued) acknowledges it again; another press of the
        # same button (twice, or on two devices) finds the act taken by the press bound to it, and says so.
        reply = answer(config, said, acknowledge_again=True)
        taken_by = keys.BUTTON_PRESS + said.msg_id
        if reply is not None and reply.text in acknowledgements(command):
            if not idempotency.bind(taken_by, job.id, int(time.time()) + PRESS_MEMORY_SECONDS):
                reply = Reply(title="already pressed", text=_already_pressed(config, command))
    if reply is None or not url:
        return "answered: nowhere to tell the presser (response_url expired)"
    body = slack_channel.render(reply.as_message(config.language), config.person)

    def tell() -> dict:
        effects.commit()  # Slack cannot be asked afterwards whether it showed the answer
        slack_channel.tell_presser(url, body)
        return {"where": "presser"}

    try:
        effects.once(keys.TOLD + job.id, tell)
    except effects.EffectInDoubt:
        raise  # shown or not, nobody can tell: parked for a person, never sent again blindly
    except PermanentFailure as exc:
        # Slack refused the response_url (used 5 times, past 30 minutes, or never issued): no retry or redrive can
        # tell the presser now, and the act (if any) is queued on its own; so the press is done, not parked.
        logger.warning("the presser could not be told", extra={"reason": str(exc)[:200]})
        return f"answered {command.split(' ', 1)[0]} for {actor.id}; not told: {str(exc)[:100]}"
    return f"answered {command.split(' ', 1)[0]} for {actor.id}"


def _already_pressed(config, command: str) -> str:
    from opsbot.i18n import t

    return t(
        config.language,
        f"这个按钮已经按过了（`{command}`），结果会显示在消息里。",
        f"This button was already pressed (`{command}`); its outcome shows in the message.",
    )
