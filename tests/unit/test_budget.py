"""The robot send budget (a sliding 62 s window of 20 sends), the digest buffer, and delivery within budget."""

from __future__ import annotations

import json

import pytest
from unit_support import deliver_once

from opsbot.channels.base import per_minute
from opsbot.config.model import Config, Robot
from opsbot.delivery import budget
from opsbot.delivery import robot as delivery
from opsbot.jobs import kinds
from opsbot.message import Mentions, Message

NOW = 1_732_521_600_000  # epoch ms
ROBOT = Robot(name="team", webhook="http://127.0.0.1:9/robot/send?access_token=t", secret="SECx")
CONFIG = Config(language="zh", robots={"team": ROBOT}, people=(), projects={})
CONFIG_EN = Config(language="en", robots={"team": ROBOT}, people=(), projects={})


def entry(n: int) -> dict:
    return {"id": f"job-{n}", "line": f"- build #{n}", "mobiles": [], "user_ids": [f"u{n % 2}"]}


def news(n: int) -> Message:
    """Build n's message, whose digest line and DingTalk mention are entry(n)'s."""
    return Message(
        title=f"build {n}",
        lines=[f"build #{n}"],
        digest_line=f"- build #{n}",
        mentions=Mentions(stored_user_ids=[f"u{n % 2}"]),
    )


def deliver(n: int) -> str:
    return deliver_once(CONFIG, ROBOT, news(n), f"job-{n}")


def number(message: dict) -> int:
    return int(message["markdown"]["text"].split("#")[1].split()[0])


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Every robot send, recorded instead of going over HTTP."""
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


@pytest.fixture
def clock(monkeypatch):
    """delivery's clock, moved by hand."""
    state = {"now": NOW}
    monkeypatch.setattr(delivery, "_now_ms", lambda: state["now"])
    return state


# --- the sliding window --------------------------------------------------------------------------------------


def test_twenty_slots_then_refusal(aws):
    taken = [budget.try_take_slot("team", per_minute(20), NOW + i * 100) for i in range(21)]
    assert taken == [True] * 20 + [False]
    assert len(budget.read("team").sends) == 20


def test_window_slides_rather_than_resetting_each_minute(aws):
    for i in range(20):
        assert budget.try_take_slot("team", per_minute(20), NOW + i * 1000)
    # 61.999 s after the first send it is still inside the 62 s window.
    assert not budget.try_take_slot("team", per_minute(20), NOW + budget.WINDOW_MS - 1)
    # Once the first send leaves the window exactly one slot opens.
    assert budget.try_take_slot("team", per_minute(20), NOW + budget.WINDOW_MS + 1)
    assert not budget.try_take_slot("team", per_minute(20), NOW + budget.WINDOW_MS + 2)
    assert len(budget.read("team").sends) == 20  # old sends are dropped as the window moves


def test_budgets_are_per_robot(aws):
    for i in range(3):
        assert budget.try_take_slot("a", per_minute(3), NOW + i)
    assert not budget.try_take_slot("a", per_minute(3), NOW + 10)
    assert budget.try_take_slot("b", per_minute(3), NOW + 10)


def test_seconds_until_slot(aws):
    state = budget.RobotState(sends=[NOW + i * 1000 for i in range(20)])
    assert state.seconds_until_slot(per_minute(20), NOW + 19_000) == 43  # the first send leaves at NOW + 62 s
    assert state.seconds_until_slot(per_minute(20), NOW + 61_500) == 1
    assert state.seconds_until_slot(per_minute(20), NOW + budget.WINDOW_MS + 1) == 0
    assert state.seconds_until_slot(per_minute(21), NOW + 19_000) == 0
    assert budget.RobotState(sends=[NOW] * 20).seconds_until_slot(per_minute(20), NOW) == 62
    assert budget.RobotState().seconds_until_slot(per_minute(20), NOW) == 0


def test_only_the_digest_may_send_while_news_is_pending(aws):
    budget.fold("team", entry(1))
    assert not budget.try_take_slot("team", per_minute(20), NOW)
    assert budget.try_take_slot("team", per_minute(20), NOW, for_digest=True)


# --- the digest buffer ---------------------------------------------------------------------------------------


def test_fold_is_idempotent_per_entry_id(aws):
    budget.fold("team", entry(1))
    budget.fold("team", entry(2))
    budget.fold("team", entry(1))  # a retried job
    assert [e["id"] for e in budget.read("team").pending] == ["job-1", "job-2"]
    assert set(aws.state_item("robot#team")["pending_ids"]["SS"]) == {"job-1", "job-2"}


def test_fold_keeps_unicode_and_order(aws):
    entries = [dict(entry(n), line=f"- ❌ 构建失败 #{n}") for n in range(5)]
    for e in entries:
        budget.fold("team", e)
    assert budget.read("team").pending == entries


