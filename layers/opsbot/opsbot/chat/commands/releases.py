"""releases / 发布历史, and the GitOps part of `status`: what the deploy repo says about a project's environments.

Both read the deploy repo (its own token) and the clusters or Argo CD, which only the worker may: `releases` is
queued as acts are, and `status` is too for a project with a GitOps environment (answered at once otherwise)."""

from __future__ import annotations

import time
from datetime import datetime

from opsbot.authz import core as authz
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.config.model import Config, Project
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.markup import link_target
from opsbot.message import Reply
from opsbot.text import is_number

PER_PAGE = 10
# A read, run in the worker (the deploy repo's token is the worker's alone), for people in the config, as `k8s pods`.
RELEASES = authz.Verb("releases", ("developer",), authz.READ)


def has_gitops(config: Config, arguments: dict) -> bool:
    name = str(arguments.get("project") or "")
    project = config.projects.get(name) or config.project_for_repo(name)
    return project is not None and any(env.deploy for env in project.environments.values())


def _link(text: str, url: str) -> str:
    target = link_target(url)
    return f"[{text}]({target})" if target else text


def ago_seconds(seconds: float, language: str) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return t(language, f"{minutes}分钟前", f"{minutes} min ago")
    hours = minutes // 60
    if hours < 48:
        return t(language, f"{hours}小时前", f"{hours} h ago")
    return t(language, f"{hours // 24}天前", f"{hours // 24} d ago")


def ago(iso: str, language: str) -> str:
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    return ago_seconds(max(0.0, time.time() - when), language)


def _who(entry, request: ChatRequest) -> str:
    if entry.kind == "release":
        approved = ", ".join(md(a, 40) for a in entry.approvers)
        by = md(entry.requester or entry.author, 40)
        return by + (request.t(f"，{approved} 批准", f", approved by {approved}") if approved else "")
    return md(entry.author, 40)


def entry_line(request: ChatRequest, project: Project, entry, outcome: str = "") -> str:
    commit = _link(entry.short, entry.web_url)
    when = ago(entry.at, request.language)
    if entry.kind == "release":
        build = f"#{entry.build} " if entry.build else ""
        image = md(entry.image.rsplit(":", 1)[-1] if ":" in entry.image else entry.image, 40)
        what = f"{build}`{image}` · release `{md(entry.release, 10)}`"
        mark = {"succeeded": " ✅", "failed": " ❌", "running": " ⏳"}.get(outcome, "")
    elif entry.kind == "revert":
        what = request.t(f"revert {md(entry.reverts[:8], 10)}", f"revert of {md(entry.reverts[:8], 10)}")
        mark = ""
    else:
        what = request.t(f"✋ 手工修改：{md(entry.title, 80)}", f"✋ by hand: {md(entry.title, 80)}")
        mark = ""
    return f"- {commit} {what}{mark} · {_who(entry, request)} · {when}"


def gitops_status(request: ChatRequest, project: Project) -> list[str]:
    from opsbot.promotion import status  # late: the deploy repo's and the clusters' clients, in the worker only

    lines = [
        request.t("#### 部署仓库里的期望状态与实际运行", "#### Desired (the deploy repo) and live, per environment")
    ]
    for state in status.project_states(request.config, project):
        if state.drift:
            head = request.t("⚠️ 有漂移", "⚠️ drift")
        elif state.releasing:
            head = request.t("⏳ 发布中", "⏳ releasing")
        elif state.live and state.live.error:
            head = request.t("❓ 读不到实际状态", "❓ live state unknown")
        else:
            head = request.t("✅ 期望 = 实际", "✅ desired = live")
        lines.append(f"\n**{state.environment}** {head}")
        desired = f"`{md(state.desired or '-', 200)}`"
        if state.newest is not None:
            desired += " · " + entry_line(request, project, state.newest)[2:]
        lines.append(f"- {request.t('期望', 'desired')}: {desired}")
        live = state.live
        if live and live.error:
            lines.append(f"- {request.t('实际', 'live')}: {md(live.error, 200)}")
        elif live:
            images = ", ".join(f"`{md(i, 200)}`" for i in live.images) or "-"
            lines.append(f"- {request.t('实际', 'live')}: {images} ({md(live.source, 80)}; {md(live.detail, 120)})")
        lines += [f"- ⚠️ {md(request.t(*reason), 300)}" for reason in state.drift]
    return lines


def _parse(words: list[str]) -> dict:
    if not words:
        raise UsageError("missing <project>")
    found: dict = {"project": words[0]}
    for word in words[1:]:
        if is_number(word) and "page" not in found:
            found["page"] = int(word.lstrip("#"))
        elif "env" not in found:
            found["env"] = word
        else:
            raise UsageError(f"unexpected '{md(word, 40)}'")
    return found


@command(
    "releases",
    area="release",
    aliases=("发布历史", "发布记录"),
    acts=True,
    verb=RELEASES,
    parse=_parse,
    usage="releases <project> [env] [page]",
    arguments=(Argument("project"), Argument("env", required=False), Argument("page", required=False, number=True)),
    zh="GitOps 环境的发布历史（来自部署仓库，最新的在前，带链接；每页 10 条）",
    en="A GitOps environment's release history from its deploy repo, newest first, with links (10 a page)",
    examples=("releases shop-api", "releases shop-api production 2", "发布历史 shop-api staging"),
)
def releases(request: ChatRequest) -> Reply:
    from opsbot.promotion import history, records, status  # late: the worker's clients

    project = request.project()
    env_name = str(request.arguments.get("env") or "")
    page = max(1, int(request.arguments.get("page") or 1))
    names = [n for n, e in project.environments.items() if e.deploy and (not env_name or n == env_name)]
    if not names:
        known = ", ".join(n for n, e in project.environments.items() if e.deploy) or "-"
        raise UsageError(
            request.t(
                f"{project.name} 没有 GitOps 环境 `{md(env_name, 40)}`。GitOps 环境：{known}",
                f"{project.name} has no GitOps environment `{md(env_name, 40)}`. GitOps environments: {known}",
            )
        )
    repo = status.deploy_repo(request.config)
    per_page = PER_PAGE if env_name else 5
    lines = [request.t(f"### {project.name} 的发布历史", f"### {project.name}: releases")]
    more = False
    for name in names:
        target = project.environments[name].deploy
        entries = history.entries(repo, target, per_page=per_page, page=page)
        recorded = {r["id"]: r for r in records.history(project.name, name, limit=100)[0]}
        outcomes = {key: r.get("outcome", "") for key, r in recorded.items()}
        for entry in entries:  # a merge request's commit was written before its approvals: the record has them
            if entry.release in recorded and not entry.approvers:
                entry.approvers = [a for a in str(recorded[entry.release].get("approvers") or "").split(", ") if a]
        lines.append(f"\n**{name}** ({md(target.repo, 80)}: {md(target.file, 120)} @ {md(target.branch, 40)})")
        lines += [entry_line(request, project, e, outcomes.get(e.release, "")) for e in entries]
        if not entries:
            lines.append(request.t("- 没有更多了", "- nothing more"))
        more = more or len(entries) == per_page
    if more:
        nxt = f"releases {project.name} {env_name} {page + 1}".replace("  ", " ")
        lines.append(request.t(f"\n下一页：`{nxt}`", f"\nNext page: `{nxt}`"))
    return Reply(title=f"releases {project.name}", project=project.name, text="\n".join(lines), detail=f"page {page}")
