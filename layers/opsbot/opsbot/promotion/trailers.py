"""A release commit's message, and reading one back: git trailers (`Key: value` lines at the end, as
`git interpret-trailers` writes them) name the release, the build and its link, the source commit, the image, the
requester, each approver, and where it was asked. They are how a release finds its own commit before it writes
(exactly once), and what `status` and `releases` read from Git.

Outsiders' text (the build's commit title, people's names) goes in as GitLab plain text (markup.gitlab): GitLab
renders commit messages with references and mentions, and a deploy commit must not @-mention or link anyone.
"""

from __future__ import annotations

import re

from opsbot.markup import gitlab as plain

RELEASE = "Opsbot-Release"
PROJECT = "Opsbot-Project"
ENVIRONMENT = "Opsbot-Environment"
BUILD = "Opsbot-Build"
BUILD_LINK = "Opsbot-Build-Link"
SOURCE = "Opsbot-Source-Commit"
IMAGE = "Opsbot-Image"
REQUESTED_BY = "Opsbot-Requested-By"
APPROVED_BY = "Opsbot-Approved-By"
ASKED_VIA = "Opsbot-Asked-Via"
ACTION = "Opsbot-Action"
_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")
REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")


def _one_line(text: str, limit: int = 120) -> str:
    return plain(" ".join(str(text).split()), limit)


def message(release, old: str, new: str) -> str:
    """The deploy commit's message for `release` (records.Release), moving the file from image `old` to `new`."""
    what = f"#{release.build}" if release.build else new.rsplit(":", 1)[-1]
    head = f"release({release.project}/{release.environment}): {what} {new.rsplit('/', 1)[-1]}"
    verb = {"deploy": "Release", "rollback": "Rollback"}.get(release.action, "Release")
    body = [
        f"{verb} of {release.project} to {release.environment}: {old or 'nothing'} -> {new}.",
    ]
    if release.title:
        body.append(f"Build #{release.build}: {_one_line(release.title)}")
    lines = [
        (RELEASE, release.id),
        (ACTION, release.action),
        (PROJECT, release.project),
        (ENVIRONMENT, release.environment),
        (BUILD, str(release.build) if release.build else ""),
        (BUILD_LINK, release.build_link),
        (SOURCE, release.source_commit),
        (IMAGE, new),
        (REQUESTED_BY, _person(release.requester)),
        *[(APPROVED_BY, _one_line(a, 80)) for a in release.approvers],
        (ASKED_VIA, _one_line(release.asked_via, 80)),
    ]
    trailers = "\n".join(f"{key}: {value}" for key, value in lines if value)
    return f"{_one_line(head, 200)}\n\n" + "\n".join(body) + f"\n\n{trailers}\n"


def _person(requester: dict) -> str:
    name = _one_line(requester.get("git_name") or requester.get("name") or "", 80)
    email = requester.get("git_email") or ""
    return f"{name} <{email}>" if email else name


def parse(text: str) -> dict[str, list[str]]:
    """The trailers of a commit message (its last paragraph of `Key: value` lines), each key with its values."""
    paragraphs = [p for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]
    if not paragraphs:
        return {}
    found: dict[str, list[str]] = {}
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.match(line.strip())
        if match is None:
            return {}  # not a trailer block
        found.setdefault(match.group(1), []).append(match.group(2).strip())
    return found


def first(trailers: dict[str, list[str]], key: str) -> str:
    values = trailers.get(key) or []
    return values[0] if values else ""


def release_of(commit: dict) -> str:
    """The release id a commit (as GitLab's API gives it) was made for, or ""."""
    return first(parse(commit.get("message") or ""), RELEASE)


def reverted(commit: dict) -> str:
    """The sha a revert commit (GitLab's revert API) reverts, or ""."""
    found = REVERTS.search(commit.get("message") or "")
    return found.group(1) if found else ""
