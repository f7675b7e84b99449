"""Run-once effects (state/effects.py) under the crashes SQS makes likely: a worker killed in the middle of an effect,
a copy of the job running at the same time, an answer lost after the peer acted; through the build notification, the
effect every build takes."""

from __future__ import annotations

import json
import threading
import time

import pytest
from unit_support import ROOT, fixture_json, sqs_event

from local import template as template_module
from opsbot.jobs import queue
from opsbot.jobs.model import MAX_RECEIVES, Job, RetryLater
from opsbot.message import Message
from opsbot.notify.jobs import notify_build_finished
from opsbot.state import effects

TEMPLATE = template_module.load(ROOT / "template.yaml")


@pytest.fixture
def clock(monkeypatch):
    """time.time() moved by hand: `clock.advance(seconds)`."""

    class Clock:
        offset = 0.0

        def advance(self, seconds: float) -> None:
            self.offset += seconds

    clock, real = Clock(), time.time
    monkeypatch.setattr(time, "time", lambda: real() + clock.offset)
    return clock


@pytest.fixture
def messages(fake_dingtalk):
    """The text of every message the fake DingTalk took from a robot."""
    return lambda: [sent["message"]["markdown"]["text"] for sent in fake_dingtalk.accepted]


def build_job(number: int = 128) -> Job:
    delivery = fixture_json("drone/build_failure.json")
    delivery["build"]["number"] = number
    return Job(
        kind="drone.build_finished",
        payload={"repo": delivery["repo"], "build": delivery["build"], "system": delivery["system"]},
    )


class Stalled:
    """Runs `target` in a thread that stops for good where `stop_here` is called: a worker killed at that point,
    whose claims stay as it left them and nothing after it runs."""

    def __init__(self):
        self.reached = threading.Event()
        self.release = threading.Event()

    def stop_here(self, *args, **kwargs):
        self.reached.set()
        self.release.wait(30)
        raise SystemExit("killed")  # let the thread end with the test; nothing below this point runs

    def run(self, target) -> threading.Thread:
        thread = threading.Thread(target=lambda: _swallow(target), daemon=True)
        thread.start()
        assert self.reached.wait(10), "the stalled attempt never got there"
        return thread

    def end(self, thread: threading.Thread) -> None:
        self.release.set()
        thread.join(10)


def _swallow(target) -> None:
    try:
        target()
    except BaseException:  # the stalled attempt is dead: what it would raise does not matter
        pass


def after_send(monkeypatch, stalled: Stalled) -> None:
    """Stall every robot send right after DingTalk took the message."""
    from opsbot.channels import dingtalk as robot

    real = robot.send

    def send_then_stall(robot_config, message):
        real(robot_config, message)
        stalled.stop_here()

    monkeypatch.setattr(robot, "send", send_then_stall)


def test_the_lease_outlasts_the_visibility_timeout_which_outlasts_the_worker():
    queue = TEMPLATE.resources_of("AWS::SQS::Queue")["WorkQueue"]["Properties"]
    visibility = queue["VisibilityTimeout"]
    assert effects.LEASE_SECONDS > visibility >= 6 * TEMPLATE.timeout_seconds("WorkerFunction")
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == MAX_RECEIVES


def test_a_worker_killed_after_the_send_is_not_repeated_by_the_redelivery(chat_config, messages, monkeypatch, clock):
    from opsbot.channels import dingtalk as robot

    job, stalled, real = build_job(), Stalled(), robot.send
    after_send(monkeypatch, stalled)
    thread = stalled.run(lambda: notify_build_finished(job))  # killed after DingTalk took it, before the record
    monkeypatch.setattr(robot, "send", real)  # the next attempt is a fresh worker
    try:
        clock.advance(361)  # SQS hands the message out again once its visibility timeout is over
        with pytest.raises(RetryLater, match="running in another worker"):
            notify_build_finished(job)
        clock.advance(effects.LEASE_SECONDS)  # the lease is over: that attempt surely is
        with pytest.raises(effects.EffectInDoubt, match="may have happened"):
            notify_build_finished(job)
        assert len(messages()) == 1
    finally:
        stalled.end(thread)


def test_two_copies_at_once_send_once(chat_config, messages, monkeypatch):
    from opsbot.delivery import robot as delivery

    job, stalled, real = build_job(), Stalled(), delivery.deliver

    def stall_then_deliver(*args):
        stalled.stop_here()

    monkeypatch.setattr(delivery, "deliver", stall_then_deliver)
    first = stalled.run(lambda: notify_build_finished(job))  # inside its effect, about to send
    monkeypatch.setattr(delivery, "deliver", real)
    try:
        with pytest.raises(RetryLater, match="running in another worker"):
            notify_build_finished(job)  # SQS handed a second copy to another worker
        assert messages() == []
    finally:
        stalled.end(first)


