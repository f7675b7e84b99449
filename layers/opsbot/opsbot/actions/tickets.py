"""Login tickets: how the confirmation page tells the POST who DingTalk signed in.

`GET /actions/login` exchanges DingTalk's code for the person, and its form carries a ticket:
HMAC(signing key, `login|<nonce>|<userid>|<expires>|<nick>`), bound to one link's nonce and one DingTalk user,
valid for ten minutes. A GET never changes anything, so the POST needs this ticket, and a ticket for another
link, another person or another name is worthless. The nick is covered too, so that nobody can put another
name on a refusal that the group reads.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from opsbot.i18n import both
from opsbot.release.links import mac

TICKET_SECONDS = 600
MAX_FIELD_CHARS = 64
FORM_FIELDS = ("user", "nick", "expires", "ticket")  # the confirmation form's hidden fields, and all it sends


class TicketRefused(Exception):
    """No ticket, or one that does not hold for this link; the message says what to do."""


@dataclass(frozen=True)
class SignedIn:
    user_id: str  # DingTalk's userid (the staff id, people[].dingtalk_user_id)
    nick: str
    expires: int

    def form(self, nonce: str, key: bytes) -> dict[str, str]:
        """The hidden fields of the confirmation form."""
        ticket = mac(_message(nonce, self.user_id, self.expires, self.nick), key)
        return dict(zip(FORM_FIELDS, (self.user_id, self.nick, str(self.expires), ticket), strict=True))


def _message(nonce: str, user_id: str, expires: int, nick: str) -> str:
    # The user id never holds "|" (checked on the way in) and the nick comes last, so the fields cannot shift.
    return f"login|{nonce}|{user_id}|{expires}|{nick}"


def _usable(user_id: str, nick: str) -> bool:
    return (
        0 < len(user_id) <= MAX_FIELD_CHARS
        and "|" not in user_id
        and user_id.isprintable()
        and len(nick) <= MAX_FIELD_CHARS
        and nick.isprintable()
    )


def signed_in(user_id: str, nick: str, now: float | None = None) -> SignedIn:
    """A fresh ticket's facts for someone DingTalk just vouched for."""
    nick = "".join(c for c in nick if c.isprintable())[:MAX_FIELD_CHARS]
    if not _usable(user_id, nick):
        raise TicketRefused(both("钉钉返回的用户 ID 无法使用。", "DingTalk returned a user id opsbot cannot use."))
    return SignedIn(user_id, nick, int((now or time.time()) + TICKET_SECONDS))


def check(nonce: str, form: dict[str, str], key: bytes, now: float | None = None) -> SignedIn:
    """Who the form's ticket says signed in for this link, or TicketRefused."""
    user_id, nick, expires, ticket = (form.get(name, "") for name in FORM_FIELDS)
    if not ticket:
        raise TicketRefused(
            both(
                "确认发布前需要先用钉钉登录。没有提交任何操作。",
                "Confirming a release needs you to sign in with DingTalk first. Nothing was queued.",
            )
        )
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12) or not _usable(user_id, nick):
        raise TicketRefused(
            both(
                "这个页面上的登录信息已损坏，请重新用钉钉登录。没有提交任何操作。",
                "The sign-in on this page is damaged; sign in with DingTalk again. Nothing was queued.",
            )
        )
    expected = mac(_message(nonce, user_id, int(expires), nick), key)
    if not hmac.compare_digest(expected.encode(), ticket.encode("utf-8", "replace")):
        raise TicketRefused(
            both(
                "这个页面上的登录对这个链接无效，请重新用钉钉登录。没有提交任何操作。",
                "The sign-in on this page is not valid for this link; sign in with DingTalk again. Nothing was queued.",
            )
        )
    if int(expires) < (now or time.time()):
        raise TicketRefused(
            both(
                "登录已过期（有效 10 分钟），请重新用钉钉登录。没有提交任何操作。",
                "Your sign-in has expired (it lasts 10 minutes); sign in with DingTalk again. Nothing was queued.",
            )
        )
    return SignedIn(user_id, nick, int(expires))
