"""The one authorization core: every act (a chat command, a release link, a merge-request command, `/retest`, an
ops command) is decided here, allow / deny / needs approval, from the config's rules, and the decision is audited.

Inputs: the actor (an identified person, authz.actors), the verb (what a registry declares about it), the target
(project, environment, the build and its event, the merge request, an approval request) and the arguments.
The rules are data in the config:

- who: `permissions.<verb>.roles`, stricter `permissions.<verb>.environments.<env>`, and for merge-request
  commands a project's `review.roles`; otherwise the verb's default role. `admin` may do everything. Someone
  who is not in `people` may only read (and comment on merge requests, where GitLab decides who may);
- which builds: an environment takes only successful builds of its branch whose event it lists
  (`environments.<env>.events`, default push), never a deployment itself; re-running (`restart`, `/retest`)
  never touches a promote or rollback build, and `permissions.<verb>.events` can narrow it further;
- approvals: `environments.<env>.approvals` people other than the requester, each allowed the act themselves;
- the config itself (`config rollback`): `permissions.<verb>.approvals` from others, and a change to `people` or
  `permissions` (who may do what) always needs at least one other person's, who must be an admin: no one raises
  their own rights, nor anyone else's, alone;
- holds (release governance): every act that changes an environment (a release, a rollback, a re-run of a
  deployment, an ops change of its workloads) is refused while someone else holds its lock (authz/locks.py), and
  while a freeze window holds it (authz/freezes.py), unless an admin's override of that window was approved by a
  second admin. Deny beats allow: no role, not even admin, and no approval lets an act through a hold.

`decide` is pure (the decision table is unit tested; the holds are given to it); `authorize` reads the holds
(the locks and overrides are state, the windows come from the config and the clock), decides and writes the audit
record.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass

from opsbot import audit
from opsbot.authz import freezes as freeze_windows
from opsbot.authz import locks
from opsbot.authz.actors import FEISHU, GITLAB, SLACK, Actor
from opsbot.config.model import DEPLOYMENT_EVENTS, Config, Environment, Project
from opsbot.drone.builds import build_branch
from opsbot.i18n import t
from opsbot.markup import dingtalk as md

ADMIN = "admin"  # may do everything; the one place this role is named
ALLOW, DENY, NEEDS_APPROVAL = "allow", "deny", "needs approval"

# What kind of rules a verb's target is held to, besides who may use it.
READ = "read"  # only reads: anyone, even someone not in people, unless a role is required
ACT = "act"  # changes something: needs an identified person in people (or an open merge-request command)
DEPLOY = "deploy"  # deploy or roll back a build to an environment: the environment's rules and approvals
RERUN = "rerun"  # run a build again: never a deployment
APPROVE = "approve"  # approve or reject a request: never the requester; the approver must be allowed the act
OPS = "ops"  # change a cluster, VM group or DNS zone: roles per environment, `ops.environments.<env>.approvals`
CONFIG = "config"  # change the stored config (config rollback): `permissions.<verb>.approvals`; rights need an admin


@dataclass(frozen=True)
class Verb:
    """What a registry declares about one of its verbs (chat/registry.py, review/commands.py)."""

    name: str  # as `permissions:` names it: `deploy`, `config rollback`, `/retest`
    default_roles: tuple[str, ...] = ()  # () = no role needed
    kind: str = ACT
    open_to_strangers: bool = False  # a merge-request comment command: GitLab decides who may comment
    project_roles: str = ""  # the key in a project's `review.roles` that may restrict it further


@dataclass(frozen=True)
class Build:
    """The facts of a Drone build that the rules look at."""

    number: int
    event: str
    branch: str
    status: str
    commit: str = ""
    parent: int = 0

    @classmethod
    def of(cls, build: dict) -> Build:
        return cls(
            number=int(build.get("number") or 0),
            event=str(build.get("event") or ""),
            branch=build_branch(build),
            status=str(build.get("status") or ""),
            commit=str(build.get("after") or ""),
            parent=int(build.get("parent") or 0),
        )


@dataclass(frozen=True)
class Target:
    project: str = ""
    environment: str = ""
    build: Build | None = None
    merge_request: str = ""  # group/name!iid
    requester: str = ""  # for APPROVE: the actor id of who asked
    request_verb: Verb | None = None  # for APPROVE: the verb of the request being approved
    scope: str = ""  # for ops: what is touched, e.g. `cluster shop-eks/shop deployment/shop-api`, `zone shop`
    changes_rights: bool = False  # for CONFIG (and approving it): the change touches `people` or `permissions`

    def describe(self) -> str:
        parts = [self.project, self.scope]
        if self.build is not None:
            parts.append(f"#{self.build.number} ({self.build.event or '?'} · {self.build.branch or '?'})")
        if self.environment:
            parts.append(f"→ {self.environment}")
        if self.merge_request:
            parts.append(self.merge_request)
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Decision:
    outcome: str  # ALLOW, DENY or NEEDS_APPROVAL
    reason: str = ""  # why, in the actor's language; "" when simply allowed
    rule: str = ""  # which rule decided: role, stranger, environment, deployment, status, event, branch, self, …
    approvals: int = 0  # how many approvals NEEDS_APPROVAL asks for

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW

    @property
    def denied(self) -> bool:
        return self.outcome == DENY


class Denied(Exception):
    """An act the core refused; the message is the reason, in the actor's language."""

    def __init__(self, decision: Decision):
        super().__init__(decision.reason)
        self.decision = decision


