"""Nothing old runs again (issue 17, findings 1 and 2): a genuine old message or note, read again after every
record with a TTL has expired (`sweep_expired`: the TTL attribute put in the past and the items deleted, as
DynamoDB's TTL sweep does), is not acted on. Two rules hold it, each tested on its own here: the markers of acts
are kept for good (or longer than any copy of a job lives), and a source's message counts only while it is fresh
by the source's own clock (a Feishu message's `create_time`; a merge-request comment only for heads pushed before
it was written)."""

from __future__ import annotations

import pytest
from test_chat_worker import Worker, act, drone_changes, pending_approval, say
from unit_support import ROOT, STACK_ENV, sweep_expired, to_body

from opsbot.state import effects, keys


@pytest.fixture
def worker(aws, handlers, lambda_context) -> Worker:
    return Worker(aws, handlers, lambda_context)


def _state_item(aws, pk: str) -> dict | None:
    return aws.state_item(pk)


# --- markers that outlive every TTL ------------------------------------------------------------------------------


def test_effect_records_outlive_every_copy_of_their_job():
    """A job can wait in the dead-letter queue for 14 days and be redriven: its effects must still be known then."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=Loader)
    retention = max(
        int(resource["Properties"].get("MessageRetentionPeriod", 345600))
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SQS::Queue"
    )
    assert effects.KEEP_SECONDS > retention >= 14 * 86400
    assert effects.KEEP_SECONDS > int(STACK_ENV["IDEMPOTENCY_TTL_SECONDS"])


def test_an_effect_is_kept_as_long_and_a_permanent_one_for_good(aws):
    import time

    effects.once("kept", lambda: {"done": 1})
    effects.once("forever", lambda: {"done": 2}, permanent=True)
    kept = aws.state_item(keys.EFFECT + "kept")
    assert int(kept["expires_at"]["N"]) == pytest.approx(time.time() + effects.KEEP_SECONDS, abs=60)
    assert "expires_at" not in aws.state_item(keys.EFFECT + "forever")
    sweep_expired(aws)
    assert aws.state_item(keys.EFFECT + "kept") is None
    assert effects.once("forever", lambda: pytest.fail("ran again")) == {"done": 2}


def test_a_chat_acts_message_marker_is_kept_for_good(chat_config, worker, fake_drone):
    """alice's deploy runs once; the same message (its msgId) read again after every TTL passed is a duplicate."""
    [message] = act(worker, "deploy shop-api 128 staging", msg_id="msg-deploy-once")
    assert len(drone_changes(fake_drone)) == 1
    claim = worker.aws.state_item(keys.IDEMPOTENCY + "dingtalk#msg-deploy-once")
    assert claim is not None and "expires_at" not in claim  # the act's marker: never swept
    swept = sweep_expired(worker.aws)
    assert any(key.startswith(keys.EFFECT) for key in swept)  # the job's own records went
    again = say("deploy shop-api 128 staging", msg_id="msg-deploy-once")
    assert again == {"msgtype": "empty"}  # a duplicate: acknowledged the first time
    assert [m for m in worker.aws.receive() if m["MessageId"] != message["MessageId"]] == []
    assert len(drone_changes(fake_drone)) == 1


def test_an_approval_acts_once_ever_even_when_its_approver_approves_again_later(chat_config, worker, fake_drone):
    """carol approved alice's production deploy; days later (every TTL past) she sends `approve <id>` again."""
    act(worker, "deploy shop-api 128 production", msg_id="msg-prod-request")
    request = pending_approval()
    act(worker, f"approve {request.id}", "carol", msg_id="msg-prod-approve")
    assert len(drone_changes(fake_drone)) == 1
    assert "expires_at" not in worker.aws.state_item(keys.EFFECT + keys.APPROVED + request.id)
    sweep_expired(worker.aws, request.id[:8], "msg-prod")  # the job records of both messages
    act(worker, f"approve {request.id}", "carol", msg_id="msg-prod-approve-again")  # a new message of hers
    assert len(drone_changes(fake_drone)) == 1  # the approval's deploy is done, once


# --- merge-request comments ------------------------------------------------------------------------------------


@pytest.fixture
def review(aws, fake_gitlab, fake_drone, monkeypatch):
    """Merge request !1 of shop/shop-api, opened by alice and triaged; the group's messages go nowhere."""
    import unit_support
    from test_review_jobs import mr_job, open_mr

    from opsbot.config import store

    documents = unit_support.example_documents(drone=fake_drone.url)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["gitlab"]["url"] = fake_gitlab.url
    store.save(documents, "replay-test")
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: None)
    mr_job(open_mr(fake_gitlab, {"src/main/java/A.java": "class A {}\n"}))
    return fake_gitlab


