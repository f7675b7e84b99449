"""Exactly-once effects: a delivery claims its dedupe key with a conditional put; a second claim fails.

Records carry `expires_at`, the state table's TTL attribute, so they clean themselves up: a delivery is remembered
for IDEMPOTENCY_TTL_SECONDS, as long as its sender may send it again. An act's claim (the chat message an act came
from: `permanent`) has no `expires_at` and is never swept: a genuine old message read again, however long after,
is a duplicate, not an act to run again. It is a small item (its key, a state and a time).

A delivery's claim has two phases (`claim_delivery`, `confirm`): `pending` while its job is being queued, `queued`
once it is. A request that stops in between (its Lambda's timeout) leaves a pending claim and no job; a retry that
finds it answers "in progress" while the request that made it could still be running, and takes it over after
that, so the delivery is neither lost (a claim with no job, answered "duplicate" for days) nor queued twice by two
living requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.settings import settings
from opsbot.state import keys

PENDING, QUEUED = "pending", "queued"
DUPLICATE, IN_PROGRESS = "duplicate", "in progress"  # why a delivery's claim was not ours


@dataclass(frozen=True)
class Claim:
    """A delivery's claim, ours: only its maker confirms or releases it (`claimed_at` tells it from a takeover)."""

    key: str
    claimed_at: int  # epoch ms
    expires_at: int | None  # None: a permanent claim, never swept


def _item(claim: Claim, state: str) -> dict:
    item = {
        "pk": {"S": keys.IDEMPOTENCY + claim.key},
        "state": {"S": state},
        "claimed_at": {"N": str(claim.claimed_at)},
    }
    if claim.expires_at is not None:
        item["expires_at"] = {"N": str(claim.expires_at)}
    return item


def claim_delivery(
    key: str, ttl_seconds: int | None, takeover_after_seconds: float, permanent: bool = False
) -> Claim | str:
    """Our pending claim of `key`, or why not: DUPLICATE (its job is queued, or was), IN_PROGRESS (a request that
    may still be running is queueing it). A pending claim older than `takeover_after_seconds` is taken over. A
    `permanent` claim is kept for good (an act's: see the module's doc)."""
    ddb = client("dynamodb")
    ttl = settings().idempotency_ttl_seconds if ttl_seconds is None else ttl_seconds
    now_ms = int(time.time() * 1000)
    claim = Claim(key, now_ms, None if permanent else now_ms // 1000 + ttl)
    try:
        # TTL deletion is lazy (up to days late), so an expired record must not count as a claim; a permanent one
        # has no expires_at, which the comparison never finds past.
        ddb.put_item(
            TableName=settings().state_table,
            Item=_item(claim, PENDING),
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now "
            "OR (#state = :pending AND claimed_at < :stale)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":now": {"N": str(now_ms // 1000)},
                ":pending": {"S": PENDING},
                ":stale": {"N": str(now_ms - int(takeover_after_seconds * 1000))},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ddb.exceptions.ConditionalCheckFailedException as exc:
        held = exc.response.get("Item") or {}
        # A claim written before claims had a state was written with its job queued.
        return IN_PROGRESS if held.get("state", {}).get("S") == PENDING else DUPLICATE
    return claim


def confirm(claim: Claim) -> None:
    """The claim's job is on the queue. A PutItem (what ingress may call), and only while the claim is still ours."""
    ddb = client("dynamodb")
    try:
        ddb.put_item(
            TableName=settings().state_table,
            Item=_item(claim, QUEUED),
            ConditionExpression="claimed_at = :mine",
            ExpressionAttributeValues={":mine": {"N": str(claim.claimed_at)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        pass  # taken over by a retry after this request took too long: that one queues the job as well


def release_claim(claim: Claim) -> None:
    """Forget our claim, whose job could not be queued, so that the sender's retry is not a duplicate."""
    ddb = client("dynamodb")
    try:
        ddb.delete_item(
            TableName=settings().state_table,
            Key={"pk": {"S": keys.IDEMPOTENCY + claim.key}},
            ConditionExpression="claimed_at = :mine",
            ExpressionAttributeValues={":mine": {"N": str(claim.claimed_at)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        pass


def claim(key: str, ttl_seconds: int | None = None) -> bool:
    """True when this is the first claim of `key`; False for a duplicate."""
    ddb = client("dynamodb")
    ttl = settings().idempotency_ttl_seconds if ttl_seconds is None else ttl_seconds
    now = int(time.time())
    try:
        # TTL deletion is lazy (up to days late), so an expired record must not count as a claim.
        ddb.put_item(
            TableName=settings().state_table,
            Item={"pk": {"S": keys.IDEMPOTENCY + key}, "expires_at": {"N": str(now + ttl)}},
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def bind(key: str, value: str, expires_at: int) -> bool:
    """Tie `key` (a whole state-table key) to `value` until `expires_at`: True the first time and whenever the
    same value comes again, False when the key is already tied to another value."""
    ddb = client("dynamodb")
    now = int(time.time())
    try:
        ddb.put_item(
            TableName=settings().state_table,
            Item={"pk": {"S": key}, "bound_to": {"S": value}, "expires_at": {"N": str(expires_at)}},
            ConditionExpression="attribute_not_exists(pk) OR bound_to = :value OR expires_at < :now",
            ExpressionAttributeValues={":value": {"S": value}, ":now": {"N": str(now)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def seen(key: str, takeover_after_seconds: float | None = None) -> bool:
    """Whether `key` is claimed: a delivery's pending claim counts until it may be taken over."""
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key={"pk": {"S": keys.IDEMPOTENCY + key}}, ConsistentRead=True)
        .get("Item")
    )
    if not item or ("expires_at" in item and int(item["expires_at"]["N"]) <= time.time()):
        return False
    if takeover_after_seconds is not None and item.get("state", {}).get("S") == PENDING:
        return int(item["claimed_at"]["N"]) >= (time.time() - takeover_after_seconds) * 1000
    return True
