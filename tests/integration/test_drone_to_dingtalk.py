"""A Drone build finishes → the project's DingTalk group is told, correctly and exactly once."""

from __future__ import annotations

import json
import time

SHOP_TOKEN = "local-shop-backend"
QUIET_PERIOD = 2.0  # long enough for the worker to have sent anything it was going to send


def _text(message: dict) -> str:
    # a success on a branch that environments take comes as an actionCard with release buttons
    body = message["message"]
    return body[body["msgtype"]]["text"]


def test_build_failure_gives_one_message_naming_the_step_and_mentioning_the_author(stack):
    number = stack.next_number()
    response = stack.post_drone(stack.drone_body("build_failure", number))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"

    found = stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", SHOP_TOKEN))
    time.sleep(QUIET_PERIOD)
    found = stack.messages_mentioning(f"#{number}", SHOP_TOKEN)
    assert len(found) == 1
    message = found[0]["message"]
    assert message["msgtype"] == "markdown"
    text = message["markdown"]["text"]
    assert "构建失败" in text and "shop-api" in text and "main" in text
    assert "default › test" in text
    assert "feat(order): add refund endpoint" in text
    assert f"https://drone.example.com/shop/shop-api/{number}" in text
    # alice's git login maps to her DingTalk user id: mentioned in `at` and visibly in the text
    assert message["at"]["atUserIds"] == ["alice.wang"]
    assert "@alice.wang" in text


def test_created_and_running_builds_send_nothing(stack):
    number = stack.next_number()
    for fixture in ("build_created", "build_running"):
        response = stack.post_drone(stack.drone_body(fixture, number))
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ignored", "reason": "build is not finished"}
    time.sleep(QUIET_PERIOD)
    assert stack.messages_mentioning(f"#{number}") == []


def test_the_same_success_delivered_three_times_gives_one_message(stack):
    number = stack.next_number()
    body = stack.drone_body("build_success", number)
    statuses = [stack.post_drone(body).json()["status"] for _ in range(3)]
    assert statuses == ["queued", "duplicate", "duplicate"]
    assert stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", SHOP_TOKEN))
    time.sleep(QUIET_PERIOD)
    found = stack.messages_mentioning(f"#{number}", SHOP_TOKEN)
    assert len(found) == 1
    # the previous test left main failed, so this success reads as a fix
    assert "构建成功" in _text(found[0]) or "构建已修复" in _text(found[0])


def test_authorization_signature_form_is_accepted(stack):
    number = stack.next_number()
    body = stack.drone_body("build_failure", number)
    from local.signing import sign_for

    headers = sign_for("/webhooks/drone", body)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    response = stack.post_drone(body, headers=headers, sign=False)
    assert response.status_code == 202, response.text


def test_bad_signature_stale_date_and_digest_mismatch_are_refused_without_effect(stack):
    from local.signing import sign_for

    number = stack.next_number()
    body = stack.drone_body("build_failure", number)
    good = sign_for("/webhooks/drone", body)
    tampered_signature = {**good, "Signature": good["Signature"].replace('signature="', 'signature="x')}
    stale = sign_for("/webhooks/drone", body, now=time.time() - 600)
    other_body = stack.drone_body("build_failure", number, status="success")
    cases = {
        "bad signature": (body, tampered_signature),
        "stale date": (body, stale),
        "digest mismatch": (other_body, good),  # signature of one body sent with another
        "no signature": (body, {}),
    }
    for name, (payload, headers) in cases.items():
        response = stack.post_drone(payload, headers=headers, sign=False)
        assert response.status_code == 401, name
        assert response.headers["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"error"}, name
    time.sleep(QUIET_PERIOD)
    assert stack.messages_mentioning(f"#{number}") == []
    # nothing was claimed either: the genuine delivery still goes through
    assert stack.post_drone(body).status_code == 202


def test_dingtalk_answering_500_twice_then_200_delivers_once(stack):
    token = "local-flaky"
    stack.fault(token, statuses=[500, 500])
    number = stack.next_number()
    assert stack.post_drone(stack.drone_body("build_failure", number, repo="flaky-api")).status_code == 202
    assert stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", token), timeout=30)
    time.sleep(QUIET_PERIOD)
    assert len(stack.messages_mentioning(f"#{number}", token)) == 1
    assert [r["status"] for r in stack.rejections() if r["access_token"] == token][-2:] == [500, 500]


def test_dingtalk_down_for_good_ends_in_the_dead_letter_queue(stack):
    token = "local-flaky"
    stack.fault(token, down=True)
    try:
        number = stack.next_number()
        body = stack.drone_body("build_failure", number, repo="flaky-api")
        assert stack.post_drone(body).status_code == 202
        parked = stack.wait_for(
            lambda: [
                b
                for b in stack.dead_letters()
                if json.loads(b)["kind"] == "drone.build_finished"
                and json.loads(b)["payload"]["build"]["number"] == number
            ],
            timeout=60,
            interval=0.5,
        )
        assert parked, "the job did not reach the DLQ"
        assert stack.messages_mentioning(f"#{number}", token) == []
    finally:
        stack.fault(token, down=False)
