"""Release links: short tokens naming grants kept server-side; the actions Lambda's pages (GETs only read), the
clicker identified by DingTalk's web login (against the fake DingTalk's login and user API) and carried to the
POST by a login ticket; the single-use POST (one `release.link` job); the job in the worker, where the clicker is
the requester and the authorization core decides; and the "发布到 <env>" buttons on build notifications.

Attacks sit next to the paths they attack: a POST with no identity, a ticket for another link, an expired or
tampered ticket, a clicker not in `people`, a developer on staging, and a requester approving their own request."""

from __future__ import annotations

import copy
import json
import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from chat_support import audit_log, callback
from unit_support import ACTION_SIGNING_KEY, DINGTALK_APP_KEY, STACK_ENV, fixture_json, sqs_event

from opsbot.actions import tickets
from opsbot.release import links as tokens
from opsbot.release.links import ReleaseGrant, TokenRefused

KEY = ACTION_SIGNING_KEY.encode()
SUCCESS = fixture_json("drone/build_success.json")  # shop-api #128, a push to main by alice
COMMIT = SUCCESS["build"]["after"]
OUTSIDER = "lurenjia"  # staff of the fake DingTalk organisation whom the example config does not list


def issue(
    target: str = "staging",
    build: int = 128,
    title: str = "feat(order): add refund endpoint",
    hours: int = 24,
    **kwargs,
) -> str:
    return tokens.issue(
        "shop-api",
        build,
        target,
        kwargs.pop("commit", COMMIT),
        "main",
        title,
        kwargs.pop("event", "push"),
        hours,
        **kwargs,
    )


def nonce_of(token: str) -> str:
    return token.split(".")[0]


# --- tokens ----------------------------------------------------------------------------------------------------


def test_a_token_names_a_grant_stored_in_the_state_table(aws):
    now = time.time()
    token = issue("production", now=now)  # signed with the key in SSM (ACTION_SIGNING_KEY_PARAM)
    grant = tokens.read(token)
    assert grant == ReleaseGrant(
        project="shop-api",
        build=128,
        target="production",
        commit=COMMIT,
        branch="main",
        title="feat(order): add refund endpoint",
        event="push",
        expires=int(now + 24 * 3600),
        nonce=nonce_of(token),
    )
    assert re.fullmatch(r"[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", token) and len(token) == 60  # fits in OAuth's state
    item = aws.state_item(f"action#{grant.nonce}")
    assert int(item["expires_at"]["N"]) == grant.expires + 86400  # TTL: the link's expiry plus a grace day
    assert json.loads(item["grant"]["S"])["target"] == "production"
    assert tokens.read(token, key=KEY) == grant


def test_every_link_gets_its_own_nonce_and_a_short_title(aws):
    first, second = issue(key=KEY), issue(key=KEY)
    assert nonce_of(first) != nonce_of(second)
    assert len(tokens.read(issue(title="x" * 500, key=KEY), key=KEY).title) == 80


@pytest.fixture
def no_dynamodb(monkeypatch):
    """Fails the test if a token is looked up: garbage and forgeries must cost no DynamoDB read."""

    def refuse(*args, **kwargs):
        raise AssertionError("DynamoDB was read for a token that is not ours")

    monkeypatch.setattr(tokens, "client", refuse)


@pytest.mark.parametrize(
    "change",
    [
        lambda mac: mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),
        lambda mac: "",
        lambda mac: mac[:-1],
        lambda mac: "签名" + mac[2:],
    ],
)
def test_a_tampered_signature_is_403_without_a_lookup(aws, no_dynamodb, change):
    nonce, mac = tokens.token_for("0123456789abcdef", KEY).split(".")
    with pytest.raises(TokenRefused) as refused:
        tokens.read(f"{nonce}.{change(mac)}", key=KEY)
    assert refused.value.status == 403


def test_another_key_or_another_nonce_under_the_same_signature_is_403(aws, no_dynamodb):
    with pytest.raises(TokenRefused) as refused:
        tokens.read(tokens.token_for("0123456789abcdef", b"another key"), key=KEY)
    assert refused.value.status == 403
    mac = tokens.token_for("0123456789abcdef", KEY).split(".")[1]
    with pytest.raises(TokenRefused) as refused:
        tokens.read(f"fedcba9876543210.{mac}", key=KEY)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        ".",
        "0123456789ABCDEF.x",
        "0123456789abcde.x",
        "x" * 3000 + "." + "y",
        "0123456789abcdef." + "A" * 100,
        "../../etc.passwd",
    ],
)
def test_garbage_is_400_without_a_lookup(aws, no_dynamodb, token):
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token, key=KEY)
    assert refused.value.status == 400


