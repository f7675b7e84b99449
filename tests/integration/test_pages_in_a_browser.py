"""The release link's pages in a real browser (Debian's chromium, headless, JavaScript off), at a phone's width
(375 px) and a desktop's: the page a card's button opens, the fake DingTalk login, the confirmation, and the
refusals (not in people, the wrong role, a used link, a tampered link).

Each page: no horizontal scrolling; on a phone, the button visible without scrolling; its title and its reasons in
Chinese and in English; no markdown left raw (backticks, **); and a screenshot kept under
tests/artifacts/screenshots/. The browser helpers are tests/browser_support.py.
"""

from __future__ import annotations

import json
import re

import pytest
from browser_support import DESKTOP, PHONE, SCREENS, Browser, missing

PAGES_TOKEN = "local-pages"  # the robot of pages-api, a project of the tests' own (conftest.TEST_ROBOTS)
PAGES_REPO = "shop/pages-api"
LONG_TITLE = (
    "feat(order): 退款接口支持部分退款与多次退款 support partial and repeated refunds for orders paid with "
    "coupons and gift cards across currencies, with an idempotency key "
    "OrderRefundIdempotencyKeyValidationAndReconciliationService"
)

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "a browser is here")


@pytest.fixture(params=SCREENS, ids=[s.name for s in SCREENS])
def browser(request):
    with Browser(request.param) as opened:
        yield opened


def release_links(stack, title: str = "feat(order): add refund endpoint") -> dict[str, str]:
    """A successful main build of pages-api with a fresh number, and its card's release links by environment."""
    number = stack.next_number()
    stack.drone_add_builds(
        PAGES_REPO,
        [{"number": number, "status": "success", "target": "main", "author_login": "alice", "message": title}],
    )
    body = stack.drone_body("build_success", number, repo="pages-api")
    delivery = json.loads(body)
    delivery["build"]["message"] = title
    response = stack.post_drone(json.dumps(delivery, ensure_ascii=False).encode())
    assert response.status_code == 202, response.text
    cards = stack.wait_for(
        lambda: [
            m["message"]["actionCard"]
            for m in stack.messages(PAGES_TOKEN)
            if m["message"]["msgtype"] == "actionCard"
            and re.search(rf"pages-api #{number}(?!\d)", json.dumps(m["message"], ensure_ascii=False))
        ]
    )
    assert len(cards) == 1, cards
    return {button["title"].split()[-1]: button["actionURL"] for button in cards[0]["btns"]}


def check(page, name: str, *, button: str | None = None, says: tuple[str, ...] = ()) -> str:
    """The checks every page passes; its visible text."""
    shot = page.screenshot(name)
    text = page.text()
    assert page.horizontal_overflow() == 0, f"{name}: scrolls sideways ({shot})"
    assert page.raw_markdown() == [], f"{name}: raw markdown shown ({shot})"
    if button is not None and page.browser.screen is PHONE:
        assert page.in_first_screen(button), f"{name}: the button is below the first screen ({shot})"
    for words in says:
        assert words in text, f"{name}: {words!r} not shown ({shot}):\n{text}"
    assert "Traceback" not in text
    return text


def test_the_browser_runs_no_script(browser):
    assert not browser.runs_scripts()  # so every page below works, and is checked, without JavaScript


def test_a_release_link_signs_in_and_confirms_with_no_script(stack, browser):
    links = release_links(stack)

    page = browser.open(links["staging"])
    check(
        page,
        "1-release-page",
        button="a.button",
        says=("发布到 staging", "项目 Project", "pages-api", "用钉钉登录并确认 Sign in with DingTalk"),
    )
    assert "发布" in page.title and "staging" in page.title

    login = page.follow(page.element("a.button"))  # the fake DingTalk's "sign in as" page
    check(login, "2-dingtalk-login", button="li a", says=("以谁的身份登录？ Sign in as", "Alice Wang", "路人甲"))
    assert page.browser.screen is DESKTOP or login.element("li a").rect["width"] <= PHONE.width  # it scales

    confirm = login.follow(next(a for a in login.elements("li a") if "Alice Wang" in a.text))
    check(
        confirm,
        "3-confirm",
        button="button[type=submit]",
        says=("你是 Alice Wang", "You are Alice Wang", "确认发布 Confirm"),
    )
    done = confirm.follow(confirm.element("button[type=submit]"))
    check(done, "4-submitted", says=("已提交 Submitted", "结果会发到群里", "the group hears the result"))

    used = browser.open(links["staging"])  # the link is used up
    check(
        used,
        "5-used-link",
        says=("链接已失效 Link no longer valid", "已经用过了", "has already been used", "Nothing was changed"),
    )


