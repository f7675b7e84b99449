"""A project environment's `deploy:`: how a release reaches it.

`deploy: drone` (the default) is Drone's promote, as before. A mapping is a GitOps target: the environment's
desired state is one file in a deploy repo (a GitLab project), a release is a commit there that sets the image,
and `apply` says who makes the world match it. Kept apart from model.py, as ops.py and review.py are; model.py
calls `parse()` with its line-aware checker and `check()` once the global file's parts are known.

    deploy:
      repo: platform/deploy          # default: gitlab.deploy_repo
      branch: main                   # a branch per environment, or one branch with a directory per environment
      file: shop-api/overlays/staging/kustomization.yaml
      format: kustomize              # kustomize (images[].newTag/digest) | helm (a key path) | manifest (a container)
      image: registry.example.com/shop/shop-api     # default: the project's pipeline image
      apply: opsbot                  # opsbot | argocd | flux | watch | runbook
      workload: {cluster: shop-eks-staging, namespace: shop-staging, deployment: shop-api, container: app}
      mode: commit                   # commit | merge_request
      verify: {url: https://staging.shop.example/health, minutes: 2}
      auto_rollback: true
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

DRONE = "drone"
FORMATS = ("kustomize", "helm", "manifest")
APPLY_WAYS = ("opsbot", "argocd", "flux", "watch", "runbook")
MODES = ("commit", "merge_request")
PINS = ("tag", "digest")
FLUX_KINDS = ("Kustomization", "HelmRelease")
DEPLOY_KEYS = {
    "repo",
    "branch",
    "file",
    "format",
    "image",
    "key",
    "container",
    "pin",
    "apply",
    "workload",
    "application",
    "flux",
    "runbook",
    "group",
    "parameter",
    "mode",
    "deadline_minutes",
    "verify",
    "auto_rollback",
}
WORKLOAD_KEYS = {"cluster", "namespace", "deployment", "container"}
FLUX_KEYS = {"cluster", "kind", "namespace", "name"}
VERIFY_KEYS = {"url", "alarm", "region", "minutes", "interval_seconds"}
# What each way of applying needs beside the file, and what it must not be given.
NEEDS = {
    "opsbot": ("workload",),
    "watch": ("workload",),
    "argocd": ("application",),
    "flux": ("flux",),
    "runbook": ("runbook", "group"),
}
_FILE = re.compile(r"^[\w.-]+(/[\w.-]+)*\.ya?ml$")
_BRANCH = re.compile(r"^[\w.-]+(/[\w.-]+)*$")
_KEY_PATH = re.compile(r"^[\w-]+(\.[\w-]+)*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_ALARM = re.compile(r"^[^\s\x00-\x1f]{1,255}$")
_REPO = re.compile(r"^[\w.-]+(/[\w.-]+)+$")
_IMAGE = re.compile(r"^([a-z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class Workload:
    """The Deployment that runs the image: patched by `apply: opsbot`, watched by `watch`, read for status."""

    cluster: str
    namespace: str
    deployment: str
    container: str = ""  # "" = the Deployment's first container


@dataclass(frozen=True)
class FluxObject:
    cluster: str
    kind: str  # Kustomization | HelmRelease
    namespace: str
    name: str


@dataclass(frozen=True)
class Verify:
    """After the rollout: an HTTPS URL that must answer 2xx, or a CloudWatch alarm that must stay OK, for `minutes`."""

    url: str = ""
    alarm: str = ""
    region: str = ""  # the alarm's; "" = the stack's own
    minutes: float = 2.0
    interval_seconds: int = 15


@dataclass(frozen=True)
class GitOpsTarget:
    repo: str  # the deploy repo (GitLab project path)
    branch: str
    file: str
    format: str  # kustomize | helm | manifest
    image: str  # the image repository, without tag or digest
    key: str = ""  # helm: the tag's key path, e.g. image.tag
    container: str = ""  # manifest: the container whose image is set ("" = the first)
    pin: str = "tag"  # tag (made from the build's commit) | digest (where the build's publish step printed one)
    apply: str = "opsbot"
    workload: Workload | None = None
    application: str = ""  # argocd: the Application
    flux: FluxObject | None = None
    runbook: str = ""  # runbook: which one, on which VM group, with the version as which parameter
    group: str = ""
    parameter: str = "version"
    mode: str = "commit"  # commit | merge_request
    deadline_minutes: int = 10  # a rollout, sync or run not done by then failed
    verify: Verify | None = None
    auto_rollback: bool = False


def parse(checker, spec: dict, where: str, default_image: str) -> GitOpsTarget | None:
    """`deploy:` of one environment: None for Drone (absent or `drone`), else the GitOps target."""
    value = spec.get("deploy")
    if value is None or value == DRONE:
        return None
    where = f"{where}.deploy"
    if not isinstance(value, dict):
        checker.problem(spec, "deploy", f"{where} is `drone` or a mapping (a GitOps target: repo, file, format, …)")
        return None
    item = checker.mapping(value, DEPLOY_KEYS, where)
    file = checker.string(item, "file", where, required=True)
    if file and (not _FILE.match(file) or ".." in file.split("/")):
        checker.problem(item, "file", f"{where}.file '{file}' is a .yaml path inside the deploy repo")
    branch = checker.string(item, "branch", where, default="main")
    if not _BRANCH.match(branch):
        checker.problem(item, "branch", f"{where}.branch '{branch}' is not a branch name")
    repo = checker.string(item, "repo", where)
    if repo and not _REPO.match(repo):
        checker.problem(item, "repo", f"{where}.repo '{repo}' must look like group/name")
    image = checker.string(item, "image", where, default=default_image)
    if image and not _IMAGE.match(image):
        checker.problem(item, "image", f"{where}.image '{image}' is an image repository without a tag")
    kind = _choice(checker, item, "format", where, FORMATS, "kustomize")
    key = checker.string(item, "key", where)
    if kind == "helm" and not key:
        checker.problem(item, "format", f"{where}: helm needs `key`, the tag's key path in the values (e.g. image.tag)")
    if key and not _KEY_PATH.match(key):
        checker.problem(item, "key", f"{where}.key '{key}' is a key path like image.tag")
    if key and kind != "helm":
        checker.problem(item, "key", f"{where}.key is for format helm")
    apply = _choice(checker, item, "apply", where, APPLY_WAYS, "opsbot")
    pin = _choice(checker, item, "pin", where, PINS, "tag")
    if pin == "digest" and kind == "helm":
        checker.problem(
            item, "pin", f"{where}.pin: a helm key path takes a tag; pin by digest in kustomize or manifest"
        )
    for needed in NEEDS[apply]:
        if item.get(needed) is None:
            checker.problem(item, None, f"{where}: apply {apply} needs `{needed}`")
    for key_name in ("workload", "application", "flux", "runbook", "group"):
        allowed = NEEDS[apply] + (("workload",) if apply in ("argocd", "flux") else ())
        if item.get(key_name) is not None and key_name not in allowed:
            checker.problem(item, key_name, f"{where}.{key_name} is not used by apply {apply}")
    parameter = checker.string(item, "parameter", where, default="version")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", parameter):
        checker.problem(item, "parameter", f"{where}.parameter is a runbook parameter name")
    return GitOpsTarget(
        repo=repo,
        branch=branch,
        file=file,
        format=kind,
        image=image,
        key=key,
        container=_name(checker, item, "container", where),
        pin=pin,
        apply=apply,
        workload=_workload(checker, item, where),
        application=_name(checker, item, "application", where),
        flux=_flux(checker, item, where),
        runbook=checker.string(item, "runbook", where),
        group=checker.string(item, "group", where),
        parameter=parameter,
        mode=_choice(checker, item, "mode", where, MODES, "commit"),
        deadline_minutes=checker.integer(item, "deadline_minutes", where, 10, 1, 120),
        verify=_verify(checker, item, where),
        auto_rollback=checker.boolean(item, "auto_rollback", where, False),
    )


def _choice(checker, item: dict, key: str, where: str, choices: tuple[str, ...], default: str) -> str:
    value = checker.string(item, key, where, default=default)
    if value not in choices:
        checker.problem(item, key, f"{where}.{key} must be one of {', '.join(choices)}")
        return default
    return value


def _name(checker, item: dict, key: str, where: str) -> str:
    value = checker.string(item, key, where)
    if value and not _K8S_NAME.match(value):
        checker.problem(item, key, f"{where}.{key} '{value}' is not a Kubernetes name")
    return value


def _workload(checker, item: dict, where: str) -> Workload | None:
    spec = checker.mapping(item.get("workload"), WORKLOAD_KEYS, f"{where}.workload", item, "workload")
    if not spec:
        return None
    here = f"{where}.workload"
    return Workload(
        cluster=checker.string(spec, "cluster", here, required=True),
        namespace=_name(checker, spec, "namespace", here) or checker.string(spec, "namespace", here, required=True),
        deployment=_name(checker, spec, "deployment", here) or checker.string(spec, "deployment", here, required=True),
        container=_name(checker, spec, "container", here),
    )


def _flux(checker, item: dict, where: str) -> FluxObject | None:
    spec = checker.mapping(item.get("flux"), FLUX_KEYS, f"{where}.flux", item, "flux")
    if not spec:
        return None
    here = f"{where}.flux"
    return FluxObject(
        cluster=checker.string(spec, "cluster", here, required=True),
        kind=_choice(checker, spec, "kind", here, FLUX_KINDS, "Kustomization"),
        namespace=_name(checker, spec, "namespace", here) or "flux-system",
        name=_name(checker, spec, "name", here) or checker.string(spec, "name", here, required=True),
    )


def _verify(checker, item: dict, where: str) -> Verify | None:
    spec = checker.mapping(item.get("verify"), VERIFY_KEYS, f"{where}.verify", item, "verify")
    if not spec:
        return None
    here = f"{where}.verify"
    has_url, has_alarm = spec.get("url") is not None, spec.get("alarm") is not None
    if has_url == has_alarm:
        checker.problem(item, "verify", f"{here}: give either url (an HTTPS health URL) or alarm (a CloudWatch alarm)")
    url = checker.https_url(spec, "url", here, "https://staging.shop.example/health") if has_url else ""
    alarm = checker.string(spec, "alarm", here) if has_alarm else ""
    if alarm and not _ALARM.match(alarm):
        checker.problem(spec, "alarm", f"{here}.alarm '{alarm}' is not an alarm name")
    region = checker.string(spec, "region", here)
    if region and not _AWS_REGION.match(region):
        checker.problem(spec, "region", f"{here}.region '{region}' is not an AWS region like us-east-1")
    minutes = spec.get("minutes", 2)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= 60:
        checker.problem(spec, "minutes", f"{here}.minutes must be a number above 0, at most 60")
        minutes = 2
    return Verify(
        url=url,
        alarm=alarm,
        region=region,
        minutes=float(minutes),
        interval_seconds=checker.integer(spec, "interval_seconds", here, 15, 1, 300),
    )


def check(checker, data: dict, project, parts: dict):
    """The references a project's GitOps targets make to the global file (the deploy repo, ops clusters, runbooks
    and VM groups); returns the project with each target's repo filled in from `gitlab.deploy_repo`."""
    environments = dict(project.environments)
    env_specs = data.get("environments") if isinstance(data.get("environments"), dict) else {}
    gitlab, ops = parts.get("gitlab"), parts.get("ops")
    for name, env in project.environments.items():
        target = env.deploy
        if target is None:
            continue
        spec = env_specs.get(name) if isinstance(env_specs.get(name), dict) else {}
        item = spec.get("deploy") if isinstance(spec.get("deploy"), dict) else spec
        where = f"environments.{name}.deploy"
        if gitlab is None:
            checker.problem(item, None, f"{where}: a GitOps target needs a gitlab: section in opsbot.yaml")
            continue
        repo = target.repo or gitlab.deploy_repo
        if not repo:
            checker.problem(item, None, f"{where}: name the deploy repo (`repo`, or gitlab.deploy_repo)")
        if not gitlab.deploy_token:
            checker.problem(
                item, None, f"{where}: a GitOps target needs gitlab.deploy_token (its own, for the deploy repo)"
            )
        environments[name] = replace(env, deploy=replace(target, repo=repo))
        if ops is None:
            continue
        if target.workload is not None:
            _check_cluster(checker, item.get("workload"), "cluster", where, ops, name, target.workload)
        if target.flux is not None:
            _check_cluster(checker, item.get("flux"), "cluster", where, ops, name, target.flux)
        if target.apply == "runbook":
            _check_runbook(checker, item, where, ops, name, target)
    return replace(project, environments=environments)


