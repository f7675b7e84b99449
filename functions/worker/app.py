"""Drains the work queue: each SQS record is one job; failed records are reported, not the whole batch.

A job kind's module is imported with its first job (jobs.kinds.HANDLED_IN), so the cold start loads only the
worker's own machinery; the batch loop is opsbot's own (jobs.worker.run_batch) rather than Powertools' batch
utility, whose import (asyncio and every event class) would be most of this function's cold start.
"""

from opsbot import wiring
from opsbot.config import names
from opsbot.jobs.worker import run_batch
from opsbot.log import logger

# The worker saves configs (a push synced, a rollback): it checks the command names they mention.
names.declare(wiring.known_names)


@logger.inject_lambda_context
def lambda_handler(event, context):
    return run_batch(event, context)
