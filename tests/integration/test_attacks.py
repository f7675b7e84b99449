"""The trust boundary, tried as an attacker would, over HTTP against the local stack: every act needs an identified
actor and the authorization core's yes. Each test is one attack from the trust-boundary issues; the release-link
and merge-request attacks (4 and 5) are in test_release_links.py and test_review.py, next to their happy paths.
Attacks 7 to 12 are the second round's (issue 17): old messages and notes read again after every TTL expired, a
rollback that would raise its requester, a config that would send the stack's tokens elsewhere, and the worker's
packages.

Each attack ends refused, the person told why, the decision audited, and nothing reaching Drone or the group
beyond the refusal."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import yaml
from test_chatops import QUIET_PERIOD, _audit, _markdown, _wait_for_reply

API_REPO = "shop/shop-api"


@pytest.fixture
def drone(stack):
    """The fake Drone at its seed; builds a test added are gone again afterwards."""
    stack.drone_reset()
    yield stack
    stack.drone_reset()


def _changes(stack) -> list[dict]:
    return stack.drone_calls("POST") + stack.drone_calls("DELETE")


def test_attack_1_restart_of_a_deployment_is_refused(drone):
    """bob (developer) sends `restart shop-api 126`; #126 is a `promote → staging` build."""
    stack = drone
    response, body = stack.chat("restart shop-api 126", "bob")
    assert "`restart`" in _markdown(response)  # acknowledged: the worker decides, with the build's facts
    reply = _wait_for_reply(stack, body)
    assert reply == "⛔ #126 is a deployment (promote) and is never run again; use deploy or rollback."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []
    [record] = stack.wait_for(lambda: [r for r in _audit(stack, body, "bob") if r["result"] == "denied"])
    assert record["decision"] == "deny" and record["via"] == "dingtalk" and "promote" in record["target"]


def test_attack_2_rollback_to_a_feature_branch_build_is_refused(drone):
    """alice sends `rollback shop-api staging 124`; #124 is a `feature/refund` build."""
    stack = drone
    response, body = stack.chat("rollback shop-api staging 124", "alice")
    _markdown(response)
    assert _wait_for_reply(stack, body) == "⛔ staging takes builds of main; #124 is from feature/refund."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []
    [record] = stack.wait_for(lambda: [r for r in _audit(stack, body, "alice") if r["result"] == "denied"])
    assert record["reason"] == "staging takes builds of main; #124 is from feature/refund."


def test_a_pull_request_build_of_the_environments_branch_is_not_deployable(drone):
    stack = drone
    [number] = stack.drone_add_builds(
        API_REPO,
        [{"event": "pull_request", "source": "main", "target": "main", "ref": "refs/pull/9/head", "status": "success"}],
    )
    response, body = stack.chat(f"deploy shop-api {number} staging", "alice")
    _markdown(response)
    assert _wait_for_reply(stack, body) == f"⛔ staging takes push builds; #{number} is a pull_request build."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []


def test_attack_3_a_replayed_signature_with_another_body_is_refused(drone):
    """A captured DingTalk timestamp + sign pair sent again with an admin's staff id and a deploy."""
    from local.chat import callback
    from local.signing import sign_for

    stack = drone
    first = callback("status shop-api", stack.person("bob"), stack.sink)
    raw = json.dumps(first, ensure_ascii=False).encode()
    captured = sign_for("/webhooks/dingtalk", raw)
    assert stack.post("/webhooks/dingtalk", raw, headers=captured, sign=False).status_code == 200

    forged = callback("deploy shop-api 128 staging", stack.person("xiaoming"), stack.sink)
    response = stack.post(
        "/webhooks/dingtalk", json.dumps(forged, ensure_ascii=False).encode(), headers=captured, sign=False
    )
    assert response.status_code == 401
    assert response.json() == {"error": "this DingTalk timestamp and sign were already used for another message"}
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == [] and stack.session_messages(forged["sessionWebhook"]) == []
    assert [r for r in stack.audit_records() if r["at_ms"] == forged["createAt"]] == []
    assert "DingTalk signature replayed with another message" in stack.log_text()


