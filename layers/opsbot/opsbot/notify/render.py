"""Cards for finished builds: one message per build (opsbot.message, rendered by each of the project's robots in
its own dialect), and its digest line.

Chinese by default, English per project. The author's @-mention stands in the author line (a mention mark), where
each channel writes its own handle: DingTalk highlights an @ only when it is in the text as well as in `at`.
"""

from __future__ import annotations

from opsbot.config.model import Person, Project
from opsbot.drone.builds import build_branch, commit_title
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.markup import link_target
from opsbot.message import Button, Mentions, Message

STATUS_TEXT = {
    "zh": {
        "success": "构建成功",
        "failure": "构建失败",
        "error": "构建出错",
        "killed": "构建已取消",
        "fixed": "构建已修复",
    },
    "en": {
        "success": "Build succeeded",
        "failure": "Build failed",
        "error": "Build errored",
        "killed": "Build killed",
        "fixed": "Build fixed",
    },
}
ICON = {"success": "✅", "fixed": "🎉", "failure": "❌", "error": "⚠️", "killed": "⛔", "promote": "🚀", "rollback": "↩️"}
LABELS = {
    "zh": {
        "branch": "分支",
        "commit": "提交",
        "author": "作者",
        "duration": "耗时",
        "failed_step": "失败步骤",
        "deployer": "发布人",
        "scan": "镜像扫描",
        "scan_failed": "❌ 未通过（{where}）",
        "scan_passed": "✅ 通过",
        "view": "查看构建",
        "promoted": "已发布到 {env}",
        "rolled_back": "已回滚 {env}",
        "deploy_failed": "发布到 {env} 失败",
        "rollback_failed": "回滚 {env} 失败",
        "release": "发布到 {env}",
    },
    "en": {
        "branch": "Branch",
        "commit": "Commit",
        "author": "Author",
        "duration": "Duration",
        "failed_step": "Failed step",
        "deployer": "Deployed by",
        "view": "View build",
        "promoted": "Deployed to {env}",
        "scan": "Image scan",
        "scan_failed": "❌ failed ({where})",
        "scan_passed": "✅ passed",
        "rolled_back": "Rolled back {env}",
        "deploy_failed": "Deploy to {env} failed",
        "rollback_failed": "Rollback of {env} failed",
        "release": "Deploy to {env}",
    },
}


def _duration(build: dict, language: str) -> str:
    seconds = max(0, int(build.get("finished") or 0) - int(build.get("started") or 0))
    minutes, seconds = divmod(seconds, 60)
    if minutes:
        return t(language, f"{minutes}分{seconds}秒", f"{minutes}m {seconds}s")
    return t(language, f"{seconds}秒", f"{seconds}s")


def failed_step(build: dict) -> str:
    """`stage › step` of the first failed step, or the failed stage alone."""
    for stage in build.get("stages") or []:
        if stage.get("status") not in ("failure", "error"):
            continue
        for step in stage.get("steps") or []:
            if step.get("status") in ("failure", "error"):
                return f"{md(stage.get('name'), 60)} › {md(step.get('name'), 60)}"
        return md(stage.get("name"), 60)
    return ""


def build_url(repo: dict, build: dict, system: dict) -> str:
    return link_target(f"{(system.get('link') or '').rstrip('/')}/{repo['slug']}/{build['number']}")


def commit_url(repo: dict, build: dict) -> str:
    sha = build.get("after") or ""
    if repo.get("link") and sha:
        return link_target(f"{repo['link'].rstrip('/')}/-/commit/{sha}")
    return link_target(build.get("link") or "")


def headline(reason: str, build: dict, language: str) -> str:
    labels = LABELS[language]
    env = md(build.get("deploy_to") or "", 40)
    ok = build.get("status") == "success"
    if reason == "promote":
        return labels["promoted" if ok else "deploy_failed"].format(env=env)
    if reason == "rollback":
        return labels["rolled_back" if ok else "rollback_failed"].format(env=env)
    return STATUS_TEXT[language]["fixed" if reason == "fixed" else build.get("status", "failure")]


