"""What review automation remembers in the state table: who has /approve'd a merge request (GitLab keeps
no such list for us), and a per-minute count of the notes opsbot posts, to stay under GitLab's limit of 60
notes a minute per user."""
from __future__ import annotations

import time

from opsbot.aws import client
from opsbot.jobs.model import RetryLater
from opsbot.settings import settings

APPROVALS_TTL_SECONDS = 180 * 24 * 3600  # a merge request open for half a year starts its approvals over
NOTES_PER_MINUTE = 60  # GitLab's default notes rate limit for one user (the bot's token)


def _approvals_key(repo: str, iid: int) -> dict:
    return {"pk": {"S": f"review-approvals#{repo.lower()}!{iid}"}}


def approvers(repo: str, iid: int) -> set[str]:
    item = client("dynamodb").get_item(TableName=settings().state_table, Key=_approvals_key(repo, iid),
                                       ConsistentRead=True).get("Item") or {}
    return set(item.get("users", {}).get("SS", []))


def set_approval(repo: str, iid: int, username: str, approved: bool) -> set[str]:
    """Add or drop one approver (atomically, as two comments may race); returns everyone approving now."""
    ddb, table = client("dynamodb"), settings().state_table
    if approved:
        answer = ddb.update_item(
            TableName=table, Key=_approvals_key(repo, iid), ReturnValues="ALL_NEW",
            UpdateExpression="ADD #users :u SET expires_at = :exp", ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":u": {"SS": [username.lower()]},
                                       ":exp": {"N": str(int(time.time()) + APPROVALS_TTL_SECONDS)}})
    else:
        answer = ddb.update_item(
            TableName=table, Key=_approvals_key(repo, iid), ReturnValues="ALL_NEW",
            UpdateExpression="DELETE #users :u", ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":u": {"SS": [username.lower()]}})
    return set(answer.get("Attributes", {}).get("users", {}).get("SS", []))


def take_note_slot(now: float | None = None) -> None:
    """Count one note against this minute; RetryLater until the next minute when the minute is full."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table, Key={"pk": {"S": f"gitlab-notes#{minute}"}},
            UpdateExpression="ADD #n :one SET expires_at = :exp",
            ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(NOTES_PER_MINUTE)},
                                       ":exp": {"N": str((minute + 2) * 60)}})
    except ddb.exceptions.ConditionalCheckFailedException:
        raise RetryLater("GitLab's notes budget for this minute is spent", delay=60 - int(now % 60) + 1) from None
