"""The one registry of merge-request slash commands, like Prow's plugins: each command declares its usage, what it
does and who may use it, in words for the README's reference (reference.py) and as an `authz.Verb` for the
authorization core.

`run()` runs one command of one comment. The comment's author as GitLab's API names them is the actor; the core
decides whether they may (GitLab decides who may comment, so the commands are open to people outside `people`,
unless a project's `review.roles` asks for a role; `admin` may use all), and the decision and the outcome go to
the audit log. Then the command's own rule applies: the author cannot LGTM, only OWNERS approvers approve, only
the allowed labels. A command returns None when done, or why it refused, which the job posts as a short note
(`refusal_note`).

Refusal reasons are opsbot's own GitLab markdown: any outsider's text put in one (a command's argument, a
username, what Drone said) goes through `markup.gitlab` there, and stands as plain text, not in a code span
(where its escapes would show).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from opsbot import audit
from opsbot.authz import core as authz
from opsbot.authz.actors import Actor, gitlab_user
from opsbot.drone.api import DroneNotConfigured, DroneRefused, client_for
from opsbot.drone.builds import is_deployment
from opsbot.markup import gitlab as md
from opsbot.release import deploy
from opsbot.review import store
from opsbot.review.comments import Comment, written_before_head
from opsbot.review.session import Session
from opsbot.state import effects, keys

LGTM, APPROVED, HOLD = "lgtm", "approved", "do-not-merge/hold"
_LINE = re.compile(r"^/([a-z][a-z-]*)(?:[ \t]+(.*))?$")
# A GitLab username that can only be read as a mention of that user; anything else is shown as plain text.
MENTIONABLE = re.compile(r"^[A-Za-z0-9_.-]+$")
NO_HEAD = "GitLab shows no head commit for this merge request, so there is nothing to review yet"
RETEST_LOOKBACK = 25  # the source branch's newest builds /retest looks through for one that is no deployment


@dataclass
class Call:
    """One command of one comment, as it runs."""

    actor: Actor  # the comment's author, from GitLab's API
    argument: str
    record: audit.AuditRecord
    request_id: str  # marks a Drone start as this comment's, so that a retried job finds it instead of starting again
    written_ms: int = 0  # when GitLab says the comment was written: it vouches only for heads pushed before it
    done: str = ""  # what it did, for the audit record

    @property
    def user(self) -> str:
        return self.actor.handle.lower()


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    does: str
    who: str  # who may use it, in words for the reference
    verb: authz.Verb  # what the authorization core decides on
    run: Callable[[Session, Call], str | None]


COMMANDS: dict[str, SlashCommand] = {}


def command(name: str, usage: str, does: str, who: str = "anyone who can comment", kind: str = authz.ACT):
    # Open to strangers: GitLab decides who may comment. `review.roles.<name>` may still ask for a role.
    verb = authz.Verb(f"/{name}", (), kind, open_to_strangers=True, project_roles=name)

    def register(run):
        COMMANDS[name] = SlashCommand(name, usage, does, who, verb, run)
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


def run(session: Session, comment: Comment, index: int, name: str, argument: str) -> str | None:
    """Run the `index`-th command of `comment` as its author: None when done, else why not."""
    command = COMMANDS[name]
    actor = gitlab_user(session.config, comment.author, comment.author_name)
    where = f"{session.repo}!{session.iid}"
    record = audit.AuditRecord(
        id=f"gitlab#{session.repo.lower()}!{session.iid}#{comment.id}#{index}",
        at_ms=comment.at_ms,
        who=actor.id[:128],
        who_name=actor.name[:64],
        where="gitlab",
        where_title=where[:128],
        command=command.verb.name,
        arguments={"argument": argument[:100]} if argument else {},
        project=session.project.name,
    )
    decision = authz.authorize(
        session.config,
        actor,
        command.verb,
        authz.Target(session.project.name, merge_request=where),
        record,
        record.arguments,
    )
    if decision.denied:
        return decision.reason  # the record is finished as denied
    call = Call(actor, argument, record, request_id=f"note{comment.id}", written_ms=comment.at_ms)
    try:
        refused = command.run(session, call)
    except authz.Denied as exc:  # a later decision of the core, on what the command found (/retest's build)
        return exc.decision.reason
    audit.finish(record, "refused" if refused else "succeeded", refused or call.done or f"{command.verb.name} done")
    return refused


def mention(username: str) -> str:
    """`@username` for a username that can only be a mention; anything else as plain text."""
    return f"@{username}" if MENTIONABLE.match(username) else md(username, 100)


def refusal_note(username: str, name: str, reason: str) -> str:
    """The note that tells the commenter why their command was not done."""
    if not MENTIONABLE.match(username):
        reason = md(reason, 500)  # the core's reasons name the commenter: an odd name makes it all plain text
    return f"{mention(username)} `/{name}` was not done: {reason}."


def _cancel(argument: str) -> bool:
    return argument.lower() == "cancel"


@command(
    "lgtm",
    "/lgtm [cancel]",
    "adds (or with cancel removes) the `lgtm` label; it holds for the head commit it was given on, and only one "
    "pushed before the comment was written",
    "anyone but the author; the author may cancel",
)
def lgtm(session: Session, call: Call) -> str | None:
    if _cancel(call.argument):
        store.drop_lgtm(session.repo, session.iid)
        session.change_labels(remove=[LGTM])
        call.done = "lgtm cancelled"
        return None
    if call.user == session.author:
        return "you cannot LGTM your own merge request"
    head = session.head
    if not head:
        return NO_HEAD
    if too_early := written_before_head(call.written_ms, head, session.versions):
        return too_early
    store.set_lgtm(session.repo, session.iid, head, call.user)  # first: Tide reads this, not the label
    session.change_labels(add=[LGTM])
    call.done = f"lgtm at {head[:12]}"
    return None


def approval_labels(session: Session, approving: set[str]) -> None:
    """`approved` exactly when the approvals at the head cover every changed file."""
    uncovered = session.owners.uncovered(approving, session.review.approvers)
    if uncovered or not session.paths:
        session.change_labels(remove=[APPROVED])
    else:
        session.change_labels(add=[APPROVED])


@command(
    "approve",
    "/approve [cancel]",
    "records an approval of the head commit (one pushed before the comment was written); `approved` is set once "
    "approvers of every changed file have approved it",
    "OWNERS approvers of the changed files (else `review.approvers`)",
)
def approve(session: Session, call: Call) -> str | None:
    if not session.owners.may_approve(call.user, session.review.approvers):
        return "only an OWNERS approver of the changed files may approve"
    head, approved = session.head, not _cancel(call.argument)
    if not head:
        return NO_HEAD
    if approved and (too_early := written_before_head(call.written_ms, head, session.versions)):
        return too_early
    approving = store.set_approval(session.repo, session.iid, head, call.user, approved)
    approval_labels(session, approving)
    call.done = f"{'approved' if approved else 'approval cancelled'} at {head[:12]}"
    return None


@command("hold", "/hold [cancel]", "adds (or with cancel removes) `do-not-merge/hold`, which stops the merge")
def hold(session: Session, call: Call) -> str | None:
    if _cancel(call.argument):
        session.change_labels(remove=[HOLD])
    else:
        session.change_labels(add=[HOLD])
    return None


def _people(session: Session, call: Call) -> tuple[dict[str, int], str | None]:
    names = [w.lstrip("@").lower() for w in call.argument.split() if w.strip("@")] or [call.user]
    ids = session.user_ids(names)
    unknown = [n for n, i in ids.items() if i is None]
    if unknown:
        return {}, "no GitLab user " + ", ".join(md(n, 60) for n in unknown)
    return {n: i for n, i in ids.items() if i is not None}, None


def _people_changer(field: str, adds: bool, needs_names: bool = False):
    """A command that adds people to, or removes them from, the merge request's assignees or reviewers."""

    def run(session: Session, call: Call) -> str | None:
        if needs_names and not call.argument.strip("@ "):
            return "name who should review: `/cc @user`"
        found, refused = _people(session, call)
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
    _people_changer("assignees", adds=True)
)
command("unassign", "/unassign [@user …]", "removes assignees (yourself when no one is named)")(
    _people_changer("assignees", adds=False)
)
command("cc", "/cc @user …", "requests a review: adds reviewers")(
    _people_changer("reviewers", adds=True, needs_names=True)
)