def test_an_expired_link_is_410(aws):
    now = int(time.time()) - 7200
    token = issue(hours=1, key=KEY, now=now)
    assert tokens.read(token, key=KEY, now=now + 3600).build == 128  # still good at its last second
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token, key=KEY)
    assert refused.value.status == 410 and "expired" in refused.value.reason


def test_a_signed_nonce_without_a_grant_is_410(aws):
    token = issue(key=KEY)
    aws.ddb.delete_item(TableName=STACK_ENV["STATE_TABLE"], Key={"pk": {"S": f"action#{nonce_of(token)}"}})
    for unknown in (token, tokens.token_for("0123456789abcdef", KEY)):
        with pytest.raises(TokenRefused) as refused:
            tokens.read(unknown, key=KEY)
        assert refused.value.status == 410


# --- login tickets ------------------------------------------------------------------------------------------------

NONCE = "0123456789abcdef"


def test_a_ticket_holds_for_its_link_and_person_for_ten_minutes():
    now = 1_800_000_000
    fields = tickets.signed_in("alice.wang", "Alice Wang", now=now).form(NONCE, KEY)
    assert set(fields) == {"user", "nick", "expires", "ticket"} and fields["expires"] == str(now + 600)
    assert tickets.check(NONCE, fields, KEY, now=now + 600) == tickets.SignedIn("alice.wang", "Alice Wang", now + 600)
    with pytest.raises(tickets.TicketRefused, match="expired"):
        tickets.check(NONCE, fields, KEY, now=now + 601)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"ticket": ""}, "sign in with DingTalk first"),
        ({"user": "carol.zhang"}, "not valid"),  # someone else's name on alice's ticket
        ({"nick": "Carol Zhang"}, "not valid"),
        ({"expires": "99999999999"}, "not valid"),  # a longer life
        ({"ticket": "A" * 43}, "not valid"),
        ({"expires": "soon"}, "damaged"),
        ({"user": "alice.wang|x"}, "damaged"),
        ({"user": ""}, "damaged"),
    ],
)
def test_a_tampered_ticket_is_refused(change, why):
    fields = tickets.signed_in("alice.wang", "Alice Wang").form(NONCE, KEY)
    with pytest.raises(tickets.TicketRefused, match=why):
        tickets.check(NONCE, {**fields, **change}, KEY)


def test_a_ticket_for_another_link_or_another_key_is_refused():
    fields = tickets.signed_in("alice.wang", "Alice Wang").form(NONCE, KEY)
    with pytest.raises(tickets.TicketRefused, match="not valid for this link"):
        tickets.check("fedcba9876543210", fields, KEY)
    with pytest.raises(tickets.TicketRefused):
        tickets.check(NONCE, fields, b"another key")


# --- the actions Lambda: requests and pages ---------------------------------------------------------------------


def everything_stored(aws) -> dict:
    tables = {
        name: sorted(json.dumps(item, sort_keys=True) for item in aws.ddb.scan(TableName=name)["Items"])
        for name in (STACK_ENV["CONFIG_TABLE"], STACK_ENV["STATE_TABLE"], STACK_ENV["AUDIT_TABLE"])
    }
    return {
        "tables": tables,
        "queue": sorted(m["Body"] for m in aws.receive()),
        "dead letters": sorted(m["Body"] for m in aws.dead_letters()),
    }


def assert_page(response: dict, status: int) -> str:
    from opsbot.actions.pages import HEADERS

    assert response["statusCode"] == status, response
    headers = response.get("headers") or {}
    multi = response.get("multiValueHeaders") or {}
    for name, value in HEADERS.items():
        assert headers.get(name) == value or multi.get(name) == [value], name
    body = response["body"]
    assert body.startswith("<!doctype html>") and "Traceback" not in body and "<script" not in body
    return body


def login_button(body: str) -> str:
    found = re.findall(r'<a class="button" href="([^"]+)"', body)
    assert len(found) == 1, body
    return unescape(found[0])


def form_of(body: str) -> tuple[str, dict]:
    """The confirmation form's action and hidden fields."""
    action = re.search(r'<form method="post" action="([^"]+)">', body)
    assert action, body
    fields = {
        unescape(k): unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body)
    }
    return unescape(action.group(1)), fields


