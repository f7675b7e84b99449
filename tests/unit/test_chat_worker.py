"""Acting chat commands in the worker: `chat.command` jobs queued by chat.ingress, run by the worker Lambda on
moto's queue against the fake Drone, their results posted to the fake DingTalk (the conversation's session
webhook while it is valid, the project's robot otherwise) and written to the audit log."""

from __future__ import annotations

import json
import time

import pytest
from chat_support import audit_log, callback
from unit_support import sqs_event

from opsbot.chat.inbound import dingtalk as replies
from opsbot.release import approvals


@pytest.fixture(autouse=True)
def _config(chat_config):
    return chat_config


class Worker:
    """Runs what ingress queued through the worker Lambda, as SQS would hand it over: each message once unless
    a test hands the same messages in again (a redelivery), with the receive count it chooses."""

    def __init__(self, aws, handlers, lambda_context):
        self.aws, self.handlers, self.context = aws, handlers, lambda_context
        self.done: set[str] = set()

    def take(self) -> list[dict]:
        messages = [m for m in self.aws.receive(visibility=0) if m["MessageId"] not in self.done]
        assert messages, "nothing new on the work queue"
        return messages

    def run(self, messages: list[dict] | None = None, attempt: int = 1) -> dict:
        messages = messages if messages is not None else self.take()
        for message in messages:
            message.setdefault("Attributes", {})["ApproximateReceiveCount"] = str(attempt)
        response = self.handlers.worker.lambda_handler(sqs_event(messages), self.context)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        self.done.update(m["MessageId"] for m in messages if m["MessageId"] not in failed)
        return response


@pytest.fixture
def worker(aws, handlers, lambda_context) -> Worker:
    return Worker(aws, handlers, lambda_context)


@pytest.fixture
def session(fake_dingtalk) -> str:
    """A sessionWebhook as DingTalk hands them out (here: the fake's), valid for the next 90 minutes."""
    return f"{fake_dingtalk.url}/robot/sendBySession?session=local-session-unit"


def say(text: str, who: str = "alice", **kwargs) -> dict:
    """Post `text` from `who` to the bot and return its immediate answer."""
    from opsbot.chat.inbound.dingtalk import answer_callback

    message = callback(text, who, **kwargs)
    return answer_callback(message)


def act(worker: Worker, text: str, who: str = "alice", **kwargs) -> list[dict]:
    """An acting command from chat, run by the worker; returns the messages that carried its job."""
    reply = say(text, who, **kwargs)
    assert reply["msgtype"] == "markdown" and reply["markdown"]["title"] == "ok", reply
    messages = worker.take()
    assert len(messages) == 1
    response = worker.run(messages)
    assert response["batchItemFailures"] == []
    return messages


def posted(fake_dingtalk) -> list[tuple[str, str]]:
    """(where, text) of what reached DingTalk: "session" for the conversation, else the robot's name."""
    found = []
    for sent in fake_dingtalk.accepted:
        message = sent["message"]
        part = message.get(message["msgtype"]) or {}
        found.append((sent["robot"], part.get("text") or part.get("content") or ""))
    return found


def drone_changes(fake_drone) -> list[tuple[str, str, dict]]:
    """Every call that could change something in Drone: (method, path, query), without the request id each start
    carries (OPSBOT_REQUEST_<id>, tested in test_drone_requests.py)."""
    return [
        (c["method"], c["path"], {k: v for k, v in c["query"].items() if not k.startswith("OPSBOT_REQUEST_")})
        for c in fake_drone.calls
        if c["method"] != "GET"
    ]


def pending_approval() -> approvals.ApprovalRequest:
    from opsbot.aws import client
    from opsbot.settings import settings

    items = client("dynamodb").scan(TableName=settings().state_table)["Items"]
    ids = [i["id"]["S"] for i in items if i["pk"]["S"].startswith("approval#")]
    assert len(ids) == 1, ids
    return approvals.get(ids[0])


# --- deploy to an environment without approvals ------------------------------------------------------------------


