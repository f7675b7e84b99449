"""Release governance from chat: lock / 锁定, unlock / 解锁, freeze / 封网, override / 解除封网 and report / 报告.

A lock and a freeze are rules of the authorization core (authz/core.py `held`, authz/locks.py, authz/freezes.py):
these commands only take and release locks, list windows, ask for an override and read the report; every act
elsewhere (chat, release links, merge-request commands, ops) obeys them through the core, with no code of its own.

- `lock <project> <env> [for 2h] <reason>`: the sender holds the environment; everyone else's acts there are refused.
- `unlock <project> <env>`: the holder's own, or an admin's (the holder is @-mentioned and told who unlocked it).
- `override <project> <env> <reason>`: an admin asks to release through the open freeze window; an approval request
  opens (approvals.py), which a second admin must approve (never the one who asked); once approved, releases into
  that environment pass the window until it closes, each audited with the override.
"""

from __future__ import annotations

import re
import time

from opsbot.authz import core as authz
from opsbot.authz import freezes as freeze_windows
from opsbot.authz import locks
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.config.governance import DAYS
from opsbot.markup import dingtalk as md
from opsbot.message import Mentions, Reply
from opsbot.release import approvals
from opsbot.release.overrides import GOVERNANCE_EVENT, OVERRIDE

LOCK = authz.Verb("lock", ("deployer", "ops"), authz.ACT)
UNLOCK = authz.Verb("unlock", ("deployer", "ops"), authz.ACT)
# Another person's lock: admins only. Not a command name, so `permissions:` cannot widen it.
UNLOCK_ANOTHERS = authz.Verb("unlock another's lock", (authz.ADMIN,), authz.ACT)
# A read that only the worker may make (the releases table), for people in the config, as `releases` is.
REPORT = authz.Verb("report", ("developer",), authz.READ)
MAX_LOCK_HOURS = 7 * 24
_DURATION = re.compile(r"^(\d{1,4})(m|min|h|d|分钟|小时|天)$")
_FOR = ("for", "持续", "锁")