def auth_code(fake_dingtalk, login_url: str, user_id: str) -> dict:
    """What DingTalk's login sends the browser back with after `user_id` taps "confirm": authCode and state."""
    redirect = requests.get(f"{login_url}&as={user_id}", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302, redirect.text
    location = urlsplit(redirect.headers["Location"])
    assert location.path == "/actions/login"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def sign_in(call, fake_dingtalk, token: str, user_id: str = "alice.wang") -> dict:
    """Open the link, sign in through the fake DingTalk as `user_id`: the login page's response."""
    return call(
        "GET",
        "/actions/login",
        auth_code(fake_dingtalk, login_button(assert_page(call("GET", f"/actions/{token}"), 200)), user_id),
    )


def confirmation(call, fake_dingtalk, token: str, user_id: str = "alice.wang") -> dict:
    """The hidden fields of the confirmation form that signing in as `user_id` gives."""
    action, fields = form_of(assert_page(sign_in(call, fake_dingtalk, token, user_id), 200))
    assert action == f"./{token}"
    return fields


def test_get_shows_the_facts_and_a_dingtalk_login_button_and_writes_nothing(aws, call, fake_dingtalk):
    token = issue("staging")
    before = everything_stored(aws)
    body = assert_page(call("GET", f"/actions/{token}"), 200)
    for fact in ("shop-api", "#128", "9c8d7e6f", "feat(order): add refund endpoint", "main", "staging"):
        assert fact in body
    assert "<form" not in body and "需要审批" not in body  # nothing to confirm before DingTalk says who you are
    url = urlsplit(login_button(body))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake_dingtalk.url}/oauth2/auth"
    assert parse_qs(url.query) == {
        "redirect_uri": ["https://opsbot.example.com/actions/login"],
        "response_type": ["code"],
        "client_id": [DINGTALK_APP_KEY],
        "scope": ["openid"],
        "state": [token],
        "prompt": ["consent"],
    }
    assert call("GET", f"/actions/{token}")["statusCode"] == 200  # looking again changes nothing either
    assert everything_stored(aws) == before


def test_the_redirect_uri_follows_the_request(call, fake_dingtalk):
    token = issue()
    body = assert_page(call("GET", f"/actions/{token}", headers={"x-forwarded-proto": ""}), 200)
    assert parse_qs(urlsplit(login_button(body)).query)["redirect_uri"] == ["http://opsbot.example.com/actions/login"]


def test_without_an_app_key_the_page_says_what_to_configure_and_offers_no_button(aws, call, env):
    token = issue()
    env("DINGTALK_APP_KEY", "")
    body = assert_page(call("GET", f"/actions/{token}"), 200)
    assert "DingtalkAppKey" in body and "DINGTALK_APP_KEY" in body and 'class="button"' not in body
    body = assert_page(call("GET", "/actions/login", {"authCode": "x", "state": token}), 503)
    assert "DingtalkAppKey" in body and "<form" not in body
    assert aws.receive() == []


def test_get_for_production_says_it_needs_approval(call):
    assert "该环境需要审批" in assert_page(call("GET", f"/actions/{issue('production')}"), 200)


def test_the_commit_title_is_escaped(call):
    body = assert_page(call("GET", f"/actions/{issue(title='<script>alert(1)</script> & <b>bold</b>')}"), 200)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in body and "<b>bold" not in body


@pytest.mark.parametrize(
    "token, status",
    [
        ("garbage", 400),
        (tokens.token_for("0123456789abcdef", b"k"), 403),
        (tokens.token_for("0123456789abcdef", KEY), 410),
    ],
)
def test_a_bad_token_gets_a_page_and_changes_nothing(aws, call, token, status):
    before = everything_stored(aws)
    for response in (
        call("GET", f"/actions/{token}"),
        call("POST", f"/actions/{token}", form={}),
        call("GET", "/actions/login", {"authCode": "x", "state": token}),
    ):
        assert "Nothing was changed" in assert_page(response, status)
    assert everything_stored(aws) == before


def test_a_tampered_or_expired_link_is_refused(aws, call):
    nonce, mac = issue().split(".")
    tampered = f"{nonce}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
    expired = issue(hours=1, now=time.time() - 7200)
    before = everything_stored(aws)
    assert_page(call("GET", f"/actions/{tampered}"), 403)
    assert_page(call("POST", f"/actions/{tampered}", form={}), 403)
    assert "链接已失效" in assert_page(call("GET", f"/actions/{expired}"), 410)
    assert_page(call("POST", f"/actions/{expired}", form={}), 410)
    assert everything_stored(aws) == before


def test_an_environment_gone_from_config_makes_the_link_410(aws, call, fake_drone):
    from unit_support import example_documents

    from opsbot.config import store

    token = issue("staging")
    documents = example_documents(drone=fake_drone.url)
    next(d for d in documents if d.name == "projects/shop-api.yaml").data["environments"].pop("staging")
    store.save(documents, "no-staging")
    assert_page(call("GET", f"/actions/{token}"), 410)
    assert_page(call("GET", "/actions/login", {"authCode": "x", "state": token}), 410)
    assert aws.receive() == []


@pytest.mark.parametrize("host", ["evil.example.com/<script>", "", "a b", "x" * 300])
def test_a_host_that_is_no_host_is_a_400_page(aws, call, host):
    token = issue()
    before = everything_stored(aws)
    for response in (
        call("GET", f"/actions/{token}", domain=host),
        call("GET", "/actions/login", {"authCode": "x", "state": token}, domain=host),
    ):
        assert_page(response, 400)
    assert everything_stored(aws) == before


