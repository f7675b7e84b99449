"""Fuzzing every route in-process: validly signed, structurally mutated bodies (per route: 1,000 in `make test`,
10,000 in `make fuzz`, or FUZZ_CASES) straight into the handler modules, then every job they queued through the
worker Lambda.

Whatever a signed body carries, the route answers 2xx or 4xx, never 5xx (a 5xx makes GitLab and DingTalk retry a
body that can never succeed); a 4xx names the reason; every job that was queued is one the worker can read, so
nothing is retried or parked in the DLQ; and afterwards a real event still goes through. The cases come from
tests/fuzz_support.py, seeded: each run prints its seed, and FUZZ_SEED=<seed> replays it. The same generators
send a smaller share over HTTP to the local stack (tests/integration/test_webhook_fuzz.py).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter, defaultdict

import pytest
from chat_support import callback
from fuzz_support import (
    Mutator,
    cases,
    dingtalk_case,
    drone_case,
    feishu_case,
    fixture,
    form_case,
    gitlab_case,
    replay,
    rng_for,
    run_seed,
    slack_case,
    slack_event_case,
)
from unit_support import (
    ACTION_SIGNING_KEY,
    FEISHU_APP_ID,
    FEISHU_VERIFICATION_TOKEN,
    SLACK_APP_ID,
    SLACK_SIGNING_SECRET,
    FakeLambdaContext,
    dingtalk_event,
    drone_event,
    gitlab_event,
    http_event,
    sqs_event,
)

CASES = int(os.environ.get("FUZZ_CASES") or cases(1_000, 10_000))
# The worker runs the queued jobs every so many cases, as it would alongside ingress; a short queue also keeps
# moto quick (it counts every message of the queue on each send).
DRAIN_EVERY = 50
THIS = "tests/unit/test_fuzz_ingress.py"
MAX_CONFIRMED = 40  # release links confirmed for real in one run


class Tally:
    """What the route answered, by status and by the mutations that led there; the 5xx with their bodies."""

    def __init__(self, route: str):
        self.route, self.started = route, time.monotonic()
        self.statuses: Counter = Counter()
        self.by_kind: dict[str, Counter] = defaultdict(Counter)
        self.server_errors: list[tuple] = []
        self.jobs_run, self.jobs_failed, self.worker_seconds = 0, [], 0.0

    def add(self, index: int, category: str, response: dict, body) -> None:
        status = response["statusCode"]
        self.statuses[status] += 1
        self.by_kind[category.split(":")[-1].split("+")[0]][status] += 1
        if status >= 500:
            self.server_errors.append((index, category, status, str(body)[:200], (response.get("body") or "")[:200]))

    def report(self, parked: list[str]) -> str:
        return (
            f"{self.route}: {sum(self.statuses.values())} signed bodies in {time.monotonic() - self.started:.1f}s, "
            f"seed {run_seed()} ({replay(THIS)}); statuses {dict(sorted(self.statuses.items()))}; "
            f"{self.jobs_run} jobs run by the worker in {self.worker_seconds:.1f}s, {len(self.jobs_failed)} failed, "
            f"{len(parked)} parked; "
            "by mutation: " + "; ".join(f"{k} {dict(sorted(v.items()))}" for k, v in sorted(self.by_kind.items()))
        )

    def check(self, aws) -> str:
        parked = [
            f"{m['MessageAttributes'].get('reason', {}).get('StringValue', '?')}: {m['Body'][:200]}"
            for m in aws.dead_letters()
        ]
        report = self.report(parked)
        print("\n" + report)
        assert not self.server_errors, f"{len(self.server_errors)} answers were 5xx, first {self.server_errors[:3]}"
        assert not self.jobs_failed, f"jobs the worker could not run: {self.jobs_failed[:3]}\n{report}"
        assert not parked, f"jobs parked in the DLQ: {parked[:3]}\n{report}"
        assert 400 in self.statuses and any(s < 300 for s in self.statuses), report  # both kinds were sent
        return report


def api_body(body: bytes) -> dict:
    """How API Gateway hands a body over: as text, or base64 when it is not UTF-8."""
    try:
        body.decode("utf-8")
        return {"base64_encoded": False}
    except UnicodeDecodeError:
        return {"base64_encoded": True}


def checked(response: dict) -> dict:
    """A webhook's answer: JSON, with the reason when it is a 4xx, and never a stack trace."""
    assert "Traceback" not in (response.get("body") or "")
    answer = json.loads(response["body"])
    if 400 <= response["statusCode"] < 500:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
    return answer


