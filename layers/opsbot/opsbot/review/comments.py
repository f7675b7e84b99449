"""Who wrote a merge-request note and what it says, as GitLab's API has it.

A Note Hook carries only the webhook token, which every project sharing the hook knows, so its body identifies
nobody: it names the note to read (`NoteEvent`), and the author (the actor of its commands) and the text (what
the commands are parsed from) are read from `GET …/merge_requests/:iid/notes/:note_id`. A note GitLab does not
have there, a system note, or one on another merge request runs nothing.
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
