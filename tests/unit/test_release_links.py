"""Release links: signed, expiring tokens; the actions Lambda's confirmation page (GET only reads) and its
single-use POST (one `release.link` job); the job in the worker; and the "发布到 <env>" buttons that build
notifications carry when PUBLIC_BASE_URL is set."""
from __future__ import annotations

import base64
import copy
import json
import time

import pytest

from chat_support import audit_log
from opsbot.actions import tokens
from opsbot.actions.tokens import ReleaseGrant, TokenRefused
from unit_support import ACTION_SIGNING_KEY, STACK_ENV, fixture_json, http_event, sqs_event

KEY = ACTION_SIGNING_KEY.encode()
SUCCESS = fixture_json("drone/build_success.json")  # shop-api #128, a push to main by alice
COMMIT = SUCCESS["build"]["after"]


def issue(target: str = "staging", build: int = 128, title: str = "feat(order): add refund endpoint",
          hours: int = 24, **kwargs) -> str:
    return tokens.issue("shop-api", build, target, kwargs.pop("commit", COMMIT), "main", title,
                        kwargs.pop("author", "alice"), hours, **kwargs)


def payload_of(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def signed(document) -> str:
    """A token whose signature is right for whatever `document` is."""
    part = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{part}.{tokens._mac(part, KEY)}"


# --- tokens ----------------------------------------------------------------------------------------------------

def test_a_token_reads_back_as_its_grant(aws):
    now = 1_800_000_000
    token = issue("production", now=now)  # signed with the key in SSM (ACTION_SIGNING_KEY_PARAM)
    grant = tokens.read(token, now=now + 3600)
    assert grant == ReleaseGrant(project="shop-api", build=128, target="production", commit=COMMIT, branch="main",
                                 title="feat(order): add refund endpoint", author="alice",
                                 expires=now + 24 * 3600, nonce=grant.nonce)
    assert len(grant.nonce) == 16 and tokens.read(token, key=KEY, now=now) == grant


def test_every_token_gets_its_own_nonce_and_a_short_title():
    first, second = issue(key=KEY), issue(key=KEY)
    assert first != second and payload_of(first)["nonce"] != payload_of(second)["nonce"]
    assert len(payload_of(issue(title="x" * 500, key=KEY))["title"]) == 80
    assert "=" not in first and "/" not in first and "+" not in first  # safe in a URL path as it is


def test_a_tampered_payload_is_403():
    token = issue(key=KEY)
    document = payload_of(token)
    document["target"] = "production"
    forged = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRefused) as refused:
        tokens.read(f"{forged}.{token.split('.')[1]}", key=KEY)
    assert refused.value.status == 403


@pytest.mark.parametrize("change", [
    lambda mac: mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),
    lambda mac: "",
    lambda mac: mac + "x",
    lambda mac: "签名" + mac[2:],
])
def test_a_tampered_signature_is_403(change):
    payload, mac = issue(key=KEY).split(".")
    with pytest.raises(TokenRefused) as refused:
        tokens.read(f"{payload}.{change(mac)}", key=KEY)
    assert refused.value.status == 403


@pytest.mark.parametrize("token", [issue(key=b"another key"), ".", "e30.", "e30.AAAA"])
def test_another_key_or_no_signature_is_403(token):
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token, key=KEY)
    assert refused.value.status == 403


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 3000 + "." + "y", "a" * 2049])
def test_garbage_is_400(token):
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token, key=KEY)
    assert refused.value.status == 400


@pytest.mark.parametrize("document", [[1, 2], "text", {"project": "shop-api"}, {**{"unknown": 1}}])
def test_a_signed_payload_that_is_no_grant_is_400(document):
    with pytest.raises(TokenRefused) as refused:
        tokens.read(signed(document), key=KEY)
    assert refused.value.status == 400


def test_a_signed_payload_that_is_no_json_is_400():
    part = base64.urlsafe_b64encode(b"\xff\xfe not json").rstrip(b"=").decode()
    with pytest.raises(TokenRefused) as refused:
        tokens.read(f"{part}.{tokens._mac(part, KEY)}", key=KEY)
    assert refused.value.status == 400


