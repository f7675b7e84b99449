"""The one result card of a release, posted to the project's robots: what changed (old → new image, the commits
between the two builds with their authors, linked), the deploy commit or merge request, the rollout, the
verification, and who asked and approved. Outsiders' text (commit titles, authors, peers' messages) is made plain
(markup); links are only http(s) targets that cannot break out of the link."""

from __future__ import annotations

from opsbot.config.model import Config
from opsbot.i18n import t
from opsbot.log import logger
from opsbot.markup import dingtalk as md
from opsbot.markup import link_target
from opsbot.message import Reply
from opsbot.peers import PeerNotConfigured, PeerRefused, PeerUnavailable
from opsbot.promotion.records import Release
from opsbot.promotion.registry import FAILED, SUCCEEDED

MAX_COMMITS = 10


def linked(text: str, url: str) -> str:
    target = link_target(url)
    return f"[{text}]({target})" if target else text


def changes(config: Config, release: Release, old_image: str) -> list[str]:
    """The commits between the build that ran (its tag is its commit's start) and the one released, from the
    project's repository through GitLab's compare API; [] when they cannot be told."""
    project = config.projects.get(release.project)
    old_tag = old_image.rsplit(":", 1)[-1] if ":" in old_image.rsplit("/", 1)[-1] else ""
    if project is None or not release.source_commit or len(old_tag) < 7 or release.source_commit.startswith(old_tag):
        return []
    try:
        from opsbot.gitlab.api import client_for  # late: python-gitlab, for the jobs that talk to GitLab

        found = client_for(config).commits_between(project.repo, old_tag, release.source_commit)
    except (PeerRefused, PeerUnavailable, PeerNotConfigured) as exc:
        logger.info("commits between releases not read", extra={"release": release.id, "reason": str(exc)[:200]})
        return []
    lines = []
    for commit in list(reversed(found))[:MAX_COMMITS]:
        short = str(commit.get("id", ""))[:8]
        link = linked(short, commit.get("web_url") or "")
        lines.append(f"  - {link} {md(commit.get('title'), 80)} · {md(commit.get('author_name'), 40)}")
    if len(found) > MAX_COMMITS:
        lines.append(
            t(
                release.language,
                f"  - ……还有 {len(found) - MAX_COMMITS} 个提交",
                f"  - … {len(found) - MAX_COMMITS} more commits",
            )
        )
    return lines


def result(config: Config, release: Release) -> Reply:
    language = release.language
    ok = not release.failed
    deploy = next(
        (
            release.output(n)
            for n in ("merge-merge-request", "git-commit", "git-revert")
            if release.output(n).get("commit")
        ),
        {},
    )
    change = release.output("set-image") or release.output("git-revert")
    old, new = change.get("old") or "-", change.get("new") or f"{release.image}:{release.tag}"
    what = {
        "deploy": t(language, "发布", "Release"),
        "rollback": t(language, "回滚", "Rollback"),
        "revert": t(language, "回滚（revert）", "Rollback (revert)"),
    }[release.action]
    head = f"#{release.build}" if release.build else (release.tag or "")
    icon = "✅" if ok else "❌"
    title = f"{icon} {what} {release.project} → {release.environment} {head}".strip()
    lines = [f"### {title}", ""]
    lines.append(f"- {t(language, '镜像', 'Image')}: `{md(old, 200)}` → `{md(new, 200)}`")
    if release.title:
        build = linked(f"#{release.build}", release.build_link)
        lines.append(f"- {t(language, '构建', 'Build')}: {build} {md(release.title, 100)}")
    commits = changes(config, release, old) if ok or deploy else []
    if commits:
        lines.append(f"- {t(language, '包含的提交', 'Commits')}:")
        lines += commits
    opened = release.output("open-merge-request")
    if opened.get("merge_request"):
        link = linked(f"!{opened['merge_request']}", opened.get("merge_request_url", ""))
        lines.append(f"- {t(language, '合并请求', 'Merge request')}: {link}")
    if deploy.get("commit"):
        lines.append(
            f"- {t(language, '部署提交', 'Deploy commit')}: {linked(deploy['commit'][:8], deploy.get('web_url', ''))}"
        )
    for spec in release.plan:
        if spec["kind"].startswith(("apply-", "verify-")):
            step = release.output(spec["name"])
            label = (
                t(language, "上线", "Rollout")
                if spec["kind"].startswith("apply-")
                else t(language, "验证", "Verification")
            )
            said = step.get("message") or (t(language, "未执行", "not run") if not step else step.get("status", ""))
            mark = {SUCCEEDED: "✔", FAILED: "✖"}.get(step.get("status", ""), "·")
            lines.append(f"- {label}: {mark} {said}")
    if release.failed:
        lines.append(f"- {t(language, '失败', 'Failed')}: {release.failed}")
    rolled_back = release.output("auto-rollback").get("release")
    if rolled_back:
        lines.append(
            t(
                language,
                f"- 已自动回滚：release `{rolled_back}`（opsbot 发起）",
                f"- Rolled back automatically: release `{rolled_back}` (by opsbot)",
            )
        )
    who = md(release.requester.get("name"), 60)
    approvers = ", ".join(md(a, 40) for a in release.approvers)
    lines.append("")
    lines.append(
        t(
            language,
            f"发起人 {who}" + (f"，批准人 {approvers}" if approvers else ""),
            f"Asked by {who}" + (f", approved by {approvers}" if approvers else ""),
        )
        + f" · release `{release.id}`"
    )
    return Reply(
        title=title,
        text="\n".join(lines),
        ok=ok,
        project=release.project,
        detail=(f"release {release.id}: " + ("succeeded" if ok else release.failed))[:200],
    )


