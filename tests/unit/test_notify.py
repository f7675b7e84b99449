"""When a finished build is worth a message (policy), what the message says (render), and the per-branch
status that turns a success after a failure into "fixed"."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from unit_support import EXAMPLE_CONFIG, DingTalkCard, fixture_json

from opsbot.channels import dingtalk
from opsbot.config.model import NotifyPolicy, Person, validate
from opsbot.config.yaml_source import read_directory
from opsbot.delivery.robot import digest_message
from opsbot.message import Mentions, Message
from opsbot.notify import policy, render
from opsbot.state import branch_status

EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
SHOP_API = EXAMPLE.projects["shop-api"]  # zh, on_success [main, release/*]
SHOP_WEB = EXAMPLE.projects["shop-web"]  # en, on_success false


def delivery(name: str) -> dict:
    return fixture_json(f"drone/{name}.json")


def card(*args, config=EXAMPLE, **kwargs) -> DingTalkCard:
    """render.build_message's card, as the project's DingTalk robot receives it."""
    return DingTalkCard(render.build_message(*args, **kwargs), config)


def build_of(name: str, **changes) -> dict:
    build = copy.deepcopy(delivery(name)["build"])
    build.update(changes)
    return build


# --- policy --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failure", "error"])
def test_failure_is_told(status):
    assert policy.reason_to_notify(SHOP_API.notify, build_of("build_failure", status=status), None) == "failure"


def test_killed_build_is_told_as_a_failure():
    assert policy.reason_to_notify(SHOP_API.notify, build_of("build_failure", status="killed"), "success") == "failure"


def test_failure_is_quiet_when_the_project_says_so():
    quiet = replace(SHOP_API.notify, on_failure=False)
    assert policy.reason_to_notify(quiet, build_of("build_failure"), None) is None


@pytest.mark.parametrize("previous", ["failure", "error"])
def test_success_after_a_failure_is_fixed(previous):
    # shop-web does not announce successes at all, but a fix is always worth telling.
    assert policy.reason_to_notify(SHOP_WEB.notify, build_of("build_success"), previous) == "fixed"


def test_success_after_killed_is_no_fix():
    assert policy.reason_to_notify(SHOP_WEB.notify, build_of("build_success"), "killed") is None
    assert policy.reason_to_notify(SHOP_API.notify, build_of("build_success"), "killed") == "success"


def test_fixed_can_be_turned_off():
    no_fixed = replace(SHOP_WEB.notify, on_fixed=False)
    assert policy.reason_to_notify(no_fixed, build_of("build_success"), "failure") is None


@pytest.mark.parametrize(
    "branch, told",
    [
        ("main", True),
        ("release/1.2", True),
        ("release/1.2/hotfix", True),
        ("develop", False),
        ("feature/release/x", False),
        ("mainline", False),
    ],
)
def test_success_only_on_listed_branch_globs(branch, told):
    build = build_of("build_success", target=branch, source=branch)
    expected = "success" if told else None
    assert policy.reason_to_notify(SHOP_API.notify, build, "success") == expected
    assert policy.reason_to_notify(SHOP_API.notify, build, None) == expected


def test_success_is_quiet_without_success_branches():
    assert policy.reason_to_notify(SHOP_WEB.notify, build_of("build_success"), "success") is None
    assert policy.reason_to_notify(SHOP_WEB.notify, build_of("build_success"), None) is None


def test_pull_request_builds_run_on_their_source_branch():
    build = build_of("build_success", event="pull_request", source="feature/x", target="main")
    assert policy.build_branch(build) == "feature/x"
    assert policy.reason_to_notify(SHOP_API.notify, build, None) is None
    assert policy.build_branch(build_of("build_success", event="push", source="a", target="main")) == "main"


def test_promote_and_rollback():
    promote = delivery("promote_success")["build"]
    assert policy.reason_to_notify(SHOP_WEB.notify, promote, None) == "promote"
    assert policy.reason_to_notify(SHOP_WEB.notify, dict(promote, status="failure"), None) == "promote"
    assert policy.reason_to_notify(replace(SHOP_WEB.notify, on_promote=False), promote, None) is None
    rollback = dict(promote, event="rollback")
    assert policy.reason_to_notify(SHOP_WEB.notify, rollback, "failure") == "rollback"
    assert policy.reason_to_notify(replace(SHOP_WEB.notify, on_rollback=False), rollback, None) is None


def test_unfinished_status_is_quiet():
    assert policy.reason_to_notify(NotifyPolicy(on_success=("*",)), build_of("build_running"), "failure") is None


# --- render --------------------------------------------------------------------------------------------------


def render_failure(project=SHOP_API, config=EXAMPLE, **changes):
    d = delivery("build_failure")
    build = dict(d["build"], **changes)
    author = config.person_for_git(build.get("author_login", ""), build.get("author_email", ""))
    return card(project, d["repo"], build, d["system"], "failure", author, config=config)


# The example's bob has a DingTalk user id and a mobile; this config knows him by his mobile only.
BOB_BY_MOBILE = replace(
    EXAMPLE, people=tuple(replace(p, dingtalk_user_id="") if p.id == "bob" else p for p in EXAMPLE.people)
)


def test_failure_message_in_chinese_by_default():
    rendered = render_failure()
    message = rendered.message
    assert message["msgtype"] == "markdown"
    title, text = message["markdown"]["title"], message["markdown"]["text"]
    assert title == "❌ 构建失败 · shop-api #128"
    assert text.startswith("### ❌ 构建失败 · shop-api #128")
    assert "**分支**: main" in text
    assert "**耗时**: 2分30秒" in text
    assert "**失败步骤**: default › test" in text
    assert "[查看构建](https://drone.example.com/shop/shop-api/128)" in text


def test_failure_message_in_english_for_an_english_project():
    text = render_failure(SHOP_WEB).message["markdown"]["text"]
    assert text.startswith("### ❌ Build failed · shop-web #128")
    assert "**Branch**: main" in text
    assert "**Duration**: 2m 30s" in text
    assert "**Failed step**: default › test" in text
    assert "[View build](https://drone.example.com/shop/shop-api/128)" in text
    assert "构建" not in text


def test_failed_step_of_the_failure_fixture():
    assert render.failed_step(delivery("build_failure")["build"]) == "default › test"
    assert render.failed_step(delivery("build_success")["build"]) == ""


def test_failed_stage_without_a_failed_step_names_the_stage():
    build = {
        "stages": [
            {"name": "lint", "status": "success", "steps": []},
            {"name": "deploy", "status": "error", "steps": [{"name": "x", "status": "skipped"}]},
        ]
    }
    assert render.failed_step(build) == "deploy"


def test_author_is_mentioned_by_user_id_in_text_and_at():
    rendered = render_failure()  # author_login alice → dingtalk_user_id alice.wang
    assert "**作者**: Alice Wang @alice.wang" in rendered.message["markdown"]["text"]
    assert rendered.message["at"] == {"atMobiles": [], "atUserIds": ["alice.wang"], "isAtAll": False}
    assert rendered.mentions.user_ids == ["alice.wang"]
    assert rendered.digest_line.endswith(" @alice.wang")


def test_author_without_user_id_is_mentioned_by_mobile():
    rendered = render_failure(
        config=BOB_BY_MOBILE, author_login="bob", author_name="Bob Li", author_email="bob@example.com"
    )
    assert "Bob Li @13800000002" in rendered.message["markdown"]["text"]
    assert rendered.message["at"] == {"atMobiles": ["13800000002"], "atUserIds": [], "isAtAll": False}


def test_author_with_user_id_and_mobile_is_mentioned_by_user_id():
    rendered = render_failure(author_login="bob", author_name="Bob Li", author_email="bob@example.com")
    assert "Bob Li @bob.li" in rendered.message["markdown"]["text"]
    assert rendered.message["at"] == {"atMobiles": [], "atUserIds": ["bob.li"], "isAtAll": False}


def test_author_found_by_email_when_the_login_is_unknown():
    rendered = render_failure(config=BOB_BY_MOBILE, author_login="b.li", author_email="BOB@example.com")
    assert rendered.message["at"]["atMobiles"] == ["13800000002"]
    assert render_failure(author_login="b.li", author_email="BOB@example.com").message["at"]["atUserIds"] == ["bob.li"]


def test_unknown_author_is_named_but_not_mentioned():
    assert EXAMPLE.person_for_git("dave", "dave@example.com") is None
    rendered = render_failure(author_login="dave", author_name="Dave", author_email="dave@example.com")
    assert "**作者**: Dave" in rendered.message["markdown"]["text"]
    assert "@" not in rendered.message["markdown"]["text"].split("**作者**: ")[1].split("\n")[0]
    assert rendered.message["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}


def test_commit_link_and_title():
    text = render_failure().message["markdown"]["text"]
    assert (
        "**提交**: [feat(order): add refund endpoint]"
        "(https://gitlab.example.com/shop/shop-api/-/commit/9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d)"
    ) in text


def test_commit_link_falls_back_to_the_build_link():
    d = delivery("build_failure")
    repo = dict(d["repo"], link="")
    assert render.commit_url(repo, d["build"]) == d["build"]["link"]


def test_long_commit_title_is_cut():
    from opsbot.drone import builds

    title = builds.commit_title({"message": "x" * 300})
    assert len(title) == builds.MAX_TITLE_CHARS and title.endswith("…")
    assert builds.commit_title({"message": "", "after": "9c8d7e6f5a4b"}) == "9c8d7e6f"


def test_build_url_is_system_link_slug_number():
    d = delivery("build_failure")
    assert (
        render.build_url(d["repo"], d["build"], {"link": "https://drone.example.com/"})
        == "https://drone.example.com/shop/shop-api/128"
    )


@pytest.mark.parametrize(
    "reason, status, zh, en",
    [
        ("success", "success", "✅ 构建成功", "✅ Build succeeded"),
        ("fixed", "success", "🎉 构建已修复", "🎉 Build fixed"),
        ("failure", "error", "⚠️ 构建出错", "⚠️ Build errored"),
        ("failure", "killed", "⛔ 构建已取消", "⛔ Build killed"),
    ],
)
def test_headlines(reason, status, zh, en):
    d = delivery("build_success")
    build = dict(d["build"], status=status)
    for project, expected in ((SHOP_API, zh), (SHOP_WEB, en)):
        rendered = card(project, d["repo"], build, d["system"], reason, None)
        assert rendered.message["markdown"]["title"] == f"{expected} · {project.name} #128"


def test_promote_message_names_the_environment():
    d = delivery("promote_success")
    zh = card(SHOP_API, d["repo"], d["build"], d["system"], "promote", None)
    assert zh.message["markdown"]["title"] == "🚀 已发布到 production · shop-api #129"
    failed = dict(d["build"], status="failure")
    en = card(SHOP_WEB, d["repo"], failed, d["system"], "promote", None)
    assert en.message["markdown"]["title"] == "❌ Deploy to production failed · shop-web #129"
    rollback = card(SHOP_WEB, d["repo"], dict(d["build"], event="rollback"), d["system"], "rollback", None)
    assert rollback.message["markdown"]["title"] == "↩️ Rolled back production · shop-web #129"


def test_digest_line_is_one_line_with_the_essentials():
    line = render_failure().digest_line
    assert "\n" not in line
    assert line == (
        "- ❌ **shop-api** [#128](https://drone.example.com/shop/shop-api/128) main · 构建失败 · "
        "default › test @alice.wang"
    )


def test_digest_message_merges_mentions():
    entries = [
        {"id": "1", "line": "- a", "mobiles": ["138"], "user_ids": ["u1"]},
        {"id": "2", "line": "- b", "mobiles": ["138"], "user_ids": []},
        {"id": "3", "line": "- c", "mobiles": [], "user_ids": ["u2", "u1"]},
    ]
    message = dingtalk.render(digest_message(entries, "en"), EXAMPLE.person)
    assert message["markdown"]["title"] == "opsbot: 3 build notifications"
    assert message["markdown"]["text"].split("\n\n")[1:] == ["- a", "- b", "- c"]
    assert message["at"] == {"atMobiles": ["138"], "atUserIds": ["u1", "u2"], "isAtAll": False}
    assert digest_message(entries[:1], "zh").title == "opsbot：1 条构建通知"


def test_mentions_of_nobody():
    nobody = dingtalk.render(Message("t", ["text"], mentions=Mentions.of(None)), EXAMPLE.person)
    assert nobody["markdown"]["text"] == "text"
    unreachable = Person(id="x", name="X")  # no DingTalk user id, no mobile
    message = Message("t", ["text"], mentions=Mentions.of(unreachable))
    rendered = dingtalk.render(message, lambda pid: unreachable if pid == "x" else None)
    assert "@" not in rendered["markdown"]["text"]
    assert rendered["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}


# --- branch status -------------------------------------------------------------------------------------------


def test_branch_status_returns_the_previous_build_status(aws):
    assert branch_status.record_finish("shop/shop-api", "main", 10, "failure") is None
    assert branch_status.record_finish("shop/shop-api", "main", 11, "success") == "failure"
    assert branch_status.record_finish("shop/shop-api", "main", 12, "success") == "success"


def test_branch_status_ignores_an_older_build(aws):
    branch_status.record_finish("shop/shop-api", "main", 11, "failure")
    assert branch_status.record_finish("shop/shop-api", "main", 10, "success") is None
    item = aws.state_item("branch#shop/shop-api#main")
    assert item["number"]["N"] == "11" and item["status"]["S"] == "failure"
    # The newer failure still counts as the previous status of the next build.
    assert branch_status.record_finish("shop/shop-api", "main", 12, "success") == "failure"


def test_branch_status_retry_of_the_same_build_is_idempotent(aws):
    branch_status.record_finish("shop/shop-api", "main", 10, "failure")
    assert branch_status.record_finish("shop/shop-api", "main", 11, "success") == "failure"
    assert branch_status.record_finish("shop/shop-api", "main", 11, "success") == "failure"
    item = aws.state_item("branch#shop/shop-api#main")
    assert (item["number"]["N"], item["status"]["S"], item["previous_status"]["S"]) == ("11", "success", "failure")


def test_branch_status_first_build_retried_decides_the_same(aws):
    build = build_of("build_success", number=1, target="develop", source="develop")
    first = branch_status.record_finish("shop/shop-api", "develop", 1, "success")
    retried = branch_status.record_finish("shop/shop-api", "develop", 1, "success")
    assert first is None
    assert retried not in policy.FAILED  # the stored "none" placeholder
    notify = replace(SHOP_API.notify, on_success=())
    assert policy.reason_to_notify(notify, build, first) is policy.reason_to_notify(notify, build, retried) is None


def test_branch_status_is_per_repo_and_branch(aws):
    branch_status.record_finish("shop/shop-api", "main", 10, "failure")
    assert branch_status.record_finish("shop/shop-api", "develop", 11, "success") is None
    assert branch_status.record_finish("shop/shop-web", "main", 12, "success") is None
    assert branch_status.record_finish("shop/shop-api", "main", 13, "success") == "failure"


def test_fixed_follows_a_failure_on_the_same_branch_only(aws):
    failure = build_of("build_failure", number=20)
    previous = branch_status.record_finish("shop/shop-api", policy.build_branch(failure), 20, "failure")
    assert policy.reason_to_notify(SHOP_API.notify, failure, previous) == "failure"

    other_branch = build_of("build_success", number=21, source="develop", target="develop")
    previous = branch_status.record_finish("shop/shop-api", "develop", 21, "success")
    assert policy.reason_to_notify(SHOP_API.notify, other_branch, previous) is None

    fix = build_of("build_success", number=22)
    previous = branch_status.record_finish("shop/shop-api", policy.build_branch(fix), 22, "success")
    assert policy.reason_to_notify(SHOP_API.notify, fix, previous) == "fixed"


def test_promote_and_rollback_cards_name_the_deployer():
    d = delivery("promote_success")
    zh = card(SHOP_API, d["repo"], d["build"], d["system"], "promote", None)
    assert "**发布人**: alice" in zh.message["markdown"]["text"]
    en = card(SHOP_WEB, d["repo"], dict(d["build"], event="rollback"), d["system"], "rollback", None)
    assert "**Deployed by**: alice" in en.message["markdown"]["text"]
    # An ordinary build card has no deployer line.
    failure = render_failure()
    assert "发布人" not in failure.message["markdown"]["text"]


def test_the_deployer_is_named_by_name_not_by_login():
    d = delivery("promote_success")
    alice = EXAMPLE.person("alice")
    by_person = render.deployer_name(d["build"], alice, "zh")
    zh = card(SHOP_API, d["repo"], d["build"], d["system"], "promote", None, deployer=by_person)
    assert "**发布人**: Alice Wang" in zh.message["markdown"]["text"]
    # opsbot promoted it for its requester: the build's parameter names them, and the card says by whom
    through_opsbot = dict(d["build"], sender="opsbot", params={"OPSBOT_REQUESTED_BY": "Carol Zhang"})
    assert render.deployer_name(through_opsbot, None, "zh") == "Carol Zhang（经 opsbot）"
    assert render.deployer_name(through_opsbot, None, "en") == "Carol Zhang (via opsbot)"
    # the name is outsiders' text: a parameter anyone promoting in Drone may set is shown, never markup
    forged = dict(d["build"], params={"OPSBOT_REQUESTED_BY": "[x](https://evil.example) @all"})
    assert render.deployer_name(forged, None, "en") == "［x］(https：//evil.example) ＠all (via opsbot)"
    assert render.deployer_name(dict(d["build"], sender="someone"), None, "en") == "someone"


def test_a_card_with_release_buttons_still_at_mentions_the_author():
    d = delivery("build_success")
    author = EXAMPLE.person("alice")
    built = card(SHOP_API, d["repo"], d["build"], d["system"], "success", author, [("staging", "https://x/a")])
    assert built.message["msgtype"] == "actionCard" and "@alice.wang" in built.message["actionCard"]["text"]
    assert built.message["at"] == {"atMobiles": [], "atUserIds": ["alice.wang"], "isAtAll": False}


def test_a_digest_speaks_the_language_its_entries_share():
    chinese = [{"id": "1", "line": "- a", "language": "zh"}, {"id": "2", "line": "- b", "language": "zh"}]
    assert digest_message(chinese, "en").title == "opsbot：2 条构建通知"
    english = [dict(e, language="en") for e in chinese]
    assert digest_message(english, "zh").title == "opsbot: 2 build notifications"
    mixed = [chinese[0], english[1]]
    assert digest_message(mixed, "zh").title == "opsbot：2 条构建通知"  # the config's language, then
    assert digest_message([{"id": "3", "line": "- c"}], "en").title == "opsbot: 1 build notifications"  # older entry
