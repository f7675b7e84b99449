"""Chat commands through chat.ingress.answer, as the DingTalk function runs them: the example config, a fake
Drone on loopback, moto's tables and queue. Reads are answered in the callback's response; acts are checked,
queued once per msgId and audited."""

from __future__ import annotations

import re
import time

import pytest
from chat_support import ask, audit_log, callback, jobs_on_queue, text_of
from unit_support import EXAMPLE_CONFIG, dingtalk_event, example_documents, json_body, to_body

from opsbot.chat.commands import faq
from opsbot.config.model import validate
from opsbot.config.yaml_source import read_directory


@pytest.fixture(autouse=True)
def _config(chat_config):
    """Every test here talks to the bot with the example config loaded, Drone and DingTalk faked."""
    return chat_config


def save_config(fake_drone, change) -> None:
    """Replace the stored config by the example changed by `change(global_document_data)`."""
    from opsbot.config import store

    documents = example_documents(drone=fake_drone.url)
    change(next(d for d in documents if d.name == "opsbot.yaml").data)
    store.save(documents, "changed")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("- ")]


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[#(\d+)\]\(", text)]


# --- status and builds -----------------------------------------------------------------------------------------


def test_status_shows_the_latest_build_of_each_branch_and_deployment_with_links(aws, fake_drone):
    text = text_of(ask("status shop-api"))
    assert text.startswith("### shop-api: latest builds")
    # newest first: develop #129 (running), main #128, the staging deploy #126, feature/refund #124
    assert numbers(text) == [129, 128, 126, 124]
    assert f"[#128]({fake_drone.url}/shop/shop-api/128)" in text
    row = {n: line for n, line in zip(numbers(text), lines(text), strict=True)}
    assert "main" in row[128] and "success" in row[128] and "feat(order): add refund endpoint" in row[128]
    assert row[128].startswith("- ✅") and row[129].startswith("- 🔄")
    assert "promote → staging" in row[126]
    assert [(c["method"], c["path"], c["query"]["per_page"], c["authorized"]) for c in fake_drone.calls] == [
        ("GET", "/api/repos/shop/shop-api/builds", ["50"], True)
    ]
    assert [r.result for r in audit_log()] == ["answered"]
    assert jobs_on_queue(aws) == []


def test_status_of_one_branch_in_chinese(fake_drone):
    reply = ask("状态 shop-api main")
    assert reply["markdown"]["title"] == "shop-api 状态"
    text = text_of(reply)
    assert text.startswith("### shop-api 的最新状态")
    assert numbers(text) == [128] and "分钟前" in text  # the seed is dated minutes ago
    assert fake_drone.calls[0]["path"] == "/api/repos/shop/shop-api/builds/latest"
    assert fake_drone.calls[0]["query"] == {"branch": ["main"]}


def test_status_of_a_branch_without_builds_says_so(fake_drone):
    reply = ask("status shop-api no-such-branch")
    assert text_of(reply) == "shop-api no-such-branch has no builds yet."
    assert text_of(ask("状态 shop-api 不存在")) == "shop-api 不存在 还没有构建。"


def test_status_finds_a_project_by_its_repo_slug():
    assert text_of(ask("status shop/shop-web")).startswith("### shop-web: latest builds")


def test_builds_lists_the_last_n_builds(fake_drone):
    text = text_of(ask("builds shop-api 5"))
    assert text.startswith("### shop-api: last 5 builds")
    assert numbers(text) == [129, 128, 127, 126, 125]
    assert all(f"({fake_drone.url}/shop/shop-api/{n})" in text for n in numbers(text))


def test_builds_of_one_branch_leave_the_branch_out_of_each_line():
    text = text_of(ask("构建 shop-api main"))
    assert text.startswith("### shop-api 最近 6 个构建 (main)")
    assert numbers(text) == [128, 127, 126, 125, 123, 120]  # 125 and 126 promoted main's #120 and #123
    assert " · main · " not in text


def test_an_unknown_project_lists_the_configured_ones(fake_drone):
    reply = ask("status nope")
    assert reply["markdown"]["title"] == "status failed"
    assert "no project `nope`. Configured projects: shop-api, shop-recommend, shop-search, shop-web" in text_of(reply)
    assert fake_drone.calls == []


def test_drone_down_for_a_read_is_a_plain_answer_not_an_error(fake_drone):
    fake_drone.down = True
    reply = ask("status shop-api")
    assert reply["markdown"]["title"] == "status failed"
    assert "Drone is not answering right now (Drone answered HTTP 503)" in text_of(reply)
    assert [r.result for r in audit_log()] == ["failed"]


def test_drone_not_configured_is_a_plain_message(aws, fake_drone):
    save_config(fake_drone, lambda root: root.pop("drone"))
    for text in ("status shop-api", "builds shop-api"):
        reply = ask(text)
        assert "This opsbot is not connected to Drone: set `drone: {server, token}` in opsbot.yaml." in text_of(reply)
    assert "这个 opsbot 还没有连接 Drone" in text_of(ask("状态 shop-api"))
    assert fake_drone.calls == []
    assert [r.detail for r in audit_log()] == ["Drone is not configured"] * 3
    assert jobs_on_queue(aws) == []


def test_drone_not_configured_leaves_commands_without_drone_working(fake_drone):
    save_config(fake_drone, lambda root: root.pop("drone"))
    assert text_of(ask("whoami")).startswith("You are **Alice Wang**")


# --- unknown commands and the FAQ -------------------------------------------------------------------------------


def test_a_mistyped_command_gets_a_suggestion():
    reply = ask("stauts shop-api")
    assert reply["markdown"]["title"] == "unknown command"
    assert text_of(reply).startswith("There is no command `stauts`. Did you mean `status`")
    assert "Send `help` for the list of commands." in text_of(reply)
    assert [(r.command, r.result) for r in audit_log()] == [("unknown", "unknown")]


def test_a_mistyped_chinese_command_gets_a_suggestion_in_chinese():
    text = text_of(ask("状况 shop-api"))
    assert text.startswith("没有 `状况` 这个命令。") and "发送 `help` 查看全部命令。" in text


@pytest.mark.parametrize(
    "question, entry",
    [
        ("vpn 怎么连接", "vpn"),
        ("远程办公怎么访问内网？", "vpn"),
        ("how do I connect to the VPN?", "vpn"),
        ("测试环境的地址", "staging-url"),
        ("where is staging", "staging-url"),
        ("今天能上线吗", "release-window"),
        ("when can we release to production", "release-window"),
    ],
)
def test_a_free_question_is_answered_from_the_faq(question, entry):
    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    expected = next(e for e in config.faq if e.id == entry)
    reply = ask(question, who="bob")
    assert reply["markdown"]["title"] == expected.question
    assert expected.answer in text_of(reply)
    assert [(r.command, r.result, r.detail) for r in audit_log()] == [("faq", "answered", f"faq {entry}")]


def test_the_faq_command_answers_too_and_lists_the_questions():
    assert "vpn.example.com" in text_of(ask("faq 怎么申请VPN"))
    assert "staging.shop.example.com" in text_of(ask("问 staging 地址"))
    listing = text_of(ask("faq"))
    assert listing.count("\n- ") == 4 and "怎么申请 VPN？" in listing


@pytest.mark.parametrize(
    "question, expected",
    [
        ("今天午饭吃什么", "这个问题我还答不上来，请问 王小明。"),
        ("xyzzy plugh", "I don't know that one yet; please ask 王小明."),
        ("faq 今天午饭吃什么", "这个问题我还答不上来，请问 王小明。"),
    ],
)
def test_an_unanswerable_question_names_who_to_ask(question, expected):
    assert expected in text_of(ask(question))


def test_without_contacts_the_platform_team_is_named(fake_drone):
    save_config(fake_drone, lambda root: root["settings"].pop("contacts"))
    assert "please ask the platform team." in text_of(ask("xyzzy plugh"))


def test_faq_scores_rank_the_right_entry_and_stay_quiet_below_the_threshold():
    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    vpn = next(e for e in config.faq if e.id == "vpn")
    assert faq.score("vpn", vpn) >= faq.MATCH_THRESHOLD  # a keyword alone is enough
    assert faq.best_answer(config, "VPN 连不上了") is vpn
    assert faq.best_answer(config, "the coffee machine is broken") is None
    assert faq.best_answer(config, "   ") is None
    assert faq.best_answer(config, "x" * 100_000) is None  # a pasted essay is cut, not compared in full


# --- whoami, config, history ------------------------------------------------------------------------------------


def test_whoami_for_a_known_sender():
    assert text_of(ask("whoami")) == "You are **Alice Wang** (`alice`), roles: developer, deployer."
    assert text_of(ask("我是谁", who="xiaoming")) == "你是 **王小明**（`xiaoming`），角色：ops, admin。"


def test_whoami_for_an_unknown_sender_shows_the_id_to_add_and_where():
    # A robot not yet published to the organisation sends only senderId, which config matches against
    # people[].dingtalk_sender_id; a published one sends senderStaffId, matched against dingtalk_user_id.
    text = text_of(ask("whoami", who="stranger"))
    assert text.startswith("You are 路人甲 (DingTalk id `$:LWCP_v1:$stranger`), not in opsbot's people config")
    assert "only run commands that read" in text
    assert text.endswith("add this id as a person's dingtalk_sender_id.")
    staff = text_of(ask("我是谁", who="stranger", senderStaffId="new.hire"))
    assert "钉钉 ID `new.hire`" in staff and staff.endswith("加到 people 的 dingtalk_user_id。")


def test_config_shows_the_project_without_any_secret(chat_config):
    text = text_of(ask("config shop-api"))
    assert "- repo: `shop/shop-api`" in text and "robot: `shop-backend`" in text
    assert "env `production`: branch `main`, 1 approval(s)" in text and "env `staging`: branch `main`" in text
    robot = chat_config.robots["shop-backend"]
    for secret in (robot.webhook, robot.secret, "access_token", "local-shop-backend", chat_config.drone.token, "SEC"):
        assert secret not in text
    assert "ssm:" not in text_of(ask("配置 shop-web"))


def test_history_reads_back_the_audit_log_newest_first():
    ask("whoami")
    ask("status shop-api", who="bob")
    ask("config shop-web")
    ask("deploy shop-api 128 to staging", who="bob")  # denied: bob is no deployer
    text = text_of(ask("history"))
    assert text.startswith("### Last 4 records")
    assert [re.search(r"`([^`]*)`", line).group(1).strip() for line in lines(text)] == [
        "deploy shop-api 128 staging",
        "config shop-web",
        "status shop-api",
        "whoami",
    ]
    assert "**Bob Li**" in lines(text)[0] and "· denied" in lines(text)[0]
    assert "· answered" in lines(text)[3]


def test_history_of_a_project_and_a_count():
    ask("status shop-api")
    ask("whoami")
    ask("status shop-web")
    ask("config shop-api")
    assert [line.split("`")[1] for line in lines(text_of(ask("history shop-api")))] == [
        "config shop-api",
        "status shop-api",
    ]
    assert len(lines(text_of(ask("history 2")))) == 2
    assert text_of(ask("历史 shop-web")).startswith("### 最近 1 条记录 · shop-web")


def test_history_survives_a_callback_with_an_absurd_create_at(handlers, lambda_context):
    # The callback body is not covered by DingTalk's sign; its createAt only dates the record when plausible.
    def call(message: dict) -> dict:
        return handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context)

    for created in (10**17, 1, 4_102_444_800_000):  # out of any calendar, 1970, the year 2100
        assert call(callback("whoami", created_ms=created))["statusCode"] == 200
    ask("config shop-api")
    response = call(callback("history"))
    assert response["statusCode"] == 200
    history = lines(text_of(json_body(response)))
    assert len(history) == 4 and history[0].split("`")[1] == "config shop-api"  # the newest is still on top
    assert all(abs(r.at_ms - time.time() * 1000) < 60_000 for r in audit_log())


