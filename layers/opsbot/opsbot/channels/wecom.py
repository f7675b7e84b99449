"""WeCom's (企业微信) group robot: markdown.

`POST qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`: the key in the URL is the whole secret, so the webhook
lives in SSM. WeCom answers `{"errcode": 0}`; 45009 is "api freq out of limit" (20 messages a minute per robot),
93000 an invalid webhook URL (a wrong or deleted key); anything else it refuses is ours or the robot's to fix.
A markdown message's content holds at most 4,096 bytes (UTF-8). Mentions are `<@userid>`.

Buttons are links in the markdown: a `template_card` holds plain text fields and at most three jump links, where
opsbot's messages are markdown with lists and links of their own, so markdown fits every message.
"""

from __future__ import annotations

from opsbot import secrets
from opsbot.channels import base, markdown
from opsbot.channels.http import post_json
from opsbot.config.model import Person, Robot
from opsbot.jobs.model import RetryLater
from opsbot.message import Message, link_buttons

KIND = "wecom"
MAX_CONTENT_BYTES = 4_096
TOO_FREQUENT = 45009
BUSY = -1  # "system busy"
TOO_FREQUENT_DELAY = 60


def windows(robot: Robot) -> tuple[base.Window, ...]:
    return base.per_minute(robot.rate_limit_per_minute)


def credentials(robot: Robot) -> tuple[str]:
    return (base.pinned_webhook(KIND, robot.name, secrets.resolve(robot.webhook)),)


def handle(person: Person) -> str:
    return person.wecom_user_id


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    links = [*link_buttons(message.buttons), *message.links]
    if links:
        lines = [*lines, "", " · ".join(f"[{link.label}]({link.url})" for link in links)]
    text = markdown.wecom("\n".join(markdown.with_mention_line(lines, message.mentions.people)), people, handle)
    return {"msgtype": "markdown", "markdown": {"content": text}}


def _size(body: dict) -> int:
    return len(body["markdown"]["content"].encode("utf-8"))


def render(message: Message, people: markdown.People) -> dict:
    return markdown.fit(
        message.lines, lambda lines: _body(message, lines, people), _size, MAX_CONTENT_BYTES, message.language
    )


def fits(message: Message, people: markdown.People, limit: int | None = None) -> bool:
    """Whether the whole message fits (within `limit`, else the channel's own)."""
    return _size(_body(message, message.lines, people)) <= (limit or MAX_CONTENT_BYTES)


def send(robot: Robot, body: dict) -> None:
    (webhook,) = credentials(robot)
    target = base.label(robot.name)
    answer = post_json(webhook, body, target)
    if answer.status == 429:
        raise base.rate_limited(KIND, target, "WeCom HTTP 429", TOO_FREQUENT_DELAY)
    if not answer.is_json or not isinstance(answer.body, dict):
        raise RetryLater(f"{target}: HTTP {answer.status} without WeCom's JSON answer")
    code = answer.body.get("errcode", -2)
    if 200 <= answer.status < 300 and code == 0:
        return
    reason = f"WeCom errcode {code} {str(answer.body.get('errmsg', ''))[:120]}".strip()
    if code == TOO_FREQUENT:
        raise base.rate_limited(KIND, target, reason, TOO_FREQUENT_DELAY)
    if code == BUSY:
        raise RetryLater(f"{target}: {reason}")
    # 93000 (invalid webhook URL: a wrong or deleted key), 40008 (message type), 40058 (a bad field) …
    raise base.refused(KIND, target, reason)
