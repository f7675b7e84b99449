"""Merge-request automation through the worker's jobs, against the fake GitLab (and fake Drone) on loopback:
triage on open and push, each slash command allowed and refused, the merge by Tide's rule, and exactly once."""

from __future__ import annotations

import copy
import itertools

import pytest
import unit_support
from unit_support import fixture_json

from opsbot import audit
from opsbot.config import store
from opsbot.jobs.model import Job, RetryLater
from opsbot.review import jobs as review_jobs
from opsbot.review import store as review_store

API = "shop/shop-api"
_ids = itertools.count(9000)


@pytest.fixture
def review_config(aws, fake_gitlab, fake_drone):
    documents = unit_support.example_documents(drone=fake_drone.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["gitlab"]["url"] = fake_gitlab.url
    return store.save(documents, "review-test")


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def code(lines: int) -> str:
    return "".join(f"        int step{i} = {i};\n" for i in range(lines))


def open_mr(
    fake_gitlab, files: dict, author: str = "alice", source: str = "feature/refund", project: str = API
) -> dict:
    hook = fake_gitlab.fake.open_merge_request(
        {
            "project": project,
            "source_branch": source,
            "author": author,
            "title": "Refunds",
            "commits": [{"message": "refunds", "files": files}],
        }
    )
    return {**fixture_json("gitlab/merge_request.json"), **hook}


def mr_job(hook: dict, job_id: str | None = None) -> str:
    return review_jobs.on_merge_request(Job(kind="gitlab.merge_request", payload=hook, id=job_id or f"j{next(_ids)}"))


def write_note(fake_gitlab, user: str, text: str, iid: int = 1, project: str = API, system: bool = False) -> dict:
    """A note `user` writes in GitLab, and the Note Hook GitLab sends for it (laid over the fixture)."""
    hook = fake_gitlab.fake.merge_request_control(
        "POST", "/_control/note", {}, {"project": project, "iid": iid, "author": user, "body": text, "system": system}
    )[1]
    return {**fixture_json("gitlab/note_merge_request.json"), **hook}


def deliver(hook: dict) -> str:
    return review_jobs.on_note(Job(kind="gitlab.note", payload=hook, id=f"j{next(_ids)}"))


def note(fake_gitlab, user: str, text: str, iid: int = 1, project: str = API) -> str:
    """`user` comments `text`, and the worker runs the Note Hook."""
    return deliver(write_note(fake_gitlab, user, text, iid, project))


def forged_note(user: str, text: str, note_id: int, iid: int = 1, project: str = API) -> dict:
    """A Note Hook GitLab never sent: the fixture with someone else's name and words, signed with the shared token."""
    hook = copy.deepcopy(fixture_json("gitlab/note_merge_request.json"))
    hook["user"]["username"] = user
    hook["project"]["path_with_namespace"] = project
    hook["merge_request"]["iid"] = iid
    hook["object_attributes"].update(note=text, id=note_id, action="create")
    return hook


def push_to_mr(fake_gitlab, files: dict) -> str:
    """A push to merge request !1's branch, and the worker's answer to the Merge Request Hook (update) it brings."""
    before = mr(fake_gitlab)["sha"]
    fake_gitlab.fake.push(API, "feature/refund", [{"message": "more", "files": files}])
    update = fake_gitlab.fake.merge_request_control(
        "POST", "/_control/merge_request_hook", {}, {"project": API, "iid": 1, "action": "update", "oldrev": before}
    )[1]
    return mr_job({**fixture_json("gitlab/merge_request.json"), **update})


def mr(fake_gitlab, iid: int = 1) -> dict:
    return fake_gitlab.fake.merge_request_control("GET", "/_control/merge_request", {"project": API, "iid": iid}, {})[1]


def test_a_120_line_merge_request_is_sized_labelled_and_gets_two_reviewers(review_config, fake_gitlab, sent):
    hook = open_mr(
        fake_gitlab,
        {"src/main/java/com/example/shop/Refund.java": code(100), "docs/refunds.md": code(20), "deps.lock": code(400)},
    )
    assert mr_job(hook).startswith("triaged: size/L, reviewers bob, carol")
    found = mr(fake_gitlab)
    assert {"size/L", "area/api", "area/docs"} <= set(found["labels"]) and "area/build" not in found["labels"]
    # nearest OWNERS first: the root's (bob, dave, carol) for the code, docs/OWNERS (erin) for the docs file;
    # no one has reviews open, so by name
    assert [u["username"] for u in found["reviewers"]] == ["bob", "carol"]
    assert any("Welcome, @alice" in n["body"] for n in found["notes"])  # her first merge request here
    [(robot, message)] = sent
    assert robot == "shop-backend" and message["at"]["atUserIds"] == ["bob.li", "carol.zhang"]  # people[].git
    assert "!1 Refunds" in message["markdown"]["text"]
    assert all(c["authorized"] for c in fake_gitlab.calls())


def test_reviewers_are_spread_by_load_and_never_the_author(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="one"))
    first = [u["username"] for u in mr(fake_gitlab, 1)["reviewers"]]
    mr_job(open_mr(fake_gitlab, {"src/b.java": code(3)}, author="bob", source="two"))
    second = [u["username"] for u in mr(fake_gitlab, 2)["reviewers"]]
    assert "bob" not in second and set(first) != set(second)
    assert "dave" in second  # 0 open reviews, while the first request's reviewers have one each


