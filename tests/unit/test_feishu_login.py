"""Feishu's web sign-in on the release page (channels/feishu_login.py, against the fake Feishu's OAuth): a link from
a Feishu card (`?via=feishu`) offers it; Feishu's code names the person by open_id, bound to the link exactly as
DingTalk's login is (a ticket for this link and this person, ten minutes, single-use link); the worker releases as
that person through the authorization core. Attacks next to the happy path: a bad or used code, a redirect_uri other
than this API's, a ticket for another link, a stranger, a DingTalk staff id dressed as a Feishu user."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from test_release_links import KEY, assert_page, form_of, issue, login_button, nonce_of
from unit_support import FEISHU_APP_ID, sqs_event

from opsbot.actions import tickets

ALICE, STRANGER = "ou_alice0local", "ou_stranger0login"


@pytest.fixture
def feishu(fake_dingtalk, env):
    """The stack with the Feishu app set up, its sign-in on the sink's fake Feishu, which knows alice and bob."""
    env("FEISHU_APP_ID", FEISHU_APP_ID)
    env("FEISHU_API_URL", fake_dingtalk.url)
    env("FEISHU_LOGIN_URL", fake_dingtalk.url)
    fake_dingtalk.feishu.login.people.update({ALICE: "Alice Wang", "ou_bob0local": "Bob Li"})
    return fake_dingtalk.feishu.login


def feishu_code(login_url: str, open_id: str) -> dict:
    """What Feishu sends the browser back with after `open_id` agrees: code and state."""
    redirect = requests.get(f"{login_url}&as={open_id}", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302, redirect.text
    location = urlsplit(redirect.headers["Location"])
    assert location.path == "/actions/login"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def feishu_page(call, token: str) -> str:
    return assert_page(call("GET", f"/actions/{token}", {"via": "feishu"}), 200)


def test_a_link_from_a_feishu_card_offers_feishu_s_sign_in_and_others_keep_dingtalk_s(call, feishu, fake_dingtalk):
    token = issue("staging")
    url = urlsplit(login_button(feishu_page(call, token)))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake_dingtalk.url}/open-apis/authen/v1/authorize"
    assert parse_qs(url.query) == {
        "client_id": [FEISHU_APP_ID],
        "redirect_uri": ["https://opsbot.example.com/actions/login"],  # this API's page, never the request's say
        "state": [token],
    }
    plain = urlsplit(login_button(assert_page(call("GET", f"/actions/{token}"), 200)))
    assert plain.path == "/oauth2/auth"  # DingTalk's, as before


def test_feishu_s_sign_in_names_the_person_and_binds_the_ticket_to_link_and_person(aws, call, feishu, handlers):
    token = issue("staging")
    returned = feishu_code(login_button(feishu_page(call, token)), ALICE)
    body = assert_page(call("GET", "/actions/login", returned), 200)
    assert "You are <b>Alice Wang</b>; deploy shop-api #128 to staging?" in body
    action, fields = form_of(body)
    assert action == f"./{token}" and fields["user"] == f"feishu:{ALICE}"
    assert tickets.check(nonce_of(token), fields, KEY).user_id == f"feishu:{ALICE}"
    assert aws.receive() == []  # a GET changes nothing

    assert_page(call("POST", f"/actions/{token}", form=fields), 202)
    [job] = [json.loads(m["Body"]) for m in aws.receive()]
    assert job["payload"]["actor"] == {"via": "feishu-login", "handle": ALICE, "name": "Alice Wang"}
    assert "already been used" in assert_page(call("POST", f"/actions/{token}", form=fields), 410)


def test_the_release_runs_as_the_feishu_user_through_the_core(aws, call, feishu, handlers, lambda_context, fake_drone):
    token = issue("staging")
    fields = form_of(
        assert_page(call("GET", "/actions/login", feishu_code(login_button(feishu_page(call, token)), ALICE)), 200)
    )[1]
    assert_page(call("POST", f"/actions/{token}", form=fields), 202)
    assert handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)["batchItemFailures"] == []
    promotes = [c for c in fake_drone.calls if c["method"] == "POST" and c["path"].endswith("/promote")]
    assert len(promotes) == 1


def test_a_bad_or_used_code_is_401_with_feishu_s_button_again(call, feishu):
    token = issue("staging")
    returned = feishu_code(login_button(feishu_page(call, token)), ALICE)
    assert_page(call("GET", "/actions/login", returned), 200)
    body = assert_page(call("GET", "/actions/login", returned), 401)  # the page reloaded: the code is used
    assert "20003" in body and "/open-apis/authen/v1/authorize?" in login_button(body)
    assert returned["code"] not in body
    assert_page(call("GET", "/actions/login", {"code": "made-up", "state": token}), 401)


def test_a_code_issued_for_another_redirect_uri_is_refused(call, feishu):
    """A code phished through another site's redirect cannot be spent here: Feishu binds it to its redirect_uri."""
    token = issue("staging")
    url = login_button(feishu_page(call, token)).replace("opsbot.example.com", "evil.example.com")
    redirect = requests.get(f"{url}&as={ALICE}", allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    assert "20071" in assert_page(call("GET", "/actions/login", {"code": code, "state": token}), 503)


def test_a_feishu_ticket_for_another_link_is_refused(aws, call, feishu):
    first, second = issue("staging"), issue("staging", build=129)
    fields = form_of(
        assert_page(call("GET", "/actions/login", feishu_code(login_button(feishu_page(call, first)), ALICE)), 200)
    )[1]
    assert_page(call("POST", f"/actions/{second}", form=fields), 401)
    assert aws.receive() == []


def test_a_stranger_signed_in_by_feishu_is_not_allowed(aws, call, feishu):
    token = issue("staging")
    body = assert_page(
        call("GET", "/actions/login", feishu_code(login_button(feishu_page(call, token)), STRANGER)), 403
    )
    assert "<form" not in body
    assert aws.receive() == []


def test_a_dingtalk_staff_id_dressed_as_a_feishu_user_is_refused(call, fake_dingtalk, monkeypatch):
    from opsbot.dingtalk import login as dingtalk_login

    monkeypatch.setattr(dingtalk_login, "identify", lambda code: dingtalk_login.DingTalkUser(f"feishu:{ALICE}", "x"))
    body = assert_page(call("GET", "/actions/login", {"authCode": "any", "state": issue("staging")}), 403)
    assert "<form" not in body


def test_without_a_feishu_app_a_feishu_link_keeps_dingtalk_s_sign_in(call, fake_dingtalk):
    plain = urlsplit(login_button(assert_page(call("GET", f"/actions/{issue()}", {"via": "feishu"}), 200)))
    assert plain.path == "/oauth2/auth"


def test_a_feishu_card_s_release_link_says_it_came_from_feishu(env):
    from opsbot.channels import feishu as feishu_channel
    from opsbot.message import Button, Message
    from opsbot.settings import settings

    link = f"{settings().public_base_url}/actions/t0ken.sig"
    message = Message(title="✅ shop-api #128", lines=["main"], buttons=[Button("发布到 staging", link)])
    card = feishu_channel.render(message, lambda person_id: None)
    [action] = [e for e in card["card"]["elements"] if e.get("tag") == "action"]
    assert action["actions"][0]["url"] == f"{link}?via=feishu"
