"""whoami / 我是谁: how opsbot sees you, which decides what you may run."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import command
from opsbot.markup import dingtalk as md
from opsbot.message import Reply


@command("whoami", aliases=("我是谁",), zh="你的身份和角色", en="Your identity and roles", examples=("whoami",))
def whoami(request: ChatRequest) -> Reply:
    person, message = request.person, request.message
    if person is None:
        # A published robot sends the staff id; before that, only the robot-scoped senderId.
        staff_id = message.get("senderStaffId")
        ids, field = (
            (staff_id, "dingtalk_user_id") if staff_id else (message.get("senderId") or "?", "dingtalk_sender_id")
        )
        ids, nick = md(ids, 80), md(message.get("senderNick", "?"), 60)
        return Reply(
            title="whoami",
            text=request.t(
                f"你是 {nick}（钉钉 ID `{ids}`），不在 opsbot 的人员配置里，只能使用查询类命令。"
                f"请管理员把这个 ID 加到 people 的 {field}。",
                f"You are {nick} (DingTalk id `{ids}`), not in opsbot's people config, so "
                f"you may only run commands that read. Ask an admin to add this id as a person's {field}.",
            ),
        )
    roles = ", ".join(person.roles) or request.t("无", "none")
    return Reply(
        title="whoami",
        text=request.t(
            f"你是 **{person.name}**（`{person.id}`），角色：{roles}。",
            f"You are **{person.name}** (`{person.id}`), roles: {roles}.",
        ),
    )
