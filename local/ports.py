"""One place for the local stack's ports, and the one way the local commands find a running stack.

The stack owns its ports. `PORT` (3000) is the API's; every other port follows from it unless it is set on its own
(`SINK_PORT=…`, `DRONE_PORT=…`, …): the sink is PORT+1, Drone +2, GitLab +3, Kubernetes +4, SSM Run Command +5,
Argo CD +6, DNS +53 and moto +2005, so PORT=3000 gives the ports this project always had. The config never names a
port: it names each fake by its role (`local://drone`), which the stack resolves through LOCAL_PEERS
(opsbot.settings).

A running stack says where everything is at `GET /_local/stack`: the local commands (`make send`, `chat`, `click`,
`config-push`, `config-load`, `event`) ask it there, so `PORT` is the only thing they need.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 3000
HOST = "127.0.0.1"
# Each port's offset from PORT, and the variable (and `python -m local.stack` option) that sets it alone.
OFFSETS = {"sink": 1, "drone": 2, "gitlab": 3, "kube": 4, "ssm": 5, "argocd": 6, "dns": 53, "moto": 2005}
VARIABLES = {
    "api": "PORT",
    "sink": "SINK_PORT",
    "drone": "DRONE_PORT",
    "gitlab": "GITLAB_PORT",
    "kube": "KUBE_PORT",
    "ssm": "SSM_PORT",
    "argocd": "ARGOCD_PORT",
    "dns": "DNS_PORT",
    "moto": "MOTO_PORT",
}
INFO_PATH = "/_local/stack"


@dataclass(frozen=True)
class Ports:
    api: int
    sink: int
    drone: int
    gitlab: int
    kube: int
    ssm: int
    dns: int
    moto: int
    argocd: int

    @classmethod
    def derive(cls, api: int, **given: int | None) -> Ports:
        """The ports for an API on `api`: each one `given` (not None), else api + its offset."""
        unknown = set(given) - set(OFFSETS)
        if unknown:
            raise TypeError(f"no such port: {', '.join(sorted(unknown))}")
        return cls(api=api, **{name: given.get(name) or api + offset for name, offset in OFFSETS.items()})

    @classmethod
    def from_environment(cls, api: int | None = None) -> Ports:
        """PORT and the single-port variables, as `make run` passes them."""
        port = api or int(os.environ.get("PORT") or DEFAULT_PORT)
        given = {name: int(os.environ[VARIABLES[name]]) for name in OFFSETS if os.environ.get(VARIABLES[name])}
        return cls.derive(port, **given)

    def url(self, name: str, host: str = HOST) -> str:
        return f"http://{host}:{getattr(self, name)}"

    def peers(self, host: str = HOST) -> dict[str, str]:
        """Where `local://<role>` points (config.model.LOCAL_PEER_ROLES): every chat's fake shares the sink's port."""
        sink = self.url("sink", host)
        return {
            "dingtalk": sink,
            "feishu": sink,
            "wecom": sink,
            "slack": sink,
            "drone": self.url("drone", host),
            "gitlab": self.url("gitlab", host),
            "dns": f"{host}:{self.dns}",
            "health": sink,  # the services' health pages a GitOps release verifies (local/fake_health.py)
        }

    def pinned_hosts(self, host: str = HOST) -> dict[str, str]:
        """The one host:port each peer's token may go to (pinned peers: settings.PEER_HOSTS' keys): where its
        `local://<role>` resolves (peers, so the config's peers and the pins cannot disagree), and the fake
        Kubernetes API, which moto's EKS cluster names as its endpoint (no config names it)."""
        pinned = {role: urlsplit(url).netloc for role, url in self.peers(host).items() if role not in ("dns", "health")}
        return {**pinned, "kubernetes": f"{host}:{self.kube}"}

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def taken(self, host: str = HOST) -> list[str]:
        """The ports something else already holds, each with the variable that chose it (the DNS port is UDP)."""
        import socket

        found = []
        for name, number in self.as_dict().items():
            kind = socket.SOCK_DGRAM if name == "dns" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
                try:
                    probe.bind((host, number))
                except OSError:
                    origin = "" if name == "api" else f", PORT+{OFFSETS[name]} unless set"
                    found.append(f"{number} ({VARIABLES[name]}{origin})")
        return found


def peers_variable(peers: dict[str, str]) -> str:
    """LOCAL_PEERS' value for `peers`."""
    return " ".join(f"{role}={address}" for role, address in peers.items())


class NotRunning(Exception):
    """No local stack answers on the port tried; the message names the port and the variable that chose it."""


def port_from(argument: int | None = None) -> tuple[int, str]:
    """The API port to try and where it came from: an option, else PORT, else the default."""
    if argument:
        return argument, f"PORT={argument}"
    if os.environ.get("PORT"):
        return int(os.environ["PORT"]), f"PORT={os.environ['PORT']} in the environment"
    return DEFAULT_PORT, f"PORT unset, so {DEFAULT_PORT}"


def running(port: int | None = None, timeout: float = 3.0) -> dict:
    """What the stack on `port` says about itself: its ports (`ports`), URLs (`urls`), config directory
    (`config`) and working directory (`workdir`). NotRunning when nothing answers there, or something else does."""
    import requests

    port, origin = port_from(port)
    url = f"http://{HOST}:{port}{INFO_PATH}"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException:
        raise NotRunning(
            f"the local stack is not running on port {port} ({origin}): start it with "
            f"`make run{'' if port == DEFAULT_PORT else f' PORT={port}'}`, or give the PORT it runs on"
        ) from None
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application/json"):
        raise NotRunning(
            f"something answers on port {port} ({origin}), but not the opsbot local stack "
            f"(GET {INFO_PATH}: HTTP {response.status_code}): give the PORT `make run` uses"
        )
    return response.json()


def running_or_told(port: int | None = None) -> dict | None:
    """running(port) for a local command, or None once stderr says why (the command then exits 2)."""
    import sys

    try:
        return running(port)
    except NotRunning as exc:
        print(exc, file=sys.stderr)
        return None