@dataclass(frozen=True)
class Holds:
    """What holds the environments an act changes, at the moment of the decision."""

    locks: tuple[locks.Lock, ...] = ()  # the locks that hold now
    # the freeze windows open now: (project, environment, window); project "" for an ops act of no project
    windows: tuple[tuple[str, str, freeze_windows.Window], ...] = ()
    overrides: tuple[locks.Override, ...] = ()  # approved overrides of some of those windows

    def overridden(self, project: str, environment: str, window: freeze_windows.Window) -> locks.Override | None:
        return next(
            (o for o in self.overrides if (o.project, o.environment, o.window) == (project, environment, window.key)),
            None,
        )

    def frozen(self) -> list[tuple[str, str, freeze_windows.Window]]:
        """The open windows that no approved override lifts."""
        return [(p, e, w) for p, e, w in self.windows if self.overridden(p, e, w) is None]

    def override_note(self) -> str:
        """For the audit record: the overrides this act went through."""
        used = [o for o in self.overrides if any((p, e) == (o.project, o.environment) for p, e, _w in self.windows)]
        return "; ".join(
            f"freeze overridden ({o.project}/{o.environment}, request {o.request}, by {o.by}, approved by "
            f"{o.approved_by}): {o.reason}"
            for o in used
        )


NO_HOLDS = Holds()
HELD_KINDS = (DEPLOY, OPS, RERUN)  # the kinds of act that change an environment


def required_roles(config: Config, verb: Verb, environment: str = "", project: Project | None = None) -> tuple:
    override = config.permissions.get(verb.name)
    if override is not None:
        if environment and environment in override.environments:
            return override.environments[environment]
        if override.roles:
            return override.roles
    if verb.project_roles and project is not None and project.review.roles.get(verb.project_roles):
        return project.review.roles[verb.project_roles]
    return verb.default_roles


def config_approvals(config: Config, verb: Verb, target: Target) -> int:
    """Approvals a change to the config needs: `permissions.<verb>.approvals`, and at least one when it changes
    who may do what (`people`, `permissions`)."""
    override = config.permissions.get(verb.name)
    needed = override.approvals if override is not None else 0
    return max(needed, 1) if target.changes_rights else needed


def _deny(rule: str, reason: str) -> Decision:
    return Decision(DENY, reason, rule)


def _who_may(config: Config, actor: Actor, verb: Verb, target: Target, language: str) -> Decision | None:
    """The role rule: None when the actor may use the verb here."""
    project = config.projects.get(target.project)
    needed = required_roles(config, verb, target.environment, project)
    if not actor.known and verb.kind != READ and not verb.open_to_strangers:
        zh_id, en_id = {FEISHU: ("飞书 open_id", "Feishu open_id"), SLACK: ("Slack 成员 ID", "Slack member id")}.get(
            actor.via, ("钉钉 ID", "DingTalk id")
        )
        handle = md(actor.handle or "?", 80)  # what to tell the admin: the id the channel vouched for
        return _deny(
            "stranger",
            t(
                language,
                f"你还不在 opsbot 的人员配置里，只能使用查询类命令。你的{zh_id} 是 `{handle}`："
                "请联系管理员把它加入 people。",
                "You are not in opsbot's people config, so you may only run commands that read. "
                f"Your {en_id} is `{handle}`: ask an admin to add it to `people`.",
            ),
        )
    if not actor.known and needed and actor.via == GITLAB:
        return _deny(
            "stranger",
            f"`{verb.name}` needs the role {' or '.join(needed)}, and `{actor.handle}` is in "
            "no `people[].git` of the config",
        )
    roles = actor.roles
    if not needed or ADMIN in roles or set(needed) & set(roles):
        return None
    env = target.environment
    have = ", ".join(roles) or t(language, "无", "none")
    if actor.via == GITLAB:
        return _deny("role", f"`{verb.name}` needs the role {' or '.join(needed)}; {actor.name} has {have}")
    where = t(language, f"（环境 {env}）", f" in {env}") if env else ""
    return _deny(
        "role",
        t(
            language,
            f"`{verb.name}`{where} 需要角色 {' / '.join(needed)}，你的角色：{have}。",
            f"`{verb.name}`{where} needs the role {' or '.join(needed)}; your roles: {have}.",
        ),
    )