def started(release: Release) -> Reply:
    """The act's own answer: what is done so far (the commit, or the merge request waiting for approval)."""
    language = release.language
    if release.failed and not any(
        release.output(n).get("commit") for n in ("git-commit", "git-revert", "open-merge-request")
    ):
        return Reply(
            title=t(language, f"发布 {release.id} 失败", f"release {release.id} failed"),
            ok=False,
            project=release.project,
            text=t(
                language,
                f"### ❌ {release.project} → {release.environment}：{release.failed}",
                f"### ❌ {release.project} → {release.environment}: {release.failed}",
            ),
            detail=release.failed[:200],
        )
    repo = (release.plan[0].get("config") or {}).get("repo", "")
    lines = []
    opened = release.output("open-merge-request")
    commit = next(
        (
            release.output(n)
            for n in ("merge-merge-request", "git-commit", "git-revert")
            if release.output(n).get("commit")
        ),
        {},
    )
    change = release.output("set-image") or release.output("git-revert")
    image = (
        f"`{md(change.get('old') or '-', 200)}` → `{md(change.get('new') or release.image + ':' + release.tag, 200)}`"
    )
    if commit:
        link = linked(commit["commit"][:8], commit.get("web_url", ""))
        lines.append(
            t(language, f"### 📝 已提交 {link} 到 {md(repo, 100)}", f"### 📝 Committed {link} to {md(repo, 100)}")
        )
    elif opened.get("merge_request"):
        link = linked("!" + str(opened["merge_request"]), opened.get("merge_request_url", ""))
        lines.append(
            t(
                language,
                f"### 📝 已在 {md(repo, 100)} 开启合并请求 {link}",
                f"### 📝 Opened merge request {link} in {md(repo, 100)}",
            )
        )
    elif release.output("git-commit").get("unchanged"):
        lines.append(
            t(
                language,
                "### 📝 部署文件已是这个镜像，无需提交",
                "### 📝 The deploy file already pins this image: nothing to commit",
            )
        )
    lines.append("")
    lines.append(f"{release.project} → **{release.environment}**: {image}")
    apply = next((s for s in release.plan if s["kind"].startswith("apply-")), None)
    if not release.approved:
        lines.append(t(language, "批准后 opsbot 合并它并上线。", "opsbot merges it and rolls it out once approved."))
    elif apply is not None:
        lines.append(
            t(
                language,
                f"正在上线（{apply['kind']}），结果会发到本群。",
                f"Rolling out ({apply['kind']}); the group hears the result.",
            )
        )
    return Reply(
        title=t(language, f"发布 {release.id}", f"release {release.id}"),
        text="\n".join(lines),
        project=release.project,
        detail=f"release {release.id}: "
        + (commit.get("commit", "")[:8] or ("!" + str(opened.get("merge_request", "")))),
    )