def test_an_expired_token_is_410():
    now = 1_800_000_000
    token = issue(hours=1, key=KEY, now=now)
    assert tokens.read(token, key=KEY, now=now + 3600).build == 128  # still good at its last second
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token, key=KEY, now=now + 3601)
    assert refused.value.status == 410 and "expired" in refused.value.reason


# --- the actions Lambda --------------------------------------------------------------------------------------------

@pytest.fixture
def link(handlers, lambda_context, chat_config):
    """GET or POST /actions/<token> through the actions Lambda."""

    def call(method: str, token: str) -> dict:
        event = http_event(f"/actions/{token}", "" if method == "POST" else None, method=method,
                           content_type="application/x-www-form-urlencoded" if method == "POST" else None,
                           headers={"user-agent": "DingTalk/7.0 (iPhone)"})
        return handlers.actions.lambda_handler(event, lambda_context)

    return call


def everything_stored(aws) -> dict:
    tables = {name: sorted(json.dumps(item, sort_keys=True) for item in aws.ddb.scan(TableName=name)["Items"])
              for name in (STACK_ENV["CONFIG_TABLE"], STACK_ENV["STATE_TABLE"], STACK_ENV["AUDIT_TABLE"])}
    return {"tables": tables, "queue": sorted(m["Body"] for m in aws.receive()),
            "dead letters": sorted(m["Body"] for m in aws.dead_letters())}


def assert_page(response: dict, status: int) -> str:
    from opsbot.actions.pages import HEADERS

    assert response["statusCode"] == status, response
    headers = response.get("headers") or {}
    multi = response.get("multiValueHeaders") or {}
    for name, value in HEADERS.items():
        assert headers.get(name) == value or multi.get(name) == [value], name
    assert headers.get("Cache-Control", multi.get("Cache-Control", [""])[0]).startswith("no-store")
    body = response["body"]
    assert body.startswith("<!doctype html>") and "Traceback" not in body and "<script" not in body
    return body


def test_get_shows_the_facts_and_writes_nothing(aws, link):
    token = issue("staging", key=None)
    before = everything_stored(aws)
    body = assert_page(link("GET", token), 200)
    for fact in ("shop-api", "#128", "9c8d7e6f", "feat(order): add refund endpoint", "main", "staging"):
        assert fact in body
    assert '<form method="post">' in body and "需要审批" not in body
    assert everything_stored(aws) == before
    assert link("GET", token)["statusCode"] == 200  # looking again changes nothing either


def test_get_for_production_says_it_needs_approval(link):
    assert "该环境需要审批" in assert_page(link("GET", issue("production")), 200)


def test_the_commit_title_is_escaped(link):
    body = assert_page(link("GET", issue(title='<script>alert("x")</script> & <b>bold</b>')), 200)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in body
    assert "<b>bold" not in body


@pytest.mark.parametrize("token, status", [
    ("garbage", 400),
    ("e30.AAAA", 403),
])
def test_a_bad_token_gets_a_page_and_changes_nothing(aws, link, token, status):
    before = everything_stored(aws)
    for method in ("GET", "POST"):
        body = assert_page(link(method, token), status)
        assert "Nothing was changed" in body
    assert everything_stored(aws) == before


def test_a_tampered_or_expired_link_is_refused(aws, link):
    good = issue()
    payload, mac = good.split(".")
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac
    expired = issue(hours=1, now=time.time() - 7200)
    before = everything_stored(aws)
    assert_page(link("GET", tampered), 403)
    assert_page(link("POST", tampered), 403)
    assert "链接已失效" in assert_page(link("GET", expired), 410)
    assert_page(link("POST", expired), 410)
    assert everything_stored(aws) == before