def environment_of(config: Config, target: Target, language: str) -> tuple[Project, Environment] | Decision:
    project = config.projects.get(target.project)
    if project is None:
        name = md(target.project, 80)  # a chat argument: the person's own words
        return _deny("project", t(language, f"没有项目 `{name}`。", f"no project `{name}`."))
    env = project.environments.get(target.environment)
    if env is None:
        known, asked = ", ".join(project.environments) or "-", md(target.environment, 80)
        return _deny(
            "environment",
            t(
                language,
                f"项目 {project.name} 没有环境 `{asked}`。可用环境：{known}",
                f"project {project.name} has no environment `{asked}`. Environments: {known}",
            ),
        )
    return project, env


def deployable(project: Project, env: Environment, build: Build, language: str) -> Decision | None:
    """The environment's rules for a build; None when it may be deployed (or rolled back to) there. Its reasons name
    Drone's facts (a branch is anyone's words) as plain text: they are shown in chat and on the release page."""
    number = build.number
    status, event, branch = md(build.status, 40), md(build.event or "?", 40), md(build.branch, 100)
    if build.event in DEPLOYMENT_EVENTS:
        return _deny(
            "deployment",
            t(
                language,
                f"#{number} 本身是一次发布；请发布它的来源构建 #{build.parent}。",
                f"#{number} is itself a deployment; deploy the build it came from, #{build.parent}.",
            ),
        )
    if build.status != "success":
        return _deny(
            "status",
            t(
                language,
                f"{project.name} #{number} 的状态是 {status}，只能发布成功的构建。",
                f"{project.name} #{number} is {status}; only successful builds can be deployed.",
            ),
        )
    if build.event not in env.events:
        events = ", ".join(env.events)
        return _deny(
            "event",
            t(
                language,
                f"{env.name} 只接受 {events} 构建，#{number} 是 {event} 构建。",
                f"{env.name} takes {events} builds; #{number} is a {event} build.",
            ),
        )
    if env.branch and not fnmatch.fnmatchcase(build.branch, env.branch):
        return _deny(
            "branch",
            t(
                language,
                f"{env.name} 只接受 {env.branch} 分支的构建，#{number} 来自 {branch}。",
                f"{env.name} takes builds of {env.branch}; #{number} is from {branch}.",
            ),
        )
    return None


def rerunnable(config: Config, verb: Verb, build: Build, language: str) -> Decision | None:
    """Whether a build may be run again: never a deployment (that would deploy again), a `custom` build only when
    `permissions.<verb>.events` names it, and only the events it lists, when it lists any."""
    if build.event in DEPLOYMENT_EVENTS:
        return _deny(
            "deployment",
            t(
                language,
                f"#{build.number} 是一次发布（{build.event}），不能重新运行；请用 deploy 或 rollback。",
                f"#{build.number} is a deployment ({build.event}) and is never run again; use deploy or rollback.",
            ),
        )
    override = config.permissions.get(verb.name)
    # A custom build was started by hand with parameters of its own (a deploy-like job, a data fix): a re-run
    # repeats them, so only where the config says so.
    if build.event == "custom" and not (override is not None and "custom" in override.events):
        return _deny(
            "event",
            t(
                language,
                f"#{build.number} 是手动触发的 custom 构建，带有它自己的参数，重新运行会再执行一次；"
                f"需要时请在 permissions.{verb.name}.events 中列出 custom。",
                f"#{build.number} is a custom build (started by hand, with parameters of its own): running it again "
                f"would repeat them; `permissions.{verb.name}.events` may list custom to allow it.",
            ),
        )
    if override is not None and override.events and build.event not in override.events:
        return _deny(
            "event",
            t(
                language,
                f"`{verb.name}` 只能重新运行 {', '.join(override.events)} 构建，"
                f"#{build.number} 是 {build.event} 构建。",
                f"`{verb.name}` re-runs only {', '.join(override.events)} builds; "
                f"#{build.number} is a {build.event} build.",
            ),
        )
    return None


