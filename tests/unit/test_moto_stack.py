"""The unit tests' stack is made once per process and emptied between tests (local/moto_stack.py): what a test leaves
behind is gone for the next one, and what cannot be emptied in place makes the next test get a new stack."""

from __future__ import annotations

import boto3
import pytest
from unit_support import SECRETS, STACK_ENV

STATE, CONFIG, AUDIT = STACK_ENV["STATE_TABLE"], STACK_ENV["CONFIG_TABLE"], STACK_ENV["AUDIT_TABLE"]


@pytest.fixture
def shared(aws, _shared_stack):
    """The MadeStack this test's `aws` was emptied from."""
    return _shared_stack["models"]


def _leave_everything_behind(aws) -> None:
    aws.ddb.put_item(TableName=STATE, Item={"pk": {"S": "left"}})
    for table in (CONFIG, AUDIT):
        aws.ddb.put_item(TableName=table, Item={"pk": {"S": "left"}, "sk": {"S": "1"}})
    for queue in (aws.work_queue_url, aws.dead_letter_queue_url):
        aws.sqs.send_message(QueueUrl=queue, MessageBody="visible")
        aws.sqs.send_message(QueueUrl=queue, MessageBody="delayed", DelaySeconds=900)
    aws.sqs.send_message(QueueUrl=aws.work_queue_url, MessageBody="in flight")
    assert aws.receive(visibility=600)  # taken: in flight now
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="left-behind")
    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress="left@opsbot.example")


def _is_empty(aws) -> bool:
    tables = all(aws.ddb.scan(TableName=table)["Items"] == [] for table in (STATE, CONFIG, AUDIT))
    counts = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    queues = all(
        aws.queue_attribute(name, queue) == 0
        for queue in (aws.work_queue_url, aws.dead_letter_queue_url)
        for name in counts
    )
    buckets = boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]
    identities = boto3.client("ses", region_name="us-east-1").list_identities()["Identities"]
    return tables and queues and buckets == [] and identities == []


def test_what_a_test_leaves_behind_is_emptied_and_the_stack_kept(aws, shared):
    _leave_everything_behind(aws)
    assert not _is_empty(aws)
    assert shared.empty() == ""
    assert _is_empty(aws)
    # the stack itself is as made: its secrets, the state table's TTL, the work queue's redrive to the DLQ
    for env_name, value in SECRETS.items():
        assert aws.ssm.get_parameter(Name=STACK_ENV[env_name], WithDecryption=True)["Parameter"]["Value"] == value
    ttl = aws.ddb.describe_time_to_live(TableName=STATE)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.work_queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180" and "maxReceiveCount" in attributes["RedrivePolicy"]


def test_a_table_moto_copied_to_roll_back_a_transaction_is_emptied_too(aws, shared):
    aws.ddb.put_item(TableName=STATE, Item={"pk": {"S": "kept"}})
    with pytest.raises(aws.ddb.exceptions.TransactionCanceledException):
        aws.ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": STATE, "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": STATE,
                        "Item": {"pk": {"S": "kept"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert shared.empty() == ""
    assert aws.ddb.scan(TableName=STATE)["Items"] == []


DRONE_SECRET = STACK_ENV["DRONE_WEBHOOK_SECRET_PARAM"]
CHANGES = {  # what a test might do to the stack itself -> why the stack is then made afresh
    "secret overwritten": (
        lambda aws: aws.ssm.put_parameter(Name=DRONE_SECRET, Value="x", Type="SecureString", Overwrite=True),
        "SSM parameters changed",
    ),
    "parameter added": (
        lambda aws: aws.ssm.put_parameter(Name="/opsbot/test/more", Value="x", Type="String"),
        "SSM parameters changed",
    ),
    "secret deleted": (lambda aws: aws.ssm.delete_parameter(Name=DRONE_SECRET), "SSM parameters changed"),
    "queue setting": (
        lambda aws: aws.sqs.set_queue_attributes(QueueUrl=aws.work_queue_url, Attributes={"VisibilityTimeout": "5"}),
        "queue opsbot-test-WorkQueue changed",
    ),
    "queue added": (lambda aws: aws.sqs.create_queue(QueueName="another"), "queues added or deleted"),
    "TTL off": (
        lambda aws: aws.ddb.update_time_to_live(
            TableName=STATE, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"}
        ),
        f"table {STATE} changed",
    ),
    "table deleted": (lambda aws: aws.ddb.delete_table(TableName=AUDIT), "tables added or deleted"),
    "another region": (
        lambda aws: boto3.client("sqs", region_name="eu-west-1").create_queue(QueueName="elsewhere"),
        "sqs used in another account or region",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_to_the_stack_itself_is_not_emptied_but_made_afresh(aws, shared, change):
    make, why = CHANGES[change]
    make(aws)
    assert shared.empty() == why  # conftest's `aws` then makes a new stack for the next test


def test_the_ssm_provider_is_made_once_and_its_cache_emptied(aws):
    """Each Powertools provider made on one client adds an event handler that every later SSM call runs: made per
    test, they slowed the suite down as it went."""
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
    from conftest import _reset_process_caches

    provider = DEFAULT_PROVIDERS["ssm"]
    assert provider.get(STACK_ENV["DRONE_WEBHOOK_SECRET_PARAM"], decrypt=True) == SECRETS["DRONE_WEBHOOK_SECRET_PARAM"]
    assert provider.store
    _reset_process_caches()
    assert DEFAULT_PROVIDERS["ssm"] is provider and not provider.store
