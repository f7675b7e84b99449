"""The release link's three requests. GETs only read; only a POST with a login ticket queues anything.

- `GET /actions/{token}`: the facts, and a button to DingTalk's login with the token as OAuth `state`; for a link
  from a Feishu card (`?via=feishu`, with a Feishu app set up), to Feishu's sign-in, which comes back to the same
  login page.
- `GET /actions/login?authCode=…&state=<token>` (DingTalk) or `?code=…&state=<token>` (Feishu): the platform says
  who this is; the page previews the core's decision and, when it allows (or needs approval), asks "you are
  <name>; deploy?" in a form with a login ticket, which names the platform with the person.
- `POST /actions/{token}`: the ticket names the clicker; the link's nonce is claimed through ingress.accept (so
  the link is single use) and one `release.link` job carries the grant and the clicker to the worker, where the
  core decides for real.

Each returns (HTTP status, page); every refusal is a page that says why, never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl

from opsbot.actions import pages, tickets
from opsbot.authz.actors import DINGTALK_LOGIN, FEISHU_LOGIN, release_clicker
from opsbot.channels import feishu_login
from opsbot.config import store
from opsbot.config.model import Config, Environment
from opsbot.dingtalk import login as dingtalk_login
from opsbot.i18n import both
from opsbot.ingress.accept import TAKEOVER_AFTER_SECONDS, accept
from opsbot.ingress.errors import InProgress
from opsbot.jobs import kinds
from opsbot.release import links
from opsbot.release.links import Refused, ReleaseGrant, TokenRefused
from opsbot.state import idempotency, keys

SOURCE = keys.LINK_USED.rstrip("#")  # the claim of a used link is `idem#action#<nonce>`
USED_GRACE_SECONDS = 86400  # a used nonce is remembered a day past the link's expiry
MAX_FORM_BYTES = 4096  # the form holds a ticket and three short fields
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")
USED = both(
    "这个发布链接已经用过了：每个链接只能用一次。", "This release link has already been used: each link works once."
)

Page = tuple[int, str]


@dataclass(frozen=True)
class Visit:
    """What the pages need to know of the HTTP request."""

    forwarded_proto: str  # X-Forwarded-Proto: https behind API Gateway; absent on the local stack
    host: str  # requestContext.domainName, else the Host header
    source_ip: str = ""
    user_agent: str = ""

    @property
    def base(self) -> str:
        """This API's base URL as the browser reached it: DingTalk's login comes back to `<base>/actions/login`."""
        proto = (self.forwarded_proto or "").split(",")[0].strip().lower()
        if not _HOST.fullmatch(self.host or ""):
            raise Refused(400, both("这个请求没有可用的主机名。", "This request names no usable host."))
        return f"{proto if proto in ('http', 'https') else 'http'}://{self.host}"


def _login_url(base: str, token: str) -> str | None:
    return dingtalk_login.authorize_url(f"{base}/actions/login", token) if dingtalk_login.configured() else None


def _feishu_login_url(base: str, token: str) -> str | None:
    return feishu_login.authorize_url(f"{base}/actions/login", token) if feishu_login.configured() else None


def _clicker(signed: tickets.SignedIn) -> tuple[str, str]:
    """(via, handle) of the person a login ticket names: Feishu's open_id behind its prefix, else DingTalk's id."""
    if signed.user_id.startswith(feishu_login.USER_PREFIX):
        return FEISHU_LOGIN, signed.user_id[len(feishu_login.USER_PREFIX) :]
    return DINGTALK_LOGIN, signed.user_id


def _unused(grant: ReleaseGrant) -> ReleaseGrant:
    if idempotency.seen(f"{SOURCE}#{grant.nonce}", TAKEOVER_AFTER_SECONDS):  # a click stopped mid-way: not used
        raise TokenRefused(410, USED)
    return grant


def _environment(config: Config, grant: ReleaseGrant) -> Environment:
    project = config.projects.get(grant.project)
    env = project.environments.get(grant.target) if project else None
    if env is None:
        raise TokenRefused(
            410,
            both(
                f"{grant.project} 已经没有环境 {grant.target}。",
                f"{grant.project} no longer has the environment {grant.target}.",
            ),
        )
    return env


def _language(config: Config, grant: ReleaseGrant) -> str:
    project = config.projects.get(grant.project)
    return project.language if project else config.language


def _holds(config: Config, grant: ReleaseGrant):
    """The locks and freezes that hold the link's environment now (read only when a page is shown)."""
    from opsbot.authz import core as authz  # late: only the pages that show holds load the rules
    from opsbot.release.deploy import DEPLOY

    return authz, authz.load_holds(config, DEPLOY, authz.Target(grant.project, grant.target))


