"""What a merge request gets when it opens or its commits change: its size and path labels, `lgtm` and
`approved` dropped on a new push (both were given on an earlier head commit, which is not what would merge now),
reviewers from OWNERS, a welcome for a first-time contributor, and the reviewers told in DingTalk."""

from __future__ import annotations

from opsbot.delivery.post import post_once
from opsbot.gitlab.events import MergeRequestEvent
from opsbot.i18n import t
from opsbot.markup import dingtalk as dingtalk_text
from opsbot.markup import link_target
from opsbot.message import Mentions, Reply
from opsbot.review import labels, reviewers, store
from opsbot.review.commands import APPROVED, LGTM, approval_labels, mention
from opsbot.review.session import Session
from opsbot.state import effects, keys

WELCOME = (
    "Welcome, {author}, and thank you for your first merge request here! Reviewers are assigned from "
    "the OWNERS files. Comment `/retest` to rerun the build, and see the project's README for the "
    "commands reviewers use (`/lgtm`, `/approve`, `/hold`)."
)


def triage(session: Session, event: MergeRequestEvent) -> dict:
    size = labels.size_label(labels.changed_lines(session.diffs, session.review.generated))
    add, remove = labels.label_changes(session.labels, session.paths, size, session.review.path_labels)
    head = session.head
    # New commits need a new look: an lgtm or approvals count only at the head they were given on. Given at this
    # head already (a comment that came while this triage was retried), they stay.
    if store.lgtm_sha(session.repo, session.iid) != head:
        remove.append(LGTM)
    session.change_labels(add, remove)
    approving = store.approvers(session.repo, session.iid, head)
    if approving or APPROVED in session.labels:
        approval_labels(session, approving)
    assigned = assign_reviewers(session, f"{session.repo.lower()}!{session.iid}#{event.action}#{head}")
    if event.first_contribution and session.review.welcome:
        session.note("welcome", WELCOME.format(author=mention(session.author)))
    if assigned and session.review.notify_reviewers:
        tell_reviewers(session, assigned)
    return {"size": size, "labels": add, "reviewers": assigned}


def assign_reviewers(session: Session, key: str) -> list[str]:
    """The reviewers this triage assigns (and tells). Chosen once per triage: a retry after the assignment finds
    them among the merge request's reviewers, and must still know they were its own choice, to tell them."""

    def choose() -> dict:
        already = set(session.usernames("reviewers"))
        loads: dict[str, int] = {}

        def load(name: str) -> int:
            if name not in loads:
                loads[name] = session.gitlab.open_reviews(session.repo, name)
            return loads[name]

        chosen = reviewers.choose(
            session.owners.reviewer_levels(),
            session.review.fallback_reviewers,
            session.author,
            already,
            session.review.reviewers,
            load,
        )
        ids = {name: i for name, i in session.user_ids(chosen).items() if i is not None}
        return {"reviewers": ids}

    ids = effects.once(keys.REVIEW_CHOSEN + key, choose)["reviewers"]
    current = [u["id"] for u in session.mr.get("reviewers") or [] if isinstance(u, dict) and "id" in u]
    if set(ids.values()) - set(current):
        session.refresh(
            session.gitlab.update_merge_request(
                session.repo, session.iid, reviewer_ids=current + [i for i in ids.values() if i not in current]
            )
        )
    return list(ids)


def tell_reviewers(session: Session, assigned: list[str]) -> None:
    mentions = Mentions()
    for name in assigned:
        mentions.add(Mentions.of(session.config.person_for_gitlab(name)))
    mr = session.mr
    title = dingtalk_text(mr.get("title", ""), 120)
    url = link_target(mr.get("web_url"))
    link = f"[!{session.iid} {title}]({url})" if url else f"!{session.iid} {title}"
    names = dingtalk_text(", ".join(assigned))  # OWNERS files' text, like the title: shown, never markup
    text = t(
        session.project.language,
        f"### 👀 请评审 {link}\n\n{session.project.name} · 评审人：{names}",
        f"### 👀 Review requested: {link}\n\n{session.project.name} · reviewers: {names}",
    )
    reply = Reply(
        title=f"review !{session.iid}",
        text=text,
        project=session.project.name,
        mentions=mentions,
        detail=f"reviewers of !{session.iid}: {', '.join(assigned)}",
    )
    post_once(session.config, reply, f"review-told#{session.repo.lower()}!{session.iid}#{','.join(sorted(assigned))}")
