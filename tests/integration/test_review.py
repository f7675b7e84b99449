"""Merge-request automation through the local stack: Merge Request, Note and Pipeline hooks (laid over the
fixtures tests/fixtures/gitlab/merge_request.json, note_merge_request.json and pipeline.json) go through
ingress and the queue to the worker, which talks to the fake GitLab (PRIVATE-TOKEN checked; merge requests,
notes, diffs, merge, OWNERS files) and the fake Drone. The example's shop/shop-api opts in with `review:`;
its OWNERS make carol the approver and bob, dave and carol the reviewers. Comments are written in the fake GitLab
(`/_control/note`) and their Note Hook delivered, as GitLab would; forged hooks are the fixture with someone
else's name and words, signed with the shared token."""

from __future__ import annotations

import copy
import itertools
import json
import time

from conftest import FIXTURES, OWN_TOKEN_REPO, OWN_WEBHOOK_TOKEN

API = "shop/shop-api"
QUIET_PERIOD = 2.0
_branches = itertools.count(1)


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / "gitlab" / f"{name}.json").read_text(encoding="utf-8"))


def _code(lines: int) -> str:
    return "".join(f"    int step{i} = {i};\n" for i in range(lines))


def _control(stack, path: str, spec: dict) -> dict:
    response = stack.http.post(stack.gitlab + path, json=spec, timeout=10)
    response.raise_for_status()
    return response.json()


def merge_request(stack, iid: int) -> dict:
    return stack.http.get(
        stack.gitlab + "/_control/merge_request", params={"project": API, "iid": iid}, timeout=5
    ).json()


def open_mr(stack, files: dict | None = None, author: str = "alice") -> int:
    """Open a merge request in the fake GitLab and deliver its hook; returns its iid once it is triaged."""
    n = next(_branches)  # each its own files: an earlier test's merge has put its files on main
    files = files or {f"src/main/java/com/example/shop/Refund{n}.java": _code(100), f"docs/refunds{n}.md": _code(20)}
    hook = _control(
        stack,
        "/_control/merge_request",
        {
            "project": API,
            "source_branch": f"review-{n}-{stack.next_number()}",
            "author": author,
            "title": "Refunds",
            "commits": [{"message": "refunds", "files": files}],
        },
    )
    assert stack.post_gitlab({**_fixture("merge_request"), **hook}, event="Merge Request Hook").status_code == 202
    iid = hook["object_attributes"]["iid"]
    assert stack.wait_for(lambda: any(label.startswith("size/") for label in merge_request(stack, iid)["labels"])), (
        "the merge request was not triaged"
    )
    assert stack.wait_for(lambda: len(merge_request(stack, iid)["reviewers"]) == 2)
    return iid


def write_comment(stack, iid: int, user: str, text: str) -> dict:
    """`user` writes a note in the fake GitLab; the Note Hook GitLab sends for it."""
    hook = _control(stack, "/_control/note", {"project": API, "iid": iid, "author": user, "body": text})
    return {**_fixture("note_merge_request"), **hook}


def post_note_hook(stack, hook: dict, delivery: str | None = None, action: str = "create"):
    hook = copy.deepcopy(hook)
    hook["object_attributes"]["action"] = action
    return stack.post_gitlab(hook, delivery, event="Note Hook")


def comment(stack, iid: int, user: str, text: str, action: str = "create"):
    return post_note_hook(stack, write_comment(stack, iid, user, text), action=action)


def forged_comment(stack, iid: int, user: str, text: str, note_id: int | None = None):
    """A Note Hook GitLab never sent: valid shared token, `user` and `text` of the forger's choosing."""
    hook = copy.deepcopy(_fixture("note_merge_request"))
    hook["user"]["username"] = user
    hook["project"]["path_with_namespace"] = API
    hook["merge_request"]["iid"] = iid
    hook["object_attributes"].update(note=text, action="create", id=note_id or 900_000 + stack.next_number())
    return stack.post_gitlab(hook, event="Note Hook")


def settle(stack) -> None:
    """Wait until the worker has drained the queue, and a little more."""
    assert stack.wait_for(lambda: stack.queue_depth() == 0)
    time.sleep(QUIET_PERIOD)


def notes(stack, iid: int, needle: str) -> list[str]:
    return [n["body"] for n in merge_request(stack, iid)["notes"] if needle in n["body"]]


def merges(stack, iid: int) -> list[dict]:
    return [c for c in stack.gitlab_calls("PUT", f"/merge_requests/{iid}/merge")]


def green_pipeline(stack, iid: int) -> dict:
    hook = _control(stack, "/_control/pipeline", {"project": API, "iid": iid, "status": "success"})
    assert stack.post_gitlab({**_fixture("pipeline"), **hook}, event="Pipeline Hook").status_code == 202
    return hook


