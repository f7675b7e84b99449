"""Ingress claims a delivery's dedupe key, then queues its job: a request that stops in between (the Lambda's
timeout, with boto3 calls of up to 8 s each) must not leave a claim that answers every retry "duplicate" while no
job exists. The claim is `pending` until the job is queued, then `queued`; a retry that finds it pending waits
(503) until no request that made it can still be running, then takes it over."""

from __future__ import annotations

import json
import time

import pytest
from unit_support import ROOT, STACK_ENV, drone_event, fixture_bytes, gitlab_event, json_body, sqs_event

from local import template as template_module
from opsbot.ingress import accept as ingress_accept
from opsbot.state import idempotency

GITLAB_PUSH = fixture_bytes("gitlab/push.json")
DRONE_FAILURE = fixture_bytes("drone/build_failure.json")


class Killed(BaseException):
    """The Lambda stopped here (its timeout): no except clause of the code under test runs."""


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        offset = 0.0

        def advance(self, seconds: float) -> None:
            self.offset += seconds

    clock, real = Clock(), time.time
    monkeypatch.setattr(time, "time", lambda: real() + clock.offset)
    return clock


@pytest.fixture
def gitlab(handlers, lambda_context):
    return lambda event: handlers.gitlab_webhook.lambda_handler(event, lambda_context)


@pytest.fixture
def drone(handlers, lambda_context):
    return lambda event: handlers.drone_webhook.lambda_handler(event, lambda_context)


def killed_at(monkeypatch, name: str, after: bool = False):
    """Stop the request in ingress.accept's call `name` (before it, or right after it returned)."""
    real = getattr(ingress_accept, name) if hasattr(ingress_accept, name) else None

    def stop(*args, **kwargs):
        if after:
            real(*args, **kwargs)
        raise Killed(name)

    monkeypatch.setattr(ingress_accept, name, stop)
    return lambda: monkeypatch.setattr(ingress_accept, name, real)


def test_the_takeover_waits_out_the_ingress_functions_timeout():
    template = template_module.load(ROOT / "template.yaml")
    for function in ("DroneWebhookFunction", "GitlabWebhookFunction", "DingtalkBotFunction", "ActionsFunction"):
        assert ingress_accept.TAKEOVER_AFTER_SECONDS > template.timeout_seconds(function)


def test_a_request_killed_between_claim_and_enqueue_leaves_a_claim_that_a_later_retry_takes_over(
    aws, gitlab, monkeypatch, clock
):
    headers = {"Idempotency-Key": "push-1"}
    revive = killed_at(monkeypatch, "enqueue")
    with pytest.raises(Killed):
        gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    revive()
    assert aws.receive() == []

    clock.advance(5)  # the first request could still be running: not a duplicate, and not ours yet
    early = gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    assert early["statusCode"] == 503 and "being queued" in json_body(early)["error"]
    assert aws.receive() == []

    clock.advance(ingress_accept.TAKEOVER_AFTER_SECONDS)  # that request has surely ended
    retry = gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    assert retry["statusCode"] == 202 and json_body(retry)["status"] == "queued"
    assert len(aws.receive()) == 1
    again = gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    assert (again["statusCode"], json_body(again)["status"]) == (200, "duplicate")
    assert len(aws.receive()) == 1


def test_a_request_killed_after_enqueue_is_taken_over_and_the_second_job_changes_nothing(
    aws, drone, chat_config, fake_dingtalk, monkeypatch, clock, handlers, lambda_context
):
    revive = killed_at(monkeypatch, "enqueue", after=True)
    with pytest.raises(Killed):
        drone(drone_event(DRONE_FAILURE))
    revive()
    clock.advance(ingress_accept.TAKEOVER_AFTER_SECONDS + 1)
    assert drone(drone_event(DRONE_FAILURE))["statusCode"] == 202  # a retry (a person's redelivery, say)
    messages = aws.receive(visibility=0)
    assert len(messages) == 2 and len({json.loads(m["Body"])["id"] for m in messages}) == 1
    for message in messages:  # the same job twice: the worker's effect runs once
        assert handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"] == []
    assert len(fake_dingtalk.accepted) == 1


def test_a_queued_claim_is_a_duplicate_however_old(aws, clock):
    claim = idempotency.claim_delivery("k", None, ingress_accept.TAKEOVER_AFTER_SECONDS)
    idempotency.confirm(claim)
    clock.advance(3600)
    assert idempotency.claim_delivery("k", None, ingress_accept.TAKEOVER_AFTER_SECONDS) == idempotency.DUPLICATE
    assert idempotency.seen("k")


def test_a_pending_claim_counts_as_seen_until_it_may_be_taken_over(aws, clock):
    claim = idempotency.claim_delivery("k", None, 20)
    assert isinstance(claim, idempotency.Claim) and idempotency.seen("k", 20)
    assert idempotency.claim_delivery("k", None, 20) == idempotency.IN_PROGRESS
    clock.advance(21)
    assert not idempotency.seen("k", 20)  # a release link whose first POST died may be used again
    taken = idempotency.claim_delivery("k", None, 20)
    assert isinstance(taken, idempotency.Claim)
    idempotency.confirm(claim)  # the first request's late confirm does not touch the new claim
    assert idempotency.claim_delivery("k", None, 20) == idempotency.IN_PROGRESS
    idempotency.release_claim(claim)  # nor does its release
    idempotency.confirm(taken)
    assert idempotency.claim_delivery("k", None, 20) == idempotency.DUPLICATE


def test_a_claim_written_before_claims_had_a_state_is_a_duplicate(aws):
    aws.ddb.put_item(
        TableName=STACK_ENV["STATE_TABLE"],
        Item={"pk": {"S": "idem#old"}, "expires_at": {"N": str(int(time.time()) + 3600)}},
    )
    assert idempotency.claim_delivery("old", None, 20) == idempotency.DUPLICATE