def severity(reason: str, build: dict) -> str:
    if build.get("status") != "success":
        return "warning" if build.get("status") == "killed" else "failure"
    return "warning" if reason == "rollback" else "success"


def icon(reason: str, build: dict) -> str:
    if reason in ("promote", "rollback") and build.get("status") != "success":
        return ICON["failure"]
    return ICON.get(reason if reason in ("fixed", "promote", "rollback") else build.get("status"), "ℹ️")


def scan_text(scan, language: str) -> str:
    """`❌ failed (default › scan) · CRITICAL 1 · HIGH 2`: the verdict of a ScanResult (notify.scan) and its counts."""
    labels = LABELS[language]
    verdict = labels["scan_failed"].format(where=md(scan.where, 120)) if scan.failed else labels["scan_passed"]
    return " · ".join(filter(None, [verdict, scan.counts_text()]))


REQUESTED_BY = "OPSBOT_REQUESTED_BY"  # the parameter opsbot's promotes and rollbacks carry (release/deploy.py)


def deployer_name(build: dict, sender: Person | None, language: str) -> str:
    """Who deployed, by name: the person opsbot deployed for (its requester, named in the build's parameters), else
    the config's person for Drone's sender, else the sender's login. Escaped for the card."""
    requested = (build.get("params") or {}).get(REQUESTED_BY)
    if isinstance(requested, str) and requested.strip():
        return t(language, f"{md(requested, 60)}（经 opsbot）", f"{md(requested, 60)} (via opsbot)")
    return md(sender.name if sender else build.get("sender") or "", 60)


def build_message(
    project: Project,
    repo: dict,
    build: dict,
    system: dict,
    reason: str,
    author: Person | None,
    release_links: list[tuple[str, str]] | None = None,
    scan=None,
    deployer: str = "",
) -> Message:
    """The card for one build. `release_links` are (environment, URL) pairs: a "发布到 <env>" button each (DingTalk
    makes the card an actionCard; Slack, with its app, a button that releases as the presser). `scan` (a
    notify.scan.ScanResult) adds the image scan's verdict and counts; `deployer` (deployer_name) who deployed a
    promote or rollback."""
    language = project.language
    labels = LABELS[language]
    mentions = Mentions.of(author)
    head = f"{icon(reason, build)} {headline(reason, build, language)} · {project.name} #{build['number']}"
    author_name = md(build.get("author_name") or build.get("author_login"), 60)
    lines = [
        f"### {head}",
        f"**{labels['branch']}**: {md(build_branch(build), 100)}",
        f"**{labels['commit']}**: [{md(commit_title(build))}]({commit_url(repo, build)})",
        f"**{labels['author']}**: {author_name}{mentions.mark()}",
        f"**{labels['duration']}**: {_duration(build, language)}",
    ]
    deployer = deployer or md(build.get("sender") or "", 60)  # `deployer_name`'s, where the caller knows people
    if reason in ("promote", "rollback") and deployer:
        lines.insert(4, f"**{labels['deployer']}**: {deployer}")
    if step := failed_step(build):
        lines.append(f"**{labels['failed_step']}**: {step}")
    if scan is not None:
        lines.append(f"**{labels['scan']}**: {scan_text(scan, language)}")
    digest_line = (
        f"- {icon(reason, build)} **{project.name}** "
        f"[#{build['number']}]({build_url(repo, build, system)}) {md(build_branch(build), 100)} · "
        f"{headline(reason, build, language)}"
        + (f" · {step}" if step else "")
        + (f" · {labels['scan']}: {scan_text(scan, language)}" if scan is not None else "")
        + mentions.mark()
    )
    return Message(
        title=head,
        lines=[part for line in lines for part in ("", line)][1:],  # a paragraph each
        severity=severity(reason, build),
        links=[Button(labels["view"], build_url(repo, build, system))],
        # The link for every channel; where the channel's app says who pressed (Slack), the press itself releases.
        buttons=[
            Button(labels["release"].format(env=env), url, f"deploy {project.name} {build['number']} to {env}")
            for env, url in release_links or []
        ],
        mentions=mentions,
        language=language,
        digest_line=digest_line,
    )
