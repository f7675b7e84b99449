"""DingTalk's web login (OAuth 2.0 authorization code): who clicked a release link, as DingTalk vouches.

1. The page links to `<login>/oauth2/auth?…&state=<token>`; inside DingTalk the person confirms with one tap,
   and DingTalk redirects to `<our API>/actions/login?authCode=…&state=<token>`.
2. `identify(authCode)`: the code becomes a user access token (`POST <api>/v1.0/oauth2/userAccessToken`), the
   token tells the person's unionId and nick (`GET <api>/v1.0/contact/users/me`), and the app's own token turns
   the unionId into the staff user id that `people[].dingtalk_user_id` holds (`POST <oapi>/topapi/user/getbyunionid`).

Every failure is a LoginFailed whose reason a person can act on, with the HTTP status of the page that shows it:
401 when the sign-in itself did not hold (open the link again), 403 when DingTalk says this person is not staff
of the organisation, 503 when DingTalk is down or refuses opsbot's app (an operator's job). Codes and tokens are
bearer secrets: they are never logged, nor put in a reason.

`requests` is imported on first use: only the login page pays for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from opsbot.i18n import both
from opsbot.log import logger
from opsbot.secrets import SecretError, get_parameter
from opsbot.settings import settings

MAX_WAIT_SECONDS = 3.0  # a person is waiting on each call; the page makes at most four
APP_TOKEN_MARGIN_SECONDS = 300  # fetch a new app token this long before DingTalk's expires
STALE_APP_TOKEN = {40001, 40014, 42001}  # DingTalk's "invalid / expired access_token"
NOT_IN_ORGANISATION = {60121, 60011}  # no such user / not in this organisation

_session = None
_app_token: dict = {}  # app key -> (token, refresh after), per container
_lock = threading.Lock()
logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").level))  # no query strings


class LoginFailed(Exception):
    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class DingTalkUser:
    user_id: str  # the staff id within the organisation (people[].dingtalk_user_id)
    nick: str


def configured() -> bool:
    return bool(settings().dingtalk_app_key)


def authorize_url(redirect_uri: str, state: str) -> str:
    """Where the "sign in with DingTalk" button goes; DingTalk comes back to `redirect_uri` with the code."""
    query = urlencode(
        {
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "client_id": settings().dingtalk_app_key,
            "scope": "openid",
            "state": state,
            "prompt": "consent",
        }
    )
    return f"{settings().dingtalk_login_url}/oauth2/auth?{query}"


def identify(auth_code: str) -> DingTalkUser:
    """The person DingTalk signed in with this code (used once, minutes old), or LoginFailed."""
    if not configured():
        raise LoginFailed(
            both(
                "还没有设置钉钉登录：部署参数 DingtalkAppKey 是空的。",
                "DingTalk login is not set up: the stack's DingtalkAppKey parameter is empty.",
            ),
            503,
        )
    if not auth_code or len(auth_code) > 512 or not auth_code.isprintable():
        raise LoginFailed(
            both(
                "钉钉的登录码缺失或已损坏：请重新打开发布链接。",
                "DingTalk's sign-in code is missing or damaged: open the release link again.",
            )
        )
    user_token = _user_access_token(auth_code)
    union_id, nick = _me(user_token)
    return DingTalkUser(_user_id(union_id), nick)


def forget_app_token() -> None:
    """Drop the cached app token (tests; a rotated secret is otherwise picked up when the token expires)."""
    with _lock:
        _app_token.clear()


# --- the calls ---------------------------------------------------------------------------------------------------


def _http():
    global _session
    if _session is None:
        import requests

        _session = requests.Session()
    return _session


def _call(
    step: str, method: str, url: str, body: dict | None = None, headers: dict | None = None, params: dict | None = None
) -> tuple[int, dict]:
    """(HTTP status, JSON object) of one call; LoginFailed(503) when DingTalk cannot be reached or answers
    nonsense. The URL's query may hold the app token: it is never logged."""
    import requests

    timeout = min(settings().http_timeout_seconds, MAX_WAIT_SECONDS)
    try:
        response = _http().request(method, url, json=body, headers=headers, params=params, timeout=timeout)
    except requests.RequestException as exc:
        logger.warning("DingTalk login call failed", extra={"step": step, "error": type(exc).__name__})
        raise LoginFailed(
            both(
                f"钉钉没有响应（{step}）。没有发布任何东西，请一分钟后再试。",
                f"DingTalk did not answer ({step}). Nothing was released; try again in a minute.",
            ),
            503,
        ) from None
    if response.status_code >= 500 or response.status_code == 429:
        logger.warning("DingTalk login call failed", extra={"step": step, "status": response.status_code})
        raise LoginFailed(
            both(
                f"钉钉暂时不可用（{step} 返回 HTTP {response.status_code}）。没有发布任何东西，请一分钟后再试。",
                f"DingTalk is unavailable (HTTP {response.status_code} on {step}). Nothing was released; "
                "try again in a minute.",
            ),
            503,
        )
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        logger.warning("DingTalk login answer is not JSON", extra={"step": step, "status": response.status_code})
        raise LoginFailed(
            both(
                f"钉钉的回答无法读取（{step}）。没有发布任何东西，请再试一次。",
                f"DingTalk gave an unreadable answer ({step}). Nothing was released; try again.",
            ),
            503,
        )
    return response.status_code, document