def test_a_claim_whose_answer_was_lost_is_the_claimants_again_on_its_retry(aws):
    assert budget.claim_flush("team", NOW, by="job-1") is True  # went through; the answer did not come back
    assert budget.claim_flush("team", NOW + 30_000, by="job-1") is True  # so its retry schedules the flush
    assert budget.claim_flush("team", NOW + 30_000, by="job-2") is False
    budget.renew_flush("team", NOW + 60_000)  # the flush holds the lease from here
    assert budget.claim_flush("team", NOW + 90_000, by="job-1") is False


def test_claim_flush_only_once_until_the_lease_is_stale(aws):
    assert budget.claim_flush("team", NOW) is True
    assert budget.claim_flush("team", NOW + 1000) is False
    assert budget.claim_flush("team", NOW + budget.FLUSH_LEASE_MS) is False
    assert budget.claim_flush("team", NOW + budget.FLUSH_LEASE_MS + 1) is True  # the flush job was lost
    assert budget.read("team").flush_at == NOW + budget.FLUSH_LEASE_MS + 1


def test_release_flush_waits_for_pending_news(aws):
    budget.claim_flush("team", NOW)
    budget.fold("team", entry(1))
    budget.fold("team", entry(2))
    assert budget.release_flush("team") is False
    assert budget.read("team").flush_at == NOW

    budget.drop_sent("team", budget.read("team").pending)
    state = budget.read("team")
    assert state.pending == []
    assert "pending_ids" not in aws.state_item("robot#team")  # DynamoDB drops a set once it is empty
    assert budget.release_flush("team") is True
    assert budget.read("team").flush_at is None
    assert budget.claim_flush("team", NOW + 1) is True


def test_drop_sent_removes_only_the_delivered_front(aws):
    for n in range(4):
        budget.fold("team", entry(n))
    budget.drop_sent("team", [entry(0), entry(1)])
    assert [e["id"] for e in budget.read("team").pending] == ["job-2", "job-3"]
    # The ids are forgotten too, so a later job with the same id would fold again (not that ids repeat).
    assert set(aws.state_item("robot#team")["pending_ids"]["SS"]) == {"job-2", "job-3"}


def test_drop_sent_twice_is_harmless(aws):
    for n in range(3):
        budget.fold("team", entry(n))
    batch = [entry(0), entry(1)]
    budget.drop_sent("team", batch)
    budget.drop_sent("team", batch)  # a second flusher with a stale lease
    assert [e["id"] for e in budget.read("team").pending] == ["job-2"]
    budget.drop_sent("team", [])
    assert [e["id"] for e in budget.read("team").pending] == ["job-2"]


# --- delivery ------------------------------------------------------------------------------------------------


def flush_jobs(aws) -> list[dict]:
    jobs = [json.loads(m["Body"]) for m in aws.receive()]
    return [j for j in jobs if j["kind"] == kinds.DIGEST_FLUSH]


def test_deliver_sends_while_the_budget_lasts(aws, sent, clock):
    for n in range(20):
        assert deliver(n) == "sent"
        clock["now"] += 50
    assert [number(m) for _, m in sent] == list(range(20))
    assert aws.queue_attribute("ApproximateNumberOfMessages") == 0
    assert aws.queue_attribute("ApproximateNumberOfMessagesDelayed") == 0


def test_deliver_folds_once_the_budget_is_spent_and_schedules_one_flush(aws, sent, clock, monkeypatch):
    scheduled: list[tuple[str, dict, int]] = []
    real_enqueue = delivery.enqueue

    def spy(job, delay_seconds=0):
        scheduled.append((job.kind, job.payload, delay_seconds))
        real_enqueue(job, delay_seconds)

    monkeypatch.setattr(delivery, "enqueue", spy)
    for n in range(20):
        deliver(n)
    clock["now"] += 2000
    outcomes = [deliver(n) for n in range(20, 25)]

    assert outcomes == ["folded"] * 5
    assert len(sent) == 20
    assert [e["id"] for e in budget.read("team").pending] == [f"job-{n}" for n in range(20, 25)]
    # Exactly one flush, delayed until the window has room again (the first send leaves 62 s after NOW).
    assert scheduled == [(kinds.DIGEST_FLUSH, {"robot": "team"}, 60)]
    assert aws.queue_attribute("ApproximateNumberOfMessagesDelayed") == 1


def test_deliver_folds_behind_pending_news_even_with_room(aws, sent, clock):
    budget.fold("team", entry(1))
    assert deliver(2) == "folded"
    assert sent == []
    assert [e["id"] for e in budget.read("team").pending] == ["job-1", "job-2"]
    # The window has room, so the flush is due at once.
    assert [j["payload"] for j in flush_jobs(aws)] == [{"robot": "team"}]


def test_deliver_retried_job_folds_once(aws, sent, clock):
    for n in range(20):
        deliver(n)
    deliver(99)
    deliver(99)
    assert [e["id"] for e in budget.read("team").pending] == ["job-99"]


