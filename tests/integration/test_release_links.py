"""Release links end to end on the local stack: a successful build's card carries a "发布到 <env>" button; the
button's page signs the clicker in through the fake DingTalk's web login (OAuth authorization code); the person
DingTalk names confirms, and the worker deploys in their name, once, or opens an approval in their name.

Attacks next to the happy path: a POST without a sign-in, a bad sign-in code, a developer, someone who is not in
`people`, and a requester approving their own request. Each test makes its own build number and card; the fake
Drone is reset first, so Drone's calls can be counted.
"""

from __future__ import annotations

import json
import re
import time
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from local.stack import LOCAL_SECRETS

SHOP_TOKEN = "local-shop-backend"
API_REPO = "shop/shop-api"
QUIET_PERIOD = 2.0  # long enough for the worker to have made any Drone call it was going to make
FIXTURE_COMMIT = "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"  # build.after in tests/fixtures/drone/build_success.json
SIGNING_KEY = LOCAL_SECRETS["ACTION_SIGNING_KEY_PARAM"].encode()


@pytest.fixture
def drone(stack):
    stack.drone_reset()
    yield stack
    stack.drone_fault(statuses=[], down=False)


def _release_card(stack, number: int) -> dict:
    """Send a successful push build #number on main and return the group's notification card."""
    stack.drone_add_builds(
        API_REPO,
        [
            {
                "number": number,
                "after": FIXTURE_COMMIT,
                "status": "success",
                "target": "main",
                "author_login": "alice",
                "message": "feat(order): add refund endpoint",
            }
        ],
    )
    response = stack.post_drone(stack.drone_body("build_success", number))
    assert response.status_code == 202, response.text
    found = stack.wait_for(
        lambda: [
            m["message"]
            for m in stack.messages(SHOP_TOKEN)
            if m["message"]["msgtype"] == "actionCard"
            and re.search(rf"shop-api #{number}(?!\d)", json.dumps(m["message"], ensure_ascii=False))
        ]
    )
    assert len(found) == 1, found
    return found[0]["actionCard"]


def _link(card: dict, target: str) -> str:
    found = [b["actionURL"] for b in card["btns"] if target in b["title"]]
    assert len(found) == 1, card["btns"]
    return found[0]


