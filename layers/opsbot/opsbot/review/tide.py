"""Merge when ready, by Tide's rule: `lgtm` and `approved`, no `do-not-merge/*` label, a green pipeline for
the head commit, and not a draft. The merge names the head sha, so GitLab refuses it (409) if someone pushed
in between; that is no error: the push brings its own event, and the rule is checked again then."""
from __future__ import annotations

from opsbot.gitlab.api import GitLabRefused
from opsbot.log import logger
from opsbot.review.commands import APPROVED, LGTM
from opsbot.review.session import Session
from opsbot.state import effects


def blockers(mr: dict, labels: list[str]) -> list[str]:
    """Why the merge request may not merge yet; [] when it may."""
    found = []
    if mr.get("state") != "opened":
        found.append(f"it is {mr.get('state')}")
    found += [f"no `{l}` label" for l in (LGTM, APPROVED) if l not in labels]
    found += [f"`{l}` is set" for l in labels if l.startswith("do-not-merge/")]
    if mr.get("draft") or mr.get("work_in_progress"):
        found.append("it is a draft")
    pipeline = mr.get("head_pipeline") if isinstance(mr.get("head_pipeline"), dict) else {}
    if pipeline.get("status") != "success" or (pipeline.get("sha") and pipeline.get("sha") != mr.get("sha")):
        found.append("the pipeline of the head commit has not passed")
    return found


def merge_if_ready(session: Session) -> str:
    session.refresh()  # labels and pipeline as they are now, not as the hook saw them
    mr, labels = session.mr, session.labels
    if waiting := blockers(mr, labels):
        return "not merged: " + "; ".join(waiting)
    sha = str(mr.get("sha") or "")
    try:
        effects.once(f"review-merge#{session.repo.lower()}!{session.iid}#{sha}", lambda: {"merged": bool(
            session.gitlab.merge(session.repo, session.iid, sha, squash=session.review.merge_method == "squash"))})
    except GitLabRefused as exc:
        # 409: the head moved; 405/406/422: GitLab will not merge yet. The next event tries again.
        logger.info("merge refused; waiting for the next event", extra={"status": exc.status})
        return f"not merged: GitLab answered {exc.status}"
    return f"merged at {sha[:8]}"
