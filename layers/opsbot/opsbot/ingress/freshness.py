"""How old a source's message may be when opsbot acts on it: MESSAGE_MAX_AGE_SECONDS, by the source's own clock.

The message is one opsbot read back from its platform's API (Feishu's `create_time`), so its time is the
platform's, not whatever a callback claims. Its age is measured to the moment opsbot's ingress took the callback
(the job's `created_at`, which opsbot itself stamps): a job retried through the queue for a while still counts from
its arrival, while a genuine old message whose callback is sent again, a day or a year later, arrives old and is
refused. A message without a time cannot be shown fresh, so it is refused too.

The other sources have rules of their own: a DingTalk callback's sign holds for an hour (dingtalk/signature.py),
and a merge-request comment counts only for heads pushed before it was written (review/comments.py).
"""

from __future__ import annotations

from opsbot.settings import settings


def too_old(created_ms: int | None, received_ms: int) -> str:
    """Why a message created at `created_ms` and taken at `received_ms` is too old to act on; "" when it is fresh."""
    limit = settings().message_max_age_seconds
    if created_ms is None:
        return "the message carries no time of its own"
    age = (received_ms - created_ms) // 1000
    if age > limit:
        return (
            f"the message was sent {age // 60} min {age % 60} s before it reached opsbot; at most {limit} s is acted on"
        )
    return ""