# --- the login page ---------------------------------------------------------------------------------------------


def test_signing_in_shows_who_you_are_and_a_form_with_a_ticket_and_changes_nothing(aws, call, fake_dingtalk):
    token = issue("staging")
    before = everything_stored(aws)
    body = assert_page(sign_in(call, fake_dingtalk, token), 200)
    assert "You are <b>Alice Wang</b>; deploy shop-api #128 to staging?" in body
    action, fields = form_of(body)
    assert action == f"./{token}" and (fields["user"], fields["nick"]) == ("alice.wang", "Alice Wang")
    assert tickets.check(nonce_of(token), fields, KEY).user_id == "alice.wang"
    assert everything_stored(aws) == before  # a GET never changes anything, even after signing in
    steps = [c["path"] for c in fake_dingtalk.login.calls]
    assert steps == [
        "/v1.0/oauth2/userAccessToken",
        "/v1.0/contact/users/me",
        "/v1.0/oauth2/accessToken",
        "/topapi/user/getbyunionid",
    ]


def test_production_sign_in_says_an_approval_request_will_be_opened_in_your_name(call, fake_dingtalk):
    body = assert_page(sign_in(call, fake_dingtalk, issue("production")), 200)
    assert "in your name" in body and "<form" in body


def test_without_a_code_the_page_says_open_it_inside_dingtalk(aws, call):
    token = issue()
    before = everything_stored(aws)
    body = assert_page(call("GET", "/actions/login", {"state": token}), 400)
    assert "open this link inside DingTalk" in body and "<form" not in body
    assert "/oauth2/auth?" in login_button(body)  # and a way to sign in
    assert everything_stored(aws) == before


def test_a_bad_code_releases_nothing_and_the_page_says_why(aws, call, fake_dingtalk):
    token = issue()
    before = everything_stored(aws)
    body = assert_page(call("GET", "/actions/login", {"authCode": "not-a-code", "state": token}), 401)
    assert "invalidAuthCode" in body and "open the release link again" in body and "<form" not in body
    assert "Sign in with DingTalk again" in body
    assert everything_stored(aws) == before


def test_a_sign_in_code_works_once(call, fake_dingtalk):
    token = issue()
    returned = auth_code(fake_dingtalk, login_button(assert_page(call("GET", f"/actions/{token}"), 200)), "alice.wang")
    assert_page(call("GET", "/actions/login", returned), 200)
    assert "invalidAuthCode" in assert_page(call("GET", "/actions/login", returned), 401)  # the page reloaded


def test_dingtalk_down_during_sign_in_is_a_page_that_says_so(aws, call, fake_dingtalk):
    token = issue()
    login_url = login_button(assert_page(call("GET", f"/actions/{token}"), 200))
    returned = auth_code(fake_dingtalk, login_url, "alice.wang")
    fake_dingtalk.login.down = True
    body = assert_page(call("GET", "/actions/login", returned), 503)
    assert "DingTalk is unavailable" in body and "Nothing was released" in body and "<form" not in body
    assert aws.receive() == []


def test_dingtalk_refusing_the_apps_credentials_is_told_to_the_operator(call, fake_dingtalk, monkeypatch):
    token = issue()
    returned = auth_code(fake_dingtalk, login_button(assert_page(call("GET", f"/actions/{token}"), 200)), "alice.wang")
    monkeypatch.setattr(fake_dingtalk.login, "app_secret", "another secret")
    body = assert_page(call("GET", "/actions/login", returned), 503)
    assert "invalidClientIdOrSecret" in body and "DingtalkAppKey" in body


def test_the_app_token_is_kept_and_fetched_again_when_dingtalk_forgets_it(call, fake_dingtalk):
    def app_token_calls() -> int:
        return sum(c["path"] == "/v1.0/oauth2/accessToken" for c in fake_dingtalk.login.calls)

    assert_page(sign_in(call, fake_dingtalk, issue()), 200)
    assert_page(sign_in(call, fake_dingtalk, issue()), 200)
    assert app_token_calls() == 1
    fake_dingtalk.login.app_tokens.clear()  # DingTalk no longer takes it (errcode 40014)
    assert_page(sign_in(call, fake_dingtalk, issue()), 200)
    assert app_token_calls() == 2


def test_someone_not_in_people_is_refused_at_sign_in_with_the_reason(aws, call, fake_dingtalk):
    body = assert_page(sign_in(call, fake_dingtalk, issue(), OUTSIDER), 403)
    assert "路人甲" in body and "people" in body and "<form" not in body
    assert aws.receive() == []


