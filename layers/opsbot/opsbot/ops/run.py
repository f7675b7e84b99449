"""The life of an ops change, through the authorization core every time:

1. preview: the command checks its arguments against the config, the core decides (a denial stops here), and the
   plan is stored with an id; the reply shows exactly what will happen and how to confirm it;
2. confirm: only the requester, before the deadline; the core decides again with today's config. Where the
   environment needs approvals, an approval request (release/approvals.py) is opened, bound to the plan's
   fingerprint, which someone else approves with `approve <id>`;
3. the change runs once per request (state.effects), stamped with who asked, and a delayed job (SQS DelaySeconds,
   no Lambda sleeps) follows it up until it is done, stuck or failed; every step is audited.
"""

from __future__ import annotations

import time

from opsbot import audit
from opsbot.authz import core as authz
from opsbot.authz.actors import Actor
from opsbot.channels import buttons
from opsbot.config.model import Config
from opsbot.delivery.post import post
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.markup import dingtalk as md
from opsbot.message import Conversation, Reply
from opsbot.ops import changes
from opsbot.ops import requests as ops_requests
from opsbot.ops.requests import OpsRefused, OpsRequest
from opsbot.ops.verbs import OPS_EVENT
from opsbot.release import approvals
from opsbot.settings import settings
from opsbot.state import effects, keys


def preview(
    config: Config,
    actor,
    record: audit.AuditRecord,
    verb: authz.Verb,
    request_id: str,
    environment: str,
    scope: str,
    summary: str,
    plan: dict,
    language: str,
) -> Reply:
    """Decide, store the plan, and show it. Nothing outside opsbot changes here."""
    target = authz.Target(environment=environment, scope=scope)
    decision = authz.authorize(config, actor, verb, target, record, plan, language)
    if decision.denied:
        raise authz.Denied(decision)
    request = ops_requests.new(
        request_id, verb, actor, environment, scope, summary, plan, language, config.ops.confirm_minutes
    )
    needed = decision.approvals if decision.outcome == authz.NEEDS_APPROVAL else 0
    return changes.preview_reply(request, needed, config.ops.confirm_minutes)


def confirm(
    config: Config, actor, record: audit.AuditRecord, request_id: str, conversation: Conversation, language: str
) -> Reply:
    """The requester's go-ahead: the change runs now, or an approval request opens."""
    request = ops_requests.for_confirmation(request_id, actor.id, language)
    record.arguments = {**record.arguments, "verb": request.verb, "summary": request.summary[:100]}
    decision = authz.authorize(
        config, actor, request.change, request.target(), record, {"request": request.id}, language
    )
    if decision.denied:
        raise authz.Denied(decision)
    if request.status in (ops_requests.PREVIEWED, ops_requests.APPROVAL):
        _still_allowed(config, request, language)
    if decision.outcome == authz.NEEDS_APPROVAL:
        if request.status not in (ops_requests.PREVIEWED, ops_requests.APPROVAL):
            raise _already(request, language)
        ops_requests.move(request, ops_requests.APPROVAL, (ops_requests.PREVIEWED,), conversation=conversation.fields())
        opened = approvals.create(
            approvals.ApprovalRequest(
                id=request.id,
                action=request.verb,
                project="",
                target=request.environment,
                build=0,
                commit=request.fingerprint,  # the approval is for this plan, and nothing else
                branch=request.scope,
                requester=request.requester,
                requester_name=request.requester_name,
                needed=decision.approvals,
                deadline=int(time.time()) + config.approval_hours * 3600,
                event=OPS_EVENT,
            )
        )
        return approval_opened(request, opened, language)
    if not ops_requests.move(
        request, ops_requests.CONFIRMED, (ops_requests.PREVIEWED,), conversation=conversation.fields()
    ):
        if request.status != ops_requests.CONFIRMED:  # a retry of this same confirm finds it confirmed
            raise _already(request, language)
    return execute(config, request)


def _still_allowed(config: Config, request: OpsRequest, language: str) -> None:
    """The plan, checked again against the config as it is now (a confirm or an approval may come a day later)."""
    if why := changes.no_longer_allowed(config, request):
        raise OpsRefused(
            t(
                language,
                f"`{request.id}` 预览之后配置变了，不会执行：{md(why, 300)}。请重新发起。",
                f"The config changed since `{request.id}` was previewed, so nothing was run: {md(why, 300)}. "
                "Ask again.",
            )
        )


def _already(request: OpsRequest, language: str) -> OpsRefused:
    return OpsRefused(
        t(language, f"`{request.id}` 已经是 {request.status} 状态。", f"`{request.id}` is already {request.status}.")
    )


