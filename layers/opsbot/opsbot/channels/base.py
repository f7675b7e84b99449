"""What every channel adapter shares: how a peer's answer becomes "deliver later" or "retrying cannot help", each
naming the robot, and the shape every adapter module has.

An adapter module (dingtalk, feishu, wecom, slack, email) provides:

- `KIND`, its `robots.<name>.kind`;
- `windows(robot)`: its rate limits as budget windows (delivery/budget.py); and, for a limit that is not the
  robot's own but shared with the channel's other robots (SES's per account and region), `shared_budget(robot)`:
  its name and windows;
- `credentials(robot)`: reads the robot's secrets, before a send slot is taken, so a slow SSM call cannot push the
  send past the time the budget recorded (send reads them again, from the cache);
- `render(message, people)`: the message in its dialect, within its size limit (summarised or cut, never refused);
- `fits(message, people)`: whether it fits whole, so a digest can take as many entries as fit;
- `send(robot, body)`: signs and sends it, or raises RetryLater (with the peer's delay) or PermanentFailure.

A channel that chat comes in from also answers into a conversation: `send_by_session(url, body)` (DingTalk's
sessionWebhook), which delivery uses while the conversation (opsbot.message.Conversation) is open.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsbot import metrics
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.log import logger
from opsbot.peers import not_pinned

# A little wider than a channel's minute, so clock skew and network delay never put 21 sends in DingTalk's window.
MINUTE_MS = 62_000


@dataclass(frozen=True)
class Window:
    """A rate limit as the budget keeps it: at most `count` sends in any span of `ms` milliseconds."""

    count: int
    ms: int


def per_minute(count: int) -> tuple[Window, ...]:
    return (Window(count, MINUTE_MS),)


def label(name: str) -> str:
    """How a robot is named in reasons and logs (never its URL): robot names are unique across channels."""
    return f"robot {name}"


def pinned_webhook(kind: str, name: str, url: str) -> str:
    """The robot's webhook, when it points at a host the stack lists for its kind (peers.py); otherwise the job is
    parked naming the robot, and nothing, its secret least of all, is sent."""
    if reason := not_pinned(url, kind):
        raise refused(kind, label(name), reason)
    return url


def rate_limited(kind: str, target: str, reason: str, delay: int | None) -> RetryLater:
    """The peer says we send too fast: count it (RateLimited), and retry after `delay` seconds."""
    logger.warning("robot is rate limited", extra={"target": target, "channel": kind, "reason": reason})
    metrics.count(metrics.RATE_LIMITED, Channel=kind)
    return RetryLater(f"{target}: {reason}", delay=delay)


def refused(kind: str, target: str, reason: str) -> PermanentFailure:
    """The peer refuses what retrying will not change (a wrong secret or URL, a disabled robot): park the job."""
    logger.error("robot refused the message", extra={"target": target, "channel": kind, "reason": reason})
    return PermanentFailure(f"{target}: {reason}")
