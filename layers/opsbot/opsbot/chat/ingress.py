"""A verified chat message (an InboundMessage, from its channel's adapter in chat/inbound/) → an answer. Reads are
answered at once (the adapter puts the Reply in the callback's response); acts are checked, queued once per
message id and acknowledged; everything is written to the audit log."""

from __future__ import annotations

import time
from dataclasses import asdict

from opsbot import audit, metrics
from opsbot.authz import core as authz
from opsbot.chat import dispatch
from opsbot.chat.commands import all_commands, faq
from opsbot.chat.context import ChatRequest
from opsbot.chat.inbound.message import InboundMessage
from opsbot.chat.parser import has_chinese, parse
from opsbot.chat.registry import UsageError
from opsbot.config.model import Config
from opsbot.i18n import t
from opsbot.ingress.accept import accept, job_id_for
from opsbot.jobs import kinds
from opsbot.message import Reply
from opsbot.settings import settings

CLOCK_SLACK_MS = 86_400_000


def _record(request: ChatRequest, command: str, arguments: dict, project: str = "") -> audit.AuditRecord:
    inbound = request.inbound
    created, now = inbound.created_ms, _now_ms()
    # The channel's time may not be signed: one far from now would misplace the record.
    plausible = created is not None and abs(created - now) < CLOCK_SLACK_MS
    return audit.AuditRecord(
        id=request.job_id,
        at_ms=created if plausible else now,
        who=request.sender_id[:128],
        who_name=request.sender[:64],
        where=inbound.conversation.id[:128],
        where_title=inbound.conversation.title[:128],
        command=command,
        arguments={k: str(v)[:100] for k, v in arguments.items()},
        project=project,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def counted(record: audit.AuditRecord, reply: Reply) -> Reply:
    """The reply, once the command's outcome is counted (ChatCommands: how commands end, by command)."""
    metrics.count(metrics.CHAT_COMMANDS, Command=record.command, Outcome=record.result or "queued")
    return reply


def refuse_stale(config: Config, inbound: InboundMessage, why: str, job_id: str) -> Reply | None:
    """A message too old to act on (ingress/freshness.py): audited as `stale`, never run, and answered only while
    its conversation still takes replies (an older one is not worth a word in the group: only a replay makes it)."""
    language = "zh" if has_chinese(inbound.text) else ("en" if inbound.text else config.language)  # as `answer`
    actor = inbound.actor
    record = audit.AuditRecord(
        id=job_id,
        at_ms=inbound.created_ms or _now_ms(),
        who=actor.id[:128],
        who_name=actor.name[:64],
        where=inbound.conversation.id[:128],
        where_title=inbound.conversation.title[:128],
        command="message",
        arguments={"text": inbound.text[:100]},
        via=actor.via,
    )
    audit.finish(record, "stale", why)
    metrics.count(metrics.CHAT_COMMANDS, Command="message", Outcome="stale")
    if not inbound.conversation.open_reply_url():
        return None
    return Reply(
        title="too old",
        ok=False,
        detail=why,
        text=t(
            language,
            f"⏱ 这条消息太旧了（超过 {settings().message_max_age_seconds} 秒），opsbot 不会执行它。"
            "如果还需要，请重新发送。",
            f"⏱ This message is too old for opsbot to act on ({why}). Send it again if you still need it.",
        ),
    )


def answer(config: Config, inbound: InboundMessage, acknowledge_again: bool = False) -> Reply | None:
    """The answer to one @opsbot message, shown at once; None when an act was already acknowledged, unless
    `acknowledge_again`: a caller that posts the answer once per message itself (Feishu's, from the worker, whose
    first attempt may have queued the act and stopped before its acknowledgement went out) gets it again."""
    registry = all_commands()
    invocation = parse(inbound.text, registry.names())
    language = "zh" if has_chinese(invocation.text) else ("en" if invocation.text else config.language)
    actor = inbound.actor
    job_id = job_id_for(inbound.channel, inbound.msg_id)
    command, words = (
        registry.resolve(invocation.word, invocation.arguments) if invocation.word else (registry.find("help"), [])
    )

    if command is None:  # a mistyped command, or a free question for the FAQ
        request = ChatRequest(config, inbound, actor, registry.find("faq"), {}, language, job_id)
        reply = None if dispatch.close_commands(registry, invocation.word) else faq.answer(request, invocation.text)
        record = _record(request, "faq" if reply else "unknown", {"text": invocation.text})
        if reply is None:
            reply = Reply(
                title=t(language, "未知命令", "unknown command"),
                ok=False,
                detail=f"no command {invocation.word[:40]}",
                text=dispatch.suggestion(registry, invocation.word, language, faq.not_found(request)),
            )
        audit.finish(record, "answered" if reply.ok else "unknown", reply.detail or reply.title)
        return counted(record, reply)

    try:
        arguments = command.bind(words)
    except UsageError as exc:
        request = ChatRequest(config, inbound, actor, command, {}, language, job_id)
        reply = dispatch.failed(
            request, request.t(f"{exc}\n\n用法：`{command.usage()}`", f"{exc}\n\nUsage: `{command.usage()}`")
        )
        record = _record(request, command.name, {"text": invocation.text})
        audit.finish(record, "usage", str(exc))
        return counted(record, reply)

    request = ChatRequest(config, inbound, actor, command, arguments, language, job_id)
    project = str(arguments.get("project") or "")
    project = project if project in config.projects else ""
    request.record = record = _record(request, command.name, arguments, project)
    environment = str(arguments.get(command.environment_argument) or "") if command.environment_argument else ""
    # Who may, decided now with what is known here; an act is decided again in the worker with its build.
    decision = authz.authorize(
        config, actor, command.verb, authz.Target(project, environment), record, arguments, language
    )
    if decision.denied:
        return counted(record, Reply(title=t(language, "不允许", "denied"), ok=False, text=f"⛔ {decision.reason}"))

    if not command.runs_in_worker(config, arguments):
        reply = dispatch.run(request)
        audit.finish(record, "answered" if reply.ok else "failed", reply.detail or reply.title)
        return counted(record, reply)

    audit.write_queued(record)
    # The message's act marker is kept for good: the same message read again, days or months later, is a duplicate.
    outcome = accept(
        inbound.channel,
        inbound.msg_id,
        kinds.CHAT_COMMAND,
        {
            "channel": inbound.channel,
            "message": inbound.job_fields,
            "command": command.name,
            "arguments": arguments,
            "language": language,
            "audit": asdict(record),
        },
        permanent=True,
    )
    if outcome.status == "duplicate" and not acknowledge_again:
        return None  # the first delivery was acknowledged; its result is on its way
    return acknowledgement(command.name, language)


def acknowledgement(command: str, language: str) -> Reply:
    """The answer to an act at once: it is queued, and its result follows in the conversation."""
    return Reply(
        title=t(language, f"收到：{command}", f"Got it: {command}"),
        text=t(
            language,
            f"收到 `{command}`，处理中，结果稍后发到本群。",
            f"Got it: `{command}` is running; the result will be posted here.",
        ),
    )


def acknowledgements(text: str) -> set[str]:
    """The texts of the at-once answer to the act `text` names (`acknowledgement`), in both languages; empty when it
    names no act. How a caller that posts the answer itself (a button press, `make chat`) tells it apart."""
    registry = all_commands()
    invocation = parse(text, registry.names())
    command, _ = registry.resolve(invocation.word, invocation.arguments) if invocation.word else (None, [])
    if command is None or not command.acts:
        return set()
    return {acknowledgement(command.name, language).text for language in ("zh", "en")}
