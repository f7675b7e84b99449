"""The worker's time: a batch of jobs shares one Lambda timeout. A job starts only while its first call and the reserve
fit; a job that cannot fit its next call stops before it and goes on in a continuation, reading again only what it
had not read (jobs/deadline.py, state/reads.py)."""

from __future__ import annotations

import json
import time

import pytest
from unit_support import FakeLambdaContext, fixture_json, sqs_event

from opsbot.config import store
from opsbot.jobs import deadline, queue, registry, worker
from opsbot.jobs.model import Job

NEW_PROJECT = "repo: shop/new-api\nrobot: shop-backend\nlanguage: en\n"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def test_a_batch_with_little_time_left_starts_no_more_jobs_and_hands_them_back(aws, handlers, monkeypatch):
    context, ran = FakeLambdaContext(60), []

    def slow(job: Job) -> str:
        ran.append(job.id)
        context.ends_at -= 50  # this job took 50 s of the batch's minute
        return "done"

    monkeypatch.setitem(registry.HANDLERS, "test.slow", slow)
    jobs = [Job(kind="test.slow", payload={"n": n}) for n in range(5)]
    for job in jobs:
        queue.enqueue(job)
    messages = aws.receive(visibility=300)  # as Lambda's poller takes them: hidden for the visibility timeout
    assert len(messages) == 5
    response = handlers.worker.lambda_handler(sqs_event(messages), context)

    assert len(ran) == 1  # the others were never started
    first = next(m for m in messages if json.loads(m["Body"])["id"] == ran[0])
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {m["MessageId"] for m in messages} - {first["MessageId"]}
    # handed back at once for the next batch, not after the visibility timeout
    assert {m["MessageId"] for m in aws.receive()} == failed
    assert aws.dead_letters() == []


def test_a_job_may_start_only_when_a_call_and_the_reserve_fit(env):
    env("HTTP_TIMEOUT_SECONDS", "5")
    assert deadline.may_start(int((deadline.RESERVE_SECONDS + 5) * 1000))
    assert not deadline.may_start(int((deadline.RESERVE_SECONDS + 5) * 1000) - 1)


class VirtualClock:
    """time.monotonic() that moves one second per request to the fake GitLab: every call is slow."""

    def __init__(self, monkeypatch, fake_gitlab):
        from requests.adapters import HTTPAdapter

        self.now, self.per_run, real_send = 1000.0, [0], HTTPAdapter.send

        def slow_send(adapter, request, **kwargs):
            if request.url.startswith(fake_gitlab.url):
                self.now += 1.0
                self.per_run[-1] += 1
            return real_send(adapter, request, **kwargs)

        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        monkeypatch.setattr(HTTPAdapter, "send", slow_send)


def drain(aws, handlers, context_seconds: float, clock: VirtualClock, limit: int = 20) -> int:
    """Run the work queue to empty as Lambda would, a fresh invocation (with `context_seconds`) per message;
    the number of invocations."""
    runs = 0
    while messages := aws.receive(visibility=0):
        assert runs < limit, "the job never ended"
        for message in messages:
            clock.per_run.append(0)
            response = handlers.worker.lambda_handler(sqs_event([message]), FakeLambdaContext(context_seconds))
            assert response["batchItemFailures"] == []
            aws.sqs.delete_message(QueueUrl=aws.work_queue_url, ReceiptHandle=message["ReceiptHandle"])
            runs += 1
    return runs


def test_a_sync_slower_than_a_batch_goes_on_in_continuations_reading_each_file_once(
    aws, handlers, gitops_config, fake_gitlab, sent, monkeypatch, env
):
    env("HTTP_TIMEOUT_SECONDS", "1")
    hook = {
        **fixture_json("gitlab/push.json"),
        **fake_gitlab.fake.push(
            "platform/opsbot-config", "main", [{"message": "add", "files": {"projects/new-api.yaml": NEW_PROJECT}}]
        ),
    }
    queue.enqueue(Job(kind="gitlab.push", payload=hook))
    clock = VirtualClock(monkeypatch, fake_gitlab)
    fake_gitlab.fake.calls.clear()

    # room for the reserve and three one-second calls per invocation; the sync needs more than that
    runs = drain(aws, handlers, deadline.RESERVE_SECONDS + 3.5, clock)

    assert store.load().version == hook["after"] and "new-api" in store.load().projects
    assert runs > 1 and max(clock.per_run) <= 3
    reads = [c["path"] for c in fake_gitlab.calls("GET", "/raw")]
    assert len(reads) == len(set(reads)) == 6  # opsbot.yaml and five project files, each read once in all
    assert len(sent) == 1 and aws.dead_letters() == []


def test_a_job_that_never_fits_is_parked_with_its_reason(aws, handlers, monkeypatch):
    def endless(job: Job) -> str:
        raise deadline.OutOfTime("the next page")

    monkeypatch.setitem(registry.HANDLERS, "test.endless", endless)
    queue.enqueue(Job(kind="test.endless", payload={}))
    runs = 0
    while messages := aws.receive(visibility=0):
        handlers.worker.lambda_handler(sqs_event(messages), FakeLambdaContext(60))
        for message in messages:
            aws.sqs.delete_message(QueueUrl=aws.work_queue_url, ReceiptHandle=message["ReceiptHandle"])
        runs += 1
    assert runs == worker.MAX_CONTINUATIONS + 1
    [dead] = aws.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == (
        f"out of time before the next page, {worker.MAX_CONTINUATIONS + 1} runs in a row: "
        "the job needs more time than it gets"
    )
