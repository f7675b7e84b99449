"""The last finished status per repo branch, so that a success right after a failure reads as "fixed"."""

from __future__ import annotations

import time

from opsbot.aws import client
from opsbot.settings import settings
from opsbot.state import keys

NO_STATUS = "none"  # stored for a branch's first build: DynamoDB has no null-in-string


def _status(value: str | None) -> str | None:
    return None if value in (None, NO_STATUS) else value


def record_finish(repo_slug: str, branch: str, number: int, status: str) -> str | None:
    """Store this build as the branch's latest; return the status of the build before it.

    The answer is remembered per build, so a retried job gets the same answer even after newer builds have
    landed (otherwise a "fixed" notice that failed to send once would turn quiet). Builds older than the
    stored one get None, since Drone's deliveries can arrive out of order.
    """
    ddb = client("dynamodb")
    table = settings().state_table
    memo_key = {"pk": {"S": f"{keys.BUILD_PREVIOUS}{repo_slug}#{branch}#{number}"}}
    memo = ddb.get_item(TableName=table, Key=memo_key, ConsistentRead=True).get("Item")
    if memo:
        return _status(memo["previous_status"]["S"])

    key = {"pk": {"S": f"{keys.BRANCH}{repo_slug}#{branch}"}}
    previous: str | None = None
    for _ in range(3):
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
        stored_number = int(item["number"]["N"]) if "number" in item else -1
        stored_status = item.get("status", {}).get("S")
        if stored_number == number:  # recorded, but the memo was not written
            previous = _status(item.get("previous_status", {}).get("S"))
            break
        if stored_number > number:
            return None
        try:
            ddb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #n = :n, #s = :s, previous_status = :p",
                ConditionExpression="attribute_not_exists(pk) OR #n < :n",
                ExpressionAttributeNames={"#n": "number", "#s": "status"},
                ExpressionAttributeValues={
                    ":n": {"N": str(number)},
                    ":s": {"S": status},
                    ":p": {"S": stored_status or NO_STATUS},
                },
            )
            previous = stored_status
            break
        except ddb.exceptions.ConditionalCheckFailedException:
            continue  # a newer build landed in between; read again
    else:
        return None
    ddb.put_item(
        TableName=table,
        Item={
            **memo_key,
            "previous_status": {"S": previous or NO_STATUS},
            "expires_at": {"N": str(int(time.time()) + settings().idempotency_ttl_seconds)},
        },
    )
    return previous
