"""Posting a Reply: back into the conversation it answers (a DingTalk callback's sessionWebhook, while that is
still valid), otherwise to the project's group robot, or the ops robot when no project is involved; and
`post_once`, which posts a reply once per key however often its job runs. Every post runs inside a run-once
effect (state.effects), and commits it just before the send.

A callback's body is not covered by DingTalk's sign, so a sessionWebhook is used only when it points at
DingTalk itself (DINGTALK_SESSION_WEBHOOK_PREFIX); anything else would let a forged body aim opsbot's
replies at any URL.
"""

from __future__ import annotations

import time

from opsbot.config.model import Config
from opsbot.delivery import robot as budgeted
from opsbot.dingtalk import robot as robot_api
from opsbot.jobs.model import PermanentFailure
from opsbot.message import Reply
from opsbot.settings import settings
from opsbot.state import effects, keys

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
    """Post `reply` (into the conversation of `message`, a callback, when it is still open); returns where it went.
    `key` identifies it in a digest if the robot's budget is spent."""
    url = session_webhook(message or {})
    if url:
        effects.commit()  # DingTalk cannot be asked afterwards whether the reply arrived
        robot_api.send_by_session(url, reply.message())
        return "conversation"
    project = config.projects.get(reply.project)
    robot_name = project.robot if project else config.ops_robot
    robot = config.robots.get(robot_name)
    if robot is None:
        raise PermanentFailure(f"no robot to post the result to (project {reply.project or '-'}, ops_robot unset)")
    return f"robot {robot.name}: " + budgeted.deliver(robot, reply.message(), reply.digest_entry(key or reply.title))


def post_once(config: Config, reply: Reply, key: str, message: dict | None = None) -> str:
    """Post `reply` (into the conversation of `message`, while open) unless a delivery with this key already did;
    where it went. A job retried because posting failed posts it; the same news delivered again (new delivery ids,
    same key), or a job redelivered after it posted, does not."""
    return effects.once(keys.TOLD + key, lambda: {"where": post(config, reply, message, key)})["where"]
