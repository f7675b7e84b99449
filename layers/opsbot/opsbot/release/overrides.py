"""A freeze override (authz/locks.py `Override`) as an approval request: an admin asks in chat (`override`,
chat/commands/governance.py), a second admin approves (`approve`, chat/commands/approvals.py), and the approval
grants it here, for exactly the window it was asked in, while that window is still open."""

from __future__ import annotations

import time

from opsbot.authz import core as authz
from opsbot.authz import freezes as freeze_windows
from opsbot.authz import locks
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import approvals

OVERRIDE = authz.Verb("override", (authz.ADMIN,), authz.ACT)
GOVERNANCE_EVENT = "governance"  # an approval request's event that marks a freeze override


def is_override(pending: approvals.ApprovalRequest) -> bool:
    return pending.event == GOVERNANCE_EVENT and pending.action == OVERRIDE.name


def execute_approved(config, pending: approvals.ApprovalRequest, approver: str, language: str) -> Reply:
    """The second admin approved: the override holds for its window, while that window is still open."""
    freezes = freeze_windows.freezes_for(config, pending.project, pending.target)
    window = next(
        (w for w in freeze_windows.open_windows(freezes, freeze_windows.utc(time.time())) if w.key == pending.commit),
        None,
    )
    if window is None:
        return Reply(
            title=t(language, "封网已结束", "freeze over"),
            project=pending.project,
            text=t(
                language,
                "这个封网窗口已经结束，不需要 override。",
                "That freeze window has closed: nothing to override.",
            ),
            detail=f"override {pending.id}: window closed",
        )
    locks.grant_override(
        locks.Override(
            pending.project, pending.target, window.key, pending.branch, pending.requester_name, approver, pending.id,
            int(window.end.timestamp()),
        )
    )  # fmt: skip
    return Reply(
        title=t(language, f"封网 override 已批准 {pending.id}", f"freeze override approved {pending.id}"),
        project=pending.project,
        text=t(
            language,
            f"🧊✅ {pending.project}/{pending.target} 在封网「{md(window.freeze.name, 64)}」期间可以发布，"
            f"直到 {window.local(window.end)}（{md(pending.requester_name, 64)} 申请，{md(approver, 64)} 批准）："
            f"{md(pending.branch, 200)}",
            f"🧊✅ {pending.project}/{pending.target} may be released during the freeze '{md(window.freeze.name, 64)}' "
            f"until {window.local(window.end)} (asked by {md(pending.requester_name, 64)}, approved by "
            f"{md(approver, 64)}): {md(pending.branch, 200)}",
        ),
        detail=f"override {pending.id} approved for {pending.project}/{pending.target} until {window.describe()}",
    )
