"""Exactly-once side effects in the worker, whose jobs SQS may deliver more than once.

`once(key, effect)` runs `effect` at most once per key and remembers its result, so a retried job (say, the promote
went through but posting the result to DingTalk failed) reuses the result instead of promoting twice.

The record `effect#<key>` is, in turn:

- running: an attempt claimed it (`owner`) until `lease_until`. LEASE_SECONDS outlasts the work queue's visibility
  timeout, which outlasts the worker's own timeout (a unit test checks both against template.yaml), so while a
  lease holds, the attempt that took it may still be running, and no other copy of the job runs the effect;
  once it has ended, that attempt is over for sure: done, failed, or killed.
- committed: the attempt reached a call that cannot be taken back and whose outcome cannot be asked afterwards
  (a DingTalk send: `commit()` just before it). From here on, an attempt that died, or a call whose answer was
  lost (a read timeout), leaves the effect in doubt: it may have happened. It is never run again by itself: the
  job is parked in the DLQ (EffectInDoubt) and the parked copy names the effect in its `retake`, so an operator
  who looked and found it missing redrives the job and that copy runs it again.
- done: `result` stored; every later attempt gets it back.

An attempt that fails before its commit point (any exception, or a peer's definite answer after it) drops its
claim, so the retry runs the effect again; an attempt killed before it leaves a lease that the job's redelivery
waits out, then takes over.

A record is kept for KEEP_SECONDS, longer than any copy of its job can live (the dead-letter queue keeps one for 14
days from when it was first queued), so a job redriven late finds its effects done, not forgotten. The markers of
acts that a new job could ask for again (a merge-request comment's commands by its note id, an approval's deploy,
an ops request's change) are `permanent`: no `expires_at`, never swept; their results are small.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.jobs.model import PermanentFailure, RetryLater, current_job
from opsbot.peers import PeerRefused
from opsbot.settings import settings
from opsbot.state import keys

# Longer than the work queue's visibility timeout (360 s in template.yaml), which is six times the worker's timeout:
# a killed attempt's own message comes back before its lease ends, and no copy of the job takes over an effect
# whose first attempt could still be running.
LEASE_SECONDS = 420
# Longer than the dead-letter queue's MessageRetentionPeriod (14 days, template.yaml: a unit test checks).
KEEP_SECONDS = 15 * 86400


class EffectBusy(RetryLater):
    """Another attempt holds the effect's lease: this one waits for it to end, which is not a failure."""


class EffectInDoubt(PermanentFailure):
    """An effect may or may not have happened; it is not repeated without an operator (see the module's doc)."""

    def __init__(self, key: str, reason: str, also: tuple[str, ...] = ()):
        super().__init__(reason)
        self.key = key
        self.keys = (key, *also)  # every effect in doubt: one per robot when a post to several robots stopped


@dataclass
class _Claim:
    key: str
    owner: str
    committed: bool = False
    recorded: dict | None = None  # a result written with the effect's own write (`recorded_with`)


_running: ContextVar[tuple[_Claim, ...]] = ContextVar("running_effects", default=())


def _pk(key: str) -> dict:
    return {"pk": {"S": keys.EFFECT + key}}


def _definitely_not_done(exc: BaseException) -> bool:
    """A peer's own answer that it did not do it (refused, busy), or our own check before the call."""
    return isinstance(exc, PermanentFailure | RetryLater | PeerRefused) and not getattr(exc, "in_doubt", False)


