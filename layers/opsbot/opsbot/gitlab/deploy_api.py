"""The part of GitLab's REST API that GitOps releases use on the deploy repo, mixed into GitLabClient (gitlab/api.py),
which supplies `_call` (errors sorted into refused and unavailable) and `_gl`. Explicit paths, as in
merge_request_api.py, so each call reads like GitLab's docs:

- `GET …/repository/files/:path?ref=` for a file's text with its `last_commit_id`;
- `POST …/repository/commits` with one `update` action carrying that `last_commit_id`: GitLab refuses with 400
  ("You are attempting to update a file that has changed since you started editing it.") when the file changed
  since, so two releases racing never lose an update;
- `GET …/repository/commits?path=&ref_name=` for a file's history (newest first), where a release looks for its own
  trailer before it writes, and `status`/`releases` read who released what;
- `POST …/repository/commits/:sha/revert` with `branch`: a rollback;
- `GET …/repository/compare` for the commits between two releases' source commits.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from opsbot.peers import PeerRefused

_NO_RETRIES = {"obey_rate_limit": False, "max_retries": 0}
# What GitLab says when `last_commit_id` is older than the file's last commit (Files::MultiService::FileChangedError).
FILE_CHANGED = "has changed since you started editing it"


def _project(path: str) -> str:
    return f"/projects/{quote(path, safe='')}"


class DeployRepoCalls:
    def file_at(self, path: str, file_path: str, ref: str) -> tuple[str, str] | None:
        """(text, last_commit_id) of a file at `ref`; None when there is no such file."""
        url = f"{_project(path)}/repository/files/{quote(file_path, safe='')}"
        try:
            found = self._call(
                f"file {file_path}@{ref[:12]}", lambda: self._gl.http_get(url, query_data={"ref": ref}, **_NO_RETRIES)
            )
        except PeerRefused as exc:
            if exc.status == 404:
                return None
            raise
        text = base64.b64decode(found.get("content") or "").decode("utf-8", errors="replace")
        return text, str(found.get("last_commit_id") or found.get("commit_id") or "")

    def update_file(
        self,
        path: str,
        branch: str,
        file_path: str,
        text: str,
        message: str,
        last_commit_id: str,
        author: tuple[str, str] = ("", ""),
    ) -> dict:
        """One commit that updates one file, refused (400, FILE_CHANGED) when the file changed after
        `last_commit_id`; the commit as GitLab returns it (id, web_url, …)."""
        action = {"action": "update", "file_path": file_path, "content": text, "last_commit_id": last_commit_id}
        data = {"branch": branch, "commit_message": message, "actions": [action]}
        name, email = author
        if name:
            data["author_name"] = name
        if email:
            data["author_email"] = email
        return self._call(
            f"commit {file_path} on {branch}",
            lambda: self._gl.http_post(f"{_project(path)}/repository/commits", post_data=data, **_NO_RETRIES),
        )

    def file_history(self, path: str, file_path: str, ref: str, per_page: int = 20, page: int = 1) -> list[dict]:
        """The commits that touched `file_path` on `ref`, newest first (a page of them)."""
        return self._call(
            f"history of {file_path}@{ref}",
            lambda: self._gl.http_list(
                f"{_project(path)}/repository/commits",
                query_data={"path": file_path, "ref_name": ref, "per_page": per_page, "page": page},
                get_all=False,
                **_NO_RETRIES,
            ),
        )

    def commit_of(self, path: str, sha: str) -> dict | None:
        try:
            return self._call(
                f"commit {sha[:12]}",
                lambda: self._gl.http_get(f"{_project(path)}/repository/commits/{quote(sha, safe='')}", **_NO_RETRIES),
            )
        except PeerRefused as exc:
            if exc.status == 404:
                return None
            raise

    def revert(self, path: str, sha: str, branch: str) -> dict:
        """GitLab's revert of `sha` on `branch`: a new commit, `Revert "<title>"` … `This reverts commit <sha>`."""
        return self._call(
            f"revert {sha[:12]} on {branch}",
            lambda: self._gl.http_post(
                f"{_project(path)}/repository/commits/{quote(sha, safe='')}/revert",
                post_data={"branch": branch},
                **_NO_RETRIES,
            ),
        )

    def commits_between(self, path: str, old: str, new: str) -> list[dict]:
        """The commits after `old` up to `new` (oldest first), through the compare API."""
        found = self._call(
            f"compare {old[:8]}..{new[:8]}",
            lambda: self._gl.http_get(
                f"{_project(path)}/repository/compare", query_data={"from": old, "to": new}, **_NO_RETRIES
            ),
        )
        return list(found.get("commits") or [])
