"""What review automation remembers in the state table: the `/lgtm` and the `/approve`s a merge request got, each
bound to the head commit it was given on (GitLab keeps no such list for us, and its labels say nothing of the
commit), and a per-minute count of the notes opsbot posts, to stay under GitLab's limit of 60 notes a minute
per user.

Tide merges only with an lgtm and approvals given at the head it merges: labels are what people see, and they
may lag behind a push while its triage is retried."""

from __future__ import annotations

import time

from opsbot.aws import client
from opsbot.jobs.model import RetryLater
from opsbot.settings import settings
from opsbot.state import keys

REVIEW_TTL_SECONDS = 180 * 24 * 3600  # a merge request open for half a year starts its review over
NOTES_PER_MINUTE = 60  # GitLab's default notes rate limit for one user (the bot's token)


def _mr(repo: str, iid: int) -> str:
    return f"{repo.lower()}!{iid}"


def _expires() -> dict:
    return {"N": str(int(time.time()) + REVIEW_TTL_SECONDS)}


def set_lgtm(repo: str, iid: int, sha: str, username: str) -> None:
    """The merge request's lgtm, given by `username` on the head `sha` (a later /lgtm replaces it)."""
    client("dynamodb").put_item(
        TableName=settings().state_table,
        Item={
            "pk": {"S": keys.REVIEW_LGTM + _mr(repo, iid)},
            "sha": {"S": sha},
            "by": {"S": username.lower()},
            "expires_at": _expires(),
        },
    )


def drop_lgtm(repo: str, iid: int) -> None:
    client("dynamodb").delete_item(
        TableName=settings().state_table, Key={"pk": {"S": keys.REVIEW_LGTM + _mr(repo, iid)}}
    )


def lgtm_sha(repo: str, iid: int) -> str | None:
    """The head commit the merge request's lgtm was given on; None when it has none."""
    item = (
        client("dynamodb")
        .get_item(
            TableName=settings().state_table, ConsistentRead=True, Key={"pk": {"S": keys.REVIEW_LGTM + _mr(repo, iid)}}
        )
        .get("Item")
        or {}
    )
    return item["sha"]["S"] if "sha" in item else None


def _approvals_key(repo: str, iid: int, sha: str) -> dict:
    # one item per head commit: approvals given on an earlier head are simply not read
    return {"pk": {"S": f"{keys.REVIEW_APPROVALS}{_mr(repo, iid)}#{sha}"}}


def approvers(repo: str, iid: int, sha: str) -> set[str]:
    """Who has approved the merge request at the head `sha`."""
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key=_approvals_key(repo, iid, sha), ConsistentRead=True)
        .get("Item")
        or {}
    )
    return set(item.get("users", {}).get("SS", []))


def set_approval(repo: str, iid: int, sha: str, username: str, approved: bool) -> set[str]:
    """Add or drop one approver at the head `sha` (atomically, as two comments may race); returns everyone
    approving at that head now."""
    ddb, table = client("dynamodb"), settings().state_table
    if approved:
        answer = ddb.update_item(
            TableName=table,
            Key=_approvals_key(repo, iid, sha),
            ReturnValues="ALL_NEW",
            UpdateExpression="ADD #users :u SET expires_at = :exp",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":u": {"SS": [username.lower()]}, ":exp": _expires()},
        )
    else:
        answer = ddb.update_item(
            TableName=table,
            Key=_approvals_key(repo, iid, sha),
            ReturnValues="ALL_NEW",
            UpdateExpression="DELETE #users :u SET expires_at = :exp",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":u": {"SS": [username.lower()]}, ":exp": _expires()},
        )
    return set(answer.get("Attributes", {}).get("users", {}).get("SS", []))


def take_note_slot(now: float | None = None) -> None:
    """Count one note against this minute; RetryLater until the next minute when the minute is full."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key={"pk": {"S": f"{keys.GITLAB_NOTES}{minute}"}},
            UpdateExpression="ADD #n :one SET expires_at = :exp",
            ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(NOTES_PER_MINUTE)},
                ":exp": {"N": str((minute + 2) * 60)},
            },
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise RetryLater("GitLab's notes budget for this minute is spent", delay=60 - int(now % 60) + 1) from None