def _clock(moment: int, language: str) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(moment + 8 * 3600)) + (" (UTC+8)" if language == "en" else "")


def lock_text(lock: locks.Lock, language: str) -> str:
    """`shop-api/production is locked by Bob since 12-08 10:00 (until 12:00): investigating`, in the language."""
    until = (
        t(language, f"，到 {_clock(lock.until, 'zh')} 为止", f", until {_clock(lock.until, 'en')}")
        if lock.until
        else ""
    )
    return t(
        language,
        f"{lock.project}/{lock.environment} 已被 {md(lock.holder_name, 64)} 锁定（自 {_clock(lock.since, 'zh')}"
        f"{until}）：{md(lock.reason, 200)}",
        f"{lock.project}/{lock.environment} is locked by {md(lock.holder_name, 64)} (since "
        f"{_clock(lock.since, 'en')}{until}): {md(lock.reason, 200)}",
    )


def freeze_text(project: str, environment: str, window: freeze_windows.Window, language: str) -> str:
    where = f"{project}/{environment}" if project else environment
    return t(
        language,
        f"{where} 处于封网期「{md(window.freeze.name, 64)}」（{window.describe()}）：{md(window.freeze.reason, 200)}",
        f"{where} is in the change freeze '{md(window.freeze.name, 64)}' ({window.describe()}): "
        f"{md(window.freeze.reason, 200)}",
    )


def held(actor: Actor, holds: Holds, language: str) -> Decision | None:
    """The hold rule: a lock held by someone else, or a freeze window no approved override lifts, refuses the act.
    The lock's holder is exempt from their own lock, never from a freeze."""
    for lock in holds.locks:
        if lock.holder != actor.id:
            return _deny(
                "lock",
                lock_text(lock, language)
                + t(
                    language,
                    f"。请 {md(lock.holder_name, 64)} 解锁（`unlock {lock.project} {lock.environment}`），"
                    "或由管理员解锁。",
                    f". Ask {md(lock.holder_name, 64)} to `unlock {lock.project} {lock.environment}`, or an admin.",
                ),
            )
    for project, environment, window in holds.frozen():
        how = (
            t(
                language,
                f"。如确需发布：管理员 `override {project} {environment} <原因>`，再由另一位管理员批准。",
                f". To release anyway: an admin asks `override {project} {environment} <reason>` and a second "
                "admin approves it.",
            )
            if project
            else t(language, "。", ".")
        )
        return _deny("freeze", freeze_text(project, environment, window, language) + how)
    return None


def _touched_projects(config: Config, environment: str, scope: str) -> tuple[str, ...]:
    """The projects whose workloads in `environment` an ops act's scope names: a Deployment, a GitOps target's
    workload or VM group, or the project's own name."""
    words = set(re.split(r"[\s/]+", scope.lower()))
    found = []
    for project in config.projects.values():
        env = project.environments.get(environment)
        if env is None:
            continue
        workloads = {project.name}
        if env.deploy is not None:
            if env.deploy.workload is not None:
                workloads.add(env.deploy.workload.deployment)
            if env.deploy.group:
                workloads.add(env.deploy.group)
        if workloads & words:
            found.append(project.name)
    return tuple(found)


def held_environments(config: Config, verb: Verb, target: Target) -> tuple[tuple[str, str], ...]:
    """The (project, environment) pairs an act changes, for the hold rule: () when it changes none."""
    if verb.kind not in HELD_KINDS or not target.environment:
        return ()
    if verb.kind == OPS:
        return tuple((p, target.environment) for p in _touched_projects(config, target.environment, target.scope)) or (
            ("", target.environment),
        )
    return ((target.project, target.environment),) if target.project else ()


