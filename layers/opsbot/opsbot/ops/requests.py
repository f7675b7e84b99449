"""An ops request: what a change will do (its plan), previewed to the requester, who alone may confirm it within
`ops.confirm_minutes`. The plan is fixed at the preview: confirming runs exactly it, an approval is bound to its
fingerprint (a hash of the verb and the plan), and asking for anything else is a new request.

Each request is one item in the state table (`ops-request#<id>`); every status change is a conditional write, so a
retried job, two confirms racing, or a confirm after the deadline change nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

from opsbot.authz import core as authz
from opsbot.aws import client
from opsbot.i18n import t
from opsbot.markup import plain as md
from opsbot.ops.verbs import CHANGES
from opsbot.settings import settings
from opsbot.state import keys

KEEP_SECONDS = 14 * 86400  # a request stays readable (undo, history) for two weeks
PREVIEWED, APPROVAL, CONFIRMED, DONE, FAILED = "previewed", "approval", "confirmed", "done", "failed"


class OpsRefused(Exception):
    """The facts say no (no such request, not yours, expired, changed since the preview); shown as is."""


@dataclass
class OpsRequest:
    id: str
    verb: str  # a name in CHANGES
    requester: str  # the actor id
    requester_name: str
    environment: str
    scope: str  # what it touches, for people and the audit log
    summary: str  # one line: what will happen
    plan: dict  # exactly what runs
    language: str
    created: int
    expires: int  # the confirm deadline
    status: str = PREVIEWED
    conversation: dict = field(default_factory=dict)  # where results go: message.Conversation.fields()
    result: dict = field(default_factory=dict)  # what the change did (ids, snapshots), for follow-ups and undo

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.verb, self.plan)

    @property
    def change(self) -> authz.Verb:
        return CHANGES[self.verb]

    def target(self) -> authz.Target:
        return authz.Target(environment=self.environment, scope=self.scope)


def fingerprint(verb: str, plan: dict) -> str:
    return hashlib.sha256(json.dumps([verb, plan], sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _table():
    return client("dynamodb"), settings().state_table


def _key(request_id: str) -> dict:
    return {"pk": {"S": keys.OPS_REQUEST + request_id.lower()}}


def create(request: OpsRequest) -> OpsRequest:
    """Store a new preview; a retried job gets back the request it stored the first time."""
    ddb, table = _table()
    try:
        ddb.put_item(
            TableName=table,
            Item={
                **_key(request.id),
                "request": {"S": json.dumps(asdict(request), ensure_ascii=False)},
                "status": {"S": request.status},
                "expires_at": {"N": str(request.expires + KEEP_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        existing = get(request.id)
        if existing is None:
            raise
        return existing
    return request


def get(request_id: str) -> OpsRequest | None:
    if not request_id.isalnum() or len(request_id) > 40:
        return None
    ddb, table = _table()
    item = ddb.get_item(TableName=table, Key=_key(request_id), ConsistentRead=True).get("Item")
    if not item:
        return None
    found = OpsRequest(**json.loads(item["request"]["S"]))
    found.status = item["status"]["S"]
    if "result" in item:
        found.result = json.loads(item["result"]["S"])
    if "conversation" in item:
        found.conversation = json.loads(item["conversation"]["S"])
    return found


def move(request: OpsRequest, new: str, allowed_from: tuple[str, ...], **changes: dict) -> bool:
    """Set the status (and `conversation`/`result`) if it is one of `allowed_from`; True for the one caller that did."""
    ddb, table = _table()
    names, values = {"#s": "status"}, {":new": {"S": new}}
    sets = ["#s = :new"]
    for name, value in changes.items():
        names[f"#{name}"] = name
        values[f":{name}"] = {"S": json.dumps(value, ensure_ascii=False)}
        sets.append(f"#{name} = :{name}")
    conditions = []
    for index, status in enumerate(allowed_from):
        values[f":from{index}"] = {"S": status}
        conditions.append(f"#s = :from{index}")
    try:
        ddb.update_item(
            TableName=table,
            Key=_key(request.id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" OR ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    request.status = new
    for name, value in changes.items():
        setattr(request, name, value)
    return True


def record_result(request: OpsRequest, result: dict) -> None:
    """Keep what the change did (its ids, the snapshot before it), whatever the status."""
    ddb, table = _table()
    ddb.update_item(
        TableName=table,
        Key=_key(request.id),
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"S": json.dumps(result, ensure_ascii=False)}},
    )
    request.result = result


def for_confirmation(request_id: str, actor_id: str, language: str, now: float | None = None) -> OpsRequest:
    """The request `actor_id` may confirm now, or OpsRefused saying why not."""
    found = get(request_id)
    if found is None:
        shown = md(request_id, 40)  # what the person typed: plain text, never markup of ours
        raise OpsRefused(t(language, f"没有请求 `{shown}`。", f"There is no request `{shown}`."))
    if found.requester != actor_id:
        raise OpsRefused(
            t(
                language,
                f"`{found.id}` 是 {found.requester_name} 的请求，只有发起人能确认。",
                f"`{found.id}` is {found.requester_name}'s request: only they may confirm it.",
            )
        )
    if found.status == PREVIEWED and (now or time.time()) > found.expires:
        raise OpsRefused(
            t(
                language,
                f"`{found.id}` 的确认时间已过，请重新发起。",
                f"`{found.id}` was not confirmed in time; ask again for a fresh preview.",
            )
        )
    return found


def new(
    request_id: str,
    verb: authz.Verb,
    actor,
    environment: str,
    scope: str,
    summary: str,
    plan: dict,
    language: str,
    confirm_minutes: int,
) -> OpsRequest:
    now = int(time.time())
    return create(
        OpsRequest(
            id=request_id,
            verb=verb.name,
            requester=actor.id,
            requester_name=actor.name,
            environment=environment,
            scope=scope,
            summary=summary,
            plan=plan,
            language=language,
            created=now,
            expires=now + confirm_minutes * 60,
        )
    )