@pytest.fixture(autouse=True)
def _quiet_log():
    """Thousands of requests: only errors are logged (a refused body logs a warning, a queued job an info line)."""
    from opsbot.log import logger

    level = logger.log_level
    logger.setLevel("ERROR")
    yield
    logger.setLevel(level)


@pytest.fixture
def drain(aws, handlers, lambda_context):
    """Run every visible job through the worker Lambda, as SQS's event source does, into the tally."""

    def run(tally: Tally) -> None:
        started = time.monotonic()
        while True:
            batch = aws.sqs.receive_message(
                QueueUrl=aws.work_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                tally.worker_seconds += time.monotonic() - started
                return
            failed = {
                f["itemIdentifier"]
                # each batch is its own invocation, with the worker's whole timeout before it
                for f in handlers.worker.lambda_handler(sqs_event(batch), FakeLambdaContext())["batchItemFailures"]
            }
            tally.jobs_failed += [m["Body"][:300] for m in batch if m["MessageId"] in failed]
            done = [m for m in batch if m["MessageId"] not in failed]
            if done:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
                aws.sqs.delete_message_batch(QueueUrl=aws.work_queue_url, Entries=entries)
            tally.jobs_run += len(batch)

    return run


def fuzz_route(aws, tally: Tally, drain, send) -> None:
    """CASES bodies through a route: `send(index)` posts one and returns (category, body, response); the worker
    runs what they queued every DRAIN_EVERY cases, and at the end the tally's rules are checked."""
    for index in range(CASES):
        category, body, response = send(index)
        checked(response)
        tally.add(index, category, response, body)
        if index % DRAIN_EVERY == DRAIN_EVERY - 1:
            drain(tally)
    drain(tally)
    tally.check(aws)


def reached_the_group(fake_dingtalk, number: int) -> bool:
    """Whether build #number was sent to shop-backend's group (a card of its own while the robot's budget lasts, a
    digest line after), or folded into its pending digest."""
    from opsbot.delivery import budget

    sent = json.dumps([m["message"] for m in fake_dingtalk.accepted], ensure_ascii=False)
    pending = json.dumps(budget.read("shop-backend").pending, ensure_ascii=False)
    return any(re.search(rf"#{number}(?!\d)", text) for text in (sent, pending))


def test_drone_webhook_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain):
    rng = rng_for("unit-drone")
    mutator, tally = Mutator(rng), Tally("POST /webhooks/drone")
    # a few builds of configured projects, which the worker renders and sends (or folds into the digest); most
    # of a repo it does not know, which it reads and drops: the read is what this test is about
    slugs = ("shop/shop-api", "shop/shop-web") + ("shop/not-configured",) * 48

    def send(index: int):
        # mostly a new build; sometimes one already seen, which dedupe answers
        number = 10_000 + (index if rng.random() < 0.9 else rng.randrange(index + 1))
        category, headers, body = drone_case(rng, mutator, number, slugs)
        event = drone_event(body, event=None, headers=headers, **api_body(body))
        return category, body, handlers.drone_webhook.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    real = fixture("drone/build_failure.json")
    real["build"]["number"] = 99_999
    response = handlers.drone_webhook.lambda_handler(drone_event(json.dumps(real).encode()), lambda_context)
    assert response["statusCode"] == 202, response
    drain(tally)
    assert not tally.jobs_failed and reached_the_group(fake_dingtalk, 99_999)


def test_gitlab_webhook_fuzz(aws, handlers, lambda_context, example_config, drain):
    rng = rng_for("unit-gitlab")
    mutator, tally, uuids = Mutator(rng), Tally("POST /webhooks/gitlab"), []

    def send(index: int):
        category, headers, body = gitlab_case(rng, mutator, uuids)
        event = gitlab_event(body, event=None, headers=headers, **api_body(body))
        return category, body, handlers.gitlab_webhook.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    push = gitlab_event(json.dumps(fixture("gitlab/push.json")).encode(), headers={"Idempotency-Key": "after-fuzz"})
    assert handlers.gitlab_webhook.lambda_handler(push, lambda_context)["statusCode"] == 202
    drain(tally)
    assert not tally.jobs_failed and not aws.dead_letters()