def test_deploy_to_staging_promotes_once_and_posts_the_result_to_the_conversation(
    worker, fake_drone, fake_dingtalk, session
):
    act(worker, "deploy shop-api 128 to staging", session_webhook=session)
    assert drone_changes(fake_drone) == [
        (
            "POST",
            "/api/repos/shop/shop-api/builds/128/promote",
            {"target": ["staging"], "OPSBOT_REQUESTED_BY": ["Alice Wang"]},
        )
    ]
    assert [c["authorized"] for c in fake_drone.calls] == [True] * len(fake_drone.calls)
    [(where, text)] = posted(fake_dingtalk)
    assert where == "session"
    assert text.startswith("### 🚀 Deploy of shop-api #128 → staging started")
    assert f"[#130]({fake_drone.url}/shop/shop-api/130)" in text and "by Alice Wang" in text
    [record] = audit_log()
    assert (record.command, record.result, record.who) == ("deploy", "succeeded", "alice")
    assert record.detail == "deploy #128 to staging: Drone build #130" and record.finished_ms > 0


def test_a_redelivered_deploy_job_promotes_once_and_posts_its_result_once(worker, fake_drone, fake_dingtalk, session):
    messages = act(worker, "部署 shop-api 128 到 staging", session_webhook=session)
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []  # SQS delivered it twice
    assert len(drone_changes(fake_drone)) == 1
    [(where, text)] = posted(fake_dingtalk)  # a worker stopped before SQS heard must not post it again
    assert where == "session" and text.startswith("### 🚀 已开始发布 shop-api #128 → staging")


def test_deploy_by_branch_takes_its_newest_successful_build(worker, fake_drone, fake_dingtalk, session):
    act(worker, "deploy shop-web develop staging", who="carol", session_webhook=session)
    assert drone_changes(fake_drone) == [
        (
            "POST",
            "/api/repos/shop/shop-web/builds/43/promote",
            {"target": ["staging"], "OPSBOT_REQUESTED_BY": ["Carol Zhang"]},
        )
    ]  # #42 failed, #43 succeeded


@pytest.mark.parametrize(
    "text, reason, result",
    [
        (
            "deploy shop-api 127 to staging",
            "shop-api #127 is failure; only successful builds can be deployed.",
            "denied",
        ),
        ("deploy shop-api 124 to staging", "staging takes builds of main; #124 is from feature/refund.", "denied"),
        (
            "deploy shop-api 126 to staging",
            "#126 is itself a deployment; deploy the build it came from, #123.",
            "denied",
        ),
        ("deploy shop-api 999 to staging", "shop-api has no build #999.", "failed"),
        (
            "deploy shop-api 129 to staging",
            "shop-api #129 is running; only successful builds can be deployed.",
            "denied",
        ),
        ("deploy shop-api feature/nope staging", "branch feature/nope has no recent successful build.", "failed"),
    ],
)
def test_the_environments_rules_refuse_without_touching_drone(
    worker, fake_drone, fake_dingtalk, session, text, reason, result
):
    act(worker, text, session_webhook=session)
    assert drone_changes(fake_drone) == []
    [(where, posted_text)] = posted(fake_dingtalk)
    assert where == "session" and posted_text == f"⛔ {reason}"
    [record] = audit_log()
    assert record.result == result and record.detail == f"⛔ {reason}"[:200]
    if result == "denied":  # the core's decision, with its reason
        assert record.decision == "deny" and record.reason == reason


def test_an_environment_the_project_lacks_is_refused_at_once(fake_drone, fake_dingtalk):
    reason = "project shop-api has no environment `qa`. Environments: staging, production"
    assert say("deploy shop-api 128 to qa")["markdown"]["text"] == f"⛔ {reason}"
    assert drone_changes(fake_drone) == [] and posted(fake_dingtalk) == []
    [record] = audit_log()
    assert record.result == "denied" and record.reason == reason


def test_drone_refusing_is_reported_with_its_message(worker, fake_drone, fake_dingtalk, session):
    fake_drone.builds.pop("shop/shop-web")  # Drone itself says no: the repo is unknown to it (404)
    act(worker, "restart shop-web 43", who="bob", session_webhook=session)
    [(_, text)] = posted(fake_dingtalk)
    assert text == "### ❌ Restart of shop-web #43 failed\n\nDrone: Not Found"
    assert audit_log()[0].result == "failed"


