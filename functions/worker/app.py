"""Drains the work queue: each SQS record is one job; failed records are reported, not the whole batch."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import opsbot.actions.jobs  # noqa: F401  (registers job handlers)
import opsbot.chat.jobs  # noqa: F401  (registers job handlers)
import opsbot.delivery.jobs  # noqa: F401  (registers job handlers)
import opsbot.gitops.jobs  # noqa: F401  (registers job handlers)
import opsbot.jobs.later_features  # noqa: F401  (registers job handlers)
import opsbot.notify.jobs  # noqa: F401  (registers job handlers)
import opsbot.ops.jobs  # noqa: F401  (registers job handlers; the Kubernetes client and dnspython load only in jobs)
import opsbot.review.jobs  # noqa: F401  (registers job handlers)
from opsbot import wiring
from opsbot.config import names
from opsbot.jobs.worker import run_record
from opsbot.log import logger

# The worker saves configs (a push synced, a rollback): it checks the command names they mention.
names.declare(wiring.known_names)

# A batch whose every record failed is reported like a partial failure instead of as a Lambda error: the
# messages are already hidden for their retry delay, and an error would only add noise to the metrics.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context=None) -> None:
    # The batch's time left decides whether this job starts, and how long it may run (jobs.deadline).
    remaining_ms = lambda_context.get_remaining_time_in_millis() if lambda_context is not None else None
    run_record(record.body, record.receipt_handle, int(record.attributes.approximate_receive_count or 1), remaining_ms)


@logger.inject_lambda_context
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
