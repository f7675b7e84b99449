"""The worker Lambda on real SQS messages (moto): retries by visibility, the DLQ for what cannot succeed, and the
build notification job end to end with the robot send recorded."""

from __future__ import annotations

import json

import pytest
from unit_support import fixture_json, sqs_event

from opsbot.jobs import queue, registry, worker
from opsbot.jobs.model import Job, PermanentFailure, RetryLater


@pytest.fixture
def run_worker(aws, handlers, lambda_context):
    """Receive what is on the work queue (leaving it visible) and hand it to the worker as one batch."""

    def run() -> tuple[dict, list[dict]]:
        messages = aws.receive(visibility=0)
        assert messages, "nothing on the work queue"
        return handlers.worker.lambda_handler(sqs_event(messages), lambda_context), messages

    return run


@pytest.fixture
def test_handlers(monkeypatch):
    """Register throwaway job kinds for one test."""

    def register(kind: str, handler) -> None:
        monkeypatch.setitem(registry.HANDLERS, kind, handler)

    return register


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def put(kind: str, payload: dict | None = None, job_id: str | None = None) -> Job:
    job = Job(kind=kind, payload=payload or {})
    if job_id:
        job.id = job_id
    queue.enqueue(job)
    return job


def message_for(messages: list[dict], job: Job) -> dict:
    return next(m for m in messages if json.loads(m["Body"])["id"] == job.id)


def failed_ids(response: dict) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_retry_later_is_reported_and_its_visibility_changed(aws, run_worker, test_handlers):
    def busy(job):
        raise RetryLater("peer busy", delay=600)

    test_handlers("test.busy", busy)
    test_handlers("test.ok", lambda job: "done")
    busy_job, ok_job = put("test.busy"), put("test.ok")

    response, messages = run_worker()

    assert failed_ids(response) == {message_for(messages, busy_job)["MessageId"]}
    # The messages were received with visibility 0: the acknowledged one is visible again at once (Lambda
    # would delete it), the retried one is hidden for the 600 s the handler asked for.
    visible = [json.loads(m["Body"])["id"] for m in aws.receive()]
    assert visible == [ok_job.id]
    assert aws.dead_letters() == []


def test_unexpected_exception_is_retried_with_backoff(aws, run_worker, test_handlers, monkeypatch):
    delays = []
    real_retry = worker._retry_later
    monkeypatch.setattr(
        worker, "_retry_later", lambda handle, seconds: (delays.append(seconds), real_retry(handle, seconds))
    )

    def broken(job):
        raise KeyError("surprise")

    test_handlers("test.broken", broken)
    test_handlers("test.ok", lambda job: "done")
    broken_job, _ = put("test.broken"), put("test.ok")

    response, messages = run_worker()
    assert failed_ids(response) == {message_for(messages, broken_job)["MessageId"]}
    assert len(delays) == 1 and 30 <= delays[0] <= 33  # RETRY_BASE_SECONDS plus up to 10 % jitter
    assert broken_job.id not in [json.loads(m["Body"])["id"] for m in aws.receive()]


def test_whole_batch_failing_is_still_not_lost(aws, handlers, lambda_context, test_handlers):
    def busy(job):
        raise RetryLater("peer busy", delay=600)

    test_handlers("test.busy", busy)
    put("test.busy")
    messages = aws.receive(visibility=0)
    # Every record failing is reported like any partial failure, not as a Lambda error; SQS already hides
    # the messages for the retry delay.
    result = handlers.worker.lambda_handler(sqs_event(messages), lambda_context)
    assert result["batchItemFailures"] == [{"itemIdentifier": m["MessageId"]} for m in messages]
    assert aws.receive() == []
    assert aws.dead_letters() == []


def test_permanent_failure_is_parked_in_the_dlq_and_not_retried(aws, run_worker, test_handlers):
    def refused(job):
        raise PermanentFailure("robot shop-backend: errcode 310000 keywords not in content")

    test_handlers("test.refused", refused)
    job = put("test.refused", {"x": 1})

    response, messages = run_worker()

    assert response["batchItemFailures"] == []
    dead = aws.dead_letters()
    assert len(dead) == 1
    assert json.loads(dead[0]["Body"])["id"] == job.id
    assert dead[0]["Body"] == messages[0]["Body"]  # the job as it was, ready for a redrive
    assert (
        dead[0]["MessageAttributes"]["reason"]["StringValue"]
        == "robot shop-backend: errcode 310000 keywords not in content"
    )
    assert dead[0]["MessageAttributes"]["kind"]["StringValue"] == "test.refused"


