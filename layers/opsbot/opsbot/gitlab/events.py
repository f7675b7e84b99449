"""GitLab webhook payloads: the shape of each hook opsbot handles, and the parts the worker reads.

Each parser decides at ingress (gitlab/webhook.py: a 400 naming the field for a malformed body, a 200 "ignored"
for a hook it does not act on) and reads the job again in the worker (gitops/, review/), so a hook that ingress
queues is one the worker can read. A parser raises shape.Malformed (a ValueError) for a body that is not the
hook it claims to be, and NotHandled for a well-formed one that opsbot does nothing with.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsbot.ingress import shape

ZERO_SHA = "0" * 40  # `before` of a new branch, `after` of a deleted one
MAX_PUSH_COMMITS = 100  # GitLab lists at most 20 commits in a Push Hook (total_commits_count says how many)
MAX_COMMIT_PATHS = 10_000  # each of a listed commit's added, modified and removed
# Merge request actions that may change whether it can merge (triage runs on those that bring commits), and
# the ones after which there is nothing left to do.
MERGE_REQUEST_ACTIONS = ("open", "reopen", "update", "approval", "approved", "unapproval", "unapproved")
MERGE_REQUEST_ENDS = ("close", "merge")


class NotHandled(Exception):
    """A well-formed hook that opsbot does not act on; the message says what it is."""


def _object_kind(payload: dict, *kinds: str) -> str:
    """GitLab names every hook's kind in the body too: a body of another kind than its header says is malformed."""
    kind = payload.get("object_kind")
    if kind not in kinds:
        raise shape.Malformed(f"object_kind is {shape.shown(kind)}, not {' or '.join(map(repr, kinds))}")
    return kind


def _repo(payload: dict) -> str:
    project = shape.obj(payload, "project", required=True)
    return shape.text(project, "path_with_namespace", "project", required=True, max_chars=shape.NAME_CHARS)


def _iid(container: dict, where: str) -> int:
    return shape.integer(container, "iid", where, required=True, minimum=1)


@dataclass(frozen=True)
class Push:
    """A `Push Hook` (or a `Tag Push Hook`, whose branch is ""). GitLab lists at most 20 commits; `total` says
    how many the push had."""

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
        """shape.Malformed when the payload is not a push."""
        return cls._read(payload, "push")

    @classmethod
    def from_tag_payload(cls, payload: dict) -> Push:
        """shape.Malformed when the payload is not a tag push."""
        return cls._read(payload, "tag_push")

    @classmethod
    def _read(cls, payload: dict, kind: str) -> Push:
        _object_kind(payload, kind)
        repo = _repo(payload)
        project = payload["project"]
        before, after = (shape.text(payload, k, required=True, max_chars=shape.SHA_CHARS) for k in ("before", "after"))
        ref = shape.text(payload, "ref", required=True, max_chars=shape.NAME_CHARS)
        commits = shape.objects(payload, "commits", max_items=MAX_PUSH_COMMITS)
        for index, commit in enumerate(commits):
            where = f"commits[{index}]"
            shape.text(commit, "id", where, max_chars=shape.SHA_CHARS)
            shape.text(commit, "title", where, max_chars=1 << 20)
            shape.text(commit, "message", where, max_chars=1 << 20)
            for key in ("added", "modified", "removed"):
                shape.texts(commit, key, where, max_items=MAX_COMMIT_PATHS, max_chars=4096)
        total = shape.integer(payload, "total_commits_count")
        return cls(
            repo=repo,
            branch=ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else "",
            before=before,
            after=after,
            commits=tuple(commits),
            total=total if total is not None else len(commits),
            user_name=shape.text(payload, "user_name"),
            user_username=shape.text(payload, "user_username"),
            user_email=shape.text(payload, "user_email"),
            web_url=shape.text(project, "web_url", "project"),
            default_branch=shape.text(project, "default_branch", "project", max_chars=shape.NAME_CHARS),
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
        return {p for c in self.commits for key in ("added", "modified", "removed") for p in (c.get(key) or [])}


@dataclass(frozen=True)
class MergeRequestEvent:
    """A `Merge Request Hook` of an action that may change whether the merge request can merge."""

    repo: str
    iid: int
    action: str
    new_commits: bool  # open, reopen, or an update that pushed commits
    head: str  # last_commit.id, "" when GitLab left it out
    first_contribution: bool

    @classmethod
    def from_payload(cls, payload: dict) -> MergeRequestEvent:
        """shape.Malformed when the payload is not a merge request hook; NotHandled for a closed or merged one,
        or an action opsbot does not know."""
        _object_kind(payload, "merge_request")
        repo = _repo(payload)
        attributes = shape.obj(payload, "object_attributes", required=True)
        iid = _iid(attributes, "object_attributes")
        action = shape.text(attributes, "action", "object_attributes", required=True, max_chars=40)
        oldrev = shape.text(attributes, "oldrev", "object_attributes", max_chars=shape.SHA_CHARS)
        last = shape.obj(attributes, "last_commit", "object_attributes")
        head = shape.text(last, "id", "object_attributes.last_commit", max_chars=shape.SHA_CHARS)
        first_contribution = shape.flag(attributes, "first_contribution", "object_attributes")
        if action in MERGE_REQUEST_ENDS:
            raise NotHandled(f"merge request {action}")
        if action not in MERGE_REQUEST_ACTIONS:
            raise NotHandled(f"merge request action {shape.shown(action)} is not handled")
        return cls(
            repo=repo,
            iid=iid,
            action=action,
            new_commits=action in ("open", "reopen") or (action == "update" and bool(oldrev)),
            head=head,
            first_contribution=first_contribution,
        )


@dataclass(frozen=True)
class NoteEvent:
    """A new comment on a merge request. A Note Hook says which note to read, and nothing more is believed of it:
    anyone holding the webhook token can send one, so who wrote the note and what it says come from GitLab's API
    (review/comments.py)."""

    repo: str
    iid: int
    note_id: int

    @classmethod
    def from_payload(cls, payload: dict) -> NoteEvent:
        """shape.Malformed when the payload is not a note hook; NotHandled for a note on something else than a
        merge request, or an edit (GitLab 16.11+ sends edits as notes too: commands run once)."""
        _object_kind(payload, "note")
        repo = _repo(payload)
        attributes = shape.obj(payload, "object_attributes", required=True)
        noteable = shape.text(attributes, "noteable_type", "object_attributes", required=True, max_chars=40)
        action = shape.text(attributes, "action", "object_attributes", max_chars=40) or "create"  # before 16.11
        if noteable != "MergeRequest":
            raise NotHandled(f"a comment on a {noteable}, not on a merge request")
        note_id = shape.integer(attributes, "id", "object_attributes", required=True, minimum=1)
        iid = _iid(shape.obj(payload, "merge_request", required=True), "merge_request")
        if action == "update":
            raise NotHandled("an edited comment")
        if action != "create":
            raise NotHandled(f"note action {shape.shown(action)} is not handled")
        return cls(repo=repo, iid=iid, note_id=note_id)


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
        """shape.Malformed when the payload is not a pipeline hook."""
        _object_kind(payload, "pipeline")
        repo = _repo(payload)
        attributes = shape.obj(payload, "object_attributes", required=True)
        merge_request = payload.get("merge_request")  # null for a branch pipeline
        return cls(
            repo=repo,
            iid=None if merge_request is None else _iid(shape.obj(payload, "merge_request"), "merge_request"),
            ref=shape.text(attributes, "ref", "object_attributes", max_chars=shape.NAME_CHARS),
            sha=shape.text(attributes, "sha", "object_attributes", max_chars=shape.SHA_CHARS),
        )