@pytest.mark.parametrize(
    "who, says",
    [
        (
            "路人甲",  # a member of the organisation that opsbot's people do not list
            ("不能发布 Not allowed", "你的钉钉 ID 是 lurenjia", "Your DingTalk id is lurenjia", "people"),
        ),
        ("Bob Li", ("不能发布 Not allowed", "需要角色 deployer", "needs the role deployer")),  # a developer
    ],
    ids=["not-in-people", "developer"],
)
def test_a_refusal_at_sign_in_says_why_in_both_languages(stack, browser, who, says):
    links = release_links(stack)
    page = browser.open(links["staging"])
    login = page.follow(page.element("a.button"))
    refused = login.follow(next(a for a in login.elements("li a") if who in a.text))
    check(refused, f"refused-{'stranger' if who == '路人甲' else 'developer'}", says=says)
    assert refused.elements("button[type=submit]") == []  # nothing to confirm
    assert refused.elements("code"), "the id or the command is shown as code, not between backticks"


def test_a_tampered_link_is_refused_in_both_languages(stack, browser):
    staging = release_links(stack)["staging"]
    token = staging.rsplit("/", 1)[1]
    tampered = staging[: -len(token)] + token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    page = browser.open(tampered)
    check(page, "tampered-link", says=("签名不符", "its signature does not match", "Nothing was changed"))


def test_a_long_commit_title_wraps_at_word_boundaries_on_a_phone(stack, browser):
    page = browser.open(release_links(stack, LONG_TITLE)["production"])
    text = check(page, "long-title", button="a.button", says=("该环境需要审批", "needs approval"))
    assert "partial and repeated refunds" in text.replace("\n", " ")
    # a word breaks only when it is longer than the line (the service name), never an ordinary one
    assert page.style("dd", "word-break") != "break-all" and page.style("dd", "overflow-wrap") == "break-word"
    login = page.follow(page.element("a.button"))
    confirm = login.follow(next(a for a in login.elements("li a") if "Alice Wang" in a.text))
    check(confirm, "long-title-confirm", button="button[type=submit]", says=("你是 Alice Wang", "approval"))


def test_a_link_from_a_feishu_card_signs_in_with_feishu_and_confirms_with_no_script(stack, browser):
    """The same link as a Feishu card carries it (`?via=feishu`): Feishu's sign-in (the fake Feishu's OAuth), then
    the same confirmation, bound to this link and this person."""
    links = release_links(stack)

    page = browser.open(links["staging"] + "?via=feishu")
    check(
        page,
        "feishu-1-release-page",
        button="a.button",
        says=("发布到 staging", "用飞书登录并确认 Sign in with Feishu"),
    )
    assert "用钉钉登录" not in page.text()

    login = page.follow(page.element("a.button"))  # the fake Feishu's "sign in as" page
    assert "Sign in to Feishu as" in login.text() and "Alice Wang" in login.text()

    confirm = login.follow(next(a for a in login.elements("li a") if "Alice Wang" in a.text))
    check(
        confirm,
        "feishu-2-confirm",
        button="button[type=submit]",
        says=("你是 Alice Wang", "You are Alice Wang", "确认发布 Confirm"),
    )
    check(confirm.follow(confirm.element("button[type=submit]")), "feishu-3-submitted", says=("已提交 Submitted",))
    used = browser.open(links["staging"] + "?via=feishu")
    check(used, "feishu-4-used-link", says=("链接已失效 Link no longer valid", "has already been used"))
