"""The local stack's GitOps world, consistent from the start: the deploy repo (platform/deploy) that the example's
GitOps environments keep their desired state in, the clusters running exactly that (desired = live), Argo CD's
Application for shop-recommend, and the example projects' repositories with the commits of the fake Drone's builds
(so a release card can list the commits between two releases).

    platform/deploy
      shop-api/base/{kustomization,deployment}.yaml
      shop-api/overlays/{staging,production}/kustomization.yaml   kustomize, images[].newTag   (apply: opsbot)
      shop-recommend/staging/values.yaml                           Helm values, image.tag       (apply: argocd)
      shop-web/staging/versions.yaml                               a versions file              (apply: runbook)
      shop-search/staging/deployment.yaml                          a plain manifest             (apply: watch)
"""

from __future__ import annotations

from local.fake_drone import default_seed
from local.fake_kubernetes import default_seed as kubernetes_seed

DEPLOY_REPO = "platform/deploy"
DEPLOY_TOKEN = "local-deploy-token"  # the example's gitlab.deploy_token: a project access token of this repo only
REGISTRY = "registry.example.com/shop"


def _commit(slug: str, number: int) -> str:
    return next(b["after"] for b in default_seed()[slug] if b["number"] == number)


def running() -> dict[str, str]:
    """What each GitOps environment runs at the start: the tag of a build the fake Drone has (its commit's start)."""
    return {
        "shop-api/staging": _commit("shop/shop-api", 123)[:8],
        "shop-api/production": _commit("shop/shop-api", 120)[:8],
        "shop-recommend/staging": _commit("shop/shop-recommend", 6)[:8],
        "shop-web/staging": _commit("shop/shop-web", 41)[:8],
        "shop-search/staging": _commit("shop/shop-search", 3)[:8],
    }


def _overlay(env: str, namespace: str, tag: str) -> str:
    return f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# shop-api in {env}: the base, in its namespace, with the image opsbot releases
resources:
  - ../../base
namespace: {namespace}
images:
  - name: {REGISTRY}/shop-api  # released by opsbot: do not edit by hand
    newTag: "{tag}"
"""


def deploy_repo_files() -> dict[str, str]:
    tags = running()
    return {
        "README.md": "# deploy\n\nWhat runs where: each environment's desired state. opsbot commits releases here.\n",
        "shop-api/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "shop-api/base/deployment.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
spec:
  replicas: 3
  selector:
    matchLabels: {{app: shop-api}}
  template:
    metadata:
      labels: {{app: shop-api}}
    spec:
      containers:
        - name: app
          image: {REGISTRY}/shop-api
          ports:
            - containerPort: 8080
""",
        "shop-api/overlays/staging/kustomization.yaml": _overlay("staging", "shop-staging", tags["shop-api/staging"]),
        "shop-api/overlays/production/kustomization.yaml": _overlay("production", "shop", tags["shop-api/production"]),
        "shop-recommend/staging/values.yaml": f"""# shop-recommend's Helm values in staging (charts/python-service)
replicaCount: 2
image:
  repository: {REGISTRY}/shop-recommend
  tag: {tags["shop-recommend/staging"]}  # opsbot releases set this
  pullPolicy: IfNotPresent
service:
  port: 8000
""",
        "shop-web/staging/versions.yaml": f"""# What the shop-web VMs of staging run; opsbot's runbook installs it.
shop-web:
  version: "{tags["shop-web/staging"]}"
nginx:
  version: "1.27"
""",
        "shop-search/staging/deployment.yaml": f"""# shop-search in staging: the team's own controller applies this file
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-search
  namespace: shop-staging
spec:
  replicas: 2
  selector:
    matchLabels: {{app: shop-search}}
  template:
    metadata:
      labels: {{app: shop-search}}
    spec:
      containers:
        - name: app
          image: {REGISTRY}/shop-search:{tags["shop-search/staging"]}
""",
    }


def cluster_seed() -> dict:
    """The fake Kubernetes API's Deployments: production's namespace as the ops commands know it (shop-api running its
    production tag), and staging's, running what the deploy repo says."""
    tags = running()
    seed = kubernetes_seed()
    seed["shop"]["shop-api"] = {
        **seed["shop"]["shop-api"],
        "image": f"{REGISTRY}/shop-api:{tags['shop-api/production']}",
    }
    seed["shop-staging"] = {
        "shop-api": {"replicas": 2, "seconds": 2, "image": f"{REGISTRY}/shop-api:{tags['shop-api/staging']}"},
        "shop-recommend": {
            "replicas": 2,
            "seconds": 2,
            "image": f"{REGISTRY}/shop-recommend:{tags['shop-recommend/staging']}",
        },
        "shop-search": {"replicas": 2, "seconds": 2, "image": f"{REGISTRY}/shop-search:{tags['shop-search/staging']}"},
    }
    return seed


# Argo CD's Applications (what `argocd app create` would have made): the deploy repo's file each one renders, and
# the Deployment it lands in (the fake applies the image only).
ARGOCD_APPLICATIONS = {
    "shop-recommend-staging": {
        "repo": DEPLOY_REPO,
        "branch": "main",
        "path": "shop-recommend/staging/values.yaml",
        "format": "helm",
        "key": "image.tag",
        "image": f"{REGISTRY}/shop-recommend",
        "namespace": "shop-staging",
        "deployment": "shop-recommend",
    }
}


def app_histories() -> dict[str, list[dict]]:
    """Each example project's main-branch history as commits the fake Drone built (same shas), oldest first."""
    found = {}
    for slug, builds in default_seed().items():
        line = [
            b
            for b in builds
            if b["event"] == "push"
            and (b.get("target") == "main" or slug == "shop/shop-web" and b["target"] == "develop")
        ]
        found[slug] = [
            {
                "id": b["after"],
                "message": b["message"],
                "author_name": b["author_name"],
                "author_email": b["author_email"],
                "branch": b["target"],
            }
            for b in sorted(line, key=lambda b: b["number"])
        ]
    return found


def drone_way(files: dict[str, str]) -> dict[str, str]:
    """A config directory's files (name -> text) with every environment deploying through Drone's promote (no
    `deploy:`): the config the Drone way's tests and chaos flows run on, shop-api's seeded builds promoted in Drone
    as before GitOps releases. Files without a `deploy:` are kept as they are (comments and all)."""
    import yaml

    found = {}
    for name, text in files.items():
        data = yaml.safe_load(text) if name.startswith("projects/") and "deploy:" in text else None
        if isinstance(data, dict):
            for env in (data.get("environments") or {}).values():
                env.pop("deploy", None)
            text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        found[name] = text
    return found
