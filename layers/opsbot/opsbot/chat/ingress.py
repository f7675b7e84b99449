"""A verified DingTalk message → an answer. Reads are answered in the callback's response; acts are checked,
queued once per msgId and acknowledged; everything is written to the audit log."""

from __future__ import annotations

import time
from dataclasses import asdict

from opsbot import audit, metrics
from opsbot.authz import core as authz
from opsbot.authz.actors import dingtalk_sender
from opsbot.chat import dispatch
from opsbot.chat.commands import all_commands, faq
from opsbot.chat.context import ChatRequest
from opsbot.chat.parser import has_chinese, parse
from opsbot.chat.registry import UsageError
from opsbot.config import store
from opsbot.ingress.accept import accept, job_id_for
from opsbot.ingress.errors import Unauthorized
from opsbot.jobs import kinds
from opsbot.message import Reply

EMPTY_REPLY = {"msgtype": "empty"}


MAX_TEXT_CHARS = 2000  # longer than any command or question; a pasted log is cut, not parsed in full
# What the worker needs of a callback to answer it: the job carries these, not the whole body.
CLOCK_SLACK_MS = 86_400_000
REPLY_FIELDS = (
    "msgId",
    "createAt",
    "senderStaffId",
    "senderId",
    "senderNick",
    "conversationId",
    "conversationTitle",
    "sessionWebhook",
    "sessionWebhookExpiredTime",
)


def _text(message: dict) -> str:
    text = message.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    return content[:MAX_TEXT_CHARS] if isinstance(content, str) else ""


def _string(message: dict, key: str) -> str:
    value = message.get(key)
    return value if isinstance(value, str) else ""


def _record(request: ChatRequest, command: str, arguments: dict, project: str = "") -> audit.AuditRecord:
    message = request.message
    created, now = message.get("createAt"), _now_ms()
    # The body is not signed: a createAt far from now would misplace the record (or not be a date at all).
    plausible = isinstance(created, int) and not isinstance(created, bool) and abs(created - now) < CLOCK_SLACK_MS
    return audit.AuditRecord(
        id=request.job_id,
        at_ms=created if plausible else now,
        who=request.sender_id[:128],
        who_name=request.sender[:64],
        where=_string(message, "conversationId")[:128],
        where_title=_string(message, "conversationTitle")[:128],
        command=command,
        arguments={k: str(v)[:100] for k, v in arguments.items()},
        project=project,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def counted(record: audit.AuditRecord, response: dict) -> dict:
    """The response, once the command's outcome is counted (ChatCommands: how commands end, by command)."""
    metrics.count(metrics.CHAT_COMMANDS, Command=record.command, Outcome=record.result or "queued")
    return response


def answer(message: dict, msg_id: str) -> dict:
    """The callback's response body for one @opsbot message."""
    config = store.load()
    robot_code = _string(message, "robotCode")
    if config.dingtalk_robot_code and robot_code != config.dingtalk_robot_code:
        raise Unauthorized("callback is for another robot (robotCode does not match)")
    registry = all_commands()
    invocation = parse(_text(message), registry.names())
    language = "zh" if has_chinese(invocation.text) else ("en" if invocation.text else config.language)
    actor = dingtalk_sender(config, message)
    job_id = job_id_for("dingtalk", msg_id)
    command, words = (
        registry.resolve(invocation.word, invocation.arguments) if invocation.word else (registry.find("help"), [])
    )

    if command is None:  # a mistyped command, or a free question for the FAQ
        request = ChatRequest(config, message, actor, registry.find("faq"), {}, language, job_id)
        reply = None if dispatch.close_commands(registry, invocation.word) else faq.answer(request, invocation.text)
        record = _record(request, "faq" if reply else "unknown", {"text": invocation.text})
        if reply is None:
            reply = Reply(
                title="unknown command",
                ok=False,
                detail=f"no command {invocation.word[:40]}",
                text=dispatch.suggestion(registry, invocation.word, language, faq.not_found(request)),
            )
        audit.finish(record, "answered" if reply.ok else "unknown", reply.detail or reply.title)
        return counted(record, reply.message())

    try:
        arguments = command.bind(words)
    except UsageError as exc:
        request = ChatRequest(config, message, actor, command, {}, language, job_id)
        reply = dispatch.failed(
            request, request.t(f"{exc}\n\n用法：`{command.usage()}`", f"{exc}\n\nUsage: `{command.usage()}`")
        )
        record = _record(request, command.name, {"text": invocation.text})
        audit.finish(record, "usage", str(exc))
        return counted(record, reply.message())

    request = ChatRequest(config, message, actor, command, arguments, language, job_id)
    project = str(arguments.get("project") or "")
    project = project if project in config.projects else ""
    request.record = record = _record(request, command.name, arguments, project)
    environment = str(arguments.get(command.environment_argument) or "") if command.environment_argument else ""
    # Who may, decided now with what is known here; an act is decided again in the worker with its build.
    decision = authz.authorize(
        config, actor, command.verb, authz.Target(project, environment), record, arguments, language
    )
    if decision.denied:
        return counted(record, Reply(title="denied", ok=False, text=f"⛔ {decision.reason}").message())

    if not command.acts:
        reply = dispatch.run(request)
        audit.finish(record, "answered" if reply.ok else "failed", reply.detail or reply.title)
        return counted(record, reply.message())

    audit.write_queued(record)
    outcome = accept(
        "dingtalk",
        msg_id,
        kinds.CHAT_COMMAND,
        {
            "message": {k: message[k] for k in REPLY_FIELDS if k in message},
            "command": command.name,
            "arguments": arguments,
            "language": language,
            "audit": asdict(record),
        },
    )
    if outcome.status == "duplicate":
        return EMPTY_REPLY  # the first delivery was acknowledged; its result is on its way
    return Reply(
        title="ok",
        text=request.t(
            f"收到 `{command.name}`，处理中，结果稍后发到本群。",
            f"Got it: `{command.name}` is running; the result will be posted here.",
        ),
    ).message()