def test_a_comments_marker_is_kept_for_good_so_an_old_lgtm_is_not_given_again(review, aws):
    """bob's /lgtm, then his /lgtm cancel; after every TTL passed, a Note Hook naming the first note again (the
    shared webhook token is all it takes) gives no lgtm."""
    from test_review_jobs import deliver, mr, write_note

    from opsbot.review import store as review_store

    first = write_note(review, "bob", "/lgtm")
    deliver(first)
    assert "lgtm" in mr(review)["labels"]
    deliver(write_note(review, "bob", "/lgtm cancel"))
    assert "lgtm" not in mr(review)["labels"] and review_store.lgtm_sha("shop/shop-api", 1) is None
    note_id = first["object_attributes"]["id"]
    assert "expires_at" not in aws.state_item(f"{keys.EFFECT}{keys.REVIEW_COMMANDS}shop/shop-api!1#{note_id}")
    sweep_expired(aws)
    deliver(first)  # the replay: a new delivery of the old hook
    assert "lgtm" not in mr(review)["labels"] and review_store.lgtm_sha("shop/shop-api", 1) is None


# --- Feishu: fresh by Feishu's own clock, and addressed to the bot by Feishu's own mentions ------------------------


@pytest.fixture
def feishu(chat_config, fake_dingtalk, env):
    from unit_support import FEISHU_APP_ID

    env("FEISHU_APP_ID", FEISHU_APP_ID)
    env("FEISHU_API_URL", fake_dingtalk.url)
    return fake_dingtalk.feishu


def _feishu_job(feishu, handlers, lambda_context, event: dict) -> str:
    """The callback through the Feishu function, then its job through the worker: the job's result line."""
    from test_feishu_chat import post_event

    status, body = post_event(handlers, lambda_context, event)
    assert status == 200 and body["status"] == "queued", body
    return body["job"]


def _run(aws, handlers, lambda_context) -> None:
    from test_feishu_chat import run_jobs

    assert run_jobs(aws, handlers, lambda_context) == []


def test_an_old_feishu_message_is_refused_audited_told_and_not_parked(
    feishu, aws, handlers, lambda_context, fake_drone
):
    """alice's deploy, written 10 minutes before its callback came (a replay, or Feishu's retry hours late)."""
    from chat_support import audit_log
    from test_feishu_chat import ALICE, replies, say

    said = say(feishu, "deploy shop-api 128 staging", ALICE)
    feishu.control("POST", "/_control/feishu/backdate", to_body({"message_id": said["message_id"], "seconds": 600}))
    _feishu_job(feishu, handlers, lambda_context, said["event"])
    _run(aws, handlers, lambda_context)
    assert [c for c in fake_drone.calls if c["method"] != "GET"] == []  # nothing deployed
    [(to, title, text)] = replies(feishu)
    assert to == said["message_id"] and title == "too old" and "too old for opsbot to act on" in text
    [record] = [r for r in audit_log() if r.result == "stale"]
    assert record.who == "alice" and record.via == "feishu" and "at most 300 s" in record.detail
    assert aws.dead_letters() == []  # refused, not parked


def test_a_message_older_than_its_thread_is_refused_without_a_word(feishu, aws, handlers, lambda_context, fake_drone):
    """A genuine message from three days ago, its callback replayed: audited, and nothing said in the group."""
    from chat_support import audit_log
    from test_feishu_chat import BOB, say

    said = say(feishu, "restart shop-api 127", BOB)
    feishu.control(
        "POST", "/_control/feishu/backdate", to_body({"message_id": said["message_id"], "seconds": 3 * 86400})
    )
    _feishu_job(feishu, handlers, lambda_context, said["event"])
    _run(aws, handlers, lambda_context)
    assert feishu.replies == [] and [c for c in fake_drone.calls if c["method"] != "GET"] == []
    assert [r.who for r in audit_log() if r.result == "stale"] == ["bob"]


def test_a_fresh_message_is_still_acted_on_and_its_age_counts_to_its_callback_not_to_its_retries(
    feishu, aws, handlers, lambda_context, fake_drone, env
):
    """The age is the callback's arrival minus Feishu's create_time: a job retried for long still counts from then."""
    from test_feishu_chat import ALICE, say

    from opsbot.ingress import freshness

    said = say(feishu, "deploy shop-api 128 staging", ALICE)
    feishu.control("POST", "/_control/feishu/backdate", to_body({"message_id": said["message_id"], "seconds": 240}))
    _feishu_job(feishu, handlers, lambda_context, said["event"])
    _run(aws, handlers, lambda_context)
    assert [c["path"] for c in fake_drone.calls if c["method"] == "POST"] == [
        "/api/repos/shop/shop-api/builds/128/promote"
    ]
    created = int(feishu.user_messages[said["message_id"]]["create_time"])
    assert freshness.too_old(created, created + 299_000) == ""
    assert "at most 300 s" in freshness.too_old(created, created + 301_000)
    assert freshness.too_old(None, created) == "the message carries no time of its own"
    env("MESSAGE_MAX_AGE_SECONDS", "600")
    assert freshness.too_old(created, created + 301_000) == ""