def test_a_redelivered_open_hook_triages_once(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"src/a.java": code(3)})
    mr_job(hook, "a")
    mr_job(hook, "b")  # GitLab's resend comes with a new delivery id; the head commit is the same
    assert len([c for c in fake_gitlab.calls("PUT") if "reviewer_ids" in (c["body"] or {})]) == 1
    assert len(fake_gitlab.calls("POST", "/notes")) == 1 and len(sent) == 1


def test_diffs_are_read_page_by_page(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {f"src/gen{i}.java": "x\n" for i in range(130)}))
    pages = [c["query"].get("page", "1") for c in fake_gitlab.calls("GET", "/merge_requests/1/diffs")]
    assert pages == ["1", "2"] and "size/L" in mr(fake_gitlab)["labels"]  # 130 lines, all counted


def test_lgtm_refused_for_the_author_given_by_a_reviewer_and_dropped_by_a_push(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "alice", "/lgtm")
    found = mr(fake_gitlab)
    assert "lgtm" not in found["labels"]
    assert "`/lgtm` was not done: you cannot LGTM your own merge request" in found["notes"][-1]["body"]
    note(fake_gitlab, "bob", "Nice.\n/lgtm")
    assert "lgtm" in mr(fake_gitlab)["labels"]
    push_to_mr(fake_gitlab, {"src/a.java": code(4)})
    assert "lgtm" not in mr(fake_gitlab)["labels"]
    note(fake_gitlab, "alice", "/lgtm cancel")  # the author may cancel; nothing to remove, nothing refused
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 1  # the first /lgtm


def test_approve_only_from_owners_approvers_and_approved_once_every_path_is_covered(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3), "docs/a.md": "doc\n"}))
    note(fake_gitlab, "bob", "/approve")
    assert "only an OWNERS approver of the changed files may approve" in mr(fake_gitlab)["notes"][-1]["body"]
    note(fake_gitlab, "erin", "/approve")  # docs/ only
    assert "approved" not in mr(fake_gitlab)["labels"]
    note(fake_gitlab, "carol", "/approve")  # the root: everything
    assert "approved" in mr(fake_gitlab)["labels"]
    note(fake_gitlab, "carol", "/approve cancel")
    assert "approved" not in mr(fake_gitlab)["labels"]  # erin alone does not cover src/
    assert review_store.approvers(API, 1, mr(fake_gitlab)["sha"]) == {"erin"}  # at the head commit


def _ready(fake_gitlab, review_config) -> None:
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/lgtm")
    note(fake_gitlab, "carol", "/approve")


def merges(fake_gitlab) -> list[dict]:
    return fake_gitlab.calls("PUT", "/merge")


