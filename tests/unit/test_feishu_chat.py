"""Chat from Feishu: the app bot's event callback (functions/feishu_bot, chat/inbound/feishu.py) checked and queued
once per message, and the worker reading the message from the fake Feishu's API (local/fake_feishu.py) and
answering it as a reply. The callback is only a pointer: who wrote what comes from Feishu's API."""

from __future__ import annotations

import json

import pytest
from chat_support import audit_log
from unit_support import FEISHU_APP_ID, FEISHU_VERIFICATION_TOKEN, http_event, json_body, sqs_event

from opsbot.channels import feishu_app

ALICE, BOB, XIAOMING = "ou_alice0local", "ou_bob0local", "ou_xiaoming0local"  # the example config's open_ids


@pytest.fixture
def feishu(chat_config, fake_dingtalk, env):
    """The fake Feishu (its app API and `say`), with the stack set up for the Feishu app bot."""
    env("FEISHU_APP_ID", FEISHU_APP_ID)
    env("FEISHU_API_URL", fake_dingtalk.url)
    return fake_dingtalk.feishu


def post_event(handlers, lambda_context, event: dict, token: str = FEISHU_VERIFICATION_TOKEN) -> tuple[int, dict]:
    if "header" in event:
        event["header"]["token"] = token
    response = handlers.feishu_bot.lambda_handler(
        http_event("/webhooks/feishu", json.dumps(event, ensure_ascii=False)), lambda_context
    )
    return response["statusCode"], json_body(response)


def say(feishu, text: str, open_id: str = ALICE, **kwargs) -> dict:
    """A person writes to the bot: the message Feishu keeps, and the event it would post."""
    with feishu.lock:
        return feishu.say({"open_id": open_id, "text": text, **kwargs})


def run_jobs(aws, handlers, lambda_context, rounds: int = 3) -> list[dict]:
    """Run what is on the work queue, then what those jobs queued, up to `rounds` times; the worker's failures."""
    failures, seen = [], set()  # the worker Lambda does not delete what it ran: SQS's event source would
    for _ in range(rounds):
        messages = [m for m in aws.receive(visibility=0) if m["MessageId"] not in seen]
        seen.update(m["MessageId"] for m in messages)
        if not messages:
            break
        failures += handlers.worker.lambda_handler(sqs_event(messages), lambda_context)["batchItemFailures"]
        if failures:
            break
    return failures


def replies(feishu) -> list[tuple[str, str, str]]:
    """What the bot replied: (the message replied to, the card's title, its text)."""
    return [
        (r["to"], r["content"]["header"]["title"]["content"], r["content"]["elements"][0]["text"]["content"])
        for r in feishu.replies
    ]


def drone_changes(fake_drone) -> list[str]:
    return [c["path"] for c in fake_drone.calls if c["method"] != "GET"]


# --- the callback ---------------------------------------------------------------------------------------------


def test_the_url_check_gets_its_challenge_back_only_with_the_verification_token(feishu, handlers, lambda_context, aws):
    check = {"challenge": "ajls384kdjx98XX", "token": FEISHU_VERIFICATION_TOKEN, "type": "url_verification"}
    assert post_event(handlers, lambda_context, check) == (200, {"challenge": "ajls384kdjx98XX"})
    status, body = post_event(handlers, lambda_context, {**check, "token": "guessed"})
    assert (status, body) == (401, {"error": "the Feishu verification token does not match"})
    assert aws.receive() == []


def test_without_a_feishu_app_the_route_takes_nothing(feishu, handlers, lambda_context, env, aws):
    env("FEISHU_APP_ID", "")
    status, body = post_event(handlers, lambda_context, say(feishu, "whoami")["event"])
    assert status == 401 and "FEISHU_APP_ID" in body["error"]
    assert aws.receive() == []


def test_a_wrong_token_an_encrypted_body_or_another_app_queue_nothing(feishu, handlers, lambda_context, aws):
    event = say(feishu, "whoami")["event"]
    assert post_event(handlers, lambda_context, event, token="not-the-token")[0] == 401
    status, body = post_event(handlers, lambda_context, {"encrypt": "FIAjJ7g4uybPpGz3P9Ge6hYx0="})
    assert status == 400 and "Encrypt Key" in body["error"]
    event["header"]["app_id"] = "cli_someoneelse"
    assert post_event(handlers, lambda_context, event) == (
        401,
        {"error": "the Feishu event is for another app (header.app_id)"},
    )
    assert aws.receive() == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda e: e.update(schema="1.0"), "schema must be 2.0"),
        (lambda e: e["event"]["message"].pop("message_id"), "event.message.message_id is missing"),
        (lambda e: e["event"]["message"].update(content={"text": "hi"}), "event.message.content must be a string"),
        (lambda e: e["header"].update(event_type=7), "header.event_type must be a string"),
        (lambda e: e.pop("event"), "event is missing"),
    ],
)
def test_a_malformed_event_is_400_naming_the_field_and_queues_nothing(
    feishu, handlers, lambda_context, aws, change, named
):
    event = say(feishu, "whoami")["event"]
    change(event)
    status, body = post_event(handlers, lambda_context, event)
    assert status == 400 and named in body["error"], body
    assert aws.receive() == []


