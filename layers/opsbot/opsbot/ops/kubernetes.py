"""Kubernetes through the official client, on the clusters the config names, in the namespaces it lists.

The client (about 40 MB, 0.25 s to import) is the worker's own package (functions/worker/requirements.txt) and is
imported only inside `_apis`, which only the worker's Kubernetes jobs reach. Credentials:

- EKS: endpoint and CA from eks:DescribeCluster; the token is what `aws eks get-token` makes, without awscli:
  `k8s-aws-v1.` + base64url (no padding) of a presigned STS GetCallerIdentity URL signed with the header
  `x-k8s-aws-id: <cluster>`, valid 60 s. The worker's role needs an EKS access entry (README, Deploy).
- any other cluster: its API server URL, its CA (PEM, in config) and a token from SSM (`/opsbot/<stage>/clusters/`).

Every call has a timeout and no retries of its own: a cluster that does not answer is a RetryLater for the queue.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from datetime import UTC, datetime

from opsbot.aws import client
from opsbot.config.ops import Cluster
from opsbot.ops.peers import EKS, KubernetesRefused, KubernetesUnavailable, aws_call
from opsbot.peers import check_pinned
from opsbot.secrets import resolve
from opsbot.settings import settings

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_SECONDS = 60  # as awscli's get-token
CLIENT_SECONDS = 50  # a client is remade before its token could expire
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets on the pod template
RESTARTED_BY = "opsbot.io/restarted-by"  # who asked, on the pod template too (so each new pod shows it)
SCALED_BY = "opsbot.io/scaled-by"
MERGE_PATCH = "application/merge-patch+json"
FAILING_REASONS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "InvalidImageName",
)
MAX_LOG_BYTES = 1_000_000

_clients: dict[str, tuple[float, object, object]] = {}
_sts_ready: set[int] = set()


def eks_token(cluster_name: str, region: str) -> str:
    """A bearer token for an EKS cluster: a presigned STS GetCallerIdentity URL naming the cluster."""
    sts = client("sts", region)
    if id(sts) not in _sts_ready:  # the handlers are added once per client

        def take_cluster(params, context, **_):
            if "x_k8s_aws_id" in params:
                context["x_k8s_aws_id"] = params.pop("x_k8s_aws_id")

        def sign_cluster(request, **_):
            if "x_k8s_aws_id" in request.context:
                request.headers["x-k8s-aws-id"] = request.context["x_k8s_aws_id"]

        sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", take_cluster)
        sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster)
        _sts_ready.add(id(sts))
    url = sts.generate_presigned_url(
        "get_caller_identity", Params={"x_k8s_aws_id": cluster_name}, ExpiresIn=TOKEN_SECONDS, HttpMethod="GET"
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _ca_file(pem: str) -> str:
    handle, path = tempfile.mkstemp(prefix="opsbot-ca-", suffix=".pem")
    with os.fdopen(handle, "w") as file:
        file.write(pem)
    return path


def _connection(cluster: Cluster) -> tuple[str, str, str]:
    """(endpoint, CA PEM, token) of a cluster."""
    if cluster.eks_name:
        eks = client("eks", cluster.eks_region)
        found = aws_call(EKS, eks.describe_cluster, name=cluster.eks_name)["cluster"]
        ca_data = (found.get("certificateAuthority") or {}).get("data") or ""
        try:
            ca = base64.b64decode(ca_data).decode() if ca_data else ""
        except ValueError:
            ca = ""
        # the endpoint is EKS's own answer for a cluster the stack names (IAM: OpsClusters); checked all the same
        check_pinned(found["endpoint"], "kubernetes", eks_endpoint=True)
        return found["endpoint"], ca, eks_token(cluster.eks_name, cluster.eks_region)
    check_pinned(cluster.api_server, "kubernetes")  # the token goes only to a host the stack lists
    return cluster.api_server, cluster.ca, resolve(cluster.token)


def _apis(cluster: Cluster):
    """(CoreV1Api, AppsV1Api) for the cluster, made at most every CLIENT_SECONDS."""
    now = time.monotonic()
    cached = _clients.get(cluster.name)
    if cached and now - cached[0] < CLIENT_SECONDS:
        return cached[1], cached[2]
    # Late: the Kubernetes client is only ever loaded by the worker's Kubernetes jobs (see the module's doc).
    from kubernetes import client as k8s

    endpoint, ca, token = _connection(cluster)
    configuration = k8s.Configuration()
    configuration.host = endpoint.rstrip("/")
    configuration.api_key = {"BearerToken": token}  # the client's own name for it since 36
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    configuration.retries = 0  # the queue retries, not a Lambda waiting
    if endpoint.startswith("https://"):
        configuration.verify_ssl = True
        if ca:
            configuration.ssl_ca_cert = _ca_file(ca)
    api = k8s.ApiClient(configuration)
    made = (now, k8s.CoreV1Api(api), k8s.AppsV1Api(api))
    _clients[cluster.name] = made
    return made[1], made[2]


def first_client(cluster: Cluster):
    """The cluster's API client, made now (the bench measures this)."""
    return _apis(cluster)