def show(token: str, visit: Visit, via: str = "") -> Page:
    """The facts and the sign-in of the chat the link came from (`via=feishu` from a Feishu card), else DingTalk's;
    while the environment is held, who or what holds it."""
    try:
        grant = _unused(links.read(token))
        config = store.load()
        env = _environment(config, grant)
        authz, holds = _holds(config, grant)
        texts = [both(authz.lock_text(lock, "zh"), authz.lock_text(lock, "en")) for lock in holds.locks]
        texts += [
            both(authz.freeze_text(p, e, w, "zh"), authz.freeze_text(p, e, w, "en")) for p, e, w in holds.frozen()
        ]
        locked_only = bool(holds.locks) and not holds.frozen()
        feishu = _feishu_login_url(visit.base, token) if via == "feishu" else None
        return 200, pages.show(
            grant, _login_url(visit.base, token), env.approvals > 0, tuple(texts), locked_only, feishu
        )
    except Refused as exc:
        return exc.status, pages.refused(exc.status, exc.reason)


def login(query: dict[str, str], visit: Visit) -> Page:
    """DingTalk (`authCode`) or Feishu (`code`) came back with a code for the token in `state`: who is it, and may
    they? The redirect is always this page of this API, never a URL from the request."""
    token = query.get("state", "")
    try:
        grant = _unused(links.read(token))
        config = store.load()
        env = _environment(config, grant)
        login_url = _login_url(visit.base, token)
        feishu_url = _feishu_login_url(visit.base, token)
    except Refused as exc:
        return exc.status, pages.refused(exc.status, exc.reason)
    if "code" in query and "authCode" not in query and feishu_url is not None:
        try:
            found = feishu_login.identify(query["code"], f"{visit.base}/actions/login")
            signed = tickets.signed_in(feishu_login.USER_PREFIX + found.open_id, found.name)
        except dingtalk_login.LoginFailed as exc:
            return exc.status, pages.refused(exc.status, exc.reason, feishu_url if exc.status == 401 else None)
        except tickets.TicketRefused as exc:
            return 403, pages.refused(403, str(exc))
        return _preview(config, grant, token, signed)
    if login_url is None:
        return 503, pages.show(grant, None, env.approvals > 0)
    code = query.get("authCode", "")
    if not code:
        return 400, pages.refused(
            400,
            both(
                "钉钉没有完成登录：请在钉钉里打开这个链接（点群消息里的按钮），并确认登录。",
                "DingTalk did not sign you in: open this link inside DingTalk (tap the button in the group's "
                "message) and confirm the sign-in.",
            ),
            login_url,
        )
    try:
        user = dingtalk_login.identify(code)
        if user.user_id.startswith(feishu_login.USER_PREFIX):  # a staff id an admin set to pass for a Feishu user
            raise tickets.TicketRefused(
                both("钉钉返回的用户 ID 无法使用。", "DingTalk returned a user id opsbot cannot use.")
            )
        signed = tickets.signed_in(user.user_id, user.nick)
    except dingtalk_login.LoginFailed as exc:
        return exc.status, pages.refused(exc.status, exc.reason, login_url if exc.status == 401 else None)
    except tickets.TicketRefused as exc:
        return 403, pages.refused(403, str(exc))
    return _preview(config, grant, token, signed)


