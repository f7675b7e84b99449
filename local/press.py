"""Press a button on opsbot's Slack message on the local stack, as a person, the way Slack's app would tell opsbot.

    python -m local.press --command "deploy shop-api 128 to staging" [--as carol] [--port 3000]
    python -m local.press --card last [--button 0] [--as carol]

1. the card: with `--command`, a Slack message with one button carrying that command, signed with the local stack's
   button key (what opsbot puts on its messages: channels/buttons.py); with `--card last`, the newest message with
   buttons that reached the fake Slack;
2. the fake Slack makes the press: a `block_actions` payload naming the person's Slack member id
   (`people[].slack_user_id`; `stranger` is a member opsbot's config does not list) and a fresh `response_url`;
3. it is posted, signed with the local Slack signing secret (v0), to `/webhooks/slack/interactivity`, as Slack would;
4. what Slack then shows is printed as it arrives: the answer to the presser alone, and the outcome that replaces the
   message.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.chat import find_person  # noqa: E402
from local.fake_slack import signed_headers  # noqa: E402
from local.ports import running_or_told  # noqa: E402
from local.stack import LOCAL_SECRETS, LOCAL_SLACK_APP_ID  # noqa: E402

STRANGER = ("U0STRANGER", "stranger")
POLL_SECONDS = 0.3


def card_for(command: str) -> dict:
    """A Slack message with one button that runs `command`, as opsbot renders it with the local stack's key."""
    from opsbot.channels import buttons
    from opsbot.channels.slack import ACTION_PREFIX

    value = buttons.value(command, LOCAL_SECRETS["ACTION_SIGNING_KEY_PARAM"].encode())
    return {
        "text": command,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"`{command}`", "verbatim": True}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": command[:75]},
                        "action_id": f"{ACTION_PREFIX}0",
                        "value": value,
                    }
                ],
            },
        ],
    }


def last_card(sink: str) -> dict | None:
    messages = requests.get(f"{sink}/_control/slack/messages", timeout=5).json()["messages"]
    with_buttons = [
        m["message"] for m in messages if any(b.get("type") == "actions" for b in m["message"].get("blocks", []))
    ]
    return with_buttons[-1] if with_buttons else None


def slack_user(who: str, config: Path) -> tuple[str, str]:
    if who == "stranger":
        return STRANGER
    person = find_person(config, who)
    if person is None:
        return who, who  # a Slack member id as it is
    if not person.get("slack_user_id"):
        raise SystemExit(f"{who} has no slack_user_id in the config: opsbot would not know them in Slack")
    return person["slack_user_id"], person.get("name", who)


def shown(message: dict) -> str:
    lines = [b["text"]["text"] for b in message.get("blocks", []) if b.get("type") == "section"]
    for block in message.get("blocks", []):
        if block.get("type") == "actions":  # the buttons it carries: `make press CARD=last BUTTON=<n>` presses one
            lines.append("  ".join(f"[{n}: {e['text']['text']}]" for n, e in enumerate(block.get("elements", []))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.press", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", help="the chat command the button carries, e.g. 'approve 1a2b3c4d'")
    what.add_argument("--card", choices=["last"], help="the newest message with buttons the fake Slack received")
    parser.add_argument("--button", type=int, default=0, help="which of the card's buttons (0 = the first)")
    parser.add_argument("--as", dest="who", default="carol", help="a person id from the config, or stranger")
    parser.add_argument("--config", default="", help="the config directory (default: the one the stack loaded)")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    parser.add_argument("--wait", type=float, default=20.0, help="at most this many seconds for what Slack shows")
    args = parser.parse_args(argv)

    stack = running_or_told(args.port)
    if stack is None:
        return 2
    sink, api = stack["urls"]["sink"], stack["urls"]["api"]
    card = card_for(args.command) if args.command else last_card(sink)
    if card is None:
        print("no message with buttons has reached the fake Slack yet: use --command")
        return 1
    user = slack_user(args.who, Path(args.config or stack["config"]))
    spec = {"message": card, "button": args.button, "user": list(user), "app_id": LOCAL_SLACK_APP_ID, "base_url": sink}
    body = requests.post(f"{sink}/_control/slack/press", json=spec, timeout=5).json()["body"].encode()
    seen = len(requests.get(f"{sink}/_control/slack/messages", timeout=5).json()["messages"])
    headers = signed_headers(LOCAL_SECRETS["SLACK_SIGNING_SECRET_PARAM"], body)
    answer = requests.post(f"{api}/webhooks/slack/interactivity", data=body, headers=headers, timeout=10)
    print(f"── {user[1]} ({user[0]}) presses [{card['blocks'][-1]['elements'][args.button]['text']['text']}]")
    print(f"   opsbot answers Slack: HTTP {answer.status_code} {answer.text}")
    if answer.status_code != 200:
        return 1
    deadline, replaced = time.monotonic() + args.wait, False
    while time.monotonic() < deadline and not replaced:
        messages = requests.get(f"{sink}/_control/slack/messages", timeout=5).json()["messages"]
        for posted in messages[seen:]:
            message = posted["message"]
            # Done once the message is replaced, or the presser was told no (the message stays as it was).
            replaced = replaced or bool(message.get("replace_original")) or shown(message).startswith("⛔")
            where = "in place of the message" if message.get("replace_original") else f"to {user[1]} only"
            print(f"\n── Slack shows, {where}:\n{shown(message)}")
        seen = len(messages)
        time.sleep(POLL_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
