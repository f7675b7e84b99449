"""Drone's REST API, as much of it as opsbot uses: builds, promote, rollback, restart, logs.

Errors are sorted the way the worker needs them: Drone saying no (4xx) is a DroneRefused with Drone's own
message, which retrying cannot change; Drone being down or slow (5xx, 429, timeouts) is a DroneUnavailable,
a RetryLater, so the queue tries again. The token is a bearer secret: never log it or the headers.
"""

from __future__ import annotations

from urllib.parse import quote

from opsbot import secrets
from opsbot.config.model import Config
from opsbot.jobs import deadline
from opsbot.peers import answer_lost, check_pinned, errors
from opsbot.settings import settings

# DroneNotConfigured: the config has no `drone:` section, so commands that need Drone cannot run.
DroneNotConfigured, DroneRefused, DroneUnavailable = errors("Drone", "drone: {server, token}", __name__)


class DroneClient:
    def __init__(self, server: str, token: str, timeout: float | None = None):
        import requests  # only commands that talk to Drone pay for it

        check_pinned(server, "drone")  # the token goes only to a host the stack lists (DRONE_HOSTS)
        self.server = server.rstrip("/")
        self.timeout = timeout or settings().http_timeout_seconds
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def ui_link(self, slug: str, number: int) -> str:
        return f"{self.server}/{slug}/{number}"

    def _call(self, method: str, slug: str, path: str, params: dict | None = None):
        import requests

        url = f"{self.server}/api/repos/{quote(slug, safe='/')}{path}"
        deadline.check(f"Drone {method} {path}")  # a job out of its time budget stops before the call, not in it
        try:
            response = self.session.request(method, url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DroneUnavailable(f"Drone did not answer: {type(exc).__name__}", in_doubt=answer_lost(exc)) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise DroneUnavailable(f"Drone answered HTTP {response.status_code}")
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            message = body.get("message") if isinstance(body, dict) else ""
            raise DroneRefused(response.status_code, str(message or response.reason or "request refused")[:300])
        return body

    def builds(self, slug: str, branch: str = "", per_page: int = 25) -> list[dict]:
        params = {"page": 1, "per_page": max(1, min(per_page, 100))}
        if branch:
            params["branch"] = branch
        return list(self._call("GET", slug, "/builds", params) or [])

    def latest(self, slug: str, branch: str) -> dict:
        return self._call("GET", slug, "/builds/latest", {"branch": branch})

    def build(self, slug: str, number: int) -> dict:
        return self._call("GET", slug, f"/builds/{int(number)}")

    # Starting builds is not idempotent: go through drone/requests.start_once, which carries a request id.
    def restart(self, slug: str, number: int, params: dict | None = None) -> dict:
        return self._call("POST", slug, f"/builds/{int(number)}", params or None)

    def promote(self, slug: str, number: int, target: str, params: dict | None = None) -> dict:
        return self._call("POST", slug, f"/builds/{int(number)}/promote", {**(params or {}), "target": target})

    def rollback(self, slug: str, number: int, target: str, params: dict | None = None) -> dict:
        return self._call("POST", slug, f"/builds/{int(number)}/rollback", {**(params or {}), "target": target})

    def logs(self, slug: str, number: int, stage: int, step: int) -> list[dict]:
        return list(self._call("GET", slug, f"/builds/{int(number)}/logs/{int(stage)}/{int(step)}") or [])


def client_for(config: Config, timeout: float | None = None) -> DroneClient:
    if config.drone is None:
        raise DroneNotConfigured("Drone is not configured: add `drone: {server, token}` to opsbot.yaml")
    return DroneClient(config.drone.server, secrets.resolve(config.drone.token), timeout)
