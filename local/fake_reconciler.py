"""What makes the local stack's clusters follow the deploy repo when opsbot does not patch them itself: the stand-in
for Argo CD's and Flux's controllers and for a team's own watcher. It reads a file of the fake GitLab's deploy repo
at a revision with PyYAML (its own reading, not opsbot's), takes the image it pins, and sets it on the fake
Kubernetes API's Deployment, which then rolls out.

- `apply(target, revision)`: one reconcile (Argo CD's sync, Flux's reconcile);
- `watch(targets, every)`: a thread that reconciles each target at its branch's head every few seconds (`apply:
  watch`: someone else reconciles, opsbot only waits for the image);
- `flux(kind, namespace, name, object)`: the fake Kubernetes API's hook when a Flux object's requestedAt changes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Target:
    repo: str
    branch: str
    path: str
    format: str  # kustomize | helm | manifest
    image: str
    namespace: str
    deployment: str
    key: str = ""
    container: str = ""


def image_in(target: Target, text: str) -> str:
    """The image reference the file pins, read as the file's format says; "" when it names none."""
    documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    if target.format == "kustomize":
        for entry in (documents[0] if documents else {}).get("images") or []:
            if target.image in (entry.get("name"), entry.get("newName")):
                name = entry.get("newName") or entry["name"]
                if entry.get("digest"):
                    return f"{name}@{entry['digest']}"
                return f"{name}:{entry['newTag']}" if entry.get("newTag") else ""
        return ""
    if target.format == "helm":
        node = documents[0] if documents else {}
        for part in target.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return f"{target.image}:{node}" if node not in (None, "") else ""
    for document in documents:
        containers = (((document.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        for container in containers:
            if not target.container or container.get("name") == target.container:
                return str(container.get("image") or "")
    return ""


class Reconciler:
    def __init__(self, gitlab, kubernetes, flux_targets: dict | None = None):
        self.gitlab, self.kubernetes = gitlab, kubernetes
        self.flux_targets = dict(flux_targets or {})  # (kind, namespace, name) -> Target
        self.stop = threading.Event()

    def head(self, target: Target) -> str:
        with self.gitlab.lock:
            return self.gitlab.repos[target.repo].branches.get(target.branch, "")

    def apply(self, target: Target, revision: str = "", by: str = "reconciler") -> str:
        """Make the Deployment run what the file says at `revision` (default: the branch's head); that revision."""
        revision = revision or self.head(target)
        with self.gitlab.lock:
            repo = self.gitlab.repos[target.repo]
            commit = self.gitlab._resolve(repo, revision)
            text = commit.files.get(target.path) if commit else None
        if text is None:
            raise LookupError(f"{target.path} is not at {revision[:8]}")
        image = image_in(target, text)
        if image:
            self.kubernetes.set_image(target.namespace, target.deployment, image, target.container, by=by)
        return commit.id

    def watch(self, targets: list[Target], every: float = 2.0) -> threading.Thread:
        def loop():
            while not self.stop.wait(every):
                for target in targets:
                    try:
                        self.apply(target, by="watcher")
                    except Exception as exc:  # noqa: BLE001 - a watcher keeps watching
                        print(f"[reconciler] {target.path}: {exc!r}", flush=True)

        thread = threading.Thread(target=loop, daemon=True, name="fake-watcher")
        thread.start()
        return thread

    def flux(self, kind: str, namespace: str, name: str, found: dict) -> None:
        """Flux's controllers, at a reconcile request: the source fetches the branch, the object applies it."""
        requested = found["metadata"]["annotations"].get("reconcile.fluxcd.io/requestedAt", "")
        status = found.setdefault("status", {})
        if kind == "GitRepository":
            target = next(
                (t for t in self.flux_targets.values() if t.repo.endswith(found["spec"].get("url", "~"))), None
            )
            revision = self.head(target) if target else ""
            status.update(
                artifact={"revision": f"{found['spec'].get('ref', {}).get('branch', 'main')}@sha1:{revision}"}
            )
        else:
            target = self.flux_targets.get((kind, namespace, name))
            if target is None:
                status["conditions"] = [
                    {"type": "Ready", "status": "False", "reason": "ArtifactFailed", "message": "no source"}
                ]
            else:
                revision = self.apply(target, by="flux")
                status["lastAppliedRevision"] = f"{target.branch}@sha1:{revision}"
                status["lastAttemptedRevision"] = status["lastAppliedRevision"]
                status["conditions"] = [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "ReconciliationSucceeded",
                        "message": f"Applied revision: {status['lastAppliedRevision']}",
                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                ]
        status["lastHandledReconcileAt"] = requested
