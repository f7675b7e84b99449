"""Helpers for the chat tests: DingTalk callbacks from the example's people, asking the bot, reading its answers,
the audit log and the queue."""

from __future__ import annotations

import itertools
import json
import time
import uuid

# person id -> (senderStaffId, senderNick); anyone else is a sender opsbot does not know
PEOPLE = {
    "alice": ("alice.wang", "Alice Wang"),
    "bob": ("bob.li", "Bob Li"),
    "carol": ("carol.zhang", "Carol Zhang"),
    "xiaoming": ("manager4321", "王小明"),
    "dave": ("dave.chen", "Dave Chen"),
    "lei": ("lei.zhao", "Lei Zhao"),
    "stranger": ("", "路人甲"),
}
_created = itertools.count(1)


def callback(
    text: str,
    who: str = "alice",
    msg_id: str | None = None,
    session_webhook: str = "",
    session_expires_ms: int | None = None,
    created_ms: int | None = None,
    **extra,
) -> dict:
    """The body DingTalk posts for an @opsbot message `text` from `who` (HTTP mode)."""
    now = int(time.time() * 1000)
    staff_id, nick = PEOPLE.get(who, ("", who))
    message = {
        "msgtype": "text",
        "text": {"content": f" {text}"},
        "msgId": msg_id or f"msg{uuid.uuid4().hex}",
        # distinct, increasing times, so that the audit log's order is the order the test sent them in
        "createAt": created_ms or now + next(_created),
        "conversationType": "2",
        "conversationId": "cid-shop-backend",
        "conversationTitle": "商城后端研发群",
        "senderId": f"$:LWCP_v1:${who}",
        "senderNick": nick,
        "senderStaffId": staff_id,
        "senderCorpId": "dingcorp",
        "chatbotUserId": "$:LWCP_v1:$opsbot",
        "chatbotCorpId": "dingcorp",
        "isAdmin": False,
        "isInAtList": True,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$opsbot"}],
    }
    if session_webhook:
        message["sessionWebhook"] = session_webhook
        expires = now + 90 * 60 * 1000 if session_expires_ms is None else session_expires_ms
        message["sessionWebhookExpiredTime"] = expires
    message.update(extra)
    return message


def ask(text: str, who: str = "alice", **kwargs) -> dict:
    """The callback response body for `text` from `who`, through chat.ingress as the DingTalk function calls it."""
    from opsbot.chat.inbound.dingtalk import answer_callback

    return answer_callback(callback(text, who, **kwargs))


def text_of(reply: dict) -> str:
    assert reply["msgtype"] == "markdown", reply
    return reply["markdown"]["text"]


def jobs_on_queue(aws) -> list[dict]:
    return [json.loads(m["Body"]) for m in aws.receive()]


def audit_log(project: str = "") -> list:
    from opsbot import audit

    return audit.recent(project, 50)