def test_flush_digest_sends_all_pending_lines_as_one_message(aws, sent, clock):
    for n in range(20):
        deliver(n)
    for n in range(20, 26):
        deliver(n)
    sent.clear()

    clock["now"] = NOW + budget.WINDOW_MS + 1
    assert delivery.flush_digest(CONFIG, ROBOT) == "digest of 6"

    assert len(sent) == 1
    robot_name, message = sent[0]
    assert robot_name == "team"
    text = message["markdown"]["text"]
    assert text.startswith("#### 📦 6 条构建通知")
    assert [line for line in text.split("\n\n")[1:]] == [f"- build #{n}" for n in range(20, 26)]
    assert message["at"]["atUserIds"] == ["u0", "u1"]
    state = budget.read("team")
    assert state.pending == [] and state.flush_at is None


def test_news_right_after_a_digest_folds_into_the_next_digest_so_a_burst_tail_does_not_wait_a_window(aws, sent, clock):
    """The load run found it: after a burst's digest, news sent alone spent the room the next digest needed, and the
    burst's tail waited a whole minute. Within a window of the last digest, news folds; the next digest goes as
    soon as the window has room; a window after it, news goes alone again."""
    for n in range(21):
        deliver(n)  # 20 sent alone, one folded
    flush_jobs(aws)
    clock["now"] = NOW + budget.WINDOW_MS + 1
    assert delivery.flush_digest(CONFIG, ROBOT) == "digest of 1"
    clock["now"] += 1000
    assert deliver(21) == "folded"  # the window has room, but the burst is not over
    assert [j["payload"] for j in flush_jobs(aws)] == [{"robot": "team"}]  # due at once: there is room
    assert delivery.flush_digest(CONFIG, ROBOT) == "digest of 1"
    clock["now"] += budget.WINDOW_MS
    assert deliver(22) == "sent"
    assert sent[-1][1]["markdown"]["title"] == "build 22"


def test_flush_digest_waits_while_the_window_is_full(aws, sent, clock):
    for n in range(21):
        deliver(n)
    flush_jobs(aws)  # the flush scheduled by the fold
    sent.clear()
    clock["now"] = NOW + 1000
    assert delivery.flush_digest(CONFIG_EN, ROBOT) == "waiting"
    assert sent == []
    assert budget.read("team").flush_at == NOW + 1000  # lease renewed
    assert [e["id"] for e in budget.read("team").pending] == ["job-20"]


def test_flush_digest_with_nothing_pending_ends_the_lease(aws, sent, clock):
    budget.claim_flush("team", NOW)
    assert delivery.flush_digest(CONFIG, ROBOT) == "empty"
    assert sent == []
    assert budget.read("team").flush_at is None


def test_flush_digest_sends_a_large_backlog_in_batches(aws, sent, clock, monkeypatch):
    from opsbot.channels import dingtalk as robot
    from opsbot.channels.http import encode

    lines = [dict(entry(n), line=f"- {'x' * 30} {n}") for n in range(10)]
    # room for exactly two entries, measured on the body as sent
    two = robot.render(delivery.digest_message(lines[:2], "en"), CONFIG_EN.person)
    monkeypatch.setattr(robot, "MAX_BYTES", len(encode(two)))
    budget.claim_flush("team", NOW)
    for line in lines:
        budget.fold("team", line)
    assert delivery.flush_digest(CONFIG_EN, ROBOT) == "digest of 2"
    assert [e["id"] for e in budget.read("team").pending] == [f"job-{n}" for n in range(2, 10)]
    assert budget.read("team").flush_at is not None  # still leased, and the next flush is queued
    assert [j["payload"] for j in flush_jobs(aws)] == [{"robot": "team"}]


def test_flush_digest_failure_keeps_the_news(aws, clock, monkeypatch):
    from opsbot.jobs.model import RetryLater

    def refuse(robot, message):
        raise RetryLater("robot team: HTTP 503")

    monkeypatch.setattr("opsbot.channels.dingtalk.send", refuse)
    budget.claim_flush("team", NOW)
    budget.fold("team", entry(1))
    with pytest.raises(RetryLater):
        delivery.flush_digest(CONFIG, ROBOT)
    assert [e["id"] for e in budget.read("team").pending] == ["job-1"]


def test_a_full_chinese_digest_fits_dingtalks_body_limit_as_sent(aws, sent, clock):
    """requests' json= would escape each CJK character as \\uXXXX; the body as sent must stay under 20,000 bytes."""
    from opsbot.channels.http import encode

    budget.claim_flush("team", NOW)
    for n in range(150):
        budget.fold(
            "team",
            dict(
                entry(n),
                line=f"- ❌ **商城后端服务** [#{n}](https://drone.example.com/shop/shop-api/{n}) "
                f"main · 构建失败 · 默认流水线 › 单元测试 @alice.wang",
                user_ids=["alice.wang"],
            ),
        )
    assert delivery.flush_digest(CONFIG, ROBOT).startswith("digest of ")
    body = encode(sent[0][1])
    assert len(body) <= 20_000
    assert len(budget.read("team").pending) < 150  # the rest waits for the next flush