def _preview(config: Config, grant: ReleaseGrant, token: str, signed: tickets.SignedIn) -> Page:
    """The signed-in person's page: "you are <name>; deploy?" with the ticket, or why not."""
    # Only this page previews a decision: the actions function's cold start does not load the release rules.
    from opsbot.authz import core as authz
    from opsbot.release.deploy import DEPLOY  # the chat `deploy` verb: one rule for chat and links

    actor = release_clicker(config, *_clicker(signed), signed.nick)
    # A preview: the worker asks the core again when the release runs, against Drone's build.
    build = authz.Build(grant.build, grant.event, grant.branch, "success", grant.commit)
    target, arguments = authz.Target(grant.project, grant.target, build), {"build": grant.build}
    holds = authz.load_holds(config, DEPLOY, target)
    decision = authz.decide(config, actor, DEPLOY, target, arguments, holds=holds)
    if decision.denied:  # the page's reader may read either language: the core's reason in both
        said = (
            authz.decide(config, actor, DEPLOY, target, arguments, language, holds).reason for language in ("zh", "en")
        )
        return 403, pages.not_allowed(grant, actor.name, both(*said), decision.rule in ("lock", "freeze"))
    fields = signed.form(grant.nonce, links.signing_key())
    return 200, pages.confirm(grant, token, actor.name, fields, decision.outcome == authz.NEEDS_APPROVAL)


def read_form(content_type: str, body: str | None, is_base64: bool) -> dict[str, str]:
    """A small `application/x-www-form-urlencoded` body as one value per field, or Refused(4xx). No body
    at all is an empty form, whatever its type: it carries no sign-in, which the caller answers with 401."""
    if not body:
        return {}
    if (content_type or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise Refused(
            415,
            both(
                "这个页面只接受表单（application/x-www-form-urlencoded）。",
                "This page takes a form (application/x-www-form-urlencoded) and nothing else.",
            ),
        )
    text = body or ""
    if len(text) > MAX_FORM_BYTES * 2:
        raise Refused(
            413, both("表单远大于确认页面发送的内容。", "This form is far larger than the confirmation page sends.")
        )
    try:
        raw = base64.b64decode(text, validate=True) if is_base64 else text.encode("utf-8")
        if len(raw) > MAX_FORM_BYTES:
            raise Refused(
                413, both("表单大于确认页面发送的内容。", "This form is larger than the confirmation page sends.")
            )
        pairs = parse_qsl(
            raw.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=8,
            encoding="utf-8",
            errors="strict",
        )
    except (binascii.Error, UnicodeError, ValueError):
        raise Refused(400, both("表单格式不对。", "This form is malformed.")) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name not in tickets.FORM_FIELDS:
            raise Refused(
                400,
                both(
                    f"表单里有确认页面不会发送的字段 {name[:20]!r}。",
                    f"This form has a field {name[:20]!r} that the confirmation page does not send.",
                ),
            )
        if name in form:
            raise Refused(400, both(f"表单里的 {name[:20]!r} 出现了两次。", f"This form gives {name[:20]!r} twice."))
        form[name] = value
    return form


def confirm(token: str, content_type: str, body: str | None, is_base64: bool, visit: Visit) -> Page:
    """Queue the release once, for the person the form's ticket names."""
    try:
        nonce = links.verify(token)  # nothing is read for a token we never signed
        form = read_form(content_type, body, is_base64)
        grant = _unused(links.grant(nonce))
        config = store.load()
        env = _environment(config, grant)
        login_url = _login_url(visit.base, token)
    except Refused as exc:
        return exc.status, pages.refused(exc.status, exc.reason)
    try:
        signed = tickets.check(grant.nonce, form, links.signing_key())
    except tickets.TicketRefused as exc:
        return 401, pages.refused(401, str(exc), login_url)
    via, handle = _clicker(signed)
    actor = release_clicker(config, via, handle, signed.nick)
    now = int(time.time())
    try:
        outcome = accept(
            SOURCE,
            grant.nonce,
            kinds.RELEASE_LINK,
            {
                "grant": asdict(grant),
                "actor": {"via": via, "handle": handle, "name": signed.nick},
                "clicked_at": now,
                "source_ip": visit.source_ip,
                "user_agent": visit.user_agent[:200],
            },
            ttl_seconds=max(60, grant.expires - now) + USED_GRACE_SECONDS,
        )
    except InProgress:  # an earlier click stopped before its release was queued, a moment ago
        return 503, pages.refused(
            503,
            both(
                "之前的一次点击正在提交这个发布，请一分钟后再看。",
                "This release is being queued by an earlier click; look again in a minute.",
            ),
        )
    if outcome.status == "duplicate":
        return 410, pages.refused(410, USED)
    return 202, pages.submitted(grant, actor.name, env.approvals > 0)
