"""The release link's pages: small, readable on a phone and inside DingTalk's browser, no script at all, in both
languages (who opens a link is not known until DingTalk says).

Everything shown is escaped: a commit title, a branch, a DingTalk nick and DingTalk's own error text are all
someone else's words. A reason (the authorization core's, a refusal's) is opsbot's own small markdown (`code`,
**bold**), shown as HTML, never as raw marks. The link to DingTalk's login is a plain `<a href>`.
"""

from __future__ import annotations

from html import escape

from opsbot.channels.markdown import html_body
from opsbot.release.links import TITLE_CHARS, ReleaseGrant

# The token is in the URL: no referrer may carry it elsewhere, and no cache may keep the page.
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
}

# Compact enough that on a 375 px phone the button is on the first screen, even with an approval note and a
# long commit title: the facts are a two-column grid, and an explanation of the sign-in sits below the button.
_STYLE = """body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:12px;
background:#f5f6f7;color:#1f2329;overflow-wrap:break-word}main{max-width:480px;margin:0 auto;background:#fff;
border-radius:12px;padding:16px;box-shadow:0 1px 4px rgba(0,0,0,.08)}h1{font-size:19px;margin:0 0 12px}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:6px 12px;margin:0 0 14px}
dt{color:#646a73;font-size:13px;line-height:22px}dd{margin:0;font-size:15px;line-height:22px;min-width:0}
code{font-size:14px}p{line-height:1.6;margin:10px 0}.note{color:#646a73;font-size:13px;line-height:1.5}
button,a.button{display:block;box-sizing:border-box;width:100%;padding:13px;font-size:17px;border:0;border-radius:8px;
background:#3370ff;color:#fff;text-align:center;text-decoration:none}
.warn{background:#fff7e8;border-radius:8px;padding:8px 12px;font-size:14px;line-height:1.5}
button:disabled{background:#c9cdd4;color:#646a73}.hold{background:#f2f3f5;border-radius:8px;padding:10px 12px}"""

NOTHING_CHANGED = "<p>没有执行任何操作。 Nothing was changed.</p>"


def _reason(reason: str) -> str:
    """A reason in opsbot's markdown (i18n.both: Chinese, then English, a line each) as escaped HTML."""
    return html_body(reason)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def _facts(grant: ReleaseGrant) -> str:
    rows = [
        ("项目 Project", grant.project),
        ("构建 Build", f"#{grant.build}"),
        ("提交 Commit", f"{grant.commit[:8]} {grant.title}{'…' if len(grant.title) >= TITLE_CHARS else ''}"),
        ("分支 Branch", grant.branch),
        ("目标环境 Target", grant.target),
    ]
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows) + "</dl>"


def _approval_note(needs_approval: bool) -> str:
    if not needs_approval:
        return ""
    return (
        '<p class="warn">该环境需要审批：确认后会在群里以你的名义发起审批请求，由另一位同事批准后才会发布。<br>'
        "This environment needs approval: confirming opens a request in your name in the group, and someone "
        "else must approve it.</p>"
    )


def _login_button(login_url: str, again: bool = False) -> str:
    label = "重新用钉钉登录 Sign in with DingTalk again" if again else "用钉钉登录并确认 Sign in with DingTalk"
    return f'<p><a class="button" href="{escape(login_url, quote=True)}">{escape(label)}</a></p>'


def held_button(holds: list[str], holder_may: bool) -> str:
    """The release button greyed out, with what holds the environment (a lock's holder and reason, a freeze)."""
    notes = "".join(f'<p class="hold">🔒 {escape(text)}</p>' for text in holds)
    who = "（锁的持有人仍可登录发布 The lock's holder may still sign in and release.）" if holder_may else ""
    return f'{notes}<p><button type="button" disabled>暂不能发布 Release held{escape(who)}</button></p>'


def _feishu_button(feishu_url: str) -> str:
    return (
        f'<p><a class="button" href="{escape(feishu_url, quote=True)}">用飞书登录并确认 Sign in with Feishu</a></p>'
        '<p class="note">确认前需要用飞书登录，以确认你的身份。 Feishu signs you in first, so opsbot knows who '
        "asks.</p>"
    )