def test_unknown_job_kind_goes_to_the_dlq(aws, run_worker):
    put("no.such.kind")
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    dead = aws.dead_letters()
    assert len(dead) == 1
    assert dead[0]["MessageAttributes"]["reason"]["StringValue"] == "no handler for job kind no.such.kind"
    assert dead[0]["MessageAttributes"]["kind"]["StringValue"] == "no.such.kind"


@pytest.mark.parametrize("body", ["not json at all", '{"payload": {}}', "[1, 2, 3]", "42"])
def test_unreadable_body_goes_to_the_dlq(aws, run_worker, body):
    aws.sqs.send_message(QueueUrl=aws.work_queue_url, MessageBody=body)
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    dead = aws.dead_letters()
    assert [d["Body"] for d in dead] == [body]
    assert dead[0]["MessageAttributes"]["kind"]["StringValue"] == "unreadable"
    assert dead[0]["MessageAttributes"]["reason"]["StringValue"].startswith("not a job:")


def test_long_reason_is_cut_to_fit_a_message_attribute(aws):
    queue.park_in_dead_letter_queue('{"kind":"x"}', "x", "r" * 5000)
    assert len(aws.dead_letters()[0]["MessageAttributes"]["reason"]["StringValue"]) == 1000


def test_later_feature_jobs_are_acknowledged(aws, run_worker):
    put("gitlab.tag_push", {"object_kind": "tag_push"})  # merge requests, notes and pipelines: opsbot.review
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    assert aws.dead_letters() == []


def test_chat_messages_are_no_later_feature_any_more(handlers):
    # DingTalk callbacks are answered by the chat layer: reads at once, acts as `chat.command` jobs that the
    # worker Lambda runs (it registers their handlers on import).
    from opsbot.jobs import later_features

    assert handlers.worker.lambda_handler

    assert "dingtalk.message" not in later_features.NOT_YET_HANDLED
    assert registry.handler_for("chat.command") and registry.handler_for("release.link")


def test_enqueue_caps_the_delay_at_sqs_maximum(aws, monkeypatch):
    sent_delays = []
    real = queue.client

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def send_message(self, **kwargs):
            sent_delays.append(kwargs["DelaySeconds"])
            return self.inner.send_message(**kwargs)

    monkeypatch.setattr(queue, "client", lambda service: Spy(real(service)))
    queue.enqueue(Job(kind="x", payload={}), delay_seconds=5000)
    queue.enqueue(Job(kind="x", payload={}), delay_seconds=-5)
    assert sent_delays == [900, 0]


@pytest.mark.parametrize("receive_count, low, high", [(1, 30, 33), (2, 60, 66), (3, 120, 132), (5, 480, 528)])
def test_backoff_doubles_with_jitter(receive_count, low, high):
    for _ in range(20):
        assert low <= worker.backoff_seconds(receive_count) <= high


def test_backoff_never_exceeds_the_configured_maximum():
    # RETRY_MAX_SECONDS is "the largest retry delay": jitter must not push past it.
    assert all(worker.backoff_seconds(20) <= 900 for _ in range(200))
    assert max(worker.backoff_seconds(20) for _ in range(200)) >= 800


def test_job_json_round_trip():
    job = Job(kind="drone.build_finished", payload={"title": "构建失败"}, correlation_id="req-1")
    text = job.to_json()
    assert "构建失败" in text  # kept readable, not \u-escaped
    assert Job.from_json(text) == job


# --- the build notification job ------------------------------------------------------------------------------


def build_job(fixture: str = "build_failure", **build_changes) -> Job:
    delivery = fixture_json(f"drone/{fixture}.json")
    delivery["build"].update(build_changes)
    return put(
        "drone.build_finished", {"repo": delivery["repo"], "build": delivery["build"], "system": delivery["system"]}
    )


def test_finished_build_job_sends_one_markdown_message(aws, example_config, run_worker, sent):
    job = build_job()
    response, _ = run_worker()

    assert response["batchItemFailures"] == []
    assert len(sent) == 1
    robot_name, message = sent[0]
    assert robot_name == "shop-backend"
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "❌ 构建失败 · shop-api #128"
    assert "default › test" in message["markdown"]["text"]
    assert "@alice.wang" in message["markdown"]["text"]
    assert message["at"]["atUserIds"] == ["alice.wang"]
    assert aws.state_item(f"effect#notified#{job.id}") is not None
    assert aws.state_item("branch#shop/shop-api#main")["status"]["S"] == "failure"
    assert len(aws.state_item("robot#shop-backend")["sends"]["L"]) == 1
    assert aws.dead_letters() == []