def test_a_nick_from_dingtalk_is_escaped_on_the_page_and_in_the_group(call, fake_dingtalk, monkeypatch, click):
    nick = "<img src=x> [go](http://x) @all"
    monkeypatch.setitem(fake_dingtalk.login.staff, OUTSIDER, {"userid": OUTSIDER, "name": nick})
    body = assert_page(sign_in(call, fake_dingtalk, issue(), OUTSIDER), 403)
    assert "&lt;img src=x&gt;" in body and "<img" not in body
    click("staging", fields=minted(OUTSIDER, nick))
    [text] = group_texts(fake_dingtalk)
    assert "<img" not in text and "[go](" not in text and "@all" not in text


def test_a_developer_is_refused_staging_at_sign_in(call, fake_dingtalk):
    body = assert_page(sign_in(call, fake_dingtalk, issue("staging"), "bob.li"), 403)
    assert "Bob Li" in body and "deployer" in body and "<form" not in body


def test_a_used_link_says_so_at_sign_in(call, fake_dingtalk):
    token = issue()
    assert_page(call("POST", f"/actions/{token}", form=confirmation(call, fake_dingtalk, token)), 202)
    assert "already been used" in assert_page(call("GET", "/actions/login", {"authCode": "x", "state": token}), 410)


# --- the POST ---------------------------------------------------------------------------------------------------


def test_a_post_with_no_identity_is_401_with_the_login_button_and_queues_nothing(aws, call, fake_drone):
    token = issue("staging")
    before = everything_stored(aws)
    for form, content_type in (
        (None, "text/plain"),
        ({}, None),
        ({"user": "alice.wang", "nick": "Alice Wang", "expires": str(int(time.time()) + 300)}, None),
    ):
        body = assert_page(call("POST", f"/actions/{token}", form=form, content_type=content_type), 401)
        assert "sign in with DingTalk first" in body and "Nothing was queued" in body
        assert "/oauth2/auth?" in login_button(body)
    assert everything_stored(aws) == before
    assert fake_drone.calls == []


def test_a_ticket_for_another_link_is_refused(aws, call, fake_dingtalk):
    mine, other = issue("staging"), issue("staging")
    fields = confirmation(call, fake_dingtalk, mine)
    before = everything_stored(aws)
    assert "not valid for this link" in assert_page(call("POST", f"/actions/{other}", form=fields), 401)
    assert everything_stored(aws) == before


@pytest.mark.parametrize(
    "change",
    [
        {"user": "carol.zhang", "nick": "Carol Zhang"},
        {"nick": "Xiaoming"},
        {"ticket": "A" * 43},
        {"expires": str(int(time.time()) + 86400)},
    ],
)
def test_a_tampered_ticket_is_refused_at_the_post(aws, call, fake_dingtalk, change):
    token = issue("staging")
    fields = confirmation(call, fake_dingtalk, token)
    before = everything_stored(aws)
    assert_page(call("POST", f"/actions/{token}", form={**fields, **change}), 401)
    assert everything_stored(aws) == before


def test_an_expired_ticket_is_refused_at_the_post(aws, call):
    token = issue("staging")
    stale = tickets.signed_in("alice.wang", "Alice Wang", now=time.time() - 601).form(nonce_of(token), KEY)
    before = everything_stored(aws)
    assert "expired" in assert_page(call("POST", f"/actions/{token}", form=stale), 401)
    assert everything_stored(aws) == before


def test_post_queues_one_job_naming_the_clicker_and_the_link_is_then_used_up(aws, call, fake_dingtalk):
    token = issue("staging")
    grant = tokens.read(token)
    body = assert_page(call("POST", f"/actions/{token}", form=confirmation(call, fake_dingtalk, token)), 202)
    assert "已提交" in body and "Alice Wang" in body
    [job] = [json.loads(m["Body"]) for m in aws.receive()]
    assert job["kind"] == "release.link"
    assert job["payload"]["grant"] == {**grant.__dict__}
    assert job["payload"]["actor"] == {"via": "dingtalk-login", "handle": "alice.wang", "name": "Alice Wang"}
    assert job["payload"]["source_ip"] == "127.0.0.1" and job["payload"]["user_agent"] == "DingTalk/7.6.0 (iPhone)"
    assert abs(job["payload"]["clicked_at"] - time.time()) < 60
    [claim] = aws.state_items("idem#")
    assert claim["pk"]["S"] == f"idem#action#{grant.nonce}"
    assert abs(int(claim["expires_at"]["N"]) - (grant.expires + 86400)) < 60  # remembered past the link's expiry

    carol = tickets.signed_in("carol.zhang", "Carol Zhang").form(grant.nonce, KEY)  # someone else, signed in
    assert "already been used" in assert_page(call("POST", f"/actions/{token}", form=carol), 410)
    assert "already been used" in assert_page(call("GET", f"/actions/{token}"), 410)
    assert len(aws.receive()) == 1