def _check_cluster(checker, item, key: str, where: str, ops, environment: str, ref) -> None:
    cluster = ops.clusters.get(ref.cluster)
    if cluster is None:
        checker.problem(item, key, f"{where}: no cluster '{ref.cluster}' in ops.clusters")
    elif cluster.environment != environment:
        checker.problem(item, key, f"{where}: cluster {ref.cluster} is {cluster.environment}, not {environment}")
    elif ref.namespace not in cluster.namespaces:
        checker.problem(item, "namespace", f"{where}: {ref.cluster} does not list namespace '{ref.namespace}'")


def _check_runbook(checker, item: dict, where: str, ops, environment: str, target: GitOpsTarget) -> None:
    runbook, group = ops.runbooks.get(target.runbook), ops.vm_groups.get(target.group)
    if runbook is None:
        checker.problem(item, "runbook", f"{where}: no runbook '{target.runbook}' in ops.runbooks")
        return
    if group is None or target.group not in runbook.groups:
        checker.problem(item, "group", f"{where}: runbook {target.runbook} may not run on '{target.group}'")
    elif group.environment != environment:
        checker.problem(item, "group", f"{where}: vm_group {target.group} is {group.environment}, not {environment}")
    parameter = runbook.parameters.get(target.parameter)
    if parameter is None or parameter.type != "version":
        checker.problem(
            item,
            "parameter" if "parameter" in item else "runbook",
            f"{where}: runbook {target.runbook} needs a parameter '{target.parameter}' of type version",
        )
    others = [p for p in runbook.parameters.values() if p.name != target.parameter and not p.default]
    if others:
        checker.problem(item, "runbook", f"{where}: runbook {target.runbook} needs parameters without defaults")
