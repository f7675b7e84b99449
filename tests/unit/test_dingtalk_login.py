"""DingTalk's web login client (opsbot/dingtalk/login.py) against the fake DingTalk's login and user API: who a
sign-in code names, and every way it can fail sorted into a LoginFailed a person can act on."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from unit_support import DINGTALK_APP_KEY

from opsbot.dingtalk import login


@pytest.fixture
def code(fake_dingtalk):
    """A fresh sign-in code for a DingTalk user of the fake organisation, as the login redirect carries it."""

    def for_user(user_id: str = "alice.wang") -> str:
        url = login.authorize_url("https://opsbot.example.com/actions/login", "the-state")
        redirect = requests.get(f"{url}&as={user_id}", allow_redirects=False, timeout=5)
        assert redirect.status_code == 302, redirect.text
        query = parse_qs(urlsplit(redirect.headers["Location"]).query)
        assert query["state"] == ["the-state"]
        return query["authCode"][0]

    return for_user


def test_the_authorize_url_is_dingtalks_with_our_app_and_the_state(fake_dingtalk):
    url = urlsplit(login.authorize_url("https://api.example.com/actions/login", "abc.def"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake_dingtalk.url}/oauth2/auth"
    assert parse_qs(url.query) == {
        "redirect_uri": ["https://api.example.com/actions/login"],
        "response_type": ["code"],
        "client_id": [DINGTALK_APP_KEY],
        "scope": ["openid"],
        "state": ["abc.def"],
        "prompt": ["consent"],
    }
    page = requests.get(login.authorize_url("https://api.example.com/actions/login", "s"), timeout=5)
    assert page.status_code == 200 and "Alice Wang" in page.text and "路人甲" in page.text  # "sign in as"


@pytest.mark.parametrize(
    "user_id, nick", [("alice.wang", "Alice Wang"), ("manager4321", "王小明"), ("lurenjia", "路人甲")]
)
def test_a_code_names_the_staff_member_who_signed_in(code, user_id, nick):
    assert login.identify(code(user_id)) == login.DingTalkUser(user_id, nick)


def test_a_bad_or_used_code_is_401_with_what_to_do(code):
    used = code()
    login.identify(used)
    for bad in (used, "made-up"):
        with pytest.raises(login.LoginFailed) as failed:
            login.identify(bad)
        assert failed.value.status == 401 and "invalidAuthCode" in failed.value.reason
        assert "open the release link again" in failed.value.reason and bad not in failed.value.reason
    with pytest.raises(login.LoginFailed) as failed:
        login.identify("")
    assert failed.value.status == 401


def test_without_an_app_key_nothing_is_called(fake_dingtalk, env):
    env("DINGTALK_APP_KEY", "")
    with pytest.raises(login.LoginFailed) as failed:
        login.identify("code")
    assert failed.value.status == 503 and "DingtalkAppKey" in failed.value.reason
    assert fake_dingtalk.login.calls == []


@pytest.mark.parametrize("statuses", [[503], [429], [502]])
def test_dingtalk_failing_is_503_and_says_try_again(code, fake_dingtalk, statuses):
    signed_in = code()
    fake_dingtalk.login.statuses = list(statuses)
    with pytest.raises(login.LoginFailed) as failed:
        login.identify(signed_in)
    assert failed.value.status == 503 and "try again" in failed.value.reason


def test_a_dingtalk_that_does_not_answer_times_out(fake_dingtalk, env):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    env("DINGTALK_API_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    env("HTTP_TIMEOUT_SECONDS", "0.5")
    started = time.monotonic()
    try:
        with pytest.raises(login.LoginFailed) as failed:
            login.identify("code")
    finally:
        silent.close()
    assert failed.value.status == 503 and "did not answer" in failed.value.reason
    assert time.monotonic() - started < 3


def test_the_timeout_is_at_most_three_seconds_whatever_the_setting(env, monkeypatch):
    env("HTTP_TIMEOUT_SECONDS", "30")
    seen = []

    class Session:
        def request(self, method, url, **kwargs):
            seen.append(kwargs["timeout"])
            raise requests.ConnectionError("no")

    monkeypatch.setattr(login, "_session", Session())
    with pytest.raises(login.LoginFailed):
        login._call("test", "GET", "http://127.0.0.1:9/")
    assert seen == [3.0]


def test_a_wrong_app_secret_is_an_operators_problem(code, fake_dingtalk, monkeypatch):
    signed_in = code()
    monkeypatch.setattr(fake_dingtalk.login, "app_secret", "rotated")
    with pytest.raises(login.LoginFailed) as failed:
        login.identify(signed_in)
    assert failed.value.status == 503 and "Tell the platform team" in failed.value.reason


def test_someone_dingtalk_cannot_place_in_the_organisation_is_403(code, fake_dingtalk, monkeypatch):
    monkeypatch.setattr(login, "_me", lambda token: ("union-of-someone-else", "Someone"))
    with pytest.raises(login.LoginFailed) as failed:
        login.identify(code())
    assert failed.value.status == 403 and "60121" in failed.value.reason


def test_an_external_contact_is_403(code, fake_dingtalk, monkeypatch):
    staff_lookup = fake_dingtalk.login._getbyunionid

    def external(query, headers, body):
        status, document = staff_lookup(query, headers, body)
        document["result"]["contact_type"] = 1
        return status, document

    monkeypatch.setattr(fake_dingtalk.login, "_getbyunionid", external)
    with pytest.raises(login.LoginFailed) as failed:
        login.identify(code())
    assert failed.value.status == 403 and "external contact" in failed.value.reason


def test_the_app_token_is_asked_for_once_and_again_when_dingtalk_drops_it(code, fake_dingtalk):
    def asked() -> int:
        return sum(c["path"] == "/v1.0/oauth2/accessToken" for c in fake_dingtalk.login.calls)

    login.identify(code())
    login.identify(code())
    assert asked() == 1
    fake_dingtalk.login.app_tokens.clear()
    assert login.identify(code()).user_id == "alice.wang"  # errcode 40014, a new app token, the same answer
    assert asked() == 2


def test_no_code_or_token_is_logged(code, fake_dingtalk, opsbot_log):
    signed_in = code()
    login.identify(signed_in)
    for bad in ("made-up-code-123",):
        with pytest.raises(login.LoginFailed):
            login.identify(bad)
    log = opsbot_log()
    assert "DingTalk refused a sign-in code" in log
    secrets = [signed_in, "made-up-code-123", *fake_dingtalk.login.user_tokens, *fake_dingtalk.login.app_tokens]
    assert all(secret not in log for secret in secrets)
