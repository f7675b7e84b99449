"""DingTalk's custom robot (自定义机器人, 加签): markdown, or an actionCard when the message has buttons.

Signing: HMAC-SHA256 of `timestamp\\nsecret` with the secret as key, base64, URL-encoded into the robot URL
(dingtalk/signature.py; the timestamp in ms, accepted within an hour). 20 messages a minute per robot; past that
DingTalk answers 130101 (its docs say 410100) and mutes the robot for 10 minutes. A body holds at most 20,000
bytes. Mentions: `@<user id>` (or `@<mobile>`) in the text and the same id in `at`: DingTalk highlights an @ only
when both say it. DingTalk documents `at` for text and markdown only; an actionCard (a card with release buttons)
carries the same `at` block beside its text, which names the person either way.

A callback's reply goes to its sessionWebhook (`send_by_session`): unsigned, as DingTalk's own is, and only to a
URL under DINGTALK_SESSION_WEBHOOK_PREFIX (chat/inbound/dingtalk.py checks it when it reads the callback).
"""

from __future__ import annotations

from opsbot import secrets
from opsbot.channels import base, markdown
from opsbot.channels.http import encode, post_json
from opsbot.config.model import Person, Robot
from opsbot.dingtalk.signature import signed_robot_url
from opsbot.jobs.model import RetryLater
from opsbot.message import Message, link_buttons

KIND = "dingtalk"
MAX_BYTES = 20_000
TITLE_CHARS = 60  # DingTalk shows the title in the notification list; longer is cut there anyway
# Sending too fast mutes the robot for 10 minutes; DingTalk's docs say 410100, the API answers 130101.
RATE_LIMITED = {130101, 410100}
MUTED_SECONDS = 600


def windows(robot: Robot) -> tuple[base.Window, ...]:
    return base.per_minute(robot.rate_limit_per_minute)


def credentials(robot: Robot) -> tuple[str, str]:
    """The robot's webhook and secret."""
    return base.pinned_webhook(KIND, robot.name, secrets.resolve(robot.webhook)), secrets.resolve(robot.secret)


def handle(person: Person) -> str:
    """DingTalk mentions by user id or by mobile; the user id is preferred as it never changes."""
    return person.dingtalk_user_id or person.mobile


def _user_id(person: Person) -> str:
    return person.dingtalk_user_id


def _mobile(person: Person) -> str:
    return "" if person.dingtalk_user_id else person.mobile


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    if message.links:
        lines = [*lines, "", " · ".join(f"[{link.label}]({link.url})" for link in message.links)]
    lines = markdown.with_mention_line(lines, message.mentions.people)
    marked = "\n".join(lines)
    text = markdown.dingtalk(marked, people, handle)
    title = message.title[:TITLE_CHARS]
    user_ids = markdown.mentioned(marked, people, _user_id)
    mobiles = markdown.mentioned(marked, people, _mobile)
    at = {
        "atMobiles": mobiles + [m for m in message.mentions.stored_mobiles if m not in mobiles],
        "atUserIds": user_ids + [u for u in message.mentions.stored_user_ids if u not in user_ids],
        "isAtAll": False,
    }
    if link_buttons(message.buttons):
        return {
            "msgtype": "actionCard",
            "actionCard": {
                "title": title,
                "text": text,
                "btnOrientation": "0",
                "btns": [{"title": b.label, "actionURL": b.url} for b in link_buttons(message.buttons)],
            },
            "at": at,  # DingTalk documents `at` for text and markdown; a card that names someone carries it too
        }
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}


def _size(body: dict) -> int:
    return len(encode(body))


def render(message: Message, people: markdown.People) -> dict:
    return markdown.fit(message.lines, lambda lines: _body(message, lines, people), _size, MAX_BYTES, message.language)


def fits(message: Message, people: markdown.People, limit: int | None = None) -> bool:
    """Whether the whole message fits (within `limit`, else the channel's own)."""
    return _size(_body(message, message.lines, people)) <= (limit or MAX_BYTES)


def send(robot: Robot, body: dict) -> None:
    """Deliver one message or raise RetryLater / PermanentFailure."""
    _post(signed_robot_url(*credentials(robot)), body, base.label(robot.name))


def send_by_session(session_webhook: str, body: dict) -> None:
    """Reply into the conversation a callback came from, through its short-lived sessionWebhook."""
    _post(session_webhook, body, "session webhook")


def _post(url: str, body: dict, target: str) -> None:
    answer = post_json(url, body, target)
    if answer.status == 429:
        raise RetryLater(f"{target}: HTTP 429")
    if not answer.is_json:
        raise RetryLater(f"{target}: HTTP {answer.status} with a non-JSON body")
    code = answer.body.get("errcode", 0) if isinstance(answer.body, dict) else -1
    if 200 <= answer.status < 300 and code == 0:
        return
    errmsg = answer.body.get("errmsg", "") if isinstance(answer.body, dict) else ""
    reason = f"errcode {code} {errmsg}".strip()
    if code in RATE_LIMITED:
        raise base.rate_limited(KIND, target, reason, MUTED_SECONDS)
    # Security rule failures (keyword, sign, IP: 310000), bad, disabled or missing robots (300001, 400101, 400102,
    # 400106) and anything else DingTalk refuses: fix the config or the SSM value, don't retry.
    raise base.refused(KIND, target, reason)