def test_redelivered_build_job_notifies_once(aws, example_config, sent):
    from opsbot.notify.jobs import notify_build_finished

    job = build_job()
    assert notify_build_finished(job) == "sent"
    assert notify_build_finished(job) == "already notified"
    assert len(sent) == 1


def test_success_after_failure_is_sent_as_fixed(aws, example_config, sent):
    from opsbot.notify.jobs import notify_build_finished

    notify_build_finished(build_job("build_failure", number=40))
    notify_build_finished(build_job("build_success", number=41, target="develop", source="develop"))
    notify_build_finished(build_job("build_success", number=42))
    titles = [m["markdown"]["title"] for _, m in sent]
    assert titles == ["❌ 构建失败 · shop-api #40", "🎉 构建已修复 · shop-api #42"]


def test_quiet_build_sends_nothing(aws, example_config, sent):
    from opsbot.notify.jobs import notify_build_finished

    result = notify_build_finished(build_job("build_success", target="feature/x", source="feature/x"))
    assert result.startswith("quiet")
    assert sent == []


def test_build_of_an_unconfigured_repo_is_acknowledged(aws, example_config, sent):
    from opsbot.notify.jobs import notify_build_finished

    delivery = fixture_json("drone/build_failure.json")
    delivery["repo"]["slug"] = "other/repo"
    job = Job(kind="drone.build_finished", payload={"repo": delivery["repo"], "build": delivery["build"]})
    assert notify_build_finished(job) == "no project is configured for other/repo"
    assert sent == []


def test_promote_job_does_not_touch_branch_status(aws, example_config, sent):
    from opsbot.notify.jobs import notify_build_finished

    assert notify_build_finished(build_job("promote_success")) == "sent"
    assert sent[0][1]["markdown"]["title"] == "🚀 已发布到 production · shop-api #129"
    assert aws.state_items("branch#") == []


def test_robot_refusal_parks_the_build_job(aws, example_config, run_worker, monkeypatch):
    def refuse(robot, message):
        raise PermanentFailure(f"robot {robot.name}: errcode 310000 keywords not in content")

    monkeypatch.setattr("opsbot.channels.dingtalk.send", refuse)
    job = build_job()
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    dead = aws.dead_letters()
    assert [json.loads(d["Body"])["id"] for d in dead] == [job.id]
    assert "shop-backend" in dead[0]["MessageAttributes"]["reason"]["StringValue"]
    assert aws.state_item(f"effect#notified#{job.id}") is None


def test_robot_rate_limit_retries_the_build_job(aws, example_config, run_worker, monkeypatch, test_handlers):
    def muted(robot, message):
        raise RetryLater(f"robot {robot.name}: errcode 130101", delay=600)

    monkeypatch.setattr("opsbot.channels.dingtalk.send", muted)
    test_handlers("test.ok", lambda job: "done")
    job = build_job()
    put("test.ok")
    response, messages = run_worker()
    assert failed_ids(response) == {message_for(messages, job)["MessageId"]}
    assert job.id not in [json.loads(m["Body"])["id"] for m in aws.receive()]
    assert aws.state_item(f"effect#notified#{job.id}") is None  # a retry will notify


def test_build_job_without_config_is_retried(aws, run_worker, test_handlers, sent):
    test_handlers("test.ok", lambda job: "done")
    job = build_job()
    put("test.ok")
    response, messages = run_worker()
    assert failed_ids(response) == {message_for(messages, job)["MessageId"]}
    assert sent == []


def test_flush_job_sends_the_digest(aws, example_config, run_worker, sent):
    from opsbot.delivery import budget

    budget.claim_flush("shop-backend", 0)
    budget.fold("shop-backend", {"id": "a", "line": "- one", "mobiles": [], "user_ids": []})
    budget.fold("shop-backend", {"id": "b", "line": "- two", "mobiles": [], "user_ids": []})
    put("dingtalk.digest_flush", {"robot": "shop-backend"})
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    assert len(sent) == 1
    assert sent[0][1]["markdown"]["text"].endswith("- one\n\n- two")
    assert budget.read("shop-backend").pending == []


def test_flush_job_for_a_removed_robot_is_parked(aws, example_config, run_worker, sent):
    put("dingtalk.digest_flush", {"robot": "gone"})
    response, _ = run_worker()
    assert response["batchItemFailures"] == []
    dead = aws.dead_letters()
    assert len(dead) == 1 and "gone" in dead[0]["MessageAttributes"]["reason"]["StringValue"]
