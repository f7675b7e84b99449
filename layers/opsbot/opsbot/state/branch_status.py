"""The last finished status per repo branch, so that a success right after a failure reads as "fixed"."""
from __future__ import annotations

from opsbot.aws import client
from opsbot.settings import settings

NO_STATUS = "none"  # stored for a branch's first build: DynamoDB has no null-in-string


def record_finish(repo_slug: str, branch: str, number: int, status: str) -> str | None:
    """Store this build as the branch's latest; return the status of the build before it.

    Idempotent for a retried job (same build number) and ignores builds older than the stored one, since
    Drone's deliveries can arrive out of order.
    """
    ddb = client("dynamodb")
    key = {"pk": {"S": f"branch#{repo_slug}#{branch}"}}
    for _ in range(3):
        item = ddb.get_item(TableName=settings().state_table, Key=key, ConsistentRead=True).get("Item") or {}
        stored_number = int(item["number"]["N"]) if "number" in item else -1
        stored_status = item.get("status", {}).get("S")
        if stored_number == number:
            previous = item.get("previous_status", {}).get("S")
            return None if previous == NO_STATUS else previous
        if stored_number > number:
            return None
        values = {":n": {"N": str(number)}, ":s": {"S": status}, ":p": {"S": stored_status or NO_STATUS}}
        try:
            ddb.update_item(
                TableName=settings().state_table, Key=key,
                UpdateExpression="SET #n = :n, #s = :s, previous_status = :p",
                ConditionExpression="attribute_not_exists(pk) OR #n < :n",
                ExpressionAttributeNames={"#n": "number", "#s": "status"},
                ExpressionAttributeValues=values,
            )
            return stored_status
        except ddb.exceptions.ConditionalCheckFailedException:
            continue  # a newer build landed in between; read again
    return None