def approval_opened(request: OpsRequest, approval: approvals.ApprovalRequest, language: str) -> Reply:
    hours = max(1, round((approval.deadline - time.time()) / 3600))
    text = t(
        language,
        f"### 🔐 审批请求 `{request.id}`\n\n{md(request.requester_name)} 请求在 **{request.environment}**："
        f"{changes.describe(request.plan, language)}\n\n需要 {approval.needed} 位其他同事批准："
        f"`@opsbot approve {request.id}`，或拒绝：`@opsbot reject {request.id}`（{hours} 小时内有效）",
        f"### 🔐 Approval request `{request.id}`\n\n{md(request.requester_name)} asks, in **{request.environment}**: "
        f"{changes.describe(request.plan, language)}\n\nNeeds {approval.needed} approval(s) from someone else: "
        f"`@opsbot approve {request.id}`, or `@opsbot reject {request.id}` (valid for {hours} h)",
    )
    return Reply(
        title=t(language, f"审批 {request.id}", f"approval {request.id}"),
        text=text,
        detail=f"approval {request.id} opened: {request.summary}",
        buttons=buttons.approval_buttons(request.id, language),
    )


def execute_approved(
    config: Config, approval: approvals.ApprovalRequest, conversation: Conversation, language: str
) -> Reply:
    """The change an approval completed: exactly the plan that was approved, once."""
    request = ops_requests.get(approval.id)
    if request is None or request.fingerprint != approval.commit:
        raise OpsRefused(
            t(
                language,
                f"`{approval.id}` 的计划已变，不会执行；请重新发起。",
                f"The plan of `{approval.id}` is not the one approved; nothing was run. Ask again.",
            )
        )
    if request.status == ops_requests.APPROVAL:
        _still_allowed(config, request, language)
        # Locks and freezes as they are now, for the requester: the environment may be held since it was asked
        requester = Actor(
            approval.via or "chat", request.requester, request.requester_name, config.person(request.requester)
        )
        if denied := authz.held(requester, authz.load_holds(config, request.change, request.target()), language):
            raise authz.Denied(denied)
    ops_requests.move(request, ops_requests.CONFIRMED, (ops_requests.APPROVAL,), conversation=conversation.fields())
    by = ", ".join(approval.approvers)
    reply = execute(config, request)
    reply.text = t(language, f"✔ 已由 {md(by)} 批准。\n\n", f"✔ Approved by {md(by)}.\n\n") + reply.text
    return reply


def execute(config: Config, request: OpsRequest) -> Reply:
    """Run the change once however often it is asked for, and start its follow-up."""

    def run() -> dict:
        reply, done, follow_state = changes.execute(config, request)
        ops_requests.record_result(request, {**done, "plan": request.plan})
        if follow_state is not None:
            schedule(request.id, 1, follow_state)
        return reply.as_dict()

    return Reply.from_dict(effects.once(keys.OPS_RUN + request.id, run, permanent=True))  # a request runs once, ever


def schedule(request_id: str, step: int, state: dict) -> None:
    enqueue(
        Job(kinds.OPS_FOLLOW_UP, {"request": request_id, "step": step, "state": state}),
        delay_seconds=settings().ops_poll_seconds,
    )


def follow_up(config: Config, request_id: str, step: int, state: dict) -> str:
    """One delayed check: post what it found (once), and schedule the next, or finish the request."""
    request = ops_requests.get(request_id)
    if request is None:
        return "ignored: the request is gone"

    def check() -> dict:
        found = changes.follow(config, request, state)
        where = ""
        if found.reply is not None:
            conversation = Conversation.from_fields(request.conversation)
            where = post(config, found.reply, conversation, f"ops#{request.id}#{step}")
        if found.next_state is not None:
            schedule(request.id, step + 1, found.next_state)
            return {"result": f"step {step}: {'posted' if where else 'checked'}; next check queued"}
        ops_requests.move(
            request,
            ops_requests.DONE if found.outcome == "succeeded" else ops_requests.FAILED,
            (ops_requests.CONFIRMED,),
        )
        _audit_result(request, found)
        return {"result": f"finished: {found.outcome}"}

    return effects.once(f"{keys.OPS_FOLLOW}{request.id}#{step}", check)["result"]


def _audit_result(request: OpsRequest, found: changes.Step) -> None:
    """The change's outcome, beside its preview and its confirm in the audit log that `history` reads."""
    conversation = request.conversation or {}
    record = audit.AuditRecord(
        id=f"{request.id}-result",
        at_ms=int(time.time() * 1000),
        who=request.requester[:128],
        who_name=request.requester_name[:64],
        where=str(conversation.get("id") or "ops")[:128],
        where_title=str(conversation.get("title") or "")[:128],
        command=request.verb,
        arguments={"request": request.id},
        target=request.target().describe()[:300],
        decision=authz.ALLOW,
    )
    detail = found.reply.detail if found.reply else found.outcome
    audit.finish(record, found.outcome, detail)
