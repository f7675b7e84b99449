"""A fake Argo CD API server for the local stack and the tests, as Argo CD answers where opsbot cares:

- every `/api/v1/…` call needs `Authorization: Bearer <token>` (401 `{"error": "invalid session: …", "code": 16}`
  otherwise); an unknown Application is 404 with Argo CD's gRPC-style error body (`code` 5, `message`);
- `GET /api/v1/applications/{name}`: `status.sync` (`Synced` when the live Deployment runs what the branch's head
  says, else `OutOfSync`; its `revision`), `status.health` (from the Deployment's rollout: `Progressing`,
  `Healthy`, `Degraded`), `status.operationState` (the last sync: `phase`, `message`, `operation.sync.revision`,
  `syncResult.revision`) and `status.summary.images`;
- `POST /api/v1/applications/{name}/sync` with `revision`: the sync operation runs (the reconciler applies the file
  at that revision) and succeeds, unless `/_control/sync_outcome` scripted a failure for the next syncs; a
  sync while one runs is 400 "another operation is already in progress".
`/_control/…` (no auth): calls, reset, faults (loopback.FaultyFake), and the scripted outcome.
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
import time
from urllib.parse import unquote

from local import loopback
from local.fake_reconciler import Target


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _error(status: int, message: str, code: int) -> dict:
    return {"error": message, "code": code, "message": message}


class FakeArgoCd(loopback.FaultyFake):
    def __init__(self, token: str, applications: dict[str, dict], reconciler, echo: bool = False):
        self.token, self.reconciler, self.echo = token, reconciler, echo
        self.applications = {
            name: Target(
                repo=spec["repo"],
                branch=spec["branch"],
                path=spec["path"],
                format=spec["format"],
                image=spec["image"],
                namespace=spec["namespace"],
                deployment=spec["deployment"],
                key=spec.get("key", ""),
                container=spec.get("container", ""),
            )
            for name, spec in applications.items()
        }
        self.lock = threading.RLock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: list[dict] = []
            self.clear_faults()
            self.operations: dict[str, dict] = {}  # application -> its last operationState
            self.outcomes: list[str] = []  # scripted: how the next syncs end

    # --- what Argo CD shows ---------------------------------------------------------------------------------------
    def _health(self, target: Target) -> str:
        kube = self.reconciler.kubernetes
        with kube.lock:
            d = kube.deployments[(target.namespace, target.deployment)]
            status = kube.deployment_json(d)["status"]
            pods = kube.pods(target.namespace, {"app": target.deployment})
        if any(
            (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
            for p in pods
            for s in p["status"]["containerStatuses"]
        ):
            return "Degraded"
        if any(c.get("reason") == "ProgressDeadlineExceeded" for c in status["conditions"]):
            return "Degraded"
        done = status["updatedReplicas"] >= d["replicas"] and status["availableReplicas"] >= d["replicas"]
        return "Healthy" if done and status["replicas"] <= d["replicas"] else "Progressing"

    def application_json(self, name: str) -> dict:
        target = self.applications[name]
        kube = self.reconciler.kubernetes
        head = self.reconciler.head(target)
        with self.reconciler.gitlab.lock:
            commit = self.reconciler.gitlab.repos[target.repo].commits[head]
            text = commit.files.get(target.path, "")
        from local.fake_reconciler import image_in

        desired, live = image_in(target, text), kube.image_of(target.namespace, target.deployment, target.container)
        operation = copy.deepcopy(self.operations.get(name))
        synced_revision = (operation or {}).get("syncResult", {}).get("revision", "")
        return {
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": f"{target.repo}.git",
                    "path": target.path.rsplit("/", 1)[0],
                    "targetRevision": target.branch,
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": target.namespace},
            },
            "status": {
                "sync": {"status": "Synced" if desired == live else "OutOfSync", "revision": synced_revision or head},
                "health": {"status": self._health(target)},
                **({"operationState": operation} if operation else {}),
                "summary": {"images": [live] if live else []},
            },
        }

    def sync(self, name: str, revision: str) -> dict:
        target = self.applications[name]
        running = self.operations.get(name, {})
        if running.get("phase") == "Running":
            raise LookupError("another operation is already in progress")
        outcome = self.outcomes.pop(0) if self.outcomes else "Succeeded"
        revision = revision or self.reconciler.head(target)
        operation = {
            "operation": {"sync": {"revision": revision}, "initiatedBy": {"username": "opsbot"}},
            "phase": "Running",
            "message": "",
            "startedAt": _now(),
        }
        self.operations[name] = operation
        if outcome == "Succeeded":
            applied = self.reconciler.apply(target, revision, by="argocd")
            operation.update(phase="Succeeded", message="successfully synced (all tasks run)", finishedAt=_now())
            operation["syncResult"] = {"revision": applied}
        else:
            operation.update(
                phase=outcome,
                message="one or more objects failed to apply: admission webhook denied the request",
                finishedAt=_now(),
            )
            operation["syncResult"] = {"revision": revision}
        if self.echo:
            print(f"[argocd] sync {name} to {revision[:8]}: {operation['phase']}", flush=True)
        return self.application_json(name)

    # --- HTTP -------------------------------------------------------------------------------------------------------
    def handle(self, method: str, url, headers, body: bytes) -> tuple:
        if url.path.startswith("/_control/"):
            return self.control(method, url.path, json.loads(body or b"{}"))
        with self.lock:
            self.calls.append({"method": method, "path": url.path, "body": json.loads(body) if body else None})
            if (fault := self.injected_fault(method)) is not None:
                return fault, _error(fault, "upstream unavailable", 14)
            given = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, _error(401, "invalid session: token signature is invalid", 16)
            parts = url.path.strip("/").split("/")
            if parts[:3] != ["api", "v1", "applications"] or len(parts) < 4:
                return 404, _error(404, "Not Found", 5)
            name = unquote(parts[3])
            if name not in self.applications:
                return 404, _error(404, f'applications.argoproj.io "{name}" not found', 5)
            if method == "GET" and len(parts) == 4:
                return 200, self.application_json(name)
            if method == "POST" and parts[4:] == ["sync"]:
                try:
                    return 200, self.sync(name, str((json.loads(body or b"{}") or {}).get("revision") or ""))
                except LookupError as exc:
                    return 400, _error(400, str(exc), 9)
            return 405, _error(405, "Method Not Allowed", 12)

    def control(self, method: str, path: str, spec: dict) -> tuple:
        with self.lock:
            if common := self.common_control(method, path, spec):
                return common
            if method == "POST" and path == "/_control/sync_outcome":
                self.outcomes = [str(s) for s in spec.get("phases", [])]
                return 200, {"ok": True}
        return 404, {"error": f"no control {path}"}


def make_server(fake: FakeArgoCd, host: str, port: int):
    server = loopback.json_server(fake.handle, host, port)
    fake.url = f"http://{host}:{server.server_address[1]}"
    return server
