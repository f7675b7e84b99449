"""Where chat messages come in: one module per chat platform, each verifying its callbacks once, reading them into
a channel-neutral InboundMessage (chat/inbound/message.py) and handing that to chat.ingress. A second platform is a
new module here and a reader in READERS, not a fork of the chat layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsbot.chat.inbound import dingtalk

if TYPE_CHECKING:  # types only: the DingTalk function's cold start imports this package, and verifies, nothing more
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.config.model import Config

# Each channel's reader of what its adapter put in a chat job (`channel`, `message`), for the worker.
READERS = {"dingtalk": dingtalk.inbound_message}


def from_job(config: Config, payload: dict) -> InboundMessage:
    """The message a `chat.command` job answers; jobs queued before there were channels are DingTalk's."""
    return READERS[payload.get("channel", "dingtalk")](config, payload["message"])