def test_a_group_message_that_does_not_mention_the_bot_is_not_run_whatever_the_callback_says(
    feishu, aws, handlers, lambda_context, fake_drone
):
    """xiaoming says `deploy shop-api 128 production` to his colleagues, not to the bot; someone with the
    verification token forges its callback as a one-to-one chat (so that ingress takes it)."""
    from test_feishu_chat import XIAOMING, say

    said = say(feishu, "deploy shop-api 128 staging", XIAOMING, mention=False)
    event = said["event"]
    event["event"]["message"]["chat_type"] = "p2p"
    _feishu_job(feishu, handlers, lambda_context, event)
    _run(aws, handlers, lambda_context)
    assert feishu.replies == [] and [c for c in fake_drone.calls if c["method"] != "GET"] == []
    # the same words in his own one-to-one chat with the bot are for it: answered
    direct = say(feishu, "whoami", XIAOMING, chat_type="p2p")
    _feishu_job(feishu, handlers, lambda_context, direct["event"])
    _run(aws, handlers, lambda_context)
    assert [r["to"] for r in feishu.replies] == [direct["message_id"]]


# --- GitLab: a comment vouches only for heads pushed before it was written -----------------------------------------


def _push(review, files: dict) -> None:
    """alice pushes to !1's branch, and the worker runs the Merge Request Hook it brings (triage drops lgtm)."""
    from test_review_jobs import push_to_mr

    push_to_mr(review, files)


def test_an_lgtm_written_before_the_head_was_pushed_does_not_count_for_it(review, aws):
    """bob's /lgtm is written at the first head; alice pushes; the note's job runs only now (GitLab's hook was
    late, or someone sent it again with the shared webhook token): it gives no lgtm to commits bob never saw, and
    Tide merges nothing."""
    from test_review_jobs import deliver, mr, write_note

    from opsbot.review import store as review_store

    hook = write_note(review, "bob", "/lgtm")
    _push(review, {"src/main/java/B.java": "class B {}\n"})
    head = mr(review)["sha"]
    assert review_store.lgtm_sha("shop/shop-api", 1) is None
    deliver(hook)
    found = mr(review)
    assert "lgtm" not in found["labels"] and review_store.lgtm_sha("shop/shop-api", 1) is None
    [refusal] = [n["body"] for n in found["notes"] if "was not done" in n["body"]]
    assert f"written before the head {head[:8]} was pushed" in refusal and refusal.startswith("@bob `/lgtm`")
    # written after the push, the same words count
    deliver(write_note(review, "bob", "/lgtm"))
    assert review_store.lgtm_sha("shop/shop-api", 1) == head and "lgtm" in mr(review)["labels"]


def test_an_approval_written_before_the_head_was_pushed_does_not_count_for_it(review, aws):
    from test_review_jobs import deliver, mr, write_note

    from opsbot.review import store as review_store

    hook = write_note(review, "carol", "/approve")  # carol approves the root OWNERS' files
    _push(review, {"src/main/java/C.java": "class C {}\n"})
    head = mr(review)["sha"]
    deliver(hook)
    assert review_store.approvers("shop/shop-api", 1, head) == set()
    assert any("written before the head" in n["body"] for n in mr(review)["notes"])
    # a cancel still cancels: it vouches for nothing
    deliver(write_note(review, "carol", "/approve"))
    assert review_store.approvers("shop/shop-api", 1, head) == {"carol"}
    deliver(write_note(review, "carol", "/approve cancel"))
    assert review_store.approvers("shop/shop-api", 1, head) == set()


def test_the_fake_gitlab_keeps_a_version_per_head_as_gitlab_does(review):
    """GET …/merge_requests/:iid/versions, newest first: each head and when GitLab took it."""
    from test_review_jobs import mr

    from opsbot.gitlab.api import GitLabClient
    from opsbot.review.comments import pushed_at_ms

    client = GitLabClient(review.url, "local-gitlab-token")
    [first] = client.merge_request_versions("shop/shop-api", 1)
    _push(review, {"src/main/java/D.java": "class D {}\n"})
    second, again = client.merge_request_versions("shop/shop-api", 1)
    assert again == first and second["head_commit_sha"] == mr(review)["sha"] != first["head_commit_sha"]
    assert set(second) >= {"id", "head_commit_sha", "base_commit_sha", "start_commit_sha", "created_at", "state"}
    assert pushed_at_ms([second, first], first["head_commit_sha"]) <= pushed_at_ms(
        [second, first], second["head_commit_sha"]
    )
    assert pushed_at_ms([second, first], "0" * 40) is None
