"""The three ingress Lambdas through their real handlers, against moto: status codes, queue and state effects."""

from __future__ import annotations

import json

import pytest
from unit_support import (
    DINGTALK_APP_SECRET,
    GITLAB_TOKEN,
    dingtalk_event,
    drone_event,
    fixture_bytes,
    fixture_json,
    gitlab_event,
    http_event,
    json_body,
    to_body,
)

DRONE_FAILURE = fixture_bytes("drone/build_failure.json")
GITLAB_PUSH = fixture_bytes("gitlab/push.json")
DINGTALK_STATUS = fixture_bytes("dingtalk/outgoing_status.json")  # a read: answered in the response
DINGTALK_DEPLOY = fixture_bytes("dingtalk/outgoing_deploy_zh.json")  # an act: queued as a chat.command job


@pytest.fixture
def drone(handlers, lambda_context):
    return lambda event: handlers.drone_webhook.lambda_handler(event, lambda_context)


@pytest.fixture
def gitlab(handlers, lambda_context):
    return lambda event: handlers.gitlab_webhook.lambda_handler(event, lambda_context)


@pytest.fixture
def dingtalk(handlers, lambda_context):
    return lambda event: handlers.dingtalk_bot.lambda_handler(event, lambda_context)


def jobs_on_queue(aws) -> list[dict]:
    return [json.loads(m["Body"]) for m in aws.receive()]


def assert_refused(response: dict, status: int) -> dict:
    assert response["statusCode"] == status, response
    body = json_body(response)
    assert isinstance(body.get("error"), str) and body["error"]
    return body


# --- Drone -------------------------------------------------------------------------------------------------


def test_drone_finished_build_is_queued_once_with_an_idempotency_record(aws, drone):
    event = drone_event(DRONE_FAILURE)
    response = drone(event)

    assert response["statusCode"] == 202
    outcome = json_body(response)
    assert outcome["status"] == "queued" and len(outcome["job"]) == 32

    messages = aws.receive()
    assert len(messages) == 1
    job = json.loads(messages[0]["Body"])
    assert job["kind"] == "drone.build_finished"
    assert job["id"] == outcome["job"]
    assert job["correlation_id"] == event["requestContext"]["requestId"]
    assert job["payload"]["repo"]["slug"] == "shop/shop-api"
    assert job["payload"]["build"]["number"] == 128 and job["payload"]["build"]["status"] == "failure"
    assert job["payload"]["system"]["link"] == "https://drone.example.com"
    assert messages[0]["MessageAttributes"]["kind"]["StringValue"] == "drone.build_finished"

    records = aws.state_items("idem#")
    assert [r["pk"]["S"] for r in records] == ["idem#drone#shop/shop-api#128#failure"]
    import time

    assert int(records[0]["expires_at"]["N"]) == pytest.approx(time.time() + 172800, abs=60)


def test_drone_same_delivery_again_is_a_duplicate(aws, drone):
    first = drone(drone_event(DRONE_FAILURE))
    again = drone(drone_event(DRONE_FAILURE))  # re-signed: a proxy retry carries a fresh Date

    assert first["statusCode"] == 202
    assert again["statusCode"] == 200
    assert json_body(again) == {"status": "duplicate", "job": json_body(first)["job"]}
    assert len(aws.receive()) == 1


def test_drone_final_status_of_another_build_is_queued_separately(aws, drone):
    delivery = fixture_json("drone/build_failure.json")
    drone(drone_event(to_body(delivery)))
    delivery["build"]["number"] = 129
    assert drone(drone_event(to_body(delivery)))["statusCode"] == 202
    assert sorted(j["payload"]["build"]["number"] for j in jobs_on_queue(aws)) == [128, 129]


@pytest.mark.parametrize("fixture", ["drone/build_created.json", "drone/build_running.json"])
def test_drone_unfinished_build_is_ignored(aws, drone, fixture):
    response = drone(drone_event(fixture_bytes(fixture)))
    assert response["statusCode"] == 200
    assert json_body(response) == {"status": "ignored", "reason": "build is not finished"}
    assert aws.receive() == []
    assert aws.state_items() == []


