""".drone.yml delivered as a merge request through the (fake) GitLab API: one branch, one commit through the
commits API, one merge request, whatever is retried; never an overwrite; `sync` only when the output changed;
and the opt-in merge request on a push to a project without .drone.yml."""

from __future__ import annotations

import pytest
import yaml
from unit_support import ROOT, fixture_json

from local.fake_gitlab import ApiError
from opsbot.gitops import jobs as gitops_jobs
from opsbot.gitops import merge_requests, pipelines
from opsbot.jobs.model import Job, RetryLater

GOLDEN = ROOT / "tests" / "golden" / "drone"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def writes(fake_gitlab) -> dict[str, list[dict]]:
    """The write calls by kind: branches, commits, merge requests."""
    posts = fake_gitlab.calls("POST")
    return {
        kind: [c for c in posts if c["path"].endswith(suffix)]
        for kind, suffix in (
            ("branches", "/repository/branches"),
            ("commits", "/repository/commits"),
            ("merge_requests", "/merge_requests"),
        )
    }


def counts(fake_gitlab) -> tuple[int, int, int]:
    found = writes(fake_gitlab)
    return len(found["branches"]), len(found["commits"]), len(found["merge_requests"])


def test_init_opens_one_branch_one_commit_and_one_merge_request(gitops_config, fake_gitlab):
    proposal = merge_requests.init(gitops_config, gitops_config.projects["shop-api"], "java", "Alice Wang (DingTalk)")
    assert proposal.outcome == "opened" and proposal.iid == 1 and proposal.language == "java"
    assert proposal.url == f"{fake_gitlab.url}/shop/shop-api/-/merge_requests/1"
    found = writes(fake_gitlab)
    assert counts(fake_gitlab) == (1, 1, 1)
    branch = found["branches"][0]["body"]
    assert branch["ref"] == "main" and branch["branch"].startswith("opsbot/drone-yml-")
    commit = found["commits"][0]["body"]
    assert commit["branch"] == branch["branch"]
    assert [(a["action"], a["file_path"]) for a in commit["actions"]] == [("create", ".drone.yml")]
    assert commit["actions"][0]["content"] == (GOLDEN / "java.drone.yml").read_text(encoding="utf-8")
    request = found["merge_requests"][0]["body"]
    assert (request["source_branch"], request["target_branch"]) == (branch["branch"], "main")
    assert request["title"] == "ci: add .drone.yml from opsbot's java template"
    assert request["remove_source_branch"] is True
    assert (
        "docker_username" in request["description"] and "Requested by Alice Wang (DingTalk)" in request["description"]
    )
    assert fake_gitlab.file("shop/shop-api", ".drone.yml", "main") is None  # nothing lands until someone merges


def test_init_again_finds_the_open_merge_request(gitops_config, fake_gitlab):
    project = gitops_config.projects["shop-web"]
    first = merge_requests.init(gitops_config, project)
    again = merge_requests.init(gitops_config, project)
    assert (first.outcome, again.outcome) == ("opened", "already open")
    assert again.url == first.url and counts(fake_gitlab) == (1, 1, 1)
    assert first.language == "node" and first.reason == "detected from package.json"


def test_a_retry_after_a_failure_halfway_does_not_repeat_what_was_done(gitops_config, fake_gitlab, monkeypatch):
    original = fake_gitlab.fake._create_merge_request
    failures = iter([ApiError(503, "503 Service Unavailable")])

    def flaky(repo, args):
        if (error := next(failures, None)) is not None:
            raise error
        return original(repo, args)

    monkeypatch.setattr(fake_gitlab.fake, "_create_merge_request", flaky)
    project = gitops_config.projects["shop-recommend"]
    with pytest.raises(RetryLater):
        merge_requests.init(gitops_config, project)
    assert merge_requests.init(gitops_config, project).outcome == "opened"
    # the second run found the branch made and the file committed: one of each, and one merge request
    branches, commits, requests = counts(fake_gitlab)
    assert (branches, commits) == (2, 1) and requests == 2  # two attempts at the merge request, one succeeded
    assert len(fake_gitlab.fake.repos["shop/shop-recommend"].merge_requests) == 1


def test_init_never_overwrites_an_existing_drone_yml(gitops_config, fake_gitlab):
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": "kind: pipeline\n"}}])
    proposal = merge_requests.init(gitops_config, gitops_config.projects["shop-api"])
    assert proposal.outcome == "exists" and counts(fake_gitlab) == (0, 0, 0)


def test_sync_without_a_drone_yml_says_so(gitops_config, fake_gitlab):
    assert merge_requests.sync(gitops_config, gitops_config.projects["shop-api"]).outcome == "missing"


