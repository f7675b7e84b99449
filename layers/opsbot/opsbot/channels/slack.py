"""Slack's incoming webhook: blocks (mrkdwn sections, URL buttons) with the title as the notification text.

`POST hooks.slack.com/services/…`: the URL is the whole secret, so it lives in SSM. Slack answers 200 `ok`;
429 with `Retry-After` (seconds) when a webhook sends faster than about one message a second; 400
`invalid_payload`, 403 `invalid_token` or `action_prohibited`, 404 `no_service` or `channel_not_found`, 410
`channel_is_archived` mean the webhook or the message needs fixing. A section's text holds at most 3,000
characters, so a body is split into sections; past 4,000 characters in all (Slack's advice for a readable
message) it is summarised. The text goes with `verbatim`,
so Slack links no URL and expands no `@channel` by itself: only `<…>` that opsbot writes is a link or mention
(`<@U…>`, by the person's member id).
"""

from __future__ import annotations

from opsbot import secrets
from opsbot.channels import base, markdown
from opsbot.channels.http import post_json
from opsbot.config.model import Person, Robot
from opsbot.message import Message

KIND = "slack"
SECTION_CHARS = 3_000
MAX_CHARS = 4_000
MAX_BUTTONS = 5
BUTTON_LABEL_CHARS = 75
SECOND_MS = 1_200  # about one message a second per webhook, with a margin
DEFAULT_RETRY_AFTER = 30


def windows(robot: Robot) -> tuple[base.Window, ...]:
    return (*base.per_minute(robot.rate_limit_per_minute), base.Window(1, SECOND_MS))


def credentials(robot: Robot) -> tuple[str]:
    return (base.pinned_webhook(KIND, robot.name, secrets.resolve(robot.webhook)),)


def handle(person: Person) -> str:
    return person.slack_user_id


def _sections(text: str) -> list[str]:
    """The mrkdwn split at line ends into sections of at most SECTION_CHARS (a longer line is cut)."""
    sections, current = [], ""
    for line in text.split("\n"):
        line = line if len(line) < SECTION_CHARS else line[: SECTION_CHARS - 1] + "…"
        if current and len(current) + 1 + len(line) > SECTION_CHARS:
            sections.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current.strip():
        sections.append(current)
    return sections or [" "]


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    if message.links:
        lines = [*lines, "", " · ".join(f"[{link.label}]({link.url})" for link in message.links)]
    text = markdown.slack("\n".join(markdown.with_mention_line(lines, message.mentions.people)), people, handle)
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section, "verbatim": True}}
        for section in _sections(text)
    ]
    if message.buttons:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": button.label[:BUTTON_LABEL_CHARS]},
                        "url": button.url,
                        **({"style": "primary"} if index == 0 else {}),
                    }
                    for index, button in enumerate(message.buttons[:MAX_BUTTONS])
                ],
            }
        )
    # `text` is what the notification shows; plain text, as Slack takes it, escaped like mrkdwn.
    title = message.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": title[:150], "blocks": blocks}


def _chars(body: dict) -> int:
    return sum(len(block["text"]["text"]) for block in body["blocks"] if block["type"] == "section")


def render(message: Message, people: markdown.People) -> dict:
    return markdown.fit(message.lines, lambda lines: _body(message, lines, people), _chars, MAX_CHARS, message.language)


def fits(message: Message, people: markdown.People, limit: int | None = None) -> bool:
    """Whether the whole message fits (within `limit`, else the channel's own)."""
    return _chars(_body(message, message.lines, people)) <= (limit or MAX_CHARS)


def _retry_after(headers: dict) -> int:
    value = headers.get("retry-after", "")
    return max(1, min(int(value), 900)) if value.isdigit() else DEFAULT_RETRY_AFTER


def send(robot: Robot, body: dict) -> None:
    (webhook,) = credentials(robot)
    target = base.label(robot.name)
    answer = post_json(webhook, body, target)
    if answer.status == 429:
        raise base.rate_limited(KIND, target, "Slack HTTP 429", _retry_after(answer.headers))
    if 200 <= answer.status < 300:
        return  # Slack answers `ok`; a 2xx took the message, whatever it says
    error = answer.body if isinstance(answer.body, str) else str(answer.body)
    # 400 invalid_payload, 403 invalid_token / action_prohibited, 404 no_service / channel_not_found,
    # 410 channel_is_archived: the webhook or the message needs fixing.
    raise base.refused(KIND, target, f"Slack HTTP {answer.status} {error[:80]}".strip())