def test_attack_6_a_hostile_commit_message_stays_text_in_the_bots_card(stack):
    """`fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font>` as a commit message."""
    number = stack.next_number()
    hostile = "fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font> @all"
    response = stack.post_drone(stack.drone_body("build_failure", number, message=hostile + "\n\nmore"))
    assert response.status_code == 202
    [message] = stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", "local-shop-backend"))
    text = message["message"]["markdown"]["text"]
    assert "点此发布到生产" in text  # shown, as text
    assert "evil.example" in text and "http://evil" not in text and "<font" not in text
    assert all(not link.startswith("http://evil") for link in re.findall(r"\]\(([^)]*)\)", text))
    assert message["message"]["at"]["isAtAll"] is False


# --- issue 17: nothing old runs again, config cannot raise its editor, tokens go only to pinned hosts -------------
# Each attack from the review is replayed over HTTP against the local stack, with time made to pass: every record
# with a TTL that the attack's messages touched has its TTL put in the past and is swept, as DynamoDB's TTL does
# (`stack.expire`).


def _feishu_reply_with(stack, message_id: str, needle: str) -> str:
    from test_feishu_chat import replies_to, texts

    found = stack.wait_for(lambda: [t for t in texts(replies_to(stack, message_id)) if needle in t])
    assert found, f"no reply to {message_id} with {needle!r}"
    return found[0]


def test_attack_7_an_old_feishu_deploy_and_its_approval_read_again_after_every_ttl_deploy_nothing(drone):
    """alice's `deploy shop-api 128 production`, then xiaoming's `approve <id>`: one production deploy. Days later,
    whoever has the app's verification token posts both events again, in order, after every record with a TTL of
    theirs has expired: the worker reads the real messages from Feishu's API again, and they are old."""
    from test_feishu_chat import ALICE, XIAOMING, post_event, promotes, say

    from opsbot.ingress.accept import job_id_for

    stack = drone
    asked = say(stack, "deploy shop-api 128 production", ALICE)
    assert post_event(stack, asked["event"]).json()["status"] == "queued"
    opened = _feishu_reply_with(stack, asked["message_id"], "Approval request")
    request_id = re.search(r"Approval request `(\w+)`", opened).group(1)
    approved = say(stack, f"approve {request_id}", XIAOMING)
    post_event(stack, approved["event"])
    assert stack.wait_for(lambda: len(promotes(stack)) == 1)
    time.sleep(QUIET_PERIOD)

    # three days on: Feishu still has both messages, and every record of theirs that had a TTL is gone
    for said in (asked, approved):
        stack.http.post(
            f"{stack.sink}/_control/feishu/backdate",
            json={"message_id": said["message_id"], "seconds": 3 * 86400},
            timeout=5,
        ).raise_for_status()
    needles = [request_id]
    for said in (asked, approved):
        needles += [
            said["message_id"],
            job_id_for("feishu-event", said["message_id"]),
            job_id_for("feishu", said["message_id"]),
        ]
    assert stack.expire(*needles)  # the delivery claims, the jobs' effects, the approval request
    for said in (asked, approved):
        said["event"]["header"]["event_id"] = f"replayed-{stack.next_number()}"
        assert post_event(stack, said["event"]).json()["status"] == "queued"
    assert stack.wait_for(lambda: stack.queue_depth() == 0)
    time.sleep(QUIET_PERIOD)
    assert len(promotes(stack)) == 1  # nothing deployed again
    stale = [r for r in stack.audit_records() if r["result"] == "stale"]
    assert {r["who"] for r in stale} >= {"alice", "xiaoming"}
    assert stack.take_dead_letters(lambda job: job.get("kind") == "chat.feishu_message") == []  # refused, not parked


