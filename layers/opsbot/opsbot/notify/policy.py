"""Whether a finished build is worth a message for this project, and why."""

from __future__ import annotations

from opsbot.config.model import NotifyPolicy
from opsbot.drone.builds import build_branch

FAILED = {"failure", "error"}
STOPPED = FAILED | {"killed"}  # a killed build is worth telling, but a success after it is no "fix"


def reason_to_notify(policy: NotifyPolicy, build: dict, previous_status: str | None) -> str | None:
    """One of failure, fixed, success, promote, rollback; or None to stay quiet."""
    event, status = build.get("event"), build.get("status")
    if event == "promote":
        return "promote" if policy.on_promote else None
    if event == "rollback":
        return "rollback" if policy.on_rollback else None
    if status in STOPPED:
        return "failure" if policy.on_failure else None
    if status == "success":
        if previous_status in FAILED and policy.on_fixed:
            return "fixed"
        if policy.success_branch(build_branch(build)):
            return "success"
    return None