def test_history_when_nothing_happened_yet():
    assert text_of(ask("history shop-web")) == "Nothing recorded yet."


# --- acts: checked, queued once, audited -----------------------------------------------------------------------


def test_an_act_is_acknowledged_queued_once_and_audited_as_queued(aws, fake_drone):
    message = callback("deploy shop-api 128 to staging")
    from opsbot.chat.inbound.dingtalk import answer_callback

    reply = answer_callback(message)
    assert text_of(reply) == "Got it: `deploy` is running; the result will be posted here."
    jobs = jobs_on_queue(aws)
    assert len(jobs) == 1 and jobs[0]["kind"] == "chat.command"
    payload = jobs[0]["payload"]
    assert (payload["command"], payload["arguments"], payload["language"]) == (
        "deploy",
        {"project": "shop-api", "build|branch": "128", "env": "staging"},
        "en",
    )
    assert payload["message"]["msgId"] == message["msgId"]
    for project in ("", "shop-api"):
        records = audit_log(project)
        assert [(r.command, r.result, r.who, r.project) for r in records] == [("deploy", "queued", "alice", "shop-api")]
        assert records[0].id == jobs[0]["id"] == payload["audit"]["id"]
    assert fake_drone.calls == []  # nothing happens in Drone until the worker runs the job