def forget_clients() -> None:
    _clients.clear()


def _timeout() -> tuple[float, float]:
    return (2.0, settings().http_timeout_seconds)


def _call(method, *args, **kwargs):
    """One API call, with the cluster's failures sorted: refused (4xx, its own message) or unavailable."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return method(*args, _request_timeout=_timeout(), **kwargs)
    except ApiException as exc:
        status = int(exc.status or 0)
        message = _status_message(exc.body) or exc.reason or "error"
        if status == 0 or status >= 500 or status == 429:
            raise KubernetesUnavailable(f"API server answered {status or 'nothing'}: {message}"[:200]) from None
        raise KubernetesRefused(status, message[:300]) from None
    except (HTTPError, OSError) as exc:
        raise KubernetesUnavailable(f"API server unreachable ({type(exc).__name__})") from None


def _status_message(body) -> str:
    import json

    try:
        return str(json.loads(body).get("message") or "")
    except (TypeError, ValueError, AttributeError):
        return ""


def _selector(labels: dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _pod_facts(pod) -> dict:
    statuses = pod.status.container_statuses or []
    waiting = [s.state.waiting for s in statuses if s.state and s.state.waiting]
    return {
        "name": pod.metadata.name,
        "phase": pod.status.phase or "?",
        "ready": sum(1 for s in statuses if s.ready),
        "containers": len(pod.spec.containers or []),
        "restarts": sum(s.restart_count or 0 for s in statuses),
        "reason": waiting[0].reason if waiting and waiting[0].reason else "",
        "message": waiting[0].message if waiting and waiting[0].message else "",
        "started": pod.status.start_time.isoformat() if pod.status.start_time else "",
    }


def _deployment_facts(deployment) -> dict:
    status = deployment.status
    return {
        "name": deployment.metadata.name,
        "replicas": deployment.spec.replicas if deployment.spec.replicas is not None else 1,
        "ready": status.ready_replicas or 0,
        "updated": status.updated_replicas or 0,
        "available": status.available_replicas or 0,
        "paused": bool(deployment.spec.paused),
        "generation": deployment.metadata.generation or 0,
        "selector": _selector(deployment.spec.selector.match_labels),
    }


def workloads(cluster: Cluster, namespace: str, app: str = "") -> dict:
    """The namespace's Deployments and pods (or those labelled app=<app>), with readiness and restarts."""
    core, apps = _apis(cluster)
    selector = f"app={app}" if app else ""
    deployments = _call(apps.list_namespaced_deployment, namespace, label_selector=selector)
    pods = _call(core.list_namespaced_pod, namespace, label_selector=selector)
    return {
        "deployments": [_deployment_facts(d) for d in deployments.items],
        "pods": [_pod_facts(p) for p in pods.items],
    }


def deployment(cluster: Cluster, namespace: str, name: str) -> dict:
    _core, apps = _apis(cluster)
    return _deployment_facts(_call(apps.read_namespaced_deployment, name, namespace))