def test_restart_and_rollback(worker, fake_drone, fake_dingtalk, session):
    act(worker, "restart shop-api 127", who="bob", session_webhook=session)
    act(worker, "回滚 shop-api staging 123", who="alice", session_webhook=session)
    assert drone_changes(fake_drone) == [
        ("POST", "/api/repos/shop/shop-api/builds/127", {}),
        (
            "POST",
            "/api/repos/shop/shop-api/builds/123/rollback",
            {"target": ["staging"], "OPSBOT_REQUESTED_BY": ["Alice Wang"]},
        ),
    ]
    texts = [text for _, text in posted(fake_dingtalk)]
    assert texts[0] == f"### 🔄 Restarted shop-api #127 as [#130]({fake_drone.url}/shop/shop-api/130)"
    assert texts[1].startswith("### 🚀 已开始回滚 shop-api #123 → staging")
    assert [(r.command, r.result) for r in audit_log()] == [("rollback", "succeeded"), ("restart", "succeeded")]


def test_a_rollback_obeys_the_environments_rules(worker, fake_drone, fake_dingtalk, session):
    # staging runs #123 (deployed as #126) and ran #124 before (#125); but #124 is a feature/refund build, which
    # staging (branch main) does not take: rolling back to it is refused like deploying it would be.
    act(worker, "rollback shop-api staging", who="alice", session_webhook=session)
    act(worker, "rollback shop-api staging 125", who="alice", session_webhook=session)  # #124's deployment
    assert drone_changes(fake_drone) == []
    reason = "⛔ staging takes builds of main; #124 is from feature/refund."
    assert [text for _, text in posted(fake_dingtalk)] == [reason, reason]
    assert [(r.result, r.decision) for r in audit_log()] == [("denied", "deny")] * 2


# --- production: approvals ---------------------------------------------------------------------------------------


def request_production(worker, session) -> approvals.ApprovalRequest:
    act(worker, "deploy shop-api 128 to production", who="alice", session_webhook=session)
    return pending_approval()


def test_production_opens_an_approval_request_instead_of_deploying(worker, fake_drone, fake_dingtalk, session):
    pending = request_production(worker, session)
    assert drone_changes(fake_drone) == []
    assert (pending.action, pending.project, pending.target, pending.build, pending.branch) == (
        "deploy",
        "shop-api",
        "production",
        128,
        "main",
    )
    assert (pending.requester, pending.needed, pending.status, pending.approvers) == ("alice", 1, "pending", [])
    assert pending.commit == "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
    assert 23 * 3600 < pending.deadline - time.time() <= 24 * 3600  # approval_hours: 24
    [(where, text)] = posted(fake_dingtalk)
    assert where == "session" and text.startswith(f"### 🔐 Approval request `{pending.id}`")
    assert f"`@opsbot approve {pending.id}`" in text and f"`@opsbot reject {pending.id}`" in text
    assert audit_log()[0].detail == f"approval {pending.id} opened for production"


def test_the_requester_cannot_approve_their_own_request(worker, fake_drone, fake_dingtalk, session):
    pending = request_production(worker, session)
    act(worker, f"approve {pending.id}", who="alice", session_webhook=session)
    assert drone_changes(fake_drone) == []
    assert posted(fake_dingtalk)[-1][1] == "⛔ You cannot approve your own request: it needs someone else."
    assert approvals.get(pending.id).status == "pending"


def test_another_deployers_approval_deploys_once_even_when_its_job_runs_twice(
    worker, fake_drone, fake_dingtalk, session
):
    pending = request_production(worker, session)
    messages = act(worker, f"批准 {pending.id.upper()}", who="carol", session_webhook=session)
    promote = (
        "POST",
        "/api/repos/shop/shop-api/builds/128/promote",
        {"target": ["production"], "OPSBOT_REQUESTED_BY": ["Alice Wang ✔ carol"]},
    )
    assert drone_changes(fake_drone) == [promote]
    decided = approvals.get(pending.id)
    assert (decided.status, decided.approvers, decided.decided_by) == ("approved", ["carol"], "carol")
    text = posted(fake_dingtalk)[-1][1]
    assert text.startswith(f"✔ Carol Zhang 批准了 `{pending.id}`（Alice Wang 发起）。")
    assert "已开始发布 shop-api #128 → production" in text

    assert worker.run(messages, attempt=2)["batchItemFailures"] == []  # the same approve job, redelivered
    assert drone_changes(fake_drone) == [promote]
    assert posted(fake_dingtalk)[-1][1] == text

    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)  # too late: already decided
    assert drone_changes(fake_drone) == [promote]
    assert posted(fake_dingtalk)[-1][1] == f"⛔ Request {pending.id} is already approved."


