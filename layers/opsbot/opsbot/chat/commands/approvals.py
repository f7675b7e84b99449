"""approve / 批准 and reject / 拒绝: the second person that production (and a config rollback) needs.

Whether this person may approve is the authorization core's to decide: never the requester, and only someone
who may run the request's act in its environment themselves (an admin, for a config rollback that changes people
or permissions). The approval that completes a request starts the deploy, for exactly the build and commit that
were asked for (release.deploy.execute_approved), the ops change's exact plan (ops.run.execute_approved), or the
rollback commit of exactly the version and branch head asked for (gitops.config_rollback.execute_approved).
"""

from __future__ import annotations

from opsbot.authz import core as authz
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, command
from opsbot.gitops.verbs import CONFIG_EVENT, RIGHTS, ROLLBACK
from opsbot.message import Reply
from opsbot.ops.verbs import CHANGES as OPS_CHANGES
from opsbot.ops.verbs import OPS_EVENT
from opsbot.release import approvals, overrides
from opsbot.release import deploy as release

# Deployers approve releases, ops people approve ops changes; either way the core also checks that the approver may
# do the requested act themselves, where it is asked for.
APPROVE = authz.Verb("approve", ("deployer", "ops"), authz.APPROVE)
REJECT = authz.Verb("reject", ("deployer", "ops"), authz.APPROVE)


def _is_ops(pending: approvals.ApprovalRequest) -> bool:
    return pending.event == OPS_EVENT and pending.action in OPS_CHANGES


def _is_config(pending: approvals.ApprovalRequest) -> bool:
    return pending.event == CONFIG_EVENT and pending.action == ROLLBACK.name


def _target(pending: approvals.ApprovalRequest) -> authz.Target:
    if overrides.is_override(
        pending
    ):  # a freeze override: the approver must be an admin too, and not the one who asked
        return authz.Target(
            pending.project, pending.target, requester=pending.requester, request_verb=overrides.OVERRIDE
        )
    if _is_config(pending):
        return authz.Target(
            requester=pending.requester,
            request_verb=ROLLBACK,
            scope=f"config {pending.commit[:8]}",
            changes_rights=pending.target == RIGHTS,
        )
    return authz.Target(
        pending.project,
        pending.target,
        requester=pending.requester,
        request_verb=OPS_CHANGES[pending.action]
        if _is_ops(pending)
        else release.VERBS.get(pending.action, release.DEPLOY),
        scope=pending.branch if _is_ops(pending) else "",
    )


@command(
    "approve",
    area="review",
    aliases=("批准", "同意"),
    acts=True,
    verb=APPROVE,
    needs_drone=True,
    arguments=(Argument("request"),),
    zh="批准一个发布或运维请求；够人数后立即执行",
    en="Approve a release or ops request; the last approval needed starts it",
    examples=("approve 3f9a2c1b", "批准 3f9a2c1b"),
)
def approve(request: ChatRequest) -> Reply:
    request_id = str(request.arguments["request"]).lower()
    pending = approvals.get(request_id)
    if pending is not None:
        request.authorize(APPROVE, _target(pending))
    # A retry of this job after its approval counted, or even decided, finishes it (approvals.approve).
    pending, completed = approvals.approve(request_id, request.sender_id, request.language)
    if not completed:
        left = pending.needed - len(pending.approvers)
        return Reply(
            title=request.t(f"审批 {pending.id}", f"approval {pending.id}"),
            project=pending.project,
            detail=f"approved {pending.id}; {left} more needed",
            text=request.t(
                f"✔ {request.sender} 批准了 `{pending.id}`，还需要 {left} 人批准。",
                f"✔ {request.sender} approved `{pending.id}`; {left} more approval(s) needed.",
            ),
        )
    if overrides.is_override(pending):  # a freeze override: for exactly the window it was asked in
        result = overrides.execute_approved(request.config, pending, request.sender, request.language)
    elif _is_ops(pending):  # an ops change (k8s, vm, dns): exactly the plan that was approved
        from opsbot.ops import run as ops_run  # late: the registry, loaded at every cold start, needs only the verbs

        result = ops_run.execute_approved(request.config, pending, request.inbound.conversation, request.language)
    elif _is_config(pending):  # a config rollback: its commit, on the head it was asked on
        from opsbot.gitops import config_rollback  # late, as ops' run

        result = config_rollback.execute_approved(request.config, pending, request.language)
    else:
        from opsbot.chat.commands.release import gitops

        gitops()  # a GitOps environment's release goes through its way
        result = release.execute_approved(request.config, request.drone(), pending, request.language)
    note = request.t(
        f"✔ {request.sender} 批准了 `{pending.id}`（{pending.requester_name} 发起）。",
        f"✔ {request.sender} approved `{pending.id}` (asked by {pending.requester_name}).",
    )
    result.text = f"{note}\n\n{result.text}"
    return result


@command(
    "reject",
    area="review",
    aliases=("拒绝", "驳回"),
    acts=True,
    verb=REJECT,
    arguments=(Argument("request"),),
    zh="拒绝一个发布或运维请求",
    en="Reject a release or ops request",
    examples=("reject 3f9a2c1b", "拒绝 3f9a2c1b"),
)
def reject(request: ChatRequest) -> Reply:
    request_id = str(request.arguments["request"]).lower()
    pending = approvals.get(request_id)
    # The requester may withdraw their own request; anyone else needs the right to approve it.
    if pending is not None and pending.requester != request.sender_id:
        request.authorize(REJECT, _target(pending))
    decided = approvals.reject(request_id, request.sender_id, request.language)
    if overrides.is_override(decided):
        return Reply(
            title=f"rejected {decided.id}",
            project=decided.project,
            detail=f"rejected {decided.id}",
            text=request.t(
                f"✖ {request.sender} 拒绝了封网 override `{decided.id}`（{decided.project}/{decided.target}）。",
                f"✖ {request.sender} rejected the freeze override `{decided.id}` ({decided.project}/{decided.target}).",
            ),
        )
    if _is_config(decided):
        return Reply(
            title=f"rejected {decided.id}",
            detail=f"rejected {decided.id}",
            text=request.t(
                f"✖ {request.sender} 拒绝了 `{decided.id}`（配置回滚到 {decided.commit[:8]}），不会执行。",
                f"✖ {request.sender} rejected `{decided.id}` (config rollback to {decided.commit[:8]}): "
                "it will not run.",
            ),
        )
    if _is_ops(decided):
        return Reply(
            title=request.t(f"已拒绝 {decided.id}", f"rejected {decided.id}"),
            detail=f"rejected {decided.id}",
            text=request.t(
                f"✖ {request.sender} 拒绝了 `{decided.id}`（{decided.action}，{decided.target}），不会执行。",
                f"✖ {request.sender} rejected `{decided.id}` ({decided.action} in {decided.target}): it will not run.",
            ),
        )
    return Reply(
        title=request.t(f"已拒绝 {decided.id}", f"rejected {decided.id}"),
        project=decided.project,
        detail=f"rejected {decided.id}",
        text=request.t(
            f"✖ {request.sender} 拒绝了 `{decided.id}`：{decided.project} #{decided.build} → "
            f"{decided.target} 不会发布。",
            f"✖ {request.sender} rejected `{decided.id}`: {decided.project} #{decided.build} → "
            f"{decided.target} will not be deployed.",
        ),
    )
