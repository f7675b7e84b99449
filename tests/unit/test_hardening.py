"""Cases a review found: hostile headers and bodies, retries after newer builds, a flush that cannot be queued."""

from __future__ import annotations

import json

import pytest
from unit_support import deliver_once, dingtalk_event, drone_event, fixture_bytes, json_body

from opsbot.config.model import Config, Robot
from opsbot.delivery import budget
from opsbot.delivery import robot as delivery
from opsbot.message import Message
from opsbot.state import branch_status

DRONE_FAILURE = fixture_bytes("drone/build_failure.json")
DINGTALK_STATUS = fixture_bytes("dingtalk/outgoing_status.json")


@pytest.mark.parametrize(
    "headers",
    [
        {"timestamp": "²" * 5},  # digits to str.isdigit, not to int()
        {"timestamp": "1" * 5000},  # too long for int() and for any clock
        {"sign": "签名不对"},  # non-ASCII: hmac.compare_digest refuses str
    ],
)
def test_hostile_dingtalk_headers_are_401_not_503(aws, handlers, lambda_context, headers):
    response = handlers.dingtalk_bot.lambda_handler(dingtalk_event(DINGTALK_STATUS, headers=headers), lambda_context)
    assert response["statusCode"] == 401, response
    assert aws.receive() == []


@pytest.mark.parametrize(
    "signature",
    [
        'keyId="hmac-key",algorithm="hmac-sha256",signature="é",headers="date digest"',
    ],
)
def test_non_ascii_drone_signature_is_401_not_503(aws, handlers, lambda_context, signature):
    event = drone_event(DRONE_FAILURE, headers={"Signature": signature})
    response = handlers.drone_webhook.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 401, response


def test_non_ascii_digest_header_is_401_not_503(aws, handlers, lambda_context):
    from unit_support import DRONE_SECRET

    from opsbot.drone import signature as drone_signature

    values = {"date": drone_signature.sign(DRONE_FAILURE, DRONE_SECRET)["Date"], "digest": "SHA-256=é"}
    signed = drone_signature._hmac_b64(DRONE_SECRET, drone_signature._signing_string(["date", "digest"], values))
    event = drone_event(
        DRONE_FAILURE,
        headers={
            "Digest": "SHA-256=é",
            "Signature": f'keyId="k",algorithm="hmac-sha256",signature="{signed}",headers="date digest"',
        },
    )
    response = handlers.drone_webhook.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 401, response


def test_deeply_nested_json_with_a_valid_signature_is_400(aws, handlers, lambda_context):
    body = b"[" * 100_000 + b"]" * 100_000
    response = handlers.drone_webhook.lambda_handler(drone_event(body), lambda_context)
    assert response["statusCode"] == 400, response
    assert "nested" in json_body(response)["error"]


def test_a_very_long_msg_id_is_deduplicated_by_its_hash(aws, handlers, lambda_context, chat_config):
    message = json.loads(fixture_bytes("dingtalk/outgoing_deploy_zh.json"))  # an act: queued once per msgId
    message["msgId"] = "m" * 5000
    body = json.dumps(message).encode()
    answers = []
    for _ in range(2):
        response = handlers.dingtalk_bot.lambda_handler(dingtalk_event(body), lambda_context)
        assert response["statusCode"] == 200, response
        answers.append(json_body(response))
    assert answers[0]["msgtype"] == "markdown" and answers[1] == {"msgtype": "empty"}
    assert len(aws.receive()) == 1
    keys = [item["pk"]["S"] for item in aws.state_items("idem#")]
    assert len(keys) == 1 and keys[0].startswith("idem#dingtalk#sha256:") and len(keys[0]) < 100


def test_a_fix_stays_a_fix_when_its_retry_comes_after_a_newer_build(aws):
    assert branch_status.record_finish("shop/api", "main", 9, "failure") is None
    assert branch_status.record_finish("shop/api", "main", 10, "success") == "failure"
    assert branch_status.record_finish("shop/api", "main", 11, "success") == "success"
    # build 10's job is retried (DingTalk was down): it must still read as "fixed"
    assert branch_status.record_finish("shop/api", "main", 10, "success") == "failure"


def test_a_flush_that_cannot_be_queued_gives_its_lease_back(aws, monkeypatch):
    robot = Robot(
        name="team", webhook="http://127.0.0.1:9/robot/send?access_token=t", secret="SECx", rate_limit_per_minute=1
    )
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: None)
    config = Config(language="zh", robots={"team": robot}, people=(), projects={})
    first, second = Message("first", ["first"]), Message("second", ["second"])
    assert deliver_once(config, robot, first, "job-0") == "sent"

    def queue_down(job, delay_seconds=0):
        raise RuntimeError("SQS is unavailable")

    monkeypatch.setattr(delivery, "enqueue", queue_down)
    with pytest.raises(RuntimeError):
        deliver_once(config, robot, second, "job-1")
    assert budget.read("team").flush_at is None  # released: the retry schedules the flush

    scheduled = []
    monkeypatch.setattr(delivery, "enqueue", lambda job, delay_seconds=0: scheduled.append((job, delay_seconds)))
    assert deliver_once(config, robot, second, "job-1") == "folded"
    assert len(scheduled) == 1 and scheduled[0][0].payload == {"robot": "team"}
    assert [e["id"] for e in budget.read("team").pending] == ["job-1"]