def test_an_approval_whose_drone_call_failed_is_finished_by_its_retry(worker, fake_drone, fake_dingtalk, session):
    pending = request_production(worker, session)
    fake_drone.statuses, fake_drone.fault_methods = [503], {"POST"}
    say(f"approve {pending.id}", who="carol", session_webhook=session)
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1  # Drone answered 503: try again later
    assert approvals.get(pending.id).status == "approved" and drone_changes(fake_drone) == [
        (
            "POST",
            "/api/repos/shop/shop-api/builds/128/promote",
            {"target": ["production"], "OPSBOT_REQUESTED_BY": ["Alice Wang ✔ carol"]},
        )
    ]
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    # the refused call and the one that went through, after asking Drone whether the first had
    assert len(drone_changes(fake_drone)) == 2
    assert "→ production" in posted(fake_dingtalk)[-1][1]


def cut_off_before_the_decision(monkeypatch) -> None:
    """The first approval's worker stops after the approver was added, before the request was decided."""
    real, calls = approvals._decide, []

    def cut_off(request, status, who):
        calls.append(who)
        if len(calls) == 1:
            raise RuntimeError("the worker stopped here")
        return real(request, status, who)

    monkeypatch.setattr(approvals, "_decide", cut_off)


PRODUCTION_PROMOTE = (
    "POST",
    "/api/repos/shop/shop-api/builds/128/promote",
    {"target": ["production"], "OPSBOT_REQUESTED_BY": ["Alice Wang ✔ carol"]},
)


def test_an_approval_cut_off_before_its_decision_is_decided_by_its_retry(
    worker, fake_drone, fake_dingtalk, session, monkeypatch
):
    pending = request_production(worker, session)
    cut_off_before_the_decision(monkeypatch)
    say(f"approve {pending.id}", who="carol", session_webhook=session)
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1
    stuck = approvals.get(pending.id)
    assert (stuck.status, stuck.approvers) == ("pending", ["carol"])  # enough approvals, no decision
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    decided = approvals.get(pending.id)
    assert (decided.status, decided.decided_by) == ("approved", "carol")
    assert drone_changes(fake_drone) == [PRODUCTION_PROMOTE]
    assert "→ production" in posted(fake_dingtalk)[-1][1]


def test_an_approval_left_undecided_is_decided_by_the_next_approver(
    worker, fake_drone, fake_dingtalk, session, monkeypatch
):
    pending = request_production(worker, session)
    cut_off_before_the_decision(monkeypatch)
    say(f"approve {pending.id}", who="carol", session_webhook=session)
    assert len(worker.run()["batchItemFailures"]) == 1  # carol's job will be retried later
    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)
    decided = approvals.get(pending.id)
    assert (decided.status, decided.approvers, decided.decided_by) == ("approved", ["carol", "xiaoming"], "xiaoming")
    assert [path for _, path, _ in drone_changes(fake_drone)] == ["/api/repos/shop/shop-api/builds/128/promote"]


def test_a_developer_cannot_approve(worker, fake_drone, session):
    pending = request_production(worker, session)
    denied = say(f"approve {pending.id}", who="bob", session_webhook=session)
    assert denied["markdown"]["text"] == "⛔ `approve` needs the role deployer or ops; your roles: developer."
    assert [m for m in worker.aws.receive(visibility=0) if m["MessageId"] not in worker.done] == []
    assert approvals.get(pending.id).status == "pending" and drone_changes(fake_drone) == []


