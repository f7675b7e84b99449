"""The channel-neutral chat message every inbound adapter builds, so the chat layer never reads a platform's
fields: what was said, by whom (an authz.actors Actor, from the adapter's one reader of its sender fields), in
which conversation and how to answer into it, and what the worker needs to build it again."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbot.authz.actors import Actor
from opsbot.message import Conversation

# How the chat layer names each inbound channel to a person (whoami).
CHANNEL_NAMES = {"dingtalk": ("钉钉", "DingTalk"), "feishu": ("飞书", "Feishu"), "slack": ("Slack", "Slack")}


@dataclass(frozen=True)
class InboundMessage:
    channel: str  # the adapter that built it: "dingtalk" or "feishu"
    msg_id: str  # the channel's id of this message: acts are deduplicated by it
    text: str  # what was said, the @-mention of the bot taken off by the platform
    actor: Actor
    conversation: Conversation
    created_ms: int | None = None  # when the channel says it was sent (not signed: the audit log checks it)
    sender_nick: str = ""  # what the channel calls the sender, for one not in `people`
    people_key: str = ""  # the `people[]` key that would name this sender (whoami tells the admin)
    job_fields: dict = field(default_factory=dict)  # what the worker needs to build it again (the job's payload)