def once(key: str, effect: Callable[[], dict], permanent: bool = False) -> dict:
    """`effect()`'s result, run at most once for `key` (see the module's doc); a `permanent` record is never swept."""
    ddb, table = client("dynamodb"), settings().state_table
    now = int(time.time())
    item = ddb.get_item(TableName=table, Key=_pk(key), ConsistentRead=True).get("Item")
    if item and "result" in item:
        return json.loads(item["result"]["S"])
    if item:
        lease_until = int(item.get("lease_until", {}).get("N", 0))
        if lease_until >= now:
            # Not before its lease ends: then the attempt that holds it is surely over.
            delay = min(lease_until - now + 1, settings().retry_max_seconds)
            raise EffectBusy(f"effect {key} is running in another worker", delay=delay)
        job = current_job.get()
        if "committed" in item and not (job and key in job.retake):
            raise EffectInDoubt(key, f"effect {key} may have happened: an attempt stopped during it; not repeated")
    claim = _Claim(key, uuid.uuid4().hex)
    try:
        ddb.put_item(
            TableName=table,
            Item={
                **_pk(key),
                "owner": {"S": claim.owner},
                "lease_until": {"N": str(now + LEASE_SECONDS)},
                **({} if permanent else {"expires_at": {"N": str(now + KEEP_SECONDS)}}),
            },
            ConditionExpression="attribute_not_exists(pk) OR (attribute_not_exists(#result) AND lease_until < :now)",
            ExpressionAttributeNames={"#result": "result"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise EffectBusy(f"effect {key} is running in another worker", delay=30) from None
    token = _running.set((*_running.get(), claim))
    try:
        result = effect()
    except Exception as exc:
        if claim.committed and not _definitely_not_done(exc):
            # Keep the record committed, so that no retry does it again; its lease ends with this attempt.
            _end_lease(claim, now)
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise EffectInDoubt(key, f"effect {key} may have happened ({reason}); not repeated") from exc
        _release(claim)
        raise
    finally:
        _running.reset(token)
    if claim.recorded is not None:
        return claim.recorded
    ddb.update_item(
        TableName=table,
        Key=_pk(key),
        UpdateExpression="SET #result = :r REMOVE committed",
        ConditionExpression="#owner = :me",
        ExpressionAttributeNames={"#result": "result", "#owner": "owner"},
        ExpressionAttributeValues={":r": {"S": json.dumps(result, ensure_ascii=False)}, ":me": {"S": claim.owner}},
    )
    return result


def recorded_with(result: dict) -> dict:
    """For an effect that is itself one DynamoDB transaction: an item for that transaction that records `result`
    as the innermost running effect's, so that the effect and its result land together (a retry after it finds
    the result, not an effect that seems not to have happened). The effect then returns; its result is this one."""
    running = _running.get()
    if not running:
        raise RuntimeError("recorded_with() outside effects.once")
    claim = running[-1]
    claim.recorded = result
    return {
        "Update": {
            "TableName": settings().state_table,
            "Key": _pk(claim.key),
            "UpdateExpression": "SET #result = :r REMOVE committed",
            "ConditionExpression": "#owner = :me",
            "ExpressionAttributeNames": {"#result": "result", "#owner": "owner"},
            "ExpressionAttributeValues": {
                ":r": {"S": json.dumps(result, ensure_ascii=False)},
                ":me": {"S": claim.owner},
            },
        }
    }


def commit() -> None:
    """Mark the innermost running effect as past its point of no return: call it just before a call whose outcome
    cannot be asked afterwards. A send outside any effect could not be made exactly once, so there is none."""
    running = _running.get()
    if not running:
        raise RuntimeError("commit() outside effects.once: this send could happen twice")
    claim = running[-1]
    if claim.committed:
        return
    client("dynamodb").update_item(
        TableName=settings().state_table,
        Key=_pk(claim.key),
        UpdateExpression="SET committed = :yes",
        ConditionExpression="#owner = :me",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={":yes": {"BOOL": True}, ":me": {"S": claim.owner}},
    )
    claim.committed = True


def _end_lease(claim: _Claim, now: int) -> None:
    client("dynamodb").update_item(
        TableName=settings().state_table,
        Key=_pk(claim.key),
        UpdateExpression="SET lease_until = :ended",
        ConditionExpression="#owner = :me",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={":ended": {"N": str(now - 1)}, ":me": {"S": claim.owner}},
    )


def _release(claim: _Claim) -> None:
    """Drop a claim whose effect did not happen, so that the retry runs it: only our own, and never one whose result
    was recorded (`recorded_with`: the write went through although its answer was lost)."""
    ddb = client("dynamodb")
    try:
        ddb.delete_item(
            TableName=settings().state_table,
            Key=_pk(claim.key),
            ConditionExpression="#owner = :me AND attribute_not_exists(#result)",
            ExpressionAttributeNames={"#owner": "owner", "#result": "result"},
            ExpressionAttributeValues={":me": {"S": claim.owner}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        pass