def test_reject_stops_the_request(worker, fake_drone, fake_dingtalk, session):
    pending = request_production(worker, session)
    act(worker, f"reject {pending.id}", who="carol", session_webhook=session)
    assert approvals.get(pending.id).status == "rejected"
    assert posted(fake_dingtalk)[-1][1] == (
        f"✖ Carol Zhang rejected `{pending.id}`: shop-api #128 → production will not be deployed."
    )
    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)
    assert posted(fake_dingtalk)[-1][1] == f"⛔ Request {pending.id} is already rejected."
    assert drone_changes(fake_drone) == []


def test_the_requester_may_withdraw(worker, fake_drone, session):
    pending = request_production(worker, session)
    act(worker, f"拒绝 {pending.id}", who="alice", session_webhook=session)
    assert approvals.get(pending.id).status == "rejected"


def test_an_expired_request_cannot_be_approved(worker, fake_drone, fake_dingtalk, session):
    approvals.create(
        approvals.ApprovalRequest(
            id="0ld0ne00",
            action="deploy",
            project="shop-api",
            target="production",
            build=128,
            commit="9c8d7e6f",
            branch="main",
            requester="alice",
            requester_name="Alice Wang",
            needed=1,
            deadline=int(time.time()) - 60,
        )
    )
    act(worker, "approve 0ld0ne00", who="carol", session_webhook=session)
    assert posted(fake_dingtalk)[-1][1] == "⛔ Request 0ld0ne00 has expired."
    assert approvals.get("0ld0ne00").status == "pending" and drone_changes(fake_drone) == []


def test_an_unknown_request_cannot_be_approved(worker, fake_dingtalk, session):
    act(worker, "approve deadbeef", who="carol", session_webhook=session)
    assert posted(fake_dingtalk)[-1][1] == "⛔ There is no such approval request."


# --- Drone unavailable: retried, then reported and dead-lettered -------------------------------------------------


def test_drone_5xx_is_retried_then_reported_and_dead_lettered(aws, worker, fake_drone, fake_dingtalk, session):
    fake_drone.down = True
    say("deploy shop-api 128 to staging", session_webhook=session)
    messages = worker.take()
    for attempt in (1, 2):
        response = worker.run(messages, attempt=attempt)
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [messages[0]["MessageId"]]
        assert posted(fake_dingtalk) == [] and aws.dead_letters() == []
        assert audit_log()[0].result == "queued"
    response = worker.run(messages, attempt=3)
    assert response["batchItemFailures"] == []
    [(where, text)] = posted(fake_dingtalk)
    assert where == "session"
    assert text == (
        "❌ `deploy` did not complete: Drone answered HTTP 503 (tried 3 times). Try again later, "
        "or ask the platform team."
    )
    [dead] = aws.dead_letters()
    assert json.loads(dead["Body"])["kind"] == "chat.command"
    assert (
        dead["MessageAttributes"]["reason"]["StringValue"] == "deploy gave up after 3 attempts: Drone answered HTTP 503"
    )
    [record] = audit_log()
    assert (record.result, record.detail) == ("failed", "Drone answered HTTP 503")
    assert drone_changes(fake_drone) == []


def test_drone_back_on_the_second_attempt_deploys_once(worker, fake_drone, fake_dingtalk, session):
    fake_drone.statuses = [502]
    say("deploy shop-api 128 to staging", session_webhook=session)
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    assert len(drone_changes(fake_drone)) == 1
    assert [r.result for r in audit_log()] == ["succeeded"]
    assert len(posted(fake_dingtalk)) == 1


# --- where results go ------------------------------------------------------------------------------------------


def test_an_expired_session_sends_the_result_through_the_projects_robot(worker, fake_dingtalk, session):
    expired = int(time.time() * 1000) - 1000
    act(worker, "restart shop-api 127", who="bob", session_webhook=session, session_expires_ms=expired)
    [(where, text)] = posted(fake_dingtalk)
    assert where == "shop-backend" and text.startswith("### 🔄 Restarted shop-api #127")


def test_a_session_about_to_expire_is_not_used(worker, fake_dingtalk, session):
    soon = int(time.time() * 1000) + 10_000
    act(worker, "restart shop-api 127", who="bob", session_webhook=session, session_expires_ms=soon)
    assert [where for where, _ in posted(fake_dingtalk)] == ["shop-backend"]


