"""The weekly delivery report on a seeded release history, every number checked against the one worked out by hand
(the README's worked example is this history), sent once per robot at its hour whatever the ticks, and the freeze
announcements once per window and project."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from unit_support import example_documents

from opsbot.config import store
from opsbot.governance import announce, dora, report
from opsbot.settings import settings

# The report sent Monday 2026-12-07 10:00 in Shanghai covers the week up to that Monday's midnight there:
# [2026-11-29 16:00 UTC, 2026-12-06 16:00 UTC).
UNTIL = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
TICK = datetime(2026, 12, 7, 2, 0, tzinfo=UTC).timestamp()  # Monday 10:00 in Shanghai


def ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000)


def rec(rid, action, started, finished, outcome, committed="", **more) -> dict:
    return {
        "id": rid,
        "action": action,
        "started_ms": ms(started),
        "finished_ms": ms(finished) if finished else 0,
        "committed_ms": ms(committed) if committed else 0,
        "outcome": outcome,
        "requester": more.pop("requester", "Alice Wang"),
        "approvers": more.pop("approvers", "Carol Zhang"),
        "build": more.pop("build", "128"),
        "image": more.pop("image", "registry.example.com/shop/shop-api:abc1234"),
        "environment": "production",
        **more,
    }


HISTORY = [
    # this week
    rec("r1", "deploy", "2026-11-30 02:00", "2026-11-30 02:30", "succeeded", "2026-11-29 22:00"),  # lead 4 h 30
    rec("r2", "deploy", "2026-12-01 02:00", "2026-12-01 02:20", "succeeded", "2026-12-01 00:00"),  # lead 2 h 20
    rec("r3", "rollback", "2026-12-01 03:00", "2026-12-01 03:10", "succeeded", reverts_release="r2"),  # restore 10 min
    rec("r4", "deploy", "2026-12-02 02:00", "2026-12-02 02:15", "failed", "2026-12-01 20:00"),  # failed verification
    rec("r5", "deploy", "2026-12-02 04:00", "2026-12-02 04:45", "succeeded", "2026-12-02 03:00"),  # lead 1 h 45;
    # r4 restored by r5: 02:15 → 04:45, 2 h 30
    rec("r6", "deploy", "2026-12-05 08:00", "", "running", "2026-12-05 07:00"),  # not ended: not counted
    # the four weeks before
    rec("p1", "deploy", "2026-11-25 02:00", "2026-11-25 03:00", "succeeded", "2026-11-24 02:00"),  # lead 25 h
    rec("p2", "deploy", "2026-11-18 02:00", "2026-11-18 03:00", "succeeded", "2026-11-18 00:00"),  # lead 3 h
    rec("p3", "deploy", "2026-11-19 01:30", "2026-11-19 02:00", "failed", "2026-11-19 01:00"),
    rec("p4", "rollback", "2026-11-19 02:30", "2026-11-19 02:40", "succeeded"),  # restores p3: 40 min
    rec("p5", "deploy", "2026-11-04 02:00", "2026-11-04 02:00", "succeeded", "2026-11-04 01:00"),  # lead 1 h
]


def seed(history=HISTORY) -> None:
    from opsbot.aws import client

    ddb = client("dynamodb")
    for record in history:
        item = {"pk": {"S": "shop-api#production"}, "sk": {"S": f"{record['started_ms']:013d}#{record['id']}"}}
        for key, value in record.items():
            item[key] = {"N": str(value)} if key.endswith("_ms") else {"S": str(value)}
        ddb.put_item(TableName=settings().releases_table, Item=item)


def test_the_four_measures_of_the_seeded_week_match_the_hand_computed_ones():
    until = int(UNTIL.timestamp() * 1000)
    trend = dora.trend(HISTORY, until)
    now = trend.now
    assert now.deploys == 3  # r1, r2, r5 (r4 failed, r6 still running)
    assert now.finished == 4 and now.failures == 2  # r2 was rolled back, r4 failed
    assert now.change_failure_rate == 0.5
    assert now.lead_time_ms == 140 * 60_000  # median of 270, 140, 105 minutes
    assert sorted(now.restore_times_ms) == [10 * 60_000, 150 * 60_000]
    assert now.restore_time_ms == 80 * 60_000  # median of 10 and 150 minutes
    assert [m.deploys for m in trend.before] == [1, 1, 0, 1]
    assert trend.frequency_before == 0.75
    assert trend.lead_time_before_ms == 180 * 60_000  # median of 1500, 180, 60 minutes
    assert trend.failure_rate_before == 0.25  # p3 of p1, p2, p3, p5
    assert trend.restore_before_ms == 40 * 60_000


def test_a_deploy_followed_by_the_environments_next_release_being_a_rollback_is_a_failed_change():
    history = [
        rec("a", "deploy", "2026-12-01 02:00", "2026-12-01 02:10", "succeeded", "2026-12-01 01:00"),
        rec("b", "revert", "2026-12-01 05:00", "2026-12-01 05:05", "succeeded"),
    ]
    week = dora.measure(history, ms("2026-11-30 00:00"), ms("2026-12-07 00:00"))
    assert (week.failures, week.finished, week.restore_times_ms) == (1, 1, [5 * 60_000])
    unrestored = dora.measure(history[:1] + [rec("c", "revert", "2026-12-01 05:00", "", "failed")], 0, 2**62)
    # a rollback asked for says the change failed, even when the rollback itself failed; nothing restored it yet
    assert (unrestored.failures, unrestored.unrestored) == (1, 1)
    failed = dora.measure(
        [rec("d", "deploy", "2026-12-01 02:00", "2026-12-01 02:10", "failed", "2026-12-01 01:00")], 0, 2**62
    )
    assert (failed.failures, failed.unrestored, failed.deploys) == (1, 1, 0)


@pytest.fixture
def governed(aws, fake_dingtalk):
    documents = example_documents(dingtalk=fake_dingtalk.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["governance"] = {"timezone": "Asia/Shanghai", "report": {"day": "mon", "hour": 10}}
    for document in documents:  # the report goes to shop-api only, to keep what the fake receives small
        if document.name.startswith("projects/") and document.name != "projects/shop-api.yaml":
            document.data["report"] = False
    return store.save(documents, "governance-test")


def test_the_report_message_shows_the_numbers_and_the_weeks_releases(governed):
    seed()
    reply = report.build(governed, governed.projects["shop-api"], int(UNTIL.timestamp() * 1000), "Asia/Shanghai")
    text = reply.text  # shop-api speaks Chinese
    assert "shop-api 每周交付报告（11-30 00:00 – 12-07 00:00）" in text
    assert "- 部署频率：3 次（前 4 周平均 0.75，↑ 更好）" in text
    assert "- 变更前置时间（提交→上线，中位数）：2 小时 20 分（之前 3 小时 0 分，↓ 更好）" in text
    assert "- 变更失败率：50% (2/4)（之前 25%，↑ 更差）" in text
    assert "- 恢复时间（中位数）：1 小时 20 分（之前 40 分钟，↑ 更差）" in text
    assert "**本周发布（6）**" in text  # r1…r6, each with who and what
    assert text.count("Alice Wang，Carol Zhang 批准") == 6
    assert "12-01 11:00 production 回滚" in text  # r3, in Shanghai time


def test_the_weekly_report_goes_out_once_per_robot_at_its_hour(governed, fake_dingtalk):
    seed()
    assert report.send_due(governed, TICK - 3600) == []  # 09:00: not yet
    assert report.send_due(governed, TICK) == ["shop-api"]
    assert report.send_due(governed, TICK + 900) == ["shop-api"]  # the next tick of the hour sends nothing new
    sent = [m for m in fake_dingtalk.accepted if "每周交付报告" in str(m["message"])]
    assert len(sent) == 1 and sent[0]["robot"] == "shop-backend"


def test_a_freeze_opening_within_the_hour_is_announced_once_per_group(governed, fake_dingtalk):
    documents = example_documents(dingtalk=fake_dingtalk.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["governance"] = {
        "freezes": [
            {
                "name": "double-12",
                "reason": "双十二大促",
                "start": "2026-12-12 00:00",
                "end": "2026-12-13 00:00",
                "environments": ["production"],
            }
        ]  # fmt: skip
    }
    config = store.save(documents, "freeze-test")
    before = datetime(2026, 12, 11, 15, 10, tzinfo=UTC).timestamp()  # 23:10 in Shanghai: 50 minutes ahead
    assert announce.announce_due(config, before - 3600) == []
    told = announce.announce_due(config, before)
    assert told == ["shop-backend:double-12"]  # one message per group: shop-api's (the only production)
    assert announce.announce_due(config, before + 900) == told  # told again by the next tick: sent once
    sent = [m for m in fake_dingtalk.accepted if "double-12" in str(m["message"])]
    assert len(sent) == 1


def test_a_window_holding_several_projects_of_one_group_is_one_message_there(governed, fake_dingtalk):
    documents = example_documents(dingtalk=fake_dingtalk.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    window = {"name": "dc-move", "reason": "机房切换", "start": "2026-12-12 00:00", "end": "2026-12-12 06:00"}
    root["governance"] = {"freezes": [window]}  # every environment of every project
    config = store.save(documents, "freeze-test")
    told = announce.announce_due(config, datetime(2026, 12, 11, 15, 10, tzinfo=UTC).timestamp())
    assert sorted(told) == ["shop-backend:dc-move", "shop-feishu:dc-move"]  # shop-recommend's Feishu group too
    sent = [m for m in fake_dingtalk.accepted if "dc-move" in str(m["message"])]
    assert len(sent) == 1 and sent[0]["robot"] == "shop-backend"
    text = sent[0]["message"]["markdown"]["text"]
    for project in ("shop-api: staging, production", "shop-web: staging", "shop-search: staging"):
        assert project in text
    feishu = [m for m in fake_dingtalk.feishu.accepted if "dc-move" in json.dumps(m, ensure_ascii=False)]
    assert len(feishu) == 1
