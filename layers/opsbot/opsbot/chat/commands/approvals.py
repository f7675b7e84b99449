"""approve / 批准 and reject / 拒绝: the second person that production needs.

The approver must be allowed to run the request's action in its environment (checked by chat.permissions,
like any command) and must not be the requester. The approval that completes a request starts the deploy.
"""
from __future__ import annotations

from opsbot.chat import permissions
from opsbot.chat.context import ChatRequest, Reply
from opsbot.chat.registry import Argument, all_commands, command
from opsbot.release import approvals
from opsbot.release import deploy as release


def _allowed(request: ChatRequest, pending: approvals.ApprovalRequest) -> None:
    action = all_commands().commands["deploy" if pending.action == "deploy" else "rollback"]
    for cmd in (request.command, action):
        if reason := permissions.denial(request.config, request.person, cmd, pending.target, request.language):
            raise approvals.ApprovalRefused(reason)


@command("approve", aliases=("批准", "同意"), acts=True, role="deployer", needs_drone=True,
         arguments=(Argument("request"),),
         zh="批准一个发布请求；够人数后立即发布", en="Approve a release request; the last approval needed starts it",
         examples=("approve 3f9a2c1b", "批准 3f9a2c1b"))
def approve(request: ChatRequest) -> Reply:
    request_id = str(request.arguments["request"]).lower()
    pending = approvals.get(request_id)
    if pending is not None:
        _allowed(request, pending)
    try:
        pending, completed = approvals.approve(request_id, request.sender_id, request.language)
    except approvals.ApprovalRefused:
        # A retry of this same job after the approval counted: finish the release instead of refusing.
        current = approvals.get(request_id)
        if not (current and current.status == "approved" and current.decided_by == request.sender_id):
            raise
        pending, completed = current, True
    if not completed:
        left = pending.needed - len(pending.approvers)
        return Reply(title=f"approval {pending.id}", project=pending.project,
                     detail=f"approved {pending.id}; {left} more needed",
                     text=request.t(f"✔ {request.sender} 批准了 `{pending.id}`，还需要 {left} 人批准。",
                                    f"✔ {request.sender} approved `{pending.id}`; {left} more approval(s) needed."))
    result = release.execute_approved(request.config, request.drone(), pending, request.language)
    note = request.t(f"✔ {request.sender} 批准了 `{pending.id}`（{pending.requester_name} 发起）。",
                     f"✔ {request.sender} approved `{pending.id}` (asked by {pending.requester_name}).")
    result.text = f"{note}\n\n{result.text}"
    return result


@command("reject", aliases=("拒绝", "驳回"), acts=True, role="deployer", arguments=(Argument("request"),),
         zh="拒绝一个发布请求", en="Reject a release request", examples=("reject 3f9a2c1b", "拒绝 3f9a2c1b"))
def reject(request: ChatRequest) -> Reply:
    request_id = str(request.arguments["request"]).lower()
    pending = approvals.get(request_id)
    # The requester may withdraw their own request; anyone else needs the right to approve it.
    if pending is not None and pending.requester != request.sender_id:
        _allowed(request, pending)
    decided = approvals.reject(request_id, request.sender_id, request.language)
    return Reply(title=f"rejected {decided.id}", project=decided.project, detail=f"rejected {decided.id}",
                 text=request.t(f"✖ {request.sender} 拒绝了 `{decided.id}`：{decided.project} #{decided.build} → "
                                f"{decided.target} 不会发布。",
                                f"✖ {request.sender} rejected `{decided.id}`: {decided.project} #{decided.build} → "
                                f"{decided.target} will not be deployed."))