def test_drone_repo_event_is_ignored(aws, drone):
    response = drone(drone_event(fixture_bytes("drone/repo_enabled.json"), event="repo"))
    assert response["statusCode"] == 200
    assert json_body(response)["status"] == "ignored"
    assert aws.receive() == []


def test_drone_event_type_falls_back_to_the_body(aws, drone):
    response = drone(drone_event(DRONE_FAILURE, event=None))
    assert response["statusCode"] == 202
    assert len(aws.receive()) == 1


def test_drone_unknown_event_header_is_400(aws, drone):
    body = assert_refused(drone(drone_event(DRONE_FAILURE, event="deployment")), 400)
    assert "deployment" in body["error"]
    assert aws.receive() == []


def test_drone_build_without_repo_slug_is_400(aws, drone):
    delivery = fixture_json("drone/build_failure.json")
    del delivery["repo"]["slug"]
    assert_refused(drone(drone_event(to_body(delivery))), 400)
    assert aws.receive() == []


@pytest.mark.parametrize("tamper", ["wrong_secret", "no_signature", "stale", "other_body"])
def test_drone_bad_signature_is_401_with_no_effect(aws, drone, tamper):
    import time

    if tamper == "wrong_secret":
        event = drone_event(DRONE_FAILURE, secret="not-the-drone-secret")
    elif tamper == "stale":
        event = drone_event(DRONE_FAILURE, now=time.time() - 600)
    elif tamper == "other_body":
        event = drone_event(DRONE_FAILURE)
        event["body"] = event["body"].replace('"failure"', '"success"')
    else:
        event = drone_event(DRONE_FAILURE)
        del event["headers"]["signature"]

    assert_refused(drone(event), 401)
    assert aws.receive() == []
    assert aws.state_items() == []


def test_drone_authorization_header_form_is_accepted(aws, drone):
    event = drone_event(DRONE_FAILURE)
    event["headers"]["authorization"] = "Signature " + event["headers"].pop("signature")
    assert drone(event)["statusCode"] == 202
    assert len(aws.receive()) == 1


def test_drone_base64_encoded_body_is_verified_on_its_bytes(aws, drone):
    response = drone(drone_event(DRONE_FAILURE, base64_encoded=True))
    assert response["statusCode"] == 202
    assert len(aws.receive()) == 1


def test_drone_invalid_base64_is_400(aws, drone):
    event = drone_event(DRONE_FAILURE, base64_encoded=True)
    event["body"] = "!!not base64!!"
    assert_refused(drone(event), 400)


def test_drone_broken_json_with_valid_signature_is_400(aws, drone):
    body = assert_refused(drone(drone_event(b'{"event": "build", "build": ')), 400)
    assert "JSON" in body["error"]
    assert aws.receive() == []
    assert aws.state_items() == []


