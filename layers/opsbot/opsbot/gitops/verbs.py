"""The GitOps verb the authorization core decides on, how its approval requests are marked and how it refuses, named
once and light enough for the chat registry to import at a cold start (the rollback itself,
gitops/config_rollback.py, loads when one runs)."""

from __future__ import annotations

from opsbot.authz import core as authz

# Restoring an earlier config changes what opsbot does for everyone, and maybe who may do what: for admins, and
# a change to `people` or `permissions` needs another admin's approval (authz.core.config_approvals).
ROLLBACK = authz.Verb("config rollback", ("admin",), authz.CONFIG)
CONFIG_EVENT = "config"  # an approval request's `event` when it is for a config rollback (release/approvals.py)
RIGHTS, SETTINGS = "people/permissions", "config"  # an approval request's `target`: what the rollback changes


class RollbackRefused(Exception):
    """The facts say no (no such version, not on the branch, invalid now, the branch moved); shown as is."""
