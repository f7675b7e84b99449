"""Merge-request automation through the worker's jobs, against the fake GitLab (and fake Drone) on loopback:
triage on open and push, each slash command allowed and refused, the merge by Tide's rule, and exactly once."""
from __future__ import annotations

import copy
import itertools

import pytest

import unit_support
from opsbot.config import store
from opsbot.jobs.model import Job, RetryLater
from opsbot.review import jobs as review_jobs
from opsbot.review import store as review_store
from unit_support import fixture_json

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
    monkeypatch.setattr("opsbot.dingtalk.robot.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def code(lines: int) -> str:
    return "".join(f"        int step{i} = {i};\n" for i in range(lines))


def open_mr(fake_gitlab, files: dict, author: str = "alice", source: str = "feature/refund",
            project: str = API) -> dict:
    hook = fake_gitlab.fake.open_merge_request({
        "project": project, "source_branch": source, "author": author, "title": "Refunds",
        "commits": [{"message": "refunds", "files": files}]})
    return {**fixture_json("gitlab/merge_request.json"), **hook}


def mr_job(hook: dict, job_id: str | None = None) -> str:
    return review_jobs.on_merge_request(Job(kind="gitlab.merge_request", payload=hook, id=job_id or f"j{next(_ids)}"))


def note(user: str, text: str, iid: int = 1, note_id: int | None = None, action: str = "create",
         project: str = API) -> str:
    hook = copy.deepcopy(fixture_json("gitlab/note_merge_request.json"))
    hook["user"]["username"] = user
    hook["project"]["path_with_namespace"] = project
    hook["merge_request"]["iid"] = iid
    hook["object_attributes"].update(note=text, id=note_id or next(_ids), action=action)
    return review_jobs.on_note(Job(kind="gitlab.note", payload=hook, id=f"j{next(_ids)}"))


def push_to_mr(fake_gitlab, files: dict) -> str:
    """A push to merge request !1's branch, and the worker's answer to the Merge Request Hook (update) it brings."""
    before = mr(fake_gitlab)["sha"]
    fake_gitlab.fake.push(API, "feature/refund", [{"message": "more", "files": files}])
    update = fake_gitlab.fake.merge_request_control("POST", "/_control/merge_request_hook", {},
                                                    {"project": API, "iid": 1, "action": "update", "oldrev": before})[1]
    return mr_job({**fixture_json("gitlab/merge_request.json"), **update})


def mr(fake_gitlab, iid: int = 1) -> dict:
    return fake_gitlab.fake.merge_request_control("GET", "/_control/merge_request",
                                                  {"project": API, "iid": iid}, {})[1]


def test_a_120_line_merge_request_is_sized_labelled_and_gets_two_reviewers(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"src/main/java/com/example/shop/Refund.java": code(100), "docs/refunds.md": code(20),
                                 "deps.lock": code(400)})
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
    note("alice", "/lgtm")
    found = mr(fake_gitlab)
    assert "lgtm" not in found["labels"]
    assert "`/lgtm` was not done: you cannot LGTM your own merge request" in found["notes"][-1]["body"]
    note("bob", "Nice.\n/lgtm")
    assert "lgtm" in mr(fake_gitlab)["labels"]
    push_to_mr(fake_gitlab, {"src/a.java": code(4)})
    assert "lgtm" not in mr(fake_gitlab)["labels"]
    note("alice", "/lgtm cancel")  # the author may cancel; nothing to remove, nothing refused
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 1  # the first /lgtm


def test_approve_only_from_owners_approvers_and_approved_once_every_path_is_covered(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3), "docs/a.md": "doc\n"}))
    note("bob", "/approve")
    assert "only an OWNERS approver of the changed files may approve" in mr(fake_gitlab)["notes"][-1]["body"]
    note("erin", "/approve")  # docs/ only
    assert "approved" not in mr(fake_gitlab)["labels"]
    note("carol", "/approve")  # the root: everything
    assert "approved" in mr(fake_gitlab)["labels"]
    note("carol", "/approve cancel")
    assert "approved" not in mr(fake_gitlab)["labels"]  # erin alone does not cover src/
    assert review_store.approvers(API, 1) == {"erin"}


def _ready(fake_gitlab, review_config) -> None:
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note("bob", "/lgtm")
    note("carol", "/approve")


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
    note("dave", "/hold")
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert "do-not-merge/hold" in review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1"))
    assert merges(fake_gitlab) == []
    note("dave", "/hold cancel")
    assert len(merges(fake_gitlab)) == 1


def test_a_stale_sha_is_no_error_and_the_next_event_merges(review_config, fake_gitlab, sent, monkeypatch):
    from opsbot.gitlab.api import GitLabClient

    _ready(fake_gitlab, review_config)
    real = GitLabClient.merge

    def someone_pushes_first(self, path, iid, sha, squash):
        fake_gitlab.fake.push(API, "feature/refund", [{"message": "late", "files": {"late.txt": "x\n"}}])
        monkeypatch.setattr(GitLabClient, "merge", real)
        return real(self, path, iid, sha, squash)

    monkeypatch.setattr(GitLabClient, "merge", someone_pushes_first)
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1")) == \
        "!1 not merged: GitLab answered 409"
    newer = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})  # the push's build
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=newer, id="p2")).startswith("!1 merged at")
    assert merges(fake_gitlab)[-1]["body"]["sha"] == newer["object_attributes"]["sha"]