def show(
    grant: ReleaseGrant,
    login_url: str | None,
    needs_approval: bool,
    holds: tuple = (),
    locked_only: bool = False,
    feishu_url: str | None = None,
) -> str:
    """What the link would do, and the way on: DingTalk's login, or Feishu's for a link from a Feishu card; while
    the environment is held, the button greyed out with who holds it and why (a lock's holder may still sign in:
    the lock does not hold them)."""
    if holds:
        sign_in = _feishu_button(feishu_url) if feishu_url else _login_button(login_url) if login_url else ""
        way_on = held_button(list(holds), locked_only) + (sign_in if locked_only else "")
    elif feishu_url:  # a link from a Feishu card: Feishu's sign-in
        way_on = _feishu_button(feishu_url)
    elif login_url:
        way_on = _login_button(login_url) + (
            '<p class="note">确认前需要用钉钉登录，以确认你的身份。 DingTalk signs you in first, so opsbot knows '
            "who asks.</p>"
        )
    else:
        way_on = (
            '<p class="warn">发布链接需要钉钉登录，但 opsbot 还没有配置钉钉应用的 AppKey。请平台组设置部署参数 '
            "<code>DingtalkAppKey</code>（环境变量 <code>DINGTALK_APP_KEY</code>）。在此之前，请在群里使用 "
            "<code>@opsbot deploy</code>。<br>Release links need DingTalk login, and opsbot has no DingTalk "
            "AppKey yet: the platform team sets the stack parameter <code>DingtalkAppKey</code> "
            "(<code>DINGTALK_APP_KEY</code>). Until then, use <code>@opsbot deploy</code> in the group.</p>"
        )
    return _page(
        f"发布 {grant.project} #{grant.build} 到 {grant.target}",
        f"<h1>🚀 发布到 {escape(grant.target)}</h1>{_facts(grant)}{_approval_note(needs_approval)}{way_on}",
    )


def confirm(grant: ReleaseGrant, token: str, name: str, fields: dict[str, str], needs_approval: bool) -> str:
    """ "You are <name>; deploy …?" with the form whose ticket says so."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">'
        for k, v in fields.items()
    )
    question = (
        f"<p>你是 <b>{escape(name)}</b>。确认把 {escape(grant.project)} #{grant.build} 发布到 "
        f"{escape(grant.target)}？<br>You are <b>{escape(name)}</b>; deploy {escape(grant.project)} "
        f"#{grant.build} to {escape(grant.target)}?</p>"
    )
    # Relative to /actions/login, so it stays right behind any base path.
    return _page(
        f"确认发布 {grant.project} #{grant.build} 到 {grant.target}",
        f"<h1>🚀 发布到 {escape(grant.target)}</h1>{_facts(grant)}{question}{_approval_note(needs_approval)}"
        f'<form method="post" action="./{escape(token, quote=True)}">{hidden}'
        f'<button type="submit">确认发布 Confirm</button></form>',
    )


def submitted(grant: ReleaseGrant, name: str, needs_approval: bool) -> str:
    what = (
        "审批请求已提交，结果会发到群里。 The approval request is on its way to the group."
        if needs_approval
        else "已提交发布，结果会发到群里。 The deploy is on its way; the group hears the result."
    )
    return _page(
        "已提交 Submitted", f"<h1>✅ 已提交 Submitted</h1>{_facts(grant)}<p>{escape(name)}：{escape(what)}</p>"
    )


def not_allowed(grant: ReleaseGrant, name: str, reason: str, held: bool = False) -> str:
    """The core's answer for this person, before they confirm anything; a lock or freeze greys the button out."""
    body = held_button(reason.split("\n"), False) if held else _reason(reason)
    return _page(
        "不能发布 Not allowed",
        f"<h1>⛔ 不能发布 Not allowed</h1>{_facts(grant)}<p>你是 <b>{escape(name)}</b>。 You are "
        f"<b>{escape(name)}</b>.</p>{body}{NOTHING_CHANGED}",
    )


def refused(status: int, reason: str, login_url: str | None = None) -> str:
    heading = {
        400: "链接无效 Invalid link",
        401: "需要登录 Sign-in needed",
        403: "不能继续 Not allowed",
        404: "链接无效 Invalid link",
        410: "链接已失效 Link no longer valid",
        413: "请求无效 Invalid request",
        415: "请求无效 Invalid request",
    }.get(status, "暂时无法处理 Try again later")
    again = _login_button(login_url, again=True) if login_url else ""
    return _page(heading, f"<h1>⛔ {escape(heading)}</h1>{_reason(reason)}{NOTHING_CHANGED}{again}")
