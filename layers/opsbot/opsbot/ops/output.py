"""Long output (logs, a VM batch's stdout) in a chat message: the part that fits, made plain, and the rest on a page
behind a presigned S3 link (OPS_OUTPUT_BUCKET, objects expire by the bucket's lifecycle). DingTalk refuses a body
over 20,000 bytes; a message here never carries more than MESSAGE_BUDGET_BYTES of output."""

from __future__ import annotations

import re

from opsbot.aws import client
from opsbot.markup import dingtalk as md
from opsbot.markup import link_target
from opsbot.ops.peers import STORAGE, aws_call
from opsbot.settings import settings

MESSAGE_BUDGET_BYTES = 6000  # of output in one message; the rest of the message stays far below 20,000 bytes
LINE_CHARS = 300
_ERROR = re.compile(r"\b(error|exception|fatal|panic|traceback)\b", re.IGNORECASE)
_WARNING = re.compile(r"\bwarn(ing)?\b", re.IGNORECASE)


def plain_lines(text: str, limit_bytes: int = MESSAGE_BUDGET_BYTES, from_end: bool = True) -> tuple[list[str], int]:
    """The lines of `text` (the last ones when `from_end`) that fit in `limit_bytes` once made plain, and how
    many were left out. Every line is outsiders' text: no link, mention or markup survives (markup.dingtalk)."""
    lines = text.splitlines()
    ordered = reversed(lines) if from_end else iter(lines)
    kept, used = [], 0
    for line in ordered:
        plain = md(line, LINE_CHARS) if line.strip() else ""
        size = len(plain.encode()) + 1
        if used + size > limit_bytes:
            break
        kept.append(plain)
        used += size
    if from_end:
        kept.reverse()
    return kept, len(lines) - len(kept)


def summary(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {
        "lines": len(lines),
        "errors": sum(1 for line in lines if _ERROR.search(line)),
        "warnings": sum(1 for line in lines if _WARNING.search(line)),
    }


def code_block(lines: list[str]) -> str:
    # Each line went through markup.dingtalk, which turns backquotes into ˋ: nothing can close the block early.
    return "```\n" + "\n".join(lines) + "\n```" if lines else ""


def store(key: str, text: str) -> str:
    """Put `text` under `key` in the output bucket and return a presigned link to it ("" with no bucket)."""
    bucket = settings().ops_output_bucket
    if not bucket:
        return ""
    s3 = client("s3")
    aws_call(
        STORAGE,
        s3.put_object,
        Bucket=bucket,
        Key=key,
        Body=text.encode("utf-8"),
        ContentType="text/plain; charset=utf-8",
    )
    return link(key)


def link(key: str) -> str:
    bucket = settings().ops_output_bucket
    if not bucket:
        return ""
    url = client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=settings().ops_output_link_seconds
    )
    return link_target(url)


def read(key: str, limit_bytes: int = 1_000_000) -> str | None:
    """An object of the output bucket (SSM's command output), or None when it is not there."""
    bucket = settings().ops_output_bucket
    if not bucket:
        return None
    s3 = client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit_bytes - 1}")["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    return body.read().decode("utf-8", "replace")


def listing(prefix: str) -> list[str]:
    bucket = settings().ops_output_bucket
    if not bucket:
        return []
    found = aws_call(STORAGE, client("s3").list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1000)
    return [item["Key"] for item in found.get("Contents", [])]