def test_the_same_confirmation_posted_twice_queues_once(aws, call, fake_dingtalk):
    token = issue("staging")
    fields = confirmation(call, fake_dingtalk, token)
    assert_page(call("POST", f"/actions/{token}", form=fields), 202)
    assert "already been used" in assert_page(call("POST", f"/actions/{token}", form=fields), 410)
    assert len(aws.receive()) == 1


def test_a_base64_encoded_form_is_read_as_api_gateway_sends_it(aws, call, fake_dingtalk):
    token = issue("staging")
    assert_page(
        call("POST", f"/actions/{token}", form=confirmation(call, fake_dingtalk, token), base64_encoded=True), 202
    )
    assert len(aws.receive()) == 1


@pytest.mark.parametrize(
    "form, content_type, status",
    [
        ("user=alice.wang", "application/json", 415),
        ("user=alice.wang", "text/plain", 415),
        ("ticket=" + "A" * 5000, None, 413),
        ("ticket=%ZZ&&&", None, 400),
        ("nick=%E7%8E", None, 400),  # not UTF-8 once decoded
        ("ticket=a&ticket=b", None, 400),
        ("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", None, 400),
    ],
)
def test_a_malformed_form_is_a_4xx_page_and_queues_nothing(aws, call, form, content_type, status):
    token = issue("staging")
    before = everything_stored(aws)
    assert_page(call("POST", f"/actions/{token}", form=form, content_type=content_type), status)
    assert everything_stored(aws) == before


def test_an_enqueue_failure_gives_the_link_back(aws, call, fake_dingtalk, env):
    token = issue("staging")
    fields = confirmation(call, fake_dingtalk, token)
    good = aws.work_queue_url
    env("WORK_QUEUE_URL", good + "-gone")
    body = assert_page(call("POST", f"/actions/{token}", form=fields), 503)
    assert "nothing was changed" in body and "Traceback" not in body
    assert aws.state_items("idem#") == []
    env("WORK_QUEUE_URL", good)
    assert_page(call("POST", f"/actions/{token}", form=fields), 202)  # the same confirmation, still good
    assert len(aws.receive()) == 1


def test_no_token_code_or_ticket_reaches_the_log(call, fake_dingtalk, opsbot_log, handlers, lambda_context, aws):
    token = issue("staging")
    returned = auth_code(fake_dingtalk, login_button(assert_page(call("GET", f"/actions/{token}"), 200)), "alice.wang")
    fields = form_of(assert_page(call("GET", "/actions/login", returned), 200))[1]
    assert_page(call("POST", f"/actions/{token}", form=fields), 202)
    assert_page(call("GET", "/actions/login", {"authCode": "leaked-code-1234", "state": token}), 410)
    handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
    log = opsbot_log()
    assert "release link" in log or "queued" in log  # the log did get written
    for secret in (token, token.split(".")[1], returned["authCode"], fields["ticket"], "leaked-code-1234"):
        assert secret not in log


# --- the release.link job in the worker ------------------------------------------------------------------------


def run_jobs(aws, handlers, lambda_context) -> dict:
    return handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)


def drone_changes(fake_drone) -> list[tuple[str, dict]]:
    return [
        (c["path"], {k: v for k, v in c["query"].items() if not k.startswith("OPSBOT_REQUEST_")})
        for c in fake_drone.calls
        if c["method"] != "GET"
    ]


def group_texts(fake_dingtalk) -> list[str]:
    return [m["message"]["markdown"]["text"] for m in fake_dingtalk.accepted if m["message"]["msgtype"] == "markdown"]


@pytest.fixture
def click(aws, call, fake_dingtalk, handlers, lambda_context):
    """A release link clicked and confirmed by a DingTalk user, then run by the worker."""

    def clicked(target: str, user_id: str = "alice.wang", fields: dict | None = None, **issue_kwargs) -> str:
        token = issue(target, **issue_kwargs)
        form = fields(token) if callable(fields) else confirmation(call, fake_dingtalk, token, user_id)
        assert_page(call("POST", f"/actions/{token}", form=form), 202)
        assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []
        return token

    return clicked


def minted(user_id: str, nick: str):
    """The form a valid ticket for `user_id` would give: the core must hold even if the page's preview let
    someone through (the config changed between sign-in and confirm)."""
    return lambda token: tickets.signed_in(user_id, nick).form(nonce_of(token), KEY)


