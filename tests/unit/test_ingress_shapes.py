"""The shape each route accepts: what is a 400 (with the field named), what is 200 "ignored", and that the parser
ingress decides with is the one the worker reads the job with. The fuzz (test_fuzz_ingress.py) found the cases
pinned down here, or they were the reasons of the probe before it: a GitLab body nested thousands of levels deep
answered 503, and GitLab hooks without a project or object_attributes were queued and then parked in the DLQ."""

from __future__ import annotations

import json

import pytest
from chat_support import callback
from unit_support import (
    ACTION_SIGNING_KEY,
    dingtalk_event,
    drone_event,
    fixture_json,
    gitlab_event,
    http_event,
    json_body,
    to_body,
)

from opsbot.drone import events as drone_events
from opsbot.gitlab import events as gitlab_events
from opsbot.ingress import shape
from opsbot.ingress.errors import BadRequest
from opsbot.ingress.request import MAX_JSON_DEPTH, parse_json_object
from opsbot.jobs.model import Job, PermanentFailure

HOOKS = {
    "push": ("Push Hook", gitlab_events.Push.from_payload),
    "tag_push": ("Tag Push Hook", gitlab_events.Push.from_tag_payload),
    "merge_request": ("Merge Request Hook", gitlab_events.MergeRequestEvent.from_payload),
    "note_merge_request": ("Note Hook", gitlab_events.NoteEvent.from_payload),
    "pipeline": ("Pipeline Hook", gitlab_events.PipelineEvent.from_payload),
}


@pytest.fixture
def drone(handlers, lambda_context):
    return lambda event: handlers.drone_webhook.lambda_handler(event, lambda_context)


@pytest.fixture
def gitlab(handlers, lambda_context):
    return lambda event: handlers.gitlab_webhook.lambda_handler(event, lambda_context)


@pytest.fixture
def dingtalk(handlers, lambda_context):
    return lambda event: handlers.dingtalk_bot.lambda_handler(event, lambda_context)


def refused(response: dict, *words: str) -> str:
    assert response["statusCode"] == 400, response
    error = json_body(response)["error"]
    assert all(word in error for word in words), error
    return error


def ignored(response: dict) -> str:
    assert response["statusCode"] == 200, response
    answer = json_body(response)
    assert answer["status"] == "ignored" and answer["reason"], answer
    return answer["reason"]


