"""GitLab webhook payloads, as far as the worker reads them."""

from __future__ import annotations

from dataclasses import dataclass

ZERO_SHA = "0" * 40  # `before` of a new branch, `after` of a deleted one


@dataclass(frozen=True)
class Push:
    """A `Push Hook`. GitLab lists at most 20 commits; `total` says how many the push had."""

    repo: str  # path_with_namespace
    branch: str  # "" for a tag ref
    before: str
    after: str
    commits: tuple[dict, ...]
    total: int
    user_name: str
    user_username: str
    user_email: str
    web_url: str
    default_branch: str

    @classmethod
    def from_payload(cls, payload: dict) -> Push:
        """ValueError when the payload is not a push."""
        project = payload.get("project")
        before, after, ref = payload.get("before"), payload.get("after"), payload.get("ref")
        if not isinstance(project, dict) or not isinstance(project.get("path_with_namespace"), str):
            raise ValueError("push without project.path_with_namespace")
        if not all(isinstance(v, str) for v in (before, after, ref)):
            raise ValueError("push without before, after and ref")
        commits = payload.get("commits") if isinstance(payload.get("commits"), list) else []
        total = payload.get("total_commits_count")
        return cls(
            repo=project["path_with_namespace"],
            branch=ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else "",
            before=before,
            after=after,
            commits=tuple(c for c in commits if isinstance(c, dict)),
            total=total if isinstance(total, int) and not isinstance(total, bool) else len(commits),
            user_name=str(payload.get("user_name") or ""),
            user_username=str(payload.get("user_username") or ""),
            user_email=str(payload.get("user_email") or ""),
            web_url=str(project.get("web_url") or ""),
            default_branch=str(project.get("default_branch") or ""),
        )

    @property
    def created(self) -> bool:
        return self.before == ZERO_SHA

    @property
    def deleted(self) -> bool:
        return self.after == ZERO_SHA

    @property
    def complete(self) -> bool:
        """Whether the payload lists every commit of the push."""
        return self.total <= len(self.commits)

    @property
    def title(self) -> str:
        head = next((c for c in self.commits if c.get("id") == self.after), self.commits[-1] if self.commits else {})
        return str(head.get("title") or str(head.get("message") or "").split("\n")[0])

    def listed_paths(self) -> set[str]:
        """The paths the listed commits added, modified or removed."""
        return {
            p
            for c in self.commits
            for key in ("added", "modified", "removed")
            for p in (c.get(key) or [])
            if isinstance(p, str)
        }
