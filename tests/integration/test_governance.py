"""Release governance over the local stack's real HTTP: gov-api's production is in a freeze window from its config
(conftest.governance_windows), and its staging is locked by a person in the tests. Every way in is refused with who
or what holds it and why (chat, a release link's page before and after sign-in, an approved release, a restart of a
deployment); a lock's holder is not held by it; an override needs an admin and a second admin; the window opening
within the hour is announced once; `report` answers in the conversation.

`/retest` (a merge-request command) never re-runs a deployment (the core refuses that always), so there is no
release to hold there: test_review.py covers it, and the hold rule's unit tests cover re-runs of deployments."""

from __future__ import annotations

import json
import re
import time
from html import unescape

import pytest

PROJECT, REPO, TOKEN = "gov-api", "shop/gov-api", "local-gov"
COMMIT = "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"


@pytest.fixture
def gov(stack):
    stack.drone_reset()
    yield stack
    for who in ("carol", "xiaoming"):  # no lock outlives its test
        stack.chat(f"unlock {PROJECT} staging", who)


def answer(response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    return body.get("markdown", {}).get("text") or body.get("text", {}).get("content", "")


def in_session(stack, body: dict, marker: str, timeout: float = 20.0) -> str:
    """The bot's message into the conversation of `body` that holds `marker`."""
    found = stack.wait_for(
        lambda: [
            json.dumps(m, ensure_ascii=False)
            for m in stack.session_messages(body["sessionWebhook"])
            if marker in json.dumps(m, ensure_ascii=False)
        ],
        timeout=timeout,
    )
    return found[-1]


def build(stack, number: int) -> None:
    stack.drone_add_builds(
        REPO,
        [
            {
                "number": number,
                "after": COMMIT,
                "status": "success",
                "target": "main",
                "author_login": "alice",
                "message": "feat(gov): a change",
            }
        ],  # fmt: skip
    )


def card(stack, number: int) -> dict:
    build(stack, number)
    response = stack.post_drone(stack.drone_body("build_success", number, repo=PROJECT))
    assert response.status_code == 202, response.text
    found = stack.wait_for(
        lambda: [
            m["message"]["actionCard"]
            for m in stack.messages(TOKEN)
            if m["message"]["msgtype"] == "actionCard" and f"#{number}" in json.dumps(m["message"], ensure_ascii=False)
        ]
    )
    return found[0]


def link(found: dict, target: str) -> str:
    return next(b["actionURL"] for b in found["btns"] if target in b["title"])


def sign_in(stack, url: str, user_id: str):
    page = stack.http.get(url, timeout=10)
    login = unescape(re.findall(r'<a class="button" href="([^"]+)"', page.text)[0])
    redirect = stack.http.get(f"{login}&as={user_id}", allow_redirects=False, timeout=10)
    assert redirect.status_code == 302, redirect.text
    return stack.http.get(redirect.headers["Location"], timeout=15)


def promotes(stack, number: int) -> list[dict]:
    return stack.drone_calls("POST", f"/api/repos/{REPO}/builds/{number}/promote")


def test_a_release_in_a_freeze_is_refused_from_chat_and_from_its_link(gov):
    stack = gov
    number = stack.next_number()
    found = card(stack, number)
    said = answer(stack.chat(f"deploy {PROJECT} {number} to production", "xiaoming")[0])  # even an admin
    assert said.startswith(f"⛔ {PROJECT}/production is in the change freeze 'gov-freeze'")
    assert "大促封网 big sale freeze" in said and f"override {PROJECT} production" in said

    production = link(found, "production")
    page = unescape(stack.http.get(production, timeout=10).text)
    assert '<button type="button" disabled>' in page and "gov-freeze" in page and "big sale freeze" in page
    assert '<a class="button"' not in page  # no way on: a freeze holds everyone
    time.sleep(1.0)
    assert promotes(stack, number) == []
    denial = next(r for r in stack.audit_records(PROJECT) if r["command"] == "deploy" and r["who"] == "xiaoming")
    assert (denial["decision"], denial["result"]) == ("deny", "denied") and "gov-freeze" in denial["reason"]


def test_a_lock_held_by_another_refuses_chat_and_links_and_its_holder_releases(gov):
    stack = gov
    number = stack.next_number()
    found = card(stack, number)
    response, body = stack.chat(f"lock {PROJECT} staging for 1h checking the cache", "carol")
    assert answer(response)  # acknowledged; the lock is taken by the worker
    assert "locked by Carol Zhang" in in_session(stack, body, "🔒")

    said = answer(stack.chat(f"deploy {PROJECT} {number} to staging", "alice")[0])
    assert said.startswith(f"⛔ {PROJECT}/staging is locked by Carol Zhang") and "checking the cache" in said

    staging = link(found, "staging")
    page = unescape(stack.http.get(staging, timeout=10).text)
    assert "disabled" in page and "Carol Zhang" in page and "checking the cache" in page
    html = unescape(sign_in(stack, staging, "alice.wang").text)  # alice signs in: greyed out, with the lock
    assert "Not allowed" in html and "disabled" in html and "已被 Carol Zhang 锁定" in html  # the project speaks zh
    html = unescape(sign_in(stack, staging, "carol.zhang").text)  # the holder may
    assert "You are <b>Carol Zhang</b>; deploy gov-api" in html

    # a stranger and a deployer cannot unlock carol's lock; an admin can, and carol is told
    assert "not in opsbot's people" in answer(stack.chat(f"unlock {PROJECT} staging", None)[0])
    _, body = stack.chat(f"unlock {PROJECT} staging", "alice")
    assert "needs the role admin" in in_session(stack, body, "admin")
    _, body = stack.chat(f"unlock {PROJECT} staging", "xiaoming")
    told = in_session(stack, body, "🔓")
    assert "Carol Zhang: your lock (checking the cache) was released by the admin 王小明" in told
    assert promotes(stack, number) == []


def test_an_override_needs_a_second_admin_and_then_the_release_goes_through_approval(gov):
    stack = gov
    number = stack.next_number()
    build(stack, number)
    _, body = stack.chat(f"override {PROJECT} production release the payment fix", "xiaoming")
    request = re.search(r"approve ([0-9a-z]{8})", in_session(stack, body, "Freeze override request")).group(1)
    # without the second admin: the one who asked cannot approve it, and the freeze still holds
    _, body = stack.chat(f"approve {request}", "xiaoming")
    assert "You cannot approve your own request" in in_session(stack, body, "cannot approve")
    assert answer(stack.chat(f"deploy {PROJECT} {number} to production", "alice")[0]).startswith("⛔")
    # the second admin approves
    _, body = stack.chat(f"approve {request}", "lei")
    assert "may be released during the freeze 'gov-freeze'" in in_session(stack, body, "gov-freeze")
    _, body = stack.chat(f"deploy {PROJECT} {number} to production", "alice")
    release = re.search(r"Approval request `([0-9a-z]{8})`", in_session(stack, body, "Approval request")).group(1)
    _, body = stack.chat(f"approve {release}", "carol")
    stack.wait_for(lambda: promotes(stack, number))
    records = [r for r in stack.audit_records(PROJECT) if r["command"] == "deploy" and r["who"] == "alice"]
    assert any(f"freeze overridden ({PROJECT}/production, request {request}" in r["reason"] for r in records)


def test_the_window_opening_within_the_hour_is_announced_once_and_report_answers(gov):
    from local import template
    from local.stack import ROOT, governance_tick_job

    stack = gov
    loaded = template.load(ROOT / "template.yaml")
    for _ in range(2):  # two ticks in the same hour: told once
        stack.sqs.send_message(QueueUrl=stack.work_url, MessageBody=governance_tick_job(loaded))
    stack.wait_for(lambda: [m for m in stack.messages(TOKEN) if "gov-soon" in json.dumps(m, ensure_ascii=False)])
    time.sleep(2.0)
    told = [m for m in stack.messages(TOKEN) if "gov-soon" in json.dumps(m, ensure_ascii=False)]
    assert len(told) == 1 and "机房切换" in json.dumps(told[0], ensure_ascii=False)

    _, body = stack.chat(f"report {PROJECT}", "alice")
    report = in_session(stack, body, "每周交付报告")  # in the project's language
    assert "部署频率" in report and "变更失败率" in report