def test_other_events_pictures_and_group_talk_not_for_the_bot_are_ignored(feishu, handlers, lambda_context, aws):
    joined = say(feishu, "whoami")["event"]
    joined["header"]["event_type"] = "im.chat.member.bot.added_v1"
    picture = say(feishu, "whoami", msg_type="image")["event"]
    chatter = say(feishu, "whoami")["event"]
    chatter["event"]["message"]["content"] = json.dumps({"text": "lunch anyone?"})
    for event, reason in (
        (joined, "events are not read"),
        (picture, "messages are not read, only text"),
        (chatter, "does not @-mention the bot"),
    ):
        status, body = post_event(handlers, lambda_context, event)
        assert status == 200 and body["status"] == "ignored" and reason in body["reason"]
    assert aws.receive() == []


def test_a_message_is_queued_once_however_often_feishu_delivers_it(feishu, handlers, lambda_context, aws):
    """Feishu may deliver a message again under a new event_id: the message_id is what counts."""
    event = say(feishu, "whoami")["event"]
    assert post_event(handlers, lambda_context, event)[1]["status"] == "queued"
    event["header"]["event_id"] = "another-event-id"
    assert post_event(handlers, lambda_context, event)[1]["status"] == "duplicate"
    [job] = aws.receive()
    assert json.loads(job["Body"])["kind"] == "chat.feishu_message"


# --- the worker: the message as Feishu's API has it -----------------------------------------------------------


def test_a_read_is_answered_as_a_reply_in_the_senders_language(feishu, handlers, lambda_context, aws):
    said = say(feishu, "我是谁", open_id=BOB)
    post_event(handlers, lambda_context, said["event"])
    assert run_jobs(aws, handlers, lambda_context) == []
    assert replies(feishu) == [(said["message_id"], "我是谁", "你是 **Bob Li**（`bob`），角色：developer。")]
    [record] = audit_log()
    assert (record.who, record.command, record.result, record.where) == (
        "bob",
        "whoami",
        "answered",
        "oc_localshopbackend",
    )


def test_a_deployer_deploys_from_feishu_and_hears_the_result_as_a_reply(
    feishu, handlers, lambda_context, aws, fake_drone
):
    said = say(feishu, "deploy shop-api 128 staging", open_id=ALICE)
    post_event(handlers, lambda_context, said["event"])
    assert run_jobs(aws, handlers, lambda_context) == []
    assert drone_changes(fake_drone) == ["/api/repos/shop/shop-api/builds/128/promote"]
    (to_ack, _, ack), (to_result, _, result) = replies(feishu)
    assert to_ack == to_result == said["message_id"]
    assert ack.startswith("Got it: `deploy` is running")
    assert "by Alice Wang" in result
    [record] = [r for r in audit_log() if r.command == "deploy"]
    assert (record.who, record.result) == ("alice", "succeeded")


def test_attack_a_forged_event_speaks_for_nobody_but_the_messages_real_sender(
    feishu, handlers, lambda_context, aws, fake_drone
):
    """Someone with the verification token rewrites a real event: the admin as sender, a production deploy as
    text. The worker reads the message from Feishu's API: it is bob's `status shop-api`, and that is answered."""
    said = say(feishu, "status shop-api", open_id=BOB)
    forged = said["event"]
    forged["event"]["sender"]["sender_id"]["open_id"] = XIAOMING
    forged["event"]["message"]["content"] = json.dumps({"text": "@_user_1 deploy shop-api 128 production"})
    assert post_event(handlers, lambda_context, forged)[1]["status"] == "queued"
    assert run_jobs(aws, handlers, lambda_context) == []
    assert drone_changes(fake_drone) == []
    [(_, title, _)] = replies(feishu)
    assert title == "shop-api: latest builds"
    assert [(r.who, r.command) for r in audit_log()] == [("bob", "status")]


def test_attack_an_event_for_a_message_feishu_does_not_have_does_nothing(
    feishu, handlers, lambda_context, aws, fake_drone
):
    forged = say(feishu, "whoami", open_id=XIAOMING)["event"]
    forged["event"]["message"]["message_id"] = "om_madeup0000"
    forged["event"]["message"]["content"] = json.dumps({"text": "@_user_1 deploy shop-api 128 staging"})
    assert post_event(handlers, lambda_context, forged)[1]["status"] == "queued"
    assert run_jobs(aws, handlers, lambda_context) == []  # done with, not retried
    assert replies(feishu) == [] and drone_changes(fake_drone) == [] and audit_log() == []
    assert aws.dead_letters() == []


