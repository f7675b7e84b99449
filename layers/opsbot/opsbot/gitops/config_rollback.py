"""`config rollback <version>`: an earlier config back, by a commit in the config repo, so that Git stays the truth.

The config repo is where the config lives and is reviewed; the stored config is what its branch's last valid push
made. So a rollback never writes the store itself: it commits, on the config branch, the files of the version
asked for (`POST …/repository/commits`, as the bot user), and that commit's push is synced like any other (Push
Hook → config_sync: validated, stored with its sha as version, told to the ops group). Only a version the branch
holds (reachable from its head: `GET …/repository/commits/:sha/refs`) can come back, read from GitLab at that
commit, never from the store, and only if it validates under today's rules.

Who may (authz/core.py, kind CONFIG): the verb's roles (`admin` by default), then `permissions."config rollback"
.approvals` approvals from others, and a rollback that changes `people` or `permissions` always needs at least one
other admin's approval, so that no one restores a version that made them (or anyone) more than the reviewed config
says. The plan is bound to the branch head it was made at: if the branch moves before the commit, nothing is
committed and the requester asks again. A commit whose answer was lost is looked up before it is made again: a
head that already holds the version's files is the rollback done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.authz import core as authz
from opsbot.channels import buttons
from opsbot.config import store
from opsbot.config.model import GLOBAL_FILE, Config, ConfigError
from opsbot.config.yaml_source import parse_files
from opsbot.gitlab.api import client_for
from opsbot.gitops.config_sync import _in_repo, read_config
from opsbot.gitops.verbs import CONFIG_EVENT, RIGHTS, ROLLBACK, SETTINGS, RollbackRefused
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import approvals
from opsbot.state import effects, keys

RIGHTS_KEYS = ("people", "permissions")  # the parts of opsbot.yaml that say who may do what


@dataclass(frozen=True)
class Plan:
    version: str  # the commit whose config comes back
    head: str  # the config branch's head the plan was made on: the rollback commit goes only on it
    changes: tuple[str, ...]  # what differs: opsbot.yaml's top-level keys, project files
    files: dict[str, str]  # the version's config files (relative path -> text)
    actions: tuple[dict, ...]  # the commit's actions that make the branch hold exactly those files

    @property
    def changes_rights(self) -> bool:
        return any(change in RIGHTS_KEYS for change in self.changes)

    def target(self, requester: str = "") -> authz.Target:
        return authz.Target(scope=f"config {self.version[:8]}", requester=requester, changes_rights=self.changes_rights)


def _refused(language: str, zh: str, en: str) -> RollbackRefused:
    return RollbackRefused(t(language, zh, en))


def _differences(then: dict[str, str], now: dict[str, str]) -> tuple[str, ...]:
    """What differs between two sets of config files: opsbot.yaml's sections by key, project files by name."""
    documents_then, _ = parse_files(then)
    documents_now, _ = parse_files(now)
    data_then = {d.name: d.data for d in documents_then}
    data_now = {d.name: d.data for d in documents_now}
    changed: list[str] = []
    root_then, root_now = data_then.get(GLOBAL_FILE), data_now.get(GLOBAL_FILE)
    root_then = root_then if isinstance(root_then, dict) else {}
    root_now = root_now if isinstance(root_now, dict) else {}
    for key in sorted(set(root_then) | set(root_now), key=str):
        if root_then.get(key) != root_now.get(key):
            changed.append(str(key))
    for name in sorted(set(data_then) | set(data_now)):
        if name != GLOBAL_FILE and data_then.get(name) != data_now.get(name):
            changed.append(name)
    return tuple(changed)


