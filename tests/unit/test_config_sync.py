"""Config sync from the config repo: a push read through the (fake) GitLab API at its commit, validated whole,
stored with the commit sha as version; broken pushes change nothing and are reported with file and line."""

from __future__ import annotations

import json
import re

import pytest
from unit_support import fixture_json, sqs_event

from opsbot.config import store
from opsbot.gitops import jobs as gitops_jobs
from opsbot.jobs import queue
from opsbot.jobs.model import Job, PermanentFailure, RetryLater

CONFIG_REPO = "platform/opsbot-config"
NEW_PROJECT = "repo: shop/new-api\nrobot: shop-backend\nlanguage: en\n"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def push(
    fake_gitlab,
    *changes: dict,
    branch: str = "main",
    repo: str = CONFIG_REPO,
    user: dict | None = None,
    message: str = "config: change",
) -> dict:
    """Commit each `changes` (path -> text, None deletes) in the fake, and the Push Hook GitLab sends for it,
    laid over the fixture so every field GitLab sends is there."""
    commits = [
        {"message": f"{message} {i + 1}" if len(changes) > 1 else message, "files": c} for i, c in enumerate(changes)
    ]
    return {**fixture_json("gitlab/push.json"), **fake_gitlab.fake.push(repo, branch, commits, user)}


def run(hook: dict, job_id: str = "job-1") -> str:
    return gitops_jobs.on_push(Job(kind="gitlab.push", payload=hook, id=job_id))


def texts(sent) -> list[str]:
    return [message["markdown"]["text"] for _, message in sent]


def test_a_valid_push_becomes_the_stored_config_with_the_commit_as_version(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT}, message="config: add new-api")
    assert run(hook) == f"synced version {hook['after'][:8]}"
    config = store.load()
    assert config.version == hook["after"]
    assert config.projects["new-api"].language == "en" and "shop-api" in config.projects
    assert store.history()[0].source == "push by alice: config: add new-api"
    assert store.history()[1].version == gitops_config.version  # the previous version is kept
    [(robot, message)] = sent
    assert robot == "shop-backend"
    text = message["markdown"]["text"]
    assert f"配置已同步 · {hook['after'][:8]}" in text and "`projects/new-api.yaml`" in text
    assert "新增项目：new-api" in text and f"config rollback {gitops_config.version[:8]}" in text


def test_the_whole_config_is_validated_not_only_the_changed_file(gitops_config, fake_gitlab, sent):
    # Renaming the robot in opsbot.yaml breaks every project file that names it, none of which the push touched.
    global_file = fake_gitlab.file(CONFIG_REPO, "opsbot.yaml")
    hook = push(
        fake_gitlab,
        {
            "opsbot.yaml": global_file.replace("  shop-backend:", "  shop-team:").replace(
                "ops_robot: shop-backend", "ops_robot: shop-team"
            )
        },
    )
    assert run(hook).startswith("invalid: 4 problem(s)")
    assert store.load().version == gitops_config.version
    text = texts(sent)[0]
    for project in ("shop-api", "shop-recommend", "shop-search", "shop-web"):
        lines = fake_gitlab.file(CONFIG_REPO, f"projects/{project}.yaml").splitlines()
        line = next(
            i for i, text in enumerate(lines) if text.startswith(("robot: shop-backend", "robots: [shop-backend"))
        )
        assert f"[projects/{project}.yaml:{line + 1}](" in text
    assert text.count("'shop-backend' is not defined under robots") == 4


