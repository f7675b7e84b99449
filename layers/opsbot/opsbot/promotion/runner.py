"""Running a release's steps, each exactly once under retries and crashes.

`advance(config, release_id, index, poll)` runs the plan from step `index`: each run of a step is its own run-once
effect (`release-step#<id>#<index>#<poll>`, state/effects.py), which records the step's outputs with the release
(records.save_output) and, when the step is still `running`, queues the next look at it as a delayed job
(`release.step`, SQS DelaySeconds: no Lambda sleeps), inside the effect: a job that comes again after the effect
finds its result and queues nothing, so a follow-up is never doubled. A step that succeeds hands over to the next one
in the same job; a failed step fails the release, whose `always` steps (auto rollback, report) still run. A step that
needs the approvals (a merge request's merge) waits until they are given (start.approved goes on from it).

Every step looks before it acts (its trailer in Git, its annotation on the Deployment, Argo CD's operation, SSM's
comment), so one taken over after a crash does what is left, not twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from opsbot.config.deploy import GitOpsTarget
from opsbot.config.model import Config, Project
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.log import logger
from opsbot.markup import dingtalk as md
from opsbot.peers import PeerNotConfigured, PeerRefused
from opsbot.promotion import records
from opsbot.promotion.records import Release
from opsbot.promotion.registry import FAILED, RUNNING, STEPS, StepConfigError, StepFailed, StepResult
from opsbot.settings import settings
from opsbot.state import effects, keys


@dataclass
class StepRun:
    """What a step gets: the config, the release (with the outputs of the steps before), and its own last outputs
    when it is being looked at again (`poll` > 0)."""

    config: Config
    release: Release
    name: str
    poll: int = 0
    state: dict = field(default_factory=dict)

    @property
    def project(self) -> Project | None:
        return self.config.projects.get(self.release.project)

    @property
    def target(self) -> GitOpsTarget | None:
        project = self.project
        env = project.environments.get(self.release.environment) if project else None
        return env.deploy if env else None

    def output(self, name: str) -> dict:
        return self.release.output(name)

    def t(self, zh: str, en: str) -> str:
        return t(self.release.language, zh, en)

    @cached_property
    def deploy_repo(self):
        from opsbot.gitlab.api import deploy_client_for  # late: python-gitlab, for the jobs that talk to GitLab

        return deploy_client_for(self.config)

    @property
    def desired_image(self) -> str:
        """The image the deploy repo pins once this release's commit is in: what a revert left there, else what
        set-image wrote, else the build's tag."""
        for name in ("git-revert", "set-image"):
            if new := self.output(name).get("new"):
                return new
        release = self.release
        return f"{release.image}@{release.digest}" if release.digest else f"{release.image}:{release.tag}"

    @property
    def deploy_commit(self) -> str:
        """The commit that put this release in the deploy repo (a commit, a merge, a revert), once it exists."""
        for name in ("merge-merge-request", "git-commit", "git-revert"):
            if commit := self.output(name).get("commit"):
                return commit
        return ""


def advance(config: Config, release_id: str, index: int = 0, poll: int = 0) -> str:
    """Run the release's steps from `index` as far as they go now; what happened, for the job's log."""
    release = records.get(release_id)
    if release is None:
        return f"ignored: no release {release_id}"
    while index < len(release.plan):
        spec = release.plan[index]
        if release.failed and not spec.get("always"):
            index, poll = index + 1, 0
            continue
        if spec.get("needs_approval") and not release.approved:
            return f"release {release_id}: waiting for approval at {spec['name']}"
        stored = effects.once(
            f"{keys.RELEASE_STEP}{release_id}#{index}#{poll}",
            lambda release=release, spec=spec, index=index, poll=poll: _run(config, release, spec, index, poll),
        )
        result = StepResult.from_dict(stored)
        if result.status == RUNNING:
            return f"release {release_id}: {spec['name']} running (look {poll + 1} queued)"
        index, poll = index + 1, 0
        release = records.get(release_id)
    return f"release {release_id}: {'failed' if release.failed else 'done'}"


def _run(config: Config, release: Release, spec: dict, index: int, poll: int) -> dict:
    kind = STEPS.get(spec["kind"])
    state = release.output(spec["name"]) if poll else {}
    run = StepRun(config, release, spec["name"], poll, state)
    try:
        if kind is None:
            raise StepConfigError(f"no release step {spec['kind']}")
        result = kind.run(run, kind.parse(spec.get("config") or {}))
    except StepFailed as exc:
        result = StepResult(FAILED, state, str(exc))
    except StepConfigError as exc:
        logger.error("release step config does not fit", extra={"release": release.id, "reason": str(exc)})
        result = StepResult(FAILED, state, md(str(exc), 300))
    except PeerRefused as exc:  # the peer said no: retrying cannot change it
        result = StepResult(
            FAILED,
            state,
            run.t(f"{exc.peer} 拒绝：{md(exc.message, 300)}", f"{exc.peer} refused: {md(exc.message, 300)}"),
        )
    except PeerNotConfigured as exc:
        result = StepResult(
            FAILED,
            state,
            run.t(f"没有配置 {exc.peer}（{exc.section}）", f"{exc.peer} is not configured ({exc.section})"),
        )
    failed = (
        (result.message or run.t(f"{spec['name']} 失败", f"{spec['name']} failed")) if result.status == FAILED else ""
    )
    outputs = {**result.outputs, "status": result.status, "message": result.message}
    records.save_output(release.id, spec["name"], outputs, failed=f"{spec['name']}: {failed}" if failed else "")
    if result.status == RUNNING:
        delay = int(result.outputs.get("delay_seconds") or settings().release_poll_seconds)
        enqueue(
            Job(kinds.RELEASE_STEP, {"release": release.id, "index": index, "poll": poll + 1}),
            delay_seconds=delay,
        )
    logger.info(
        "release step",
        extra={"release": release.id, "step": spec["name"], "poll": poll, "status": result.status},
    )
    return result.as_dict()