def test_lgtm_approved_and_a_green_pipeline_merge_once_with_the_head_sha(review_config, fake_gitlab, sent):
    _ready(fake_gitlab, review_config)
    assert merges(fake_gitlab) == []  # no pipeline yet
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1")).startswith("!1 merged at")
    review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p2"))  # redelivered
    [merge] = merges(fake_gitlab)
    assert merge["body"] == {"sha": pipeline["object_attributes"]["sha"], "squash": True}  # merge_method: squash
    assert mr(fake_gitlab)["state"] == "merged"


def test_hold_stops_the_merge_until_cancelled(review_config, fake_gitlab, sent):
    _ready(fake_gitlab, review_config)
    note(fake_gitlab, "dave", "/hold")
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert "do-not-merge/hold" in review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1"))
    assert merges(fake_gitlab) == []
    note(fake_gitlab, "dave", "/hold cancel")
    assert len(merges(fake_gitlab)) == 1


def test_a_stale_sha_is_no_error_and_a_new_look_at_the_new_head_merges(review_config, fake_gitlab, sent, monkeypatch):
    from opsbot.gitlab.api import GitLabClient

    _ready(fake_gitlab, review_config)
    real = GitLabClient.merge

    def someone_pushes_first(self, path, iid, sha, squash):
        fake_gitlab.fake.push(API, "feature/refund", [{"message": "late", "files": {"late.txt": "x\n"}}])
        monkeypatch.setattr(GitLabClient, "merge", real)
        return real(self, path, iid, sha, squash)

    monkeypatch.setattr(GitLabClient, "merge", someone_pushes_first)
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert (
        review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1"))
        == "!1 not merged: GitLab answered 409"
    )
    newer = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})  # the push's build
    # the labels are still there (the push's triage has not run), but the lgtm and approval were of the old head
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=newer, id="p2")).startswith(
        "!1 not merged: lgtm was given on"
    )
    note(fake_gitlab, "bob", "/lgtm")
    assert note(fake_gitlab, "carol", "/approve").endswith("merged at " + newer["object_attributes"]["sha"][:8])
    assert [m["body"]["sha"] for m in merges(fake_gitlab)] == [
        pipeline["object_attributes"]["sha"],
        newer["object_attributes"]["sha"],
    ]


def test_an_edited_comment_does_nothing(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "bob", "/lgtm")
    calls = len(fake_gitlab.fake.calls)
    edited = {**hook, "object_attributes": {**hook["object_attributes"], "action": "update"}}
    assert deliver(edited) == "ignored: an edited comment"
    assert len(fake_gitlab.fake.calls) == calls


def test_a_redelivered_note_has_one_effect(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "alice", "/lgtm\n/label kind/nonsense")
    for _ in range(2):
        deliver(hook)
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 2  # two refusals, once


def test_labels_only_from_the_allowed_list(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/label kind/bug\n/label release-blocker")
    found = mr(fake_gitlab)
    assert "kind/bug" in found["labels"] and "release-blocker" not in found["labels"]
    assert "'release-blocker' is not a label this project lets commands set" in found["notes"][-1]["body"]
    note(fake_gitlab, "bob", "/remove-label kind/bug")
    assert "kind/bug" not in mr(fake_gitlab)["labels"]


def test_assign_unassign_and_cc(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/assign @erin\n/assign")
    assert [u["username"] for u in mr(fake_gitlab)["assignees"]] == ["erin", "bob"]
    note(fake_gitlab, "bob", "/unassign")
    assert [u["username"] for u in mr(fake_gitlab)["assignees"]] == ["erin"]
    note(fake_gitlab, "bob", "/cc @frank @nobody")
    assert "no GitLab user nobody." in mr(fake_gitlab)["notes"][-1]["body"]
    note(fake_gitlab, "bob", "/cc @frank")
    assert "frank" in [u["username"] for u in mr(fake_gitlab)["reviewers"]]


def test_retest_restarts_the_newest_build_of_the_source_branch_that_is_no_deployment(
    review_config, fake_gitlab, fake_drone, sent
):
    # Drone lists #125, a promote of #124 to staging, first under feature/refund: it must never run again
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="feature/refund"))
    hook = write_note(fake_gitlab, "alice", "/retest")
    deliver(hook)
    [listed, read, restart] = [(c["method"], c["path"], c["query"]) for c in fake_drone.calls]
    assert listed[:2] == ("GET", "/api/repos/shop/shop-api/builds") and listed[2]["branch"] == ["feature/refund"]
    assert read[:2] == ("GET", "/api/repos/shop/shop-api/builds/124")
    assert restart[:2] == ("POST", "/api/repos/shop/shop-api/builds/124")
    # the restart carries the comment's request id, which a retry looks for before it posts again
    assert restart[2] == {f"OPSBOT_REQUEST_NOTE{hook['object_attributes']['id']}": ["1"]}
    [started] = [b for b in fake_drone.builds[API] if b["parent"] == 124 and b["event"] == "push"]
    assert started["status"] == "pending"