def pods_of(cluster: Cluster, namespace: str, selector: str) -> list[dict]:
    core, _apps = _apis(cluster)
    return [_pod_facts(p) for p in _call(core.list_namespaced_pod, namespace, label_selector=selector).items]


def pod_logs(cluster: Cluster, namespace: str, target: str, lines: int) -> tuple[str, str]:
    """(pod name, its last `lines` log lines) of a pod, or of the newest pod of `deployment/<name>`."""
    core, _apps = _apis(cluster)
    pod = target
    if target.startswith(("deployment/", "deploy/")):
        found = deployment(cluster, namespace, target.split("/", 1)[1])
        pods = sorted(pods_of(cluster, namespace, found["selector"]), key=lambda p: p["started"], reverse=True)
        if not pods:
            raise KubernetesRefused(404, f"deployment {found['name']} has no pods")
        pod = pods[0]["name"]
    # The raw response: the client's own decoding of a text body gives the repr of its bytes.
    response = _call(
        core.read_namespaced_pod_log,
        pod,
        namespace,
        tail_lines=lines,
        limit_bytes=MAX_LOG_BYTES,
        _preload_content=False,
    )
    return pod, response.data.decode("utf-8", "replace")


def rfc3339_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def rollout_restart(cluster: Cluster, namespace: str, name: str, by: str) -> dict:
    """`kubectl rollout restart`: a merge patch of the pod template's restartedAt annotation, with who asked beside
    it. A paused Deployment is refused, as kubectl refuses it."""
    _core, apps = _apis(cluster)
    found = _call(apps.read_namespaced_deployment, name, namespace)
    current = _deployment_facts(found)
    annotations = (found.spec.template.metadata.annotations if found.spec.template.metadata else None) or {}
    if annotations.get(RESTARTED_BY) == by[:63] and annotations.get(RESTARTED_AT):
        # An attempt whose answer was lost (or that stopped before its record) already restarted it: `by` names
        # the request, so the retry finds that restart instead of starting a second one.
        at = annotations[RESTARTED_AT]
        return {"restarted_at": at, "generation": current["generation"], "replicas": current["replicas"]}
    if current["paused"]:
        raise KubernetesRefused(409, f"deployment {name} is paused; resume it before restarting")
    at = rfc3339_now()
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at, RESTARTED_BY: by[:63]}}}}}
    patched = _call(apps.patch_namespaced_deployment, name, namespace, body, _content_type=MERGE_PATCH)
    return {"restarted_at": at, "generation": patched.metadata.generation or 0, "replicas": current["replicas"]}


def scale(cluster: Cluster, namespace: str, name: str, replicas: int, by: str) -> dict:
    """Set the replicas through the scale subresource, and note who asked on the Deployment."""
    _core, apps = _apis(cluster)
    found = _call(apps.read_namespaced_deployment, name, namespace)
    before = _deployment_facts(found)
    noted = ((found.metadata.annotations or {}) if found.metadata else {}).get(SCALED_BY, "")
    if noted.startswith(f"{by} (") and noted.endswith(f"→{replicas})"):
        # This request's own note: an earlier attempt scaled it and lost the answer; report what it did.
        earlier = noted[len(by) + 2 : -len(f"→{replicas})")]
        if earlier.isdigit():
            return {"from": int(earlier), "to": replicas, "generation": before["generation"]}
    _call(
        apps.patch_namespaced_deployment_scale,
        name,
        namespace,
        {"spec": {"replicas": replicas}},
        _content_type=MERGE_PATCH,
    )
    note = {"metadata": {"annotations": {SCALED_BY: f"{by} ({before['replicas']}→{replicas})"[:63]}}}
    patched = _call(apps.patch_namespaced_deployment, name, namespace, note, _content_type=MERGE_PATCH)
    return {"from": before["replicas"], "to": replicas, "generation": patched.metadata.generation or 0}


