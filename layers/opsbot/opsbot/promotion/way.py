"""The GitOps way of releasing, registered in release/deploy.py's WAYS: whatever asks (chat, a release link, an
approval) has already passed the authorization core there; here the release is begun (start.py), and its answer is
what is done so far. Importing this module registers the way and every release step."""

from __future__ import annotations

from opsbot.config.model import Config, Project
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.promotion import card, history, records, start
from opsbot.promotion import steps as _steps  # noqa: F401  (registers every step)
from opsbot.promotion.records import REVERT
from opsbot.release import deploy
from opsbot.release.deploy import ReleaseRefused, Requested


def build_link(config: Config, project: Project, build: dict | None) -> str:
    if not build or config.drone is None:
        return ""
    return f"{config.drone.server}/{project.repo}/{build.get('number')}"


def deploy_repo(config: Config):
    from opsbot.gitlab.api import deploy_client_for  # late: python-gitlab, for the jobs that talk to GitLab

    return deploy_client_for(config)


class GitOpsWay:
    def execute(
        self, config: Config, project: Project, env: str, build: dict | None, action: str, who: Requested
    ) -> Reply:
        reverts_release = ""
        if action == REVERT:
            target = project.environments[env].deploy
            found = history.entry(deploy_repo(config).commit_of(target.repo, who.revert) or {"id": who.revert})
            reverts_release = found.release
        release = start.begin(
            config,
            project,
            env,
            who.request_id,
            action,
            start.requester(who.id, who.name, who.person),
            who.via,
            who.language,
            build=build,
            build_link=build_link(config, project, build),
            approvers=who.approvers,
            reverts=who.revert,
            reverts_release=reverts_release,
            conversation=who.conversation,
        )
        return card.started(release)

    def opened(self, config: Config, project: Project, env: str, build: dict | None, request, who: Requested) -> str:
        """A merge-request environment opens its merge request now, for the approvers to read; the release goes on
        from it once they approve (execute, with the same id)."""
        target = project.environments[env].deploy
        if target.mode != "merge_request" or request.action == REVERT:
            return ""
        release = start.begin(
            config,
            project,
            env,
            request.id,
            request.action,
            start.requester(who.id, who.name, who.person),
            who.via,
            who.language,
            build=build,
            build_link=build_link(config, project, build),
            approved=False,
            conversation=who.conversation,
        )
        opened = release.output("open-merge-request")
        if release.failed or not opened.get("merge_request"):
            return "\n\n" + md(release.failed, 300)
        link = card.linked(f"!{opened['merge_request']}", opened.get("merge_request_url", ""))
        repo = md(target.repo, 100)
        return "\n\n" + t(
            who.language,
            f"已在 {repo} 开启合并请求 {link}：批准后由 opsbot 合并并上线。",
            f"Opened merge request {link} in {repo}: opsbot merges it and rolls it out once approved.",
        )


def rollback_target(config: Config, project: Project, env: str, language: str, request_id: str = "") -> history.Undo:
    """What `rollback <project> <env>` reverts in a GitOps environment: the newest release commit not yet reverted.
    Asked again for the same request (its job retried after the revert was made), the answer is the one it got
    then, not the release before it."""
    made = records.get(request_id) if request_id else None
    if made is not None and made.action == REVERT and made.environment == env:
        back_to = history.Entry("", "", "", "", "", history.RELEASE, build=made.build) if made.build else None
        return history.Undo(made.reverts, made.reverts_release, back_to)
    target = project.environments[env].deploy
    try:
        return history.rollback_target(deploy_repo(config), target, language)
    except history.NothingToRollBack as exc:
        raise ReleaseRefused(str(exc)) from None


def release_build(config: Config, project: Project, env: str, release_id: str, language: str) -> int:
    """The build a release of this environment put there (`rollback … to <release>`), from its commit's trailer."""
    target = project.environments[env].deploy
    found = history.find_release(deploy_repo(config), target, release_id)
    if found is None or not found.build:
        raise ReleaseRefused(
            t(
                language,
                f"{env} 的部署历史里没有 release `{md(release_id, 20)}`（或它没有构建号）。",
                f"no release `{md(release_id, 20)}` with a build in {env}'s deploy history.",
            )
        )
    return found.build


deploy.register_way("gitops", GitOpsWay())