def test_a_retest_whose_answer_was_lost_is_looked_up_not_restarted_again(review_config, fake_gitlab, fake_drone, sent):
    from opsbot.drone.api import DroneUnavailable

    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="feature/refund"))
    hook = write_note(fake_gitlab, "bob", "/retest")
    # Drone restarts #124, but its answer is lost on the way back (a proxy's 502)
    fake_drone.statuses, fake_drone.fault_methods, fake_drone.fault_after = [502], frozenset({"POST"}), True
    with pytest.raises(DroneUnavailable):
        deliver(hook)
    deliver(hook)  # the queue's retry asks Drone whether this comment's restart exists before posting again
    assert [c["path"] for c in fake_drone.calls if c["method"] == "POST"] == ["/api/repos/shop/shop-api/builds/124"]
    assert len([b for b in fake_drone.builds[API] if b["parent"] == 124 and b["event"] == "push"]) == 1
    assert not [n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]


def test_retest_when_the_branch_has_only_deployments_is_refused(review_config, fake_gitlab, fake_drone, sent):
    fake_drone.add_builds(
        API, [{"target": "feature/only-deploys", "event": "promote", "deploy_to": "staging", "parent": 124}]
    )
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="feature/only-deploys"))
    note(fake_gitlab, "bob", "/retest")
    assert [c["method"] for c in fake_drone.calls] == ["GET"]  # nothing restarted
    assert (
        "@bob `/retest` was not done: Drone has no build of the branch feature/only-deploys to restart that is "
        "not a deployment." == mr(fake_gitlab)["notes"][-1]["body"]
    )


def test_retest_of_a_merge_request_from_a_fork_restarts_only_a_build_of_its_head(
    review_config, fake_gitlab, fake_drone, sent
):
    """A fork's branch named `main` is not this repo's main: /retest there must not restart upstream main's newest
    build. Its builds here (Drone's pull_request builds) are found by the merge request's head commit."""
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="main-from-fork"))
    found = fake_gitlab.fake.repos[API].merge_requests[0]
    found.update(source_branch="main", source_project_id=4242)  # the fork's own main
    note(fake_gitlab, "bob", "/retest")
    assert [c["method"] for c in fake_drone.calls] == ["GET"]  # upstream main's #123 is not restarted
    head = mr(fake_gitlab)["sha"]
    assert (
        f"@bob `/retest` was not done: Drone has no build of this merge request's head commit {head[:8]} (from a "
        "fork) to restart." == mr(fake_gitlab)["notes"][-1]["body"]
    )
    [number] = fake_drone.add_builds(
        API, [{"event": "pull_request", "source": "main", "target": "main", "after": head, "status": "failure"}]
    )
    note(fake_gitlab, "bob", "/retest")
    assert [c["path"] for c in fake_drone.calls if c["method"] == "POST"] == [
        f"/api/repos/shop/shop-api/builds/{number}"
    ]


def test_projects_without_review_are_left_alone(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"src/x.js": "x\n"}, project="shop/shop-web")
    assert mr_job(hook) == "ignored: review automation is off for shop/shop-web"
    assert (
        note(fake_gitlab, "bob", "/lgtm", project="shop/shop-web")
        == "ignored: review automation is off for shop/shop-web"
    )
    assert fake_gitlab.calls("PUT") == []