def rollout_state(cluster: Cluster, namespace: str, name: str) -> tuple[str, str]:
    """("done" | "progressing" | "stuck" | "failed", what it says), as `kubectl rollout status` reads it."""
    _core, apps = _apis(cluster)
    found = _call(apps.read_namespaced_deployment, name, namespace)
    status, wanted = found.status, found.spec.replicas if found.spec.replicas is not None else 1
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return "stuck", condition.message or "ProgressDeadlineExceeded"
    updated, available, total = status.updated_replicas or 0, status.available_replicas or 0, status.replicas or 0
    facts = f"{updated}/{wanted} updated, {available} available"
    if (status.observed_generation or 0) >= (found.metadata.generation or 0) and (
        updated >= wanted and total <= updated and available >= updated
    ):
        return "done", facts
    for pod in pods_of(cluster, namespace, _selector(found.spec.selector.match_labels)):
        if pod["reason"] in FAILING_REASONS:
            return "failed", f"pod {pod['name']}: {pod['reason']} {pod['message']}".strip()
    return "progressing", facts


# --- GitOps releases (opsbot.promotion): a Deployment's image, and Flux's objects ----------------------------------

RELEASED_BY = "opsbot.io/release"  # on the pod template: the release whose image this is (a retry finds its patch)
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
FLUX_APIS = {  # kind -> (group, version, plural)
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
}
FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def live_image(cluster: Cluster, namespace: str, name: str, container: str = "") -> dict:
    """The Deployment's container (by name, else its first) as it is: its name and image, the release that set it,
    and the rollout's facts."""
    _core, apps = _apis(cluster)
    found = _call(apps.read_namespaced_deployment, name, namespace)
    containers = found.spec.template.spec.containers or []
    chosen = next((c for c in containers if not container or c.name == container), None)
    if chosen is None:
        raise KubernetesRefused(404, f"deployment {name} has no container {container or '(none)'}")
    annotations = (found.spec.template.metadata.annotations if found.spec.template.metadata else None) or {}
    return {
        "container": chosen.name,
        "image": chosen.image or "",
        "release": annotations.get(RELEASED_BY, ""),
        "generation": found.metadata.generation or 0,
    }


def set_image(cluster: Cluster, namespace: str, name: str, container: str, image: str, release: str) -> dict:
    """A strategic merge patch of one container's image (merged into the containers list by name, as `kubectl set
    image` does), with the release beside it on the pod template. Looked up first: a Deployment that already runs
    this image for this release was patched by an earlier attempt, and is not patched again."""
    now = live_image(cluster, namespace, name, container)
    if now["image"] == image and now["release"] == release:
        return {**now, "patched": False}
    body = {
        "spec": {
            "template": {
                "metadata": {"annotations": {RELEASED_BY: release}},
                "spec": {"containers": [{"name": now["container"], "image": image}]},
            }
        }
    }
    _core, apps = _apis(cluster)
    patched = _call(apps.patch_namespaced_deployment, name, namespace, body, _content_type=STRATEGIC_PATCH)
    return {**now, "image": image, "release": release, "generation": patched.metadata.generation or 0, "patched": True}


def _custom(cluster: Cluster):
    from kubernetes import client as k8s  # late, as _apis

    _core, apps = _apis(cluster)
    return k8s.CustomObjectsApi(apps.api_client)


def flux_object(cluster: Cluster, kind: str, namespace: str, name: str) -> dict:
    group, version, plural = FLUX_APIS[kind]
    return _call(_custom(cluster).get_namespaced_custom_object, group, version, namespace, plural, name)


def flux_reconcile(cluster: Cluster, kind: str, namespace: str, name: str, value: str) -> bool:
    """Ask Flux to reconcile now (`flux reconcile`: the requestedAt annotation); False when this request (`value`)
    was made already."""
    found = flux_object(cluster, kind, namespace, name)
    if ((found.get("metadata") or {}).get("annotations") or {}).get(FLUX_REQUESTED_AT) == value:
        return False
    group, version, plural = FLUX_APIS[kind]
    body = {"metadata": {"annotations": {FLUX_REQUESTED_AT: value}}}
    _call(
        _custom(cluster).patch_namespaced_custom_object,
        group,
        version,
        namespace,
        plural,
        name,
        body,
        _content_type=MERGE_PATCH,
    )
    return True
