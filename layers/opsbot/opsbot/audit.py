"""The audit log: every act and every decision about one: who (and how they were identified), where, what, the
authorization core's decision with its reason, and how it ended.

Each record is written twice in the audit table, under `all` and under `project#<name>`, so that
`history` and `history <project>` are each one query, newest first. Records are keyed by the time the
message was sent and the job id, so a redelivered message overwrites its own record instead of adding one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from opsbot.aws import client
from opsbot.settings import settings

ALL = "all"


@dataclass
class AuditRecord:
    id: str
    at_ms: int
    who: str  # person id, or <via>:<handle> for someone not in config (dingtalk:…, gitlab:…)
    who_name: str
    where: str  # conversation id, "web" for a release link, "gitlab" for a merge-request comment
    where_title: str
    command: str  # the verb: a chat command, a slash command (`/lgtm`), …
    arguments: dict = field(default_factory=dict)
    project: str = ""
    result: str = ""  # answered, denied, queued, succeeded, failed, refused, unknown
    detail: str = ""
    finished_ms: int = 0
    via: str = ""  # how the actor was identified: dingtalk (a callback), dingtalk-login (web), gitlab (API)
    target: str = ""  # what the act is on: project, environment, build and its event, merge request
    decision: str = ""  # the authorization core's: allow, deny, needs approval
    reason: str = ""  # why, as the person was told

    @property
    def sort_key(self) -> str:
        return f"{self.at_ms:013d}#{self.id}"


def _keys(record: AuditRecord) -> list[dict]:
    partitions = [ALL] + ([f"project#{record.project}"] if record.project else [])
    return [{"pk": {"S": pk}, "sk": {"S": record.sort_key}} for pk in partitions]


def write(record: AuditRecord) -> None:
    if not record.finished_ms and record.result != "queued":
        record.finished_ms = int(time.time() * 1000)
    body = json.dumps(asdict(record), ensure_ascii=False, default=str)
    items = [{"PutRequest": {"Item": {**key, "record": {"S": body}}}} for key in _keys(record)]
    response = client("dynamodb").batch_write_item(RequestItems={settings().audit_table: items})
    if response.get("UnprocessedItems"):  # throttled: one more go, then let the caller's retry handle it
        client("dynamodb").batch_write_item(RequestItems=response["UnprocessedItems"])


def write_queued(record: AuditRecord) -> None:
    """The first record of an act, written before it is queued and never over a later outcome: the worker may
    finish the job before a redelivered message comes back here."""
    ddb = client("dynamodb")
    record.result = "queued"
    body = json.dumps(asdict(record), ensure_ascii=False, default=str)
    for key in _keys(record):
        try:
            ddb.put_item(
                TableName=settings().audit_table,
                Item={**key, "record": {"S": body}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass


def finish(record: AuditRecord, result: str, detail: str) -> None:
    record.result, record.detail, record.finished_ms = result, detail[:500], int(time.time() * 1000)
    write(record)


def recent(project: str = "", limit: int = 10) -> list[AuditRecord]:
    response = client("dynamodb").query(
        TableName=settings().audit_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"project#{project}" if project else ALL}},
        ScanIndexForward=False,
        Limit=max(1, min(limit, 50)),
    )
    return [AuditRecord(**json.loads(item["record"]["S"])) for item in response.get("Items", [])]
