"""The GitOps chat commands end to end through the DingTalk function and the worker (moto, the fake GitLab):
`drone init`/`drone sync`, `config history`, `config rollback`, and how subcommands are found and permitted.

`config rollback` (issue 17, finding 3): config cannot raise its own editor. A rollback is a commit of an earlier
version's files on the config repo's branch, through GitLab's API, synced like any push (Git stays the truth); only
a version the branch holds; for admins; with `permissions."config rollback".approvals` where the config asks, and
always another admin's approval when it changes `people` or `permissions`."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace

import pytest
import yaml
from test_config_sync import push, run
from unit_support import ROOT, dingtalk_event, fixture_json, json_body, sqs_event, to_body

from opsbot.chat.commands import all_commands
from opsbot.config import store

ALICE, BOB, XIAOMING = "alice.wang", "bob.li", "manager4321"  # deployer, developer, ops + admin
CAROL, DAVE = "carol.zhang", "dave.chen"  # deployer, ops
CONFIG_REPO = "platform/opsbot-config"


@pytest.fixture
def replies(monkeypatch) -> list[dict]:
    """What the worker posts back into the conversation (its session webhook)."""
    found: list[dict] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send_by_session", lambda url, message: found.append(message))
    return found


@pytest.fixture
def chat(aws, handlers, lambda_context, replies):
    """Say `text` as the person with this staff id; returns (the callback's answer, what the worker posted)."""

    def say(text: str, staff_id: str = ALICE) -> tuple[dict, list[str]]:
        message = fixture_json("dingtalk/outgoing_status.json")
        message.update(
            msgId=f"msg-{uuid.uuid4().hex}",
            senderStaffId=staff_id,
            text={"content": f" {text}"},
            sessionWebhookExpiredTime=int(time.time() * 1000) + 3_600_000,
        )
        answer = json_body(handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context))
        before = len(replies)
        jobs = aws.receive()
        if jobs:
            result = handlers.worker.lambda_handler(sqs_event(jobs), lambda_context)
            assert result["batchItemFailures"] == [], result
            for job in jobs:  # done, as Lambda's event source deletes what did not fail
                aws.sqs.delete_message(QueueUrl=aws.work_queue_url, ReceiptHandle=job["ReceiptHandle"])
        return answer, [r["markdown"]["text"] for r in replies[before:]]

    return say


def merge_requests(fake_gitlab, project: str) -> list[dict]:
    return fake_gitlab.fake.repos[project].merge_requests


def test_drone_init_opens_the_merge_request_and_posts_its_link(gitops_config, fake_gitlab, chat):
    answer, posted = chat("drone init shop-api java")
    assert "`drone init` is running" in answer["markdown"]["text"]
    [request] = merge_requests(fake_gitlab, "shop/shop-api")
    assert posted == [posted[0]] and f"[!1]({request['web_url']})" in posted[0]
    assert "Opened merge request" in posted[0] and "java template (asked for)" in posted[0]
    branch = request["source_branch"]
    assert fake_gitlab.file("shop/shop-api", ".drone.yml", branch) == (
        ROOT / "tests/golden/drone/java.drone.yml"
    ).read_text(encoding="utf-8")


def test_drone_init_in_chinese_with_a_detected_language(gitops_config, fake_gitlab, chat):
    _, posted = chat("流水线 初始化 shop-web")
    assert "已为 shop-web 打开合并请求" in posted[0] and "node 模板（detected from package.json）" in posted[0]


def test_drone_init_twice_gives_the_same_merge_request(gitops_config, fake_gitlab, chat):
    chat("drone init shop-recommend")
    _, posted = chat("drone init shop-recommend")
    assert "already open" in posted[0]
    assert len(merge_requests(fake_gitlab, "shop/shop-recommend")) == 1


def test_drone_init_refuses_to_overwrite_and_names_drone_sync(gitops_config, fake_gitlab, chat):
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": "kind: pipeline\n"}}])
    _, posted = chat("drone init shop-api")
    assert "never overwrites" in posted[0] and "`drone sync shop-api`" in posted[0]
    assert merge_requests(fake_gitlab, "shop/shop-api") == []


def test_drone_sync_when_up_to_date_and_when_not(gitops_config, fake_gitlab, chat):
    golden = (ROOT / "tests/golden/drone/java.drone.yml").read_text(encoding="utf-8")
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": golden}}])
    _, posted = chat("drone sync shop-api")
    assert "matches the java template's output" in posted[0]
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": golden + "# mine\n"}}])
    _, posted = chat("drone sync shop-api")
    assert "Opened merge request" in posted[0]
    assert "-# mine" in merge_requests(fake_gitlab, "shop/shop-api")[0]["description"]


