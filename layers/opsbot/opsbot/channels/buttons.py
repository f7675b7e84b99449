"""Buttons that act: a button on one of opsbot's messages that runs a chat command (`confirm 1a2b3c4d`,
`approve 5e6f…`) as the person who pressed it, where the channel is an app that says who pressed (Slack's
interactivity; chat/inbound/slack.py). It lives with the channels, which render it. A custom group robot's
message keeps link buttons only.

A button's value is its command with opsbot's own MAC (the release links' signing key), so a callback that names a
command opsbot never put on a button does nothing: the platform's signature says who pressed, opsbot's says what
the button was. The command then goes through chat.ingress.answer like a typed one: the same authorization core,
the same audit record, and an act queued once per *press id*: one act per button (a button pressed twice, or on
two devices, acts once), except approvals, where each person's press counts once (a request may need two).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from opsbot.message import Button
from opsbot.secrets import get_parameter
from opsbot.settings import settings

PREFIX = "b1"
MAX_COMMAND_CHARS = 200  # longer than any command a button carries; Slack's value holds 2,000 characters
PER_PERSON_VERBS = ("approve",)  # each approver's press is their own act (a request may need several)


class NotOurButton(Exception):
    """A press whose value is not a button opsbot made (no value, another shape, or a MAC that does not match)."""


def _mac(command: str, key: bytes | None = None) -> str:
    key = key if key is not None else get_parameter(settings().action_signing_key_param).encode()
    return hmac.new(key, b"opsbot-button\n" + command.encode(), hashlib.sha256).hexdigest()[:32]


def value(command: str, key: bytes | None = None) -> str:
    """What the button carries to the platform and back: the command and opsbot's MAC of it (under the stack's key;
    `key` for the local tools, which know the local stack's)."""
    encoded = base64.urlsafe_b64encode(command.encode()).decode().rstrip("=")
    return f"{PREFIX}.{encoded}.{_mac(command, key)}"


def command_of(pressed: str) -> str:
    """The command a pressed button's value carries, or NotOurButton."""
    parts = pressed.split(".") if isinstance(pressed, str) and len(pressed) < 1000 else []
    if len(parts) != 3 or parts[0] != PREFIX:
        raise NotOurButton("not a button opsbot made")
    try:
        command = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise NotOurButton("not a button opsbot made") from None
    if len(command) > MAX_COMMAND_CHARS or not hmac.compare_digest(parts[2].encode(), _mac(command).encode()):
        raise NotOurButton("the button's signature does not match: opsbot never sent it")
    return command


def press_id(pressed: str, person_id: str) -> str:
    """The id an act from this button is claimed under (for good): the button's, or the button's and the person's
    for a verb where each person's press counts."""
    command = command_of(pressed)
    button = hashlib.sha256(pressed.encode()).hexdigest()[:32]
    per_person = command.split(" ", 1)[0].lower() in PER_PERSON_VERBS
    return f"button:{button}:{person_id}" if per_person else f"button:{button}"


def command_button(label: str, command: str) -> Button:
    """A button that runs `command` as its presser, where the channel can tell who pressed."""
    return Button(label=label, url="", command=command)


def approval_buttons(request_id: str, language: str) -> list[Button]:
    """An approval request's two next steps, each pressed by whoever decides (never the requester: authz says so)."""
    from opsbot.i18n import t

    return [
        command_button(t(language, "✅ 批准", "✅ Approve"), f"approve {request_id}"),
        command_button(t(language, "❌ 拒绝", "❌ Reject"), f"reject {request_id}"),
    ]


def confirm_button(request_id: str, language: str) -> list[Button]:
    """A preview's next step, which only its requester may press (ops/requests.py says so to anyone else)."""
    from opsbot.i18n import t

    return [command_button(t(language, "▶️ 确认执行", "▶️ Confirm"), f"confirm {request_id}")]