def test_dingtalk_callback_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain):
    rng = rng_for("unit-dingtalk")
    mutator, tally = Mutator(rng), Tally("POST /webhooks/dingtalk")
    sessions = f"{fake_dingtalk.url}/robot/sendBySession?session=local-session-fuzz-"

    def make_callback(text: str, who: str) -> dict:
        return callback(text, who, session_webhook=sessions + uuid.UUID(int=rng.getrandbits(128)).hex)

    now_ms = int(time.time() * 1000)
    people = ("alice", "bob", "carol", "xiaoming", "stranger")

    def send(index: int):
        category, body = dingtalk_case(rng, mutator, make_callback, people)
        # each callback has its own timestamp and sign, as DingTalk's have (a pair is bound to one msgId)
        event = dingtalk_event(body, now_ms=now_ms - index, **api_body(body))
        return category, body, handlers.dingtalk_bot.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    asked = callback("whoami", "alice")
    answer = checked(handlers.dingtalk_bot.lambda_handler(dingtalk_event(json.dumps(asked).encode()), lambda_context))
    assert answer["msgtype"] == "markdown" and "Alice Wang" in answer["markdown"]["text"]


def test_feishu_event_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain, env, monkeypatch):
    env("FEISHU_APP_ID", FEISHU_APP_ID)
    env("FEISHU_API_URL", fake_dingtalk.url)
    feishu = fake_dingtalk.feishu
    monkeypatch.setattr(feishu, "app_limits", ())  # in-process, the worker replies far faster than a person reads
    rng = rng_for("unit-feishu")
    mutator, tally = Mutator(rng), Tally("POST /webhooks/feishu")
    open_ids = ("ou_alice0local", "ou_bob0local", "ou_xiaoming0local", "ou_stranger")

    def make_event(text: str, open_id: str) -> dict:
        with feishu.lock:
            event = feishu.say({"open_id": open_id, "text": text})["event"]
        event["header"]["token"] = FEISHU_VERIFICATION_TOKEN
        return event

    def send(index: int):
        category, body = feishu_case(rng, mutator, make_event, open_ids)
        event = http_event("/webhooks/feishu", body, **api_body(body))
        return category, body, handlers.feishu_bot.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    asked = make_event("whoami", "ou_alice0local")
    assert checked(
        handlers.feishu_bot.lambda_handler(http_event("/webhooks/feishu", json.dumps(asked)), lambda_context)
    )
    drain(tally)
    answered = [r for r in feishu.replies if r["to"] == asked["event"]["message"]["message_id"]]
    assert not tally.jobs_failed and "Alice Wang" in json.dumps(answered, ensure_ascii=False)


def test_slack_press_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain, env):
    from urllib.parse import parse_qs

    from local.fake_slack import signed_headers
    from opsbot.channels import buttons
    from opsbot.channels.slack import ACTION_PREFIX

    env("SLACK_APP_ID", SLACK_APP_ID)
    env("SLACK_RESPONSE_URL_PREFIX", f"{fake_dingtalk.url}/actions/")
    slack = fake_dingtalk.slack
    rng = rng_for("unit-slack")
    mutator, tally = Mutator(rng), Tally("POST /webhooks/slack/interactivity")
    people = (("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol"), ("U0STRANGER", "nobody"))

    def make_press(command: str, user: tuple[str, str]) -> dict:
        button = {"type": "button", "text": {"type": "plain_text", "text": command}, "action_id": f"{ACTION_PREFIX}0"}
        card = {"blocks": [{"type": "actions", "elements": [{**button, "value": buttons.value(command)}]}]}
        with slack.lock:
            body = slack.press(fake_dingtalk.url, SLACK_APP_ID, card, 0, user)
        return json.loads(parse_qs(body.decode())["payload"][0])

    def send(index: int):
        category, body = slack_case(rng, mutator, make_press, people)
        headers = signed_headers(SLACK_SIGNING_SECRET, body)
        event = http_event(
            "/webhooks/slack/interactivity", body, headers, content_type=headers["Content-Type"], **api_body(body)
        )
        return category, body, handlers.slack_bot.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    from urllib.parse import urlencode

    real = urlencode({"payload": json.dumps(make_press("whoami", people[0]))}).encode()
    headers = signed_headers(SLACK_SIGNING_SECRET, real)
    event = http_event("/webhooks/slack/interactivity", real, headers, content_type=headers["Content-Type"])
    assert checked(handlers.slack_bot.lambda_handler(event, lambda_context))["status"] == "queued"
    drain(tally)
    assert not tally.jobs_failed and "Alice Wang" in json.dumps(slack.ephemeral[-1], ensure_ascii=False)