@pytest.mark.parametrize(
    "url",
    [
        "https://oapi.dingtalk.com/robot/sendBySession?session=local-session-unit",  # real DingTalk: not this stack's
        "http://localhost:{port}/robot/sendBySession?session=local-session-unit",
        "http://127.0.0.1:{port}/robot/send?access_token=local-shop-backend",
    ],
)
def test_a_session_webhook_outside_the_prefix_is_ignored(worker, fake_dingtalk, url):
    port = fake_dingtalk.url.rsplit(":", 1)[1]
    act(worker, "restart shop-api 127", who="bob", session_webhook=url.format(port=port))
    assert [where for where, _ in posted(fake_dingtalk)] == ["shop-backend"]
    assert fake_dingtalk.rejected == []


def test_without_a_session_webhook_the_robot_gets_it(worker, fake_dingtalk):
    act(worker, "restart shop-api 127", who="bob")
    assert [where for where, _ in posted(fake_dingtalk)] == ["shop-backend"]


def test_session_webhook_checks(env):
    env("DINGTALK_SESSION_WEBHOOK_PREFIX", "https://oapi.dingtalk.com/robot/sendBySession?")
    url = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
    now = 1_732_521_600_000
    assert (
        replies.conversation({"sessionWebhook": url, "sessionWebhookExpiredTime": now + 120_000}).open_reply_url(now)
        == url
    )
    assert (
        replies.conversation({"sessionWebhook": url, "sessionWebhookExpiredTime": now + 30_000}).open_reply_url(now)
        == ""
    )
    assert replies.conversation({"sessionWebhook": url, "sessionWebhookExpiredTime": now - 1}).open_reply_url(now) == ""
    assert replies.conversation({"sessionWebhook": url}).open_reply_url(now) == ""
    assert (
        replies.conversation({"sessionWebhook": url, "sessionWebhookExpiredTime": str(now + 10**7)}).open_reply_url(now)
        == ""
    )
    assert replies.conversation({"sessionWebhook": url, "sessionWebhookExpiredTime": True}).open_reply_url(now) == ""
    assert (
        replies.conversation({"sessionWebhook": ["x"], "sessionWebhookExpiredTime": now + 10**7}).open_reply_url(now)
        == ""
    )
    evil = "https://oapi.dingtalk.com.evil.example/robot/sendBySession?session=abc"
    assert (
        replies.conversation({"sessionWebhook": evil, "sessionWebhookExpiredTime": now + 10**7}).open_reply_url(now)
        == ""
    )


def test_dingtalk_down_is_retried_without_running_the_command_again(
    worker, fake_drone, fake_dingtalk, session, monkeypatch
):
    from opsbot.channels import dingtalk as robot
    from opsbot.jobs.model import RetryLater

    real, calls = robot.send_by_session, []

    def flaky(url, message):
        calls.append(url)
        if len(calls) == 1:
            raise RetryLater("session webhook: HTTP 502")
        return real(url, message)

    monkeypatch.setattr(robot, "send_by_session", flaky)
    say("restart shop-api 127", who="bob", session_webhook=session)
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    assert len(drone_changes(fake_drone)) == 1  # the restart ran once; its result was posted on the retry
    assert len(calls) == 2 and len(posted(fake_dingtalk)) == 1
    assert audit_log()[0].result == "succeeded"


def test_two_approvals_needed_deploys_on_the_second(worker, fake_drone, fake_dingtalk, session):
    from unit_support import example_documents

    from opsbot.config import store

    documents = example_documents(drone=fake_drone.url, dingtalk=fake_dingtalk.url)
    next(d for d in documents if d.name == "projects/shop-api.yaml").data["environments"]["production"]["approvals"] = 2
    store.save(documents, "two-approvals")
    pending = request_production(worker, session)
    assert pending.needed == 2
    act(worker, f"approve {pending.id}", who="carol", session_webhook=session)
    assert posted(fake_dingtalk)[-1][1] == f"✔ Carol Zhang approved `{pending.id}`; 1 more approval(s) needed."
    assert drone_changes(fake_drone) == [] and approvals.get(pending.id).status == "pending"
    act(worker, f"approve {pending.id}", who="carol", session_webhook=session)  # the same person twice
    assert posted(fake_dingtalk)[-1][1] == "⛔ You have already approved this request."
    act(worker, f"approve {pending.id}", who="xiaoming", session_webhook=session)  # ops and admin
    assert [path for _, path, _ in drone_changes(fake_drone)] == ["/api/repos/shop/shop-api/builds/128/promote"]
    decided = approvals.get(pending.id)
    assert (decided.status, decided.approvers, decided.decided_by) == ("approved", ["carol", "xiaoming"], "xiaoming")