def test_notes_stay_within_gitlabs_60_a_minute(aws):
    for _ in range(60):
        review_store.take_note_slot(now=1_000_040)
    with pytest.raises(RetryLater) as raised:
        review_store.take_note_slot(now=1_000_040)
    assert raised.value.delay == 41  # the next minute
    review_store.take_note_slot(now=1_000_080)


def test_gitlab_throttling_notes_is_retried_later(review_config, fake_gitlab, sent):
    from opsbot.gitlab.api import GitLabUnavailable

    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "alice", "/lgtm")
    fake_gitlab.fake.note_times = [__import__("time").time()] * 60
    with pytest.raises(GitLabUnavailable):
        deliver(hook)
    fake_gitlab.fake.note_times = []
    deliver(hook)  # the retry posts the refusal once
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 1


def test_a_branch_pipeline_finds_its_merge_request_by_ref_and_sha(review_config, fake_gitlab, sent):
    # Drone reports commit statuses: GitLab's Pipeline Hook then names the branch and sha, not the merge request
    _ready(fake_gitlab, review_config)
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    pipeline.pop("merge_request")
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1")).startswith("!1 merged at")
    other = {**pipeline, "object_attributes": {**pipeline["object_attributes"], "ref": "elsewhere"}}
    assert (
        review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=other, id="p2"))
        == "ignored: a pipeline of no open merge request's head"
    )


def test_gitlab_down_is_retried_through_the_queue(review_config, fake_gitlab, sent):
    from opsbot.gitlab.api import GitLabUnavailable

    hook = open_mr(fake_gitlab, {"src/a.java": code(3)})
    fake_gitlab.fake.down = True
    with pytest.raises(GitLabUnavailable):  # a RetryLater: the worker retries, then the DLQ
        mr_job(hook, "down")
    fake_gitlab.fake.down = False
    assert mr_job(hook, "down").startswith("triaged: size/XS")


def test_merge_request_hooks_without_new_commits_only_check_the_merge(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"src/a.java": code(3)})
    mr_job(hook)
    labelled = {**hook, "object_attributes": {**hook["object_attributes"], "action": "update"}}
    assert mr_job(labelled).startswith("not merged:")
    closed = {**hook, "object_attributes": {**hook["object_attributes"], "action": "close"}}
    assert mr_job(closed) == "ignored: merge request close"


def test_a_retried_comment_runs_each_command_once(review_config, fake_gitlab, fake_drone, sent, monkeypatch):
    from opsbot.gitlab.api import GitLabClient, GitLabUnavailable

    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "bob", "/retest\n/hold")
    real = GitLabClient.update_merge_request
    monkeypatch.setattr(
        GitLabClient,
        "update_merge_request",
        lambda *a, **k: (_ for _ in ()).throw(GitLabUnavailable("GitLab answered 503")),
    )
    with pytest.raises(GitLabUnavailable):
        deliver(hook)  # the build restarts, then labelling fails
    monkeypatch.setattr(GitLabClient, "update_merge_request", real)
    deliver(hook)  # the queue's retry
    assert len([c for c in fake_drone.calls if c["method"] == "POST"]) == 1
    assert "do-not-merge/hold" in mr(fake_gitlab)["labels"]


def test_a_push_that_touches_files_no_approver_covered_drops_approved(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"docs/a.md": "doc\n"})
    mr_job(hook)
    note(fake_gitlab, "erin", "/approve")  # docs/ is all the merge request changes
    assert "approved" in mr(fake_gitlab)["labels"]
    push_to_mr(fake_gitlab, {"src/a.java": code(2)})
    assert "approved" not in mr(fake_gitlab)["labels"]  # src/ needs carol