def test_the_same_msg_id_twice_is_one_job(aws):
    from opsbot.chat.inbound.dingtalk import EMPTY_REPLY, answer_callback

    message = callback("部署 shop-api 128 到 staging", who="carol")
    first = answer_callback(message)
    second = answer_callback(dict(message))  # DingTalk's retry of the same callback
    assert "收到 `deploy`" in text_of(first)
    assert second == EMPTY_REPLY  # the first delivery was acknowledged; nothing more to say
    assert len(jobs_on_queue(aws)) == 1
    assert [r.result for r in audit_log()] == ["queued"]


def test_another_msg_id_is_another_job(aws):
    ask("restart shop-api 127", who="bob")
    ask("restart shop-api 127", who="bob")
    assert len(jobs_on_queue(aws)) == 2


def test_a_denied_act_queues_nothing_and_is_audited_as_denied(aws, fake_drone):
    reply = ask("deploy shop-api 128 to staging", who="bob")
    assert reply["markdown"]["title"] == "denied"
    assert text_of(reply) == "⛔ `deploy` in staging needs the role deployer; your roles: developer."
    assert jobs_on_queue(aws) == []
    assert aws.state_items("idem#") == []
    assert [(r.command, r.result, r.who) for r in audit_log()] == [("deploy", "denied", "bob")]
    assert "needs the role deployer" in audit_log()[0].detail
    assert fake_drone.calls == []


