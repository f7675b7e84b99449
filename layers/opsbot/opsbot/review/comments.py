"""Who wrote a merge-request note and what it says, as GitLab's API has it.

A Note Hook carries only the webhook token, which every project sharing the hook knows, so its body identifies
nobody: it names the note to read (`NoteEvent`), and the author (the actor of its commands) and the text (what
the commands are parsed from) are read from `GET …/merge_requests/:iid/notes/:note_id`. A note GitLab does not
have there, a system note, or one on another merge request runs nothing.

When it was written (`created_at`, GitLab's) also binds what it may vouch for: an `/lgtm` or `/approve` counts
only for a head commit pushed before the comment was written (`written_before_head`), read from the merge request's
versions (`GET …/merge_requests/:iid/versions`: each head and when GitLab took it). A comment is about the code its
author saw; a push after it (seconds later, or a replay of the note's hook long after) is code they never saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime


class NoComment(Exception):
    """There is no comment to act on; the message says why."""


@dataclass(frozen=True)
class Comment:
    id: int
    author: str  # the GitLab username, as the API gives it
    author_name: str  # the author's display name (their own text: escape it wherever it is shown)
    body: str
    at_ms: int  # when GitLab says it was written: the audit record's time, the same on every redelivery


def _at_ms(created_at: object) -> int:
    try:
        return int(datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


def pushed_at_ms(versions: list, head: str) -> int | None:
    """When GitLab took `head` as the merge request's head: the newest version with it (versions are newest
    first); None when no version has it (GitLab has not refreshed the merge request yet)."""
    for version in versions if isinstance(versions, list) else []:
        if isinstance(version, dict) and version.get("head_commit_sha") == head and version.get("created_at"):
            try:
                return int(datetime.fromisoformat(str(version["created_at"]).replace("Z", "+00:00")).timestamp() * 1000)
            except ValueError:
                return None
    return None


def written_before_head(comment_ms: int, head: str, versions: list) -> str:
    """Why a comment written at `comment_ms` may not vouch for `head` ("" when it may): it was written before the
    head was pushed, or GitLab shows no version with that head to tell when."""
    pushed = pushed_at_ms(versions, head)
    if pushed is None:
        return f"GitLab shows no version of this merge request with the head {head[:8]} yet; comment again shortly"
    if comment_ms <= pushed:  # the same millisecond tells no order: not shown to have come after
        return f"it was written before the head {head[:8]} was pushed; review the new commits and comment again"
    return ""


def read(gitlab, repo: str, iid: int, note_id: int) -> Comment:
    """The note `note_id` of merge request `repo!iid`, from GitLab's API; NoComment when there is none to act on."""
    note = gitlab.note(repo, iid, note_id)
    if note is None:
        raise NoComment(f"GitLab has no note {note_id} on {repo}!{iid}")
    if note.get("noteable_type") != "MergeRequest" or note.get("noteable_iid") != iid or note.get("id") != note_id:
        raise NoComment(f"note {note_id} is not a comment on {repo}!{iid}")
    if note.get("system"):
        raise NoComment(f"note {note_id} is a system note")
    author = note.get("author") if isinstance(note.get("author"), dict) else {}
    username, body = author.get("username"), note.get("body")
    if not isinstance(username, str) or not username or not isinstance(body, str):
        raise NoComment(f"note {note_id} has no author or no text")
    name = author.get("name")
    return Comment(
        id=note_id,
        author=username,
        author_name=name if isinstance(name, str) else "",
        body=body,
        at_ms=_at_ms(note.get("created_at")),
    )
