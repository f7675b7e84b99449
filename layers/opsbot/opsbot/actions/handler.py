"""GET and POST /actions/{token}. A GET only reads: it checks the token and shows what a POST would do.
The POST claims the token's nonce (single use, a conditional write) and queues one release job."""
from __future__ import annotations

import time

from opsbot.actions import pages
from opsbot.actions.tokens import ReleaseGrant, TokenRefused, read
from opsbot.config import store
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.state import idempotency

JOB_KIND = "release.link"
CLAIM_GRACE_SECONDS = 86400  # remember a used nonce a day past the token's expiry


def _used_key(grant: ReleaseGrant) -> str:
    return f"action#{grant.nonce}"


def _needs_approval(grant: ReleaseGrant) -> bool:
    project = store.load().projects.get(grant.project)
    env = project.environments.get(grant.target) if project else None
    if env is None:
        raise TokenRefused(410, f"{grant.project} no longer has the environment {grant.target}")
    return env.approvals > 0


def show(token: str) -> tuple[int, str]:
    try:
        grant = read(token)
        if idempotency.seen(_used_key(grant)):
            raise TokenRefused(410, "this release link has already been used")
        return 200, pages.confirm(grant, _needs_approval(grant))
    except TokenRefused as exc:
        return exc.status, pages.refused(exc.status, exc.reason)


def confirm(token: str, source_ip: str, user_agent: str) -> tuple[int, str]:
    try:
        grant = read(token)
        needs_approval = _needs_approval(grant)
        key = _used_key(grant)
        if not idempotency.claim(key, ttl_seconds=max(60, grant.expires - int(time.time())) + CLAIM_GRACE_SECONDS):
            raise TokenRefused(410, "this release link has already been used")
    except TokenRefused as exc:
        return exc.status, pages.refused(exc.status, exc.reason)
    try:
        enqueue(Job(kind=JOB_KIND, id=f"release-{grant.nonce}", payload={
            "grant": grant.__dict__, "clicked_at": int(time.time()), "source_ip": source_ip,
            "user_agent": user_agent[:200]}))
    except Exception:
        idempotency.release(key)  # not queued: the link stays usable
        raise
    return 202, pages.submitted(grant, needs_approval)