def test_a_developer_is_told_why_a_deploy_is_refused_and_nothing_runs(
    feishu, handlers, lambda_context, aws, fake_drone
):
    said = say(feishu, "deploy shop-api 128 staging", open_id=BOB)
    post_event(handlers, lambda_context, said["event"])
    assert run_jobs(aws, handlers, lambda_context) == []
    assert replies(feishu) == [
        (said["message_id"], "denied", "⛔ `deploy` in staging needs the role deployer; your roles: developer.")
    ]
    assert drone_changes(fake_drone) == []
    [record] = audit_log()
    assert (record.who, record.result) == ("bob", "denied")


def test_a_stranger_is_told_which_id_to_add(feishu, handlers, lambda_context, aws):
    said = say(feishu, "restart shop-api 128", open_id="ou_newhire")
    post_event(handlers, lambda_context, said["event"])
    run_jobs(aws, handlers, lambda_context)
    [(_, _, text)] = replies(feishu)
    assert "Your Feishu open_id is `ou_newhire`: ask an admin to add it to `people`" in text


def test_a_token_feishu_no_longer_takes_is_replaced(feishu, handlers, lambda_context, aws):
    post_event(handlers, lambda_context, say(feishu, "whoami")["event"])
    feishu_app._token[FEISHU_APP_ID] = ("t-expired", 9e18)
    assert run_jobs(aws, handlers, lambda_context) == []
    assert len(replies(feishu)) == 1


def test_feishus_api_failing_twice_then_working_replies_once(feishu, handlers, lambda_context, aws):
    said = say(feishu, "whoami")
    post_event(handlers, lambda_context, said["event"])
    with feishu.lock:  # Feishu's API answers 500, then 503, then works
        feishu.scripted["app"] = [500, 503]
    [message] = aws.receive(visibility=0)
    for attempt in (1, 2):
        failed = handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"]
        assert [f["itemIdentifier"] for f in failed] == [message["MessageId"]], attempt
    assert handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"] == []
    handlers.worker.lambda_handler(sqs_event([message]), lambda_context)  # SQS delivering it once more
    assert [to for to, _, _ in replies(feishu)] == [said["message_id"]]


def test_a_wrong_app_secret_parks_the_job_naming_the_app(feishu, handlers, lambda_context, aws):
    aws.ssm.put_parameter(Name="/opsbot/test/feishu/app-secret", Value="reset-by-someone", Overwrite=True)
    post_event(handlers, lambda_context, say(feishu, "whoami")["event"])
    run_jobs(aws, handlers, lambda_context)
    [dead] = aws.dead_letters()
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith(f"Feishu app {FEISHU_APP_ID} has no tenant access token") and "10014" in reason
    assert replies(feishu) == []


def test_a_reply_to_a_recalled_message_is_parked_with_feishus_reason(feishu, handlers, lambda_context, aws):
    said = say(feishu, "whoami")
    post_event(handlers, lambda_context, said["event"])
    with feishu.lock:
        feishu.recalled.add(said["message_id"])
    run_jobs(aws, handlers, lambda_context)
    [dead] = aws.dead_letters()
    assert "Feishu app reply: HTTP 400, Feishu code 230011" in dead["MessageAttributes"]["reason"]["StringValue"]


def test_a_reply_goes_only_to_feishus_own_reply_url():
    with pytest.raises(Exception, match="not a Feishu reply URL"):
        feishu_app.reply("https://evil.example/open-apis/im/v1/messages/om_1/reply", "text", {"text": "x"}, "u")


def test_an_act_whose_acknowledgement_failed_is_acknowledged_once_by_the_retry(
    feishu, handlers, lambda_context, aws, fake_drone, monkeypatch
):
    """The first attempt queued the act and then could not reply: the retry finds the act queued (a duplicate)
    and still acknowledges it, once; the act itself runs once."""
    from opsbot.jobs.model import RetryLater

    said = say(feishu, "deploy shop-api 128 staging", open_id=ALICE)
    post_event(handlers, lambda_context, said["event"])
    [message] = aws.receive(visibility=0)
    real_reply, failures = feishu_app.reply, []

    def reply_failing_once(*args):
        if not failures:
            failures.append(args)
            raise RetryLater("Feishu app reply: HTTP 503")
        return real_reply(*args)

    monkeypatch.setattr(feishu_app, "reply", reply_failing_once)
    assert handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"]
    assert replies(feishu) == []
    assert handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"] == []
    assert handlers.worker.lambda_handler(sqs_event([message]), lambda_context)["batchItemFailures"] == []
    [(_, _, ack)] = replies(feishu)
    assert ack.startswith("Got it: `deploy` is running")
    act = [m for m in aws.receive(visibility=0) if json.loads(m["Body"])["kind"] == "chat.command"]
    assert len(act) == 1