def test_attack_8_a_forged_callback_cannot_make_an_unaddressed_group_message_a_command(drone):
    """xiaoming tells his colleagues `deploy shop-api 128 staging` in the group, without @-mentioning the bot.
    Someone with the verification token posts its callback claiming a one-to-one chat with the bot."""
    from test_feishu_chat import XIAOMING, post_event, promotes, replies_to

    stack = drone
    said = stack.http.post(
        f"{stack.sink}/_control/feishu/say",
        json={"open_id": XIAOMING, "text": "deploy shop-api 128 staging", "mention": False},
        timeout=5,
    ).json()
    said["event"]["event"]["message"]["chat_type"] = "p2p"
    assert post_event(stack, said["event"]).json()["status"] == "queued"  # ingress believes the callback
    assert stack.wait_for(lambda: stack.queue_depth() == 0)
    time.sleep(QUIET_PERIOD)
    assert promotes(stack) == [] and replies_to(stack, said["message_id"]) == []
    assert "Feishu message not addressed to the bot" in stack.log_text()


def test_attack_9_an_old_lgtm_and_approve_read_again_after_a_push_merge_nothing(stack):
    """dave's /lgtm and carol's /approve were given on the first head; alice pushes; every record of the merge
    request with a TTL expires; the two notes' hooks are sent again (the shared webhook token is all it takes),
    and the new head's pipeline goes green."""
    from test_review import (
        API,
        _control,
        _fixture,
        green_pipeline,
        merge_request,
        merges,
        open_mr,
        post_note_hook,
        settle,
        write_comment,
    )

    iid = open_mr(stack)
    lgtm, approve = write_comment(stack, iid, "dave", "/lgtm"), write_comment(stack, iid, "carol", "/approve")
    for hook in (lgtm, approve):
        post_note_hook(stack, hook)
    assert stack.wait_for(lambda: {"lgtm", "approved"} <= set(merge_request(stack, iid)["labels"]))
    before = merge_request(stack, iid)
    _control(
        stack,
        "/_control/push",
        {
            "project": API,
            "branch": before["source_branch"],
            "commits": [{"message": "unreviewed", "files": {"src/main/java/Backdoor.java": "class Backdoor {}\n"}}],
        },
    )
    update = _control(
        stack,
        "/_control/merge_request_hook",
        {"project": API, "iid": iid, "action": "update", "oldrev": before["sha"], "user": "alice"},
    )
    stack.post_gitlab({**_fixture("merge_request"), **update}, event="Merge Request Hook")
    assert stack.wait_for(lambda: not {"lgtm", "approved"} & set(merge_request(stack, iid)["labels"]))
    settle(stack)
    assert stack.expire(f"{API}!{iid}")  # the review's records: lgtm, approvals, the comments' effects
    for hook in (lgtm, approve):
        assert post_note_hook(stack, hook, f"replayed-{stack.next_number()}").json()["status"] == "queued"
    green_pipeline(stack, iid)
    settle(stack)
    after = merge_request(stack, iid)
    assert after["state"] == "opened" and merges(stack, iid) == []
    assert not {"lgtm", "approved"} & set(after["labels"])


def _config_people(stack, change) -> dict:
    text = stack.gitlab_file(stack.config_repo, "opsbot.yaml")
    config = yaml.safe_load(text)
    change({p["id"]: p for p in config["people"]})
    return {"opsbot.yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False)}


def _sync(stack, files: dict, message: str) -> str:
    """Push `files` to the config repo and deliver the push; the version stored for it (the stored one as it is,
    when the files are what the repo holds already: such a push changes no config)."""
    if all(stack.gitlab_file(stack.config_repo, name) == text for name, text in files.items()):
        return stack.config_versions()[0]
    pushed = stack.push(files, message=message)
    assert stack.post_gitlab(pushed).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == pushed["after"]), f"{message} was not synced"
    return pushed["after"]


