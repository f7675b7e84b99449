"""One merge request under review: its GitLab data, read lazily and once per job, and the writes review
automation makes to it. Every note goes through `note()`: once per key (a retried job does not post twice)
and within the notes budget."""

from __future__ import annotations

from functools import cached_property

from opsbot.config.model import Config, Project
from opsbot.gitlab.api import client_for
from opsbot.review import labels as size_labels
from opsbot.review import store
from opsbot.review.owners import OwnersTree
from opsbot.state import effects, keys


class Session:
    def __init__(self, config: Config, project: Project, repo: str, iid: int, gitlab=None):
        self.config, self.project, self.repo, self.iid = config, project, repo, iid
        self.gitlab = gitlab or client_for(config)
        self.review = project.review

    @cached_property
    def mr(self) -> dict:
        return self.gitlab.merge_request(self.repo, self.iid)

    def refresh(self, mr: dict | None = None) -> None:
        """Take the merge request a write answered with, or read it again. When its head moved, the changed
        files (and so their OWNERS) are read again when next asked for."""
        if not (isinstance(mr, dict) and "iid" in mr):
            mr = self.gitlab.merge_request(self.repo, self.iid)
        if "mr" in self.__dict__ and str(mr.get("sha") or "") != self.head:
            for name in ("diffs", "paths", "owners", "versions"):
                self.__dict__.pop(name, None)
        self.__dict__["mr"] = mr  # replaces the cached_property's value

    @property
    def head(self) -> str:
        """The head commit of the source branch, as GitLab last told us."""
        return str(self.mr.get("sha") or "")

    @property
    def labels(self) -> list[str]:
        return [
            label if isinstance(label, str) else str(label.get("name", "")) for label in self.mr.get("labels") or []
        ]

    @property
    def author(self) -> str:
        return str((self.mr.get("author") or {}).get("username") or "").lower()

    def usernames(self, key: str) -> list[str]:
        return [str(u.get("username") or "").lower() for u in self.mr.get(key) or [] if isinstance(u, dict)]

    @cached_property
    def versions(self) -> list[dict]:
        """The merge request's heads over time, newest first (review/comments.written_before_head reads them)."""
        return self.gitlab.merge_request_versions(self.repo, self.iid)

    @cached_property
    def diffs(self) -> list[dict]:
        return self.gitlab.merge_request_diffs(self.repo, self.iid)

    @cached_property
    def paths(self) -> list[str]:
        return size_labels.changed_paths(self.diffs)

    @cached_property
    def owners(self) -> OwnersTree:
        # OWNERS as the target branch has them: a merge request cannot make its author an approver
        ref = str(self.mr.get("target_branch") or "main")
        return OwnersTree(self.paths, lambda path: self.gitlab.file_text(self.repo, path, ref))

    def change_labels(self, add=(), remove=()) -> None:
        add = [label for label in add if label not in self.labels]
        remove = [label for label in remove if label in self.labels]
        if add or remove:
            fields = {**({"add_labels": add} if add else {}), **({"remove_labels": remove} if remove else {})}
            self.refresh(self.gitlab.update_merge_request(self.repo, self.iid, **fields))

    def note(self, key: str, text: str) -> None:
        def post() -> dict:
            store.take_note_slot()
            effects.commit()  # a note posted twice cannot be taken back, and its answer may be lost
            posted = self.gitlab.post_note(self.repo, self.iid, text)
            return {"id": posted.get("id") if isinstance(posted, dict) else None}

        effects.once(f"{keys.REVIEW_NOTE}{self.repo.lower()}!{self.iid}#{key}", post)

    def user_ids(self, usernames: list[str]) -> dict[str, int | None]:
        return {name: self.gitlab.user_id(name) for name in usernames}