def test_a_120_line_merge_request_gets_size_l_area_labels_and_two_reviewers(stack):
    iid = open_mr(stack)
    found = merge_request(stack, iid)
    assert {"size/L", "area/api", "area/docs"} <= set(found["labels"]) and "area/build" not in found["labels"]
    reviewers = {u["username"] for u in found["reviewers"]}
    assert len(reviewers) == 2 and "alice" not in reviewers and reviewers <= {"bob", "dave", "carol", "erin"}
    assert all(c["authorized"] for c in stack.gitlab_calls())  # every API call carried the PRIVATE-TOKEN
    assert stack.gitlab_calls("GET", f"/merge_requests/{iid}/diffs")
    assert stack.gitlab_calls("GET", "/repository/files/OWNERS/raw")


def test_lgtm_from_the_author_is_refused_from_a_reviewer_is_added_and_a_push_removes_it(stack):
    iid = open_mr(stack)
    assert comment(stack, iid, "alice", "/lgtm").status_code == 202
    assert stack.wait_for(lambda: notes(stack, iid, "you cannot LGTM your own merge request"))
    assert "lgtm" not in merge_request(stack, iid)["labels"]
    comment(stack, iid, "bob", "Looks right.\n/lgtm")
    assert stack.wait_for(lambda: "lgtm" in merge_request(stack, iid)["labels"])

    before = merge_request(stack, iid)
    _control(
        stack,
        "/_control/push",
        {
            "project": API,
            "branch": before["source_branch"],
            "commits": [{"message": "fix", "files": {"docs/fix.md": "fixed\n"}}],
        },
    )
    update = _control(
        stack,
        "/_control/merge_request_hook",
        {"project": API, "iid": iid, "action": "update", "oldrev": before["sha"], "user": "alice"},
    )
    assert stack.post_gitlab({**_fixture("merge_request"), **update}, event="Merge Request Hook").status_code == 202
    assert stack.wait_for(lambda: "lgtm" not in merge_request(stack, iid)["labels"])


def test_approve_from_a_non_approver_is_refused_and_from_an_owners_approver_approves(stack):
    iid = open_mr(stack)
    comment(stack, iid, "bob", "/approve")
    assert stack.wait_for(lambda: notes(stack, iid, "only an OWNERS approver of the changed files may approve"))
    assert "approved" not in merge_request(stack, iid)["labels"]
    comment(stack, iid, "carol", "/approve")  # the root OWNERS approver covers every path
    assert stack.wait_for(lambda: "approved" in merge_request(stack, iid)["labels"])


def _lgtm_and_approve(stack, iid: int) -> None:
    comment(stack, iid, "dave", "/lgtm")
    comment(stack, iid, "carol", "/approve")
    assert stack.wait_for(lambda: {"lgtm", "approved"} <= set(merge_request(stack, iid)["labels"]))


def test_lgtm_approved_and_a_green_pipeline_merge_once_with_the_head_sha(stack):
    iid = open_mr(stack)
    _lgtm_and_approve(stack, iid)
    assert merges(stack, iid) == []
    hook = green_pipeline(stack, iid)
    assert stack.wait_for(lambda: merge_request(stack, iid)["state"] == "merged")
    settle(stack)
    [merge] = merges(stack, iid)
    assert merge["body"]["sha"] == hook["object_attributes"]["sha"] == merge_request(stack, iid)["sha"]


def test_with_hold_nothing_merges(stack):
    iid = open_mr(stack)
    comment(stack, iid, "erin", "/hold")
    assert stack.wait_for(lambda: "do-not-merge/hold" in merge_request(stack, iid)["labels"])
    _lgtm_and_approve(stack, iid)
    green_pipeline(stack, iid)
    settle(stack)
    assert merges(stack, iid) == [] and merge_request(stack, iid)["state"] == "opened"


def test_an_edited_comment_does_nothing(stack):
    iid = open_mr(stack)
    settle(stack)
    calls = len(stack.gitlab_calls())
    edited = comment(stack, iid, "bob", "/lgtm", action="update")  # ingress ignores it: no job at all
    assert edited.status_code == 200, edited.text
    assert edited.json() == {"status": "ignored", "reason": "GitLab Note Hook: an edited comment"}
    settle(stack)
    assert len(stack.gitlab_calls()) == calls and "lgtm" not in merge_request(stack, iid)["labels"]


def test_a_redelivered_note_has_one_effect(stack):
    iid = open_mr(stack)
    hook, key = write_comment(stack, iid, "alice", "/lgtm"), f"note-{stack.next_number()}"
    assert post_note_hook(stack, hook, key).json()["status"] == "queued"
    assert post_note_hook(stack, hook, key).json()["status"] == "duplicate"
    # GitLab's manual resend comes with a new delivery id: queued again, but the note id is the same
    assert post_note_hook(stack, hook, f"{key}-resent").json()["status"] == "queued"
    assert stack.wait_for(lambda: notes(stack, iid, "you cannot LGTM"))
    settle(stack)
    assert len(notes(stack, iid, "you cannot LGTM")) == 1