def test_slack_events_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain, env):
    from local.fake_slack import signed_headers

    env("SLACK_APP_ID", SLACK_APP_ID)
    env("SLACK_API_URL", f"{fake_dingtalk.url}/api")
    slack = fake_dingtalk.slack
    rng = rng_for("unit-slack-events")
    mutator, tally = Mutator(rng), Tally("POST /webhooks/slack/events")
    people = ("U0ALICE", "U0BOB", "U0CAROL", "U0STRANGER")

    def make_event(text: str, user: str) -> dict:
        # A direct message each, so that Slack's one-message-a-second-per-channel (429) is not what is tried here.
        with slack.lock:
            return slack.say(user, text, f"D{rng.randrange(10**9):09d}")

    def send(index: int):
        category, body = slack_event_case(rng, mutator, make_event, people)
        headers = {**signed_headers(SLACK_SIGNING_SECRET, body), "Content-Type": "application/json"}
        event = http_event("/webhooks/slack/events", body, headers, **api_body(body))
        return category, body, handlers.slack_bot.lambda_handler(event, lambda_context)

    fuzz_route(aws, tally, drain, send)

    asked = json.dumps(make_event("whoami", "U0ALICE")).encode()
    headers = {**signed_headers(SLACK_SIGNING_SECRET, asked), "Content-Type": "application/json"}
    event = http_event("/webhooks/slack/events", asked, headers)
    assert checked(handlers.slack_bot.lambda_handler(event, lambda_context))["status"] == "queued"
    drain(tally)
    assert not tally.jobs_failed and "Alice Wang" in json.dumps(slack.posted[-1], ensure_ascii=False)


def test_release_link_form_fuzz(aws, handlers, lambda_context, chat_config, fake_dingtalk, drain):
    from opsbot.actions import tickets
    from opsbot.release import links

    rng = rng_for("unit-actions")
    mutator, tally = Mutator(rng), Tally("POST /actions/{token}")
    commit = fixture("drone/build_success.json")["build"]["after"]
    people = [("alice.wang", "Alice Wang"), ("bob.li", "Bob Li"), ("carol.zhang", "Carol Zhang"), ("lurenjia", "路人")]
    token, spent = "", True
    for index in range(CASES):
        # a fresh link once the last one was used (and now and then the used one again, 410 whatever the form)
        if not token or (spent and rng.random() < 0.9):
            target = rng.choice(["staging", "staging", "production"])
            token = links.issue("shop-api", 128, target, commit, "main", "feat(order): add refund endpoint", "push", 24)
            spent = False
        # Each confirmation posts its result to shop-backend's group: past MAX_CONFIRMED the tickets are signed for
        # another link, so that the forms are checked as before and refused at the ticket (401), not queued.
        nonce = token.split(".")[0] if tally.statuses[202] < MAX_CONFIRMED else "0123456789abcdef"
        user_id, nick = rng.choice(people)
        fields = tickets.signed_in(user_id, nick).form(nonce, ACTION_SIGNING_KEY.encode())
        kind, content_type, body, is_base64 = form_case(rng, mutator, fields)
        event = http_event(
            f"/actions/{token}",
            body,
            method="POST",
            content_type=content_type or None,
            base64_encoded=is_base64,
            headers={"x-forwarded-proto": "https", "user-agent": "DingTalk/7.6.0 (iPhone)"},
        )
        response = handlers.actions.lambda_handler(event, lambda_context)
        assert "Traceback" not in (response.get("body") or "") and response["body"].lstrip().startswith("<!")
        tally.add(index, kind, response, body)
        spent = spent or response["statusCode"] == 202
        if index % DRAIN_EVERY == DRAIN_EVERY - 1:
            drain(tally)
    drain(tally)
    tally.check(aws)
    assert tally.statuses[202] > 0 and tally.jobs_run >= tally.statuses[202]
