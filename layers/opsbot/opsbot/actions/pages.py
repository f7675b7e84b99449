"""The release link's pages: small, readable on a phone and inside DingTalk's browser, no script at all."""
from __future__ import annotations

from html import escape

from opsbot.actions.tokens import ReleaseGrant

# The token is in the URL: no referrer may carry it elsewhere, and no cache may keep the page.
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}

_STYLE = """body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px 16px;
background:#f5f6f7;color:#1f2329}main{max-width:480px;margin:0 auto;background:#fff;border-radius:12px;padding:20px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}h1{font-size:20px;margin:0 0 16px}dl{margin:0 0 20px}dt{color:#646a73;
font-size:13px;margin-top:10px}dd{margin:2px 0 0;font-size:16px;word-break:break-all}code{font-size:14px}
button{width:100%;padding:14px;font-size:17px;border:0;border-radius:8px;background:#3370ff;color:#fff}
.warn{background:#fff7e8;border-radius:8px;padding:10px 12px;margin-bottom:16px}p{line-height:1.6}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>")


def _facts(grant: ReleaseGrant) -> str:
    rows = [("项目 Project", grant.project), ("构建 Build", f"#{grant.build}"),
            ("提交 Commit", f"{grant.commit[:8]} {grant.title}"), ("分支 Branch", grant.branch),
            ("目标环境 Target", grant.target)]
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows) + "</dl>"


def confirm(grant: ReleaseGrant, needs_approval: bool) -> str:
    note = ('<p class="warn">该环境需要审批：确认后会在群里发起审批请求，由另一位同事批准后才会发布。<br>'
            "This environment needs approval: confirming opens a request in the group.</p>" if needs_approval else "")
    return _page(f"发布 {grant.project} #{grant.build} 到 {grant.target}",
                 f"<h1>🚀 发布到 {escape(grant.target)}</h1>{_facts(grant)}{note}"
                 f'<form method="post"><button type="submit">确认发布 Confirm</button></form>')


def submitted(grant: ReleaseGrant, needs_approval: bool) -> str:
    what = ("审批请求已提交，结果会发到群里。 The approval request is on its way to the group." if needs_approval
            else "已提交发布，结果会发到群里。 The deploy is on its way; the group hears the result.")
    return _page("已提交 Submitted", f"<h1>✅ 已提交 Submitted</h1>{_facts(grant)}<p>{escape(what)}</p>")


def refused(status: int, reason: str) -> str:
    heading = {400: "链接无效 Invalid link", 403: "链接无效 Invalid link", 404: "链接无效 Invalid link",
               410: "链接已失效 Link no longer valid"}.get(status, "暂时无法处理 Try again later")
    return _page(heading, f"<h1>⛔ {escape(heading)}</h1><p>{escape(reason)}</p>"
                          "<p>没有执行任何操作。 Nothing was changed.</p>")