def test_an_unknown_language_is_a_usage_error(gitops_config, fake_gitlab, chat):
    _, posted = chat("drone init shop-api cobol")
    assert "there is no cobol template" in posted[0] and fake_gitlab.fake.calls == []


def test_drone_init_needs_the_deployer_role(gitops_config, fake_gitlab, chat):
    answer, posted = chat("drone init shop-api", staff_id=BOB)
    assert "needs the role deployer" in answer["markdown"]["text"] and posted == []
    assert fake_gitlab.fake.calls == []


def test_gitlab_down_is_retried_through_the_queue(gitops_config, fake_gitlab, aws, handlers, lambda_context, chat):
    fake_gitlab.fake.down = True
    message = fixture_json("dingtalk/outgoing_status.json")
    message.update(
        msgId="msg-retry",
        senderStaffId=ALICE,
        text={"content": " drone init shop-api"},
        sessionWebhookExpiredTime=int(time.time() * 1000) + 3_600_000,
    )
    handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context)
    jobs = aws.receive()
    result = handlers.worker.lambda_handler(sqs_event(jobs), lambda_context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [jobs[0]["MessageId"]]
    assert aws.receive() == []  # hidden for its backoff; now make the retry come at once
    aws.sqs.change_message_visibility(
        QueueUrl=aws.work_queue_url, ReceiptHandle=jobs[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    fake_gitlab.fake.down = False
    result = handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
    assert result["batchItemFailures"] == []
    assert len(merge_requests(fake_gitlab, "shop/shop-api")) == 1


def test_no_gitlab_section_gets_a_plain_answer(gitops_config, chat):
    documents = store.current_documents()[1]
    for document in documents:
        if document.name == "opsbot.yaml":
            document.data.pop("gitlab")
        else:
            document.data.pop("pipeline", None)
            document.data.pop("review", None)  # both need GitLab, and so do GitOps environments
            for env in (document.data.get("environments") or {}).values():
                env.pop("deploy", None)
    store.save(documents, "no-gitlab")
    _, posted = chat("drone init shop-api")
    assert "not connected to GitLab" in posted[0]


def test_drone_alone_lists_its_subcommands(gitops_config, chat):
    answer, _ = chat("drone")
    assert "drone init <project> [java|node|python]" in answer["markdown"]["text"]
    answer, _ = chat("drone frobnicate")
    assert "There is no `drone frobnicate`" in answer["markdown"]["text"]


# --- config history and rollback ---------------------------------------------------------------------------


def test_config_history_lists_versions_newest_first(gitops_config, chat):
    store.save(store.current_documents()[1], "b" * 40, source="push by bob: config: tweak")
    answer, _ = chat("config history")
    text = answer["markdown"]["text"]
    assert text.index("`bbbbbbbb` push by bob: config: tweak ← current") < text.index(
        f"`{gitops_config.version[:8]}` seed"
    )


@pytest.fixture
def sent(monkeypatch) -> list:
    found: list = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: found.append((robot.name, message)))
    return found


def _people_edit(fake_gitlab, change) -> dict:
    text = fake_gitlab.file(CONFIG_REPO, "opsbot.yaml")
    config = yaml.safe_load(text)
    change({p["id"]: p for p in config["people"]})
    return {"opsbot.yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False)}


@pytest.fixture
def revoked(gitops_config, fake_gitlab, sent) -> tuple[str, str]:
    """The config repo's history: dave was made admin (and carol too), then dave's admin was revoked in a reviewed
    push. Returns the shas (granted, revoked); both were synced."""

    def grant(people):
        people["dave"]["roles"] = ["ops", "admin"]
        people["carol"]["roles"] = ["developer", "deployer", "admin"]

    granted = push(fake_gitlab, _people_edit(fake_gitlab, grant), message="people: dave and carol are admins")
    assert run(granted, "sync-grant").startswith("synced")
    revoke = push(
        fake_gitlab,
        _people_edit(fake_gitlab, lambda people: people["dave"].update(roles=["ops"])),
        message="people: dave is ops only (reviewed)",
    )
    assert run(revoke, "sync-revoke").startswith("synced")
    assert store.load().person("dave").roles == ("ops",)
    return granted["after"], revoke["after"]


def _commits(fake_gitlab) -> list[dict]:
    return [c for c in fake_gitlab.calls("POST", "/repository/commits") if CONFIG_REPO.replace("/", "%2F") in c["path"]]


def _sync_the_rollback(fake_gitlab) -> str:
    """GitLab's Push Hook for the rollback commit, run as the config repo's webhook delivers it."""
    hook = {**fixture_json("gitlab/push.json"), **fake_gitlab.fake.api_pushes[-1]}
    return run(hook, f"sync-{hook['after'][:8]}")


def test_an_ops_person_cannot_roll_back_to_make_themselves_admin(revoked, fake_gitlab, chat):
    granted, current = revoked
    answer, posted = chat(f"config rollback {granted[:8]}", staff_id=DAVE)
    assert "needs the role admin" in answer["markdown"]["text"] and posted == []
    assert _commits(fake_gitlab) == [] and store.load().version == current
    assert store.load().person("dave").roles == ("ops",)


def test_an_admins_rollback_that_changes_people_needs_another_admins_approval(revoked, fake_gitlab, chat, sent):
    granted, current = revoked
    _, posted = chat(f"config rollback {granted[:8]}", staff_id=XIAOMING)
    [opened] = posted
    request_id = re.search(r"Approval request `(\w+)`", opened).group(1)
    assert "another admin" in opened and "`people`" in opened and _commits(fake_gitlab) == []
    # dave (ops, not admin) may not approve it; nor may xiaoming his own request
    _, posted = chat(f"approve {request_id}", staff_id=DAVE)
    assert "only an admin may approve it" in posted[0] and _commits(fake_gitlab) == []
    _, posted = chat(f"approve {request_id}", staff_id=XIAOMING)
    assert "cannot approve your own request" in posted[0] and _commits(fake_gitlab) == []
    # carol (admin) approves: one commit on the branch, whose files are the granted version's, synced as a push
    _, posted = chat(f"approve {request_id}", staff_id=CAROL)
    [commit] = _commits(fake_gitlab)
    assert commit["body"]["branch"] == "main" and "Approved by carol" in commit["body"]["commit_message"]
    assert "Roll back opsbot config to " + granted[:12] in commit["body"]["commit_message"]
    head = fake_gitlab.fake.repos[CONFIG_REPO].branches["main"]
    assert fake_gitlab.file(CONFIG_REPO, "opsbot.yaml", head) == fake_gitlab.file(CONFIG_REPO, "opsbot.yaml", granted)
    assert "Committed" in posted[0] and "approved by carol" in posted[0]
    assert store.load().version == current  # not stored by the command: the push is what syncs
    assert _sync_the_rollback(fake_gitlab) == f"synced version {head[:8]}"
    assert store.load().version == head and store.load().person("dave").roles == ("ops", "admin")
    assert store.history()[0].source.startswith("push by opsbot: Roll back opsbot config to")
    # approving again (a new message, later) commits nothing more
    chat(f"approve {request_id}", staff_id=CAROL)
    assert len(_commits(fake_gitlab)) == 1


def test_only_a_version_the_config_branch_holds_can_come_back(revoked, fake_gitlab, chat):
    store.save(store.current_documents()[1], "deadbeef" * 5, source="cli load")  # loaded by hand, not in Git
    _, posted = chat("config rollback deadbeef", staff_id=XIAOMING)
    assert "is not on the branch main of the config repo" in posted[0] and _commits(fake_gitlab) == []
    fake_gitlab.fake.push(CONFIG_REPO, "experiment", [{"message": "try", "files": {"projects/x.yaml": "repo: a/x\n"}}])
    _, posted = chat("config rollback ffff", staff_id=XIAOMING)
    assert "no saved config version starts with `ffff`: `config history` lists them" in posted[0]
    store.save(store.current_documents()[1], "abcd1" + "0" * 35, source="cli load")
    store.save(store.current_documents()[1], "abcd2" + "0" * 35, source="cli load")
    _, posted = chat("config rollback abcd", staff_id=XIAOMING)
    assert "abcd fits 2 versions" in posted[0] and _commits(fake_gitlab) == []


def test_a_rollback_of_settings_alone_commits_at_once_unless_the_config_asks_for_approvals(
    gitops_config, fake_gitlab, chat, sent
):
    before = gitops_config.version
    web = "repo: shop/shop-web\nrobot: shop-backend\nlanguage: {}\n"
    run(push(fake_gitlab, {"projects/shop-web.yaml": web.format("zh")}), "sync-web")
    _, posted = chat(f"config rollback {before[:8]}", staff_id=XIAOMING)
    assert "Committed" in posted[0] and "`projects/shop-web.yaml`" in posted[0] and len(_commits(fake_gitlab)) == 1
    _sync_the_rollback(fake_gitlab)
    assert store.load().projects["shop-web"].language == "en"
    # the config asks one approval for every rollback: then even a settings-only one waits for it
    config = yaml.safe_load(fake_gitlab.file(CONFIG_REPO, "opsbot.yaml"))
    config["permissions"]["config rollback"] = {"approvals": 1}
    asks = push(fake_gitlab, {"opsbot.yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False)})
    run(asks, "sync-asks")
    run(push(fake_gitlab, {"projects/shop-web.yaml": web.format("zh")}), "sync-web-again")
    _, posted = chat(f"config rollback {asks['after'][:8]}", staff_id=XIAOMING)
    assert "Approval request" in posted[0] and "1 approval(s) from someone else" in posted[0]
    assert len(_commits(fake_gitlab)) == 1


def test_an_approved_rollback_commits_nothing_when_the_branch_moved_since(revoked, fake_gitlab, chat, sent):
    granted, _current = revoked
    _, posted = chat(f"config rollback {granted[:8]}", staff_id=XIAOMING)
    request_id = re.search(r"Approval request `(\w+)`", posted[0]).group(1)
    run(push(fake_gitlab, {"projects/new-api.yaml": "repo: shop/new-api\nrobot: shop-backend\n"}), "sync-new")
    _, posted = chat(f"approve {request_id}", staff_id=CAROL)
    assert "moved since the request" in posted[0] and _commits(fake_gitlab) == []


def test_a_rollback_whose_answer_was_lost_is_found_not_made_twice(revoked, fake_gitlab):
    from opsbot.gitops import config_rollback

    granted, _current = revoked
    config = store.load()
    planned = config_rollback.plan(config, granted, "en")
    assert planned.changes_rights and planned.changes == ("people",)
    config_rollback.execute(config, planned, "王小明", ("carol",), "en")
    again = config_rollback.execute(config, planned, "王小明", ("carol",), "en")  # the retry after a lost answer
    assert len(_commits(fake_gitlab)) == 1 and "Committed" in again.text


def test_a_version_that_does_not_validate_now_is_not_committed(revoked, fake_gitlab, chat, env):
    """The stack no longer lets its Drone token go where that version sent it: today's rules refuse the version."""
    granted, _current = revoked
    env("DRONE_HOSTS", "drone.example.com")
    _, posted = chat(f"config rollback {granted[:8]}", staff_id=XIAOMING)
    assert f"version `{granted[:8]}` does not validate now" in posted[0] and "is not a Drone host" in posted[0]
    assert _commits(fake_gitlab) == []


def test_only_config_rollback_takes_approvals_in_permissions(aws):
    from unit_support import example_documents

    from opsbot.config.model import ConfigError

    documents = example_documents()
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["permissions"]["deploy"]["approvals"] = 1
    root["permissions"]["config rollback"] = {"approvals": 9}
    with pytest.raises(ConfigError) as refused:
        store.check(documents, "v")
    lines = "\n".join(refused.value.lines())
    assert "permissions.deploy.approvals: only config rollback takes approvals here" in lines
    assert "permissions.config rollback.approvals must be a whole number from 0 to 5" in lines


def test_config_of_a_project_shows_its_pipeline(gitops_config, chat):
    answer, _ = chat("config shop-api")
    assert "pipeline: language=java, image=`registry.example.com/shop/shop-api`" in answer["markdown"]["text"]


# --- the registry's subcommands ----------------------------------------------------------------------------


def test_subcommands_are_found_by_parent_and_word_in_either_language():
    registry = all_commands()
    assert registry.resolve("config", ["rollback", "abc"])[0].name == "config rollback"
    assert registry.resolve("配置", ["回滚", "abc"]) == (registry.commands["config rollback"], ["abc"])
    assert registry.resolve("config", ["shop-api"]) == (registry.commands["config"], ["shop-api"])
    assert registry.lookup("drone init").name == "drone init" and registry.lookup("drone nope") is None


def test_help_explains_a_subcommand(gitops_config, chat):
    answer, _ = chat("help config rollback")
    text = answer["markdown"]["text"]
    assert "`config rollback <version>`" in text and "Role: admin" in text


def test_permissions_can_name_a_subcommand(gitops_config):
    from opsbot.authz import core as authz
    from opsbot.authz.actors import Actor
    from opsbot.config.model import Permission

    config = replace(gitops_config, permissions={"config rollback": Permission(roles=("deployer",))})
    verb = all_commands().commands["config rollback"].verb
    alice = Actor("dingtalk", "alice.wang", "Alice Wang", config.person("alice"))
    assert authz.decide(config, alice, verb, authz.Target()).allowed
    assert authz.decide(gitops_config, alice, verb, authz.Target()).denied


def test_a_subcommand_needs_its_parent():
    from opsbot.chat.registry import Command, Registry

    with pytest.raises(ValueError, match="parent"):
        Registry().add(Command(name="nothing here", aliases=(), arguments=(), summary={}, examples=(), run=print))
