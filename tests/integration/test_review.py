"""Merge-request automation through the local stack: Merge Request, Note and Pipeline hooks (laid over the
fixtures tests/fixtures/gitlab/merge_request.json, note_merge_request.json and pipeline.json) go through
ingress and the queue to the worker, which talks to the fake GitLab (PRIVATE-TOKEN checked; merge requests,
notes, diffs, merge, OWNERS files) and the fake Drone. The example's shop/shop-api opts in with `review:`;
its OWNERS make carol the approver and bob, dave and carol the reviewers."""
from __future__ import annotations

import copy
import itertools
import json
import time

from conftest import FIXTURES

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
    return stack.http.get(stack.gitlab + "/_control/merge_request", params={"project": API, "iid": iid},
                          timeout=5).json()


def open_mr(stack, files: dict | None = None, author: str = "alice") -> int:
    """Open a merge request in the fake GitLab and deliver its hook; returns its iid once it is triaged."""
    n = next(_branches)  # each its own files: an earlier test's merge has put its files on main
    files = files or {f"src/main/java/com/example/shop/Refund{n}.java": _code(100), f"docs/refunds{n}.md": _code(20)}
    hook = _control(stack, "/_control/merge_request", {
        "project": API, "source_branch": f"review-{n}-{stack.next_number()}", "author": author,
        "title": "Refunds", "commits": [{"message": "refunds", "files": files}]})
    assert stack.post_gitlab({**_fixture("merge_request"), **hook}, event="Merge Request Hook").status_code == 202
    iid = hook["object_attributes"]["iid"]
    assert stack.wait_for(lambda: any(l.startswith("size/") for l in merge_request(stack, iid)["labels"])), \
        "the merge request was not triaged"
    assert stack.wait_for(lambda: len(merge_request(stack, iid)["reviewers"]) == 2)
    return iid


def comment(stack, iid: int, user: str, text: str, action: str = "create", note_id: int | None = None,
            delivery: str | None = None):
    hook = copy.deepcopy(_fixture("note_merge_request"))
    hook["user"]["username"] = user
    hook["project"]["path_with_namespace"] = API
    hook["merge_request"]["iid"] = iid
    hook["object_attributes"].update(note=text, action=action, id=note_id or stack.next_number())
    return stack.post_gitlab(hook, delivery, event="Note Hook")


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
    _control(stack, "/_control/push", {"project": API, "branch": before["source_branch"],
                                       "commits": [{"message": "fix", "files": {"docs/fix.md": "fixed\n"}}]})
    update = _control(stack, "/_control/merge_request_hook", {"project": API, "iid": iid, "action": "update",
                                                              "oldrev": before["sha"], "user": "alice"})
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
    assert comment(stack, iid, "bob", "/lgtm", action="update").status_code == 202
    settle(stack)
    assert len(stack.gitlab_calls()) == calls and "lgtm" not in merge_request(stack, iid)["labels"]


def test_a_redelivered_note_has_one_effect(stack):
    iid = open_mr(stack)
    note_id, key = stack.next_number(), f"note-{stack.next_number()}"
    assert comment(stack, iid, "alice", "/lgtm", note_id=note_id, delivery=key).json()["status"] == "queued"
    assert comment(stack, iid, "alice", "/lgtm", note_id=note_id, delivery=key).json()["status"] == "duplicate"
    # GitLab's manual resend comes with a new delivery id: queued again, but the note id is the same
    assert comment(stack, iid, "alice", "/lgtm", note_id=note_id, delivery=f"{key}-resent").json()["status"] == "queued"
    assert stack.wait_for(lambda: notes(stack, iid, "you cannot LGTM"))
    settle(stack)
    assert len(notes(stack, iid, "you cannot LGTM")) == 1
