"""How a call to a peer opsbot drives (Drone, GitLab) can fail, sorted the way the worker and chat need it:

- not configured: the config has no section for the peer; say which section to add;
- refused: the peer said no (4xx) and retrying cannot change that; show its own message;
- unavailable: down, slow or throttling; a RetryLater, so the queue tries the job again. When the request may
  have reached the peer and only its answer was lost (`answer_lost`), the RetryLater says so (`in_doubt`), and
  an effect past its point of no return is not simply run again (state.effects).

Each peer's client has the three, named after it (`errors()`), so that chat answers all peers alike
(chat/dispatch.py) and callers can still catch one peer's errors.

And where a peer's token may go (`check_pinned`): the hosts that may receive each token are the stack's (settings
PEER_HOSTS: template parameters, never the config, which anyone who may push to the config repo edits). The config
naming another host is refused when it is validated, with file and line, and each client refuses it again before
it sends anything (PeerNotPinned), so a config stored before a host was removed from the list sends it nowhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.settings import PEER_HOSTS, settings

# How each pinned peer is named to people.
PEER_LABELS = {
    "gitlab": "GitLab",
    "drone": "Drone",
    "kubernetes": "Kubernetes API server",
    "dingtalk": "DingTalk robot",
    "feishu": "Feishu robot",
    "wecom": "WeCom robot",
    "slack": "Slack webhook",
}
# The hosts under which eks:DescribeCluster names a cluster's endpoint (the worker may describe only the stack's
# OpsClusters, by IAM), taken for an EKS cluster without being listed.
EKS_ENDPOINT_SUFFIXES = (".eks.amazonaws.com", ".eks.amazonaws.com.cn")
_DEFAULT_PORTS = {"https": 443, "http": 80}


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


class PeerNotPinned(PermanentFailure):
    """A token would go to a host the stack does not list for its peer: nothing is sent, and retrying cannot help."""

    def __init__(self, peer: str, reason: str):
        super().__init__(reason)
        self.peer = PEER_LABELS.get(peer, peer)


def host_of(url: str) -> str:
    """`host` or `host:port` as the URL names it, lower case; "" when it names none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return f"{host}:{port}" if host and port else host


def _allowed(entry: str, host: str, port: int) -> bool:
    name, _, wanted = entry.partition(":")
    return name == host and (not wanted or wanted == str(port))


def not_pinned(url: str, peer: str, eks_endpoint: bool = False) -> str:
    """Why `url` may not receive `peer`'s token ("" when it may): its host is not in the stack's list for that peer
    (an EKS endpoint may also be under EKS_ENDPOINT_SUFFIXES), or it is not https:// outside the local stack."""
    variable, label = PEER_HOSTS[peer], PEER_LABELS[peer]
    listed = settings().peer_hosts[peer]
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return f"the {label} URL is not a URL"
    host = (parts.hostname or "").lower()
    if not host or "@" in parts.netloc or "\\" in url:
        return f"the {label} URL names no plain host"
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and settings().allows_literal_secrets):
        return f"the {label} URL must be https://"
    if any(_allowed(entry, host, port) for entry in listed):
        return ""
    if eks_endpoint and scheme == "https" and host.endswith(EKS_ENDPOINT_SUFFIXES):
        return ""
    shown = ", ".join(listed) or "none"
    return (
        f"{host_of(url)} is not a {label} host this stack may send its token to "
        f"({variable}, a stack parameter: {shown})"
    )


def check_pinned(url: str, peer: str, eks_endpoint: bool = False) -> None:
    """Refuse, before anything is sent, to send `peer`'s token to a host the stack does not list for it."""
    if reason := not_pinned(url, peer, eks_endpoint):
        raise PeerNotPinned(peer, reason)
