"""The login half of the fake DingTalk (served by local/fake_dingtalk.py), as DingTalk answers it:

- `GET /oauth2/auth?redirect_uri&response_type=code&client_id&scope=openid&state&prompt=consent` checks the
  app key and the parameters, and shows a small "sign in as" page listing the organisation's people (the config's
  `people[].dingtalk_user_id` and `name`, plus one member opsbot's config does not know, 路人甲). Each entry is a
  link that redirects to `redirect_uri?authCode=<code>&state=<state>` with a fresh code, good once for 5 minutes;
  with `&as=<userid>` the endpoint redirects at once (what tests and `make click` use);
- `POST /v1.0/oauth2/userAccessToken` `{clientId, clientSecret, code, grantType}` → a user access token; a bad,
  used or expired code is 400 `{"code": "invalidAuthCode", …}`;
- `GET /v1.0/contact/users/me` with `x-acs-dingtalk-access-token` → `{nick, unionId, openId, mobile, …}`;
- `POST /v1.0/oauth2/accessToken` `{appKey, appSecret}` → the app's token;
- `POST /topapi/user/getbyunionid?access_token=` `{unionid}` → `{"errcode": 0, "result": {"contact_type": 0,
  "userid": …}}`; errcode 40014 for a bad app token, 60121 for an unknown unionId.

`/_control/login_calls` lists the calls (paths and methods only), `/_control/login_faults` makes the API calls
answer given statuses in turn, or 503 while `down`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from html import escape
from urllib.parse import urlencode

CODE_SECONDS = 300
TOKEN_SECONDS = 7200
# A member of the organisation whom opsbot's config does not list: `make click WHO=stranger` signs in as them.
OUTSIDER = {"userid": "lurenjia", "name": "路人甲"}


def _union_id(user_id: str) -> str:
    return "union" + hashlib.sha256(user_id.encode()).hexdigest()[:20]


class FakeDingTalkLogin:
    def __init__(self, app_key: str, app_secret: str, people: list[dict]):
        """`people`: dicts with `userid`, `name` and optionally `mobile`, as the organisation's staff."""
        self.app_key, self.app_secret = app_key, app_secret
        self.staff = {p["userid"]: p for p in [*people, OUTSIDER] if p.get("userid")}
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.codes: dict[str, tuple[str, float]] = {}  # authCode -> (userid, expires)
        self.user_tokens: dict[str, tuple[str, float]] = {}
        self.app_tokens: dict[str, float] = {}
        self.calls: list[dict] = []
        self.statuses: list[int] = []
        self.down = False

    # --- the browser's side --------------------------------------------------------------------------------
    def authorize(self, query: dict) -> tuple:
        one = {k: v[0] for k, v in query.items()}
        problems = []
        if one.get("client_id") != self.app_key:
            problems.append("client_id is not this organisation's app")
        if one.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in one.get("scope", "").split():
            problems.append("scope must contain openid")
        if one.get("prompt") != "consent":
            problems.append("prompt must be consent")
        if not one.get("redirect_uri", "").startswith(("http://", "https://")):
            problems.append("redirect_uri is missing")
        if problems:
            return (
                400,
                _html(
                    "登录参数错误",
                    "<h1>登录参数错误 Bad sign-in request</h1><ul>"
                    + "".join(f"<li>{escape(p)}</li>" for p in problems)
                    + "</ul>",
                ),
                HTML,
            )
        if "as" in one:
            if one["as"] not in self.staff:
                return (
                    400,
                    _html("没有这个人", f"<h1>{escape(one['as'])} is not a member of this organisation</h1>"),
                    HTML,
                )
            code = secrets.token_hex(16)
            with self.lock:
                self.codes[code] = (one["as"], time.time() + CODE_SECONDS)
            joiner = "&" if "?" in one["redirect_uri"] else "?"
            location = f"{one['redirect_uri']}{joiner}{urlencode({'authCode': code, 'state': one.get('state', '')})}"
            return 302, "", {"Location": location, "Cache-Control": "no-store"}
        rows = "".join(
            f'<li><a href="/oauth2/auth?{escape(urlencode({**one, "as": uid}), quote=True)}">{escape(p["name"])}'
            f" <small>({escape(uid)})</small></a></li>"
            for uid, p in self.staff.items()
        )
        return (
            200,
            _html(
                "钉钉登录 (local)",
                "<h1>以谁的身份登录？ Sign in as</h1><p>这是本地栈的模拟钉钉登录。 This is the local stack's "
                f"fake DingTalk login.</p><ul>{rows}</ul>",
            ),
            HTML,
        )

    # --- the API's side -------------------------------------------------------------------------------------
    def api(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, dict] | None:
        routes = {
            ("POST", "/v1.0/oauth2/userAccessToken"): self._user_access_token,
            ("GET", "/v1.0/contact/users/me"): self._me,
            ("POST", "/v1.0/oauth2/accessToken"): self._app_access_token,
            ("POST", "/topapi/user/getbyunionid"): self._getbyunionid,
        }
        route = routes.get((method, path))
        if route is None:
            return None
        with self.lock:
            self.calls.append({"method": method, "path": path, "at": time.time()})
            if self.down or self.statuses:
                status = 503 if self.down else self.statuses.pop(0)
                return status, {"code": "ServiceUnavailable", "message": "injected fault"}
            try:
                document = json.loads(body) if body else {}
            except ValueError:
                return 400, {"code": "InvalidParameter", "message": "body is not JSON"}
            if not isinstance(document, dict):
                return 400, {"code": "InvalidParameter", "message": "body is not a JSON object"}
            return route(query, headers, document)

    def _user_access_token(self, query, headers, body: dict) -> tuple[int, dict]:
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret"}
        if body.get("grantType") != "authorization_code":
            return 400, {"code": "invalidGrantType", "message": "grantType must be authorization_code"}
        found = self.codes.pop(str(body.get("code") or ""), None)  # a code works once
        if found is None or found[1] < time.time():
            return 400, {"code": "invalidAuthCode", "message": "不合法的临时授权码"}
        token = secrets.token_hex(16)
        self.user_tokens[token] = (found[0], time.time() + TOKEN_SECONDS)
        return 200, {
            "accessToken": token,
            "refreshToken": secrets.token_hex(16),
            "expireIn": TOKEN_SECONDS,
            "corpId": "dinglocal",
        }

    def _me(self, query, headers, body: dict) -> tuple[int, dict]:
        found = self.user_tokens.get(headers.get("x-acs-dingtalk-access-token") or "")
        if found is None or found[1] < time.time():
            return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
        person = self.staff[found[0]]
        return 200, {
            "nick": person["name"],
            "unionId": _union_id(found[0]),
            "openId": "open" + _union_id(found[0]),
            "mobile": person.get("mobile") or "",
            "stateCode": "86",
            "avatarUrl": "",
        }

    def _app_access_token(self, query, headers, body: dict) -> tuple[int, dict]:
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return 400, {"code": "invalidClientIdOrSecret", "message": "无效的appKey或appSecret"}
        token = secrets.token_hex(16)
        self.app_tokens[token] = time.time() + TOKEN_SECONDS
        return 200, {"accessToken": token, "expireIn": TOKEN_SECONDS}

    def _getbyunionid(self, query, headers, body: dict) -> tuple[int, dict]:
        token = query.get("access_token", [""])[0]
        if self.app_tokens.get(token, 0) < time.time():
            return 200, {"errcode": 40014, "errmsg": "不合法的access_token", "request_id": secrets.token_hex(6)}
        by_union = {_union_id(uid): uid for uid in self.staff}
        user_id = by_union.get(str(body.get("unionid") or ""))
        if user_id is None:
            return 200, {"errcode": 60121, "errmsg": "找不到该用户", "request_id": secrets.token_hex(6)}
        return 200, {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"contact_type": 0, "userid": user_id},
            "request_id": secrets.token_hex(6),
        }

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
        with self.lock:
            if method == "GET" and path == "/_control/login_calls":
                return 200, {"calls": list(self.calls)}
            if method == "POST" and path == "/_control/login_faults":
                spec = json.loads(body or b"{}")
                self.statuses, self.down = list(spec.get("statuses", [])), bool(spec.get("down"))
                return 200, {"ok": True}
        return None


HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


# Phone-sized like DingTalk's own login: a viewport, tap-sized rows, long names wrapped at word boundaries.
_STYLE = (
    'body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px 16px;'
    "overflow-wrap:break-word;color:#1f2329;background:#f5f6f7}main{max-width:480px;margin:0 auto;background:#fff;"
    "border-radius:12px;padding:20px}h1{font-size:20px}ul{list-style:none;padding:0}li a{display:block;padding:14px;"
    "margin:8px 0;border-radius:8px;background:#f0f4ff;color:#1f2329;text-decoration:none}small{color:#646a73}"
)


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{_STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    )


def staff_from_config(people) -> list[dict]:
    """The organisation's staff as the fake knows them, from config people (opsbot's Person objects)."""
    return [{"userid": p.dingtalk_user_id, "name": p.name, "mobile": p.mobile} for p in people if p.dingtalk_user_id]