def _duration_seconds(word: str) -> int | None:
    match = _DURATION.match(word.lower())
    if not match:
        return None
    unit = {"m": 60, "min": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": 86400, "天": 86400}[match.group(2)]
    return int(match.group(1)) * unit


def _parse_lock(words: list[str]) -> dict:
    if len(words) < 2:
        raise UsageError("missing <project> <env>")
    found: dict = {"project": words[0], "env": words[1]}
    rest, reason = words[2:], []
    index = 0
    while index < len(rest):
        word = rest[index]
        if word.lower() in _FOR and index + 1 < len(rest) and _duration_seconds(rest[index + 1]) is not None:
            found["seconds"] = _duration_seconds(rest[index + 1])
            index += 2
            continue
        reason.append(word)
        index += 1
    if not reason:
        raise UsageError("missing <reason>: say why, e.g. `lock shop-api production investigating 502s`")
    found["reason"] = " ".join(reason)[:200]
    if found.get("seconds", 0) > MAX_LOCK_HOURS * 3600:
        raise UsageError(f"a lock lasts at most {MAX_LOCK_HOURS // 24} days")
    return found


def _parse_override(words: list[str]) -> dict:
    if len(words) < 3:
        raise UsageError("missing <project> <env> <reason>")
    return {"project": words[0], "env": words[1], "reason": " ".join(words[2:])[:200]}


def _environment(request: ChatRequest):
    project = request.project()
    env = str(request.arguments.get("env") or "")
    if env not in project.environments:
        known = ", ".join(project.environments) or "-"
        raise UsageError(
            request.t(
                f"项目 {project.name} 没有环境 `{md(env, 40)}`。可用环境：{known}",
                f"project {project.name} has no environment `{md(env, 40)}`. Environments: {known}",
            )
        )
    return project, env


@command(
    "lock",
    area="release",
    aliases=("锁定",),
    acts=True,
    verb=LOCK,
    parse=_parse_lock,
    environment_argument="env",
    arguments=(Argument("project"), Argument("env"), Argument("reason")),
    usage="lock <project> <env> [for 2h] <reason>",
    zh="锁定一个环境：锁定期间只有你能发布、回滚、重启或变更它（可加 for 2h 自动到期）",
    en="Hold an environment: while you hold it, only you may release, roll back, restart or change it "
    "(`for 2h` makes it expire)",
    examples=("lock shop-api production for 2h investigating 502s", "锁定 shop-api production 排查故障"),
)
def lock(request: ChatRequest) -> Reply:
    project, env = _environment(request)
    request.authorize(LOCK, authz.Target(project.name, env))
    now = int(time.time())
    seconds = int(request.arguments.get("seconds") or 0)
    wanted = locks.Lock(
        project.name, env, request.sender_id, request.sender, str(request.arguments["reason"]), now,
        now + seconds if seconds else 0,
    )  # fmt: skip
    try:
        held = locks.take(wanted)
    except locks.LockHeld as exc:
        reason = authz.lock_text(exc.lock, request.language)
        request.record.reason = reason[:500]
        return Reply(
            title=request.t("锁定失败", "lock refused"),
            ok=False,
            project=project.name,
            text=f"⛔ {reason}",
            detail=f"lock refused: held by {exc.lock.holder_name}",
        )
    return Reply(
        title=request.t(f"已锁定 {project.name} {env}", f"locked {project.name} {env}"),
        project=project.name,
        text="🔒 "
        + authz.lock_text(held, request.language)
        + request.t(
            f"\n\n其他人的发布、回滚和变更会被拒绝，直到 `unlock {project.name} {env}`。",
            f"\n\nEveryone else's releases, rollbacks and changes there are refused until "
            f"`unlock {project.name} {env}`.",
        ),
        detail=f"locked {project.name}/{env}" + (f" for {seconds}s" if seconds else ""),
    )


@command(
    "unlock",
    area="release",
    aliases=("解锁",),
    acts=True,
    verb=UNLOCK,
    environment_argument="env",
    arguments=(Argument("project"), Argument("env")),
    zh="解除锁定；解除别人的锁需要管理员，并会通知锁的持有人",
    en="Release a lock; another person's lock needs an admin, and its holder is told",
    examples=("unlock shop-api production", "解锁 shop-api production"),
)
def unlock(request: ChatRequest) -> Reply:
    project, env = _environment(request)
    current = locks.get(project.name, env)
    if current is None:
        return Reply(
            title=request.t("没有锁", "no lock"),
            project=project.name,
            text=request.t(f"{project.name}/{env} 没有被锁定。", f"{project.name}/{env} is not locked."),
            detail=f"{project.name}/{env} was not locked",
        )
    others = current.holder != request.sender_id
    if others:
        request.authorize(UNLOCK_ANOTHERS, authz.Target(project.name, env))
    if not locks.release(current):
        return Reply(
            title=request.t("锁已变化", "lock changed"),
            ok=False,
            project=project.name,
            text=request.t(
                f"{project.name}/{env} 的锁刚刚被改动，请用 `status {project.name}` 再看一下。",
                f"The lock of {project.name}/{env} changed just now; look again with `status {project.name}`.",
            ),
            detail="lock changed while unlocking",
        )
    told = ""
    mentions = Mentions()
    if others:
        holder = request.config.person(current.holder)
        mentions = Mentions.of(holder)
        told = request.t(
            f"\n\n{md(current.holder_name, 64)}：你的锁（{md(current.reason, 200)}）已被管理员 "
            f"{md(request.sender, 64)} 解除。",
            f"\n\n{md(current.holder_name, 64)}: your lock ({md(current.reason, 200)}) was released by the admin "
            f"{md(request.sender, 64)}.",
        )
    return Reply(
        title=request.t(f"已解锁 {project.name} {env}", f"unlocked {project.name} {env}"),
        project=project.name,
        text=request.t(f"🔓 {project.name}/{env} 已解锁。", f"🔓 {project.name}/{env} is unlocked.") + told,
        mentions=mentions,
        detail=f"unlocked {project.name}/{env}" + (f" (held by {current.holder_name})" if others else ""),
    )


def _window_line(request: ChatRequest, window: freeze_windows.Window, now_open: bool) -> str:
    freeze = window.freeze
    where = freeze.scope if freeze.scope != "global" else request.t("全局", "global")
    envs = ", ".join(freeze.environments) or request.t("所有环境", "every environment")
    weekly = request.t(f"每周 {freeze_windows.weekly_text(freeze)}", f"weekly {freeze_windows.weekly_text(freeze)}")
    mark = "🧊" if now_open else "🗓"
    return (
        f"- {mark} **{md(freeze.name, 64)}** {window.describe()} · {md(where, 80)} · {md(envs, 80)}"
        + (f" · {weekly}" if freeze.weekly else "")
        + f" · {md(freeze.reason, 200)}"
    )


def _parse_freeze(words: list[str]) -> dict:
    if len(words) > 2:
        raise UsageError(f"too many arguments: {md(' '.join(words[2:]), 80)}")
    return dict(zip(("project", "env"), words, strict=False))


@command(
    "freeze",
    area="release",
    aliases=("封网",),
    parse=_parse_freeze,
    arguments=(Argument("project", required=False), Argument("env", required=False)),
    zh="列出正在生效和即将开始的封网窗口（可指定项目、环境）",
    en="List the change freezes in force now and the next ones (of a project, an environment)",
    examples=("freeze", "freeze shop-api production", "封网 shop-api"),
)
def freeze(request: ChatRequest) -> Reply:
    config = request.config
    if request.arguments.get("project"):
        project = request.project()
        envs = [str(request.arguments["env"])] if request.arguments.get("env") else list(project.environments)
        pairs = [(project.name, env) for env in envs]
    else:
        pairs = [(p.name, env) for p in config.projects.values() for env in p.environments]
    now = freeze_windows.utc(time.time())
    seen: set[str] = set()
    current, upcoming = [], []
    for project_name, env in pairs:
        freezes = freeze_windows.freezes_for(config, project_name, env)
        for window in freeze_windows.open_windows(freezes, now):
            if window.key not in seen:
                seen.add(window.key)
                current.append(window)
        for window in freeze_windows.next_windows(freezes, now):
            if window.key not in seen:
                seen.add(window.key)
                upcoming.append(window)
    upcoming.sort(key=lambda w: w.start)
    lines = [request.t("### 🧊 封网窗口", "### 🧊 Change freezes"), ""]
    lines.append(request.t("**正在生效**", "**In force now**"))
    lines += [_window_line(request, w, True) for w in current] or [request.t("- 无", "- none")]
    lines += ["", request.t("**即将开始**", "**Next**")]
    lines += [_window_line(request, w, False) for w in upcoming[:10]] or [request.t("- 无", "- none")]
    lines += [
        "",
        request.t(
            f"时区默认 {config.governance.timezone}；星期：{', '.join(DAYS)}。封网期间发布需管理员 `override`，"
            "并由另一位管理员批准。",
            f"Times in each window's zone (default {config.governance.timezone}). During a freeze a release needs an "
            "admin's `override`, approved by a second admin.",
        ),
    ]
    return Reply(title=request.t("封网窗口", "change freezes"), text="\n".join(lines), detail="freeze windows listed")


@command(
    "override",
    area="release",
    aliases=("解除封网",),
    acts=True,
    verb=OVERRIDE,
    parse=_parse_override,
    environment_argument="env",
    arguments=(Argument("project"), Argument("env"), Argument("reason")),
    usage="override <project> <env> <reason>",
    zh="管理员申请在封网期间发布（需另一位管理员批准，直到本次封网结束）",
    en="An admin asks to release through the freeze in force (a second admin approves; it lasts until the window "
    "closes)",
    examples=("override shop-api production hotfix for the payment outage", "解除封网 shop-api production 紧急修复"),
)
def override(request: ChatRequest) -> Reply:
    project, env = _environment(request)
    request.authorize(OVERRIDE, authz.Target(project.name, env))
    freezes = freeze_windows.freezes_for(request.config, project.name, env)
    windows = freeze_windows.open_windows(freezes, freeze_windows.utc(time.time()))
    if not windows:
        return Reply(
            title=request.t("没有封网", "no freeze"),
            project=project.name,
            text=request.t(
                f"{project.name}/{env} 现在没有封网，不需要 override。", f"{project.name}/{env} is not frozen now."
            ),
            detail="override: no freeze in force",
        )
    window = min(windows, key=lambda w: w.end)  # one override per window; the one closing first is asked first
    reason = str(request.arguments["reason"])
    opened = approvals.create(
        approvals.ApprovalRequest(
            id=request.job_id[:8],  # as a release's: short enough to type
            action="override",
            project=project.name,
            target=env,
            build=0,
            commit=window.key,  # the approval is bound to this window of this environment, and nothing else
            branch=reason[:200],
            requester=request.sender_id,
            requester_name=request.sender,
            needed=1,
            deadline=min(int(window.end.timestamp()), int(time.time()) + request.config.approval_hours * 3600),
            event=GOVERNANCE_EVENT,
            via="chat",
        )
    )
    return Reply(
        title=request.t(f"封网 override 请求 {opened.id}", f"freeze override request {opened.id}"),
        project=project.name,
        text=request.t(
            f"### 🔐 封网 override 请求 `{opened.id}`\n\n{md(request.sender, 64)} 请求在封网"
            f"「{md(window.freeze.name, 64)}」（{window.describe()}）期间发布 **{project.name}** 的 **{env}**："
            f"{md(reason, 200)}\n\n需要另一位管理员批准：`@opsbot approve {opened.id}`，"
            f"或拒绝：`@opsbot reject {opened.id}`",
            f"### 🔐 Freeze override request `{opened.id}`\n\n{md(request.sender, 64)} asks to release "
            f"**{project.name}** to **{env}** during the freeze '{md(window.freeze.name, 64)}' "
            f"({window.describe()}): {md(reason, 200)}"
            f"\n\nA second admin approves: `@opsbot approve {opened.id}`, or `@opsbot reject {opened.id}`",
        ),
        detail=f"override {opened.id} asked for {project.name}/{env} ({window.freeze.name})",
    )


@command(
    "report",
    area="release",
    aliases=("报告", "周报"),
    acts=True,  # queued as `releases` is: the releases table is the worker's to read
    verb=REPORT,
    arguments=(Argument("project"),),
    zh="交付报告（DORA 四项指标，最近 7 天，与前 4 周对比）",
    en="The delivery report (DORA's four measures over the last 7 days, against the 4 weeks before)",
    examples=("report shop-api", "报告 shop-api"),
)
def report(request: ChatRequest) -> Reply:
    from opsbot.governance import report as weekly  # late: the report's reads, in the worker only

    return weekly.on_demand(request.config, request.project())


def status_lines(request: ChatRequest, project) -> list[str]:
    """For `status`: who holds which environment, and the freezes in force."""
    lines = []
    for held in locks.held_in(project.name, project.environments).values():
        lines.append("- 🔒 " + authz.lock_text(held, request.language))
    now = freeze_windows.utc(time.time())
    for env in project.environments:
        for window in freeze_windows.open_windows(freeze_windows.freezes_for(request.config, project.name, env), now):
            lines.append("- 🧊 " + authz.freeze_text(project.name, env, window, request.language))
    return ([""] + lines) if lines else []