def arrays(levels: int) -> list:
    """`levels` arrays, each in the one before: [[[]]] is 3."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


# --- the one JSON reader --------------------------------------------------------------------------------------


def test_real_payloads_nest_far_less_than_the_limit():
    from unit_support import FIXTURES

    def depth(value) -> int:
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        return 1 + max((depth(c) for c in children if isinstance(c, dict | list)), default=0)

    deepest = max(depth(json.loads(p.read_text(encoding="utf-8"))) for p in FIXTURES.glob("*/*.json"))
    assert deepest <= 8 < MAX_JSON_DEPTH


def test_the_depth_limit_counts_objects_and_arrays():
    assert parse_json_object(to_body({"a": arrays(MAX_JSON_DEPTH - 1)}))  # 32 levels, the body's own included
    with pytest.raises(BadRequest, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        parse_json_object(to_body({"a": arrays(MAX_JSON_DEPTH)}))
    with pytest.raises(BadRequest, match="nested"):
        parse_json_object(b'{"a":' * 33 + b"1" + b"}" * 33)


@pytest.mark.parametrize("depth", [40, 900, 5_000])
def test_a_gitlab_body_nested_deep_is_400_and_never_a_503(aws, gitlab, depth):
    hook = fixture_json("gitlab/push.json")
    body = to_body(hook).replace(b'"user_avatar":', b'"user_avatar":' + b"[" * depth + b"]" * depth + b',"x":', 1)
    refused(gitlab(gitlab_event(body, headers={"Idempotency-Key": f"deep-{depth}"})), "nested")
    assert aws.receive() == [] and aws.state_items() == []


# --- Drone -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"finished": "yesterday"}, "build.finished"),
        ({"stages": "none"}, "build.stages"),
        ({"stages": [{"name": "default", "steps": [{"name": 7}]}]}, "build.stages[0].steps[0].name"),
        ({"stages": [{}] * (drone_events.MAX_STAGES + 1)}, "build.stages"),
        ({"event": ["push"]}, "build.event"),
        ({"target": "x" * (shape.NAME_CHARS + 1)}, "build.target"),
        ({"after": "f" * 65}, "build.after"),
        ({"number": 0}, "build.number"),
    ],
)
def test_a_finished_build_the_notifier_could_not_read_is_400(aws, drone, change, field):
    delivery = fixture_json("drone/build_failure.json")
    delivery["build"].update(change)
    refused(drone(drone_event(to_body(delivery))), field)
    assert aws.receive() == []


def test_a_drone_system_that_is_not_an_object_is_400(aws, drone):
    delivery = {**fixture_json("drone/build_failure.json"), "system": "drone"}
    refused(drone(drone_event(to_body(delivery))), "system")


def test_the_notifier_reads_the_job_with_the_webhooks_parser(aws, chat_config, fake_dingtalk):
    """A job made elsewhere (an older ingress, a hand-made redrive) that the parser refuses is parked as a bug."""
    from opsbot.notify.jobs import notify_build_finished

    delivery = fixture_json("drone/build_failure.json")
    job = Job(kind="drone.build_finished", payload={"repo": delivery["repo"], "build": {**delivery["build"]}})
    job.payload["build"]["stages"] = "none"
    with pytest.raises(PermanentFailure, match="bug: a Drone build job that ingress should have refused"):
        notify_build_finished(job)


# --- GitLab ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(HOOKS))
def test_gitlabs_own_payloads_pass_their_parser(fixture):
    _event, parse = HOOKS[fixture]
    assert parse(fixture_json(f"gitlab/{fixture}.json"))


@pytest.mark.parametrize(
    "fixture, change, field",
    [
        ("note_merge_request", {"project": None}, "project is missing"),
        ("note_merge_request", {"project": {"name": "x"}}, "project.path_with_namespace"),
        ("merge_request", {"object_attributes": None}, "object_attributes is missing"),
        ("merge_request", {"object_attributes": {"iid": "1", "action": "open"}}, "object_attributes.iid"),
        ("merge_request", {"object_kind": "note"}, "object_kind"),
        ("note_merge_request", {"merge_request": {"iid": True}}, "merge_request.iid"),
        ("push", {"commits": [{"added": "README.md"}]}, "commits[0].added"),
        ("push", {"commits": [{}] * (gitlab_events.MAX_PUSH_COMMITS + 1)}, "commits"),
        ("push", {"total_commits_count": "3"}, "total_commits_count"),
        ("push", {"ref": None}, "ref"),
        ("pipeline", {"merge_request": "!1"}, "merge_request"),
        ("pipeline", {"object_attributes": {"sha": 1}}, "object_attributes.sha"),
        ("tag_push", {"object_kind": "push"}, "object_kind"),
    ],
)
def test_a_hook_the_worker_could_not_read_is_400_and_not_queued(aws, gitlab, fixture, change, field):
    event_name, _parse = HOOKS[fixture]
    hook = {**fixture_json(f"gitlab/{fixture}.json"), **change}
    refused(gitlab(gitlab_event(to_body(hook), event=event_name)), event_name, field)
    assert aws.receive() == [] and aws.state_items() == []


@pytest.mark.parametrize(
    "fixture, change, reason",
    [
        ("note_commit", {}, "a comment on a Commit, not on a merge request"),
        ("note_merge_request", {"action": "update"}, "an edited comment"),
        ("merge_request", {"action": "close"}, "merge request close"),
        ("merge_request", {"action": "merge"}, "merge request merge"),
        ("merge_request", {"action": "labeled"}, "merge request action 'labeled' is not handled"),
    ],
)
def test_a_well_formed_hook_opsbot_does_not_act_on_is_ignored_with_200(aws, gitlab, fixture, change, reason):
    hook = fixture_json(f"gitlab/{fixture}.json")
    hook["object_attributes"].update(change)
    event_name = "Note Hook" if fixture.startswith("note") else "Merge Request Hook"
    assert ignored(gitlab(gitlab_event(to_body(hook), event=event_name))) == f"GitLab {event_name}: {reason}"
    assert aws.receive() == [] and aws.state_items() == []


def test_a_branch_pipeline_names_no_merge_request_and_is_queued(aws, gitlab):
    hook = {**fixture_json("gitlab/pipeline.json"), "merge_request": None}
    assert gitlab(gitlab_event(to_body(hook), event="Pipeline Hook"))["statusCode"] == 202
    assert gitlab_events.PipelineEvent.from_payload(hook).iid is None


def test_an_older_note_hook_without_an_action_is_a_new_comment():
    hook = fixture_json("gitlab/note_merge_request.json")
    del hook["object_attributes"]["action"]  # GitLab before 16.11
    assert gitlab_events.NoteEvent.from_payload(hook).note_id == hook["object_attributes"]["id"]


def test_a_review_job_ingress_would_refuse_is_parked_as_a_bug(aws):
    from opsbot.review.jobs import on_note

    with pytest.raises(PermanentFailure, match="bug: a Note Hook job that ingress should have refused: project"):
        on_note(Job(kind="gitlab.note", payload={"object_kind": "note", "object_attributes": {}}))


def test_a_review_job_for_a_hook_ingress_now_ignores_ends_ignored(aws):
    """Jobs queued before ingress ignored these (a deploy in between) end quietly, not in the DLQ."""
    from opsbot.review.jobs import on_merge_request

    hook = fixture_json("gitlab/merge_request.json")
    hook["object_attributes"]["action"] = "close"
    assert on_merge_request(Job(kind="gitlab.merge_request", payload=hook)) == "ignored: merge request close"


# --- DingTalk --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"createAt": "1732521600000"}, "createAt"),
        ({"sessionWebhookExpiredTime": 1.5}, "sessionWebhookExpiredTime"),
        ({"text": {"content": ["status"]}}, "text.content"),
        ({"text": "status shop-api"}, "text"),
        ({"senderStaffId": {"id": "alice.wang"}}, "senderStaffId"),
        ({"msgtype": None}, "msgtype"),
        ({"msgId": ""}, "msgId"),
    ],
)
def test_a_callback_the_chat_layer_could_not_read_is_400(aws, dingtalk, chat_config, change, field):
    body = {**callback("status shop-api", "alice"), **change}
    refused(dingtalk(dingtalk_event(to_body(body))), "DingTalk callback", field)
    assert aws.state_items() == []  # refused before its sign is bound to its msgId


@pytest.mark.parametrize("msgtype", ["picture", "richText", "file"])
def test_a_message_that_is_not_text_is_ignored_and_shows_nothing(aws, dingtalk, chat_config, msgtype):
    body = callback("", "alice", msgtype=msgtype)
    del body["text"]
    response = dingtalk(dingtalk_event(to_body(body)))
    assert response["statusCode"] == 200
    answer = json_body(response)
    assert answer["msgtype"] == "empty" and answer["status"] == "ignored" and msgtype in answer["reason"]
    assert aws.receive() == [] and aws.state_items() == []


# --- the release link's form -----------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["redirect=https://evil.example", "user2=carol.zhang", "=x"])
def test_a_form_with_a_field_the_page_does_not_send_is_400_and_queues_nothing(
    aws, handlers, lambda_context, chat_config, fake_dingtalk, extra
):
    from urllib.parse import urlencode

    from opsbot.actions import tickets
    from opsbot.release import links

    token = links.issue("shop-api", 128, "staging", "9c8d7e6f" * 5, "main", "a title", "push", 24)
    fields = tickets.signed_in("alice.wang", "Alice Wang").form(token.split(".")[0], ACTION_SIGNING_KEY.encode())
    event = http_event(
        f"/actions/{token}",
        urlencode(fields) + "&" + extra,
        method="POST",
        content_type="application/x-www-form-urlencoded",
        headers={"x-forwarded-proto": "https"},
    )
    response = handlers.actions.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 400 and "the confirmation page does not send" in response["body"]
    assert aws.receive() == []
