"""The parts of GitLab's Merge Request, Note and Pipeline hooks that review automation reads."""

from __future__ import annotations

from dataclasses import dataclass

ACTS_ON = ("open", "reopen", "update")  # update only when it brings commits (oldrev is set)


def _repo(payload: dict) -> str:
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not isinstance(path, str) or not path:
        raise ValueError("no project.path_with_namespace")
    return path


def _iid(container) -> int:
    iid = container.get("iid") if isinstance(container, dict) else None
    if not isinstance(iid, int) or isinstance(iid, bool):
        raise ValueError("no merge request iid")
    return iid


@dataclass(frozen=True)
class MergeRequestEvent:
    repo: str
    iid: int
    action: str
    new_commits: bool  # open, reopen, or an update that pushed commits
    head: str  # last_commit.id, "" when GitLab left it out
    first_contribution: bool

    @classmethod
    def from_payload(cls, payload: dict) -> MergeRequestEvent:
        attributes = payload.get("object_attributes")
        if not isinstance(attributes, dict):
            raise ValueError("no object_attributes")
        action = str(attributes.get("action") or "")
        last = attributes.get("last_commit") if isinstance(attributes.get("last_commit"), dict) else {}
        return cls(
            repo=_repo(payload),
            iid=_iid(attributes),
            action=action,
            new_commits=action in ("open", "reopen") or (action == "update" and bool(attributes.get("oldrev"))),
            head=str(last.get("id") or ""),
            first_contribution=attributes.get("first_contribution") is True,
        )


@dataclass(frozen=True)
class NoteEvent:
    """A Note Hook says which note to read, and nothing more is believed of it: anyone holding the webhook token
    can send one, so who wrote the note and what it says come from GitLab's API (review/comments.py)."""

    repo: str
    iid: int
    note_id: int
    action: str  # create | update (GitLab 16.11+ fires on edits too)

    @classmethod
    def from_payload(cls, payload: dict) -> NoteEvent | None:
        """None when the note is not on a merge request."""
        attributes = payload.get("object_attributes")
        if not isinstance(attributes, dict) or attributes.get("noteable_type") != "MergeRequest":
            return None
        note_id = attributes.get("id")
        if not isinstance(note_id, int) or isinstance(note_id, bool) or note_id <= 0:
            raise ValueError("no note id")
        return cls(
            repo=_repo(payload),
            iid=_iid(payload.get("merge_request")),
            note_id=note_id,
            action=str(attributes.get("action") or "create"),
        )


@dataclass(frozen=True)
class PipelineEvent:
    """A Pipeline Hook. A merge-request pipeline names its merge request; a branch pipeline (Drone's commit
    statuses show up in GitLab as external ones) names only its ref and sha."""

    repo: str
    iid: int | None
    ref: str
    sha: str

    @classmethod
    def from_payload(cls, payload: dict) -> PipelineEvent:
        attributes = payload.get("object_attributes") if isinstance(payload.get("object_attributes"), dict) else {}
        try:
            iid: int | None = _iid(payload.get("merge_request"))
        except ValueError:
            iid = None
        return cls(
            repo=_repo(payload), iid=iid, ref=str(attributes.get("ref") or ""), sha=str(attributes.get("sha") or "")
        )