def test_drone_not_configured_is_a_plain_message_from_the_worker(worker, fake_drone, fake_dingtalk, session):
    from unit_support import example_documents

    from opsbot.config import store

    documents = example_documents(dingtalk=fake_dingtalk.url)
    next(d for d in documents if d.name == "opsbot.yaml").data.pop("drone")
    store.save(documents, "no-drone")
    act(worker, "deploy shop-api 128 to staging", session_webhook=session)
    assert posted(fake_dingtalk) == [
        ("session", "This opsbot is not connected to Drone: set `drone: {server, token}` in opsbot.yaml.")
    ]
    assert (audit_log()[0].result, audit_log()[0].detail) == ("failed", "Drone is not configured")
    assert fake_drone.calls == []


def test_a_production_rollback_goes_through_approval_too(worker, fake_drone, fake_dingtalk, session):
    act(worker, "rollback shop-api production", session_webhook=session)
    assert posted(fake_dingtalk)[-1][1] == "⛔ production has no earlier successful deployment to roll back to."
    act(worker, "回滚 shop-api production 123", session_webhook=session)
    pending = pending_approval()
    assert (pending.action, pending.build, pending.target) == ("rollback", 123, "production")
    assert "请求回滚到 **shop-api** #123" in posted(fake_dingtalk)[-1][1]
    act(worker, f"approve {pending.id}", who="carol", session_webhook=session)
    assert drone_changes(fake_drone) == [
        (
            "POST",
            "/api/repos/shop/shop-api/builds/123/rollback",
            {"target": ["production"], "OPSBOT_REQUESTED_BY": ["Alice Wang ✔ carol"]},
        )
    ]


# --- attacks on the acting paths --------------------------------------------------------------------------------


def test_restart_never_reruns_a_deployment(worker, fake_drone, fake_dingtalk, session):
    """Attack 1: bob (developer) restarts #126, a `promote → staging` build: that would deploy again."""
    act(worker, "restart shop-api 126", who="bob", session_webhook=session)
    assert drone_changes(fake_drone) == []
    [(_, text)] = posted(fake_dingtalk)
    assert text == "⛔ #126 is a deployment (promote) and is never run again; use deploy or rollback."
    [record] = audit_log()
    assert (record.result, record.decision, record.via) == ("denied", "deny", "dingtalk")


def test_restart_never_reruns_a_custom_build_unless_the_config_allows_it(worker, fake_drone, fake_dingtalk, session):
    """A `custom` build was started by hand with its own parameters (a data fix, a deploy-like job): a restart would
    run them again. Refused, unless `permissions.restart.events` names custom."""
    from opsbot.config import store

    [number] = fake_drone.add_builds(
        "shop/shop-api", [{"event": "custom", "target": "main", "status": "success", "params": {"MIGRATE": "drop"}}]
    )
    act(worker, f"restart shop-api {number}", who="bob", session_webhook=session)
    assert drone_changes(fake_drone) == []
    assert f"#{number} is a custom build (started by hand, with parameters of its own)" in posted(fake_dingtalk)[-1][1]
    documents = store.current_documents()[1]
    next(d for d in documents if d.name == "opsbot.yaml").data["permissions"]["restart"]["events"] = ["push", "custom"]
    store.save(documents, "custom-allowed")
    act(worker, f"restart shop-api {number}", who="bob", session_webhook=session, msg_id=f"custom-{number}")
    assert [path for _, path, _ in drone_changes(fake_drone)] == [f"/api/repos/shop/shop-api/builds/{number}"]


