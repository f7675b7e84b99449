"""The config's home in DynamoDB, and the in-memory copy each Lambda keeps for a short while.

The whole validated config is one item (`pk=config, sk=current`), so replacing it is one atomic put and a
reader never sees half of an update. Each save is also kept as a version item (`sk=version#<ts>#<version>`,
<ts> in epoch seconds and microseconds), which `config history` lists and `config rollback` restores.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.config.model import Config, Document, validate
from opsbot.settings import settings

_cached: tuple[float, Config] | None = None
VERSION_PREFIX = "version#"


@dataclass(frozen=True)
class Version:
    version: str  # the config repo's commit sha, or what the CLI was given
    saved_at: int  # epoch seconds
    source: str  # who or what saved it: "push by …", "rollback by …", "cli"


def _key(sk: str) -> dict:
    return {"pk": {"S": "config"}, "sk": {"S": sk}}


def save(documents: list[Document], version: str, source: str = "cli") -> Config:
    """Validate the documents and, only if they are valid, make them the current config."""
    config = validate(documents, settings().allows_literal_secrets, version, settings().stage)
    # Key order is kept: environments listed first in a project file get their release buttons first, and an
    # export reads like the files did.
    body = json.dumps({d.name: d.data for d in documents}, ensure_ascii=False)
    moment = time.time()
    now = int(moment)
    item = {"doc": {"S": body}, "version": {"S": version}, "saved_at": {"N": str(now)}, "source": {"S": source[:300]}}
    ddb = client("dynamodb")
    table = settings().config_table
    # Microseconds after the seconds keep two saves in one second in order ("." sorts after "#").
    sort_key = f"{VERSION_PREFIX}{now:012d}.{int(moment * 1_000_000) % 1_000_000:06d}#{version}"
    ddb.put_item(TableName=table, Item={**_key(sort_key), **item})
    ddb.put_item(TableName=table, Item={**_key("current"), **item})
    invalidate()
    return config


def _documents(item: dict) -> list[Document]:
    return [Document(name, data) for name, data in json.loads(item["doc"]["S"]).items()]


def _current_item() -> dict:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().config_table, Key=_key("current"), ConsistentRead=True)
        .get("Item")
    )
    if not item:
        raise LookupError("no config has been loaded yet: run `make config ARGS='load <dir> --stack <stack>'`")
    return item


def load() -> Config:
    """The current config, re-read from DynamoDB at most every CONFIG_CACHE_SECONDS."""
    global _cached
    now = time.monotonic()
    if _cached and _cached[0] > now:
        return _cached[1]
    item = _current_item()
    config = validate(_documents(item), settings().allows_literal_secrets, item["version"]["S"], settings().stage)
    _cached = (now + settings().config_cache_seconds, config)
    return config


def current_documents() -> tuple[str, list[Document]]:
    """The stored documents of the current config and its version (for export and diff)."""
    item = _current_item()
    return item["version"]["S"], _documents(item)


def history(limit: int = 10) -> list[Version]:
    """The latest saves, newest first."""
    response = client("dynamodb").query(
        TableName=settings().config_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
        ExpressionAttributeValues={":pk": {"S": "config"}, ":v": {"S": VERSION_PREFIX}},
        ProjectionExpression="version, saved_at, #source",
        ExpressionAttributeNames={"#source": "source"},
        ScanIndexForward=False,
        Limit=max(1, min(limit, 100)),
    )
    return [
        Version(i["version"]["S"], int(i["saved_at"]["N"]), i.get("source", {}).get("S", ""))
        for i in response.get("Items", [])
    ]


def find_version(prefix: str) -> tuple[str, list[Document]]:
    """The documents saved as the version that starts with `prefix` (a commit sha may be abbreviated).

    LookupError when there is none, or when the prefix fits more than one version."""
    ddb, table = client("dynamodb"), settings().config_table
    matches: dict[str, str] = {}  # version -> sk of its latest save
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
        "ExpressionAttributeValues": {":pk": {"S": "config"}, ":v": {"S": VERSION_PREFIX}},
        "ProjectionExpression": "sk, version",
        "ScanIndexForward": False,
    }
    while True:
        response = ddb.query(**query)
        for item in response.get("Items", []):
            if item["version"]["S"].startswith(prefix):
                matches.setdefault(item["version"]["S"], item["sk"]["S"])
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if not matches:
        raise LookupError(f"no saved config version starts with {prefix}")
    if len(matches) > 1:
        raise LookupError(f"{prefix} fits {len(matches)} versions: {', '.join(sorted(v[:12] for v in matches))}")
    version, sk = next(iter(matches.items()))
    item = ddb.get_item(TableName=table, Key=_key(sk), ConsistentRead=True)["Item"]
    return version, _documents(item)


def invalidate() -> None:
    global _cached
    _cached = None