def _labeller(adds: bool):
    """/label or /remove-label: only the labels `review.labels` lists, so that commands cannot fake
    `lgtm`, `approved` or a size."""

    def run(session: Session, call: Call) -> str | None:
        if call.argument not in session.review.labels:
            allowed = ", ".join(f"`{label}`" for label in session.review.labels) or "none"
            return f"'{md(call.argument, 100)}' is not a label this project lets commands set (allowed: {allowed})"
        session.change_labels(**{"add" if adds else "remove": [call.argument]})
        return None

    return run


command("label", "/label <label>", "adds a label that `review.labels` allows")(_labeller(adds=True))
command("remove-label", "/remove-label <label>", "removes a label that `review.labels` allows")(_labeller(adds=False))


def _from_fork(mr: dict) -> bool:
    source, target = mr.get("source_project_id"), mr.get("target_project_id")
    return source is not None and target is not None and source != target


@command(
    "retest",
    "/retest",
    "restarts the newest Drone build of the source branch that is not a deployment (from a fork: of the head commit; "
    "promotes, rollbacks and custom builds are never run again)",
    kind=authz.RERUN,
)
def retest(session: Session, call: Call) -> str | None:
    branch, repo = str(session.mr.get("source_branch") or ""), session.project.repo
    if not branch:
        return "GitLab names no source branch for this merge request"
    # A fork's branch names are the fork's: `main` there is not this repo's main. Its builds here are its merge
    # request's, found by the head commit, never by the branch's name.
    fork, head = _from_fork(session.mr), session.head
    try:
        drone = client_for(session.config)

        def newest_build() -> dict:
            # Drone lists the promotes and rollbacks of a branch's builds under the branch: skip them
            listed = (
                drone.builds(repo, per_page=RETEST_LOOKBACK)
                if fork
                else drone.builds(repo, branch=branch, per_page=RETEST_LOOKBACK)
            )
            found = next(
                (b for b in listed if not is_deployment(b) and (not fork or (head and b.get("after") == head))), None
            )
            return {"number": int(found["number"]) if found else 0}

        # Chosen once per comment: a retry after a lost answer would otherwise see the restart itself as the
        # newest build, and restart that
        chosen = effects.once(f"{keys.RETEST_BUILD}{repo.lower()}#{call.request_id}", newest_build)
        if not chosen["number"] and fork:
            return f"Drone has no build of this merge request's head commit {head[:8]} (from a fork) to restart"
        if not chosen["number"]:
            return f"Drone has no build of the branch {md(branch, 100)} to restart that is not a deployment"
        build = drone.build(repo, chosen["number"])
        ask = deploy.Ask(call.actor, call.record, "en", request_id=call.request_id)
        started = deploy.restart(session.config, drone, ask, session.project, build, verb=COMMANDS["retest"].verb)
    except DroneNotConfigured:
        return "Drone is not configured in opsbot, so there is nothing to restart"
    except DroneRefused as exc:
        return f"Drone refused: {md(exc.message, 300)}"
    call.done = f"restarted #{build.get('number')} as #{started.get('number')}"
    return None
