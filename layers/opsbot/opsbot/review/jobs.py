"""The worker's review jobs: GitLab's Merge Request, Note and Pipeline hooks for projects with
`review.enabled`. Each effect happens once however often GitLab (or SQS) delivers: a merge request's triage
is keyed on its head commit, a comment's commands on the note id, a merge on the sha."""

from __future__ import annotations

from opsbot.config import store as config_store
from opsbot.gitlab import events
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, read_payload
from opsbot.jobs.registry import handles
from opsbot.log import logger
from opsbot.review import commands, comments, tide
from opsbot.review.session import Session
from opsbot.review.triage import triage
from opsbot.state import effects, keys


def _session(repo: str, iid: int, gitlab=None):
    """The merge request under review, or None when its project has not opted in."""
    config = config_store.load()
    project = config.project_for_repo(repo)
    if project is None or not project.review.enabled or config.gitlab is None:
        return None
    return Session(config, project, repo, iid, gitlab)


@handles(kinds.GITLAB_MERGE_REQUEST)
def on_merge_request(job: Job) -> str:
    try:
        event = read_payload(events.MergeRequestEvent.from_payload, job.payload, "Merge Request Hook")
    except events.NotHandled as exc:  # ingress ignores these; a job queued before it did still ends here
        return f"ignored: {exc}"
    session = _session(event.repo, event.iid)
    if session is None:
        return f"ignored: review automation is off for {event.repo}"
    if event.new_commits:
        head = event.head or job.id
        done = effects.once(
            f"{keys.REVIEW_TRIAGE}{event.repo.lower()}!{event.iid}#{event.action}#{head}",
            lambda: triage(session, event),
        )
        triaged = f"triaged: {done['size']}, reviewers {', '.join(done['reviewers']) or '-'}"
        return f"{triaged}; {tide.merge_if_ready(session)}"
    return tide.merge_if_ready(session)


@handles(kinds.GITLAB_NOTE)
def on_note(job: Job) -> str:
    try:
        note = read_payload(events.NoteEvent.from_payload, job.payload, "Note Hook")
    except events.NotHandled as exc:  # ingress ignores these; a job queued before it did still ends here
        return f"ignored: {exc}"
    session = _session(note.repo, note.iid)
    if session is None:
        return f"ignored: review automation is off for {note.repo}"
    try:
        # the hook names the note; who wrote it and what it says are GitLab's API's to tell
        comment = comments.read(session.gitlab, note.repo, note.iid, note.note_id)
    except comments.NoComment as exc:
        # GitLab sends hooks only for notes it has: this one may be forged with a leaked webhook token
        logger.warning(
            "Note Hook for a note GitLab does not show; nothing done",
            extra={"repo": note.repo, "iid": note.iid, "note_id": note.note_id, "reason": str(exc)},
        )
        return f"ignored: {exc}"
    found = commands.parse(comment.body)
    if not found:
        return "ignored: no commands"

    def run() -> dict:
        refused = []
        for index, (name, argument) in enumerate(found):
            # each command once as well: a job retried after its third command failed must not /retest twice
            key = f"{comment.id}#{index}"
            outcome = effects.once(
                f"{keys.REVIEW_COMMAND}{note.repo.lower()}!{note.iid}#{key}",
                lambda index=index, name=name, argument=argument: {
                    "refused": commands.run(session, comment, index, name, argument)
                },
            )
            if outcome["refused"]:
                refused.append(name)
                session.note(key, commands.refusal_note(comment.author, name, outcome["refused"]))
        return {"ran": [n for n, _ in found], "refused": refused}

    # The comment's marker is kept for good: a Note Hook naming this note again, however much later, runs nothing.
    done = effects.once(f"{keys.REVIEW_COMMANDS}{note.repo.lower()}!{note.iid}#{comment.id}", run, permanent=True)
    ran = f"commands {', '.join(done['ran'])} (refused: {', '.join(done['refused']) or '-'})"
    return f"{ran}; {tide.merge_if_ready(session)}"


@handles(kinds.GITLAB_PIPELINE)
def on_pipeline(job: Job) -> str:
    event = read_payload(events.PipelineEvent.from_payload, job.payload, "Pipeline Hook")
    first = _session(event.repo, event.iid or 0)  # iid 0 until the branch's merge requests are known
    if first is None:
        return f"ignored: review automation is off for {event.repo}"
    iids = (
        [event.iid]
        if event.iid is not None
        else [
            mr["iid"]
            for mr in first.gitlab.open_merge_requests_from(event.repo, event.ref)
            if event.ref and mr.get("sha") == event.sha
        ]
    )
    if not iids:
        return "ignored: a pipeline of no open merge request's head"
    return "; ".join(f"!{iid} " + tide.merge_if_ready(_session(event.repo, iid, first.gitlab)) for iid in iids)
