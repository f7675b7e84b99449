"""The ingress contract over HTTP: clear 4xx JSON for bad input, 2xx for what opsbot ignores, no 5xx."""

from __future__ import annotations

import json
import time

import pytest


def _assert_json_error(response, status: int):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "error" in response.json()
    assert "Traceback" not in response.text


def test_broken_json_with_a_valid_signature_is_400(stack):
    _assert_json_error(stack.post_drone(b'{"event": "build", "build": '), 400)


def test_wrong_content_type_is_415(stack):
    body = stack.drone_body("build_failure", stack.next_number())
    _assert_json_error(stack.post_drone(body, content_type="text/plain"), 415)


def test_oversized_body_is_413(stack):
    body = b'{"pad": "' + b"x" * (1024 * 1024 + 1) + b'"}'
    _assert_json_error(stack.post_drone(body), 413)


def test_unknown_drone_event_is_400_and_repo_event_is_ignored(stack):
    body = stack.drone_body("build_failure", stack.next_number())
    _assert_json_error(stack.post_drone(body, headers={"X-Drone-Event": "nonsense"}), 400)
    repo_event = stack.drone_body("build_failure").replace(b'"event": "build"', b'"event": "repo"', 1)
    response = stack.post_drone(repo_event, headers={"X-Drone-Event": "repo"})
    assert response.status_code == 200 and response.json()["status"] == "ignored"


@pytest.mark.parametrize("headers", [{}, {"X-Gitlab-Token": "wrong"}])
def test_gitlab_without_the_right_token_is_401(stack, headers):
    body = stack.drone_body("build_failure")  # any JSON will do: the token is checked first
    response = stack.post("/webhooks/gitlab", body, headers={"X-Gitlab-Event": "Push Hook", **headers}, sign=False)
    _assert_json_error(response, 401)


def test_gitlab_push_is_queued_once_per_idempotency_key(stack):
    from pathlib import Path

    body = (Path(__file__).resolve().parents[1] / "fixtures" / "gitlab" / "push.json").read_bytes()
    headers = {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": f"key-{stack.next_number()}"}
    statuses = [stack.post("/webhooks/gitlab", body, headers=headers).json()["status"] for _ in range(2)]
    assert statuses == ["queued", "duplicate"]
    ignored = stack.post("/webhooks/gitlab", body, headers={"X-Gitlab-Event": "Issue Hook"})
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    _assert_json_error(stack.post("/webhooks/gitlab", body, headers={"X-Gitlab-Event": "Bogus Hook"}), 400)


def test_dingtalk_callback_is_acknowledged_once_per_msg_id(stack):
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "dingtalk"
    # An act (a deploy) is acknowledged once; its redelivery gets the empty reply that DingTalk shows as nothing.
    body = json.loads((fixtures / "outgoing_deploy_zh.json").read_text(encoding="utf-8"))
    body["msgId"] = f"msg-{stack.next_number()}"
    # the result is posted to this conversation on the local sink, not to the group robot (its budget is shared)
    body["sessionWebhook"] = f"{stack.sink}/robot/sendBySession?session=local-session-{body['msgId']}"
    body["sessionWebhookExpiredTime"] = int(time.time() * 1000) + 3600 * 1000
    raw = json.dumps(body, ensure_ascii=False).encode()
    first = stack.post("/webhooks/dingtalk", raw)
    assert first.status_code == 200 and first.json()["msgtype"] == "markdown", first.text
    again = stack.post("/webhooks/dingtalk", raw)
    assert again.status_code == 200 and again.json() == {"msgtype": "empty"}
    stale = stack.post("/webhooks/dingtalk", raw, headers={"timestamp": "1732521600000"}, sign=True)
    _assert_json_error(stale, 401)
    assert stack.wait_for(lambda: stack.session_messages(body["sessionWebhook"]))
    # A read is answered in the response itself, every time it is delivered (nothing is queued).
    status = json.loads((fixtures / "outgoing_status.json").read_text(encoding="utf-8"))
    status["msgId"] = f"msg-{stack.next_number()}"
    raw = json.dumps(status, ensure_ascii=False).encode()
    for _ in range(2):
        answered = stack.post("/webhooks/dingtalk", raw)
        assert answered.status_code == 200, answered.text
        assert answered.json()["msgtype"] == "markdown" and "shop-api" in answered.json()["markdown"]["text"]


def test_unknown_route_is_404_json(stack):
    response = stack.http.post(stack.api + "/webhooks/jenkins", data=b"{}", timeout=5)
    assert response.status_code == 404
    assert response.json()


def test_mutated_bodies_with_valid_signatures_never_get_a_5xx(stack):
    import random

    rng = random.Random(20261125)
    # A repo no project claims, so that mutants which still parse cannot spend a real robot's budget.
    seed = stack.drone_body("build_failure", stack.next_number(), repo="fuzz-target")
    for _ in range(150):
        body = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(body))
            body[position] = rng.randrange(256)
        response = stack.post_drone(bytes(body))
        assert response.status_code < 500, (response.status_code, response.text)
        assert "Traceback" not in response.text
