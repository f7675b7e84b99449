"""GitOps through the local stack: pushes to the config repo in the fake GitLab are synced into the store (or
refused with file and line), `drone init` opens one merge request, and a failed image scan is told with its
counts. The fake GitLab checks PRIVATE-TOKEN and answers GitLab's JSON; every push hook starts from the
fixture tests/fixtures/gitlab/push.json."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

OPS_TOKEN = "local-shop-backend"  # the ops group (settings.ops_robot) is the shop-backend group
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "drone"
QUIET_PERIOD = 2.0


def _texts(stack, needle: str, token: str = OPS_TOKEN) -> list[str]:
    return [m["message"]["markdown"]["text"] for m in stack.messages_mentioning(needle, token)]


def _project(name: str, language: str = "en") -> str:
    return f"repo: shop/{name}\nrobot: shop-backend\nlanguage: {language}\nnotify:\n  on_failure: true\n"


def test_a_valid_push_is_synced_and_the_next_notification_uses_it(stack):
    hook = stack.push({"projects/gitops-api.yaml": _project("gitops-api")}, message="config: add gitops-api")
    response = stack.post_gitlab(hook)
    assert response.status_code == 202, response.text
    assert stack.wait_for(lambda: stack.config_versions()[0] == hook["after"]), "the push was not synced"
    [told] = stack.wait_for(lambda: _texts(stack, f"配置已同步 · {hook['after'][:8]}"))
    assert "`projects/gitops-api.yaml`" in told and "新增项目：gitops-api" in told
    assert all(c["authorized"] for c in stack.gitlab_calls())  # every API call carried the PRIVATE-TOKEN

    number = stack.next_number()
    assert stack.post_drone(stack.drone_body("build_failure", number, repo="gitops-api")).status_code == 202
    found = stack.wait_for(lambda: stack.messages_mentioning(f"gitops-api #{number}", OPS_TOKEN))
    assert "Build failed · gitops-api" in found[0]["message"]["markdown"]["text"]  # the new project, in English


def test_an_invalid_push_changes_nothing_and_names_file_and_line(stack):
    before = stack.config_versions()[0]
    hook = stack.push({"projects/broken-api.yaml": "repo: shop/broken-api\nrobot: nobody\n"}, message="add broken")
    assert stack.post_gitlab(hook).status_code == 202
    [told] = stack.wait_for(lambda: _texts(stack, f"配置没有同步 · {hook['after'][:8]}"))
    assert "[projects/broken-api.yaml:2](" in told and "project.robot 'nobody' is not defined under robots" in told
    assert "@alice.wang" in told  # the pusher
    assert stack.config_versions()[0] == before

    # The repo is broken until someone fixes it; a fix (here, the file gone) syncs again.
    fix = stack.push({"projects/broken-api.yaml": None}, message="remove broken")
    assert stack.post_gitlab(fix).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == fix["after"])


def test_config_rollback_commits_the_version_in_the_config_repo_and_its_push_is_synced(stack):
    """xiaoming (admin) rolls a project change back: opsbot commits the earlier files on the branch, GitLab's
    webhook sends that push, and it is synced like any other: Git stays the truth."""
    added = stack.push({"projects/rollback-api.yaml": _project("rollback-api")}, message="config: add rollback-api")
    assert stack.post_gitlab(added).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == added["after"])
    changed = stack.push({"projects/rollback-api.yaml": _project("rollback-api", "zh")}, message="rollback-api: zh")
    assert stack.post_gitlab(changed).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == changed["after"])
    response, body = stack.chat(f"config rollback {added['after'][:8]}", "xiaoming")
    assert response.status_code == 200
    committed = stack.wait_for(
        lambda: [m for m in stack.session_messages(body["sessionWebhook"]) if "Committed" in str(m)]
    )
    assert committed, "no rollback commit was reported"
    head = stack.http.get(f"{stack.gitlab}/_control/branches", params={"project": stack.config_repo}, timeout=5).json()[
        "branches"
    ]["main"]
    assert stack.gitlab_file(stack.config_repo, "projects/rollback-api.yaml", head) == _project("rollback-api")
    # the fake GitLab's webhook delivers the push of opsbot's own commit: synced, told to the ops group
    assert stack.wait_for(lambda: stack.config_versions()[0] == head), "the rollback's push was not synced"
    [told] = stack.wait_for(lambda: _texts(stack, f"配置已同步 · {head[:8]}"))
    assert "opsbot" in told and "Roll back opsbot config to" in told


def test_the_same_push_delivered_twice_syncs_once(stack):
    hook = stack.push({"projects/twice-api.yaml": _project("twice-api")})
    key = f"push-{stack.next_number()}"
    assert [stack.post_gitlab(hook, key).json()["status"] for _ in range(2)] == ["queued", "duplicate"]
    # GitLab's "resend" of the same push comes with a new delivery id: it is queued, but syncs nothing again
    assert stack.post_gitlab(hook, f"{key}-resent").json()["status"] == "queued"
    assert stack.wait_for(lambda: _texts(stack, f"配置已同步 · {hook['after'][:8]}"))
    time.sleep(QUIET_PERIOD)
    assert len(_texts(stack, f"配置已同步 · {hook['after'][:8]}")) == 1
    assert stack.config_versions().count(hook["after"]) == 2  # the current item and one saved version


def test_a_push_of_more_than_20_commits_is_read_through_compare(stack):
    commits = [{"README.md": f"# opsbot config\n\nrevision {i}\n"} for i in range(25)]
    commits[2] = {"projects/long-push-api.yaml": _project("long-push-api", "zh")}
    hook = stack.push(*commits, message="config: many")
    assert (len(hook["commits"]), hook["total_commits_count"]) == (20, 25)
    assert not any("projects/long-push-api.yaml" in c["added"] for c in hook["commits"])  # only compare sees it
    assert stack.post_gitlab(hook).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == hook["after"])
    compares = stack.gitlab_calls("GET", "/repository/compare")
    assert [(c["query"]["from"], c["query"]["to"]) for c in compares][-1] == (hook["before"], hook["after"])
    [told] = stack.wait_for(lambda: _texts(stack, f"配置已同步 · {hook['after'][:8]}"))
    assert "新增项目：long-push-api" in told


def _init(stack, project: str, language: str = "") -> tuple[dict, str]:
    """`drone init` in chat; (the merge request, the reply that linked it)."""
    response, sent = stack.chat(f"drone init {project} {language}".strip())
    assert "`drone init`" in response.json()["markdown"]["text"]  # acknowledged; the worker does the rest
    [reply] = stack.wait_for(lambda: [m["markdown"]["text"] for m in stack.session_messages(sent["sessionWebhook"])])
    # Other tests open merge requests in the same repos: the one to check is the one the reply links.
    [request] = [r for r in stack.gitlab_merge_requests(f"shop/{project}") if f"[!{r['iid']}]({r['web_url']})" in reply]
    return request, reply


def test_drone_init_opens_one_branch_one_commit_one_merge_request_and_posts_the_link(stack):
    request, reply = _init(stack, "shop-api", "java")
    assert "Opened merge request" in reply
    writes = {
        suffix: [c for c in stack.gitlab_calls("POST", suffix) if "shop%2Fshop-api" in c["path"]]
        for suffix in ("/repository/branches", "/repository/commits", "/merge_requests")
    }
    assert [len(found) for found in writes.values()] == [1, 1, 1]
    [commit] = writes["/repository/commits"]
    assert [(a["action"], a["file_path"]) for a in commit["body"]["actions"]] == [("create", ".drone.yml")]
    assert commit["body"]["branch"] == request["source_branch"] == writes["/repository/branches"][0]["body"]["branch"]
    assert request["target_branch"] == "main" and request["state"] == "opened"


def test_generated_pipelines_for_the_three_languages_match_the_golden_files(stack):
    for project, language in (("shop-api", "java"), ("shop-web", "node"), ("shop-recommend", "python")):
        request, _ = _init(stack, project)  # a second init of shop-api finds its merge request open
        content = stack.gitlab_file(f"shop/{project}", ".drone.yml", request["source_branch"])
        # The golden files are the example's, whose environments are released through Git; this stack's deploy with
        # Drone, so their promote pipelines follow the build pipeline.
        assert content.startswith((GOLDEN / f"{language}.drone.yml").read_text(encoding="utf-8")), project
        docs = list(yaml.safe_load_all(content))
        assert [s["name"] for s in docs[0]["steps"]] == ["build", "test", "publish", "scan"]
        assert docs[1]["name"] == "promote-staging" and docs[1]["trigger"]["event"] == ["promote", "rollback"]


def test_a_failed_image_scan_is_told_with_its_counts(stack):
    import json

    number = stack.next_number()
    delivery = json.loads(stack.drone_body("build_failure", number))
    steps = delivery["build"]["stages"][0]["steps"]
    steps[1].update(status="success", exit_code=0)
    steps[3].update(status="failure", exit_code=1, started=1732521720, stopped=1732521750)
    stack.drone_add_builds("shop/shop-api", [{"number": number, "status": "failure"}])
    stack.drone_log(
        "shop/shop-api",
        number,
        1,
        4,
        [
            "registry.example.com/shop/shop-api:9c8d7e6f (debian 12.7)\n",
            "=" * 58 + "\n",
            "Total: 12 (UNKNOWN: 0, LOW: 5, MEDIUM: 4, HIGH: 2, CRITICAL: 1)\n",
        ],
    )
    assert stack.post_drone(json.dumps(delivery).encode()).status_code == 202
    found = stack.wait_for(lambda: stack.messages_mentioning(f"shop-api #{number}", OPS_TOKEN))
    text = found[0]["message"]["markdown"]["text"]
    assert "**失败步骤**: default › scan" in text
    assert "**镜像扫描**: ❌ 未通过（default › scan） · CRITICAL 1 · HIGH 2 · MEDIUM 4 · LOW 5 · UNKNOWN 0" in text
