"""Talk to the bot on the local stack as a configured person, without DingTalk.

    python -m local.chat "status shop-api" [--as alice] [--channel dingtalk|feishu] [--port 3000] [--sink-port 3001]

DingTalk (the default): it builds the callback DingTalk would send for an @opsbot message from that person (their
staff id, a fresh msgId and a session webhook on the local sink), signs it with the local app secret, posts it,
prints the bot's answer, then prints whatever the bot posts to the sink in the next seconds (results of acts).

Feishu: the person (their `feishu_open_id`) writes to the bot in the fake Feishu, which keeps the message and
hands back the im.message.receive_v1 callback; that is posted with the local verification token, and the bot's
replies (read from Feishu's API by the worker, answered through it) are printed as they arrive.
`--as stranger` sends as someone who is not in the config.
"""

from __future__ import annotations

import argparse
import json
import os
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("message")
    parser.add_argument("--as", dest="person", default="alice", help="a person id from the config, or stranger")
    parser.add_argument("--channel", default="dingtalk", choices=("dingtalk", "feishu"), help="where the person writes")
    parser.add_argument("--config", default=str(ROOT / "config" / "example"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)))
    parser.add_argument("--sink-port", type=int, default=int(os.environ.get("SINK_PORT", 3001)))
    parser.add_argument("--wait", type=float, default=6.0, help="seconds to watch the sink for posted results")
    args = parser.parse_args(argv)

    person = None if args.person == "stranger" else find_person(Path(args.config), args.person)
    if args.person != "stranger" and person is None:
        print(f"no person '{args.person}' in {args.config}/opsbot.yaml (or use --as stranger)", file=sys.stderr)
        return 2
    sink = f"http://127.0.0.1:{args.sink_port}"
    if args.channel == "feishu":
        return feishu(args, person, sink)
    body = json.dumps(callback(args.message, person, sink), ensure_ascii=False).encode()
    api = f"http://127.0.0.1:{args.port}/webhooks/dingtalk"
    try:
        before = len(requests.get(f"{sink}/_control/messages", timeout=5).json()["messages"])
        response = requests.post(
            api,
            data=body,
            timeout=15,
            headers={"Content-Type": "application/json", **sign_for("/webhooks/dingtalk", body)},
        )
    except requests.ConnectionError:
        print(f"the local stack is not running on port {args.port}: start it with `make run`", file=sys.stderr)
        return 2
    print(f"you ({args.person}): {args.message}")
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return 1
    if answer.get("msgtype") != "empty":
        print(render_for_terminal("opsbot (reply)", answer))
    watch(sink, before, args.wait)
    return 0


def feishu(args, person: dict | None, sink: str) -> int:
    """Write to the Feishu app bot as `person` and print its replies."""
    open_id = (person or {}).get("feishu_open_id") or "ou_stranger0local"
    if person is not None and not person.get("feishu_open_id"):
        print(f"{args.person} has no feishu_open_id in {args.config}/opsbot.yaml; Feishu will not know them")
    try:
        seen = len(requests.get(f"{sink}/_control/feishu/replies", timeout=5).json()["replies"])
        said = requests.post(f"{sink}/_control/feishu/say", json={"open_id": open_id, "text": args.message}, timeout=5)
        event = said.json()["event"]
        event["header"]["token"] = LOCAL_SECRETS["FEISHU_VERIFICATION_TOKEN_PARAM"]
        response = requests.post(f"http://127.0.0.1:{args.port}/webhooks/feishu", json=event, timeout=15)
    except requests.ConnectionError:
        print(f"the local stack is not running on port {args.port}: start it with `make run`", file=sys.stderr)
        return 2
    print(f"you ({args.person}, Feishu): {args.message}")
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return 1
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        replies = requests.get(f"{sink}/_control/feishu/replies", timeout=5).json()["replies"]
        for reply in replies[seen:]:
            print(render_feishu(reply))
        seen = max(seen, len(replies))
        time.sleep(0.3)
    return 0


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


def watch(sink: str, seen: int, seconds: float) -> None:
    """Print what the bot posts to the sink in the next `seconds`, after the first `seen` messages."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages = requests.get(f"{sink}/_control/messages", timeout=5).json()["messages"]
        for posted in messages[seen:]:
            print(render_for_terminal(posted["robot"], posted["message"]))
        seen = max(seen, len(messages))
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
