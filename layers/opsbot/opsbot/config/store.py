"""The config's home in DynamoDB, and the in-memory copy each Lambda keeps for a short while.

The whole validated config is one item (`pk=config, sk=current`), so replacing it is one atomic put and a
reader never sees half of an update. Each load is also kept as a version item for history.
"""
from __future__ import annotations

import json
import time

from opsbot.aws import client
from opsbot.config.model import Config, Document, validate
from opsbot.settings import settings

_cached: tuple[float, Config] | None = None


def save(documents: list[Document], version: str) -> Config:
    """Validate the documents and, only if they are valid, make them the current config."""
    config = validate(documents, settings().allows_literal_secrets, version)
    # Key order is kept: environments listed first in a project file get their release buttons first.
    body = json.dumps({d.name: d.data for d in documents}, ensure_ascii=False)
    now = int(time.time())
    item = {"doc": {"S": body}, "version": {"S": version}, "saved_at": {"N": str(now)}}
    ddb = client("dynamodb")
    table = settings().config_table
    ddb.put_item(TableName=table, Item={"pk": {"S": "config"}, "sk": {"S": f"version#{now:012d}#{version}"}, **item})
    ddb.put_item(TableName=table, Item={"pk": {"S": "config"}, "sk": {"S": "current"}, **item})
    invalidate()
    return config


def load() -> Config:
    """The current config, re-read from DynamoDB at most every CONFIG_CACHE_SECONDS."""
    global _cached
    now = time.monotonic()
    if _cached and _cached[0] > now:
        return _cached[1]
    item = client("dynamodb").get_item(
        TableName=settings().config_table, Key={"pk": {"S": "config"}, "sk": {"S": "current"}}
    ).get("Item")
    if not item:
        raise LookupError("no config has been loaded yet: run `python -m opsbot.config load <dir>`")
    documents = [Document(name, data) for name, data in json.loads(item["doc"]["S"]).items()]
    config = validate(documents, settings().allows_literal_secrets, item["version"]["S"])
    _cached = (now + settings().config_cache_seconds, config)
    return config


def invalidate() -> None:
    global _cached
    _cached = None