def test_post_queues_one_release_job_and_the_link_is_then_used_up(aws, link):
    token = issue("staging")
    nonce = tokens.read(token).nonce
    body = assert_page(link("POST", token), 202)
    assert "已提交" in body and "shop-api" in body
    jobs = [json.loads(m["Body"]) for m in aws.receive()]
    assert [(j["kind"], j["id"]) for j in jobs] == [("release.link", f"release-{nonce}")]
    assert jobs[0]["payload"]["grant"]["target"] == "staging"
    assert jobs[0]["payload"]["source_ip"] == "127.0.0.1"
    assert jobs[0]["payload"]["user_agent"] == "DingTalk/7.0 (iPhone)"
    assert [i["pk"]["S"] for i in aws.state_items("idem#")] == [f"idem#action#{nonce}"]

    again = assert_page(link("POST", token), 410)
    assert "already been used" in again
    assert "already been used" in assert_page(link("GET", token), 410)
    assert len(aws.receive()) == 1


def test_an_enqueue_failure_gives_the_link_back(aws, link, env):
    token = issue("staging")
    good = aws.work_queue_url
    env("WORK_QUEUE_URL", good + "-gone")
    body = assert_page(link("POST", token), 503)
    assert "nothing was changed" in body and "Traceback" not in body
    assert aws.state_items("idem#") == []
    assert_page(link("GET", token), 200)  # still usable
    env("WORK_QUEUE_URL", good)
    assert_page(link("POST", token), 202)
    assert len(aws.receive()) == 1


def test_an_environment_gone_from_config_makes_the_link_410(aws, link, fake_drone):
    from opsbot.config import store
    from unit_support import example_documents

    token = issue("staging")
    documents = example_documents(drone=fake_drone.url)
    project = next(d for d in documents if d.name == "projects/shop-api.yaml").data
    project["environments"].pop("staging")
    store.save(documents, "no-staging")
    assert_page(link("GET", token), 410)
    assert_page(link("POST", token), 410)
    assert aws.receive() == []


# --- the release.link job in the worker ------------------------------------------------------------------------

def run_jobs(aws, handlers, lambda_context) -> dict:
    return handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)


def test_a_confirmed_staging_link_promotes_once_and_tells_the_group(aws, link, handlers, lambda_context, fake_drone,
                                                                   fake_dingtalk):
    assert link("POST", issue("staging"))["statusCode"] == 202
    assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []
    assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []  # SQS delivered it twice
    promotes = [(c["method"], c["path"], c["query"]) for c in fake_drone.calls if c["method"] == "POST"]
    assert promotes == [("POST", "/api/repos/shop/shop-api/builds/128/promote",
                         {"target": ["staging"], "OPSBOT_REQUESTED_BY": ["Alice Wang（发布链接）"]})]
    sent = [(m["robot"], m["message"]) for m in fake_dingtalk.accepted]
    assert [robot for robot, _ in sent] == ["shop-backend", "shop-backend"]
    assert sent[0][1]["markdown"]["text"].startswith("### 🚀 已开始发布 shop-api #128 → staging")
    [record] = audit_log("shop-api")
    assert (record.command, record.who, record.where, record.result) == ("deploy", "alice", "web", "succeeded")


def test_a_production_link_opens_an_approval_with_the_author_as_requester(aws, link, handlers, lambda_context,
                                                                          fake_drone, fake_dingtalk):
    from opsbot.release import approvals

    token = issue("production")
    assert link("POST", token)["statusCode"] == 202
    assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []
    assert [c for c in fake_drone.calls if c["method"] == "POST"] == []
    pending = approvals.get(tokens.read(token).nonce[-8:])
    assert (pending.requester, pending.target, pending.build, pending.status) == ("alice", "production", 128,
                                                                                  "pending")
    assert "🔐" in fake_dingtalk.accepted[0]["message"]["markdown"]["text"]


