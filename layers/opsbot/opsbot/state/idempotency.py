"""Exactly-once effects: a delivery claims its dedupe key with a conditional put; a second claim fails.

Records carry `expires_at`, the state table's TTL attribute, so they clean themselves up.
"""

from __future__ import annotations

import time

from opsbot.aws import client
from opsbot.settings import settings
from opsbot.state import keys


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


def release(key: str) -> None:
    """Forget a claim whose effect did not happen, so the sender's retry is not taken for a duplicate."""
    client("dynamodb").delete_item(TableName=settings().state_table, Key={"pk": {"S": keys.IDEMPOTENCY + key}})


def seen(key: str) -> bool:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key={"pk": {"S": keys.IDEMPOTENCY + key}}, ConsistentRead=True)
        .get("Item")
    )
    return bool(item) and int(item["expires_at"]["N"]) > time.time()
