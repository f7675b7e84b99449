"""The FAQ matcher against questions people really ask, in Chinese and English, with the entry each should get
(None: no entry answers it, and the bot names who to ask instead). Table-driven: a new entry or a change to the
matcher is measured against all of them."""

from __future__ import annotations

import pytest
from unit_support import example_documents

from opsbot.chat.commands.faq import best_answer
from opsbot.config.model import validate

CONFIG = validate(example_documents(), allow_literal_secrets=True)

QUESTIONS = [
    ("怎么申请生产发布权限？", "deploy-rights"),
    ("我想要 deployer 角色，该找谁？", "deploy-rights"),
    ("How do I get permission to deploy to production?", "deploy-rights"),
    ("生产环境的发布权限在哪里开通", "deploy-rights"),
    ("今天下午还能发生产吗？", "release-window"),
    ("周末可以上线吗", "release-window"),
    ("When is the production release window?", "release-window"),
    ("can we deploy to production on a friday evening", "release-window"),
    ("vpn 连不上怎么办", "vpn"),
    ("在家怎么访问公司内网", "vpn"),
    ("How do I set up the VPN on my laptop?", "vpn"),
    ("申请 VPN 账号", "vpn"),
    ("测试环境的网址是多少", "staging-url"),
    ("staging 的数据什么时候重置", "staging-url"),
    ("what's the URL of the staging environment", "staging-url"),
    ("测试环境怎么登录", "staging-url"),
    ("食堂几点开饭", None),
    ("how do I reset my laptop password", None),
    ("报销流程是什么", None),
    ("who is on call this week", None),
]


def test_the_set_is_twenty_questions_half_chinese_with_every_entry_and_some_without():
    from opsbot.chat.parser import has_chinese

    assert len(QUESTIONS) == 20 and sum(has_chinese(q) for q, _ in QUESTIONS) >= 10
    assert {entry for _, entry in QUESTIONS} == {e.id for e in CONFIG.faq} | {None}


@pytest.mark.parametrize("question, expected", QUESTIONS, ids=[q for q, _ in QUESTIONS])
def test_each_question_gets_its_entry(question, expected):
    found = best_answer(CONFIG, question)
    assert (found.id if found else None) == expected