def test_drone_json_that_is_not_an_object_is_400(aws, drone):
    assert_refused(drone(drone_event(b'["build"]')), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_drone_wrong_content_type_is_415(aws, drone, content_type):
    assert_refused(drone(drone_event(DRONE_FAILURE, content_type=content_type)), 415)
    assert aws.receive() == []


def test_drone_content_type_parameters_are_allowed(aws, drone):
    response = drone(drone_event(DRONE_FAILURE, content_type="Application/JSON; charset=utf-8"))
    assert response["statusCode"] == 202


def test_drone_oversized_body_is_413(aws, drone, env):
    env("MAX_BODY_BYTES", "512")
    body = assert_refused(drone(drone_event(DRONE_FAILURE)), 413)
    assert "512" in body["error"]
    assert aws.receive() == []


def test_drone_body_at_the_limit_is_accepted(aws, drone, env):
    env("MAX_BODY_BYTES", str(len(DRONE_FAILURE)))
    assert drone(drone_event(DRONE_FAILURE))["statusCode"] == 202


def test_drone_empty_body_is_400(aws, drone):
    assert_refused(drone(drone_event(b"")), 400)


def test_unknown_route_is_404_json(aws, drone):
    response = drone(http_event("/webhooks/jenkins", b"{}"))
    assert response["statusCode"] == 404
    assert json_body(response) == {"error": "no such route"}


def test_get_on_a_webhook_is_not_routed(aws, drone):
    response = drone(http_event("/webhooks/drone", None, method="GET", content_type=None))
    assert response["statusCode"] == 404
    assert json_body(response) == {"error": "no such route"}


# --- Backend failures --------------------------------------------------------------------------------------


def test_queue_failure_is_503_and_the_claim_is_released(aws, drone, env, opsbot_log):
    good_url = aws.work_queue_url
    env("WORK_QUEUE_URL", good_url.rsplit("/", 1)[0] + "/no-such-queue")

    response = drone(drone_event(DRONE_FAILURE))
    assert response["statusCode"] == 503
    assert json_body(response) == {"error": "temporarily unavailable, please retry"}
    assert aws.state_items("idem#") == []  # released, so the sender's retry is not a "duplicate"
    assert "ingress failed" in opsbot_log()  # the trace goes to the log only

    env("WORK_QUEUE_URL", good_url)
    retry = drone(drone_event(DRONE_FAILURE))
    assert retry["statusCode"] == 202
    assert json_body(retry)["status"] == "queued"
    assert len(aws.receive()) == 1


def test_missing_secret_parameter_is_503(aws, drone):
    aws.ssm.delete_parameter(Name="/opsbot/test/drone/webhook-secret")
    response = drone(drone_event(DRONE_FAILURE))
    assert response["statusCode"] == 503
    json_body(response)
    assert aws.receive() == []


def test_state_table_failure_is_503(aws, drone, env):
    env("STATE_TABLE", "no-such-table")
    response = drone(drone_event(DRONE_FAILURE))
    assert response["statusCode"] == 503
    json_body(response)
    assert aws.receive() == []


# --- GitLab ------------------------------------------------------------------------------------------------


def test_gitlab_push_is_queued(aws, gitlab):
    response = gitlab(gitlab_event(GITLAB_PUSH, headers={"Idempotency-Key": "key-1"}))
    assert response["statusCode"] == 202
    assert json_body(response)["status"] == "queued"
    jobs = jobs_on_queue(aws)
    assert len(jobs) == 1
    assert jobs[0]["kind"] == "gitlab.push"
    assert jobs[0]["payload"] == json.loads(GITLAB_PUSH)
    assert [r["pk"]["S"] for r in aws.state_items("idem#")] == ["idem#gitlab#key-1"]


@pytest.mark.parametrize("token", [None, "", "wrong-token", GITLAB_TOKEN + "x", GITLAB_TOKEN[:-1]])
def test_gitlab_without_the_right_token_is_401(aws, gitlab, token):
    assert_refused(gitlab(gitlab_event(GITLAB_PUSH, token=token)), 401)
    assert aws.receive() == []
    assert aws.state_items() == []


def test_gitlab_idempotency_key_dedupes(aws, gitlab):
    statuses = [
        json_body(gitlab(gitlab_event(GITLAB_PUSH, headers={"Idempotency-Key": key})))["status"]
        for key in ("key-a", "key-a", "key-b")
    ]
    assert statuses == ["queued", "duplicate", "queued"]
    assert len(aws.receive()) == 2


def test_gitlab_event_uuid_dedupes_without_idempotency_key(aws, gitlab):
    headers = {"X-Gitlab-Event-UUID": "e-1", "X-Gitlab-Webhook-UUID": "w-1"}
    first = gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    again = gitlab(gitlab_event(GITLAB_PUSH, headers=headers))
    assert (first["statusCode"], again["statusCode"]) == (202, 200)
    assert json_body(again)["status"] == "duplicate"
    assert [r["pk"]["S"] for r in aws.state_items("idem#")] == ["idem#gitlab#e-1#w-1"]


def test_gitlab_without_delivery_ids_dedupes_on_the_body(aws, gitlab):
    assert gitlab(gitlab_event(GITLAB_PUSH))["statusCode"] == 202
    assert gitlab(gitlab_event(GITLAB_PUSH))["statusCode"] == 200
    assert gitlab(gitlab_event(GITLAB_PUSH.replace(b"}", b" }", 1)))["statusCode"] == 202
    assert len(aws.receive()) == 2


@pytest.mark.parametrize(
    "event_name, kind",
    [
        ("Tag Push Hook", "gitlab.tag_push"),
        ("Merge Request Hook", "gitlab.merge_request"),
        ("Note Hook", "gitlab.note"),
        ("Pipeline Hook", "gitlab.pipeline"),
    ],
)
def test_gitlab_handled_events_become_their_job_kind(aws, gitlab, event_name, kind):
    fixture = {
        "Tag Push Hook": "tag_push",
        "Merge Request Hook": "merge_request",
        "Note Hook": "note_merge_request",
        "Pipeline Hook": "pipeline",
    }[event_name]
    response = gitlab(gitlab_event(fixture_bytes(f"gitlab/{fixture}.json"), event=event_name))
    assert response["statusCode"] == 202
    assert [j["kind"] for j in jobs_on_queue(aws)] == [kind]


def test_gitlab_unknown_event_is_400(aws, gitlab):
    body = assert_refused(gitlab(gitlab_event(GITLAB_PUSH, event="Bogus Hook")), 400)
    assert "Bogus Hook" in body["error"]
    assert aws.receive() == []


def test_gitlab_missing_event_header_is_400(aws, gitlab):
    assert_refused(gitlab(gitlab_event(GITLAB_PUSH, event=None)), 400)


def test_gitlab_issue_hook_is_ignored(aws, gitlab):
    response = gitlab(gitlab_event(b'{"object_kind": "issue"}', event="Issue Hook"))
    assert response["statusCode"] == 200
    assert json_body(response)["status"] == "ignored"
    assert aws.receive() == []
    assert aws.state_items() == []


def test_gitlab_token_is_checked_before_the_body_is_parsed(aws, gitlab):
    assert_refused(gitlab(gitlab_event(b"{not json", token="wrong")), 401)
    assert_refused(gitlab(gitlab_event(b"{not json")), 400)


# --- GitLab: a project's own webhook token -------------------------------------------------------------------

WEB_TOKEN_PARAM = "/opsbot/local/webhooks/gitlab-projects/shop-web"
WEB_TOKEN = "shop-web-own-webhook-token"


@pytest.fixture
def own_token_config(aws):
    """The example config, where shop-web (shop/shop-web) has a webhook token of its own, kept in SSM."""
    import unit_support

    from opsbot.config import store

    aws.ssm.put_parameter(Name=WEB_TOKEN_PARAM, Value=WEB_TOKEN, Type="SecureString")
    documents = unit_support.example_documents()
    web = next(d for d in documents if d.name == "projects/shop-web.yaml").data
    web["webhook_token"] = f"ssm:{WEB_TOKEN_PARAM}"
    return store.save(documents, "own-token")


def push_of(repo: str) -> bytes:
    push = fixture_json("gitlab/push.json")
    push["project"]["path_with_namespace"] = repo
    return to_body(push)


def test_a_project_with_its_own_token_is_heard_with_it(aws, gitlab, own_token_config):
    response = gitlab(gitlab_event(push_of("shop/shop-web"), token=WEB_TOKEN))
    assert response["statusCode"] == 202
    assert [j["payload"]["project"]["path_with_namespace"] for j in jobs_on_queue(aws)] == ["shop/shop-web"]


def test_the_shared_token_is_refused_for_a_project_with_its_own(aws, gitlab, own_token_config):
    body = assert_refused(gitlab(gitlab_event(push_of("shop/shop-web"))), 401)
    assert body["error"] == "this project has its own webhook token"
    # the path is matched as config matches repos: its case does not matter
    assert_refused(gitlab(gitlab_event(push_of("Shop/Shop-Web"))), 401)
    assert aws.receive() == [] and aws.state_items() == []


def test_the_shared_token_still_serves_the_other_projects(aws, gitlab, own_token_config):
    for repo in ("shop/shop-api", "platform/opsbot-config", "some/unconfigured-repo"):
        assert gitlab(gitlab_event(push_of(repo)))["statusCode"] == 202
    assert len(jobs_on_queue(aws)) == 3


@pytest.mark.parametrize("token", ["wrong-token", WEB_TOKEN + "x", WEB_TOKEN[:-1], ""])
def test_a_wrong_token_for_a_project_with_its_own_is_401_and_nothing_is_queued(aws, gitlab, own_token_config, token):
    assert_refused(gitlab(gitlab_event(push_of("shop/shop-web"), token=token)), 401)
    assert aws.receive() == [] and aws.state_items() == []


def test_a_projects_own_token_speaks_for_that_project_only(aws, gitlab, own_token_config):
    body = assert_refused(gitlab(gitlab_event(push_of("shop/shop-api"), token=WEB_TOKEN)), 401)
    assert body["error"] == "X-Gitlab-Token does not match"
    assert_refused(gitlab(gitlab_event(b"{not json", token=WEB_TOKEN)), 401)  # names no project: the shared token
    assert aws.receive() == []


def test_without_own_tokens_the_body_is_not_looked_into_before_the_token(aws, gitlab, example_config, monkeypatch):
    def looked_into(body):
        raise AssertionError("the body was read before the token was checked")

    monkeypatch.setattr("opsbot.gitlab.webhook._delivery_project", looked_into)
    assert gitlab(gitlab_event(push_of("shop/shop-web")))["statusCode"] == 202
    assert_refused(gitlab(gitlab_event(push_of("shop/shop-web"), token="wrong")), 401)


# --- DingTalk ----------------------------------------------------------------------------------------------


def test_dingtalk_read_is_answered_in_the_response_and_not_queued(aws, dingtalk, chat_config, fake_drone):
    response = dingtalk(dingtalk_event(DINGTALK_STATUS))  # " status shop-api" from 王小明
    assert response["statusCode"] == 200
    answer = json_body(response)
    assert answer["msgtype"] == "markdown"
    assert "shop-api" in answer["markdown"]["text"] and "#128" in answer["markdown"]["text"]
    assert jobs_on_queue(aws) == []
    assert aws.state_items("idem#") == []  # a read has nothing to de-duplicate
    assert [c["method"] for c in fake_drone.calls] == ["GET"]


def test_dingtalk_act_is_acknowledged_and_queued(aws, dingtalk, chat_config, fake_drone):
    response = dingtalk(dingtalk_event(DINGTALK_DEPLOY))  # " 部署 shop-api 128 到 staging" from 王小明
    assert response["statusCode"] == 200
    answer = json_body(response)
    assert answer["msgtype"] == "markdown" and "收到 `deploy`" in answer["markdown"]["text"]
    jobs = jobs_on_queue(aws)
    assert len(jobs) == 1
    assert jobs[0]["kind"] == "chat.command"
    assert jobs[0]["payload"]["command"] == "deploy"
    assert jobs[0]["payload"]["arguments"] == {"project": "shop-api", "build|branch": "128", "env": "staging"}
    # The job carries the callback fields the worker needs to answer, not the whole body.
    from opsbot.chat.inbound.dingtalk import JOB_FIELDS as REPLY_FIELDS

    carried = jobs[0]["payload"]["message"]
    assert set(carried) <= set(REPLY_FIELDS) and carried["senderStaffId"] == "manager4321"
    assert [r["pk"]["S"] for r in aws.state_items("idem#")] == ["idem#dingtalk#msgA7pK2mS9dX4qW1eR6tY=="]
    assert fake_drone.calls == []  # the worker talks to Drone, not the callback


def test_dingtalk_same_msg_id_is_queued_once(aws, dingtalk, chat_config):
    responses = [dingtalk(dingtalk_event(DINGTALK_DEPLOY)) for _ in range(3)]
    assert [r["statusCode"] for r in responses] == [200, 200, 200]
    assert json_body(responses[0])["msgtype"] == "markdown"  # the acknowledgement, once
    assert all(json_body(r) == {"msgtype": "empty"} for r in responses[1:])
    assert len(aws.receive()) == 1


def test_dingtalk_another_msg_id_is_queued(aws, dingtalk, chat_config):
    message = fixture_json("dingtalk/outgoing_deploy_zh.json")
    dingtalk(dingtalk_event(to_body(message)))
    message["msgId"] = "msg-other"
    dingtalk(dingtalk_event(to_body(message)))
    assert len(aws.receive()) == 2


@pytest.mark.parametrize("tamper", ["bad_sign", "wrong_secret", "stale", "missing"])
def test_dingtalk_bad_sign_is_401_with_no_effect(aws, dingtalk, tamper):
    import time

    if tamper == "bad_sign":
        event = dingtalk_event(DINGTALK_STATUS)
        event["headers"]["sign"] = "AAAA" + event["headers"]["sign"][4:]
    elif tamper == "wrong_secret":
        event = dingtalk_event(DINGTALK_STATUS, secret="not-" + DINGTALK_APP_SECRET)
    elif tamper == "stale":
        event = dingtalk_event(DINGTALK_STATUS, now_ms=int(time.time() * 1000) - 3601 * 1000)
    else:
        event = dingtalk_event(DINGTALK_STATUS)
        del event["headers"]["sign"]

    assert_refused(dingtalk(event), 401)
    assert aws.receive() == []
    assert aws.state_items() == []


def test_dingtalk_callback_without_msg_id_is_400(aws, dingtalk):
    message = fixture_json("dingtalk/outgoing_status.json")
    del message["msgId"]
    assert_refused(dingtalk(dingtalk_event(to_body(message))), 400)
    assert aws.receive() == []


def test_dingtalk_backend_failure_is_503_and_retry_is_accepted(aws, dingtalk, env, chat_config):
    good_url = aws.work_queue_url
    env("WORK_QUEUE_URL", good_url + "-gone")
    response = dingtalk(dingtalk_event(DINGTALK_DEPLOY))
    assert response["statusCode"] == 503
    assert "error" in json_body(response)
    assert aws.state_items("idem#") == []  # the claim is given back, so DingTalk's retry is not a duplicate

    env("WORK_QUEUE_URL", good_url)
    retried = json_body(dingtalk(dingtalk_event(DINGTALK_DEPLOY)))
    assert retried["msgtype"] == "markdown" and "收到 `deploy`" in retried["markdown"]["text"]
    assert len(aws.receive()) == 1


def test_dingtalk_without_a_loaded_config_is_503(aws, dingtalk):
    response = dingtalk(dingtalk_event(DINGTALK_STATUS))
    assert response["statusCode"] == 503
    assert "error" in json_body(response)
    assert aws.receive() == []


def test_gitlab_backend_failure_is_503_and_retry_is_accepted(aws, gitlab, env):
    good_url = aws.work_queue_url
    env("WORK_QUEUE_URL", good_url + "-gone")
    headers = {"Idempotency-Key": "retry-me"}
    assert gitlab(gitlab_event(GITLAB_PUSH, headers=headers))["statusCode"] == 503
    env("WORK_QUEUE_URL", good_url)
    assert gitlab(gitlab_event(GITLAB_PUSH, headers=headers))["statusCode"] == 202
    assert len(aws.receive()) == 1


# --- Idempotency records -----------------------------------------------------------------------------------


def test_claim_is_first_come_only(aws):
    from opsbot.state import idempotency

    assert idempotency.claim("k") is True
    assert idempotency.claim("k") is False
    assert idempotency.seen("k") is True
    assert idempotency.seen("other") is False


def test_expired_claim_counts_as_new(aws):
    from opsbot.state import idempotency

    assert idempotency.claim("k", ttl_seconds=-10) is True
    assert idempotency.seen("k") is False  # TTL deletion is lazy: the record may still be there
    assert idempotency.claim("k") is True
    assert idempotency.claim("k") is False


def test_release_forgets_a_claim(aws):
    from opsbot.state import idempotency

    claim = idempotency.claim_delivery("k", None, 20)
    idempotency.release_claim(claim)
    assert idempotency.seen("k") is False
    assert isinstance(idempotency.claim_delivery("k", None, 20), idempotency.Claim)


def test_drone_body_at_the_default_limit_fits_on_the_queue(aws, drone):
    # The default MAX_BODY_BYTES leaves room for the job envelope within SQS's 256 KiB message limit.
    from opsbot.settings import ENVIRONMENT, settings

    limit = int(ENVIRONMENT["MAX_BODY_BYTES"][1])
    assert settings().max_body_bytes == limit
    delivery = fixture_json("drone/build_failure.json")
    delivery["build"]["message"] = ""
    padding = limit - len(to_body(delivery))
    delivery["build"]["message"] = "x" * padding
    body = to_body(delivery)
    assert len(body) == limit

    assert drone(drone_event(body))["statusCode"] == 202
    assert len(aws.receive()[0]["Body"].encode()) <= 262_144
    assert_refused(drone(drone_event(body + b" ")), 413)


def test_gitlab_body_at_the_default_limit_fits_on_the_queue(aws, gitlab):
    from opsbot.settings import settings

    push = {**fixture_json("gitlab/push.json"), "pad": ""}
    body = to_body({**push, "pad": "y" * (settings().max_body_bytes - len(to_body(push)))})
    assert len(body) == settings().max_body_bytes
    assert gitlab(gitlab_event(body))["statusCode"] == 202
    assert len(aws.receive()) == 1


def test_secrets_are_cached_for_secret_cache_seconds(aws, drone):
    assert drone(drone_event(DRONE_FAILURE))["statusCode"] == 202
    # Rotated in SSM: a warm Lambda keeps the cached value until SECRET_CACHE_SECONDS pass.
    aws.ssm.put_parameter(
        Name="/opsbot/test/drone/webhook-secret", Value="rotated", Type="SecureString", Overwrite=True
    )
    delivery = fixture_json("drone/build_failure.json")
    delivery["build"]["number"] = 500
    assert drone(drone_event(to_body(delivery)))["statusCode"] == 202


# --- Malformed but signed deliveries are the sender's fault: 4xx, never 5xx -----------------------------------


def _mutants() -> list[tuple[str, dict]]:
    base = fixture_json("drone/build_failure.json")
    mutants = []
    for path, value in [
        (("build",), "a string"),
        (("build",), None),
        (("repo",), []),
        (("repo", "slug"), 42),
        (("build", "number"), "128"),
        (("build", "number"), True),
        (("build", "status"), ["failure"]),
        (("build", "status"), {"s": 1}),
        (("build", "finished"), "yesterday"),
        (("system",), "drone"),
        (("build", "event"), ["push"]),
        (("build", "stages"), "none"),
        (("event",), ["build"]),
    ]:
        document = json.loads(json.dumps(base))
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        mutants.append((".".join(path) + "=" + json.dumps(value), document))
    return mutants


@pytest.mark.parametrize("name, document", _mutants(), ids=[name for name, _ in _mutants()])
def test_malformed_drone_delivery_is_never_a_5xx(aws, drone, name, document):
    event_header = document["event"] if isinstance(document.get("event"), str) else None
    response = drone(drone_event(to_body(document), event=event_header))
    assert response["statusCode"] < 500, (name, response)
    json_body(response)


def test_randomly_mutated_signed_deliveries_are_never_a_5xx(aws, drone, gitlab, dingtalk, chat_config):
    import random

    rng = random.Random(20261125)
    seeds = [
        (drone, DRONE_FAILURE, drone_event),
        (gitlab, GITLAB_PUSH, gitlab_event),
        (dingtalk, DINGTALK_STATUS, dingtalk_event),
        (dingtalk, DINGTALK_DEPLOY, dingtalk_event),
    ]
    statuses = set()
    for index in range(160):
        handler, seed, make_event = seeds[index % 4]
        body = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        event = make_event(bytes(body), base64_encoded=True)  # any bytes, even invalid UTF-8
        response = handler(event)
        assert response["statusCode"] < 500, (bytes(body), response)
        json_body(response)
        statuses.add(response["statusCode"])
    assert 400 in statuses  # the mutations did break things