def test_production_needs_a_deployer_or_ops_as_the_example_says(aws):
    assert "Got it" in text_of(ask("deploy shop-api main production", who="carol"))
    assert "⛔" in text_of(ask("deploy shop-api main production", who="bob"))
    assert len(jobs_on_queue(aws)) == 1


def test_an_unknown_sender_may_read_but_not_act(aws):
    assert text_of(ask("status shop-api", who="stranger")).startswith("### shop-api: latest builds")
    denied = text_of(ask("restart shop-api 127", who="stranger"))
    assert denied.startswith("⛔ You are not in opsbot's people config")
    assert jobs_on_queue(aws) == []
    assert [(r.result, r.who) for r in audit_log()] == [
        ("denied", "dingtalk:$:LWCP_v1:$stranger"),
        ("answered", "dingtalk:$:LWCP_v1:$stranger"),
    ]


def test_wrong_arguments_to_an_act_are_a_usage_answer_and_queue_nothing(aws):
    text = text_of(ask("deploy shop-api"))
    assert text == "missing <build|branch>, <env>\n\nUsage: `deploy <project> <build|branch> [to] <env>`"
    assert jobs_on_queue(aws) == []
    assert [(r.command, r.result) for r in audit_log()] == [("deploy", "usage")]


def test_an_empty_mention_gets_help():
    assert text_of(ask("")).startswith("### opsbot 命令")  # the config's language when nothing was typed


# --- through the DingTalk function: robotCode ------------------------------------------------------------------


def test_callbacks_for_another_robot_are_refused_when_the_robot_code_is_set(aws, fake_drone, handlers, lambda_context):
    save_config(fake_drone, lambda root: root["settings"].__setitem__("dingtalk_robot_code", "dingopsbot"))

    def call(message: dict) -> dict:
        return handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context)

    other = call(callback("restart shop-api 127", who="bob", robotCode="dingsomeoneelse"))
    assert other["statusCode"] == 401
    assert "robotCode" in json_body(other)["error"]
    missing = call(callback("whoami", who="bob"))
    assert missing["statusCode"] == 401
    assert jobs_on_queue(aws) == [] and audit_log() == []

    ours = call(callback("whoami", who="bob", robotCode="dingopsbot"))
    assert ours["statusCode"] == 200
    assert text_of(json_body(ours)).startswith("You are **Bob Li**")


def test_without_a_robot_code_any_robot_is_answered(handlers, lambda_context):
    response = handlers.dingtalk_bot.lambda_handler(
        dingtalk_event(to_body(callback("whoami", robotCode="dinganything"))), lambda_context
    )
    assert response["statusCode"] == 200
