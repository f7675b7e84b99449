"""whoami / 我是谁: how opsbot sees you, which decides what you may run."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.inbound.message import CHANNEL_NAMES
from opsbot.chat.registry import command
from opsbot.markup import dingtalk as md
from opsbot.message import Reply


@command(
    "whoami",
    area="general",
    aliases=("我是谁",),
    zh="你的身份和角色",
    en="Your identity and roles",
    examples=("whoami",),
)
def whoami(request: ChatRequest) -> Reply:
    person, inbound = request.person, request.inbound
    if person is None:
        # The id the channel gives, and the people key that would name the sender (its adapter knows which).
        ids, field = md(inbound.actor.handle or "?", 80), inbound.people_key
        nick = md(inbound.sender_nick or "?", 60)
        zh, en = CHANNEL_NAMES.get(inbound.channel, (inbound.channel, inbound.channel))
        return Reply(
            title=request.t("我是谁", "whoami"),
            text=request.t(
                f"你是 {nick}（{zh} ID `{ids}`），不在 opsbot 的人员配置里，只能使用查询类命令。"
                f"请管理员把这个 ID 加到 people 的 {field}。",
                f"You are {nick} ({en} id `{ids}`), not in opsbot's people config, so "
                f"you may only run commands that read. Ask an admin to add this id as a person's {field}.",
            ),
        )
    roles = ", ".join(person.roles) or request.t("无", "none")
    return Reply(
        title=request.t("我是谁", "whoami"),
        text=request.t(
            f"你是 **{person.name}**（`{person.id}`），角色：{roles}。",
            f"You are **{person.name}** (`{person.id}`), roles: {roles}.",
        ),
    )
