"""Every ops verb, as the authorization core sees it, named once; light enough for the chat registry to import at
a cold start (the ops logic itself loads only when a command or job runs)."""

from __future__ import annotations

from opsbot.authz import core as authz

# Every ops verb, as the authorization core sees it. Reads run in the worker (they may be slow, and the Kubernetes
# client stays off the DingTalk function), but stay reads: no preview, no approval.
K8S_PODS = authz.Verb("k8s pods", ("developer",), authz.READ)
K8S_LOGS = authz.Verb("k8s logs", ("developer",), authz.READ)
K8S_RESTART = authz.Verb("k8s restart", ("ops",), authz.OPS)
K8S_SCALE = authz.Verb("k8s scale", ("ops",), authz.OPS)
SERVICE_RESTART = authz.Verb("restart service", ("developer", "ops"), authz.OPS)
VM_RUN = authz.Verb("vm run", ("ops",), authz.OPS)
DNS_SHOW = authz.Verb("dns show", ("developer",), authz.READ)
DNS_SET = authz.Verb("dns set", ("ops",), authz.OPS)
DNS_UNDO = authz.Verb("dns undo", ("ops",), authz.OPS)
# The requester's own go-ahead (anyone with a role may confirm what they asked for); the request's verb is decided
# again when it is confirmed.
CONFIRM = authz.Verb("confirm", ("developer", "deployer", "ops"), authz.ACT)
CHANGES = {v.name: v for v in (K8S_RESTART, K8S_SCALE, SERVICE_RESTART, VM_RUN, DNS_SET, DNS_UNDO)}
OPS_EVENT = "ops"  # an approval request's `event` when it is for an ops change (release/approvals.py)
