"""The one registry of merge-request slash commands, like Prow's plugins: each command declares its usage,
what it does and who may use it, and the README's reference is generated from here (reference.py).

A command runs as `run(session, username, argument)` and returns None when done, or the reason it refused,
which the job posts as a short note. Commands stand anywhere in a comment, one per line. A project may also
restrict a command to roles of the ChatOps people model (`review.roles`), checked in `run()` for all commands.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from opsbot.review import store
from opsbot.review.session import Session

LGTM, APPROVED, HOLD = "lgtm", "approved", "do-not-merge/hold"
_LINE = re.compile(r"^/([a-z][a-z-]*)(?:[ \t]+(.*))?$")


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    does: str
    who: str  # who may use it, in words for the reference
    run: Callable[[Session, str, str], str | None]


COMMANDS: dict[str, SlashCommand] = {}


def command(name: str, usage: str, does: str, who: str = "anyone who can comment"):
    def register(run):
        COMMANDS[name] = SlashCommand(name, usage, does, who, run)
        return run
    return register


def parse(text: str) -> list[tuple[str, str]]:
    """(command, argument) for every line that is a known command; other lines are conversation."""
    found = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match and match.group(1) in COMMANDS:
            found.append((match.group(1), (match.group(2) or "").strip()))
    return found


def role_denial(session: Session, name: str, user: str) -> str | None:
    """`review.roles` restricts a command to people (matched by people[].git) with one of the roles; `admin`
    may use every command, as in chat."""
    needed = session.review.roles.get(name)
    if not needed:
        return None
    person = session.config.person_for_git(user)
    if person is None:
        return f"`/{name}` needs the role {' or '.join(needed)}, and `{user}` is in no `people[].git` of the config"
    if "admin" in person.roles or set(needed) & set(person.roles):
        return None
    return f"`/{name}` needs the role {' or '.join(needed)}; {person.name} has {', '.join(person.roles) or 'none'}"


def run(session: Session, name: str, user: str, argument: str) -> str | None:
    """Run one command as `user`: the roles config asks for first, then the command's own rule."""
    return role_denial(session, name, user) or COMMANDS[name].run(session, user, argument)


def _cancel(argument: str) -> bool:
    return argument.lower() == "cancel"


@command("lgtm", "/lgtm [cancel]", "adds (or with cancel removes) the `lgtm` label",
         "anyone but the author; the author may cancel")
def lgtm(session: Session, user: str, argument: str) -> str | None:
    if _cancel(argument):
        session.change_labels(remove=[LGTM])
        return None
    if user.lower() == session.author:
        return "you cannot LGTM your own merge request"
    session.change_labels(add=[LGTM])
    return None


def approval_labels(session: Session, approving: set[str]) -> None:
    """`approved` exactly when the approvals so far cover every changed file (again after each push)."""
    uncovered = session.owners.uncovered(approving, session.review.approvers)
    if uncovered or not session.paths:
        session.change_labels(remove=[APPROVED])
    else:
        session.change_labels(add=[APPROVED])


@command("approve", "/approve [cancel]", "records an approval; `approved` is set once approvers of every "
         "changed file have approved", "OWNERS approvers of the changed files (else `review.approvers`)")
def approve(session: Session, user: str, argument: str) -> str | None:
    if not session.owners.may_approve(user, session.review.approvers):
        return "only an OWNERS approver of the changed files may approve"
    approving = store.set_approval(session.repo, session.iid, user, not _cancel(argument))
    approval_labels(session, approving)
    return None


@command("hold", "/hold [cancel]", "adds (or with cancel removes) `do-not-merge/hold`, which stops the merge")
def hold(session: Session, user: str, argument: str) -> str | None:
    if _cancel(argument):
        session.change_labels(remove=[HOLD])
    else:
        session.change_labels(add=[HOLD])
    return None


def _people(session: Session, user: str, argument: str) -> tuple[dict[str, int], str | None]:
    names = [w.lstrip("@").lower() for w in argument.split() if w.strip("@")] or [user.lower()]
    ids = session.user_ids(names)
    unknown = [n for n, i in ids.items() if i is None]
    if unknown:
        return {}, "no GitLab user " + ", ".join(f"`{n}`" for n in unknown)
    return {n: i for n, i in ids.items() if i is not None}, None


def _people_changer(field: str, adds: bool, needs_names: bool = False):
    """A command that adds people to, or removes them from, the merge request's assignees or reviewers."""
    def run(session: Session, user: str, argument: str) -> str | None:
        if needs_names and not argument.strip("@ "):
            return "name who should review: `/cc @user`"
        found, refused = _people(session, user, argument)
        if refused:
            return refused
        current = [u["id"] for u in session.mr.get(field) or [] if isinstance(u, dict) and "id" in u]
        named = list(found.values())
        ids = current + [i for i in named if i not in current] if adds else [i for i in current if i not in named]
        key = "assignee_ids" if field == "assignees" else "reviewer_ids"
        session.refresh(session.gitlab.update_merge_request(session.repo, session.iid, **{key: ids}))
        return None
    return run


command("assign", "/assign [@user …]", "adds assignees (yourself when no one is named)")(
    _people_changer("assignees", adds=True))
command("unassign", "/unassign [@user …]", "removes assignees (yourself when no one is named)")(
    _people_changer("assignees", adds=False))
command("cc", "/cc @user …", "requests a review: adds reviewers")(
    _people_changer("reviewers", adds=True, needs_names=True))


def _labeller(adds: bool):
    """/label or /remove-label: only the labels `review.labels` lists, so that commands cannot fake
    `lgtm`, `approved` or a size."""
    def run(session: Session, user: str, argument: str) -> str | None:
        if argument not in session.review.labels:
            allowed = ", ".join(f"`{l}`" for l in session.review.labels) or "none"
            return f"`{argument}` is not a label this project lets commands set (allowed: {allowed})"
        session.change_labels(**{"add" if adds else "remove": [argument]})
        return None
    return run


command("label", "/label <label>", "adds a label that `review.labels` allows")(_labeller(adds=True))
command("remove-label", "/remove-label <label>", "removes a label that `review.labels` allows")(_labeller(adds=False))


@command("retest", "/retest", "restarts the latest Drone build of the source branch")
def retest(session: Session, user: str, argument: str) -> str | None:
    from opsbot.drone.api import DroneNotConfigured, DroneRefused, client_for

    try:
        drone = client_for(session.config)
        latest = drone.latest(session.repo, str(session.mr.get("source_branch") or ""))
        drone.restart(session.repo, int(latest["number"]))
    except DroneNotConfigured:
        return "Drone is not configured in opsbot, so there is nothing to restart"
    except DroneRefused as exc:
        return f"Drone refused: {exc.message}"
    return None