def plan(config: Config, wanted: str, language: str) -> Plan:
    """What rolling back to `wanted` (a stored version's sha, or its first characters) would commit; RollbackRefused
    when it cannot be done."""
    gitlab = config.gitlab
    if gitlab is None or not gitlab.config_repo:
        raise _refused(
            language,
            "配置回滚通过配置仓库完成：请先设置 gitlab.config_repo。",
            "config rollback works through the config repo: set gitlab.config_repo first.",
        )
    try:
        version, _documents = store.find_version(wanted)
    except store.VersionNotFound:
        shown = md(wanted, 40)
        raise _refused(
            language,
            f"没有以 `{shown}` 开头的配置版本：`config history` 列出已保存的版本。",
            f"no saved config version starts with `{shown}`: `config history` lists them.",
        ) from None
    except LookupError as exc:  # more than one version fits: the message lists them
        raise RollbackRefused(str(exc)) from None
    client = client_for(config)
    repo, branch = gitlab.config_repo, gitlab.config_branch
    if branch not in client.branches_containing(repo, version):
        raise _refused(
            language,
            f"版本 `{version[:8]}` 不在配置仓库 {md(repo)} 的 {md(branch)} 分支上，不能回滚到它。",
            f"version `{version[:8]}` is not on the branch {md(branch)} of the config repo {md(repo)}: "
            "only a version the branch holds can come back.",
        )
    head = client.branch_head(repo, branch) or ""
    files = read_config(client, config, version)
    documents, problems = parse_files(files)
    try:
        if problems:
            raise ConfigError(problems)
        store.check(documents, version)
    except ConfigError as exc:  # valid then, but not under today's rules (a host no longer pinned, say)
        lines = "\n".join(f"- {md(line, 300)}" for line in exc.lines()[:10])
        raise _refused(
            language,
            f"版本 `{version[:8]}` 现在不能通过校验：\n\n{lines}",
            f"version `{version[:8]}` does not validate now:\n\n{lines}",
        ) from None
    now = read_config(client, config, head)
    changes = _differences(files, now)
    actions = [
        {"action": "update" if name in now else "create", "file_path": _in_repo(config, name), "content": text}
        for name, text in sorted(files.items())
        if now.get(name) != text
    ] + [{"action": "delete", "file_path": _in_repo(config, name)} for name in sorted(set(now) - set(files))]
    return Plan(version, head, changes, files, tuple(actions))


def already(planned: Plan, config: Config, language: str) -> Reply:
    branch = config.gitlab.config_branch
    return Reply(
        title=t(language, "配置回滚", "config rollback"),
        detail=f"{branch} already holds the config of {planned.version[:8]}",
        text=t(
            language,
            f"配置分支 {md(branch)} 已经是版本 `{planned.version[:8]}` 的配置了，不需要回滚。",
            f"The config branch {md(branch)} already holds version `{planned.version[:8]}`'s config: nothing to roll "
            "back.",
        ),
    )


def execute(
    config: Config, planned: Plan, by: str, approved_by: tuple[str, ...], language: str, base: str = ""
) -> Reply:
    """The rollback commit on the config branch, if the branch is still at `base` (the head the request was made
    on; the plan's by default); its push is synced as every push is. Looked up before it is made: a branch whose
    head already holds the version's files is this rollback done (a commit whose answer was lost, say)."""
    gitlab = config.gitlab
    client = client_for(config)
    repo, branch = gitlab.config_repo, gitlab.config_branch
    head = client.branch_head(repo, branch) or ""
    if head != (base or planned.head) or not planned.actions:
        if read_config(client, config, head) == planned.files:
            return _done(planned, head, branch, language, approved_by)
        raise _refused(
            language,
            f"配置分支 {md(branch)} 在请求之后有了新的提交（现在是 `{head[:8]}`），没有回滚；请重新发起。",
            f"the config branch {md(branch)} moved since the request (now at `{head[:8]}`): nothing was rolled "
            "back; ask again.",
        )
    approvals_line = f"Approved by {', '.join(approved_by)}.\n" if approved_by else ""
    message = (
        f"Roll back opsbot config to {planned.version[:12]}\n\n"
        f"Requested by {by} in chat (config rollback {planned.version[:12]}).\n{approvals_line}"
        f"Restores: {', '.join(planned.changes)}.\n"
    )
    commit = client.commit(repo, branch, message, list(planned.actions))
    return _done(planned, commit, branch, language, approved_by)