def test_review_roles_restrict_a_command_to_people_with_a_role(aws, fake_gitlab, fake_drone, sent):
    documents = unit_support.example_documents(drone=fake_drone.url)
    next(d for d in documents if d.name == "opsbot.yaml").data["gitlab"]["url"] = fake_gitlab.url
    project = next(d for d in documents if d.name == "projects/shop-api.yaml").data
    project["review"]["roles"] = {"approve": ["deployer"], "retest": ["developer"], "lgtm": ["deployer"]}
    project["review"]["approvers"] = ["bob"]  # an approver by config, but not a deployer
    store.save(documents, "roles")
    mr_job(open_mr(fake_gitlab, {"README.md": "x\n"}, author="alice"))
    note(fake_gitlab, "dave", "/retest")  # no people[].git names dave
    refusal = mr(fake_gitlab)["notes"][-1]["body"]
    assert "`/retest` needs the role developer, and `dave` is in no `people[].git`" in refusal
    note(fake_gitlab, "bob", "/lgtm")  # the core asks for the role before the command's own rule
    assert (
        "@bob `/lgtm` was not done: `/lgtm` needs the role deployer; Bob Li has developer."
        == mr(fake_gitlab)["notes"][-1]["body"]
    )
    assert "lgtm" not in mr(fake_gitlab)["labels"]
    note(fake_gitlab, "carol", "/approve")  # an OWNERS approver and a deployer
    assert "approved" in mr(fake_gitlab)["labels"]
    assert [c for c in fake_drone.calls if c["method"] == "POST"] == []
    denied = [r for r in audit.recent("shop-api", 10) if r.result == "denied"]
    assert {(r.command, r.who, r.decision) for r in denied} == {
        ("/retest", "gitlab:dave", "deny"),
        ("/lgtm", "bob", "deny"),
    }