def test_sync_when_the_file_is_the_templates_output_does_nothing(gitops_config, fake_gitlab):
    golden = (GOLDEN / "java.drone.yml").read_text(encoding="utf-8")
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": golden}}])
    proposal = merge_requests.sync(gitops_config, gitops_config.projects["shop-api"])
    assert proposal.outcome == "up to date" and counts(fake_gitlab) == (0, 0, 0)


def test_sync_proposes_the_difference_when_the_output_changed(gitops_config, fake_gitlab):
    old = (GOLDEN / "java.drone.yml").read_text(encoding="utf-8").replace("eclipse-temurin-17", "eclipse-temurin-11")
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": old}}])
    proposal = merge_requests.sync(gitops_config, gitops_config.projects["shop-api"], "Carol Zhang (DingTalk)")
    assert proposal.outcome == "opened"
    found = writes(fake_gitlab)
    assert [a["action"] for a in found["commits"][0]["body"]["actions"]] == ["update"]
    description = found["merge_requests"][0]["body"]["description"]
    assert "This merge request updates `.drone.yml`" in description
    assert "```diff" in description and "-  image: maven:3.9-eclipse-temurin-11" in description
    assert "+  image: maven:3.9-eclipse-temurin-17" in description
    assert found["merge_requests"][0]["body"]["title"] == "ci: update .drone.yml from opsbot's java template"
    assert merge_requests.sync(gitops_config, gitops_config.projects["shop-api"]).outcome == "already open"


def test_sync_keeps_the_template_the_file_came_from(gitops_config, fake_gitlab):
    project = gitops_config.projects["shop-web"]  # no pipeline.language: node would be detected
    python = pipelines.render(project, "python", {"package.json"})
    fake_gitlab.fake.push("shop/shop-web", "main", [{"message": "ci", "files": {".drone.yml": python}}])
    assert merge_requests.sync(gitops_config, project).outcome == "up to date"


def test_the_description_warns_when_there_is_no_dockerfile(gitops_config):
    project = gitops_config.projects["shop-api"]
    generated = pipelines.generate(project, {"pom.xml"})
    assert "has no `Dockerfile`" in merge_requests.describe(project, generated, {"pom.xml"}, "x")
    assert "has no `Dockerfile`" not in merge_requests.describe(project, generated, {"pom.xml", "Dockerfile"}, "x")


def test_the_generated_file_parses_as_drone_yaml(gitops_config, fake_gitlab):
    merge_requests.init(gitops_config, gitops_config.projects["shop-recommend"])
    content = writes(fake_gitlab)["commits"][0]["body"]["actions"][0]["content"]
    assert [d["name"] for d in yaml.safe_load_all(content)] == ["build"]  # staging is released through Git


# --- a push to a project without .drone.yml (pipeline.init_on_push) ---------------------------------------


def push_hook(fake_gitlab, repo: str, branch: str = "main") -> dict:
    pushed = fake_gitlab.fake.push(repo, branch, [{"message": "feat: x", "files": {"src/x.js": "x"}}])
    return {**fixture_json("gitlab/push.json"), **pushed}


def test_a_push_to_an_opted_in_project_opens_the_merge_request_and_tells_the_group_once(
    gitops_config, fake_gitlab, sent
):
    first = push_hook(fake_gitlab, "shop/shop-web")
    assert gitops_jobs.on_push(Job(kind="gitlab.push", payload=first, id="p1")) == "opened merge request !1"
    assert gitops_jobs.on_push(Job(kind="gitlab.push", payload=first, id="p2")) == "opened merge request !1"
    second = push_hook(fake_gitlab, "shop/shop-web")
    assert (
        gitops_jobs.on_push(Job(kind="gitlab.push", payload=second, id="p3"))
        == ".drone.yml merge request: already open"
    )
    assert counts(fake_gitlab) == (1, 1, 1)
    [(robot, message)] = sent  # the project's group, once
    assert robot == "shop-backend"
    assert "shop-web has no .drone.yml yet" in message["markdown"]["text"]
    assert f"{fake_gitlab.url}/shop/shop-web/-/merge_requests/1" in message["markdown"]["text"]


def test_pushes_that_do_not_qualify_open_nothing(gitops_config, fake_gitlab, sent):
    feature = push_hook(fake_gitlab, "shop/shop-web", branch="feature/y")
    assert gitops_jobs.on_push(Job(kind="gitlab.push", payload=feature)) == "ignored: not a push to the default branch"
    not_opted_in = push_hook(fake_gitlab, "shop/shop-api")
    assert gitops_jobs.on_push(Job(kind="gitlab.push", payload=not_opted_in)).startswith("ignored")
    assert counts(fake_gitlab) == (0, 0, 0) and sent == []