def test_alice_confirms_staging_and_it_promotes_once_in_her_name(
    aws, click, fake_drone, fake_dingtalk, handlers, lambda_context
):
    click("staging")
    assert drone_changes(fake_drone) == [
        ("/api/repos/shop/shop-api/builds/128/promote", {"target": ["staging"], "OPSBOT_REQUESTED_BY": ["Alice Wang"]})
    ]
    [text] = group_texts(fake_dingtalk)
    assert text.startswith("### 🚀 已开始发布 shop-api #128 → staging") and "发起人 Alice Wang" in text
    [record] = audit_log("shop-api")
    assert (record.command, record.who, record.who_name, record.where, record.result) == (
        "deploy",
        "alice",
        "Alice Wang",
        "web",
        "succeeded",
    )
    assert (record.via, record.decision, record.where_title) == ("dingtalk-login", "allow", "127.0.0.1")


def test_a_redelivered_release_job_promotes_once(aws, call, fake_dingtalk, fake_drone, handlers, lambda_context):
    token = issue("staging")
    assert_page(call("POST", f"/actions/{token}", form=confirmation(call, fake_dingtalk, token)), 202)
    messages = aws.receive()
    for _ in range(2):  # SQS delivered it twice
        assert handlers.worker.lambda_handler(sqs_event(messages), lambda_context)["batchItemFailures"] == []
    assert len(drone_changes(fake_drone)) == 1


def test_someone_not_in_people_is_refused_by_the_core_audited_and_the_group_told(click, fake_drone, fake_dingtalk):
    click("staging", fields=minted(OUTSIDER, "路人甲"))
    assert drone_changes(fake_drone) == []
    [text] = group_texts(fake_dingtalk)
    assert text.startswith("### ⛔ shop-api #128 → staging") and "路人甲" in text and "people" in text
    [record] = audit_log("shop-api")
    assert (record.who, record.who_name, record.result, record.decision, record.via) == (
        f"dingtalk-login:{OUTSIDER}",
        "路人甲",
        "denied",
        "deny",
        "dingtalk-login",
    )


def test_a_developer_clicking_staging_is_denied_a_deployer_is_needed(click, fake_drone, fake_dingtalk):
    click("staging", fields=minted("bob.li", "Bob Li"))
    assert drone_changes(fake_drone) == []
    [text] = group_texts(fake_dingtalk)
    assert "Bob Li" in text and "deployer" in text
    [record] = audit_log("shop-api")
    assert (record.who, record.result, record.decision) == ("bob", "denied", "deny")


def test_production_opens_an_approval_in_the_clickers_name_that_only_someone_else_can_approve(
    aws, click, fake_drone, fake_dingtalk, handlers, lambda_context
):
    from opsbot.chat.inbound.dingtalk import answer_callback
    from opsbot.release import approvals

    click("production")  # alice clicks; alice is not the build's author here: she is the one who asked
    assert drone_changes(fake_drone) == []
    request_text = group_texts(fake_dingtalk)[-1]
    request_id = re.search(r"approve ([0-9a-f]{8})", request_text).group(1)
    pending = approvals.get(request_id)
    assert (pending.requester, pending.requester_name, pending.target, pending.build, pending.commit) == (
        "alice",
        "Alice Wang",
        "production",
        128,
        COMMIT,
    )
    assert "Alice Wang 请求发布" in request_text

    def say(text: str, who: str) -> None:
        message = callback(text, who)
        answer_callback(message)
        assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []

    say(f"approve {request_id}", "alice")  # the requester cannot approve her own request
    assert drone_changes(fake_drone) == [] and approvals.get(request_id).status == "pending"
    assert "cannot approve your own request" in group_texts(fake_dingtalk)[-1]
    say(f"approve {request_id}", "carol")
    assert drone_changes(fake_drone) == [
        (
            "/api/repos/shop/shop-api/builds/128/promote",
            {"target": ["production"], "OPSBOT_REQUESTED_BY": ["Alice Wang ✔ carol"]},
        )
    ]
    say(f"approve {request_id}", "xiaoming")  # too late: nothing more happens
    assert len(drone_changes(fake_drone)) == 1


def test_a_link_for_a_rebuilt_commit_is_refused(click, fake_drone, fake_dingtalk):
    click("staging", commit="0" * 40)
    assert drone_changes(fake_drone) == []
    [text] = group_texts(fake_dingtalk)
    assert text.startswith("### ⛔ shop-api #128 → staging") and "不是链接所指的提交 00000000" in text
    assert audit_log()[0].result == "failed"


# --- buttons on build notifications ------------------------------------------------------------------------------


def notify(aws, handlers, lambda_context, delivery: dict) -> None:
    from opsbot.jobs import queue
    from opsbot.jobs.model import Job

    queue.enqueue(
        Job(
            kind="drone.build_finished",
            payload={"repo": delivery["repo"], "build": delivery["build"], "system": delivery["system"]},
        )
    )
    assert run_jobs(aws, handlers, lambda_context)["batchItemFailures"] == []


def sent_messages(fake_dingtalk) -> list[dict]:
    return [m["message"] for m in fake_dingtalk.accepted]


