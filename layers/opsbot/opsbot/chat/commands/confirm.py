"""confirm / 确认: the requester's go-ahead for an ops change they previewed (k8s restart, vm run, dns set, …). Only
the person who asked, only before the preview expires; the authorization core decides again, and where the
environment needs approvals, an approval request opens instead (approve / reject)."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, command
from opsbot.message import Reply
from opsbot.ops import verbs


@command(
    "confirm",
    area="ops",
    aliases=("确认",),
    acts=True,
    verb=verbs.CONFIRM,
    arguments=(Argument("request"),),
    zh="确认执行自己预览过的运维变更（k8s restart、vm run、dns set……）",
    en="Run an ops change you previewed (k8s restart, vm run, dns set, …)",
    examples=("confirm 3f9a2c1b", "确认 3f9a2c1b"),
)
def confirm(request: ChatRequest) -> Reply:
    from opsbot.ops import run  # late: the registry, loaded at every cold start, needs only the verbs

    request_id = str(request.arguments["request"]).lower()
    return run.confirm(
        request.config, request.actor, request.record, request_id, request.inbound.conversation, request.language
    )
