"""The deploy repo's file a release changes, as the steps that read and write it take it (their config), and the one
look-up every writing step makes before it writes: its own release's commit in the file's history."""

from __future__ import annotations

from dataclasses import dataclass

from opsbot.config.deploy import GitOpsTarget
from opsbot.promotion import trailers

HISTORY_LOOKUP = 30  # how far back a step looks for its own commit: far more than can land during one release


@dataclass(frozen=True)
class DeployFile:
    """Where the desired state is, and how its image is written (snapshot of `deploy:` when the release started)."""

    repo: str
    branch: str
    file: str
    format: str
    image: str
    key: str = ""
    container: str = ""
    pin: str = "tag"

    @classmethod
    def of(cls, target: GitOpsTarget) -> dict:
        return {
            "repo": target.repo,
            "branch": target.branch,
            "file": target.file,
            "format": target.format,
            "image": target.image,
            "key": target.key,
            "container": target.container,
            "pin": target.pin,
        }

    def target(self) -> GitOpsTarget:
        return GitOpsTarget(
            repo=self.repo,
            branch=self.branch,
            file=self.file,
            format=self.format,
            image=self.image,
            key=self.key,
            container=self.container,
            pin=self.pin,
        )


def own_commit(repo, where: DeployFile, release_id: str, ref: str = "") -> dict | None:
    """This release's commit of the file on `ref` (default: the deploy branch), found by its trailer; None when
    there is none yet. A write whose answer was lost, or a worker stopped after it, is found here, not made again."""
    for commit in repo.file_history(where.repo, where.file, ref or where.branch, per_page=HISTORY_LOOKUP):
        if trailers.release_of(commit) == release_id:
            return commit
    return None