def test_review_roles_admin_may_use_every_command(aws, fake_gitlab, fake_drone, sent):
    documents = unit_support.example_documents(drone=fake_drone.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["gitlab"]["url"] = fake_gitlab.url
    next(p for p in root["people"] if p["id"] == "xiaoming")["git"].append("frank")  # ops and admin
    next(d for d in documents if d.name == "projects/shop-api.yaml").data["review"]["roles"] = {"hold": ["ops"]}
    store.save(documents, "admin")
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/hold")
    assert "`/hold` needs the role ops; Bob Li has developer" in mr(fake_gitlab)["notes"][-1]["body"]
    note(fake_gitlab, "frank", "/hold")
    assert "do-not-merge/hold" in mr(fake_gitlab)["labels"]


def test_review_roles_name_existing_commands(aws):
    from opsbot.config.model import ConfigError

    documents = unit_support.example_documents()
    next(d for d in documents if d.name == "projects/shop-api.yaml").data["review"]["roles"] = {"merge": ["ops"]}
    with pytest.raises(ConfigError, match="review.roles: no slash command 'merge'"):
        store.save(documents, "bad-roles")


# --- trust: who wrote a comment, and on which commit a review was given -------------------------------------


def test_each_command_is_decided_by_the_core_and_its_outcome_audited(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "bob", "/lgtm\n/label nope")
    deliver(hook)
    note(fake_gitlab, "alice", "/lgtm")
    records = {(r.who, r.command): r for r in audit.recent("shop-api", 10)}
    lgtm, label, own = records[("bob", "/lgtm")], records[("bob", "/label")], records[("alice", "/lgtm")]
    assert (lgtm.result, lgtm.decision, lgtm.via, lgtm.where, lgtm.where_title) == (
        "succeeded",
        "allow",
        "gitlab",
        "gitlab",
        "shop/shop-api!1",
    )
    assert lgtm.detail.startswith("lgtm at " + mr(fake_gitlab)["sha"][:12])
    assert label.result == "refused" and label.arguments == {"argument": "nope"} and "not a label" in label.detail
    assert own.result == "refused" and own.detail == "you cannot LGTM your own merge request"
    note_id = hook["object_attributes"]["id"]
    assert lgtm.id == f"gitlab#shop/shop-api!1#{note_id}#0" and label.id == f"gitlab#shop/shop-api!1#{note_id}#1"


def test_a_forged_note_hook_for_a_note_gitlab_does_not_have_does_nothing(review_config, fake_gitlab, sent, aws):
    from opsbot.jobs.worker import run_record

    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    before = mr(fake_gitlab)
    # Attack 5: valid shared token, bob (a reviewer) "says" /lgtm and carol (the approver) "says" /approve
    assert deliver(forged_note("bob", "/lgtm", 777_001)) == "ignored: GitLab has no note 777001 on shop/shop-api!1"
    for hook in (forged_note("carol", "/approve", 777_002), forged_note("bob", "/lgtm", 777_003)):
        run_record(Job(kind="gitlab.note", payload=hook, id=f"j{next(_ids)}").to_json(), "receipt", 1)
    after = mr(fake_gitlab)
    assert after["labels"] == before["labels"] and after["notes"] == before["notes"]  # no label, no note
    assert merges(fake_gitlab) == [] and after["state"] == "opened"
    assert aws.dead_letters() == []  # done with, not parked
    assert review_store.lgtm_sha(API, 1) is None and review_store.approvers(API, 1, after["sha"]) == set()


def test_a_hook_naming_a_real_note_runs_it_as_its_real_author(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    real = write_note(fake_gitlab, "alice", "Thanks for looking!\n/lgtm")  # the author's own words
    forged = forged_note("bob", "/lgtm\n/approve", real["object_attributes"]["id"])
    assert deliver(forged).startswith("commands lgtm (refused: lgtm)")  # alice's /lgtm, not bob's
    found = mr(fake_gitlab)
    assert "lgtm" not in found["labels"]
    assert found["notes"][-1]["body"] == "@alice `/lgtm` was not done: you cannot LGTM your own merge request."
    words = write_note(fake_gitlab, "dave", "Looks fine to me.")  # no command, whatever the hook says
    assert deliver(forged_note("carol", "/approve", words["object_attributes"]["id"])) == "ignored: no commands"
    assert "approved" not in mr(fake_gitlab)["labels"]


def test_notes_of_another_merge_request_and_system_notes_run_nothing(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="one"))
    mr_job(open_mr(fake_gitlab, {"src/b.java": code(3)}, author="dave", source="two"))
    other = write_note(fake_gitlab, "bob", "/lgtm", iid=2)
    assert deliver(forged_note("bob", "/lgtm", other["object_attributes"]["id"], iid=1)).startswith(
        "ignored: GitLab has no note"
    )  # GitLab finds a note only under its own merge request
    system = write_note(fake_gitlab, "bob", "/lgtm", system=True)
    assert deliver(system) == f"ignored: note {system['object_attributes']['id']} is a system note"
    assert "lgtm" not in mr(fake_gitlab, 1)["labels"]


def test_a_note_the_api_places_elsewhere_runs_nothing(review_config, fake_gitlab, sent, monkeypatch):
    # what GitLab's API says the note belongs to is checked too, not only the path it was asked for
    from opsbot.gitlab.api import GitLabClient

    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    hook = write_note(fake_gitlab, "bob", "/lgtm")
    real = GitLabClient.note
    monkeypatch.setattr(GitLabClient, "note", lambda self, *a: {**real(self, *a), "noteable_iid": 2})
    note_id = hook["object_attributes"]["id"]
    assert deliver(hook) == f"ignored: note {note_id} is not a comment on shop/shop-api!1"
    assert "lgtm" not in mr(fake_gitlab)["labels"]


def test_after_a_push_the_old_lgtm_merges_nothing_even_with_its_labels(review_config, fake_gitlab, sent):
    _ready(fake_gitlab, review_config)
    old = mr(fake_gitlab)["sha"]
    # a push whose Merge Request Hook has not been acted on yet (its triage failing or retrying)
    fake_gitlab.fake.push(API, "feature/refund", [{"message": "sneaky", "files": {"src/b.java": code(2)}}])
    new = mr(fake_gitlab)["sha"]
    assert {"lgtm", "approved"} <= set(mr(fake_gitlab)["labels"])
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    answer = review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p-new"))
    assert answer == f"!1 not merged: lgtm was given on {old[:8]}, the head is {new[:8]}"
    assert note(fake_gitlab, "dave", "/hold\n/hold cancel").endswith(
        f"not merged: lgtm was given on {old[:8]}, the head is {new[:8]}"
    )
    assert merges(fake_gitlab) == []
    note(fake_gitlab, "bob", "/lgtm")  # a new look, at the new head; carol's approval is still the old head's
    assert note(fake_gitlab, "dave", "/hold cancel").endswith(
        f"not merged: the approvals at {new[:8]} do not cover 2 changed file(s): src/a.java, src/b.java"
    )
    assert merges(fake_gitlab) == []


def test_a_hand_set_lgtm_label_is_no_lgtm(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "carol", "/approve")
    repo = fake_gitlab.fake._repo(API)
    fake_gitlab.fake._update(repo, fake_gitlab.fake._mr(repo, 1), {"add_labels": "lgtm"})  # in GitLab's UI
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert (
        review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p"))
        == "!1 not merged: no /lgtm is recorded"
    )
    assert merges(fake_gitlab) == []


def test_a_push_drops_approved_even_when_the_approvers_covered_every_file(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/lgtm")
    note(fake_gitlab, "carol", "/approve")  # the root approver: every file, now and after the push
    push_to_mr(fake_gitlab, {"src/a.java": code(5)})
    assert not {"lgtm", "approved"} & set(mr(fake_gitlab)["labels"])  # given on the old head
    note(fake_gitlab, "carol", "/approve")
    assert "approved" in mr(fake_gitlab)["labels"]


def test_refusal_notes_carry_no_link_mention_or_markup_from_the_comment(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note(fake_gitlab, "bob", "/label [x](http://evil.example) @all\n/cc @all **@carol** ![](http://evil.example/i.png)")
    label, cc = [n["body"] for n in mr(fake_gitlab)["notes"] if n["author"]["username"] == "opsbot"][-2:]
    for body in (label, cc):
        assert body.startswith("@bob `/")  # the commenter, as GitLab's API names them
        assert "@all" not in body and "](" not in body and "://" not in body and "**" not in body, body
    assert "is not a label this project lets commands set" in label and "no GitLab user" in cc
    assert label.startswith("@bob `/label` was not done: '［x］(http：//evil.example) ＠all' is not a label")
    assert (
        cc == "@bob `/cc` was not done: no GitLab user all, \\*\\*＠carol\\*\\*, \\!［］(http：//evil.example/i.png)."
    )


# --- crash windows -----------------------------------------------------------------------------------------------


def test_a_triage_stopped_after_assigning_reviewers_still_tells_them_on_its_retry(
    review_config, fake_gitlab, sent, monkeypatch
):
    from opsbot.gitlab.merge_request_api import MergeRequestCalls

    real, stopped = MergeRequestCalls.update_merge_request, []

    def assigned_then_stopped(client, path, iid, **fields):
        answer = real(client, path, iid, **fields)
        if "reviewer_ids" in fields and not stopped:
            stopped.append(True)
            raise RuntimeError("the worker stopped here")
        return answer

    monkeypatch.setattr(MergeRequestCalls, "update_merge_request", assigned_then_stopped)
    hook = open_mr(fake_gitlab, {"src/a.java": code(3)})
    with pytest.raises(RuntimeError):
        mr_job(hook, "delivery-1")
    assert [u["username"] for u in mr(fake_gitlab)["reviewers"]] == ["bob", "carol"] and sent == []
    mr_job(hook, "delivery-1")  # the queue's retry: GitLab lists them already, and they were this triage's choice
    [(robot, message)] = sent
    assert robot == "shop-backend" and message["at"]["atUserIds"] == ["bob.li", "carol.zhang"]


def test_a_note_whose_answer_was_lost_is_not_posted_again(review_config, fake_gitlab, sent, monkeypatch):
    import requests
    from requests.adapters import HTTPAdapter

    from opsbot.state.effects import EffectInDoubt

    real = HTTPAdapter.send

    def posted_then_timed_out(adapter, request, **kwargs):
        answer = real(adapter, request, **kwargs)
        if request.method == "POST" and request.url.endswith("/notes"):
            raise requests.ReadTimeout("the answer was lost")
        return answer

    monkeypatch.setattr(HTTPAdapter, "send", posted_then_timed_out)
    hook = open_mr(fake_gitlab, {"src/a.java": code(3)})  # alice's first: a welcome note
    for _ in range(2):  # the job, then a redelivery of it
        with pytest.raises(EffectInDoubt, match="may have happened"):
            mr_job(hook, "delivery-1")
    assert len([n for n in mr(fake_gitlab)["notes"] if "Welcome" in n["body"]]) == 1