def test_an_edited_comment_does_nothing(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    calls = len(fake_gitlab.fake.calls)
    assert note("bob", "/lgtm", action="update") == "ignored: an edited comment"
    assert len(fake_gitlab.fake.calls) == calls


def test_a_redelivered_note_has_one_effect(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    for _ in range(2):
        note("alice", "/lgtm\n/label kind/nonsense", note_id=4242)
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 2  # two refusals, once


def test_labels_only_from_the_allowed_list(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note("bob", "/label kind/bug\n/label release-blocker")
    found = mr(fake_gitlab)
    assert "kind/bug" in found["labels"] and "release-blocker" not in found["labels"]
    assert "`release-blocker` is not a label this project lets commands set" in found["notes"][-1]["body"]
    note("bob", "/remove-label kind/bug")
    assert "kind/bug" not in mr(fake_gitlab)["labels"]


def test_assign_unassign_and_cc(review_config, fake_gitlab, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}))
    note("bob", "/assign @erin\n/assign")
    assert [u["username"] for u in mr(fake_gitlab)["assignees"]] == ["erin", "bob"]
    note("bob", "/unassign")
    assert [u["username"] for u in mr(fake_gitlab)["assignees"]] == ["erin"]
    note("bob", "/cc @frank @nobody")
    assert "no GitLab user `nobody`" in mr(fake_gitlab)["notes"][-1]["body"]
    note("bob", "/cc @frank")
    assert "frank" in [u["username"] for u in mr(fake_gitlab)["reviewers"]]


def test_retest_restarts_the_latest_drone_build_of_the_source_branch(review_config, fake_gitlab, fake_drone, sent):
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, source="feature/refund"))
    note("alice", "/retest")
    [latest, restart] = [(c["method"], c["path"], c["query"]) for c in fake_drone.calls]
    assert latest == ("GET", "/api/repos/shop/shop-api/builds/latest", {"branch": ["feature/refund"]})
    assert restart[0] == "POST" and restart[1].startswith("/api/repos/shop/shop-api/builds/")


def test_projects_without_review_are_left_alone(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"src/x.js": "x\n"}, project="shop/shop-web")
    assert mr_job(hook) == "ignored: review automation is off for shop/shop-web"
    assert note("bob", "/lgtm", project="shop/shop-web") == "ignored: review automation is off for shop/shop-web"
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
    fake_gitlab.fake.note_times = [__import__("time").time()] * 60
    with pytest.raises(GitLabUnavailable):
        note("alice", "/lgtm", note_id=77)
    fake_gitlab.fake.note_times = []
    note("alice", "/lgtm", note_id=77)  # the retry posts the refusal once
    assert len([n for n in mr(fake_gitlab)["notes"] if "was not done" in n["body"]]) == 1


def test_a_branch_pipeline_finds_its_merge_request_by_ref_and_sha(review_config, fake_gitlab, sent):
    # Drone reports commit statuses: GitLab's Pipeline Hook then names the branch and sha, not the merge request
    _ready(fake_gitlab, review_config)
    pipeline = fake_gitlab.fake.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    pipeline.pop("merge_request")
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=pipeline, id="p1")).startswith("!1 merged at")
    other = {**pipeline, "object_attributes": {**pipeline["object_attributes"], "ref": "elsewhere"}}
    assert review_jobs.on_pipeline(Job(kind="gitlab.pipeline", payload=other, id="p2")) == \
        "ignored: a pipeline of no open merge request's head"


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
    real = GitLabClient.update_merge_request
    monkeypatch.setattr(GitLabClient, "update_merge_request", lambda *a, **k: (_ for _ in ()).throw(
        GitLabUnavailable("GitLab answered 503")))
    with pytest.raises(GitLabUnavailable):
        note("bob", "/retest\n/hold", note_id=555)  # the build restarts, then labelling fails
    monkeypatch.setattr(GitLabClient, "update_merge_request", real)
    note("bob", "/retest\n/hold", note_id=555)  # the queue's retry
    assert len([c for c in fake_drone.calls if c["method"] == "POST"]) == 1
    assert "do-not-merge/hold" in mr(fake_gitlab)["labels"]


def test_a_push_that_touches_files_no_approver_covered_drops_approved(review_config, fake_gitlab, sent):
    hook = open_mr(fake_gitlab, {"docs/a.md": "doc\n"})
    mr_job(hook)
    note("erin", "/approve")  # docs/ is all the merge request changes
    assert "approved" in mr(fake_gitlab)["labels"]
    push_to_mr(fake_gitlab, {"src/a.java": code(2)})
    assert "approved" not in mr(fake_gitlab)["labels"]  # src/ needs carol


def test_review_roles_restrict_a_command_to_people_with_a_role(aws, fake_gitlab, fake_drone, sent):
    documents = unit_support.example_documents(drone=fake_drone.url)
    next(d for d in documents if d.name == "opsbot.yaml").data["gitlab"]["url"] = fake_gitlab.url
    project = next(d for d in documents if d.name == "projects/shop-api.yaml").data
    project["review"]["roles"] = {"approve": ["deployer"], "retest": ["developer"]}
    store.save(documents, "roles")
    mr_job(open_mr(fake_gitlab, {"src/a.java": code(3)}, author="bob"))
    note("dave", "/retest")  # no people[].git names dave
    refusal = mr(fake_gitlab)["notes"][-1]["body"]
    assert "`/retest` needs the role developer, and `dave` is in no `people[].git`" in refusal
    note("carol", "/approve")  # an OWNERS approver and a deployer
    assert "approved" in mr(fake_gitlab)["labels"]
    assert [c for c in fake_drone.calls if c["method"] == "POST"] == []


def test_review_roles_name_existing_commands(aws):
    from opsbot.config.model import ConfigError

    documents = unit_support.example_documents()
    next(d for d in documents if d.name == "projects/shop-api.yaml").data["review"]["roles"] = {"merge": ["ops"]}
    with pytest.raises(ConfigError, match="review.roles: no slash command 'merge'"):
        store.save(documents, "bad-roles")
