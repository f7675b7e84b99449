"""Talk to the bot on the local stack as a configured person, without DingTalk.

    python -m local.chat "status shop-api" [--as alice] [--channel dingtalk|feishu|slack] [--port 3000] [--wait 20]

It asks the stack on --port (PORT) where its sink and config are (local/ports.py), then:

DingTalk (the default): it builds the callback DingTalk would send for an @opsbot message from that person (their
staff id, a fresh msgId and a session webhook on the local sink), signs it with the local app secret, posts it and
prints the bot's answer. For an act (the answer is the acknowledgement) it prints what the bot posts until the act's
result has arrived, at most --wait seconds; later news (a rollout's end) shows in the `make run` terminal.

Feishu: the person (their `feishu_open_id`) writes to the bot in the fake Feishu, which keeps the message and
hands back the im.message.receive_v1 callback; that is posted with the local verification token, and the bot's
replies (read from Feishu's API by the worker, answered through it) are printed until one that is not an
acknowledgement has arrived.
Slack: the person (their `slack_user_id`) @-mentions the bot in the fake Slack's #shop-backend (C0SHOP), which hands
back the `app_mention` event_callback; that is signed with the local signing secret (v0) and posted to
/webhooks/slack/events, as Slack would, and what the bot posts into the message's thread (`chat.postMessage`, to
the fake Web API) is printed until one that is not an acknowledgement has arrived.
`--as stranger` sends as someone who is not in the config.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from local.fake_dingtalk import SESSION_PREFIX, render_for_terminal  # noqa: E402
from local.ports import running_or_told  # noqa: E402
from local.signing import sign_for  # noqa: E402
from local.stack import LOCAL_SECRETS  # noqa: E402


def callback(text: str, person: dict | None, sink: str, conversation: str = "cid-local-shop-backend") -> dict:
    """The body of a DingTalk robot callback (HTTP mode) for `text` sent by `person`."""
    now = int(time.time() * 1000)
    person = person or {"id": "stranger", "name": "路人甲"}
    return {
        "msgtype": "text",
        "text": {"content": f" {text}"},
        "msgId": f"msg{uuid.uuid4().hex}",
        "createAt": now,
        "conversationType": "2",
        "conversationId": conversation,
        "conversationTitle": "商城后端研发群 (local)",
        "senderId": f"$:LWCP_v1:${person['id']}",
        "senderNick": person.get("name", person["id"]),
        "senderStaffId": person.get("dingtalk_user_id", ""),
        "senderCorpId": "dinglocal",
        "isAdmin": False,
        "chatbotUserId": "$:LWCP_v1:$opsbot-local",
        "chatbotCorpId": "dinglocal",
        "robotCode": "dinglocalrobot",
        "isInAtList": True,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$opsbot-local"}],
        "sessionWebhook": f"{sink}/robot/sendBySession?session={SESSION_PREFIX}{uuid.uuid4().hex}",
        "sessionWebhookExpiredTime": now + 90 * 60 * 1000,
    }


def find_person(config_dir: Path, person_id: str) -> dict | None:
    people = yaml.safe_load((config_dir / "opsbot.yaml").read_text(encoding="utf-8")).get("people") or []
    return next((p for p in people if p.get("id") == person_id), None)


def text_of(message: dict) -> str:
    """The text of a DingTalk message body (markdown, text or actionCard)."""
    part = message.get(message.get("msgtype") or "") or {}
    return str(part.get("text") or part.get("content") or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("message")
    parser.add_argument("--as", dest="person", default="alice", help="a person id from the config, or stranger")
    parser.add_argument(
        "--channel", default="dingtalk", choices=("dingtalk", "feishu", "slack"), help="where the person writes"
    )
    parser.add_argument("--config", default="", help="the config directory (default: the one the stack loaded)")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    parser.add_argument("--wait", type=float, default=20.0, help="at most this many seconds for an act's result")
    args = parser.parse_args(argv)

    stack = running_or_told(args.port)
    if stack is None:
        return 2
    args.config = args.config or stack["config"]
    person = None if args.person == "stranger" else find_person(Path(args.config), args.person)
    if args.person != "stranger" and person is None:
        print(f"no person '{args.person}' in {args.config}/opsbot.yaml (or use --as stranger)", file=sys.stderr)
        return 2
    sink, api = stack["urls"]["sink"], stack["urls"]["api"]
    from opsbot.chat.ingress import acknowledgements

    acks = acknowledgements(args.message)
    if args.channel == "feishu":
        return feishu(args, person, sink, api, acks)
    if args.channel == "slack":
        return slack(args, person, sink, api, acks)
    body = callback(args.message, person, sink)
    session = "session:" + body["sessionWebhook"].rsplit("session=", 1)[1]
    raw = json.dumps(body, ensure_ascii=False).encode()
    seen = len(requests.get(f"{sink}/_control/messages", timeout=5).json()["messages"])
    response = requests.post(
        f"{api}/webhooks/dingtalk",
        data=raw,
        timeout=15,
        headers={"Content-Type": "application/json", **sign_for("/webhooks/dingtalk", raw)},
    )
    print(f"you ({args.person}): {args.message}")
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return 1
    if answer.get("msgtype") != "empty":
        print(render_for_terminal("opsbot (reply)", answer))
    if answer.get("msgtype") != "empty" and text_of(answer) not in acks:
        return 0  # the answer itself: nothing follows
    arrived = watch(sink, seen, args.wait, until=lambda posted: posted["access_token"] == session)
    if not arrived:
        print(f"(no result within {args.wait:g} s: it will show in the `make run` terminal)")
    return 0


def feishu(args, person: dict | None, sink: str, api: str, acks: set[str]) -> int:
    """Write to the Feishu app bot as `person` and print its replies, until one that is not an acknowledgement."""
    open_id = (person or {}).get("feishu_open_id") or "ou_stranger0local"
    if person is not None and not person.get("feishu_open_id"):
        print(f"{args.person} has no feishu_open_id in {args.config}/opsbot.yaml; Feishu will not know them")
    seen = len(requests.get(f"{sink}/_control/feishu/replies", timeout=5).json()["replies"])
    said = requests.post(f"{sink}/_control/feishu/say", json={"open_id": open_id, "text": args.message}, timeout=5)
    event = said.json()["event"]
    event["header"]["token"] = LOCAL_SECRETS["FEISHU_VERIFICATION_TOKEN_PARAM"]
    response = requests.post(f"{api}/webhooks/feishu", json=event, timeout=15)
    print(f"you ({args.person}, Feishu): {args.message}")
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return 1
    return print_replies(
        lambda: requests.get(f"{sink}/_control/feishu/replies", timeout=5).json()["replies"],
        seen,
        render_feishu,
        feishu_text,
        acks,
        args.wait,
    )


def slack(args, person: dict | None, sink: str, api: str, acks: set[str]) -> int:
    """@-mention the Slack app's bot as `person` and print what it posts in the thread, until one that is not an
    acknowledgement."""
    user = (person or {}).get("slack_user_id") or "U0STRANGER"
    if person is not None and not person.get("slack_user_id"):
        print(f"{args.person} has no slack_user_id in {args.config}/opsbot.yaml; Slack will not know them")
    seen = len(requests.get(f"{sink}/_control/slack/posted", timeout=5).json()["posted"])
    said = requests.post(f"{sink}/_control/slack/say", json={"user": user, "text": args.message}, timeout=5)
    body = said.json()["body"].encode()
    headers = {"Content-Type": "application/json", **sign_for("/webhooks/slack/events", body)}
    response = requests.post(f"{api}/webhooks/slack/events", data=body, headers=headers, timeout=15)
    print(f"you ({args.person}, Slack): {args.message}")
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return 1
    return print_replies(
        lambda: requests.get(f"{sink}/_control/slack/posted", timeout=5).json()["posted"],
        seen,
        render_slack,
        slack_text,
        acks,
        args.wait,
    )


def print_replies(fetch, seen: int, render, text, acks: set[str], wait: float) -> int:
    """Print the replies `fetch()` lists after the first `seen`, until one whose `text` is not an acknowledgement
    (the answer itself), at most `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        replies = fetch()
        for reply in replies[seen:]:
            print(render(reply))
            if text(reply) not in acks:
                return 0
        seen = max(seen, len(replies))
        time.sleep(POLL_SECONDS)
    print(f"(no answer within {wait:g} s: it will show in the `make run` terminal)")
    return 0


def render_slack(message: dict) -> str:
    return f"── opsbot (Slack, in the thread): {message.get('text', '')}\n{slack_text(message)}"


def slack_text(message: dict) -> str:
    """The mrkdwn of a Slack message's sections."""
    return "\n".join(b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section")


def feishu_text(reply: dict) -> str:
    """The body text of a Feishu reply (a text message, or an interactive card's markdown)."""
    content = reply["content"]
    if reply["msg_type"] != "interactive":
        return str(content.get("text", ""))
    return "\n".join(e["text"]["content"] for e in content.get("elements") or [] if e.get("tag") == "div")


def render_feishu(reply: dict) -> str:
    content = reply["content"]
    if reply["msg_type"] != "interactive":
        return f"opsbot (Feishu reply): {content.get('text', '')}"
    title = ((content.get("header") or {}).get("title") or {}).get("content", "")
    parts = [f"── opsbot (Feishu reply): {title}"]
    for element in content.get("elements") or []:
        if element.get("tag") == "div":
            parts.append(element["text"]["content"])
        for action in element.get("actions") or []:
            parts.append(f"[{action['text']['content']}] {action.get('url', '')}")
    return "\n".join(parts)


POLL_SECONDS = 0.2
SETTLE_SECONDS = 0.6  # what is posted in the same breath as the awaited message (an approval and its deploy)


def watch(sink: str, seen: int, seconds: float, until=lambda posted: True) -> bool:
    """Print what the bot posts to the sink after the first `seen` messages, until one for which `until(posted)` is
    true has arrived (and whatever follows within SETTLE_SECONDS), at most `seconds`. Whether it arrived."""
    deadline = time.monotonic() + seconds
    arrived = False
    while time.monotonic() < deadline:
        messages = requests.get(f"{sink}/_control/messages", timeout=5).json()["messages"]
        for posted in messages[seen:]:
            print(render_for_terminal(posted["robot"], posted["message"]))
            if not arrived and until(posted):
                arrived, deadline = True, min(deadline, time.monotonic() + SETTLE_SECONDS)
        seen = max(seen, len(messages))
        time.sleep(POLL_SECONDS)
    return arrived


if __name__ == "__main__":
    sys.exit(main())
