"""The config's home in DynamoDB, and the in-memory copy each Lambda keeps for a short while.

The whole validated config is one item (`pk=config, sk=current`), so replacing it is one atomic put and a
reader never sees half of an update. Each save is also kept as a version item (`sk=version#<ts>#<version>`,
<ts> in epoch seconds and microseconds), which `config history` lists and `config rollback` restores; the two are
written in one transaction, so no crash leaves one without the other.

The current item carries `seq`, which every save increments. A save `based_on` the seq it read replaces the
config only if no other save came in between (ConfigChanged otherwise): a sync that checked that its push is the
branch's head cannot then overwrite a newer push's config that was saved after its check.

One DynamoDB item holds 400 KB: a config that would not fit is refused as a ConfigError naming its size, before
anything is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.config.model import Config, ConfigError, Document, validate
from opsbot.markup import plain
from opsbot.settings import settings

_cached: tuple[float, Config] | None = None
VERSION_PREFIX = "version#"


ITEM_LIMIT_BYTES = 400 * 1024  # DynamoDB's item size limit, attribute names included


class ConfigChanged(Exception):
    """Another save replaced the current config after the one this save was based on."""


@dataclass(frozen=True)
class Current:
    version: str
    seq: int  # how many saves made it current; 0 before the first (or one older than seqs)


@dataclass(frozen=True)
class Version:
    version: str  # the config repo's commit sha, or what the CLI was given
    saved_at: int  # epoch seconds
    source: str  # who or what saved it: "push by …", "rollback by …", "cli"


def _key(sk: str) -> dict:
    return {"pk": {"S": "config"}, "sk": {"S": sk}}


def check(documents: list[Document], version: str) -> Config:
    """The config the documents make, if they are valid and fit in one item; ConfigError otherwise."""
    # Every save checks the peers' hosts against the stack's lists (loading a stored config does not: the clients
    # refuse an unlisted host when they would send, so a list narrowed later stops its tokens there).
    config = validate(
        documents, settings().allows_literal_secrets, version, settings().stage, check_hosts=settings().peer_hosts_given
    )
    # The version item is the larger of the two: the same attributes under a longer key.
    _check_size(documents, {**_key(f"{VERSION_PREFIX}{0:012d}.000000#{version}"), **_item(documents, version, "", 0)})
    return config


def _item(documents: list[Document], version: str, source: str, now: int) -> dict:
    # Key order is kept: environments listed first in a project file get their release buttons first, and an
    # export reads like the files did.
    body = json.dumps({d.name: d.data for d in documents}, ensure_ascii=False)
    return {
        "doc": {"S": body},
        "version": {"S": version},
        "saved_at": {"N": str(now)},
        "source": {"S": source[:300]},
        "seq": {"N": str(now)},  # room for the current item's seq
    }


def save(
    documents: list[Document], version: str, source: str = "cli", based_on: int | None = None, also: tuple = ()
) -> Config:
    """Validate the documents and, only if they are valid and fit in one item, make them the current config:
    with `based_on` (a `current().seq`), only if no other save came since. `also`: more writes of the same
    transaction (state.effects.recorded_with: a sync's result, recorded with the save)."""
    config = check(documents, version)
    moment = time.time()
    now = int(moment)
    item = _item(documents, version, source, now)
    del item["seq"]
    ddb = client("dynamodb")
    table = settings().config_table
    # Microseconds after the seconds keep two saves in one second in order ("." sorts after "#").
    sort_key = f"{VERSION_PREFIX}{now:012d}.{int(moment * 1_000_000) % 1_000_000:06d}#{version}"
    current = {"TableName": table, "Item": {**_key("current"), **item}}
    if based_on is not None:
        current["Item"]["seq"] = {"N": str(based_on + 1)}
        current["ConditionExpression"] = "attribute_not_exists(seq)" if based_on == 0 else "seq = :seen"
        if based_on:
            current["ExpressionAttributeValues"] = {":seen": {"N": str(based_on)}}
    else:
        current["Item"]["seq"] = {"N": str(_current(ddb).seq + 1)}
    writes = [{"Put": {"TableName": table, "Item": {**_key(sort_key), **item}}}, {"Put": current}, *also]
    try:
        ddb.transact_write_items(TransactItems=writes)
    except ddb.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons[1:2] == ["ConditionalCheckFailed"]:  # the current item's condition, not one of `also`'s
            raise ConfigChanged(f"the stored config changed since save {based_on}") from None
        raise
    invalidate()
    return config


def _item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it: names and values, strings in UTF-8, numbers about a byte per two digits."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += len(value["N"]) // 2 + 2
    return size


def _check_size(documents: list[Document], item: dict) -> None:
    size = _item_bytes(item)
    if size <= ITEM_LIMIT_BYTES:
        return
    sizes = {d.name: len(json.dumps(d.data, ensure_ascii=False).encode()) for d in documents}
    largest = max(sizes, key=sizes.get)
    raise ConfigError(
        [
            (
                largest,
                0,
                f"the config takes {size // 1024} KB stored, over the 400 KB DynamoDB holds in one item; "
                f"this file is the largest part ({sizes[largest] // 1024} KB)",
            )
        ]
    )


def _current(ddb) -> Current:
    item = (
        ddb.get_item(
            TableName=settings().config_table,
            Key=_key("current"),
            ConsistentRead=True,
            ProjectionExpression="version, seq",
        ).get("Item")
        or {}
    )
    return Current(item.get("version", {}).get("S", ""), int(item.get("seq", {}).get("N", 0)))


def current() -> Current:
    """The stored config's version and seq, read now (not from the cache): what a conditional save is based on."""
    return _current(client("dynamodb"))


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
        raise LookupError(f"no saved config version starts with {plain(prefix, 40)}")  # shown in chat: plain text
    if len(matches) > 1:
        raise LookupError(
            f"{plain(prefix, 40)} fits {len(matches)} versions: {', '.join(sorted(v[:12] for v in matches))}"
        )
    version, sk = next(iter(matches.items()))
    item = ddb.get_item(TableName=table, Key=_key(sk), ConsistentRead=True)["Item"]
    return version, _documents(item)


def invalidate() -> None:
    global _cached
    _cached = None
