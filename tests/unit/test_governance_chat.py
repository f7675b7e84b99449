"""Locks, freezes and overrides from chat, through ingress and the worker as DingTalk drives them: the hold rule
of the core refuses every way in (deploy, approve's release, restart of a deployment) and says who holds it and
why; unlock by another needs an admin and tells the holder; an override needs an admin and a second admin. Each
acting path has its attack beside it: a stranger's unlock, a developer's, a deployer's of another's lock, an
override by a non-admin, an override approved by the admin who asked for it, an approval of no such override."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from chat_support import audit_log
from test_chat_worker import Worker, act, drone_changes, pending_approval, posted, say
from unit_support import example_documents

from opsbot.authz import locks
from opsbot.config import store
from opsbot.release import approvals


@pytest.fixture
def worker(aws, handlers, lambda_context) -> Worker:
    return Worker(aws, handlers, lambda_context)


@pytest.fixture
def session(fake_dingtalk) -> str:
    return f"{fake_dingtalk.url}/robot/sendBySession?session=local-session-unit"


def save(fake_drone, fake_dingtalk, freeze_envs: tuple[str, ...] = ()):
    documents = example_documents(drone=fake_drone.url, dingtalk=fake_dingtalk.url)
    if freeze_envs:
        start = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Shanghai"))
        root = next(d for d in documents if d.name == "opsbot.yaml").data
        root["governance"] = {
            "freezes": [
                {
                    "name": "double-12",
                    "reason": "双十二大促封网",
                    "start": start.strftime("%Y-%m-%d %H:%M"),
                    "end": (start + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"),
                    "environments": list(freeze_envs),
                }
            ]
        }
    return store.save(documents, "governance-chat")


@pytest.fixture
def plain(aws, fake_drone, fake_dingtalk):
    return save(fake_drone, fake_dingtalk)


@pytest.fixture
def frozen(aws, fake_drone, fake_dingtalk):
    return save(fake_drone, fake_dingtalk, ("production", "staging"))


def last(fake_dingtalk) -> str:
    return posted(fake_dingtalk)[-1][1]


# --- locks ------------------------------------------------------------------------------------------------------------


def test_a_lock_refuses_everyone_else_at_once_and_lets_its_holder_release(
    plain, worker, fake_drone, fake_dingtalk, session
):
    act(worker, "lock shop-api staging for 2h investigating 502s", who="carol", session_webhook=session)
    text = last(fake_dingtalk)
    assert text.startswith("🔒 shop-api/staging is locked by Carol Zhang") and "investigating 502s" in text
    held = locks.get("shop-api", "staging")
    assert held.holder == "carol" and 7100 < held.until - time.time() <= 7200

    refused = say("deploy shop-api 128 to staging", who="alice", session_webhook=session)
    assert refused["markdown"]["text"].startswith("⛔ shop-api/staging is locked by Carol Zhang")
    assert (
        "investigating 502s" in refused["markdown"]["text"] and "unlock shop-api staging" in refused["markdown"]["text"]
    )
    assert drone_changes(fake_drone) == []
    denial = audit_log()[0]
    assert (denial.who, denial.decision, denial.result) == ("alice", "deny", "denied")

    act(worker, "deploy shop-api 128 to staging", who="carol", session_webhook=session)  # the holder is exempt
    assert [c[1] for c in drone_changes(fake_drone)] == ["/api/repos/shop/shop-api/builds/128/promote"]


def test_a_second_lock_by_someone_else_names_the_holder(plain, worker, fake_dingtalk, session):
    act(worker, "锁定 shop-api production 排查支付故障", who="carol", session_webhook=session)
    act(worker, "lock shop-api production mine now", who="alice", session_webhook=session)
    assert last(fake_dingtalk).startswith("⛔ shop-api/production is locked by Carol Zhang")
    assert locks.get("shop-api", "production").holder == "carol"


def test_status_shows_who_holds_an_environment(plain, worker, fake_dingtalk, session):
    act(worker, "lock shop-api production release rehearsal", who="carol", session_webhook=session)
    answer = say("status shop-api", who="bob")["markdown"]["text"]
    assert "🔒 shop-api/production is locked by Carol Zhang" in answer and "release rehearsal" in answer


def test_unlock_by_another_needs_an_admin_and_tells_the_holder(plain, worker, fake_dingtalk, session):
    act(worker, "lock shop-api production hold on", who="carol", session_webhook=session)
    # attack: a stranger, a developer, and a deployer who does not hold it
    assert say("unlock shop-api production", who="stranger")["markdown"]["text"].startswith("⛔ You are not in")
    assert "needs the role" in say("unlock shop-api production", who="bob")["markdown"]["text"]
    act(worker, "unlock shop-api production", who="alice", session_webhook=session)
    assert "needs the role admin" in last(fake_dingtalk)
    assert locks.get("shop-api", "production").holder == "carol"
    # an admin may, and the holder hears of it (@-mentioned)
    act(worker, "unlock shop-api production", who="xiaoming", session_webhook=session)
    sent = fake_dingtalk.accepted[-1]["message"]
    assert "🔓 shop-api/production is unlocked." in sent["markdown"]["text"]
    assert "Carol Zhang: your lock (hold on) was released by the admin 王小明." in sent["markdown"]["text"]
    assert sent["at"]["atUserIds"] == ["carol.zhang"]
    assert locks.get("shop-api", "production") is None


def test_the_holder_unlocks_their_own(plain, worker, fake_dingtalk, session):
    act(worker, "lock shop-api staging short", who="carol", session_webhook=session)
    act(worker, "解锁 shop-api staging", who="carol", session_webhook=session)
    assert locks.get("shop-api", "staging") is None


def test_a_lock_holds_an_approved_release_of_someone_else(plain, worker, fake_drone, fake_dingtalk, session):
    act(worker, "deploy shop-api 128 to production", who="alice", session_webhook=session)
    pending = pending_approval()
    act(worker, "lock shop-api production stop everything", who="carol", session_webhook=session)
    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)
    assert drone_changes(fake_drone) == []  # approved, but the environment is held by carol
    assert "locked by Carol Zhang" in last(fake_dingtalk)


# --- freezes and overrides ---------------------------------------------------------------------------------------


def test_a_freeze_refuses_a_release_and_a_restart_of_a_deployment_even_for_an_admin(
    frozen, worker, fake_drone, fake_dingtalk, session
):
    answer = say("deploy shop-api 128 to staging", who="xiaoming", session_webhook=session)["markdown"]["text"]
    assert answer.startswith("⛔ shop-api/staging is in the change freeze 'double-12'")
    assert "双十二大促封网" in answer and "override shop-api staging" in answer
    act(worker, "restart shop-api 125", who="alice", session_webhook=session)  # #125: a promote to staging
    assert "change freeze 'double-12'" in last(fake_dingtalk)
    assert drone_changes(fake_drone) == []
    listed = say("freeze", who="bob")["markdown"]["text"]
    assert "🧊 **double-12**" in listed and "双十二大促封网" in listed


def test_an_override_needs_an_admin_and_a_second_admin(frozen, worker, fake_drone, fake_dingtalk, session):
    # attack: a deployer cannot ask for one
    assert "needs the role admin" in say("override shop-api staging hotfix", who="alice")["markdown"]["text"]
    act(worker, "override shop-api staging payment hotfix", who="xiaoming", session_webhook=session)
    pending = pending_approval()
    assert (pending.action, pending.event, pending.target, pending.needed) == ("override", "governance", "staging", 1)
    assert f"approve {pending.id}" in last(fake_dingtalk)
    # attack: the admin who asked approves it himself; a deployer who is no admin approves it
    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)
    assert last(fake_dingtalk) == "⛔ You cannot approve your own request: it needs someone else."
    act(worker, f"approve {pending.id}", who="carol", session_webhook=session)
    assert "needs the role admin" in last(fake_dingtalk)
    assert approvals.get(pending.id).status == "pending"
    # still frozen without the second admin
    assert say("deploy shop-api 128 to staging", who="alice")["markdown"]["text"].startswith("⛔")
    # the second admin approves: releases to staging go through the freeze, audited with the override
    act(worker, f"approve {pending.id}", who="lei", session_webhook=session)
    assert "may be released during the freeze 'double-12'" in last(fake_dingtalk)
    act(worker, "deploy shop-api 128 to staging", who="alice", session_webhook=session)
    assert [c[1] for c in drone_changes(fake_drone)] == ["/api/repos/shop/shop-api/builds/128/promote"]
    deploy = next(r for r in audit_log() if r.command == "deploy" and r.result == "succeeded")
    assert (
        f"freeze overridden (shop-api/staging, request {pending.id}, by 王小明, approved by Lei Zhao)" in deploy.reason
    )
    # the override holds for staging only
    assert say("deploy shop-api 128 to production", who="alice")["markdown"]["text"].startswith("⛔")


def test_an_approval_of_no_such_override_changes_nothing(frozen, worker, fake_dingtalk, session):
    act(worker, "approve deadbeef", who="lei", session_webhook=session)
    assert "no such approval request" in last(fake_dingtalk)
    assert locks.override_for("shop-api", "staging", "anything") is None
