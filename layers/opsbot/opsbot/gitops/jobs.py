"""The worker's `gitlab.push` job: a push to the config repo's branch is synced (config_sync); a push to the
default branch of a project with `pipeline.init_on_push` and no .drone.yml opens a merge request with one;
anything else is acknowledged and ignored (GitLab already has its 2xx)."""

from __future__ import annotations

from opsbot.config import store
from opsbot.config.model import Config, Project
from opsbot.delivery.post import post_once
from opsbot.gitlab.events import Push
from opsbot.gitops import config_sync, merge_requests
from opsbot.gitops.pipelines import PipelineError
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, read_payload
from opsbot.jobs.registry import handles
from opsbot.message import Reply
from opsbot.state import effects, keys


@handles(kinds.GITLAB_PUSH)
def on_push(job: Job) -> str:
    push = read_payload(Push.from_payload, job.payload, "Push Hook")
    config = store.load()
    gitlab = config.gitlab
    if gitlab and gitlab.config_repo and push.repo.lower() == gitlab.config_repo.lower():
        if push.branch != gitlab.config_branch:
            return f"ignored: {push.branch or 'a tag'} is not the config branch {gitlab.config_branch}"
        return config_sync.on_push(config, push)
    project = config.project_for_repo(push.repo)
    if project is not None and project.pipeline.init_on_push:
        return init_on_push(config, project, push)
    return f"ignored: no GitOps for pushes to {push.repo}"


def init_on_push(config: Config, project: Project, push: Push) -> str:
    """Open the .drone.yml merge request once; later pushes find it open and say nothing."""
    if push.deleted or not push.branch or push.branch != push.default_branch:
        return "ignored: not a push to the default branch"
    try:
        proposal = effects.once(
            f"{keys.DRONE_INIT_ON_PUSH}{project.name}#{push.after}",
            lambda: merge_requests.init(
                config, project, requested_by=f"a push by {push.user_name or push.user_username}"
            ).as_dict(),
        )
    except PipelineError as exc:
        return f"no .drone.yml generated: {exc}"  # told once per push would be noise; the log has it
    if proposal["outcome"] != "opened":
        return f".drone.yml merge request: {proposal['outcome']}"
    text = t(
        project.language,
        f"### 🛠 {project.name} 还没有 .drone.yml\n\nopsbot 用 {proposal['language']} 模板生成了一个，"
        f"请评审合并：[!{proposal['iid']}]({proposal['url']})",
        f"### 🛠 {project.name} has no .drone.yml yet\n\nopsbot generated one from its {proposal['language']} "
        f"template; please review and merge: [!{proposal['iid']}]({proposal['url']})",
    )
    post_once(
        config,
        Reply(
            title=f".drone.yml {project.name}",
            text=text,
            project=project.name,
            detail=f"merge request !{proposal['iid']}",
        ),
        f"drone-init#{project.name}#{push.after}",
    )
    return f"opened merge request !{proposal['iid']}"
