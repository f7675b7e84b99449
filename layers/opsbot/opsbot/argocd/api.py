"""Argo CD's REST API, as much of it as GitOps releases use (`apply: argocd`), with a bearer token:

- `GET /api/v1/applications/{name}`: `status.sync.status` (Synced/OutOfSync) and `.revision`,
  `status.health.status` (Healthy/Progressing/Degraded/…), `status.operationState` (`phase`
  Running/Succeeded/Failed/Error, `message`, the operation's `sync.revision`) and `status.summary.images`;
- `POST /api/v1/applications/{name}/sync` with the revision to sync to.

Argo CD's host is a stack setting (ARGOCD_URL), never config: its token goes there and nowhere else. Errors are
sorted as for every peer (peers.py): 4xx refused with Argo CD's own message, 5xx/429/timeouts unavailable.
"""

from __future__ import annotations

from urllib.parse import quote

from opsbot.jobs import deadline
from opsbot.peers import answer_lost, errors
from opsbot.secrets import get_parameter
from opsbot.settings import settings

ArgoCdNotConfigured, ArgoCdRefused, ArgoCdUnavailable = errors(
    "Argo CD", "ARGOCD_URL (stack parameter ArgoCdUrl)", __name__
)


class ArgoCdClient:
    def __init__(self, url: str, token: str, timeout: float | None = None):
        import requests  # only the release jobs that talk to Argo CD pay for it

        self.url = url.rstrip("/")
        self.timeout = timeout or settings().http_timeout_seconds
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        import requests

        deadline.check(f"Argo CD {method} {path}")
        try:
            response = self.session.request(method, self.url + path, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ArgoCdUnavailable(
                f"Argo CD did not answer: {type(exc).__name__}", in_doubt=answer_lost(exc)
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ArgoCdUnavailable(f"Argo CD answered HTTP {response.status_code}")
        try:
            found = response.json() if response.content else {}
        except ValueError:
            found = {}
        if response.status_code >= 400:
            message = (found.get("message") or found.get("error")) if isinstance(found, dict) else ""
            raise ArgoCdRefused(response.status_code, str(message or response.reason or "refused")[:300])
        return found if isinstance(found, dict) else {}

    def application(self, name: str) -> dict:
        return self._call("GET", f"/api/v1/applications/{quote(name, safe='')}")

    def sync(self, name: str, revision: str) -> dict:
        return self._call(
            "POST", f"/api/v1/applications/{quote(name, safe='')}/sync", {"revision": revision, "prune": False}
        )


def client(timeout: float | None = None) -> ArgoCdClient:
    url = settings().argocd_url
    if not url:
        raise ArgoCdNotConfigured("Argo CD is not set up: the stack's ArgoCdUrl parameter is empty")
    return ArgoCdClient(url, get_parameter(settings().argocd_token_param), timeout)


def facts(application: dict) -> dict:
    """What a release reads of an Application: sync, revision, health, the operation and the images it runs."""
    status = application.get("status") or {}
    operation = status.get("operationState") or {}
    return {
        "sync": (status.get("sync") or {}).get("status", ""),
        "revision": (status.get("sync") or {}).get("revision", ""),
        "health": (status.get("health") or {}).get("status", ""),
        "phase": operation.get("phase", ""),
        "message": operation.get("message", ""),
        "operation_revision": ((operation.get("operation") or {}).get("sync") or {}).get("revision", "")
        or (operation.get("syncResult") or {}).get("revision", ""),
        "images": list((status.get("summary") or {}).get("images") or []),
    }
