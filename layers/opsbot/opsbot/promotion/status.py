"""What runs where, per GitOps environment: the desired state from Git (the file at the deploy branch's head: its
image, and the newest commit of it: the release with its build, source commit, who, when and approvers, or a change
by hand) and the live state (the cluster's Deployment, Argo CD's Application, or the runbook's last run), with what
differs named: drift. `status`, `releases` and the scheduled drift check read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbot.config.deploy import GitOpsTarget
from opsbot.config.model import Config, Project
from opsbot.log import logger
from opsbot.peers import PeerNotConfigured, PeerRefused, PeerUnavailable
from opsbot.promotion import formats, history, records
from opsbot.promotion.history import HAND, Entry

HAND_LOOK_BACK = 20  # how far back a change by hand is weighed against opsbot's releases


@dataclass
class Live:
    source: str  # where it was read: cluster, Argo CD, runbook
    images: list[str] = field(default_factory=list)
    detail: str = ""  # what else the source says (rollout, sync and health, the run's outcome)
    error: str = ""  # it could not be read, and why


@dataclass
class EnvironmentState:
    project: str
    environment: str
    target: GitOpsTarget
    desired: str = ""  # the image the file pins at the branch's head
    newest: Entry | None = None  # the file's newest commit
    live: Live | None = None
    drift: list[tuple[str, str]] = field(default_factory=list)  # what differs, in words: (Chinese, English)
    releasing: bool = False  # a release of it is still going (its record says running)

    def fingerprint(self) -> str:
        import hashlib

        facts = [self.project, self.environment, self.desired, *(self.live.images if self.live else [])]
        facts.append(self.newest.commit if self.drift and self.newest and self.newest.kind == HAND else "")
        return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


def deploy_repo(config: Config):
    from opsbot.gitlab.api import deploy_client_for  # late: python-gitlab, for the jobs that talk to GitLab

    return deploy_client_for(config)


def desired(repo, target: GitOpsTarget) -> str:
    found = repo.file_at(target.repo, target.file, target.branch)
    if found is None:
        return ""
    try:
        pinned = formats.read(target, found[0])
    except formats.FormatError:
        return ""
    return pinned.reference if pinned else ""


def live(config: Config, project: Project, env_name: str, target: GitOpsTarget) -> Live:
    """What runs: the Deployment's image (opsbot, watch, flux with a workload), Argo CD's images, or the image of the
    runbook's last successful run (from the releases' records)."""
    try:
        if target.apply == "argocd":
            from opsbot.argocd import api as argocd

            facts = argocd.facts(argocd.client().application(target.application))
            return Live("Argo CD", facts["images"], f"{facts['sync']}/{facts['health']}")
        if target.workload is not None:
            from opsbot.ops import kubernetes as k8s

            cluster = config.ops.clusters.get(target.workload.cluster)
            if cluster is None:
                return Live("cluster", error=f"cluster {target.workload.cluster} is not configured")
            workload = target.workload
            found = k8s.live_image(
                cluster, workload.namespace, workload.deployment, workload.container or target.container
            )
            state, said = k8s.rollout_state(cluster, workload.namespace, workload.deployment)
            where = f"{workload.cluster}/{workload.namespace} deployment/{workload.deployment}"
            return Live(where, [found["image"]], f"{state}: {said}")
        if target.apply == "runbook":
            runs, _ = records.history(project.name, env_name, limit=10)
            last = next((r for r in runs if r.get("rollout") in ("succeeded", "failed")), None)
            if last is None:
                return Live(f"runbook {target.runbook}", detail="no run by opsbot yet")
            ran = [last["image"]] if last.get("rollout") == "succeeded" else []
            return Live(f"runbook {target.runbook}", ran, f"release {last['id']}: {last['rollout']}")
        return Live(target.apply, error="nothing to read the live state from (give the target a workload)")
    except (PeerRefused, PeerUnavailable, PeerNotConfigured) as exc:
        logger.info(
            "live state not read", extra={"project": project.name, "environment": env_name, "reason": str(exc)[:200]}
        )
        return Live(target.apply, error=str(exc)[:200])


def _same(desired_image: str, running: str) -> bool:
    want, have = formats.split_reference(desired_image), formats.split_reference(running)
    if want.digest and have.digest:
        return want.digest == have.digest and want.repository == have.repository
    return (want.repository, want.tag) == (have.repository, have.tag)


def environment(config: Config, project: Project, env_name: str, repo=None) -> EnvironmentState:
    target = project.environments[env_name].deploy
    repo = repo or deploy_repo(config)
    state = EnvironmentState(project.name, env_name, target)
    state.desired = desired(repo, target)
    commits = history.entries(repo, target, per_page=HAND_LOOK_BACK)
    state.newest = commits[0] if commits else None
    if state.newest is not None and state.newest.release and not state.newest.approvers:
        # A merge request's commit was written before its approvals: they are in the release's record.
        record = records.find(project.name, env_name, state.newest.release) or {}
        state.newest.approvers = [a for a in str(record.get("approvers") or "").split(", ") if a]
    # A change by hand is drift once opsbot releases the environment: before its first release, the repo's own
    # history is where it starts from.
    by_hand = state.newest is not None and state.newest.kind == HAND and any(e.kind != HAND for e in commits[1:])
    state.live = live(config, project, env_name, target)
    recent, _ = records.history(project.name, env_name, limit=1)
    state.releasing = bool(recent) and recent[0].get("outcome") == "running"
    if by_hand:
        by = f"{state.newest.short} ({state.newest.author})"
        state.drift.append(
            (f"部署文件被绕过 opsbot 手工修改：{by}", f"the deploy file was changed outside opsbot: {by}")
        )
    if state.live.error or state.releasing:  # a release on its way: the cluster catches up with Git
        return state
    if state.desired and state.live.images and not any(_same(state.desired, i) for i in state.live.images):
        running = ", ".join(state.live.images)
        state.drift.append((f"期望 {state.desired}，实际 {running}", f"desired {state.desired}, live {running}"))
    elif state.desired and not state.live.images and target.apply != "runbook":
        state.drift.append((f"期望 {state.desired}，实际没有在运行", f"desired {state.desired}, nothing live"))
    return state


def project_states(config: Config, project: Project) -> list[EnvironmentState]:
    repo = deploy_repo(config)
    return [environment(config, project, name, repo) for name, env in project.environments.items() if env.deploy]