def test_a_successful_main_build_gets_a_release_button_per_environment(
    aws, env, handlers, lambda_context, chat_config, fake_dingtalk
):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com/")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "actionCard"
    card = message["actionCard"]
    assert card["title"] == "✅ 构建成功 · shop-api #128"
    buttons = {b["title"]: b["actionURL"] for b in card["btns"]}
    assert set(buttons) == {"发布到 staging", "发布到 production"}
    for target in ("staging", "production"):
        url = buttons[f"发布到 {target}"]
        assert re.fullmatch(r"https://opsbot\.example\.com/actions/[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", url)
        grant = tokens.read(url.rsplit("/", 1)[1])
        assert (grant.project, grant.build, grant.target, grant.commit, grant.branch, grant.event) == (
            "shop-api",
            128,
            target,
            COMMIT,
            "main",
            "push",
        )
        assert 23 * 3600 < grant.expires - time.time() <= 24 * 3600  # action_link_hours
    assert len(aws.state_items("action#")) == 2 and aws.state_items("idem#action#") == []  # nothing used up


def with_build(**changes) -> dict:
    delivery = copy.deepcopy(SUCCESS)
    delivery["build"].update(changes)
    return delivery


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "failure"},
        # a pull request from main: its branch is one that environments take, but a PR build is no release
        {"event": "pull_request", "ref": "refs/merge-requests/7/head", "source": "main", "target": "release/1.2"},
        {"event": "promote", "deploy_to": "staging"},
    ],
)
def test_no_buttons_for_failures_pull_requests_or_deployments(
    aws, env, handlers, lambda_context, chat_config, fake_dingtalk, changes
):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")
    notify(aws, handlers, lambda_context, with_build(**changes))
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown" and "actions/" not in json.dumps(message)
    assert aws.state_items("action#") == []


def test_no_buttons_for_a_branch_no_environment_takes(aws, env, handlers, lambda_context, chat_config, fake_dingtalk):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")
    notify(
        aws,
        handlers,
        lambda_context,
        with_build(target="release/1.2", ref="refs/heads/release/1.2", source="release/1.2"),
    )
    [message] = sent_messages(fake_dingtalk)  # on_success covers release/*, but no environment takes it
    assert message["msgtype"] == "markdown"


def test_without_public_base_url_a_success_is_plain_markdown_as_before(
    aws, env, handlers, lambda_context, chat_config, fake_dingtalk
):
    env("PUBLIC_BASE_URL", "")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown" and message["at"]["atUserIds"] == ["alice.wang"]


def test_a_missing_link_key_sends_the_news_without_buttons(
    aws, env, handlers, lambda_context, chat_config, fake_dingtalk, opsbot_log
):
    env("PUBLIC_BASE_URL", "https://opsbot.example.com")  # the template always sets it for the worker
    env("ACTION_SIGNING_KEY_PARAM", "/opsbot/test/actions/not-created-yet")
    notify(aws, handlers, lambda_context, SUCCESS)
    [message] = sent_messages(fake_dingtalk)
    assert message["msgtype"] == "markdown" and message["markdown"]["title"] == "✅ 构建成功 · shop-api #128"
    assert aws.dead_letters() == [] and aws.state_items("action#") == []  # no grant without a key
    assert "release links are off" in opsbot_log()


# --- routes: the template and the local stack ----------------------------------------------------------------------


def test_the_login_route_is_static_and_wins_over_the_token_route():
    from unit_support import ROOT

    from local import template as local_template

    template = local_template.load(ROOT / "template.yaml")
    route, parameters = template.route_for("GET", "/actions/login")
    assert (route.path, route.function, parameters) == ("/actions/login", "ActionsFunction", {})
    route, parameters = template.route_for("GET", "/actions/0123456789abcdef.abc")
    assert (route.path, parameters) == ("/actions/{token}", {"token": "0123456789abcdef.abc"})
    assert template.route_for("POST", "/actions/login")[0].path == "/actions/{token}"  # refused there as garbage


def test_the_actions_function_reads_the_signing_key_and_the_app_secrets_only():
    from unit_support import ROOT

    from local import template as local_template

    actions = local_template.load(ROOT / "template.yaml").raw["Resources"]["ActionsFunction"]["Properties"]
    assert actions["Environment"]["Variables"]["DINGTALK_APP_KEY"] == {"Ref": "DingtalkAppKey"}
    readable = [
        r["Fn::Sub"].rsplit("/opsbot/${Stage}/", 1)[1]
        for s in actions["Policies"][0]["Statement"]
        if s["Action"] == "ssm:GetParameter"
        for r in s["Resource"]
    ]
    assert readable == ["actions/signing-key", "dingtalk/app-secret", "feishu/app-secret"]  # the two sign-ins