def _error(document: dict) -> str:
    """DingTalk's own words for a refusal: `code: message` of the new API, `errcode errmsg` of the old."""
    if "errcode" in document:
        return f"errcode {document.get('errcode')}: {str(document.get('errmsg') or '')[:200]}"
    return f"{str(document.get('code') or 'error')[:100]}: {str(document.get('message') or '')[:200]}"


def _user_access_token(auth_code: str) -> str:
    app = settings()
    status, document = _call(
        "sign-in code exchange",
        "POST",
        f"{app.dingtalk_api_url}/v1.0/oauth2/userAccessToken",
        {
            "clientId": app.dingtalk_app_key,
            "clientSecret": _app_secret(),
            "code": auth_code,
            "grantType": "authorization_code",
        },
    )
    token = document.get("accessToken")
    if status < 400 and isinstance(token, str) and token:
        return token
    logger.info(
        "DingTalk refused a sign-in code", extra={"status": status, "error_code": str(document.get("code"))[:100]}
    )
    if "code" in str(document.get("code") or "").lower():  # invalidAuthCode, authCodeExpired, …
        raise LoginFailed(
            both(
                f"钉钉没有接受这次登录（{_error(document)}）。一次登录只能用一次，几分钟内有效：请从群里重新打开发布链接。",
                f"DingTalk did not accept this sign-in ({_error(document)}). A sign-in works once and for "
                "a few minutes: open the release link again from the group.",
            )
        )
    raise LoginFailed(
        both(
            f"钉钉拒绝了 opsbot 的应用（{_error(document)}）。请告诉平台组：应用的 AppKey（DingtalkAppKey）和 "
            "AppSecret 必须属于同一个应用。",
            f"DingTalk refused opsbot's app when signing you in ({_error(document)}). Tell the platform "
            "team: the app's AppKey (DingtalkAppKey) and AppSecret must be the same app's.",
        ),
        503,
    )


def _me(user_token: str) -> tuple[str, str]:
    status, document = _call(
        "who signed in",
        "GET",
        f"{settings().dingtalk_api_url}/v1.0/contact/users/me",
        headers={"x-acs-dingtalk-access-token": user_token},
    )
    union_id, nick = document.get("unionId"), document.get("nick")
    if status < 400 and isinstance(union_id, str) and union_id:
        return union_id, nick if isinstance(nick, str) else ""
    if status == 401:
        raise LoginFailed(
            both(
                f"钉钉没有告诉我们你是谁（{_error(document)}）。请重新打开发布链接。",
                f"DingTalk did not say who you are ({_error(document)}). Open the release link again.",
            )
        )
    raise LoginFailed(
        both(
            f"钉钉没有告诉我们你是谁（{_error(document)}）。请告诉平台组：应用需要个人信息读权限"
            "（Contact.User.Read）。",
            f"DingTalk did not say who you are ({_error(document)}). Tell the platform team: the app "
            "needs the permission to read personal info (Contact.User.Read).",
        ),
        503,
    )


