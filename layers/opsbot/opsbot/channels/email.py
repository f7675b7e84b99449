"""E-mail through Amazon SES (`SendEmail`): an HTML part and a text part, from one verified identity.

No secret: the worker's IAM role may send only as the configured identity (template.yaml). SES throttles past
the account's sending rate in a region (one a second in the sandbox; 200 a day there too), however many robots
send, so that second is a budget all e-mail robots of a region share (`shared_budget`): `Throttling` is retried,
after an hour when the day's quota is spent. `MessageRejected` (an identity that is not verified, or in the sandbox a
recipient that is not), a MAIL FROM domain not verified or sending paused are the robot's or the account's to
fix. Mentions: the people a message @-mentions are copied (Cc) when they have an `email`.
"""

from __future__ import annotations

import html

from opsbot.aws import client
from opsbot.channels import base, markdown
from opsbot.config.model import Person, Robot
from opsbot.jobs import deadline
from opsbot.jobs.model import RetryLater
from opsbot.message import Message, link_buttons

KIND = "email"
# Far below SES's 10 MB: Gmail clips a message past 102 KB, so a longer one is summarised like a chat message.
MAX_BYTES = 100_000
SECOND_MS = 1_200  # SES's sandbox rate, one a second, with a margin
QUOTA_DELAY = 3_600
THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
UNAVAILABLE = {"ServiceUnavailable", "InternalFailure", "InternalServerError", "RequestTimeout"}
COLOURS = {"info": "#1f6feb", "success": "#1a7f37", "warning": "#bf8700", "failure": "#cf222e"}


def windows(robot: Robot) -> tuple[base.Window, ...]:
    return base.per_minute(robot.rate_limit_per_minute)


def shared_budget(robot: Robot) -> tuple[str, tuple[base.Window, ...]]:
    """SES's sending rate is the account's in a region, not a robot's: every e-mail robot of a region shares it."""
    return f"ses#{robot.region}", (base.Window(1, SECOND_MS),)


def credentials(robot: Robot) -> tuple:
    return ()  # IAM


def handle(person: Person) -> str:
    return person.email


def _body(message: Message, lines: list[str], people: markdown.People) -> dict:
    links = [*link_buttons(message.buttons), *message.links]
    marked = "\n".join(markdown.with_mention_line(lines, message.mentions.people))
    buttons = " ".join(
        f'<a href="{html.escape(link.url, quote=True)}" style="display:inline-block;padding:6px 12px;margin:4px;'
        f'border-radius:4px;background:{COLOURS["info"]};color:#fff;text-decoration:none">'
        f"{html.escape(link.label)}</a>"
        for link in links
    )
    document = (
        '<html><body style="font-family:sans-serif">'
        f'<div style="border-left:4px solid {COLOURS.get(message.severity, COLOURS["info"])};padding-left:12px">'
        f"{markdown.html_body(marked)}</div>" + (f"<p>{buttons}</p>" if buttons else "") + "</body></html>"
    )
    text = markdown.plain_text(marked)
    if links:
        text += "\n\n" + "\n".join(f"{link.label}: {link.url}" for link in links)
    return {
        "subject": " ".join(message.title.split())[:200],
        "html": document,
        "text": text,
        "cc": markdown.mentioned(marked, people, handle),
    }


def _size(body: dict) -> int:
    return len(body["html"].encode("utf-8")) + len(body["text"].encode("utf-8"))


def render(message: Message, people: markdown.People) -> dict:
    return markdown.fit(message.lines, lambda lines: _body(message, lines, people), _size, MAX_BYTES, message.language)


def fits(message: Message, people: markdown.People, limit: int | None = None) -> bool:
    """Whether the whole message fits (within `limit`, else the channel's own)."""
    return _size(_body(message, message.lines, people)) <= (limit or MAX_BYTES)


def send(robot: Robot, body: dict) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

    target = base.label(robot.name)
    deadline.check(target)  # a job out of its time budget stops before the send, not in it
    cc = [address for address in body.get("cc", []) if address not in robot.recipients]
    try:
        client("ses", robot.region).send_email(
            Source=robot.sender,
            Destination={"ToAddresses": list(robot.recipients), **({"CcAddresses": cc} if cc else {})},
            Message={
                "Subject": {"Data": body["subject"], "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": body["text"], "Charset": "UTF-8"},
                    "Html": {"Data": body["html"], "Charset": "UTF-8"},
                },
            },
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, text = error.get("Code", "?"), str(error.get("Message", ""))[:160]
        reason = f"SES {code}: {text}".strip()
        if code in THROTTLED:
            raise base.rate_limited(KIND, target, reason, QUOTA_DELAY if "quota" in text.lower() else None) from None
        if code in UNAVAILABLE or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise RetryLater(f"{target}: {reason}") from None
        # MessageRejected (identity or sandbox recipient not verified), MailFromDomainNotVerified, sending paused,
        # a configuration set that does not exist: the robot's settings or the account need fixing.
        raise base.refused(KIND, target, reason) from None
    except BotoCoreError as exc:  # could not connect, or timed out: after the request, SES may have sent it
        raise RetryLater(f"{target}: {type(exc).__name__}", in_doubt=isinstance(exc, ReadTimeoutError)) from None
