"""Where an acting command's result goes: back into the conversation through its sessionWebhook while that
is still valid, otherwise to the project's group robot (or the ops robot when no project is involved).

A callback's body is not covered by DingTalk's sign, so a sessionWebhook is used only when it points at
DingTalk itself (DINGTALK_SESSION_WEBHOOK_PREFIX); anything else would let a forged body aim opsbot's
replies at any URL.
"""
from __future__ import annotations

import time

from opsbot.chat.context import Reply
from opsbot.config.model import Config
from opsbot.dingtalk import robot as robot_api
from opsbot.jobs.model import PermanentFailure
from opsbot.notify import delivery
from opsbot.settings import settings

SESSION_MARGIN_MS = 60_000  # do not start a send on a session about to expire


def session_webhook(message: dict, now_ms: int | None = None) -> str:
    url = message.get("sessionWebhook")
    expires = message.get("sessionWebhookExpiredTime")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not isinstance(url, str) or not url.startswith(settings().dingtalk_session_webhook_prefix):
        return ""
    if not isinstance(expires, int) or isinstance(expires, bool) or expires - SESSION_MARGIN_MS < now_ms:
        return ""
    return url


def post(config: Config, reply: Reply, message: dict | None = None, key: str = "") -> str:
    """Post `reply`; returns where it went. `key` identifies it in a digest if the robot's budget is spent."""
    url = session_webhook(message or {})
    if url:
        robot_api.send_by_session(url, reply.message())
        return "conversation"
    project = config.projects.get(reply.project)
    robot_name = project.robot if project else config.ops_robot
    robot = config.robots.get(robot_name)
    if robot is None:
        raise PermanentFailure(f"no robot to post the result to (project {reply.project or '-'}, ops_robot unset)")
    entry = {"id": key or reply.title, "line": f"- {reply.title}: {reply.detail or reply.text[:200]}",
             "mobiles": reply.mentions.mobiles, "user_ids": reply.mentions.user_ids}
    return f"robot {robot.name}: " + delivery.deliver(robot, reply.message(), entry)
