"""Feishu's (Lark's) web sign-in (OAuth 2.0 authorization code) for release links: who clicked, as Feishu vouches.
The release page offers it beside DingTalk's login (actions/handler.py), so that a team on Feishu, without DingTalk
accounts, can release from a card's link.

1. The page links to `<FEISHU_LOGIN_URL>/open-apis/authen/v1/authorize?client_id=<app id>&redirect_uri=…&state=
   <token>`; Feishu asks the person to agree and comes back to `<our API>/actions/login?code=…&state=<token>`.
2. `identify(code, redirect_uri)`: the code (valid 5 minutes, once) becomes a user access token (`POST
   <api>/open-apis/authen/v2/oauth/token`, `grant_type=authorization_code` with the app's id and secret and the same
   redirect_uri), and the token tells the person's `open_id` and name (`GET <api>/open-apis/authen/v1/user_info`),
   which `people[].feishu_open_id` holds.

Failures are LoginFailed (dingtalk/login.py's, one kind for the page): 401 when the code is refused (20003 invalid,
20004 expired, 20050 used: open the link again), 403 when Feishu says the person may not use the app (20010), 503
when Feishu is down or refuses opsbot's app. Codes and tokens are bearer secrets: never logged, nor put in a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from opsbot.dingtalk.login import LoginFailed
from opsbot.i18n import both
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings

MAX_WAIT_SECONDS = 3.0  # a person is waiting on each of the two calls
CODE_REFUSED = {20003, 20004, 20050, 20065}  # invalid, expired, used or revoked code
NOT_ALLOWED = {20010}  # the person may not use the app
USER_PREFIX = "feishu:"  # how a login ticket names a Feishu user (DingTalk's staff ids never start so)


@dataclass(frozen=True)
class FeishuUser:
    open_id: str  # people[].feishu_open_id
    name: str


def configured() -> bool:
    return bool(settings().feishu_app_id and settings().feishu_login_url)


def authorize_url(redirect_uri: str, state: str) -> str:
    """Where the "sign in with Feishu" button goes; Feishu comes back to `redirect_uri` with `code` and `state`."""
    query = urlencode({"client_id": settings().feishu_app_id, "redirect_uri": redirect_uri, "state": state})
    return f"{settings().feishu_login_url}/open-apis/authen/v1/authorize?{query}"


def _unavailable(step: str, why: str) -> LoginFailed:
    logger.warning("Feishu login call failed", extra={"step": step, "why": why})
    return LoginFailed(
        both(
            f"飞书没有响应（{step}：{why}）。没有发布任何东西，请一分钟后再试。",
            f"Feishu did not answer ({step}: {why}). Nothing was released; try again in a minute.",
        ),
        503,
    )


def _call(step: str, method: str, url: str, **kwargs) -> dict:
    import requests

    timeout = min(settings().http_timeout_seconds, MAX_WAIT_SECONDS)
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise _unavailable(step, type(exc).__name__) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise _unavailable(step, f"HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise _unavailable(step, "an answer that is not JSON")
    return document


def _code(document: dict) -> int:
    code = document.get("code")
    return code if isinstance(code, int) else -1


def identify(code: str, redirect_uri: str) -> FeishuUser:
    """The person Feishu signed in with this code, or LoginFailed."""
    if not configured():
        raise LoginFailed(
            both(
                "还没有设置飞书登录：部署参数 FeishuAppId 是空的。",
                "Feishu sign-in is not set up: the stack's FeishuAppId parameter is empty.",
            ),
            503,
        )
    if not code or len(code) > 512 or not code.isprintable():
        raise LoginFailed(
            both(
                "飞书的登录码缺失或已损坏：请重新打开发布链接。",
                "Feishu's sign-in code is missing or damaged: open the release link again.",
            )
        )
    api = settings().feishu_api_url
    token = _call(
        "sign-in code exchange",
        "POST",
        f"{api}/open-apis/authen/v2/oauth/token",
        json={
            "grant_type": "authorization_code",
            "client_id": settings().feishu_app_id,
            "client_secret": get_parameter(settings().feishu_app_secret_param),
            "code": code,
            "redirect_uri": redirect_uri,
        },
    )
    access = token.get("access_token")
    if _code(token) != 0 or not isinstance(access, str) or not access:
        said = f"{_code(token)}: {str(token.get('error_description') or token.get('msg') or '')[:200]}"
        if _code(token) in CODE_REFUSED:
            raise LoginFailed(
                both(
                    f"飞书没有接受这次登录（{said}）。一次登录只能用一次，5 分钟内有效：请重新打开发布链接。",
                    f"Feishu did not accept this sign-in ({said}). A sign-in works once and for 5 minutes: "
                    "open the release link again.",
                )
            )
        if _code(token) in NOT_ALLOWED:
            raise LoginFailed(
                both(
                    f"飞书说你不能使用 opsbot 的应用（{said}）。", f"Feishu says you may not use opsbot's app ({said})."
                ),
                403,
            )
        raise LoginFailed(
            both(
                f"飞书拒绝了 opsbot 的应用（{said}）。请告诉平台组：FeishuAppId 与 App Secret 必须属于同一个应用，"
                "且重定向 URL 已登记。",
                f"Feishu refused opsbot's app when signing you in ({said}). Tell the platform team: FeishuAppId and "
                "the App Secret must be the same app's, and the redirect URL must be registered.",
            ),
            503,
        )
    info = _call(
        "user info", "GET", f"{api}/open-apis/authen/v1/user_info", headers={"Authorization": f"Bearer {access}"}
    )
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    open_id, name = data.get("open_id"), data.get("name")
    if _code(info) != 0 or not isinstance(open_id, str) or not open_id.startswith("ou_"):
        raise _unavailable("user info", f"Feishu code {_code(info)}")
    return FeishuUser(open_id, name if isinstance(name, str) else "")
