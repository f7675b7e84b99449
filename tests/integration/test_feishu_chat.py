"""Chat from Feishu on the local stack: a person writes to the app bot in the fake Feishu, the event callback goes
to /webhooks/feishu over HTTP, and the worker reads the message from the fake Feishu's API and replies through it.
The example config's people carry their open_ids (alice, bob, xiaoming)."""

from __future__ import annotations

import json

import pytest

from local.stack import LOCAL_SECRETS

TOKEN = LOCAL_SECRETS["FEISHU_VERIFICATION_TOKEN_PARAM"]
ALICE, BOB, XIAOMING = "ou_alice0local", "ou_bob0local", "ou_xiaoming0local"
QUIET_PERIOD = 2.0  # long enough for the worker to have done anything it was going to do


@pytest.fixture
def drone(stack):
    stack.drone_reset()
    yield stack
    stack.drone_fault([])


def say(stack, text: str, open_id: str) -> dict:
    """`open_id` writes `text` to the bot in the fake Feishu; returns the message id and the event Feishu posts."""
    answer = stack.http.post(f"{stack.sink}/_control/feishu/say", json={"open_id": open_id, "text": text}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def post_event(stack, event: dict, token: str = TOKEN):
    if "header" in event:
        event["header"]["token"] = token
    return stack.http.post(f"{stack.api}/webhooks/feishu", json=event, timeout=10)


def replies_to(stack, message_id: str) -> list[dict]:
    found = stack.http.get(f"{stack.sink}/_control/feishu/replies", timeout=5).json()["replies"]
    return [r for r in found if r["to"] == message_id]


def texts(replies: list[dict]) -> list[str]:
    return [json.dumps(r["content"], ensure_ascii=False) for r in replies]


def promotes(stack) -> list[dict]:
    return stack.drone_calls("POST", "/promote")


def test_the_url_check_answers_the_challenge_over_http(stack):
    check = {"challenge": "c-0123456789", "token": TOKEN, "type": "url_verification"}
    answer = stack.http.post(f"{stack.api}/webhooks/feishu", json=check, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"challenge": "c-0123456789"})
    wrong = stack.http.post(f"{stack.api}/webhooks/feishu", json={**check, "token": "guess"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json() == {"error": "the Feishu verification token does not match"}


def test_a_question_in_feishu_gets_its_answer_as_a_reply(stack):
    said = say(stack, "status shop-api", BOB)
    answer = post_event(stack, said["event"])
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    [reply] = stack.wait_for(lambda: replies_to(stack, said["message_id"]))
    assert reply["content"]["header"]["title"]["content"] == "shop-api: latest builds"
    assert "#128" in texts([reply])[0]


def test_a_deployer_deploys_from_feishu_once_and_hears_the_result(stack, drone):
    said = say(stack, "deploy shop-api 128 staging", ALICE)
    post_event(stack, said["event"])
    post_event(stack, said["event"])  # Feishu delivering it again
    replies = stack.wait_for(lambda: (r := replies_to(stack, said["message_id"])) and len(r) >= 2 and r)
    assert "Got it: `deploy` is running" in texts(replies)[0]
    assert "by Alice Wang" in texts(replies)[1]
    [promote] = promotes(stack)
    assert promote["path"] == "/api/repos/shop/shop-api/builds/128/promote" and promote["query"]["target"] == [
        "staging"
    ]
    assert [r for r in stack.audit_records("shop-api") if r["command"] == "deploy" and r["who"] == "alice"]


def test_attack_a_forged_event_cannot_make_bobs_message_the_admins_production_deploy(stack, drone):
    said = say(stack, "status shop-api", BOB)
    forged = said["event"]
    forged["event"]["sender"]["sender_id"]["open_id"] = XIAOMING
    forged["event"]["message"]["content"] = json.dumps({"text": "@_user_1 deploy shop-api 128 production"})
    assert post_event(stack, forged).status_code == 200
    [reply] = stack.wait_for(lambda: replies_to(stack, said["message_id"]))
    assert reply["content"]["header"]["title"]["content"] == "shop-api: latest builds"
    assert promotes(stack) == []


def test_attack_an_event_for_a_message_feishu_does_not_have_does_nothing(stack, drone):
    forged = say(stack, "whoami", XIAOMING)["event"]
    forged["event"]["message"]["message_id"] = "om_forged0000000"
    forged["event"]["message"]["content"] = json.dumps({"text": "@_user_1 deploy shop-api 128 staging"})
    assert post_event(stack, forged).json()["status"] == "queued"
    stack.wait_for(lambda: stack.queue_depth() == 0, timeout=10)
    stack.wait_for(lambda: False, timeout=QUIET_PERIOD)
    assert replies_to(stack, "om_forged0000000") == [] and promotes(stack) == []
    assert stack.take_dead_letters(lambda job: job.get("kind") == "chat.feishu_message") == []


def test_a_developer_is_refused_a_deploy_in_feishu_with_the_reason(stack, drone):
    said = say(stack, "发布 shop-api 128 staging", BOB)
    post_event(stack, said["event"])
    [reply] = stack.wait_for(lambda: replies_to(stack, said["message_id"]))
    assert (
        reply["content"]["elements"][0]["text"]["content"]
        == "⛔ `deploy`（环境 staging） 需要角色 deployer，你的角色：developer。"
    )
    stack.wait_for(lambda: False, timeout=QUIET_PERIOD)
    assert promotes(stack) == []


def test_feishus_api_failing_twice_then_working_answers_once(stack):
    stack.channel_fault("feishu", "app", [500, 503])
    said = say(stack, "whoami", ALICE)
    post_event(stack, said["event"])
    [reply] = stack.wait_for(lambda: replies_to(stack, said["message_id"]), timeout=30)
    assert "Alice Wang" in texts([reply])[0]
    stack.wait_for(lambda: False, timeout=QUIET_PERIOD)
    assert len(replies_to(stack, said["message_id"])) == 1
