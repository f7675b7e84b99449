"""Merge when ready, by Tide's rule: `lgtm` and `approved`, no `do-not-merge/*` label, a green pipeline for
the head commit, and not a draft; and beyond the labels, which a person can set and which lag behind a push
while its triage is retried, an lgtm given on the head commit and approvals at the head that cover every
changed file (review/store.py). The merge names the head sha, so GitLab refuses it (409) if someone pushed in
between; that is no error: the push brings its own event, and the rule is checked again then."""

from __future__ import annotations

from opsbot.gitlab.api import GitLabRefused
from opsbot.log import logger
from opsbot.review import store
from opsbot.review.commands import APPROVED, LGTM
from opsbot.review.session import Session
from opsbot.state import effects, keys

SHOWN_FILES = 3  # uncovered files a blocker names


def blockers(mr: dict, labels: list[str], lgtm_sha: str | None) -> list[str]:
    """Why the merge request may not merge yet, from what GitLab shows and the lgtm's commit; [] when nothing
    but the approvals' coverage (`approval_blockers`) is left to check."""
    found = []
    if mr.get("state") != "opened":
        found.append(f"it is {mr.get('state')}")
    found += [f"no `{label}` label" for label in (LGTM, APPROVED) if label not in labels]
    found += [f"`{label}` is set" for label in labels if label.startswith("do-not-merge/")]
    if mr.get("draft") or mr.get("work_in_progress"):
        found.append("it is a draft")
    head = str(mr.get("sha") or "")
    pipeline = mr.get("head_pipeline") if isinstance(mr.get("head_pipeline"), dict) else {}
    if pipeline.get("status") != "success" or (pipeline.get("sha") and pipeline.get("sha") != head):
        found.append("the pipeline of the head commit has not passed")
    if not head:
        found.append("GitLab shows no head commit")
    elif lgtm_sha is None:
        found.append("no /lgtm is recorded")
    elif lgtm_sha != head:
        found.append(f"lgtm was given on {lgtm_sha[:8]}, the head is {head[:8]}")
    return found


def approval_blockers(uncovered: list[str], head: str, has_paths: bool) -> list[str]:
    """Why the approvals given at the head do not do: changed files no approver of theirs approved."""
    if not has_paths:
        return ["the merge request changes no files"]
    if not uncovered:
        return []
    shown = ", ".join(uncovered[:SHOWN_FILES]) + (" …" if len(uncovered) > SHOWN_FILES else "")
    return [f"the approvals at {head[:8]} do not cover {len(uncovered)} changed file(s): {shown}"]


def merge_if_ready(session: Session) -> str:
    session.refresh()  # labels and pipeline as they are now, not as the hook saw them
    mr, labels, head = session.mr, session.labels, session.head
    waiting = blockers(mr, labels, store.lgtm_sha(session.repo, session.iid))
    if not waiting:  # only now read the changed files and their OWNERS
        approving = store.approvers(session.repo, session.iid, head)
        waiting = approval_blockers(
            session.owners.uncovered(approving, session.review.approvers), head, bool(session.paths)
        )
    if waiting:
        return "not merged: " + "; ".join(waiting)
    try:
        effects.once(
            f"{keys.REVIEW_MERGE}{session.repo.lower()}!{session.iid}#{head}",
            lambda: {
                "merged": bool(
                    session.gitlab.merge(
                        session.repo, session.iid, head, squash=session.review.merge_method == "squash"
                    )
                )
            },
        )
    except GitLabRefused as exc:
        # 409: the head moved; 405/406/422: GitLab will not merge yet. The next event tries again.
        logger.info("merge refused; waiting for the next event", extra={"status": exc.status})
        return f"not merged: GitLab answered {exc.status}"
    return f"merged at {head[:8]}"