def load_holds(config: Config, verb: Verb, target: Target, now: float | None = None) -> Holds:
    """The locks, open freeze windows and approved overrides of the environments this act changes."""
    pairs = held_environments(config, verb, target)
    if not pairs:
        return NO_HOLDS
    moment = now if now is not None else time.time()
    found_locks, windows, overrides = [], [], []
    for project, environment in pairs:
        if project and (lock := locks.get(project, environment, moment)) is not None:
            found_locks.append(lock)
        freezes = freeze_windows.freezes_for(config, project, environment)
        for window in freeze_windows.open_windows(freezes, freeze_windows.utc(moment)):
            windows.append((project, environment, window))
            if project and (found := locks.override_for(project, environment, window.key, moment)) is not None:
                overrides.append(found)
    return Holds(tuple(found_locks), tuple(windows), tuple(overrides))


def decide(
    config: Config,
    actor: Actor,
    verb: Verb,
    target: Target,
    arguments: dict | None = None,
    language: str = "en",
    holds: Holds = NO_HOLDS,
) -> Decision:
    """Allow, deny (with the reason) or needs approval (with how many), for this actor, verb and target, under
    `holds` (what load_holds read)."""
    if verb.kind == DEPLOY and target.environment and target.project:
        found = environment_of(config, target, language)
        if isinstance(found, Decision):
            return found
        project, env = found
        if denied := _who_may(config, actor, verb, target, language):
            return denied
        if denied := held(actor, holds, language):
            return denied
        if target.build is not None and (denied := deployable(project, env, target.build, language)):
            return denied
        if env.approvals:
            return Decision(
                NEEDS_APPROVAL,
                t(
                    language,
                    f"{env.name} 需要 {env.approvals} 位其他同事批准。",
                    f"{env.name} needs {env.approvals} approval(s) from someone else.",
                ),
                "approvals",
                env.approvals,
            )
        return Decision(ALLOW)
    if denied := _who_may(config, actor, verb, target, language):
        return denied
    if verb.kind in HELD_KINDS and (denied := held(actor, holds, language)):
        return denied
    if verb.kind == OPS and (needed := config.ops.approvals.get(target.environment, 0)):
        return Decision(
            NEEDS_APPROVAL,
            t(
                language,
                f"{target.environment} 的运维操作需要 {needed} 位其他同事批准。",
                f"ops changes in {target.environment} need {needed} approval(s) from someone else.",
            ),
            "approvals",
            needed,
        )
    if verb.kind == CONFIG and (needed := config_approvals(config, verb, target)):
        return Decision(
            NEEDS_APPROVAL,
            t(
                language,
                f"这次配置变更需要 {needed} 位其他同事批准"
                + ("（它改动了 people 或 permissions，须由另一位 admin 批准）。" if target.changes_rights else "。"),
                f"this config change needs {needed} approval(s) from someone else"
                + (
                    " (it changes people or permissions: another admin must approve)." if target.changes_rights else "."
                ),
            ),
            "approvals",
            needed,
        )
    if verb.kind == RERUN and target.build is not None and (denied := rerunnable(config, verb, target.build, language)):
        return denied
    if verb.kind == APPROVE:
        if target.requester and actor.id == target.requester:
            return _deny(
                "self",
                t(
                    language,
                    "不能批准自己发起的请求，需要另一位同事批准。",
                    "You cannot approve your own request: it needs someone else.",
                ),
            )
        if target.changes_rights and ADMIN not in actor.roles:
            return _deny(
                "admin",
                t(
                    language,
                    "这次配置变更改动了 people 或 permissions，只有 admin 能批准。",
                    "This config change touches people or permissions: only an admin may approve it.",
                ),
            )
        if target.request_verb is not None:
            inner = decide(
                config,
                actor,
                target.request_verb,
                Target(target.project, target.environment, scope=target.scope),
                arguments,
                language,
            )
            if inner.denied:
                return inner
    return Decision(ALLOW)


def authorize(
    config: Config,
    actor: Actor,
    verb: Verb,
    target: Target,
    record: audit.AuditRecord,
    arguments: dict | None = None,
    language: str = "en",
    holds: Holds | None = None,
) -> Decision:
    """`decide` under the holds read now (or given), written into the act's audit record; a denial finishes the
    record there and then. An act let through a freeze by an override says so in its record."""
    holds = holds if holds is not None else load_holds(config, verb, target)
    decision = decide(config, actor, verb, target, arguments, language, holds)
    record.via, record.target = actor.via, target.describe()[:300]
    note = "" if decision.denied else holds.override_note()
    record.decision, record.reason = decision.outcome, "; ".join(p for p in (decision.reason, note) if p)[:500]
    if decision.denied:
        audit.finish(record, "denied", decision.reason)
    return decision
