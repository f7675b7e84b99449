"""The merge-request part of GitLab's REST API that review automation uses, mixed into GitLabClient
(gitlab/api.py), which supplies `_call` (errors sorted into refused and unavailable) and `_gl`.

These go through python-gitlab's http_* helpers with explicit paths: its MR diffs manager reads the diff
*versions* API, not `GET …/merge_requests/:iid/diffs`, and plain paths keep the calls easy to match to
GitLab's docs.
"""

from __future__ import annotations

from urllib.parse import quote

from opsbot.peers import PeerRefused

_NO_RETRIES = {"obey_rate_limit": False, "max_retries": 0}


def _mr_path(path: str, iid: int) -> str:
    return f"/projects/{quote(path, safe='')}/merge_requests/{int(iid)}"


class MergeRequestCalls:
    def merge_request(self, path: str, iid: int) -> dict:
        return self._call(f"merge request !{iid}", lambda: self._gl.http_get(_mr_path(path, iid), **_NO_RETRIES))

    def merge_request_diffs(self, path: str, iid: int) -> list[dict]:
        """Every changed file of the merge request (old_path, new_path, diff), all pages."""
        return self._call(
            f"diffs of !{iid}",
            lambda: self._gl.http_list(_mr_path(path, iid) + "/diffs", get_all=True, per_page=100, **_NO_RETRIES),
        )

    def merge_request_versions(self, path: str, iid: int) -> list[dict]:
        """The merge request's diff versions, newest first: each head it has had (`head_commit_sha`) and when GitLab
        took it (`created_at`), i.e. when it was pushed. The newest page is enough: the head is the newest."""
        return self._call(
            f"versions of !{iid}",
            lambda: self._gl.http_list(_mr_path(path, iid) + "/versions", get_all=False, per_page=20, **_NO_RETRIES),
        )

    def update_merge_request(self, path: str, iid: int, **fields) -> dict:
        """PUT the given fields: add_labels / remove_labels (lists), reviewer_ids, assignee_ids."""
        data = {k: ",".join(v) if k in ("add_labels", "remove_labels") else v for k, v in fields.items()}
        return self._call(
            f"update !{iid}", lambda: self._gl.http_put(_mr_path(path, iid), post_data=data, **_NO_RETRIES)
        )

    def note(self, path: str, iid: int, note_id: int) -> dict | None:
        """One note of the merge request as GitLab has it (author, body, system, noteable_iid); None when GitLab
        has no such note there (404). A hook only says which note to read: who wrote it and what it says are
        read here."""
        try:
            return self._call(
                f"note {int(note_id)} of !{iid}",
                lambda: self._gl.http_get(f"{_mr_path(path, iid)}/notes/{int(note_id)}", **_NO_RETRIES),
            )
        except PeerRefused as exc:  # GitLabRefused, raised by the client's _call
            if exc.status == 404:
                return None
            raise

    def post_note(self, path: str, iid: int, body: str) -> dict:
        return self._call(
            f"note on !{iid}",
            lambda: self._gl.http_post(_mr_path(path, iid) + "/notes", post_data={"body": body}, **_NO_RETRIES),
        )

    def merge(self, path: str, iid: int, sha: str, squash: bool) -> dict:
        """Merge at `sha`; GitLab answers 409 when the source branch moved past it (GitLabRefused)."""
        return self._call(
            f"merge !{iid}",
            lambda: self._gl.http_put(
                _mr_path(path, iid) + "/merge", post_data={"sha": sha, "squash": squash}, **_NO_RETRIES
            ),
        )

    def user_id(self, username: str) -> int | None:
        found = self._call(
            f"user {username}",
            lambda: self._gl.http_list("/users", query_data={"username": username}, get_all=False, **_NO_RETRIES),
        )
        return found[0]["id"] if found else None

    def open_merge_requests_from(self, path: str, branch: str) -> list[dict]:
        """The open merge requests whose source branch is `branch` (a branch pipeline names no merge request)."""
        return self._call(
            f"merge requests from {branch}",
            lambda: self._gl.http_list(
                f"/projects/{quote(path, safe='')}/merge_requests",
                query_data={"state": "opened", "source_branch": branch},
                get_all=False,
                per_page=20,
                **_NO_RETRIES,
            ),
        )

    def open_reviews(self, path: str, username: str) -> int:
        """How many open merge requests of the project `username` is reviewing: their current load."""
        found = self._call(
            f"reviews of {username}",
            lambda: self._gl.http_list(
                f"/projects/{quote(path, safe='')}/merge_requests",
                query_data={"state": "opened", "reviewer_username": username},
                get_all=True,
                per_page=100,
                **_NO_RETRIES,
            ),
        )
        return len(found)