def _user_id(union_id: str, fresh_app_token: bool = False) -> str:
    app_token = _app_access_token(fresh_app_token)
    status, document = _call(
        "staff id lookup",
        "POST",
        f"{settings().dingtalk_oapi_url}/topapi/user/getbyunionid",
        {"unionid": union_id},
        params={"access_token": app_token},
    )
    errcode = document.get("errcode")
    result = document.get("result") if isinstance(document.get("result"), dict) else {}
    user_id = result.get("userid")
    if status < 400 and errcode == 0 and isinstance(user_id, str) and user_id:
        if result.get("contact_type", 0) != 0:
            raise LoginFailed(
                both(
                    "钉钉显示你是这个组织的外部联系人，不是员工：只有员工可以发布。",
                    "DingTalk says you are an external contact of this organisation, not its staff: "
                    "only staff may release.",
                ),
                403,
            )
        return user_id
    if errcode in STALE_APP_TOKEN and not fresh_app_token:
        forget_app_token()
        return _user_id(union_id, fresh_app_token=True)
    if errcode in NOT_IN_ORGANISATION:
        raise LoginFailed(
            both(
                f"钉钉显示你不是这个组织的成员（{_error(document)}）。",
                f"DingTalk says you are not a member of this organisation ({_error(document)}).",
            ),
            403,
        )
    raise LoginFailed(
        both(
            f"钉钉没有给出你的员工 ID（{_error(document)}）。请告诉平台组：应用需要通讯录只读 / 成员信息读权限。",
            f"DingTalk did not give your staff id ({_error(document)}). Tell the platform team: the app "
            "needs the contacts read permission for members.",
        ),
        503,
    )


def _app_secret() -> str:
    try:
        return get_parameter(settings().dingtalk_app_secret_param)
    except SecretError:
        raise LoginFailed(
            both(
                "opsbot 读不到自己的钉钉应用密钥，请告诉平台组。",
                "opsbot cannot read its DingTalk app secret; tell the platform team.",
            ),
            503,
        ) from None


def _app_access_token(fresh: bool = False) -> str:
    """The app's own token, kept in memory until shortly before DingTalk's expiry."""
    app = settings()
    with _lock:
        cached = _app_token.get(app.dingtalk_app_key)
    if cached and not fresh and cached[1] > time.time():
        return cached[0]
    status, document = _call(
        "app token",
        "POST",
        f"{app.dingtalk_api_url}/v1.0/oauth2/accessToken",
        {"appKey": app.dingtalk_app_key, "appSecret": _app_secret()},
    )
    token, expires_in = document.get("accessToken"), document.get("expireIn")
    if status >= 400 or not isinstance(token, str) or not token:
        logger.error(
            "DingTalk refused the app's credentials",
            extra={"status": status, "error_code": str(document.get("code"))[:100]},
        )
        raise LoginFailed(
            both(
                f"钉钉拒绝了 opsbot 的应用凭证（{_error(document)}）。请告诉平台组：检查 DingtalkAppKey 参数和 SSM 里的"
                "应用密钥。",
                f"DingTalk refused opsbot's app credentials ({_error(document)}). Tell the platform team: "
                "check the DingtalkAppKey parameter and the app secret in SSM.",
            ),
            503,
        )
    lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else 7200
    with _lock:
        _app_token[app.dingtalk_app_key] = (token, time.time() + max(60, lifetime - APP_TOKEN_MARGIN_SECONDS))
    return token
