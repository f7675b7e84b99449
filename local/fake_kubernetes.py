"""A fake Kubernetes API server for the local stack and the tests, which the official `kubernetes` client talks to
over plain HTTP on loopback: Deployments (read, list, merge patch, and a strategic merge patch of their containers,
merged by name as the API server merges them), the scale subresource, pods (list by label selector) and pod logs
(`tailLines`, `limitBytes`), Flux's Kustomizations, HelmReleases and GitRepositories (read, merge patch), with
API-server errors (`Status` bodies) and bearer tokens.

Rollouts happen in time: a change of a Deployment's pod template (a `kubectl rollout restart`, a new image) or of its
replicas bumps its generation, and its status then moves as `ROLLOUT` says: `complete` (done after `seconds`), `stuck`
(`Progressing` turns False with ProgressDeadlineExceeded after `seconds`) or `crash` (its new pods CrashLoopBackOff).
A Flux object whose `reconcile.fluxcd.io/requestedAt` changes is handed to `on_reconcile` (the local stack's stand-in
for Flux's controllers), which applies the deploy repo and writes its status.

Tokens: a static token, or an EKS token (`k8s-aws-v1.` + base64url of a presigned STS GetCallerIdentity URL that
signs the `x-k8s-aws-id` header with this cluster's name, valid 60 s), which is checked for that shape.
`/_control/…` (no auth): calls, reset, faults (`down`, or statuses in turn), rollout behaviour, logs.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

from local import loopback

DEPLOYMENT_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments(?:/([^/]+))?(/scale)?$")
CUSTOM_PATH = re.compile(r"^/apis/([a-z.]+)/(v[0-9a-z]+)/namespaces/([^/]+)/([a-z]+)/([^/]+)$")
FLUX_PLURALS = {"kustomizations": "Kustomization", "helmreleases": "HelmRelease", "gitrepositories": "GitRepository"}
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PODS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?(/log)?$")


def _now() -> float:
    return time.time()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_seed() -> dict:
    """Namespace `shop`: shop-api rolls out in a few seconds, shop-search gets stuck, shop-cart crashes."""
    return {
        "shop": {
            "shop-api": {"replicas": 3, "rollout": "complete", "seconds": 3},
            "shop-search": {"replicas": 2, "rollout": "stuck", "seconds": 3},
            "shop-cart": {"replicas": 2, "rollout": "crash", "seconds": 2},
        }
    }


def _log_lines(name: str) -> list[str]:
    lines = []
    for i in range(1, 401):
        level = "ERROR" if i % 50 == 0 else "WARN" if i % 20 == 0 else "INFO"
        lines.append(f"2026-12-01T08:{i // 60:02d}:{i % 60:02d}Z {level} {name} handled request {i} in {i % 17} ms")
    return lines


class FakeKubernetes(loopback.FaultyFake):
    def __init__(self, token: str = "", eks_cluster: str = "", echo: bool = False, seed: dict | None = None):
        self.token, self.eks_cluster, self.echo = token, eks_cluster, echo
        self.seed = seed or default_seed()  # namespace -> deployment -> its spec (replicas, rollout, seconds, image)
        self.on_reconcile = None  # (kind, namespace, name, object) -> None: Flux's stand-in, set by the local stack
        self.lock = threading.RLock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.calls: list[dict] = []
        self.clear_faults()
        self.deployments: dict[tuple[str, str], dict] = {}
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.custom: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> a Flux object
        for namespace, deployments in self.seed.items():
            for name, spec in deployments.items():
                self.add(namespace, name, **spec)

    def add(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        rollout: str = "complete",
        seconds: float = 3,
        image: str = "",
    ) -> None:
        self.deployments[(namespace, name)] = {
            "containers": [{"name": "app", "image": image or f"registry.example.com/shop/{name}:1"}],
            "name": name,
            "namespace": namespace,
            "replicas": replicas,
            "generation": 1,
            "observed": 1,
            "template": {"metadata": {"labels": {"app": name}, "annotations": {}}},
            "annotations": {},
            "paused": False,
            "rollout": rollout,
            "seconds": seconds,
            "changed_at": _now() - 3600,
            "revision": 1,
            "created": _now() - 86400,
        }

    # --- what the API shows -----------------------------------------------------------------------------------
    def _progress(self, d: dict) -> float:
        """0..1: how far the latest change has got, by the clock."""
        return min(1.0, (_now() - d["changed_at"]) / max(0.1, d["seconds"]))

    def _behaviour(self, d: dict) -> str:
        return d["rollout"] if d["revision"] > 1 else "complete"  # the seeded revision is healthy

    def _status(self, d: dict) -> dict:
        replicas, progress, behaviour = d["replicas"], self._progress(d), self._behaviour(d)
        available = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        if behaviour == "complete":
            done = progress >= 1.0
            updated = replicas if done else int(replicas * progress)
            total = replicas if done else replicas + 1  # a surge pod while it rolls
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{d["name"]}-{d["revision"]}" '
                + ("has successfully progressed." if done else "is progressing."),
            }
            return {
                "observedGeneration": d["generation"],
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": min(total, replicas),
                "availableReplicas": min(total, replicas),
                "conditions": [available, progressing],
            }
        # stuck or crash: the new ReplicaSet's one pod never becomes ready; the old ones keep serving
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
        if behaviour == "stuck" and progress >= 1.0:
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{d["name"]}-{d["revision"]}" has timed out progressing.',
            }
        return {
            "observedGeneration": d["generation"],
            "replicas": replicas + 1,
            "updatedReplicas": 1,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "unavailableReplicas": 1,
            "conditions": [available, progressing],
        }

    def deployment_json(self, d: dict) -> dict:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": d["name"],
                "namespace": d["namespace"],
                "generation": d["generation"],
                "annotations": dict(d["annotations"]),
                "labels": {"app": d["name"]},
                "creationTimestamp": _iso(d["created"]),
                "uid": f"uid-{d['namespace']}-{d['name']}",
                "resourceVersion": str(100 + d["generation"]),
            },
            "spec": {
                "replicas": d["replicas"],
                "paused": d["paused"],
                "selector": {"matchLabels": {"app": d["name"]}},
                "template": copy.deepcopy(d["template"]) | {"spec": {"containers": copy.deepcopy(d["containers"])}},
            },
            "status": self._status(d),
        }

    def image_of(self, namespace: str, name: str, container: str = "") -> str:
        d = self.deployments[(namespace, name)]
        return next((c["image"] for c in d["containers"] if not container or c["name"] == container), "")

    def set_image(self, namespace: str, name: str, image: str, container: str = "", by: str = "") -> bool:
        """What a controller applying the deploy repo does (Argo CD, Flux, someone else's): a new image rolls out."""
        with self.lock:
            d = self.deployments[(namespace, name)]
            chosen = next((c for c in d["containers"] if not container or c["name"] == container), None)
            if chosen is None or chosen["image"] == image:
                return False
            chosen["image"] = image
            self._rolled(d)
            if self.echo:
                print(f"[kubernetes] {namespace}/{name} image -> {image}{f' ({by})' if by else ''}", flush=True)
            return True

    def _rolled(self, d: dict) -> None:
        d["generation"] += 1
        d["revision"] += 1
        d["changed_at"] = _now()

    def pods(self, namespace: str, selector: dict) -> list[dict]:
        found = []
        for (ns, _name), d in sorted(self.deployments.items()):
            if ns != namespace or any({"app": d["name"]}.get(k) != v for k, v in selector.items()):
                continue
            for i in range(d["replicas"]):
                found.append(
                    self._pod(d, f"{d['name']}-{d['revision']}x{i}", d["changed_at"] + i, ready=True, restarts=i % 2)
                )
            if self._behaviour(d) == "crash" and self._progress(d) >= 1.0:
                found.append(self._pod(d, f"{d['name']}-{d['revision']}new", d["changed_at"], ready=False, restarts=4))
        return found

    @staticmethod
    def _pod(d: dict, name: str, started: float, ready: bool, restarts: int) -> dict:
        image = d["containers"][0]["image"]
        state = (
            {"running": {"startedAt": _iso(started)}}
            if ready
            else {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}
        )
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": d["namespace"], "labels": {"app": d["name"]}},
            "spec": {"containers": [{"name": c["name"], "image": c["image"]} for c in d["containers"]]},
            "status": {
                "phase": "Running",
                "startTime": _iso(started),
                "containerStatuses": [
                    {
                        "name": "app",
                        "ready": ready,
                        "restartCount": restarts,
                        "image": image,
                        "imageID": "",
                        "state": state,
                    }
                ],
            },
        }

    # --- auth ----------------------------------------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        value = headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            return False
        token = value[len("Bearer ") :]
        if self.token and token == self.token:
            return True
        return bool(self.eks_cluster) and eks_token_ok(token, self.eks_cluster)

    # --- requests -----------------------------------------------------------------------------------------------
    def handle(self, method: str, url, headers, body: bytes) -> tuple:
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/_control/"):
            spec = json.loads(body or b"{}")
            return self.control(method, url.path, spec)
        with self.lock:
            self.calls.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": query,
                    "content_type": headers.get("Content-Type", ""),
                    "body": json.loads(body) if body else None,
                }
            )
            if (fault := self.injected_fault(method)) is not None:
                return fault, status_body(fault, "the API server is unavailable")
            if not self.authorized(headers):
                return 401, status_body(401, "Unauthorized")
            return self.route(method, url.path, query, headers, body)

    def route(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple:
        if found := DEPLOYMENT_PATH.match(path):
            namespace, name, scale = found.groups()
            if name is None and method == "GET":
                selector = _selector(query.get("labelSelector", ""))
                items = [
                    self.deployment_json(d)
                    for (ns, _), d in sorted(self.deployments.items())
                    if ns == namespace and all({"app": d["name"]}.get(k) == v for k, v in selector.items())
                ]
                return 200, {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items}
            d = self.deployments.get((namespace, name or ""))
            if d is None:
                return 404, status_body(404, f'deployments.apps "{name}" not found', "NotFound")
            if method == "PATCH":
                kind = headers.get("Content-Type", "").split(";")[0]
                if kind not in ("application/merge-patch+json", STRATEGIC_PATCH) or (scale and kind == STRATEGIC_PATCH):
                    return 415, status_body(415, "this fake takes merge patches and strategic merge patches")
                return self.patch(d, json.loads(body or b"{}"), bool(scale))
            if method == "GET":
                return 200, self.scale_json(d) if scale else self.deployment_json(d)
            return 405, status_body(405, "method not allowed")
        if found := PODS_PATH.match(path):
            namespace, name, log = found.groups()
            pods = self.pods(namespace, _selector(query.get("labelSelector", "")))
            if name is None:
                return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}
            if not any(p["metadata"]["name"] == name for p in pods):
                return 404, status_body(404, f'pods "{name}" not found', "NotFound")
            if log and method == "GET":
                lines = self.logs.get((namespace, name)) or _log_lines(name)
                if tail := query.get("tailLines"):
                    lines = lines[-int(tail) :]
                text = "\n".join(lines) + "\n"
                if limit := query.get("limitBytes"):
                    text = text.encode()[: int(limit)].decode("utf-8", "ignore")
                return 200, text
            return 200, next(p for p in pods if p["metadata"]["name"] == name)
        if found := CUSTOM_PATH.match(path):
            return self.custom_object(method, found.groups(), headers, body)
        return 404, status_body(404, "the server could not find the requested resource", "NotFound")

    def custom_object(self, method: str, parts: tuple, headers, body: bytes) -> tuple:
        """Flux's objects: read, and merge-patched annotations (a reconcile request goes to `on_reconcile`)."""
        _group, _version, namespace, plural, name = parts
        found = self.custom.get((plural, namespace, name))
        if plural not in FLUX_PLURALS or found is None:
            return 404, status_body(404, f'{plural} "{name}" not found', "NotFound")
        if method == "GET":
            return 200, copy.deepcopy(found)
        if method != "PATCH":
            return 405, status_body(405, "method not allowed")
        if headers.get("Content-Type", "").split(";")[0] != "application/merge-patch+json":
            return 415, status_body(415, "custom resources take merge patches")
        annotations = ((json.loads(body or b"{}").get("metadata") or {}).get("annotations")) or {}
        before = (found["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
        found["metadata"].setdefault("annotations", {}).update(annotations)
        requested = found["metadata"]["annotations"].get("reconcile.fluxcd.io/requestedAt")
        if requested and requested != before and self.on_reconcile is not None:
            self.on_reconcile(FLUX_PLURALS[plural], namespace, name, found)
        return 200, copy.deepcopy(found)

    def add_flux(self, kind: str, namespace: str, name: str, spec: dict) -> None:
        """A Flux object, as `flux create` would make it: Ready, at the revision it last applied."""
        plural = next(p for p, k in FLUX_PLURALS.items() if k == kind)
        group = {"Kustomization": "kustomize", "HelmRelease": "helm", "GitRepository": "source"}[kind]
        self.custom[(plural, namespace, name)] = {
            "apiVersion": f"{group}.toolkit.fluxcd.io/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "annotations": {}, "generation": 1},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]},
        }

    def scale_json(self, d: dict) -> dict:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": d["name"], "namespace": d["namespace"]},
            "spec": {"replicas": d["replicas"]},
            "status": {"replicas": d["replicas"], "selector": f"app={d['name']}"},
        }

    def patch(self, d: dict, patch: dict, scale: bool) -> tuple:
        if scale:
            replicas = (patch.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                return 422, status_body(422, "spec.replicas: Invalid value", "Invalid")
            if replicas != d["replicas"]:
                d["replicas"], d["generation"], d["changed_at"] = replicas, d["generation"] + 1, _now()
            return 200, self.scale_json(d)
        annotations = (patch.get("metadata") or {}).get("annotations") or {}
        d["annotations"].update({k: v for k, v in annotations.items() if v is not None})
        template = (patch.get("spec") or {}).get("template") or {}
        new = (template.get("metadata") or {}).get("annotations") or {}
        changed = bool(new) and any(d["template"]["metadata"]["annotations"].get(k) != v for k, v in new.items())
        d["template"]["metadata"]["annotations"].update(new)
        for container in (template.get("spec") or {}).get("containers") or []:  # merged by name (patchMergeKey)
            found = next((c for c in d["containers"] if c["name"] == container.get("name")), None)
            if found is None:
                return 422, status_body(422, "spec.template.spec.containers: name must match a container", "Invalid")
            if container.get("image") and container["image"] != found["image"]:
                found["image"], changed = container["image"], True
        if changed:
            self._rolled(d)
        return 200, self.deployment_json(d)

    def control(self, method: str, path: str, spec: dict) -> tuple:
        with self.lock:
            if common := self.common_control(method, path, spec):
                return common
            if method == "POST" and path == "/_control/deployment":
                key = (spec.get("namespace", "shop"), spec["name"])
                if key not in self.deployments:
                    self.add(*key)
                d = self.deployments[key]
                for field in ("rollout", "seconds", "replicas", "paused"):
                    if field in spec:
                        d[field] = spec[field]
                if "image" in spec:
                    self.set_image(key[0], key[1], spec["image"], by="control")
                return 200, self.deployment_json(d)
            if method == "GET" and path == "/_control/deployments":
                return 200, {
                    "deployments": {
                        f"{ns}/{name}": {
                            "image": d["containers"][0]["image"],
                            "revision": d["revision"],
                            "changed_at": d["changed_at"],  # when its latest rollout started
                        }
                        for (ns, name), d in sorted(self.deployments.items())
                    }
                }
        return 404, {"error": f"no control {path}"}


def _selector(text: str) -> dict:
    found = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        found[key.strip()] = value.strip()
    return found


def status_body(code: int, message: str, reason: str = "") -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def eks_token_ok(token: str, cluster: str) -> bool:
    """The shape `aws eks get-token` gives: a presigned GetCallerIdentity URL that signs x-k8s-aws-id."""
    prefix = "k8s-aws-v1."
    if not token.startswith(prefix):
        return False
    encoded = token[len(prefix) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    query = {k.lower(): v[-1] for k, v in parse_qs(urlparse(url).query).items()}
    signed = query.get("x-amz-signedheaders", "").split(";")
    # The header's value (the cluster) is inside the signature, which only STS could check; the shape is checked.
    return (
        query.get("action") == "GetCallerIdentity"
        and query.get("x-amz-expires") == "60"
        and "x-k8s-aws-id" in signed
        and bool(query.get("x-amz-signature"))
        and bool(cluster)
    )


def make_server(fake: FakeKubernetes, host: str, port: int):
    server = loopback.json_server(fake.handle, host, port)
    fake.url = f"http://{host}:{server.server_address[1]}"
    return server
