"""What a job read from a peer, kept for its continuation: a job that runs out of its time budget (jobs.deadline)
is queued again to go on, and reads again only what it had not read yet. Without this, a job whose reads take
longer than one batch's time would start over on every run and never end.

`read(key, fetch)` remembers, for the running job, what `fetch()` returned; when the job runs out of time, the
worker calls `keep(job)` (jobs.registry.ON_OUT_OF_TIME), which stores what it read in one state-table item, and
the continuation (the same job id) starts from it. Reads are of content that does not change under the job: a
file at a commit, or one the job only needs as it is now.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextvars import ContextVar

from opsbot.aws import client
from opsbot.jobs.model import Job, current_job
from opsbot.jobs.registry import ON_OUT_OF_TIME
from opsbot.settings import settings
from opsbot.state import keys

KEEP_SECONDS = 86_400  # a continuation runs within seconds; the item expires with the state table's TTL
MAX_KEPT_BYTES = 350_000  # one DynamoDB item holds 400 KB; what does not fit is read again

_memo: ContextVar[tuple[Job, dict] | None] = ContextVar("job_reads", default=None)


def _key(job: Job) -> dict:
    return {"pk": {"S": keys.READS + job.id}}


def _for(job: Job) -> dict:
    """The running job's reads: from its earlier run when it is a continuation, else none yet."""
    state = _memo.get()
    if state is not None and state[0] is job:
        return state[1]
    found: dict = {}
    if job.continued:
        item = (
            client("dynamodb")
            .get_item(TableName=settings().state_table, Key=_key(job), ConsistentRead=True)
            .get("Item")
        )
        found = json.loads(item["reads"]["S"]) if item else {}
    _memo.set((job, found))
    return found


def read(key: str, fetch: Callable[[], str | None]) -> str | None:
    """`fetch()`, or what the running job already read under `key`."""
    job = current_job.get()
    if job is None:
        return fetch()
    memo = _for(job)
    if key not in memo:
        memo[key] = fetch()
    return memo[key]


def keep(job: Job) -> None:
    """Store what `job` read so far, for its continuation."""
    state = _memo.get()
    if state is None or state[0] is not job or not state[1]:
        return
    kept: dict = {}
    size = 0
    for key, value in state[1].items():
        size += len(key.encode()) + len(json.dumps(value, ensure_ascii=False).encode())
        if size > MAX_KEPT_BYTES:
            break
        kept[key] = value
    client("dynamodb").put_item(
        TableName=settings().state_table,
        Item={
            **_key(job),
            "reads": {"S": json.dumps(kept, ensure_ascii=False)},
            "expires_at": {"N": str(int(time.time()) + KEEP_SECONDS)},
        },
    )


ON_OUT_OF_TIME.append(keep)
