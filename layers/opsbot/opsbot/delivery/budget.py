"""Each robot's send budget and its digest buffer, kept in one state-table item per robot.

Every channel limits how fast a robot may send: DingTalk mutes a robot for 10 minutes past 20 messages a minute,
Feishu takes 100 a minute and 5 a second, WeCom 20 a minute, Slack about one a second, SES one a second in its
sandbox. A channel states its limits as windows (at most `count` sends in any `ms` milliseconds: its adapter's
`windows`). We keep the send times of the longest window (a sliding log, not a fixed-minute counter, so no span
ever exceeds a limit), take a send only when every window has room, and, once the budget is spent, fold further
news into `pending` until a digest flush sends it as one message. A burst stays in digests until a whole window
has passed since its last digest: news sent alone right after a digest would spend the room the burst's next
digest needs, and that digest would wait a whole window more.

Item `robot#<name>`: sends (list of epoch ms), version (optimistic lock for sends), digest_at (when the last
digest took its slot), pending (list of digest entries), pending_ids (set, so a retried job folds once), flush_at
(a flush job is scheduled).

Some limits are not a robot's own: SES's sending rate (one a second in the sandbox) is the account's in a region,
whichever e-mail robot sends. A channel names such a limit (`Shared`: its adapter's `shared_budget`), kept in an
item of its own (`send-rate#<name>`: sends, version), and a send takes a slot in both, or in neither, in one
transaction.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from opsbot import metrics
from opsbot.aws import client
from opsbot.channels.base import MINUTE_MS, Window
from opsbot.settings import settings
from opsbot.state import keys

WINDOW_MS = MINUTE_MS
# A flush job older than this is presumed lost, and another may be scheduled. It outlives a flush job's whole
# retry life (6 receives, at most 15 minutes apart, or 10 minutes while DingTalk mutes the robot), so two
# flush chains, which would send the same digest twice, do not run side by side.
FLUSH_LEASE_MS = 7_200_000


@dataclass
class RobotState:
    sends: list[int] = field(default_factory=list)
    version: int = 0
    pending: list[dict] = field(default_factory=list)
    flush_at: int | None = None
    digest_at: int | None = None

    def recent_sends(self, now_ms: int, within_ms: int = WINDOW_MS) -> list[int]:
        return sorted(s for s in self.sends if s > now_ms - within_ms)

    def seconds_until_slot(self, windows: tuple[Window, ...], now_ms: int) -> int:
        """How long until every window has room for one more send (0: now)."""
        wait_ms = 0
        for window in windows:
            recent = self.recent_sends(now_ms, window.ms)
            if len(recent) >= window.count:
                wait_ms = max(wait_ms, recent[len(recent) - window.count] + window.ms - now_ms)
        return max(1, math.ceil(wait_ms / 1000)) if wait_ms > 0 else 0

    def has_room(self, windows: tuple[Window, ...], now_ms: int) -> bool:
        return all(len(self.recent_sends(now_ms, w.ms)) < w.count for w in windows)


@dataclass(frozen=True)
class Shared:
    """A limit several robots share (SES's rate per account and region): its name and windows."""

    name: str
    windows: tuple[Window, ...]

    @property
    def key(self) -> dict:
        return {"pk": {"S": keys.SEND_RATE + self.name}}


def _key(robot: str) -> dict:
    return {"pk": {"S": keys.ROBOT + robot}}


def read(robot: str) -> RobotState:
    return _read(_key(robot))


def read_shared(shared: Shared) -> RobotState:
    return _read(shared.key)


def seconds_until_slot(robot: str, windows: tuple[Window, ...], now_ms: int, shared: Shared | None = None) -> int:
    """How long until the robot's windows, and the limit it shares, all have room for one more send."""
    wait = read(robot).seconds_until_slot(windows, now_ms)
    return max(wait, read_shared(shared).seconds_until_slot(shared.windows, now_ms)) if shared else wait


def _read(key: dict) -> RobotState:
    item = client("dynamodb").get_item(TableName=settings().state_table, Key=key, ConsistentRead=True).get("Item") or {}
    return RobotState(
        sends=[int(v["N"]) for v in item.get("sends", {}).get("L", [])],
        version=int(item.get("version", {}).get("N", 0)),
        pending=[json.loads(v["S"]) for v in item.get("pending", {}).get("L", [])],
        flush_at=int(item["flush_at"]["N"]) if "flush_at" in item else None,
        digest_at=int(item["digest_at"]["N"]) if "digest_at" in item else None,
    )


def _slot_update(key: dict, state: RobotState, windows: tuple[Window, ...], now_ms: int, for_digest: bool) -> dict:
    """The write that records one more send in `state`'s item, on condition that no other send came in between."""
    recent = state.recent_sends(now_ms, max(w.ms for w in windows))
    values = {
        ":sends": {"L": [{"N": str(s)} for s in recent + [now_ms]]},
        ":next": {"N": str(state.version + 1)},
        ":v": {"N": str(state.version)},
    }
    if for_digest:
        values[":now"] = {"N": str(now_ms)}
    return {
        "TableName": settings().state_table,
        "Key": key,
        "UpdateExpression": "SET sends = :sends, version = :next" + (", digest_at = :now" if for_digest else ""),
        "ConditionExpression": "attribute_not_exists(version) OR version = :v",
        "ExpressionAttributeValues": values,
    }


def try_take_slot(
    robot: str, windows: tuple[Window, ...], now_ms: int, for_digest: bool = False, shared: Shared | None = None
) -> bool:
    """Record a send if every window has room, the robot's own and those of the limit it shares. While a digest is
    pending, or within a window of the last digest, only the flush may send, so that news keeps its order and a
    burst cannot starve the digest."""
    ddb = client("dynamodb")
    for _ in range(8):
        state = read(robot)
        longest = max(w.ms for w in windows)
        in_burst = state.digest_at is not None and now_ms - state.digest_at < longest
        if (state.pending or in_burst) and not for_digest:
            return False
        if not state.has_room(windows, now_ms):
            return False
        update = _slot_update(_key(robot), state, windows, now_ms, for_digest)
        try:
            if shared is None:
                ddb.update_item(**update)
                return True
            common = read_shared(shared)
            if not common.has_room(shared.windows, now_ms):
                return False
            also = _slot_update(shared.key, common, shared.windows, now_ms, for_digest=False)
            ddb.transact_write_items(TransactItems=[{"Update": update}, {"Update": also}])
            return True
        except (ddb.exceptions.ConditionalCheckFailedException, ddb.exceptions.TransactionCanceledException):
            continue  # another worker took a slot in between
    return False


def fold(robot: str, entry: dict) -> None:
    """Append an entry to the robot's digest, once per entry id."""
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key=_key(robot),
            UpdateExpression="SET pending = list_append(if_not_exists(pending, :empty), :entry) ADD pending_ids :ids",
            ConditionExpression="NOT contains(pending_ids, :id)",
            ExpressionAttributeValues={
                ":empty": {"L": []},
                ":entry": {"L": [{"S": json.dumps(entry, ensure_ascii=False)}]},
                ":ids": {"SS": [entry["id"]]},
                ":id": {"S": entry["id"]},
            },
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return  # this entry is already folded
    metrics.count(metrics.DIGEST_FOLDS)


def claim_flush(robot: str, now_ms: int, by: str = "") -> bool:
    """True for the one caller that should schedule the digest flush. `by` names the caller (the news it folds):
    its retry gets the lease again, should the first claim have gone through with its answer lost."""
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key=_key(robot),
            UpdateExpression="SET flush_at = :now, flush_by = :by",
            ConditionExpression="attribute_not_exists(flush_at) OR flush_at < :stale OR flush_by = :by",
            ExpressionAttributeValues={
                ":now": {"N": str(now_ms)},
                ":stale": {"N": str(now_ms - FLUSH_LEASE_MS)},
                ":by": {"S": by or f"at {now_ms}"},
            },
        )
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False


