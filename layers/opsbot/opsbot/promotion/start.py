"""Starting a GitOps release: the record made once per request id (a retry finds it), its plan from the environment's
`deploy:`, and its steps run as far as they go now (runner.advance); the rest follows in delayed jobs. Also the
facts a release is made of: the image pinned to the build (its commit's tag, never `<env>`) and the requester's git
identity."""

from __future__ import annotations

import hashlib

from opsbot.config.model import Config, Person, Project
from opsbot.drone.builds import commit_title
from opsbot.promotion import records, runner
from opsbot.promotion.plan import plan
from opsbot.promotion.records import Release

TAG_CHARS = 8  # the tag the generated .drone.yml publishes: ${DRONE_COMMIT_SHA:0:8}
OPSBOT = {"id": "opsbot", "name": "opsbot", "git_name": "opsbot", "git_email": ""}


def tag_of(build: dict) -> str:
    """The image tag a build published: its commit's first 8 characters (gitops/templates: never `<env>`)."""
    return str(build.get("after") or "")[:TAG_CHARS]


def git_identity(person: Person | None, fallback_name: str) -> tuple[str, str]:
    """A person's name and e-mail for a commit's author: their first `git:` entry that is an address."""
    if person is None:
        return fallback_name, ""
    return person.name, next((g for g in person.git if "@" in g), "")


def requester(who_id: str, name: str, person: Person | None) -> dict:
    git_name, git_email = git_identity(person, name)
    return {"id": who_id, "name": name, "git_name": git_name, "git_email": git_email}


def auto_rollback_id(release_id: str) -> str:
    """The id of the automatic rollback of a release: derived, so a retry makes the same one."""
    return hashlib.sha256(f"{release_id}#auto-rollback".encode()).hexdigest()[:8]


def begin(
    config: Config,
    project: Project,
    env_name: str,
    release_id: str,
    action: str,
    requested_by: dict,
    asked_via: str,
    language: str,
    build: dict | None = None,
    build_link: str = "",
    approvers: tuple[str, ...] = (),
    approved: bool = True,
    reverts: str = "",
    reverts_release: str = "",
    tag: str = "",
    conversation: dict | None = None,
) -> Release:
    """Create the release (once per id) and run its steps as far as they go now; the release as it stands."""
    target = project.environments[env_name].deploy
    build = build or {}
    release = Release(
        id=release_id,
        project=project.name,
        environment=env_name,
        action=action,
        requester=requested_by,
        asked_via=asked_via,
        language=language,
        plan=plan(target, action),
        build=int(build.get("number") or 0),
        build_link=build_link,
        source_commit=str(build.get("after") or ""),
        committed=int(build.get("timestamp") or build.get("created") or 0) if build else 0,
        title=commit_title(build) if build else "",
        image=target.image,
        tag=tag or (tag_of(build) if build else ""),
        approvers=list(approvers),
        approved=approved,
        reverts=reverts,
        reverts_release=reverts_release,
        conversation=conversation or {},
    )
    stored = records.create(release)
    if approved and not stored.approved:  # a merge request waiting for these approvals: they are given now
        stored = records.approve(stored.id, list(approvers))
    runner.advance(config, stored.id)
    return records.get(stored.id)
