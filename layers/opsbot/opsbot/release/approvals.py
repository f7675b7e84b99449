"""Approval requests for environments with `approvals: N`: N distinct approvers, never the requester,
before the deadline. Every change is a conditional write, so two approvals racing each other, or the same
approval delivered twice, count once, and exactly one of them sees the request become approved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opsbot.aws import client
from opsbot.i18n import t
from opsbot.settings import settings
from opsbot.state import keys

KEEP_AFTER_DEADLINE_SECONDS = 7 * 86400  # decided or expired requests stay readable for a week


@dataclass
class ApprovalRequest:
    id: str
    action: str  # "deploy", "rollback" or "revert" (a GitOps rollback: `commit` is the deploy commit it undoes)
    project: str
    target: str
    build: int
    commit: str  # the approval is for this commit of the build, and nothing else
    branch: str
    requester: str  # the actor id of who asked
    requester_name: str
    needed: int
    deadline: int  # epoch seconds
    approvers: list[str] = field(default_factory=list)
    status: str = "pending"  # pending, approved, rejected
    decided_by: str = ""
    event: str = ""  # the build's Drone event when it was asked for
    via: str = ""  # where it was asked (chat, link): a GitOps release's commit names it

    def expired(self, now: float | None = None) -> bool:
        return self.status == "pending" and (now or time.time()) > self.deadline


class ApprovalRefused(Exception):
    """Why this approval or rejection does not count; shown to the person as is."""


def _table():
    return client("dynamodb"), settings().state_table


def _key(request_id: str) -> dict:
    return {"pk": {"S": keys.APPROVAL + request_id.lower()}}


def _from_item(item: dict) -> ApprovalRequest:
    return ApprovalRequest(
        id=item["id"]["S"],
        action=item["action"]["S"],
        project=item["project"]["S"],
        target=item["target"]["S"],
        build=int(item["build"]["N"]),
        commit=item["commit"]["S"],
        branch=item["branch"]["S"],
        requester=item["requester"]["S"],
        requester_name=item["requester_name"]["S"],
        needed=int(item["needed"]["N"]),
        deadline=int(item["deadline"]["N"]),
        approvers=sorted(item.get("approvers", {}).get("SS", [])),
        status=item["status"]["S"],
        decided_by=item.get("decided_by", {}).get("S", ""),
        event=item.get("event", {}).get("S", ""),
        via=item.get("via", {}).get("S", ""),
    )


def create(request: ApprovalRequest) -> ApprovalRequest:
    """Store a new request; a retried job gets back the request it created the first time."""
    ddb, table = _table()
    item = {
        **_key(request.id),
        "id": {"S": request.id},
        "action": {"S": request.action},
        "project": {"S": request.project},
        "target": {"S": request.target},
        "build": {"N": str(request.build)},
        "commit": {"S": request.commit},
        "branch": {"S": request.branch},
        "requester": {"S": request.requester},
        "requester_name": {"S": request.requester_name},
        "needed": {"N": str(request.needed)},
        "deadline": {"N": str(request.deadline)},
        "status": {"S": "pending"},
        "event": {"S": request.event},
        "via": {"S": request.via},
        "expires_at": {"N": str(request.deadline + KEEP_AFTER_DEADLINE_SECONDS)},
    }
    try:
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ddb.exceptions.ConditionalCheckFailedException:
        existing = get(request.id)
        if existing is None:
            raise
        return existing
    return request


def get(request_id: str) -> ApprovalRequest | None:
    ddb, table = _table()
    item = ddb.get_item(TableName=table, Key=_key(request_id), ConsistentRead=True).get("Item")
    return _from_item(item) if item else None


ALREADY_APPROVED = ("你已经批准过这个请求了。", "You have already approved this request.")


def _refusal(request: ApprovalRequest | None, language: str) -> str | None:
    if request is None:
        return t(
            language,
            "没有这个审批请求：请用审批请求消息里的 ID（发布到需要审批的环境，比如 production，会发起一个）。",
            "There is no such approval request: use the id in an approval request's message (a deploy to an "
            "environment with approvals, such as production, opens one).",
        )
    if request.status != "pending":
        return t(
            language,
            f"审批请求 {request.id} 已经是 {request.status} 状态。",
            f"Request {request.id} is already {request.status}.",
        )
    if request.expired():
        return t(language, f"审批请求 {request.id} 已过期。", f"Request {request.id} has expired.")
    return None


def approve(request_id: str, approver: str, language: str = "en") -> tuple[ApprovalRequest, bool]:
    """Count `approver` in, and decide the request once it has enough approvals. Returns the request and whether
    this approval is the one that decided it.

    The decision follows from the stored request (enough approvers, still pending), not from this call having
    added the approver: a retry of an approval whose worker stopped between the two steps decides it (and one
    that comes after the decision finds it decided by this approver), so an approval never sticks undecided."""
    request = get(request_id)
    if request is not None and request.status == "approved" and request.decided_by == approver:
        return request, True  # this approval's own retry, after it decided
    if reason := _refusal(request, language):
        raise ApprovalRefused(reason)
    if approver == request.requester:
        raise ApprovalRefused(
            t(
                language,
                "不能批准自己发起的请求，需要另一位同事批准。",
                "You cannot approve your own request: it needs someone else.",
            )
        )
    if approver not in request.approvers:
        request = _add_approver(request_id, approver, language)
    elif len(request.approvers) < request.needed:
        raise ApprovalRefused(t(language, *ALREADY_APPROVED))
    if len(request.approvers) < request.needed:
        return request, False
    if _decide(request, "approved", approver):
        return request, True
    decided = get(request_id)
    if decided is not None and decided.status == "approved" and decided.decided_by == approver:
        return decided, True
    raise ApprovalRefused(_refusal(decided, language) or t(language, *ALREADY_APPROVED))


def _add_approver(request_id: str, approver: str, language: str) -> ApprovalRequest:
    ddb, table = _table()
    now = str(int(time.time()))
    try:
        updated = ddb.update_item(
            TableName=table,
            Key=_key(request_id),
            UpdateExpression="ADD approvers :a",
            ConditionExpression="#s = :pending AND deadline >= :now AND requester <> :who "
            "AND NOT contains(approvers, :who)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":a": {"SS": [approver]},
                ":who": {"S": approver},
                ":pending": {"S": "pending"},
                ":now": {"N": now},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ddb.exceptions.ConditionalCheckFailedException:
        raise ApprovalRefused(_refusal(get(request_id), language) or t(language, *ALREADY_APPROVED)) from None
    return _from_item(updated)


def reject(request_id: str, who: str, language: str = "en") -> ApprovalRequest:
    request = get(request_id)
    if reason := _refusal(request, language):
        raise ApprovalRefused(reason)
    if not _decide(request, "rejected", who):
        raise ApprovalRefused(_refusal(get(request_id), language) or "already decided")
    return get(request_id)


def _decide(request: ApprovalRequest, status: str, who: str) -> bool:
    """Move a pending request to `status`; True only for the one caller that made the move."""
    ddb, table = _table()
    try:
        ddb.update_item(
            TableName=table,
            Key=_key(request.id),
            UpdateExpression="SET #s = :new, decided_by = :who",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":new": {"S": status}, ":who": {"S": who}, ":pending": {"S": "pending"}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    request.status, request.decided_by = status, who
    return True


def pending_for(project: str, limit: int = 200) -> list[ApprovalRequest]:
    """A project's approval requests still waiting, oldest deadline first: a Scan of the approval items, for the
    weekly report (once a week, so no index is kept for it)."""
    ddb, table = _table()
    found: list[ApprovalRequest] = []
    query = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :prefix) AND #p = :project AND #s = :pending",
        "ExpressionAttributeNames": {"#s": "status", "#p": "project"},
        "ExpressionAttributeValues": {
            ":prefix": {"S": keys.APPROVAL},
            ":project": {"S": project},
            ":pending": {"S": "pending"},
        },
    }
    while len(found) < limit:
        page = ddb.scan(**query)
        found += [_from_item(item) for item in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    now = time.time()
    return sorted((r for r in found if not r.expired(now)), key=lambda r: r.deadline)[:limit]
