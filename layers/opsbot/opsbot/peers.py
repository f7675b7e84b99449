"""How a call to a peer opsbot drives (Drone, GitLab) can fail, sorted the way the worker and chat need it:

- not configured: the config has no section for the peer; say which section to add;
- refused: the peer said no (4xx) and retrying cannot change that; show its own message;
- unavailable: down, slow or throttling; a RetryLater, so the queue tries the job again.

Each peer's client has the three, named after it (`errors()`), so that chat answers all peers alike
(chat/dispatch.py) and callers can still catch one peer's errors.
"""

from __future__ import annotations

from opsbot.jobs.model import RetryLater


class PeerNotConfigured(Exception):
    peer = "a peer"
    section = ""  # what to add to opsbot.yaml


class PeerRefused(Exception):
    peer = "a peer"

    def __init__(self, status: int, message: str):
        super().__init__(f"{self.peer} answered {status}: {message}")
        self.status = status
        self.message = message


class PeerUnavailable(RetryLater):
    peer = "a peer"


def errors(peer: str, section: str, module: str) -> tuple[type, type, type]:
    """<peer>NotConfigured, <peer>Refused and <peer>Unavailable, for the client module `module`."""
    made = []
    for base, suffix in (
        (PeerNotConfigured, "NotConfigured"),
        (PeerRefused, "Refused"),
        (PeerUnavailable, "Unavailable"),
    ):
        made.append(type(f"{peer}{suffix}", (base,), {"peer": peer, "section": section, "__module__": module}))
    return made[0], made[1], made[2]
