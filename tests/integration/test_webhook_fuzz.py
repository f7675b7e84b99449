"""Fuzzing the webhooks and the release link's form over HTTP, through the local stack: its HTTP server, API
Gateway's events (a body that is not UTF-8 arrives base64-encoded), the worker fed like Lambda's SQS event source,
and the DLQ behind it (3 receives here).

This is the share over HTTP: tests/unit/test_fuzz_ingress.py sends 1,000 bodies per route in-process (10,000 in
`make fuzz`), with the same generators (tests/fuzz_support.py); here Drone gets 1,000, GitLab 1,000 and the release
link's form 500, and test_chat_fuzz.py sends 1,000 DingTalk callbacks (2,000 in `make fuzz`). Each run prints its
seed; FUZZ_SEED=<seed> replays it.

What must hold: no 5xx and no handler crash; every job a fuzzed body became is one the worker runs, so none is
retried or parked in the DLQ; and afterwards a real Drone failure still reaches its group (canary-api's robot,
which nothing else uses). The well-formed builds and releases go to fuzz-api, whose robot only this test uses,
and only a few: its 20 messages a minute are never spent, so nothing waits for a digest.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import asdict

from fuzz_support import Mutator, drone_case, form_case, gitlab_case, replay, rng_for, run_seed

from local.stack import LOCAL_SECRETS
from opsbot.actions import tickets
from opsbot.actions.handler import SOURCE as LINK_SOURCE
from opsbot.ingress.accept import job_id_for
from opsbot.release.links import ReleaseGrant, token_for
from opsbot.state import keys

DRONE_CASES, GITLAB_CASES, FORM_CASES = 1_000, 1_000, 500
MAX_RELEASES = 10  # links confirmed for real: each posts its result to fuzz-api's group
THIS = "tests/integration/test_webhook_fuzz.py"
SIGNING_KEY = LOCAL_SECRETS["ACTION_SIGNING_KEY_PARAM"].encode()


class Run:
    """One route's fuzz: what it answered, the jobs its bodies became, and what the stack's log says of them."""

    def __init__(self, stack, route: str):
        self.stack, self.route = stack, route
        self.started, self.log_offset = time.monotonic(), len(stack.log_text())
        self.statuses: Counter = Counter()
        self.server_errors: list[tuple] = []
        self.job_ids: set[str] = set()

    def add(self, index: int, category: str, response, body) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.server_errors.append((index, category, response.status_code, str(body)[:160], response.text[:160]))
        assert "Traceback" not in response.text
        if response.status_code == 202 and response.headers.get("Content-Type", "").startswith("application/json"):
            self.job_ids.add(response.json()["job"])

    def check(self, parked_of_this_run) -> str:
        """Wait for the worker, then: no 5xx, no crash, none of this run's jobs failed or parked."""
        sent = time.monotonic() - self.started
        drained = self.stack.wait_for(lambda: self.stack.queue_depth() == 0, timeout=120, interval=0.5)
        log = self.stack.log_text()[self.log_offset :]
        failed = [line[:300] for line in log.splitlines() if "job failed" in line and self._ours(line)]
        parked = self.stack.take_dead_letters(parked_of_this_run)
        report = (
            f"{self.route}: {sum(self.statuses.values())} signed bodies over HTTP in {sent:.1f}s (+"
            f"{time.monotonic() - self.started - sent:.1f}s for the queue), seed {run_seed()} ({replay(THIS)}); "
            f"statuses {dict(sorted(self.statuses.items()))}; {len(self.job_ids)} jobs queued, {len(failed)} "
            f"failed, {len(parked)} parked; {log.count('crashed:')} handler crashes"
        )
        print("\n" + report)
        assert not self.server_errors, f"{len(self.server_errors)} 5xx, first {self.server_errors[:3]}\n{report}"
        assert "crashed:" not in log, report
        assert drained, f"the work queue did not drain\n{report}"
        assert not failed, f"jobs failed in the worker: {failed[:3]}\n{report}"
        assert not parked, f"jobs parked in the DLQ: {[json.dumps(j)[:200] for j in parked[:3]]}\n{report}"
        assert 400 in self.statuses and any(s < 300 for s in self.statuses), report
        return report

    def _ours(self, line: str) -> bool:
        found = re.search(r'"job_id":"([0-9a-f]+)"', line)
        return bool(found and found.group(1) in self.job_ids)