def abandon_flush_claim(robot: str, claimed_at_ms: int) -> None:
    """Give back a lease whose flush job could not be queued (only if it is still ours)."""
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key=_key(robot),
            UpdateExpression="REMOVE flush_at",
            ConditionExpression="flush_at = :mine",
            ExpressionAttributeValues={":mine": {"N": str(claimed_at_ms)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        pass


def renew_flush(robot: str, now_ms: int) -> None:
    client("dynamodb").update_item(
        TableName=settings().state_table,
        Key=_key(robot),
        UpdateExpression="SET flush_at = :now REMOVE flush_by",  # the flush's lease now, no longer its claimant's
        ExpressionAttributeValues={":now": {"N": str(now_ms)}},
    )


def drop_sent(robot: str, entries: list[dict]) -> None:
    """Remove the entries a digest delivered. Only the flush removes, and only from the front."""
    if not entries:
        return
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key=_key(robot),
            UpdateExpression="REMOVE "
            + ", ".join(f"pending[{i}]" for i in range(len(entries)))
            + " DELETE pending_ids :ids",
            # Guards against a second flusher (a stale lease) having removed them already.
            ConditionExpression="pending[0] = :first",
            ExpressionAttributeValues={
                ":ids": {"SS": [e["id"] for e in entries]},
                ":first": {"S": json.dumps(entries[0], ensure_ascii=False)},
            },
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        pass


def release_flush(robot: str) -> bool:
    """End the flush lease if nothing is pending; False when news arrived meanwhile."""
    ddb = client("dynamodb")
    try:
        ddb.update_item(
            TableName=settings().state_table,
            Key=_key(robot),
            UpdateExpression="REMOVE flush_at",
            ConditionExpression="attribute_not_exists(pending) OR size(pending) = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