# --- trust ---------------------------------------------------------------------------------------------------


def test_forged_note_hooks_label_nothing_merge_nothing_and_are_not_parked(stack):
    iid = open_mr(stack)
    green_pipeline(stack, iid)
    settle(stack)
    before = merge_request(stack, iid)
    # Attack 5: the shared token, and notes GitLab does not have, "by" the reviewer and the approver
    assert forged_comment(stack, iid, "bob", "/lgtm").status_code == 202
    assert forged_comment(stack, iid, "carol", "/approve").status_code == 202
    # a real note, written by the author, delivered as if a reviewer had written "/lgtm"
    real = write_comment(stack, iid, "alice", "Could someone have a look?")
    assert forged_comment(stack, iid, "bob", "/lgtm", note_id=real["object_attributes"]["id"]).status_code == 202
    green_pipeline(stack, iid)
    settle(stack)
    after = merge_request(stack, iid)
    assert after["labels"] == before["labels"] and after["state"] == "opened" and merges(stack, iid) == []
    assert [n["author"]["username"] for n in after["notes"]] == [n["author"]["username"] for n in before["notes"]] + [
        "alice"
    ]  # opsbot said nothing
    assert stack.take_dead_letters(lambda job: job.get("kind") == "gitlab.note") == []
    assert "Note Hook for a note GitLab does not show" in stack.log_text()
    # the real thing still works end to end: a reviewer's /lgtm, the approver's /approve, a green pipeline
    _lgtm_and_approve(stack, iid)
    green_pipeline(stack, iid)
    assert stack.wait_for(lambda: merge_request(stack, iid)["state"] == "merged")


def test_after_a_push_the_old_lgtm_does_not_merge_the_new_commits(stack):
    iid = open_mr(stack)
    _lgtm_and_approve(stack, iid)
    before = merge_request(stack, iid)
    # new commits whose Merge Request Hook is not delivered (its triage failing or retrying): labels unchanged
    _control(
        stack,
        "/_control/push",
        {
            "project": API,
            "branch": before["source_branch"],
            "commits": [{"message": "more", "files": {"docs/more.md": "more\n"}}],
        },
    )
    head = merge_request(stack, iid)["sha"]
    assert head != before["sha"] and {"lgtm", "approved"} <= set(merge_request(stack, iid)["labels"])
    green_pipeline(stack, iid)
    comment(stack, iid, "erin", "Any news?\n/hold cancel")  # a Note event runs Tide's rule as well
    settle(stack)
    assert merges(stack, iid) == [] and merge_request(stack, iid)["state"] == "opened"
    # a new look at the new head merges it
    assert comment(stack, iid, "dave", "/lgtm").status_code == 202
    assert comment(stack, iid, "carol", "/approve").status_code == 202
    assert stack.wait_for(lambda: merge_request(stack, iid)["state"] == "merged")
    assert [m["body"]["sha"] for m in merges(stack, iid)] == [head]


def test_a_refusal_note_carries_no_live_link_and_no_at_all(stack):
    iid = open_mr(stack)
    comment(stack, iid, "bob", "/label [x](http://evil.example) @all")
    assert stack.wait_for(lambda: notes(stack, iid, "is not a label this project lets commands set"))
    [body] = notes(stack, iid, "is not a label this project lets commands set")
    assert body.startswith("@bob `/label` was not done: ")
    assert "@all" not in body and "](" not in body and "http://" not in body


def _post_with_token(stack, hook: dict, token: str, delivery: str):
    return stack.post(
        "/webhooks/gitlab",
        json.dumps(hook).encode(),
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token, "Idempotency-Key": delivery},
    )


def test_a_project_with_its_own_webhook_token_takes_only_that_token(stack):
    push = {**_fixture("push"), "project": {**_fixture("push")["project"], "path_with_namespace": OWN_TOKEN_REPO}}
    key = f"own-token-{stack.next_number()}"
    wrong = _post_with_token(stack, push, "not-the-token", key)
    assert wrong.status_code == 401 and "error" in wrong.json()
    shared = stack.post_gitlab(push, key)  # the shared token, for a project that has its own
    assert (shared.status_code, shared.json()) == (401, {"error": "this project has its own webhook token"})
    # neither claimed the delivery: the same delivery with the project's own token is new, and queued once
    assert _post_with_token(stack, push, OWN_WEBHOOK_TOKEN, key).json()["status"] == "queued"
    assert _post_with_token(stack, push, OWN_WEBHOOK_TOKEN, key).json()["status"] == "duplicate"
    other = {**_fixture("push"), "project": {**_fixture("push")["project"], "path_with_namespace": "shop/shop-web"}}
    assert stack.post_gitlab(other).json()["status"] == "queued"  # the others keep the shared token
    assert _post_with_token(stack, other, OWN_WEBHOOK_TOKEN, f"{key}-other").status_code == 401