def as_sent(headers: dict) -> dict:
    """Header values as bytes on the wire: UTF-8, where http.client would only take Latin-1."""
    return {name: value.encode() for name, value in headers.items()}


def _canary_reaches_its_group(stack) -> None:
    number = stack.next_number()
    response = stack.post_drone(stack.drone_body("build_failure", number, repo="canary-api"))
    assert response.status_code == 202, response.text
    assert stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", "local-canary"), timeout=30), (
        "a real build after the fuzz did not reach its group"
    )


def test_drone_webhook_fuzz_over_http(stack):
    rng = rng_for("http-drone")
    mutator, run = Mutator(rng), Run(stack, "POST /webhooks/drone")
    # a build of fuzz-api now and then, which the worker renders and sends; mostly a repo it does not know
    slugs = ("shop/fuzz-api",) + ("shop/not-configured",) * 40
    for index in range(DRONE_CASES):
        category, headers, body = drone_case(rng, mutator, stack.next_number(), slugs)
        run.add(index, category, stack.post("/webhooks/drone", body, headers=as_sent(headers)), body)
    run.check(lambda job: job.get("id") in run.job_ids)
    _canary_reaches_its_group(stack)


def test_gitlab_webhook_fuzz_over_http(stack):
    rng = rng_for("http-gitlab")
    mutator, run, uuids = Mutator(rng), Run(stack, "POST /webhooks/gitlab"), []
    for index in range(GITLAB_CASES):
        category, headers, body = gitlab_case(rng, mutator, uuids)
        run.add(index, category, stack.post("/webhooks/gitlab", body, headers=as_sent(headers)), body)
    run.check(lambda job: job.get("id") in run.job_ids)
    _canary_reaches_its_group(stack)


def _release_link(stack, number: int) -> tuple[str, str]:
    """A link for fuzz-api #number to staging, stored as release/links.store stores one (the stack's worker would
    issue it with a success card; this keeps fuzz-api's group quiet). Drone has no such build: a confirmed link is
    refused by the worker, and the group is told why."""
    nonce = secrets.token_hex(8)
    expires = int(time.time()) + 3600
    grant = ReleaseGrant("fuzz-api", number, "staging", "0" * 40, "main", "fuzz", "push", expires, nonce)
    stack.ddb.put_item(
        TableName="opsbot-local-StateTable",
        Item={
            "pk": {"S": keys.LINK_GRANT + nonce},
            "grant": {"S": json.dumps(asdict(grant))},
            "expires_at": {"N": str(grant.expires + 86400)},
        },
    )
    return token_for(nonce, SIGNING_KEY), nonce


def test_release_link_form_fuzz_over_http(stack):
    rng = rng_for("http-actions")
    mutator, run = Mutator(rng), Run(stack, "POST /actions/{token}")
    people = (("alice.wang", "Alice Wang"), ("bob.li", "Bob Li"), ("lurenjia", "路人甲"))
    nonces: set[str] = set()
    token, nonce = _release_link(stack, stack.next_number())
    nonces.add(nonce)
    for index in range(FORM_CASES):
        # past MAX_RELEASES the tickets are signed for another link: the forms are checked as before, and a valid
        # one is refused at its ticket (401) instead of being queued
        signed_for = nonce if run.statuses[202] < MAX_RELEASES else "0123456789abcdef"
        user_id, nick = rng.choice(people)
        fields = tickets.signed_in(user_id, nick).form(signed_for, SIGNING_KEY)
        kind, content_type, body, is_base64 = form_case(rng, mutator, fields)
        try:  # over HTTP a body is bytes: API Gateway decides what to base64-encode
            raw = base64.b64decode(body, validate=True) if is_base64 else body.encode()
        except binascii.Error:
            raw = body.encode()
        response = stack.http.post(
            f"{stack.api}/actions/{token}",
            data=raw,
            headers={"Content-Type": content_type} if content_type else {},
            timeout=10,
        )
        run.add(index, kind, response, body)
        assert response.headers.get("Content-Type", "").startswith("text/html"), response.headers
        if response.status_code == 202:  # used: the next cases get a fresh link
            run.job_ids.add(job_id_for(LINK_SOURCE, nonce))  # the release.link job the confirmation queued
            token, nonce = _release_link(stack, stack.next_number())
            nonces.add(nonce)
    run.check(lambda job: job.get("kind") == "release.link" and job["payload"]["grant"]["nonce"] in nonces)
    assert run.statuses[202] >= 1, "no fuzzed form was a valid confirmation"
