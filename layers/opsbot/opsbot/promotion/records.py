"""What opsbot keeps of a release, in two places:

- its working state, in the state table under `release#<id>` (state/keys.py): what was asked (project, environment,
  build, image, requester, approvers, where it was asked), its plan of steps, each step's outputs as they finish, and
  whether it failed; read and written by the runner only, each write a single UpdateItem;
- its record, in the releases table (RELEASES_TABLE): one small item per release, keyed `<project>#<environment>` and
  `<started ms>#<id>`, so a project's releases to one environment are one query by time, paged, newest first: who,
  approvers, build, source and deploy commits, timestamps, and how the rollout and the verification ended. Release
  governance (DORA's measures, locks, freezes) reads it; it is kept, not expired.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field

from opsbot.aws import client
from opsbot.settings import settings
from opsbot.state import keys

KEEP_STATE_SECONDS = 30 * 86400  # the working state outlives any release (a month); the record stays for good
DEPLOY, ROLLBACK, REVERT = "deploy", "rollback", "revert"


@dataclass
class Release:
    id: str
    project: str
    environment: str
    action: str  # deploy | rollback (to a build or release: its image written) | revert (GitLab's revert of a commit)
    requester: dict  # {"id", "name", "git_name", "git_email"}; opsbot itself for an automatic rollback
    asked_via: str  # chat | link | merge request | auto
    language: str
    plan: list[dict]  # [{"name", "kind", "config", "always", "needs_approval"}]
    build: int = 0  # the Drone build it releases (0: not known, e.g. a revert to a hand-written state)
    build_link: str = ""
    source_commit: str = ""  # the build's commit in the project's repository
    title: str = ""  # that commit's title, made plain
    image: str = ""  # the image repository
    tag: str = ""  # what it is pinned to
    digest: str = ""
    approvers: list[str] = field(default_factory=list)  # names
    approved: bool = True  # False while a merge request waits for the approvals the core asked for
    reverts: str = ""  # revert: the deploy commit it reverts, and that commit's release
    reverts_release: str = ""
    conversation: dict = field(default_factory=dict)  # where it was asked, for the acknowledgement's follow-ups
    created: int = 0  # epoch ms
    committed: int = 0  # epoch seconds: when the source commit was made (Drone's `timestamp`), for the lead time
    # Written by the runner as the release goes:
    outputs: dict = field(default_factory=dict)  # step name -> its outputs
    failed: str = ""  # the failing step's message; "" while it goes well

    @property
    def sort_key(self) -> str:
        return f"{self.created:013d}#{self.id}"

    def output(self, name: str) -> dict:
        return self.outputs.get(name) or {}


def _state_key(release_id: str) -> dict:
    return {"pk": {"S": keys.RELEASE + release_id.lower()}}


def create(release: Release) -> Release:
    """Store a new release; the release already stored under its id when a retry comes back (a release id is its
    request's, so asking again is the same release)."""
    ddb = client("dynamodb")
    release.created = release.created or int(time.time() * 1000)
    body = asdict(release)
    body.pop("outputs"), body.pop("failed")
    try:
        ddb.put_item(
            TableName=settings().state_table,
            Item={
                **_state_key(release.id),
                "release": {"S": json.dumps(body, ensure_ascii=False)},
                "outputs": {"M": {}},
                "expires_at": {"N": str(int(time.time()) + KEEP_STATE_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return get(release.id)
    write_record(release, outcome="running")
    return release


def get(release_id: str) -> Release | None:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key=_state_key(release_id), ConsistentRead=True)
        .get("Item")
    )
    if not item:
        return None
    release = Release(**json.loads(item["release"]["S"]))
    release.outputs = {name: json.loads(value["S"]) for name, value in item.get("outputs", {}).get("M", {}).items()}
    release.failed = item.get("failed", {}).get("S", "")
    release.approved = item["approved"]["BOOL"] if "approved" in item else release.approved
    if "approvers" in item:
        release.approvers = [a["S"] for a in item["approvers"]["L"]]
    return release


def save_output(release_id: str, step_name: str, outputs: dict, failed: str = "") -> None:
    """A step's outputs (and, when it failed, why): the steps after it read them."""
    update = "SET outputs.#step = :out" + (", failed = if_not_exists(failed, :why)" if failed else "")
    values = {":out": {"S": json.dumps(outputs, ensure_ascii=False)}}
    if failed:
        values[":why"] = {"S": failed[:1000]}
    client("dynamodb").update_item(
        TableName=settings().state_table,
        Key=_state_key(release_id),
        UpdateExpression=update,
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#step": step_name},
        ExpressionAttributeValues=values,
    )


def approve(release_id: str, approvers: list[str]) -> Release | None:
    """The approvals the core asked for are given: the release may go on past its merge request."""
    client("dynamodb").update_item(
        TableName=settings().state_table,
        Key=_state_key(release_id),
        UpdateExpression="SET approved = :yes, approvers = :who",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":yes": {"BOOL": True}, ":who": {"L": [{"S": a} for a in approvers]}},
    )
    found = get(release_id)
    if found is not None:
        write_record(found, outcome="running")
    return found


# --- the record, in the releases table -------------------------------------------------------------------------------


def _record_key(release: Release) -> dict:
    return {"pk": {"S": f"{release.project}#{release.environment}"}, "sk": {"S": release.sort_key}}


def write_record(release: Release, outcome: str, **facts: str) -> None:
    """Create or bring up to date the release's record: who and what (from the release), and `facts` as they become
    known (deploy_commit, merge_request, rollout, verification, finished_ms). Idempotent: the same facts set again."""
    fields = {
        "id": release.id,
        "project": release.project,
        "environment": release.environment,
        "action": release.action,
        "requester": release.requester.get("name", ""),
        "requester_id": release.requester.get("id", ""),
        "approvers": ", ".join(release.approvers),
        "build": str(release.build),
        "source_commit": release.source_commit,
        "image": release.image
        + (f":{release.tag}" if release.tag else "")
        + (f"@{release.digest}" if release.digest else ""),
        "asked_via": release.asked_via,
        "started_ms": str(release.created),
        "committed_ms": str(release.committed * 1000),
        "outcome": outcome,
        "reverts_release": release.reverts_release,
        **facts,
    }
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {
        f":v{i}": {"N": str(int(value or 0))} if name.endswith("_ms") else {"S": str(value)}
        for i, (name, value) in enumerate(fields.items())
    }
    client("dynamodb").update_item(
        TableName=settings().releases_table,
        Key=_record_key(release),
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def _from_item(item: dict) -> dict:
    return {k: int(v["N"]) if "N" in v else v["S"] for k, v in item.items() if k not in ("pk", "sk")}


def find(project: str, environment: str, release_id: str) -> dict | None:
    """A recent release's record by its id (among the environment's last 100)."""
    found, _ = history(project, environment, limit=100)
    return next((r for r in found if r.get("id") == release_id), None)


def history(
    project: str, environment: str, since_ms: int = 0, until_ms: int = 0, limit: int = 20, page: str = ""
) -> tuple[list[dict], str]:
    """A project's releases to one environment, newest first, between two times (epoch ms; 0: open), a page of
    `limit`; with the token of the next page ("" when there is none)."""
    upper = f"{(until_ms or 9_999_999_999_999):013d}#~"
    lower = f"{since_ms:013d}#"
    query = {
        "TableName": settings().releases_table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lower AND :upper",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"{project}#{environment}"},
            ":lower": {"S": lower},
            ":upper": {"S": upper},
        },
        "ScanIndexForward": False,
        "Limit": max(1, min(limit, 100)),
    }
    if page:
        query["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(page.encode()))
    found = client("dynamodb").query(**query)
    after = found.get("LastEvaluatedKey")
    token = base64.urlsafe_b64encode(json.dumps(after).encode()).decode() if after else ""
    return [_from_item(item) for item in found.get("Items", [])], token
