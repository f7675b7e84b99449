"""The one place opsbot emits metrics: counts in CloudWatch's embedded metric format (EMF).

Each count is one JSON line on stdout, which CloudWatch Logs turns into a metric: no API call, no IAM, no time
added to a request. Every count carries the `service` dimension (POWERTOOLS_SERVICE_NAME), `Stage` (so a dev and
a prod stack in one account never page each other) and its own few low-cardinality dimensions. The README's
"Operate" section says what each metric counts and what its alarm asks of an operator.
"""

from __future__ import annotations

import os

from opsbot.log import logger
from opsbot.settings import settings

# The template's Globals set POWERTOOLS_METRICS_NAMESPACE to this; a process without it (tests, scripts) still
# emits into the same namespace rather than failing for want of one.
NAMESPACE = "opsbot"

# Ingress (ingress/accept.py).
JOBS_QUEUED = "JobsQueued"  # a verified delivery became a job on the work queue; Kind
DUPLICATE_DELIVERIES = "DuplicateDeliveries"  # a delivery already claimed (a sender's retry): nothing queued; Source

# Worker (jobs/worker.py).
JOBS_DONE = "JobsDone"  # a job's handler returned: the job is acknowledged; Kind
JOBS_RETRIED = "JobsRetried"  # a job failed and is made visible again after its backoff; Kind
JOBS_PARKED = "JobsParked"  # the worker sent a job to the DLQ itself, reason in its log; Kind, and again without

# DingTalk and the robots' budgets.
RATE_LIMITED = "RateLimited"  # a chat said too fast (DingTalk 130101/410100, Feishu 11232, WeCom 45009, …); Channel
DIGEST_FOLDS = "DigestFolds"  # an entry was folded into a robot's digest because its send budget was spent

# Declared here so names stay in one place; the modules that emit them add the calls as they are restructured.
CHAT_COMMANDS = "ChatCommands"  # a chat command was answered or run; Command, Outcome
DEPLOYS = "Deploys"  # a promote or rollback through opsbot; Environment, Outcome
CONFIG_SYNCS = "ConfigSyncs"  # a push to the config repo's branch was synced, refused or skipped; Outcome

_failure_logged = False


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Emit `value` of the metric `name` with these dimensions, written at once as its own EMF line.

    Never raises: a metric that cannot be written must not fail the job or request it describes."""
    global _failure_logged
    try:
        # Free after opsbot.log: importing aws_lambda_powertools (for its Logger) already loads the metrics
        # package. Inside the try, so that even a Powertools that moved it cannot break a caller.
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        # A fresh EphemeralMetrics per count: its own dimension set, nothing shared between callers or kept
        # for a flush at the end of the invocation, and (unlike single_metric) no output at all when the metric
        # is invalid, and none when POWERTOOLS_METRICS_DISABLED is set.
        metric = EphemeralMetrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)
        metric.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metric.add_dimension(name="Stage", value=settings().stage)
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=str(dimension_value))
        metric.flush_metrics()
    except Exception:
        # Once per container: a broken metric would otherwise add a line to every job's log.
        if not _failure_logged:
            _failure_logged = True
            logger.debug("metric not emitted", extra={"metric": name}, exc_info=True)
