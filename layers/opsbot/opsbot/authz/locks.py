"""Environment locks, as Atlantis holds a project: one person holds a project's environment, with a reason and maybe
an end (`for 2h`), and while it is held the authorization core refuses every act that changes it to everyone else.

Also the approved freeze overrides: an admin's `override`, approved by a second admin, lets releases into one
project's environment through the freeze window that is open (until it closes).

One item per project and environment in the state table (`lock#…`, `freeze-override#…`). Every change is a
conditional write: two people locking at once get one holder and one refusal naming them; an unlock removes only
the lock it read (its holder and start), so it never removes a lock taken again in between. An expired lock is
no lock: reads ignore it, a new lock replaces it, and DynamoDB's TTL sweeps it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.settings import settings
from opsbot.state import keys

KEEP_AFTER_SECONDS = 86400  # an expired item lingers for a day before the TTL sweep; reads ignore it at once


@dataclass(frozen=True)
class Lock:
    project: str
    environment: str
    holder: str  # the actor id
    holder_name: str
    reason: str
    since: int  # epoch seconds
    until: int = 0  # 0: until unlocked

    def expired(self, now: float | None = None) -> bool:
        return bool(self.until) and (now if now is not None else time.time()) >= self.until


@dataclass(frozen=True)
class Override:
    """An approved override of the freeze window `window` for one project's environment."""

    project: str
    environment: str
    window: str  # the window's key (authz/freezes.Window.key)
    reason: str
    by: str  # the admin who asked (name)
    approved_by: str  # the second admin (name)
    request: str  # the approval request's id
    until: int  # the window's end


class LockHeld(Exception):
    """Someone else holds the lock (the current lock is attached)."""

    def __init__(self, lock: Lock):
        super().__init__(f"{lock.project}/{lock.environment} is locked by {lock.holder_name}")
        self.lock = lock


def _table() -> tuple:
    return client("dynamodb"), settings().state_table


def _key(prefix: str, project: str, environment: str) -> dict:
    return {"pk": {"S": f"{prefix}{project}#{environment}"}}


def _lock_of(item: dict) -> Lock:
    return Lock(
        project=item["project"]["S"],
        environment=item["environment"]["S"],
        holder=item["holder"]["S"],
        holder_name=item["holder_name"]["S"],
        reason=item["reason"]["S"],
        since=int(item["since"]["N"]),
        until=int(item.get("until", {}).get("N", "0")),
    )


def get(project: str, environment: str, now: float | None = None) -> Lock | None:
    """The lock that holds now, or None."""
    ddb, table = _table()
    item = ddb.get_item(TableName=table, Key=_key(keys.LOCK, project, environment), ConsistentRead=True).get("Item")
    if not item:
        return None
    lock = _lock_of(item)
    return None if lock.expired(now) else lock


def held_in(project: str, environments) -> dict[str, Lock]:
    """The locks that hold now among a project's environments, by environment."""
    found = {}
    for env in environments:
        if (lock := get(project, env)) is not None:
            found[env] = lock
    return found


def take(lock: Lock, attempts: int = 3) -> Lock:
    """Hold the lock: a new lock, or the holder's own again (a new reason or end), or one that has expired.
    LockHeld when someone else holds it."""
    ddb, table = _table()
    item = {
        **_key(keys.LOCK, lock.project, lock.environment),
        "project": {"S": lock.project},
        "environment": {"S": lock.environment},
        "holder": {"S": lock.holder},
        "holder_name": {"S": lock.holder_name},
        "reason": {"S": lock.reason},
        "since": {"N": str(lock.since)},
    }
    if lock.until:
        item["until"] = {"N": str(lock.until)}
        item["expires_at"] = {"N": str(lock.until + KEEP_AFTER_SECONDS)}
    try:
        ddb.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR holder = :me "
            "OR (attribute_exists(#until) AND #until <= :now)",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":me": {"S": lock.holder}, ":now": {"N": str(int(time.time()))}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        current = get(lock.project, lock.environment)
        if current is None and attempts > 1:  # it expired or was released in between: try again
            return take(lock, attempts - 1)
        if current is None:
            raise
        raise LockHeld(current) from None
    return lock


def release(lock: Lock) -> bool:
    """Remove exactly this lock (its holder and start); False when it is no longer the lock there."""
    ddb, table = _table()
    try:
        ddb.delete_item(
            TableName=table,
            Key=_key(keys.LOCK, lock.project, lock.environment),
            ConditionExpression="holder = :holder AND since = :since",
            ExpressionAttributeValues={":holder": {"S": lock.holder}, ":since": {"N": str(lock.since)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


# --- freeze overrides ---------------------------------------------------------------------------------------------


def override_for(project: str, environment: str, window: str, now: float | None = None) -> Override | None:
    """The approved override of this window for this project's environment, while the window lasts."""
    ddb, table = _table()
    item = ddb.get_item(TableName=table, Key=_key(keys.FREEZE_OVERRIDE, project, environment), ConsistentRead=True).get(
        "Item"
    )
    if not item or item["window"]["S"] != window:
        return None
    found = Override(
        project=item["project"]["S"],
        environment=item["environment"]["S"],
        window=item["window"]["S"],
        reason=item["reason"]["S"],
        by=item["by"]["S"],
        approved_by=item["approved_by"]["S"],
        request=item["request"]["S"],
        until=int(item["until"]["N"]),
    )
    return None if (now if now is not None else time.time()) >= found.until else found


def grant_override(override: Override) -> None:
    """Store an approved override (the same approval stored again is the same item)."""
    ddb, table = _table()
    ddb.put_item(
        TableName=table,
        Item={
            **_key(keys.FREEZE_OVERRIDE, override.project, override.environment),
            "project": {"S": override.project},
            "environment": {"S": override.environment},
            "window": {"S": override.window},
            "reason": {"S": override.reason},
            "by": {"S": override.by},
            "approved_by": {"S": override.approved_by},
            "request": {"S": override.request},
            "until": {"N": str(override.until)},
            "expires_at": {"N": str(override.until + KEEP_AFTER_SECONDS)},
        },
    )