def _page(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "Traceback" not in response.text and "<script" not in response.text
    return response.text


def _login_button(html: str) -> str:
    found = re.findall(r'<a class="button" href="([^"]+)"', html)
    assert len(found) == 1, html
    return unescape(found[0])


def _sign_in(stack, link: str, user_id: str):
    """Open the link and sign in through the fake DingTalk as `user_id`: DingTalk's redirect back, followed."""
    login_url = _login_button(_page(stack.http.get(link, timeout=10), 200))
    redirect = stack.http.get(f"{login_url}&as={user_id}", allow_redirects=False, timeout=10)
    assert redirect.status_code == 302, redirect.text
    return stack.http.get(redirect.headers["Location"], timeout=15)


def _form(html: str, page_url: str) -> tuple[str, dict]:
    action = re.search(r'<form method="post" action="([^"]+)">', html)
    assert action, html
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return urljoin(page_url, unescape(action.group(1))), {k: unescape(v) for k, v in fields.items()}


def _promotes(stack, number: int) -> list[dict]:
    return stack.drone_calls("POST", f"/api/repos/{API_REPO}/builds/{number}/promote")


def _group_texts(stack, number: int, marker: str) -> list[str]:
    texts = [json.dumps(m["message"], ensure_ascii=False) for m in stack.messages(SHOP_TOKEN)]
    return [t for t in texts if marker in t and f"#{number}" in t]


def _link_records(stack, number: int) -> list[dict]:
    return [
        r
        for r in stack.audit_records("shop-api")
        if r["where"] == "web" and r["arguments"].get("build") == str(number) and r["result"] != "queued"
    ]


def test_a_release_link_deploys_once_for_the_person_dingtalk_signed_in(drone):
    stack = drone
    number = stack.next_number()
    assert stack.next_number() == number + 1  # the promote becomes build number+1: keep it out of others' way
    card = _release_card(stack, number)
    assert sorted(b["title"] for b in card["btns"]) == ["发布到 production", "发布到 staging"]
    staging = _link(card, "staging")
    token = staging.rsplit("/", 1)[1]
    assert staging == f"{stack.api}/actions/{token}" and re.fullmatch(r"[0-9a-f]{16}\.[\w-]{43}", token)

    # the page shows the facts and a way to sign in, and nothing to confirm; opening it changes nothing
    for _ in range(2):
        html = unescape(_page(stack.http.get(staging, timeout=10), 200))
        assert "shop-api" in html and f"#{number}" in html and FIXTURE_COMMIT[:8] in html and "staging" in html
        assert "<form" not in html
    login = urlsplit(_login_button(_page(stack.http.get(staging, timeout=10), 200)))
    assert f"{login.scheme}://{login.netloc}{login.path}" == f"{stack.sink}/oauth2/auth"
    query = parse_qs(login.query)
    assert query["redirect_uri"] == [f"{stack.api}/actions/login"] and query["state"] == [token]
    assert query["client_id"] == ["dinglocalappkey"] and query["scope"] == ["openid"]

    # DingTalk signs alice in; the page asks her, and a GET still changes nothing
    signed_in = _sign_in(stack, staging, "alice.wang")
    html = _page(signed_in, 200)
    assert "You are <b>Alice Wang</b>; deploy shop-api" in html
    action, fields = _form(html, signed_in.url)
    assert action == staging and fields["user"] == "alice.wang"
    time.sleep(0.5)
    assert stack.drone_calls("POST") == []

    confirmed = stack.http.post(action, data=fields, timeout=10)
    assert "Alice Wang" in _page(confirmed, 202)
    promotes = stack.wait_for(lambda: _promotes(stack, number))
    assert "already been used" in _page(stack.http.post(action, data=fields, timeout=10), 410)
    assert "already been used" in _page(stack.http.get(staging, timeout=10), 410)
    time.sleep(QUIET_PERIOD)
    promotes = _promotes(stack, number)
    assert len(promotes) == 1 and stack.drone_calls("POST") == promotes
    assert promotes[0]["query"]["target"] == ["staging"]
    assert promotes[0]["query"]["OPSBOT_REQUESTED_BY"] == ["Alice Wang"]
    told = stack.wait_for(lambda: _group_texts(stack, number, "已开始发布"))
    assert len(told) == 1 and "Alice Wang" in told[0]
    records = stack.wait_for(lambda: _link_records(stack, number))
    assert [(r["who"], r["via"], r["decision"], r["result"]) for r in records] == [
        ("alice", "dingtalk-login", "allow", "succeeded")
    ]
    log = stack.log_text()
    assert token not in log and fields["ticket"] not in log  # bearer secrets are not logged


def test_without_a_sign_in_nothing_is_released(drone):
    stack = drone
    number = stack.next_number()
    card = _release_card(stack, number)
    staging, production = _link(card, "staging"), _link(card, "production")
    token = staging.rsplit("/", 1)[1]

    # a POST with no identity: 401 with the sign-in button, nothing queued
    for data in (
        {},
        {"user": "alice.wang", "nick": "Alice Wang", "expires": str(int(time.time()) + 300), "ticket": "A" * 43},
    ):
        html = _page(stack.http.post(staging, data=data, timeout=10), 401)
        assert "Nothing was queued" in html and "/oauth2/auth?" in _login_button(html)
    # a ticket signed in for another link
    other = _form(_page(_sign_in(stack, production, "carol.zhang"), 200), production)[1]
    assert "not valid for this link" in _page(stack.http.post(staging, data=other, timeout=10), 401)
    # forged, damaged and unknown links
    nonce, mac = token.split(".")
    for bad, status in (
        (f"{nonce}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}", 403),
        ("not-a-token", 400),
        (f"{'0' * 16}.{mac}", 403),
    ):
        for method in ("GET", "POST"):
            assert "Nothing was changed" in _page(
                stack.http.request(method, f"{stack.api}/actions/{bad}", timeout=10), status
            )

    # a sign-in that fails: no code (opened outside DingTalk), or a code DingTalk does not take
    html = _page(stack.http.get(f"{stack.api}/actions/login", params={"state": token}, timeout=10), 400)
    assert "open this link inside DingTalk" in html
    html = _page(
        stack.http.get(f"{stack.api}/actions/login", params={"authCode": "bogus", "state": token}, timeout=15), 401
    )
    assert "invalidAuthCode" in html and "<form" not in html

    time.sleep(QUIET_PERIOD)
    assert stack.drone_calls("POST") == []
    assert _link_records(stack, number) == []
    assert _page(stack.http.get(staging, timeout=10), 200)  # the link itself is still good: nothing used it up


def test_production_opens_an_approval_in_the_clickers_name_that_someone_else_approves(drone):
    stack = drone
    number = stack.next_number()
    assert stack.next_number() == number + 1
    production = _link(_release_card(stack, number), "production")
    signed_in = _sign_in(stack, production, "alice.wang")
    html = _page(signed_in, 200)
    assert "in your name" in html
    action, fields = _form(html, signed_in.url)
    _page(stack.http.post(action, data=fields, timeout=10), 202)

    opened = stack.wait_for(lambda: _group_texts(stack, number, "审批请求"))
    assert len(opened) == 1, opened
    request_id = re.search(r"approve ([0-9a-f]{8})\b", opened[0]).group(1)
    assert "Alice Wang 请求发布" in opened[0] and "production" in opened[0]
    records = stack.wait_for(lambda: _link_records(stack, number))
    assert [(r["who"], r["decision"]) for r in records] == [("alice", "needs approval")]

    # alice cannot approve her own request
    _, own = stack.chat(f"approve {request_id}", as_person="alice")
    refusal = stack.wait_for(lambda: stack.session_messages(own["sessionWebhook"]))
    assert "cannot approve your own request" in refusal[0]["markdown"]["text"]
    time.sleep(QUIET_PERIOD)
    assert _promotes(stack, number) == []

    # carol's approval deploys, once
    _, approval = stack.chat(f"approve {request_id}", as_person="carol")
    assert stack.wait_for(lambda: _promotes(stack, number))
    time.sleep(QUIET_PERIOD)
    promotes = _promotes(stack, number)
    assert len(promotes) == 1 and promotes[0]["query"]["target"] == ["production"]
    assert promotes[0]["query"]["OPSBOT_REQUESTED_BY"] == ["Alice Wang ✔ carol"]


def test_a_developer_and_someone_not_in_people_are_refused(drone):
    from opsbot.actions import tickets

    stack = drone
    number = stack.next_number()
    staging = _link(_release_card(stack, number), "staging")

    # the sign-in page previews the core's answer: no form for them
    html = unescape(_page(_sign_in(stack, staging, "bob.li"), 403))
    assert "Bob Li" in html and "deployer" in html and "<form" not in html
    html = unescape(_page(_sign_in(stack, staging, "lurenjia"), 403))
    assert "路人甲" in html and "people" in html and "<form" not in html
    time.sleep(0.5)
    assert _link_records(stack, number) == []

    # and if the preview had let the stranger through (a config change in between), the worker's core refuses:
    # audited, the group told, nothing sent to Drone
    nonce = staging.rsplit("/", 1)[1].split(".")[0]
    ticket = tickets.signed_in("lurenjia", "路人甲").form(nonce, SIGNING_KEY)
    _page(stack.http.post(staging, data=ticket, timeout=10), 202)
    told = stack.wait_for(lambda: _group_texts(stack, number, "⛔"))
    assert len(told) == 1 and "路人甲" in told[0] and "people" in told[0]
    records = stack.wait_for(lambda: _link_records(stack, number))
    assert [(r["who"], r["via"], r["result"]) for r in records] == [
        ("dingtalk-login:lurenjia", "dingtalk-login", "denied")
    ]
    time.sleep(QUIET_PERIOD)
    assert stack.drone_calls("POST") == []