def test_a_worker_killed_before_the_send_is_taken_over_after_its_lease(chat_config, messages, monkeypatch, clock):
    from opsbot.delivery import robot as delivery

    job, stalled, real = build_job(), Stalled(), delivery.deliver
    monkeypatch.setattr(delivery, "deliver", lambda *args: stalled.stop_here())
    thread = stalled.run(lambda: notify_build_finished(job))
    monkeypatch.setattr(delivery, "deliver", real)
    try:
        clock.advance(effects.LEASE_SECONDS + 1)
        assert notify_build_finished(job) == "sent"  # nothing was committed: safe to run again
        assert len(messages()) == 1
    finally:
        stalled.end(thread)


def test_an_answer_lost_after_dingtalk_took_the_message_parks_the_job_instead_of_sending_twice(
    aws, chat_config, messages, monkeypatch, handlers, lambda_context
):
    import requests
    from requests.adapters import HTTPAdapter

    real_send = HTTPAdapter.send

    def taken_then_timed_out(self, request, **kwargs):
        response = real_send(self, request, **kwargs)
        if "/robot/send" in request.url:
            raise requests.ReadTimeout("read timed out")
        return response

    monkeypatch.setattr(HTTPAdapter, "send", taken_then_timed_out)
    queue.enqueue(build_job())
    [message] = aws.receive(visibility=0)
    response = handlers.worker.lambda_handler(sqs_event([message]), lambda_context)
    assert response["batchItemFailures"] == []  # not retried: it would send the message again
    [dead] = aws.dead_letters()
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert "may have happened" in reason and "ReadTimeout" in reason and "redrive" in reason
    assert len(messages()) == 1

    # An operator who finds no message in the group redrives the parked copy: it names the effect to run again.
    monkeypatch.setattr(HTTPAdapter, "send", real_send)
    parked = Job.from_json(dead["Body"])
    assert parked.retake == [f"notified#{parked.id}"]
    aws.sqs.delete_message(QueueUrl=aws.work_queue_url, ReceiptHandle=message["ReceiptHandle"])  # as Lambda does
    aws.sqs.send_message(QueueUrl=aws.work_queue_url, MessageBody=dead["Body"])
    [redriven] = aws.receive(visibility=0)
    for attempt in (1, 2):  # and its redelivery is once
        redriven.setdefault("Attributes", {})["ApproximateReceiveCount"] = str(attempt)
        assert handlers.worker.lambda_handler(sqs_event([redriven]), lambda_context)["batchItemFailures"] == []
    assert len(messages()) == 2 and len(aws.dead_letters()) == 1


def test_a_plain_redelivery_of_an_effect_in_doubt_parks_again(chat_config, messages, monkeypatch, clock):
    job, stalled = build_job(), Stalled()
    after_send(monkeypatch, stalled)
    thread = stalled.run(lambda: notify_build_finished(job))
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: pytest.fail("sent again"))
    try:
        clock.advance(effects.LEASE_SECONDS + 1)
        for _ in range(2):
            with pytest.raises(effects.EffectInDoubt):
                notify_build_finished(job)
    finally:
        stalled.end(thread)


def test_a_send_outside_any_effect_is_refused_before_it_happens(chat_config, messages):
    from opsbot.delivery import robot as delivery

    config = chat_config
    with pytest.raises(RuntimeError, match="outside effects.once"):
        delivery.deliver(config, config.robots["shop-backend"], Message(title="x", lines=["x"]), "x")
    assert messages() == []


def test_a_failure_before_the_commit_point_is_simply_retried(aws):
    runs = []

    def flaky() -> dict:
        runs.append(1)
        if len(runs) == 1:
            raise RetryLater("peer busy")
        return {"n": len(runs)}

    with pytest.raises(RetryLater):
        effects.once("test#flaky", flaky)
    assert effects.once("test#flaky", flaky) == {"n": 2}
    assert effects.once("test#flaky", flaky) == {"n": 2} and len(runs) == 2
    assert json.loads(aws.state_item("effect#test#flaky")["result"]["S"]) == {"n": 2}


def test_a_peers_definite_answer_after_the_commit_point_is_not_in_doubt(aws):
    from opsbot.gitlab.api import GitLabRefused

    runs = []

    def refused_then_done() -> dict:
        runs.append(1)
        effects.commit()
        if len(runs) == 1:
            raise GitLabRefused(403, "forbidden")  # GitLab said no: nothing was posted
        return {"posted": True}

    with pytest.raises(GitLabRefused):
        effects.once("test#refused", refused_then_done)
    assert effects.once("test#refused", refused_then_done) == {"posted": True} and len(runs) == 2
