"""How a call to a peer opsbot drives (Drone, GitLab) can fail, sorted the way the worker and chat need it:

- not configured: the config has no section for the peer; say which section to add;
- refused: the peer said no (4xx) and retrying cannot change that; show its own message;
- unavailable: down, slow or throttling; a RetryLater, so the queue tries the job again. When the request may
  have reached the peer and only its answer was lost (`answer_lost`), the RetryLater says so (`in_doubt`), and
  an effect past its point of no return is not simply run again (state.effects).

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


def answer_lost(exc: Exception) -> bool:
    """Whether a failed HTTP call may have reached the peer: the request may have gone out and only the answer
    was lost (a read timeout, a connection dropped mid-way). A connection never made (refused, or a connect
    timeout) sent nothing."""
    import requests  # only a failed call pays for it, and only after requests was used

    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return True
