"""GitLab's REST API, as much of it as GitOps and review use, through python-gitlab (merge-request calls in
merge_request_api.py).

Errors are sorted the way the worker needs them, as drone/api.py does for Drone: GitLab saying no (4xx) is a
GitLabRefused with GitLab's own message, which retrying cannot change; GitLab being down, slow or throttling
(5xx, 429, timeouts, connection errors) is a GitLabUnavailable, a RetryLater, so the queue tries again.
python-gitlab's own retries and its sleeping on 429 are switched off: a Lambda must not wait out a rate limit.
The token is a secret: never log it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from opsbot import secrets
from opsbot.config.model import Config
from opsbot.gitlab.deploy_api import DeployRepoCalls
from opsbot.gitlab.merge_request_api import MergeRequestCalls
from opsbot.jobs import deadline
from opsbot.peers import answer_lost, check_pinned, errors
from opsbot.settings import settings
from opsbot.state import reads

# GitLabNotConfigured: the config has no `gitlab:` section, so nothing that needs GitLab can run.
GitLabNotConfigured, GitLabRefused, GitLabUnavailable = errors("GitLab", "gitlab: {url, token}", __name__)
# Every call: no retry inside python-gitlab, no sleeping on 429; the queue retries instead.
_NO_RETRIES = {"obey_rate_limit": False, "max_retries": 0}


@dataclass(frozen=True)
class ProjectInfo:
    path: str
    default_branch: str
    web_url: str


class GitLabClient(MergeRequestCalls, DeployRepoCalls):
    def __init__(self, url: str, token: str, timeout: float | None = None):
        import gitlab  # python-gitlab takes ~0.25 s to import: only jobs that talk to GitLab pay for it

        check_pinned(url, "gitlab")  # the token goes only to a host the stack lists (GITLAB_HOSTS)
        self._gl = gitlab.Gitlab(
            url,
            private_token=token,
            timeout=timeout or settings().http_timeout_seconds,
            retry_transient_errors=False,
            per_page=100,
            keep_base_url=True,
        )

    def _call(self, what: str, call):
        import requests
        from gitlab.exceptions import GitlabError

        deadline.check(f"GitLab {what}")  # a job out of its time budget stops before the call, not in it
        try:
            return call()
        except requests.RequestException as exc:
            raise GitLabUnavailable(
                f"GitLab did not answer ({what}): {type(exc).__name__}", in_doubt=answer_lost(exc)
            ) from None
        except GitlabError as exc:
            status = exc.response_code
            if status is None or status >= 500 or status == 429:
                raise GitLabUnavailable(f"GitLab answered {status or 'badly'} ({what})") from None
            message = exc.error_message if isinstance(exc.error_message, str) else str(exc.error_message)
            raise GitLabRefused(status, f"{message[:300]} ({what})") from None

    def _project(self, path: str):
        return self._gl.projects.get(path, lazy=True)  # lazy: no request until a call on it

    def project(self, path: str) -> ProjectInfo:
        found = self._call(f"project {path}", lambda: self._gl.projects.get(path, **_NO_RETRIES))
        return ProjectInfo(found.path_with_namespace, found.default_branch or "main", found.web_url)

    def branch_head(self, path: str, branch: str) -> str | None:
        try:
            found = self._call(f"branch {branch}", lambda: self._project(path).branches.get(branch, **_NO_RETRIES))
        except GitLabRefused as exc:
            if exc.status == 404:
                return None
            raise
        return found.commit["id"]

    def tree(self, path: str, ref: str, folder: str = "") -> list[dict]:
        """The entries (name, path, type blob|tree) of one folder at `ref`; [] when the folder is not there."""
        try:
            return self._call(
                f"tree {folder or '/'}@{ref[:12]}",
                lambda: self._project(path).repository_tree(
                    path=folder, ref=ref, get_all=True, per_page=100, **_NO_RETRIES
                ),
            )
        except GitLabRefused as exc:
            if exc.status == 404:
                return []
            raise

    def file_text(self, path: str, file_path: str, ref: str) -> str | None:
        """A file's text at `ref`, or None when there is no such file. Kept for the job's continuation, should it
        run out of time (state.reads): a sync's config files, a review's OWNERS files, one call each."""
        return reads.read(f"file#{path}#{file_path}@{ref}", lambda: self._file_text(path, file_path, ref))

    def _file_text(self, path: str, file_path: str, ref: str) -> str | None:
        try:
            raw = self._call(
                f"file {file_path}@{ref[:12]}",
                lambda: self._project(path).files.raw(file_path=file_path, ref=ref, **_NO_RETRIES),
            )
        except GitLabRefused as exc:
            if exc.status == 404:
                return None
            raise
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)

    def changed_paths(self, path: str, before: str, after: str) -> set[str] | None:
        """Every path a push from `before` to `after` touched (renames count twice), through the compare API;
        None when GitLab gave up comparing (a huge push), meaning: it may have touched anything."""
        result = self._call(
            f"compare {before[:8]}..{after[:8]}",
            lambda: self._project(path).repository_compare(before, after, **_NO_RETRIES),
        )
        if result.get("compare_timeout"):
            return None
        return {p for diff in result.get("diffs") or [] for p in (diff.get("old_path"), diff.get("new_path")) if p}

    def branches_containing(self, path: str, sha: str) -> list[str]:
        """The branches whose history holds the commit `sha` (`GET …/repository/commits/:sha/refs?type=branch`);
        [] for a commit GitLab does not have."""
        try:
            found = self._call(
                f"branches of {sha[:8]}",
                lambda: self._gl.http_list(
                    f"/projects/{quote(path, safe='')}/repository/commits/{quote(sha, safe='')}/refs",
                    query_data={"type": "branch"},
                    get_all=True,
                    per_page=100,
                    **_NO_RETRIES,
                ),
            )
        except GitLabRefused as exc:
            if exc.status == 404:
                return []
            raise
        return [str(r.get("name")) for r in found if isinstance(r, dict) and r.get("type") == "branch"]

    def create_branch(self, path: str, branch: str, ref: str) -> bool:
        """Create `branch` at `ref`; False when it exists already (a retried job made it)."""
        try:
            self._call(
                f"create branch {branch}",
                lambda: self._project(path).branches.create({"branch": branch, "ref": ref}, **_NO_RETRIES),
            )
        except GitLabRefused as exc:
            if exc.status == 400 and "already exists" in exc.message:
                return False
            raise
        return True

    def commit(self, path: str, branch: str, message: str, actions: list[dict]) -> str:
        """One commit of `actions` (create/update/delete) on `branch`, through the commits API; its sha."""
        created = self._call(
            f"commit on {branch}",
            lambda: self._project(path).commits.create(
                {"branch": branch, "commit_message": message, "actions": actions}, **_NO_RETRIES
            ),
        )
        return created.id

    def open_merge_request(self, path: str, source: str, target: str) -> dict | None:
        found = self._call(
            f"merge requests of {source}",
            lambda: self._project(path).mergerequests.list(
                source_branch=source, target_branch=target, state="opened", get_all=False, **_NO_RETRIES
            ),
        )
        return found[0].asdict() if found else None

    def create_merge_request(self, path: str, source: str, target: str, title: str, description: str) -> dict:
        created = self._call(
            f"open merge request {source}",
            lambda: self._project(path).mergerequests.create(
                {
                    "source_branch": source,
                    "target_branch": target,
                    "title": title,
                    "description": description,
                    "remove_source_branch": True,
                },
                **_NO_RETRIES,
            ),
        )
        return created.asdict()


def client_for(config: Config, timeout: float | None = None) -> GitLabClient:
    if config.gitlab is None:
        raise GitLabNotConfigured("GitLab is not configured: add `gitlab: {url, token}` to opsbot.yaml")
    return GitLabClient(config.gitlab.url, secrets.resolve(config.gitlab.token), timeout)


def deploy_client_for(config: Config, timeout: float | None = None) -> GitLabClient:
    """A client with the deploy repo's own token (`gitlab.deploy_token`), which may write that repo and nothing else:
    every read and write of a GitOps release goes through it."""
    if config.gitlab is None or not config.gitlab.deploy_token:
        raise GitLabNotConfigured("GitOps releases need `gitlab: {deploy_repo, deploy_token}` in opsbot.yaml")
    return GitLabClient(config.gitlab.url, secrets.resolve(config.gitlab.deploy_token), timeout)