def test_deploy_refuses_a_pull_request_build_of_the_environments_branch(worker, fake_drone, fake_dingtalk, session):
    [number] = fake_drone.add_builds(
        "shop/shop-api",
        [{"event": "pull_request", "source": "main", "target": "main", "ref": "refs/pull/7/head", "status": "success"}],
    )
    act(worker, f"deploy shop-api {number} staging", session_webhook=session)
    assert drone_changes(fake_drone) == []
    assert posted(fake_dingtalk)[-1][1] == f"⛔ staging takes push builds; #{number} is a pull_request build."


def test_a_promote_whose_answer_was_lost_is_looked_up_not_posted_again(worker, fake_drone, fake_dingtalk, session):
    """Drone promoted, but its answer timed out (504): the retry asks Drone before posting again."""
    fake_drone.statuses, fake_drone.fault_methods, fake_drone.fault_after = [504], {"POST"}, True
    reply = say("deploy shop-api 128 to staging", session_webhook=session)
    assert reply["markdown"]["title"] == "ok"
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1  # 504: try again later
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    promotes = [c for c in fake_drone.calls if c["method"] == "POST"]
    assert len(promotes) == 1  # one promote reached Drone; the retry found its build by the request id
    [started] = [b for b in fake_drone.builds["shop/shop-api"] if b["event"] == "promote" and b["parent"] == 128]
    assert any(k.startswith("OPSBOT_REQUEST_") for k in started["params"])
    assert f"Drone build [#{started['number']}]" in posted(fake_dingtalk)[-1][1]


def test_a_promote_refused_by_a_proxy_is_posted_again_after_the_lookup(worker, fake_drone, fake_dingtalk, session):
    """A 503 before Drone did anything: the lookup finds no build, so the retry posts again, once."""
    fake_drone.statuses, fake_drone.fault_methods = [503], {"POST"}
    say("deploy shop-api 128 to staging", session_webhook=session)
    messages = worker.take()
    assert len(worker.run(messages)["batchItemFailures"]) == 1
    assert worker.run(messages, attempt=2)["batchItemFailures"] == []
    assert len([c for c in fake_drone.calls if c["method"] == "POST"]) == 2
    assert len([b for b in fake_drone.builds["shop/shop-api"] if b["event"] == "promote" and b["parent"] == 128]) == 1


def test_an_approval_is_bound_to_the_commit_it_was_asked_for(worker, fake_drone, fake_dingtalk, session):
    pending = request_production(worker, session)
    [build] = [b for b in fake_drone.builds["shop/shop-api"] if b["number"] == 128]
    build["after"] = "f" * 40  # Drone's #128 is now another commit (a force-push and rebuild, say)
    act(worker, f"approve {pending.id}", who="carol", session_webhook=session)
    assert drone_changes(fake_drone) == []
    assert "is no longer commit" in posted(fake_dingtalk)[-1][1]


def test_an_act_whose_lease_another_attempt_holds_waits_past_the_report_attempt(
    aws, worker, fake_drone, fake_dingtalk, session, monkeypatch
):
    """A worker stopped mid-act holds the act's lease until it ends; the redeliveries wait for it rather than tell
    the person the deploy failed (found by `make chaos`: an approval told "gave up" a second before the lease
    ended, and never run)."""
    from opsbot.state import effects

    say("deploy shop-api 128 to staging", session_webhook=session)
    messages = worker.take()
    real_once = effects.once

    def busy(key, effect):
        raise effects.EffectBusy(f"effect {key} is running in another worker", delay=5)

    monkeypatch.setattr(effects, "once", busy)
    for attempt in (1, 2, 3, 4, 5):
        response = worker.run(messages, attempt=attempt)
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [messages[0]["MessageId"]]
    assert posted(fake_dingtalk) == [] and aws.dead_letters() == []
    monkeypatch.setattr(effects, "once", real_once)
    assert worker.run(messages, attempt=5)["batchItemFailures"] == []  # the lease ended: it runs, once
    assert "→ staging" in posted(fake_dingtalk)[-1][1] and len(drone_changes(fake_drone)) == 1
