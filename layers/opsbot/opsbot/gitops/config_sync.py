"""The config repo, synced: a push to `gitlab.config_repo`'s `config_branch` becomes the stored config.

The files are read at the pushed commit through GitLab's API, and the whole resulting config is validated, not
only the files the push touched, so a change can never leave a project pointing at a robot that another file
removed. Only a valid config replaces the stored one (one atomic put, version = the commit sha; earlier
versions stay for `config history` and `config rollback`). Otherwise nothing changes, and the ops group is told
what is wrong, file and line, with the pusher @-mentioned. A deleted project file is a removed project: the
tree at the commit is the truth.

Which files a push touched decides whether it concerns the config at all. GitLab lists at most 20 commits in a
Push Hook; for a longer push the compare API (`before..after`) says what changed. Each pushed commit is synced at
most once (state.effects), and a push that is no longer the branch's head is skipped: a job retried after a
newer push synced must not put the older config back. The save is conditional on the stored config the job saw
before it checked the head (config.store's seq), so a slow job cannot overwrite a newer push saved meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbot import metrics
from opsbot.config import store
from opsbot.config.model import GLOBAL_FILE, PROJECTS_DIR, Config, ConfigError
from opsbot.config.yaml_source import is_config_file, parse_files
from opsbot.delivery.post import post_once
from opsbot.gitlab.api import GitLabClient, GitLabRefused, client_for
from opsbot.gitlab.events import Push
from opsbot.gitops import notices
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.log import logger
from opsbot.message import Reply
from opsbot.state import effects, keys


@dataclass
class SyncResult:
    outcome: str  # what the job log says
    notice: dict = field(default_factory=dict)  # a Reply for the ops group, as stored by state.effects

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "notice": self.notice}


def _in_repo(config: Config, name: str) -> str:
    prefix = config.gitlab.config_path
    return f"{prefix}/{name}" if prefix else name


def _relative(config: Config, path: str) -> str | None:
    prefix = config.gitlab.config_path
    if not prefix:
        return path
    return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None


def changed_paths(client: GitLabClient, push: Push) -> set[str] | None:
    """What the push touched; None when that cannot be known (a new branch, a compare GitLab gave up on)."""
    if push.created:
        return None
    if push.complete:
        return push.listed_paths()
    logger.info(
        "push lists fewer commits than it has; asking the compare API",
        extra={"listed": len(push.commits), "total": push.total},
    )
    return client.changed_paths(push.repo, push.before, push.after)


def read_config(client: GitLabClient, config: Config, ref: str) -> dict[str, str]:
    """{relative path: text} of every config file in the repo at `ref`."""
    texts: dict[str, str] = {}
    if (text := client.file_text(config.gitlab.config_repo, _in_repo(config, GLOBAL_FILE), ref)) is not None:
        texts[GLOBAL_FILE] = text
    for entry in client.tree(config.gitlab.config_repo, ref, _in_repo(config, PROJECTS_DIR)):
        name = f"{PROJECTS_DIR}/{entry['name']}"
        if entry.get("type") == "blob" and is_config_file(name):
            if (text := client.file_text(config.gitlab.config_repo, entry["path"], ref)) is not None:
                texts[name] = text
    return texts


def _counted(kind: str, result: SyncResult) -> SyncResult:
    metrics.count(metrics.CONFIG_SYNCS, Outcome=kind)
    return result


def sync(config: Config, push: Push) -> SyncResult:
    client = client_for(config)
    changed = changed_paths(client, push)
    touched = (
        None
        if changed is None
        else sorted(p for p in (_relative(config, path) for path in changed) if p and is_config_file(p))
    )
    if touched == []:
        return _counted("no config change", SyncResult("no config file changed"))
    # Read before the head check, and saved on condition that it is still current: a newer push saved after this
    # check makes the save fail (and the job's retry then finds itself superseded), whatever the timing.
    stored = store.current()
    head = client.branch_head(push.repo, push.branch)
    if head != push.after:
        return _counted("superseded", SyncResult(f"superseded: {push.branch} is now at {(head or 'nothing')[:8]}"))
    if stored.version == push.after:
        return _counted("already stored", SyncResult("already the stored version"))
    documents, problems = parse_files(read_config(client, config, push.after))
    pusher = config.person_for_gitlab(push.user_username) or config.person_for_git(push.user_email)
    try:
        if problems:
            raise ConfigError(problems)
        new = store.check(documents, push.after)
        synced = SyncResult(
            f"synced version {push.after[:8]}", notices.synced(config, new, push, touched, pusher).as_dict()
        )
        # The save and this job's record of it are one transaction: a retry after it finds the sync done and its
        # notice still to tell, not a stored version to skip in silence.
        store.save(
            documents,
            push.after,
            source=f"push by {push.user_username or push.user_name}: {push.title}"[:300],
            based_on=stored.seq,
            also=(effects.recorded_with(synced.as_dict()),),
        )
    except store.ConfigChanged:
        raise RetryLater(f"the stored config changed while {push.after[:8]} was synced; checking again") from None
    except ConfigError as exc:
        notice = notices.sync_failed(config, push, exc.problems, pusher, lambda n: _in_repo(config, n))
        return _counted(
            "invalid",
            SyncResult(
                f"invalid: {len(exc.problems)} problem(s); version {config.version[:8]} stays", notice.as_dict()
            ),
        )
    return _counted("synced", synced)


def on_push(config: Config, push: Push) -> str:
    """The job: sync once per pushed commit, then tell the ops group once (again on a retry if telling failed)."""
    if push.deleted:
        return "ignored: the config branch was deleted; the stored config stays"
    try:
        result = effects.once(f"{keys.CONFIG_SYNC}{push.repo}#{push.after}", lambda: sync(config, push).as_dict())
    except GitLabRefused as exc:
        # A wrong token or a missing repo: retrying cannot help. Say so, and park the job for a redrive.
        metrics.count(metrics.CONFIG_SYNCS, Outcome="refused by GitLab")
        refused = notices.gitlab_refused(config, push, exc)
        post_once(config, refused, f"{keys.CONFIG_SYNC}{push.repo}#{push.after}#refused")
        raise PermanentFailure(f"config sync of {push.after[:8]}: {exc}") from None
    if result["notice"]:
        post_once(store.load(), Reply.from_dict(result["notice"]), f"{keys.CONFIG_SYNC}{push.repo}#{push.after}")
    return result["outcome"]
