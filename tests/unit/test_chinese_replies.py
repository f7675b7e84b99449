"""Chinese wherever a Chinese team reads it: the titles DingTalk shows in its notification preview, Drone's status
words, how a config version came to be, how a command ended, and the id a stranger is told to hand an admin. One
language at a time: the one the person wrote in."""

from __future__ import annotations

import pytest
from chat_support import ask, text_of

from opsbot.chat.commands.config import describe_source
from opsbot.chat.parser import has_chinese


@pytest.fixture(autouse=True)
def _config(chat_config):
    return chat_config


def title_of(reply: dict) -> str:
    return reply[reply["msgtype"]]["title"]


@pytest.mark.parametrize(
    "said, title",
    [
        ("状态 shop-api", "shop-api 状态"),
        ("构建 shop-api", "shop-api 构建"),
        ("配置 shop-api", "shop-api 配置"),
        ("配置 历史", "配置历史"),
        ("帮助", "opsbot 帮助"),
        ("帮助 回滚", "帮助：回滚"),
        ("我是谁", "我是谁"),
        ("部署 shop-api 128 到 staging", "收到：deploy"),  # an act's acknowledgement
        ("回滚 shop-api", "回滚失败"),  # a usage error, titled in the command's own Chinese name
        ("部署 shop-api 128 到 qa", "不允许"),  # the core's refusal, at once
        ("布署 shop-api", "未知命令"),
    ],
)
def test_a_chinese_message_gets_a_chinese_title(aws, fake_drone, said, title):
    assert title_of(ask(said)) == title


@pytest.mark.parametrize("said", ["status shop-api", "rollback shop-api", "help", "deploy shop-api 128 to staging"])
def test_an_english_message_gets_an_english_title(aws, fake_drone, said):
    assert not has_chinese(title_of(ask(said)))


def test_drone_statuses_and_deployments_are_words_of_the_readers_language(aws, fake_drone):
    chinese = text_of(ask("构建 shop-api"))
    assert "运行中" in chinese and "成功" in chinese and "失败" in chinese and "发布 → staging" in chinese
    assert not {"running", "success", "failure", "promote"} & set(chinese.replace("·", " ").split())
    english = text_of(ask("builds shop-api"))
    assert "running" in english and "promote → staging" in english and "运行中" not in english


def test_how_a_config_version_came_to_be_is_said_in_the_readers_language():
    assert describe_source("push by alice: config: update projects/shop-web.yaml", "zh") == (
        "alice 推送：config: update projects/shop-web.yaml"
    )
    assert describe_source("rollback by 王小明", "zh") == "王小明 在群里回滚"
    assert describe_source("cli load", "zh") == "命令行加载（make config）"
    assert describe_source("local stack", "en") == "loaded when the local stack started"
    assert describe_source("push by [x](evil) @all: hi", "zh") == "［x］(evil) ＠all 推送：hi"  # names are plain text
    assert describe_source("something else", "zh") == "something else"


def test_history_says_how_each_command_ended_in_the_readers_language(aws, fake_drone):
    ask("状态 shop-api")
    assert "· 已回答" in text_of(ask("历史"))
    assert "· answered" in text_of(ask("history"))


def test_a_stranger_is_told_the_id_to_hand_an_admin(aws, fake_drone):
    text = text_of(ask("部署 shop-api 128 到 staging", who="stranger"))
    assert "你的钉钉 ID 是 `" in text and "请联系管理员把它加入 people" in text
    english = text_of(ask("deploy shop-api 128 to staging", who="stranger"))
    assert "Your DingTalk id is `" in english and "ask an admin to add it to `people`" in english