def test_attack_10_an_ops_person_cannot_roll_the_config_back_to_make_themselves_admin(drone):
    """dave was admin once; a reviewed push took it away. He sends `config rollback <that version>`; xiaoming,
    the only admin now, asks for the same rollback, and dave tries to approve it."""
    stack = drone
    original = stack.gitlab_file(stack.config_repo, "opsbot.yaml")
    granted = _sync(stack, _config_people(stack, lambda p: p["dave"].update(roles=["ops", "admin"])), "dave: admin")
    revoked = _sync(stack, _config_people(stack, lambda p: p["dave"].update(roles=["ops"])), "dave: ops (reviewed)")
    try:
        commits = len(stack.gitlab_calls("POST", "/repository/commits"))
        response, body = stack.chat(f"config rollback {granted[:8]}", "dave")
        assert "needs the role admin" in _markdown(response)
        [record] = stack.wait_for(lambda: [r for r in _audit(stack, body, "dave") if r["result"] == "denied"])
        assert record["decision"] == "deny"
        response, body = stack.chat(f"config rollback {granted[:8]}", "xiaoming")
        opened = _wait_for_reply(stack, body)
        request_id = re.search(r"Approval request `(\w+)`", opened).group(1)
        assert "another admin" in opened
        response, body = stack.chat(f"approve {request_id}", "dave")
        assert (
            _wait_for_reply(stack, body)
            == "⛔ This config change touches people or permissions: only an admin may approve it."
        )
        time.sleep(QUIET_PERIOD)
        assert len(stack.gitlab_calls("POST", "/repository/commits")) == commits  # nothing committed
        assert stack.config_versions()[0] == revoked
        assert yaml.safe_load(stack.gitlab_file(stack.config_repo, "opsbot.yaml")) == yaml.safe_load(
            stack.gitlab_file(stack.config_repo, "opsbot.yaml", revoked)
        )
    finally:
        _sync(stack, {"opsbot.yaml": original}, "back to the test config")


class Listener:
    """An HTTP server on loopback that records every request it gets: where a stolen token would have gone."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                owner.requests.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_attack_11_a_config_push_cannot_send_the_stacks_tokens_to_another_host(drone):
    """Whoever may push to the config repo points Drone's server and a robot's webhook at a host of theirs."""
    stack = drone
    listener = Listener()
    versions = stack.config_versions()
    try:
        config = yaml.safe_load(stack.gitlab_file(stack.config_repo, "opsbot.yaml"))
        config["drone"]["server"] = listener.url
        config["robots"]["shop-backend"]["webhook"] = f"{listener.url}/robot/send?access_token=x"
        pushed = stack.push({"opsbot.yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False)})
        assert stack.post_gitlab(pushed).status_code == 202
        refusal = stack.wait_for(lambda: stack.messages_mentioning("is not a Drone host"))
        assert refusal and "opsbot.yaml:" in json.dumps(refusal[0]["message"], ensure_ascii=False)
        time.sleep(QUIET_PERIOD)
        assert stack.config_versions() == versions  # the stored config is unchanged
        response, body = stack.chat("status shop-api", "bob")
        assert "#128" in _markdown(response)  # Drone is still the pinned one
        assert listener.requests == []  # no token went there
    finally:
        listener.close()
        _sync(stack, {"opsbot.yaml": stack.gitlab_file(stack.config_repo, "opsbot.yaml", versions[0])}, "back")


def test_attack_12_the_worker_runs_only_the_locked_packages(stack):
    """`sam build` put into the worker, the most privileged function, exactly the hashed lock's packages: none
    floats (`make test` builds before the integration tests; without a build there is nothing to look at)."""
    import re as regex
    from pathlib import Path

    built = Path(__file__).resolve().parents[2] / ".aws-sam" / "build" / "WorkerFunction"
    if not built.is_dir():
        pytest.skip("no sam build in .aws-sam/build (make build)")
    lock = (Path(__file__).resolve().parents[2] / "functions" / "worker" / "requirements.txt").read_text()
    locked = {
        name.lower().replace("_", "-"): version
        for name, version in regex.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", lock, flags=regex.M)
    }
    installed = {}
    for info in built.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        installed[name.lower().replace("_", "-")] = version
    assert installed == locked
