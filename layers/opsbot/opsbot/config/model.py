"""The validated config: global settings, robots, people and projects.

`validate()` takes the parsed documents (from YAML with line numbers, or from the stored JSON) and either
returns a Config or raises ConfigError listing every problem as `file:line: message`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace

from opsbot.config import deploy as deploy_section
from opsbot.config import governance as governance_section
from opsbot.config import ops as ops_section
from opsbot.config import review as review_section
from opsbot.config.deploy import GitOpsTarget
from opsbot.config.governance import Governance, ProjectGovernance
from opsbot.config.names import KnownNames
from opsbot.config.names import declared as declared_names
from opsbot.config.ops import Ops
from opsbot.config.review import Review
from opsbot.peers import not_pinned
from opsbot.secrets import SSM_PREFIX

GLOBAL_FILE = "opsbot.yaml"
PROJECTS_DIR = "projects"
LANGUAGES = ("zh", "en")
GLOBAL_KEYS = {"settings", "robots", "people", "drone", "gitlab", "permissions", "faq", "ops", "governance"}
SETTINGS_KEYS = {"language", "ops_robot", "contacts", "action_link_hours", "approval_hours", "dingtalk_robot_code"}
# A robot is one group on one chat channel (opsbot.channels has an adapter for each kind). Named here, with each
# kind's keys and its channel's own rate limit (a minute's sends), so that validating config needs no channel code.
ROBOT_KINDS = ("dingtalk", "feishu", "wecom", "slack", "email")
ROBOT_KEYS = {
    "dingtalk": {"kind", "webhook", "secret", "rate_limit_per_minute"},
    "feishu": {"kind", "webhook", "secret", "rate_limit_per_minute"},
    "wecom": {"kind", "webhook", "rate_limit_per_minute"},  # the webhook's key is the secret
    "slack": {"kind", "webhook", "rate_limit_per_minute"},  # the webhook URL is the secret
    "email": {"kind", "from", "to", "region", "rate_limit_per_minute"},  # SES, through the worker's IAM role
}
CHANNEL_RATE_LIMITS = {"dingtalk": 20, "feishu": 100, "wecom": 20, "slack": 60, "email": 60}
MAX_EMAIL_RECIPIENTS = 50  # SES's limit per message
PERSON_KEYS = {
    "id",
    "name",
    "dingtalk_user_id",
    "dingtalk_sender_id",
    "mobile",
    "feishu_open_id",
    "wecom_user_id",
    "slack_user_id",
    "email",
    "git",
    "gitlab_username",
    "roles",
}
# The keys that identify a person to opsbot (who sent a message, who wrote a comment, who committed): no two people
# may share a value of one, or one human split in two entries could approve their own request.
IDENTITY_KEYS = ("dingtalk_user_id", "dingtalk_sender_id", "feishu_open_id", "wecom_user_id", "slack_user_id")
_GITLAB_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
DRONE_KEYS = {"server", "token"}
GITLAB_KEYS = {"url", "token", "config_repo", "config_branch", "config_path", "deploy_repo", "deploy_token"}
PERMISSION_KEYS = {"roles", "environments", "events", "approvals"}
FAQ_KEYS = {"id", "question", "answer", "keywords", "examples"}
PROJECT_KEYS = {
    "project",
    "repo",
    "robot",
    "robots",
    "language",
    "notify",
    "environments",
    "pipeline",
    "review",
    "webhook_token",
    "freezes",
    "report",
}
NOTIFY_KEYS = {"on_failure", "on_fixed", "on_success", "on_promote", "on_rollback"}
ENVIRONMENT_KEYS = {"branch", "approvals", "events", "deploy", "freezes"}
PIPELINE_KEYS = {"language", "image", "build_image", "test_command", "init_on_push"}
# The .drone.yml templates opsbot has (opsbot.gitops.templates); named here so that validating config needs no
# template code.
PIPELINE_LANGUAGES = ("java", "node", "python")
# Drone's build events. Deployments (promote, rollback) are never deployed or re-run themselves; of the rest, an
# environment takes only `push` builds unless its `events` say otherwise.
BUILD_EVENTS = ("push", "pull_request", "tag", "custom", "cron")
DEPLOYMENT_EVENTS = ("promote", "rollback")
DEFAULT_DEPLOY_EVENTS = ("push",)
# Where a project's own GitLab webhook token lives in SSM (under /opsbot/<stage>/): the GitLab function reads it.
WEBHOOK_TOKENS_AREA = "webhooks/gitlab-projects"
# The local stack's fakes, which its config names by role (`local://drone`, `local://dingtalk/robot/send?…`) so that
# no config holds a port: the stack that loads it says where each runs (LOCAL_PEERS). No other stage accepts them.
LOCAL_PEER_ROLES = ("dingtalk", "feishu", "wecom", "slack", "drone", "gitlab", "dns", "health")
_LOCAL_PEER = re.compile(r"^local://([a-z]*)(.*)$", re.S)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_REPO = re.compile(r"^[\w.-]+(/[\w.-]+)+$")
# A Docker image repository without tag or digest: [registry[:port]/]path, lowercase.
_IMAGE = re.compile(r"^([a-z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


@dataclass(frozen=True)
class Document:
    name: str  # path relative to the config directory, e.g. projects/shop-api.yaml
    data: object


@dataclass(frozen=True)
class Robot:
    name: str
    webhook: str = ""  # secret: DingTalk's access_token, Feishu's hook, WeCom's key, Slack's URL; `ssm:` outside local
    secret: str = ""  # DingTalk's 加签 and Feishu's 签名校验 secret; `ssm:` reference outside the local stack
    rate_limit_per_minute: int = 20
    kind: str = "dingtalk"  # which channel: one of ROBOT_KINDS
    sender: str = ""  # email: the SES identity it is sent from
    recipients: tuple[str, ...] = ()  # email: who it is sent to
    region: str = ""  # email: the SES region


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    dingtalk_user_id: str = ""  # the staff id (senderStaffId, atUserIds)
    dingtalk_sender_id: str = ""  # senderId, for robots not yet published to the organisation
    mobile: str = ""
    feishu_open_id: str = ""  # Feishu's open_id (ou_…): @-mentions in Feishu cards
    wecom_user_id: str = ""  # WeCom's userid: @-mentions in WeCom markdown
    slack_user_id: str = ""  # Slack's member id (U…): @-mentions in Slack
    email: str = ""  # copied on e-mail a message @-mentions them in
    git: tuple[str, ...] = ()  # commit identities (Drone's author login and e-mail); see gitlab_names
    roles: tuple[str, ...] = ()
    gitlab_username: str = ""  # the person's GitLab username; when set, `git` no longer counts on GitLab

    @property
    def gitlab_names(self) -> tuple[str, ...]:
        """Who this person is on GitLab (a comment's author, a pusher, a reviewer): `gitlab_username`, or, for an
        older config without it, the `git` values that can be usernames (an e-mail never is)."""
        if self.gitlab_username:
            return (self.gitlab_username.lower(),)
        return tuple(g.lower() for g in self.git if "@" not in g)


@dataclass(frozen=True)
class NotifyPolicy:
    on_failure: bool = True
    on_fixed: bool = True
    on_success: tuple[str, ...] = ()  # branch globs; empty means never
    on_promote: bool = True
    on_rollback: bool = True

    def success_branch(self, branch: str) -> bool:
        return any(fnmatch.fnmatchcase(branch, pattern) for pattern in self.on_success)


@dataclass(frozen=True)
class Environment:
    name: str
    branch: str
    approvals: int = 0
    events: tuple[str, ...] = DEFAULT_DEPLOY_EVENTS  # the Drone build events that may be deployed here
    deploy: GitOpsTarget | None = None  # how a release gets here: None = Drone's promote, else a GitOps target


@dataclass(frozen=True)
class Pipeline:
    """How opsbot generates the project's .drone.yml (opsbot.gitops.pipelines)."""

    language: str = ""  # java, node or python; "" means: detect it from the repository's files
    image: str = ""  # the image repository to publish; "" means the project's repo path (on Docker Hub)
    build_image: str = ""  # the image the build and test steps run in; "" means the template's
    test_command: tuple[str, ...] = ()  # replaces the template's test commands
    init_on_push: bool = False  # a push to the default branch without .drone.yml opens the merge request


@dataclass(frozen=True)
class Project:
    name: str
    repo: str
    robots: tuple[str, ...]  # the groups its news goes to, each delivered on its own
    language: str
    notify: NotifyPolicy
    environments: dict[str, Environment] = field(default_factory=dict)
    pipeline: Pipeline = field(default_factory=Pipeline)
    review: Review = field(default_factory=Review)
    webhook_token: str = ""  # secret: this project's own GitLab webhook token; "" means the shared one
    governance: ProjectGovernance = field(default_factory=ProjectGovernance)  # its freezes and report

    @property
    def robot(self) -> str:
        """The project's first robot: where a single answer about it goes."""
        return self.robots[0] if self.robots else ""


@dataclass(frozen=True)
class Drone:
    server: str  # e.g. https://drone.example.com
    token: str  # secret: `ssm:` reference outside the local stack


@dataclass(frozen=True)
class GitLab:
    url: str  # e.g. https://gitlab.example.com
    token: str  # secret: a token with the api scope (reads the config repo, opens merge requests)
    config_repo: str = ""  # group/name of the config repo whose pushes are synced; "" means no sync
    config_branch: str = "main"
    config_path: str = ""  # the directory in the config repo that holds opsbot.yaml; "" is the top
    deploy_repo: str = ""  # group/name of the deploy repo of GitOps environments, unless one names its own
    deploy_token: str = ""  # secret: a token that may write the deploy repo only (GitOps releases)


@dataclass(frozen=True)
class Permission:
    """Who may run one command: roles for every environment, and stricter lists for named environments; for a
    command that re-runs builds, which build events it may touch."""

    roles: tuple[str, ...]
    environments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: tuple[str, ...] = ()  # () means every event it may touch by its nature
    approvals: int = 0  # for a change to the config itself (config rollback): approvals from others it needs


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    language: str
    robots: dict[str, Robot]
    people: tuple[Person, ...]
    projects: dict[str, Project]
    ops_robot: str = ""
    version: str = ""
    drone: Drone | None = None
    gitlab: GitLab | None = None
    permissions: dict[str, Permission] = field(default_factory=dict)  # command name -> override
    faq: tuple[FaqEntry, ...] = ()
    contacts: tuple[str, ...] = ()  # person ids the bot names when it cannot answer
    action_link_hours: int = 24
    approval_hours: int = 24
    dingtalk_robot_code: str = ""
    ops: Ops = field(default_factory=Ops)  # what ops commands may touch (config/ops.py)
    governance: Governance = field(default_factory=Governance)  # freezes and the weekly report (config/governance.py)

    def project_for_repo(self, slug: str) -> Project | None:
        for project in self.projects.values():
            if project.repo.lower() == slug.lower():
                return project
        return None

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def person_for_dingtalk(self, staff_id: str, sender_id: str) -> Person | None:
        """DingTalk identifies a sender by staff id once the robot is published, by sender id before."""
        if staff_id:
            found = next((p for p in self.people if p.dingtalk_user_id == staff_id), None)
            if found:
                return found
        if sender_id:
            return next((p for p in self.people if p.dingtalk_sender_id == sender_id), None)
        return None

    def person_for_feishu(self, open_id: str) -> Person | None:
        """Feishu identifies a user by an open_id, which is per app: the one the chat app's API reports."""
        return next((p for p in self.people if p.feishu_open_id == open_id), None) if open_id else None

    def person_for_slack(self, user_id: str) -> Person | None:
        """Slack identifies a member by a workspace user id (U…): `people[].slack_user_id`."""
        return next((p for p in self.people if p.slack_user_id == user_id), None) if user_id else None

    def person_for_git(self, *identities: str) -> Person | None:
        """The person a commit names (Drone's author login and e-mail): `people[].git`."""
        wanted = {i.lower() for i in identities if i}
        for person in self.people:
            if wanted & {g.lower() for g in person.git}:
                return person
        return None

    def person_for_gitlab(self, username: str) -> Person | None:
        """The person a GitLab username is (who wrote a comment, who pushed, a reviewer): `people[].gitlab_username`,
        else (older configs) a username among `people[].git` of someone without one."""
        wanted = username.lower()
        return next((p for p in self.people if wanted and wanted in p.gitlab_names), None)


class ConfigError(Exception):
    def __init__(self, problems: list[tuple[str, int, str]]):
        self.problems = sorted(problems, key=lambda p: (p[0], p[1]))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{name}:{line}: {message}" if line else f"{name}: {message}" for name, line, message in self.problems]


def _line(container, key=None) -> int:
    if key is not None and hasattr(container, "key_lines"):
        return container.key_lines.get(key, container.line)
    if key is not None and hasattr(container, "item_lines") and isinstance(key, int):
        return container.item_lines[key]
    return getattr(container, "line", 0)


class _Checker:
    """Collects problems for one document so that a user sees all of them in one go."""

    def __init__(
        self,
        document: Document,
        allow_literal_secrets: bool,
        stage: str = "",
        names: KnownNames | None = None,
        local_peers: dict[str, str] | None = None,
        check_hosts: bool = False,
    ):
        self.doc = document
        self.names = names  # the command names that exist, when declared (config/names.py)
        self.allow_literal_secrets = allow_literal_secrets  # the local stack: literal secrets, http:// peers
        self.stage = stage
        self.local_peers = local_peers or {}  # role -> address, where the running local stack has its fakes
        self.check_hosts = check_hosts  # whether peers' hosts are checked against the stack's lists (peers.py)
        self.problems: list[tuple[str, int, str]] = []

    def problem(self, container, key, message: str) -> None:
        self.problems.append((self.doc.name, _line(container, key), message))

    def mapping(self, value, allowed: set[str], where: str, container=None, key=None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(container if container is not None else value, key, f"{where} must be a mapping")
            return {}
        for unknown in sorted(set(map(str, value)) - allowed):
            self.problem(value, unknown, f"{where}: unknown key '{unknown}' (allowed: {', '.join(sorted(allowed))})")
        return value

    def named_sections(self, root: dict, key: str, what: str) -> dict:
        """`key: {name: {...}, ...}` sections (robots, environments); {} with a problem when not a mapping."""
        value = root.get(key) or {}
        if not isinstance(value, dict):
            self.problem(root, key, f"{key} must be a mapping of {what} name to settings")
            return {}
        return value

    def string(self, container: dict, key: str, where: str, required: bool = False, default: str = "") -> str:
        value = container.get(key)
        if value is None:
            if required:
                self.problem(container, None, f"{where}: '{key}' is required")
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # a mobile number written without quotes
        if not isinstance(value, str) or not value.strip():
            self.problem(container, key, f"{where}.{key} must be a non-empty string")
            return default
        return value.strip()

    def boolean(self, container: dict, key: str, where: str, default: bool) -> bool:
        value = container.get(key, default)
        if not isinstance(value, bool):
            self.problem(container, key, f"{where}.{key} must be true or false")
            return default
        return value

    def integer(self, container: dict, key: str, where: str, default: int, minimum: int, maximum: int) -> int:
        value = container.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.problem(container, key, f"{where}.{key} must be a whole number from {minimum} to {maximum}")
            return default
        return value

    def strings(self, container: dict, key: str, where: str) -> tuple[str, ...]:
        value = container.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            self.problem(container, key, f"{where}.{key} must be a list of strings")
            return ()
        return tuple(str(v) for v in value)

    def secret(self, container: dict, key: str, where: str, area: str, required: bool = True) -> str:
        """An `ssm:` reference under /opsbot/<stage>/<area>/: the area is what the functions that need this
        secret may read (template.yaml), so a secret kept elsewhere could not be read anyway."""
        value = self.string(container, key, where, required=required)
        if not value or self.allow_literal_secrets:
            return value
        if not value.startswith(SSM_PREFIX):
            self.problem(
                container,
                key,
                f"{where}.{key} is a secret: write it as ssm:/parameter/name "
                "(literal values are for the local stack only)",
            )
        elif self.stage and not value.startswith(f"{SSM_PREFIX}/opsbot/{self.stage}/{area}/"):
            # Each stage reads only its own secrets (a dev config must not point at prod's), and each function
            # only the area it needs.
            self.problem(
                container,
                key,
                f"{where}.{key} must be a parameter under /opsbot/{self.stage}/{area}/ "
                f"(this is the {self.stage} stage)",
            )
        return value

    def local_peer(self, container, key, where: str, value: str) -> str:
        """`local://<role>…` as the address of the local stack's fake for that role; anything else as it is. Left
        as written where no stack is running (validating a directory): it is checked, never called."""
        match = _LOCAL_PEER.match(value)
        if not match:
            return value
        role, rest = match.groups()
        if not self.allow_literal_secrets:
            self.problem(
                container, key, f"{where}.{key}: local://{role[:20]} names a fake of the local stack, not a real peer"
            )
        elif role not in LOCAL_PEER_ROLES:
            self.problem(
                container,
                key,
                f"{where}.{key}: local://{role[:20]} is no peer of the local stack "
                f"(it has local://{', local://'.join(LOCAL_PEER_ROLES)})",
            )
        elif role in self.local_peers:
            return self.local_peers[role] + rest
        return value

    def https_url(self, container: dict, key: str, where: str, example: str, peer: str = "") -> str:
        """A peer's base URL. Tokens travel with every call, so only https:// outside the local stack, and only to
        a host the stack lists for `peer` (peers.py: the stack's parameters, not the config, say where tokens go).
        A local stack's `local://<role>` is checked as the address it resolves to."""
        url = self.string(container, key, where, required=True)
        if url.startswith("local://"):
            url = self.local_peer(container, key, where, url)
            if url.startswith("local://"):
                return url
        schemes = "https?" if self.allow_literal_secrets else "https"
        if url and not re.match(rf"^{schemes}://[^/\s]+", url):
            needs = "a URL" if self.allow_literal_secrets else "an https:// URL"
            self.problem(container, key, f"{where}.{key} must be {needs} like {example}")
        elif url and peer:
            self.pinned(container, key, where, url, peer)
        return url.rstrip("/")

    def pinned(self, container: dict, key: str, where: str, url: str, peer: str) -> None:
        if self.check_hosts and (reason := not_pinned(url, peer)):
            self.problem(container, key, f"{where}.{key}: {reason}")

    def events(self, container: dict, key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if container.get(key) is None:
            return default
        found = self.strings(container, key, where)
        for event in found:
            if event not in BUILD_EVENTS:
                self.problem(
                    container,
                    key,
                    f"{where}.{key}: '{event}' is not a Drone build event that may be "
                    f"deployed or re-run ({', '.join(BUILD_EVENTS)})",
                )
        return found


def _global(checker: _Checker) -> dict:
    """The global file's parts, as keyword arguments of Config (projects aside)."""
    root = checker.mapping(checker.doc.data, GLOBAL_KEYS, "global config")
    settings = checker.mapping(root.get("settings"), SETTINGS_KEYS, "settings", root, "settings")
    language = checker.string(settings, "language", "settings", default="zh")
    if language not in LANGUAGES:
        checker.problem(settings, "language", f"settings.language must be one of {', '.join(LANGUAGES)}")
        language = "zh"  # reported once here; projects that inherit it must not each repeat it at their line 1
    ops_robot = checker.string(settings, "ops_robot", "settings")
    chat_settings = {
        "contacts": checker.strings(settings, "contacts", "settings"),
        "action_link_hours": checker.integer(settings, "action_link_hours", "settings", 24, 1, 168),
        "approval_hours": checker.integer(settings, "approval_hours", "settings", 24, 1, 168),
        "dingtalk_robot_code": checker.string(settings, "dingtalk_robot_code", "settings"),
    }

    robots: dict[str, Robot] = {}
    robot_map = checker.named_sections(root, "robots", "robot")
    for name, spec in robot_map.items():
        if not _NAME.match(str(name)):
            checker.problem(robot_map, name, f"robots.{name}: a robot name is lowercase letters, digits, . _ -")
        robots[str(name)] = _robot(checker, robot_map, str(name), spec)

    people: list[Person] = []
    people_list = root.get("people") or []
    if not isinstance(people_list, list):
        checker.problem(root, "people", "people must be a list")
        people_list = []
    seen: set[str] = set()
    claimed: dict[tuple[str, str], str] = {}  # (identity key, value) -> the person id that has it
    for index, spec in enumerate(people_list):
        where = f"people[{index}]"
        spec = checker.mapping(spec, PERSON_KEYS, where, people_list, index)
        person_id = checker.string(spec, "id", where, required=True)
        if person_id in seen:
            checker.problem(spec, "id", f"{where}: duplicate person id '{person_id}'")
        seen.add(person_id)
        gitlab_username = checker.string(spec, "gitlab_username", where)
        if gitlab_username and not _GITLAB_USERNAME.match(gitlab_username):
            checker.problem(
                spec, "gitlab_username", f"{where}.gitlab_username '{gitlab_username}' is no GitLab username"
            )
        git = checker.strings(spec, "git", where)
        identities = [(key, checker.string(spec, key, where)) for key in IDENTITY_KEYS]
        identities += [("git", value.lower()) for value in git]
        gitlab_names = [gitlab_username.lower()] if gitlab_username else [g.lower() for g in git if "@" not in g]
        identities += [("GitLab username", name) for name in gitlab_names]
        for key, value in identities:
            if not value:
                continue
            owner = claimed.setdefault((key, value), person_id)
            if owner != person_id:
                line_key = {"GitLab username": "gitlab_username" if gitlab_username else "git"}.get(key, key)
                checker.problem(
                    spec,
                    line_key,
                    f"{where}: {key} '{value}' is also {owner}'s: one human, one entry (two entries of one person "
                    "could approve their own request)",
                )
        people.append(
            Person(
                id=person_id,
                name=checker.string(spec, "name", where, default=person_id),
                dingtalk_user_id=checker.string(spec, "dingtalk_user_id", where),
                dingtalk_sender_id=checker.string(spec, "dingtalk_sender_id", where),
                mobile=checker.string(spec, "mobile", where),
                feishu_open_id=checker.string(spec, "feishu_open_id", where),
                wecom_user_id=checker.string(spec, "wecom_user_id", where),
                slack_user_id=checker.string(spec, "slack_user_id", where),
                email=_email(checker, spec, "email", where),
                git=git,
                roles=checker.strings(spec, "roles", where),
                gitlab_username=gitlab_username,
            )
        )
    known_people = {p.id for p in people}
    for contact in chat_settings["contacts"]:
        if contact not in known_people:
            checker.problem(settings, "contacts", f"settings.contacts: '{contact}' is not a person id")
    return {
        "language": language,
        "ops_robot": ops_robot,
        "robots": robots,
        "people": tuple(people),
        "drone": _drone(checker, root),
        "gitlab": _gitlab(checker, root),
        "permissions": _permissions(checker, root),
        "faq": _faq(checker, root),
        "ops": ops_section.parse(checker, root),
        "governance": governance_section.parse(checker, root),
        **chat_settings,
    }


def _robot(checker: _Checker, robot_map: dict, name: str, spec) -> Robot:
    """One robot, its keys checked against its kind's: DingTalk and Feishu a webhook and a signing secret, WeCom and
    Slack a webhook (their secret), e-mail a sender, recipients and an SES region."""
    where = f"robots.{name}"
    kind = spec.get("kind", "dingtalk") if isinstance(spec, dict) else "dingtalk"
    if kind not in ROBOT_KINDS:
        checker.problem(spec, "kind", f"{where}.kind must be one of {', '.join(ROBOT_KINDS)}")
        kind = "dingtalk"
    spec = checker.mapping(spec, ROBOT_KEYS[kind], f"{where} ({kind})", robot_map, name)
    limit = CHANNEL_RATE_LIMITS[kind]
    robot = {
        "name": name,
        "kind": kind,
        "rate_limit_per_minute": checker.integer(spec, "rate_limit_per_minute", where, limit, 1, limit),
    }
    if kind == "email":
        recipients = checker.strings(spec, "to", where)
        if not recipients:
            checker.problem(spec, None if "to" not in spec else "to", f"{where}: 'to' is required: a list of addresses")
        if len(recipients) > MAX_EMAIL_RECIPIENTS:
            checker.problem(spec, "to", f"{where}.to: at most {MAX_EMAIL_RECIPIENTS} addresses (SES's limit)")
        for address in recipients:
            if not _EMAIL.match(address):
                checker.problem(spec, "to", f"{where}.to: '{address}' is not an e-mail address")
        region = checker.string(spec, "region", where, required=True)
        if region and not _AWS_REGION.match(region):
            checker.problem(spec, "region", f"{where}.region '{region}' is not an AWS region like us-east-1")
        return Robot(
            **robot,
            sender=_email(checker, spec, "from", where, required=True),
            recipients=recipients,
            region=region,
        )
    signed = kind in ("dingtalk", "feishu")
    webhook = checker.local_peer(spec, "webhook", where, checker.secret(spec, "webhook", where, "robots"))
    if webhook and checker.allow_literal_secrets and not webhook.startswith((SSM_PREFIX, "local://")):
        # a literal (the local stack); a webhook in SSM is checked when it is sent (channels/base.pinned_webhook)
        checker.pinned(spec, "webhook", where, webhook, kind)
    return Robot(
        **robot,
        webhook=webhook,
        secret=checker.secret(spec, "secret", where, "robots") if signed else "",
    )


def _email(checker: _Checker, spec: dict, key: str, where: str, required: bool = False) -> str:
    address = checker.string(spec, key, where, required=required)
    if address and not _EMAIL.match(address):
        checker.problem(spec, key, f"{where}.{key} '{address}' is not an e-mail address")
    return address


def _project_robots(checker: _Checker, root: dict) -> tuple[str, ...]:
    """`robot: a` or `robots: [a, b]` (not both): each robot gets the project's news on its own."""
    if root.get("robot") is not None and root.get("robots") is not None:
        checker.problem(root, "robots", "project: name its robots with either 'robot' or 'robots', not both")
    if root.get("robots") is not None:
        names = checker.strings(root, "robots", "project")
        if not names:
            checker.problem(root, "robots", "project.robots must name at least one robot")
        if len(set(names)) != len(names):
            checker.problem(root, "robots", "project.robots names a robot twice")
        return tuple(dict.fromkeys(names))
    robot = checker.string(root, "robot", "project")
    if not robot:
        checker.problem(root, None, "project: 'robot' (or 'robots') is required")
    return (robot,) if robot else ()


def _drone(checker: _Checker, root: dict) -> Drone | None:
    if root.get("drone") is None:
        return None  # commands that need Drone say it is not configured
    spec = checker.mapping(root.get("drone"), DRONE_KEYS, "drone", root, "drone")
    server = checker.https_url(spec, "server", "drone", "https://drone.example.com", peer="drone")
    return Drone(server=server, token=checker.secret(spec, "token", "drone", "drone"))


def _gitlab(checker: _Checker, root: dict) -> GitLab | None:
    if root.get("gitlab") is None:
        return None  # no config sync, and commands that need GitLab say it is not configured
    spec = checker.mapping(root.get("gitlab"), GITLAB_KEYS, "gitlab", root, "gitlab")
    url = checker.https_url(spec, "url", "gitlab", "https://gitlab.example.com", peer="gitlab")
    config_repo = checker.string(spec, "config_repo", "gitlab")
    if config_repo and not _REPO.match(config_repo):
        checker.problem(spec, "config_repo", f"gitlab.config_repo '{config_repo}' must look like group/name")
    config_path = checker.string(spec, "config_path", "gitlab").strip("/")
    if config_path.startswith(".") or "/." in config_path:
        checker.problem(spec, "config_path", "gitlab.config_path is a directory inside the repo, like config")
    return GitLab(
        url=url,
        token=checker.secret(spec, "token", "gitlab", "gitlab"),
        config_repo=config_repo,
        config_branch=checker.string(spec, "config_branch", "gitlab", default="main"),
        config_path=config_path,
        deploy_repo=_deploy_repo(checker, spec),
        deploy_token=checker.secret(spec, "deploy_token", "gitlab", "gitlab", required=False),
    )


def _deploy_repo(checker: _Checker, spec: dict) -> str:
    repo = checker.string(spec, "deploy_repo", "gitlab")
    if repo and not _REPO.match(repo):
        checker.problem(spec, "deploy_repo", f"gitlab.deploy_repo '{repo}' must look like group/name")
    return repo


def _permissions(checker: _Checker, root: dict) -> dict[str, Permission]:
    known = checker.names.commands if checker.names else None
    permissions: dict[str, Permission] = {}
    section = checker.named_sections(root, "permissions", "command")
    for name, spec in section.items():
        where = f"permissions.{name}"
        if known is not None and str(name) not in known:
            checker.problem(section, name, f"{where}: no such command (commands: {', '.join(sorted(known))})")
        spec = checker.mapping(spec, PERMISSION_KEYS, where, section, name)
        by_env = checker.named_sections(spec, "environments", "environment") if spec else {}
        approvable = checker.names.approvable if checker.names else None
        if spec and spec.get("approvals") is not None and approvable is not None and str(name) not in approvable:
            checker.problem(
                spec,
                "approvals",
                f"{where}.approvals: only {', '.join(sorted(approvable)) or 'no command'} takes approvals here "
                "(a deploy's are environments.<env>.approvals, an ops change's ops.environments.<env>.approvals)",
            )
        permissions[str(name)] = Permission(
            roles=checker.strings(spec, "roles", where),
            environments={str(env): checker.strings(by_env, env, f"{where}.environments") for env in by_env},
            events=checker.events(spec, "events", where, ()),
            approvals=checker.integer(spec, "approvals", where, 0, 0, 5) if spec else 0,
        )
    return permissions


def _faq(checker: _Checker, root: dict) -> tuple[FaqEntry, ...]:
    entries = root.get("faq") or []
    if not isinstance(entries, list):
        checker.problem(root, "faq", "faq must be a list of entries")
        return ()
    faq = []
    for index, spec in enumerate(entries):
        where = f"faq[{index}]"
        spec = checker.mapping(spec, FAQ_KEYS, where, entries, index)
        faq.append(
            FaqEntry(
                id=checker.string(spec, "id", where, default=str(index + 1)),
                question=checker.string(spec, "question", where, required=True),
                answer=checker.string(spec, "answer", where, required=True),
                keywords=checker.strings(spec, "keywords", where),
                examples=checker.strings(spec, "examples", where),
            )
        )
    return tuple(faq)


def _project(checker: _Checker, default_language: str) -> Project | None:
    root = checker.mapping(checker.doc.data, PROJECT_KEYS, "project")
    if not root:
        checker.problem(checker.doc.data, None, "a project file must be a mapping with at least repo and robot")
        return None
    stem = checker.doc.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    name = checker.string(root, "project", "project", default=stem)
    if not _NAME.match(name):
        checker.problem(root, "project", "project name is lowercase letters, digits, . _ -")
    repo = checker.string(root, "repo", "project", required=True)
    if repo and not _REPO.match(repo):
        checker.problem(root, "repo", f"project.repo '{repo}' must look like group/name")
    language = checker.string(root, "language", "project", default=default_language)
    if language not in LANGUAGES:
        checker.problem(root, "language", f"project.language must be one of {', '.join(LANGUAGES)}")

    notify_map = checker.mapping(root.get("notify"), NOTIFY_KEYS, "notify", root, "notify")
    raw_success = notify_map.get("on_success")
    if raw_success is True:
        success_branches: tuple[str, ...] = ("*",)
    elif raw_success is False or raw_success is None:
        success_branches = ()
    else:
        success_branches = checker.strings(notify_map, "on_success", "notify")
    notify = NotifyPolicy(
        on_failure=checker.boolean(notify_map, "on_failure", "notify", True),
        on_fixed=checker.boolean(notify_map, "on_fixed", "notify", True),
        on_success=success_branches,
        on_promote=checker.boolean(notify_map, "on_promote", "notify", True),
        on_rollback=checker.boolean(notify_map, "on_rollback", "notify", True),
    )

    pipeline = _pipeline(checker, root)
    environments: dict[str, Environment] = {}
    env_map = checker.named_sections(root, "environments", "environment")
    for env_name, spec in env_map.items():
        where = f"environments.{env_name}"
        spec = checker.mapping(spec, ENVIRONMENT_KEYS, where, env_map, env_name)
        environments[str(env_name)] = Environment(
            name=str(env_name),
            branch=checker.string(spec, "branch", where, required=True),
            approvals=checker.integer(spec, "approvals", where, 0, 0, 5),
            events=checker.events(spec, "events", where, DEFAULT_DEPLOY_EVENTS),
            deploy=deploy_section.parse(checker, spec, where, pipeline.image or repo.lower()),
        )
    return Project(
        name=name,
        repo=repo,
        robots=_project_robots(checker, root),
        language=language,
        notify=notify,
        environments=environments,
        pipeline=pipeline,
        review=review_section.parse(checker, root),
        webhook_token=checker.secret(root, "webhook_token", "project", WEBHOOK_TOKENS_AREA, required=False),
        governance=governance_section.parse_project(checker, root, name, env_map),
    )


def _pipeline(checker: _Checker, root: dict) -> Pipeline:
    spec = checker.mapping(root.get("pipeline"), PIPELINE_KEYS, "pipeline", root, "pipeline")
    language = checker.string(spec, "language", "pipeline")
    if language and language not in PIPELINE_LANGUAGES:
        checker.problem(spec, "language", f"pipeline.language must be one of {', '.join(PIPELINE_LANGUAGES)}")
    image = checker.string(spec, "image", "pipeline")
    if image and not _IMAGE.match(image):
        checker.problem(
            spec,
            "image",
            f"pipeline.image '{image}' must be an image repository without a tag, like registry.example.com/shop/api",
        )
    return Pipeline(
        language=language,
        image=image,
        build_image=checker.string(spec, "build_image", "pipeline"),
        test_command=checker.strings(spec, "test_command", "pipeline"),
        init_on_push=checker.boolean(spec, "init_on_push", "pipeline", False),
    )


def validate(
    documents: list[Document],
    allow_literal_secrets: bool,
    version: str = "",
    stage: str = "",
    names: KnownNames | None = None,
    local_peers: dict[str, str] | None = None,
    check_hosts: bool = False,
) -> Config:
    """The whole config from its documents, or ConfigError naming every problem with file and line.

    `allow_literal_secrets` is the local stack's leniency (literal secrets, http:// peers); `stage`, when given,
    is the only stage whose `ssm:` parameters the config may name. `names` are the commands that exist (default:
    what the entry point declared, config/names.py); without any, command names are not checked. `local_peers`
    (the local stack's LOCAL_PEERS) resolves `local://<role>` addresses to where its fakes run. `check_hosts`:
    the peers' URLs (as resolved) must name hosts the stack lists for them (peers.not_pinned), as every save
    checks."""
    names = names or declared_names()
    problems: list[tuple[str, int, str]] = []
    global_doc = next((d for d in documents if d.name == GLOBAL_FILE), None)
    parts: dict = {"language": "zh", "ops_robot": "", "robots": {}, "people": ()}
    if global_doc is None:
        problems.append((GLOBAL_FILE, 0, "missing global config file"))
    else:
        checker = _Checker(global_doc, allow_literal_secrets, stage, names, local_peers, check_hosts)
        parts = _global(checker)
        if parts["ops_robot"] and parts["ops_robot"] not in parts["robots"]:
            checker.problem(
                global_doc.data.get("settings"),
                "ops_robot",
                f"settings.ops_robot '{parts['ops_robot']}' is not a robot",
            )
        if parts["gitlab"] and parts["gitlab"].config_repo and not parts["ops_robot"]:
            checker.problem(
                global_doc.data.get("gitlab"),
                "config_repo",
                "gitlab.config_repo needs settings.ops_robot: sync errors are posted to that group",
            )
        problems += checker.problems
    language, robots = parts["language"], parts["robots"]

    projects: dict[str, Project] = {}
    repos: dict[str, str] = {}
    for document in documents:
        if document is global_doc:
            continue
        checker = _Checker(document, allow_literal_secrets, stage, names, local_peers, check_hosts)
        project = _project(checker, language)
        if project:
            if project.pipeline.init_on_push and not parts.get("gitlab"):
                checker.problem(
                    document.data.get("pipeline"),
                    "init_on_push",
                    "pipeline.init_on_push needs a gitlab: section in opsbot.yaml",
                )
            if project.review.enabled and not parts.get("gitlab"):
                checker.problem(
                    document.data.get("review"), "enabled", "review.enabled needs a gitlab: section in opsbot.yaml"
                )
            project = deploy_section.check(checker, document.data, project, parts)
            if "governance" in parts:
                zone = parts["governance"].timezone
                project = replace(
                    project, governance=governance_section.with_timezone(project.governance, document.data, zone)
                )
            key = "robots" if document.data.get("robots") is not None else "robot"
            for robot in project.robots:
                if robot not in robots:
                    checker.problem(document.data, key, f"project.{key} '{robot}' is not defined under robots")
            if project.name in projects:
                checker.problem(document.data, "project", f"project '{project.name}' is defined twice")
            if project.repo and project.repo.lower() in repos:
                checker.problem(
                    document.data,
                    "repo",
                    f"repo '{project.repo}' already belongs to project '{repos[project.repo.lower()]}'",
                )
            projects[project.name] = project
            repos[project.repo.lower()] = project.name
        problems += checker.problems
    if problems:
        raise ConfigError(problems)
    return Config(projects=projects, version=version, **parts)