def _done(planned: Plan, commit: str, branch: str, language: str, approved_by: tuple[str, ...]) -> Reply:
    changes = ", ".join(f"`{md(c, 80)}`" for c in planned.changes)
    approved = t(language, f"（{md(', '.join(approved_by))} 批准）", f" (approved by {md(', '.join(approved_by))})")
    return Reply(
        title=t(language, "配置回滚", "config rollback"),
        detail=f"committed {commit[:8]} on {branch}: config of {planned.version[:8]}",
        text=t(
            language,
            f"### ↩️ 已在配置仓库的 {md(branch)} 分支提交 `{commit[:8]}`，恢复版本 `{planned.version[:8]}` 的配置"
            f"{approved if approved_by else ''}。\n\n改动：{changes}。这次推送会像其他推送一样同步，结果发到运维群。",
            f"### ↩️ Committed `{commit[:8]}` on the config repo's {md(branch)}, restoring version "
            f"`{planned.version[:8]}`{approved if approved_by else ''}.\n\nChanges: {changes}. Its push is synced as "
            "every push is; the ops group hears the result.",
        ),
    )


def request_approval(
    config: Config, planned: Plan, request_id: str, actor, needed: int, language: str
) -> approvals.ApprovalRequest:
    """An approval request bound to the plan: its version (`commit`), the head it goes on (`branch`), and whether
    it changes who may do what (`target`)."""
    return approvals.create(
        approvals.ApprovalRequest(
            id=request_id,
            action=ROLLBACK.name,
            project="",
            target=RIGHTS if planned.changes_rights else SETTINGS,
            build=0,
            commit=planned.version,
            branch=planned.head,
            requester=actor.id,
            requester_name=actor.name,
            needed=needed,
            deadline=int(time.time()) + config.approval_hours * 3600,
            event=CONFIG_EVENT,
        )
    )


def approval_opened(planned: Plan, request: approvals.ApprovalRequest, language: str) -> Reply:
    hours = max(1, round((request.deadline - time.time()) / 3600))
    who = (
        t(language, "另一位 admin", "another admin")
        if planned.changes_rights
        else t(language, "其他同事", "someone else")
    )
    changes = ", ".join(f"`{md(c, 80)}`" for c in planned.changes)
    return Reply(
        title=t(language, f"审批 {request.id}", f"approval {request.id}"),
        detail=f"approval {request.id} opened: config rollback to {planned.version[:8]}",
        buttons=buttons.approval_buttons(request.id, language),
        text=t(
            language,
            f"### 🔐 审批请求 `{request.id}`\n\n{md(request.requester_name)} 请求把配置回滚到 `{planned.version[:8]}`"
            f"（改动：{changes}）。\n\n需要 {request.needed} 位{who}批准：`@opsbot approve {request.id}`，"
            f"或拒绝：`@opsbot reject {request.id}`（{hours} 小时内有效）",
            f"### 🔐 Approval request `{request.id}`\n\n{md(request.requester_name)} asks to roll the config back to "
            f"`{planned.version[:8]}` (changes: {changes}).\n\nNeeds {request.needed} approval(s) from {who}: "
            f"`@opsbot approve {request.id}`, or `@opsbot reject {request.id}` (valid for {hours} h)",
        ),
    )


def execute_approved(config: Config, request: approvals.ApprovalRequest, language: str) -> Reply:
    """The rollback an approval completed: exactly the version, on exactly the head, that were approved; once."""

    def run() -> dict:
        planned = plan(config, request.commit, language)
        if planned.head == request.branch and (RIGHTS if planned.changes_rights else SETTINGS) != request.target:
            raise _refused(language, "请求的内容已变，没有回滚。", "what the request changes is not what was approved.")
        approved_by = tuple(request.approvers)
        return execute(config, planned, request.requester_name, approved_by, language, base=request.branch).as_dict()

    return Reply.from_dict(effects.once(keys.APPROVED + request.id, run, permanent=True))