def test_an_invalid_file_changes_nothing_and_the_pusher_hears_file_and_line(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": "repo: shop/new-api\nrobot: ghost\n"}, message="add new-api")
    assert run(hook) == f"invalid: 1 problem(s); version {gitops_config.version[:8]} stays"
    assert store.load().version == gitops_config.version and "new-api" not in store.load().projects
    assert len(store.history()) == 1
    [(robot, message)] = sent
    assert robot == "shop-backend"  # the ops group
    text = message["markdown"]["text"]
    blob = f"{fake_gitlab.url}/platform/opsbot-config/-/blob/{hook['after']}/projects/new-api.yaml#L2"
    assert f"- [projects/new-api.yaml:2]({blob}): project.robot 'ghost' is not defined under robots" in text
    assert f"opsbot 继续使用版本 `{gitops_config.version[:8]}`" in text
    assert message["at"]["atUserIds"] == ["alice.wang"] and "@alice.wang" in text  # the pusher, by git identity


def test_a_yaml_syntax_error_is_reported_with_its_line(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/shop-web.yaml": "repo: shop/shop-web\nrobot: [shop-backend\n"})
    assert run(hook).startswith("invalid")
    assert "[projects/shop-web.yaml:3](" in texts(sent)[0] and "YAML syntax" in texts(sent)[0]


def test_a_deleted_project_file_removes_the_project(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/shop-web.yaml": None})
    assert run(hook).startswith("synced")
    assert set(store.load().projects) == {"shop-api", "shop-recommend", "shop-search"}
    assert "移除项目：shop-web" in texts(sent)[0]


def test_pushes_to_other_branches_or_repos_are_ignored_without_calling_gitlab(gitops_config, fake_gitlab, sent):
    other_branch = push(fake_gitlab, {"projects/shop-web.yaml": None}, branch="feature/x")
    other_repo = push(fake_gitlab, {"README.md": "hi"}, repo="shop/shop-api")
    fake_gitlab.fake.calls.clear()
    assert run(other_branch) == "ignored: feature/x is not the config branch main"
    assert run(other_repo) == "ignored: no GitOps for pushes to shop/shop-api"
    assert fake_gitlab.fake.calls == [] and sent == []
    assert store.load().version == gitops_config.version


def test_a_push_that_touches_no_config_file_is_not_synced(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"README.md": "# config\n\nnow with docs\n", "projects/notes.txt": "todo"})
    fake_gitlab.fake.calls.clear()
    assert run(hook) == "no config file changed"
    assert fake_gitlab.fake.calls == [] and sent == []


def test_a_push_of_more_than_20_commits_asks_the_compare_api(gitops_config, fake_gitlab, sent):
    changes = [{"README.md": f"# config\n\nrevision {i}\n"} for i in range(25)]
    changes[2] = {
        "projects/shop-web.yaml": fake_gitlab.file(CONFIG_REPO, "projects/shop-web.yaml").replace(
            "language: en", "language: zh"
        )
    }
    hook = push(fake_gitlab, *changes)
    assert hook["total_commits_count"] == 25 and len(hook["commits"]) == 20
    # the listed (newest) 20 commits only touch the README: without compare, the change would be missed
    assert all(c["modified"] == ["README.md"] for c in hook["commits"])
    assert run(hook).startswith("synced")
    compares = fake_gitlab.calls("GET", "/repository/compare")
    assert [(c["query"]["from"], c["query"]["to"]) for c in compares] == [(hook["before"], hook["after"])]
    assert store.load().version == hook["after"]
    assert store.load().projects["shop-web"].language == "zh"
    assert "`projects/shop-web.yaml`" in texts(sent)[0]


def test_a_push_of_20_commits_or_fewer_does_not_need_compare(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, *[{"projects/new-api.yaml": NEW_PROJECT + f"# {i}\n"} for i in range(20)])
    assert run(hook).startswith("synced")
    assert fake_gitlab.calls("GET", "/repository/compare") == []


def test_the_same_push_twice_syncs_once(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    first = run(hook, "delivery-1")
    reads = len(fake_gitlab.calls("GET", "/raw"))
    second = run(hook, "delivery-2")  # GitLab sent it again with new delivery ids
    assert first == second == f"synced version {hook['after'][:8]}"
    assert len(fake_gitlab.calls("GET", "/raw")) == reads  # nothing read again
    assert [v.version for v in store.history()].count(hook["after"]) == 1
    assert len(sent) == 1  # and the group was told once


def test_an_older_push_retried_after_a_newer_one_does_not_put_the_old_config_back(gitops_config, fake_gitlab, sent):
    older = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    newer = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT.replace("language: en", "language: zh")})
    assert run(newer, "newer").startswith("synced")
    assert run(older, "older") == f"superseded: main is now at {newer['after'][:8]}"
    assert store.load().version == newer["after"]
    assert store.load().projects["new-api"].language == "zh"


def test_a_new_branch_push_reads_everything(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    hook.update(before="0" * 40, commits=[], total_commits_count=0)
    assert run(hook).startswith("synced")


def test_deleting_the_config_branch_keeps_the_stored_config(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"README.md": "x"})
    hook.update(after="0" * 40)
    assert run(hook) == "ignored: the config branch was deleted; the stored config stays"
    assert store.load().version == gitops_config.version


def test_gitlab_down_is_retried_and_nothing_is_half_done(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    fake_gitlab.fake.down = True
    with pytest.raises(RetryLater):
        run(hook)
    assert store.load().version == gitops_config.version and sent == []
    fake_gitlab.fake.down = False
    assert run(hook).startswith("synced")  # the retry is not taken for a duplicate


def test_gitlab_refusing_is_reported_and_parked(gitops_config, fake_gitlab, sent):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    fake_gitlab.fake.statuses = [403]
    with pytest.raises(PermanentFailure, match="403"):
        run(hook)
    assert "GitLab 拒绝了 opsbot 的请求" in texts(sent)[0]
    assert run(hook).startswith("synced")  # redriven after the fix, it syncs: the refusal was not remembered


def test_a_pusher_not_in_people_is_named_not_mentioned(gitops_config, fake_gitlab, sent):
    hook = push(
        fake_gitlab,
        {"projects/new-api.yaml": "repo: shop/new-api\n"},
        user={"name": "Zhao Liu", "username": "zliu", "email": "zliu@example.com"},
    )
    run(hook)
    [(_, message)] = sent
    assert "Zhao Liu 推送的" in message["markdown"]["text"] and message["at"]["atUserIds"] == []


def test_a_config_in_a_folder_of_a_bigger_repo(gitops_config, fake_gitlab, sent, monkeypatch):
    from unit_support import EXAMPLE_CONFIG

    from local.gitlab_seed import config_repo_files

    files = config_repo_files(EXAMPLE_CONFIG)
    files["opsbot.yaml"] = fake_gitlab.point_at_me(files["opsbot.yaml"]).replace(
        "config_repo: platform/opsbot-config", "config_repo: platform/infra\n  config_path: opsbot"
    )
    fake_gitlab.fake.seed("platform/infra", {f"opsbot/{name}": text for name, text in files.items()})
    from opsbot.config.yaml_source import parse_files

    store.save(parse_files({k: v for k, v in files.items()})[0], "seed")
    hook = push(
        fake_gitlab,
        {"opsbot/projects/new-api.yaml": NEW_PROJECT, "terraform/main.tf": "# infra"},
        repo="platform/infra",
    )
    assert run(hook).startswith("synced")
    assert "new-api" in store.load().projects and store.load().gitlab.config_path == "opsbot"


def test_a_body_that_is_not_a_push_is_parked(gitops_config):
    with pytest.raises(PermanentFailure, match="Push Hook job that ingress should have refused"):
        run({"object_kind": "push", "project": {}})


def test_through_the_worker_lambda(gitops_config, fake_gitlab, sent, aws, handlers, lambda_context):
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    queue.enqueue(Job(kind="gitlab.push", payload=hook))
    response = handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
    assert response["batchItemFailures"] == []
    assert store.load().version == hook["after"]
    assert aws.dead_letters() == []


def test_the_fake_push_hook_has_every_field_of_gitlabs(fake_gitlab):
    fixture = fixture_json("gitlab/push.json")
    hook = fake_gitlab.fake.push(CONFIG_REPO, "main", [{"message": "x", "files": {"a": "b"}}])
    assert set(fixture) <= set(hook)
    assert set(fixture["project"]) <= set(hook["project"])
    assert set(fixture["commits"][0]) <= set(hook["commits"][0])
    assert json.loads(json.dumps(hook)) == hook


# --- crash windows: a slow older job, and a config too large to store -------------------------------------------


def test_a_slow_older_sync_that_checked_the_head_before_a_newer_one_synced_does_not_overwrite_it(
    gitops_config, fake_gitlab, sent, monkeypatch
):
    from opsbot.gitlab.api import GitLabClient

    older = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    real_head, newer = GitLabClient.branch_head, {}

    def meanwhile(client, path, branch):
        head = real_head(client, path, branch)  # the older job sees itself at the head ...
        if not newer:  # ... and before it saves, a newer push is synced by another worker
            newer.update(
                push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT.replace("language: en", "language: zh")})
            )
            assert run(newer, "newer").startswith("synced")
        return head

    monkeypatch.setattr(GitLabClient, "branch_head", meanwhile)
    with pytest.raises(RetryLater, match="changed"):
        run(older, "older")
    assert store.load().version == newer["after"] and store.load().projects["new-api"].language == "zh"
    assert run(older, "older") == f"superseded: main is now at {newer['after'][:8]}"  # its retry
    assert [v.version for v in store.history()][:2] == [newer["after"], gitops_config.version]


def test_saves_are_conditional_on_the_stored_sequence(gitops_config):
    _version, documents = store.current_documents()
    seq = store.current().seq
    store.save(documents, "first", based_on=seq)
    with pytest.raises(store.ConfigChanged):
        store.save(documents, "second", based_on=seq)  # what it was based on is no longer current
    assert store.load().version == "first" and [v.version for v in store.history()].count("second") == 0


def test_a_config_too_large_to_store_is_refused_and_the_ops_group_told(gitops_config, fake_gitlab, sent, aws):
    faq = "".join(f"  - {{id: q{n}, question: 'question {n}?', answer: '{'答' * 600}'}}\n" for n in range(250))
    global_file = fake_gitlab.file(CONFIG_REPO, "opsbot.yaml")
    hook = push(fake_gitlab, {"opsbot.yaml": global_file + "faq:\n" + faq})
    outcome = run(hook)
    assert outcome.startswith("invalid: 1 problem(s)")
    assert store.load().version == gitops_config.version
    [(robot, message)] = sent
    text = message["markdown"]["text"]
    assert robot == "shop-backend" and "opsbot.yaml" in text
    # the size, DynamoDB's limit, and where most of it is
    assert re.search(r"opsbot\.yaml\]\([^)]*\): the config takes 4\d\d KB stored, over the 400 KB", text)
    assert aws.dead_letters() == []


def test_a_save_whose_answer_was_lost_is_still_told_by_the_retry(gitops_config, fake_gitlab, sent, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    import opsbot.config.store as store_module

    real_client, lost = store_module.client, []

    class AnswerLost:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def transact_write_items(self, **kwargs):
            answer = self.inner.transact_write_items(**kwargs)
            if not lost:
                lost.append(True)
                raise ReadTimeoutError(endpoint_url="https://dynamodb")
            return answer

    monkeypatch.setattr(store_module, "client", lambda service: AnswerLost(real_client(service)))
    hook = push(fake_gitlab, {"projects/new-api.yaml": NEW_PROJECT})
    with pytest.raises(ReadTimeoutError):
        run(hook)
    assert store.current().version == hook["after"] and sent == []  # saved; the job does not know it
    assert run(hook) == f"synced version {hook['after'][:8]}"  # its retry
    assert len(sent) == 1 and "配置已同步" in texts(sent)[0]