def test_a_link_for_a_rebuilt_commit_is_refused(aws, link, handlers, lambda_context, fake_drone, fake_dingtalk):
    assert link("POST", issue("staging", commit="0" * 40))["statusCode"] == 202
    assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []
    assert [c for c in fake_drone.calls if c["method"] == "POST"] == []
    text = fake_dingtalk.accepted[0]["message"]["markdown"]["text"]
    assert text == "### ⛔ shop-api #128 → staging\n\n#128 is no longer commit 00000000"
    assert audit_log()[0].result == "failed"


# --- buttons on build notifications ------------------------------------------------------------------------------

def notify(aws, handlers, lambda_context, delivery: dict) -> dict:
    from opsbot.jobs import queue
    from opsbot.jobs.model import Job

    queue.enqueue(Job(kind="drone.build_finished", payload={
        "repo": delivery["repo"], "build": delivery["build"], "system": delivery["system"]}))
    response = run_jobs(aws, handlers, lambda_context)
    assert response["batchItemFailures"] == []


def sent_messages(fake_dingtalk) -> list[dict]:
    return [m["message"] for m in fake_dingtalk.accepted]


def test_a_successful_main_build_gets_a_release_button_per_environment(aws, env, handlers, lambda_context,
                                                                       chat_config, fake_dingtalk):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com/")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "actionCard"
    card = message["actionCard"]
    assert card["title"] == "✅ 构建成功 · shop-api #128"
    assert "**作者**: Alice Wang @alice.wang" in card["text"]
    buttons = {b["title"]: b["actionURL"] for b in card["btns"]}
    assert set(buttons) == {"发布到 staging", "发布到 production"}
    for target in ("staging", "production"):
        url = buttons[f"发布到 {target}"]
        assert url.startswith("https://opsbot.example.com/actions/")
        grant = tokens.read(url.rsplit("/", 1)[1])
        assert (grant.project, grant.build, grant.target, grant.commit, grant.branch, grant.author) == (
            "shop-api", 128, target, COMMIT, "main", "alice")
        assert 23 * 3600 < grant.expires - time.time() <= 24 * 3600  # action_link_hours
    assert aws.state_items("idem#action#") == []  # issuing a link uses nothing up


def with_build(**changes) -> dict:
    delivery = copy.deepcopy(SUCCESS)
    delivery["build"].update(changes)
    return delivery


@pytest.mark.parametrize("changes", [
    {"status": "failure"},
    # a pull request from main: its branch is one that environments take, but a PR build is no release
    {"event": "pull_request", "ref": "refs/merge-requests/7/head", "source": "main", "target": "release/1.2"},
    {"event": "promote", "deploy_to": "staging"},
])
def test_no_buttons_for_failures_pull_requests_or_deployments(aws, env, handlers, lambda_context, chat_config,
                                                              fake_dingtalk, changes):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")
    notify(aws, handlers, lambda_context, with_build(**changes))
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown" and "actions/" not in json.dumps(message)


def test_no_buttons_for_a_branch_no_environment_takes(aws, env, handlers, lambda_context, chat_config,
                                                      fake_dingtalk):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")
    notify(aws, handlers, lambda_context, with_build(target="release/1.2", ref="refs/heads/release/1.2",
                                                     source="release/1.2"))
    [message] = sent_messages(fake_dingtalk)  # on_success covers release/*, but no environment takes it
    assert message["msgtype"] == "markdown"


def test_without_public_base_url_a_success_is_plain_markdown_as_before(aws, env, handlers, lambda_context,
                                                                       chat_config, fake_dingtalk):
    env("PUBLIC_BASE_URL", "")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "✅ 构建成功 · shop-api #128"
    assert message["at"]["atUserIds"] == ["alice.wang"]


def test_a_missing_link_key_sends_the_news_without_buttons(aws, env, handlers, lambda_context, chat_config,
                                                          fake_dingtalk):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")  # the template always sets it for the worker
    env("ACTION_SIGNING_KEY_PARAM", "/opsbot/test/actions/not-created-yet")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown" and message["markdown"]["title"] == "✅ 构建成功 · shop-api #128"
    assert aws.dead_letters() == []
