"""Exactly-once side effects in the worker, whose jobs SQS may deliver more than once.

`once(key, effect)` runs `effect` at most once per key and remembers its result, so a retried job (say,
the promote went through but posting the result to DingTalk failed) reuses the result instead of
promoting twice. If the effect raises, the claim is dropped so that the retry runs it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from opsbot.aws import client
from opsbot.jobs.model import RetryLater
from opsbot.settings import settings
from opsbot.state import keys

RUNNING_LEASE_SECONDS = 300  # longer than any one effect; a worker killed mid-effect frees the key after it


def once(key: str, effect: Callable[[], dict]) -> dict:
    ddb, table = client("dynamodb"), settings().state_table
    pk = {"pk": {"S": keys.EFFECT + key}}
    now = int(time.time())
    item = ddb.get_item(TableName=table, Key=pk, ConsistentRead=True).get("Item")
    if item and "result" in item:
        return json.loads(item["result"]["S"])
    try:
        ddb.put_item(
            TableName=table,
            Item={
                **pk,
                "lease_until": {"N": str(now + RUNNING_LEASE_SECONDS)},
                "expires_at": {"N": str(now + settings().idempotency_ttl_seconds)},
            },
            ConditionExpression="attribute_not_exists(pk) OR (attribute_not_exists(#result) AND lease_until < :now)",
            ExpressionAttributeNames={"#result": "result"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise RetryLater(f"effect {key} is running in another worker", delay=30) from None
    try:
        result = effect()
    except BaseException:
        ddb.delete_item(TableName=table, Key=pk)
        raise
    ddb.update_item(
        TableName=table,
        Key=pk,
        UpdateExpression="SET #result = :r",
        ExpressionAttributeNames={"#result": "result"},
        ExpressionAttributeValues={":r": {"S": json.dumps(result, ensure_ascii=False)}},
    )
    return result
