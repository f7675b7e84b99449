"""Feishu's (Lark's) custom bot (自定义机器人, 签名校验): an interactive card with URL buttons.

`POST open.feishu.cn/open-apis/bot/v2/hook/<token>` (Lark: open.larksuite.com) with
`{"timestamp": "<seconds>", "sign": …, "msg_type": "interactive", "card": …}`. The sign is base64 of
HMAC-SHA256 with `timestamp\\nsecret` as the key and an empty message, the timestamp in seconds (not DingTalk's
milliseconds). Feishu answers `{"code": 0}`; 19021 is a bad sign or a stale timestamp, 19022 an IP not allowed,
19024 a keyword missing, 9499 a bad request: fix the robot, don't retry. 11232 is "too frequent": 100 messages a
minute and 5 a second per bot. A body holds at most 20 KB. Mentions are `<at id=ou_…></at>` in lark_md, by the
person's open_id.

A conversation opsbot's Feishu app bot takes chat in (chat/inbound/feishu.py) is answered with the same card, as a
reply through the app's API (channels/feishu_app.py): `send_by_session`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from opsbot import secrets
from opsbot.channels import base, feishu_app, markdown
from opsbot.channels.http import encode, post_json
from opsbot.config.model import Person, Robot
from opsbot.jobs.model import RetryLater
from opsbot.message import Message, link_buttons
from opsbot.settings import settings

KIND = "feishu"
MAX_BYTES = 20_000  # "20 KB": measured on the body as sent, with the sign and timestamp it gains
SIGN_ROOM = 100  # what the timestamp and sign add to the body at send time
TOO_FREQUENT = 11232
SECOND_MS = 1_200  # a second, and a little more, for 5 a second
PER_SECOND = 5
TOO_FREQUENT_DELAY = 60
TEMPLATES = {"info": "blue", "success": "green", "warning": "orange", "failure": "red"}
MAX_BUTTONS = 5


def windows(robot: Robot) -> tuple[base.Window, ...]:
    return (*base.per_minute(robot.rate_limit_per_minute), base.Window(PER_SECOND, SECOND_MS))


def credentials(robot: Robot) -> tuple[str, str]:
    return base.pinned_webhook(KIND, robot.name, secrets.resolve(robot.webhook)), secrets.resolve(robot.secret)


def handle(person: Person) -> str:
    return person.feishu_open_id


def sign(timestamp_s: str, secret: str) -> str:
    """Feishu's 签名校验: the key is `timestamp\\nsecret`, the message is empty."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    # The card's header shows the message's heading (its first line, when that is one) or its title; the body
    # does not repeat it.
    title, lines = markdown.leading_heading(lines, message.title)
    if message.links:
        lines = [*lines, "", " · ".join(f"[{link.label}]({link.url})" for link in message.links)]
    text = markdown.lark_md("\n".join(markdown.with_mention_line(lines, message.mentions.people)), people, handle)
    elements: list[dict] = [{"tag": "div", "text": {"tag": "lark_md", "content": text}}]
    if link_buttons(message.buttons):
        elements.append(
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": button.label},
                        "type": "primary" if index == 0 else "default",
                        "url": _from_feishu(button.url),
                    }
                    for index, button in enumerate(link_buttons(message.buttons)[:MAX_BUTTONS])
                ],
            }
        )
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": title[:100]},
                "template": TEMPLATES.get(message.severity, "blue"),
            },
            "elements": elements,
        },
    }


def _size(body: dict) -> int:
    return len(encode(body)) + SIGN_ROOM


def render(message: Message, people: markdown.People) -> dict:
    return markdown.fit(message.lines, lambda lines: _body(message, lines, people), _size, MAX_BYTES, message.language)


def fits(message: Message, people: markdown.People, limit: int | None = None) -> bool:
    """Whether the whole message fits (within `limit`, else the channel's own)."""
    return _size(_body(message, message.lines, people)) <= (limit or MAX_BYTES)


def signed(body: dict, secret: str, now: float | None = None) -> dict:
    timestamp = str(int(time.time() if now is None else now))
    return {"timestamp": timestamp, "sign": sign(timestamp, secret), **body}


def send(robot: Robot, body: dict) -> None:
    webhook, secret = credentials(robot)
    target = base.label(robot.name)
    answer = post_json(webhook, signed(body, secret), target)
    if answer.status == 429:
        raise base.rate_limited(KIND, target, "Feishu HTTP 429", TOO_FREQUENT_DELAY)
    if not answer.is_json or not isinstance(answer.body, dict):
        raise RetryLater(f"{target}: HTTP {answer.status} without Feishu's JSON answer")
    # `code` is Feishu's answer; older bots answer `StatusCode` too (0 on success).
    code = answer.body.get("code", answer.body.get("StatusCode", -1))
    if 200 <= answer.status < 300 and code == 0:
        return
    reason = f"Feishu code {code} {answer.body.get('msg') or answer.body.get('StatusMessage') or ''}".strip()
    if code == TOO_FREQUENT:
        raise base.rate_limited(KIND, target, reason, TOO_FREQUENT_DELAY)
    # 19021 (sign or timestamp), 19022 (IP), 19024 (keyword), 9499 (bad request), a wrong hook token: the robot's
    # settings or the SSM values need fixing.
    raise base.refused(KIND, target, reason)


def _from_feishu(url: str) -> str:
    """A release link on a Feishu card says it came from Feishu (`?via=feishu`), so its page offers Feishu's sign-in
    (channels/feishu_login.py) rather than DingTalk's; the mark is a choice of button, never trusted for who clicks."""
    base = f"{settings().public_base_url}/actions/"
    return f"{url}?via=feishu" if url.startswith(base) and "?" not in url and "#" not in url else url


def send_by_session(reply_url: str, body: dict) -> None:
    """Reply into the Feishu conversation a message came from. The uuid is the reply's own hash, so a reply sent
    again within the hour (a redrive after an answer was lost) is one message."""
    uuid = hashlib.sha256(reply_url.encode() + encode(body)).hexdigest()[:50]
    feishu_app.reply(reply_url, "interactive", body["card"], uuid)
