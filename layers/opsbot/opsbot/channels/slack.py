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
from opsbot.channels import base, buttons, markdown, slack_app
from opsbot.channels.http import post_json
from opsbot.config.model import Person, Robot
from opsbot.message import Button, Message
from opsbot.settings import settings

KIND = "slack"
SECTION_CHARS = 3_000
MAX_CHARS = 4_000
MAX_BUTTONS = 5
BUTTON_LABEL_CHARS = 75
SECOND_MS = 1_200  # about one message a second per webhook, with a margin
DEFAULT_RETRY_AFTER = 30
ACTION_PREFIX = "opsbot.press."  # a command button's action_id (Slack wants it unique within the message)


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


def _button(button: Button, index: int) -> dict:
    """A link button, or (with the Slack app's interactivity set up) one that runs its command as the presser:
    Slack posts the press to /webhooks/slack/interactivity with the button's `value` (channels/buttons.py)."""
    element = {"type": "button", "text": {"type": "plain_text", "text": button.label[:BUTTON_LABEL_CHARS]}}
    if button.command and settings().slack_app_id:  # a release button acts in place; its link is for the others
        element.update(action_id=f"{ACTION_PREFIX}{index}", value=buttons.value(button.command))
    else:
        element["url"] = button.url
    return {**element, **({"style": "primary"} if index == 0 else {})}


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    if message.links:
        lines = [*lines, "", " · ".join(f"[{link.label}]({link.url})" for link in message.links)]
    text = markdown.slack("\n".join(markdown.with_mention_line(lines, message.mentions.people)), people, handle)
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section, "verbatim": True}}
        for section in _sections(text)
    ]
    shown = [b for b in message.buttons if b.url or (b.command and settings().slack_app_id)][:MAX_BUTTONS]
    if shown:
        blocks.append({"type": "actions", "elements": [_button(b, i) for i, b in enumerate(shown)]})
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


def _respond(response_url: str, body: dict) -> None:
    """POST to a button press's `response_url` (checked against SLACK_RESPONSE_URL_PREFIX where it was read). Slack
    takes a response_url for 30 minutes and 5 uses; past that it answers 404 `expired_url` / `used_url`."""
    target = "Slack response_url"
    answer = post_json(response_url, body, target)
    if answer.status == 429:
        raise base.rate_limited(KIND, target, "Slack HTTP 429", _retry_after(answer.headers))
    if not 200 <= answer.status < 300:
        error = answer.body if isinstance(answer.body, str) else str(answer.body)
        raise base.refused(KIND, target, f"Slack HTTP {answer.status} {error[:80]}".strip())


def send_by_session(reply_url: str, body: dict) -> None:
    """Into the conversation: a typed message's answer, in its thread, through the Web API (channels/slack_app.py);
    a pressed button's outcome, in place of the message that had it (its buttons go with it: pressed is done), for
    everyone in the channel."""
    if slack_app.is_reply_url(reply_url):
        slack_app.post_message(reply_url, body)
        return
    _respond(reply_url, {**body, "replace_original": True})


def tell_presser(response_url: str, body: dict) -> None:
    """An answer only the presser sees (why not, or that it is on its way), leaving the message as it was."""
    _respond(response_url, {**body, "response_type": "ephemeral", "replace_original": False})


def send_failure_by_session(reply_url: str, body: dict) -> None:
    """A refusal or failure (delivery/post.py): in a typed message's thread; for a pressed button, to the presser
    alone, the message left as it was."""
    if slack_app.is_reply_url(reply_url):
        slack_app.post_message(reply_url, body)
        return
    tell_presser(reply_url, body)
