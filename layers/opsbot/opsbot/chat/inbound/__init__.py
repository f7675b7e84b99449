"""Where chat messages come in: one module per chat platform, each verifying its callbacks once, reading them into
a channel-neutral InboundMessage (chat/inbound/message.py) and handing that to chat.ingress. A second platform is a
new module here, named in ADAPTERS, not a fork of the chat layer."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: each chat function's cold start imports this package, and verifies, nothing more
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.config.model import Config

# Each channel's adapter, whose `inbound_message(config, fields)` reads what it put in a chat job (`channel`,
# `message`), for the worker; named, not imported, so that one channel's function never loads another's.
ADAPTERS = {
    "dingtalk": "opsbot.chat.inbound.dingtalk",
    "feishu": "opsbot.chat.inbound.feishu",
    "slack": "opsbot.chat.inbound.slack",
}


def from_job(config: Config, payload: dict) -> InboundMessage:
    """The message a `chat.command` job answers; jobs queued before there were channels are DingTalk's."""
    return import_module(ADAPTERS[payload.get("channel", "dingtalk")]).inbound_message(config, payload["message"])
