"""Send a sample event from events/ to the running local stack, signed afresh as its real sender would.

    python -m local.send events/drone/build_failure.json [--raw] [--port 3000]

Samples named bad_* or stale_* are sent exactly as stored (their point is a failing check), as is any
sample with --raw.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.ports import running_or_told  # noqa: E402
from local.signing import event_body, kept_as_stored, signed_afresh  # noqa: E402


def links_to_the_stack(event: dict, urls: dict) -> dict:
    """A Drone sample as the stack's own Drone would send it: its web links (the build's, the commit's, the
        compare) on the stack's fake Drone and GitLab, which show them as pages, not on drone.example.com. A Slack
        press with a response_url the stack's fake Slack issued just now, as Slack gives one with each press; a Slack
    message written just now, under a new event_id (an old one is refused as stale, a repeated id is a duplicate)."""
    if event.get("rawPath") == "/webhooks/slack/interactivity" and not event.get("isBase64Encoded"):
        return _fresh_response_url(event, urls["sink"])
    if event.get("rawPath") == "/webhooks/slack/events" and not event.get("isBase64Encoded"):
        return _written_now(event)
    if event.get("rawPath") != "/webhooks/drone" or event.get("isBase64Encoded"):
        return event
    try:
        delivery = json.loads(event.get("body") or "")
        repo, build = delivery["repo"], delivery["build"]
        web = f"{urls['gitlab']}/{repo['slug']}"
    except (ValueError, KeyError, TypeError):
        return event  # not a build delivery: sent as it is
    delivery.setdefault("system", {})["link"] = urls["drone"]
    repo["link"] = web
    if build.get("before") and build.get("after"):
        build["link"] = f"{web}/-/compare/{build['before']}...{build['after']}"
    return {**event, "body": json.dumps(delivery, ensure_ascii=False)}


def _written_now(event: dict) -> dict:
    import uuid

    try:
        document = json.loads(event.get("body") or "")
        message = document["event"]
    except (ValueError, KeyError, TypeError):
        return event  # not an event_callback: sent as it is
    now = f"{time.time():.6f}"
    message["ts"] = message["event_ts"] = now
    document["event_time"], document["event_id"] = int(time.time()), f"Ev{uuid.uuid4().hex[:10].upper()}"
    return {**event, "body": json.dumps(document, ensure_ascii=False, separators=(",", ":"))}


def _fresh_response_url(event: dict, sink: str) -> dict:
    from urllib.parse import parse_qs, urlencode

    try:
        payload = json.loads(parse_qs(event.get("body") or "")["payload"][0])
        path = requests.post(f"{sink}/_control/slack/response_url", timeout=5).json()["path"]
    except (ValueError, KeyError, TypeError, requests.RequestException):
        return event  # not a press the fake can answer: sent as it is
    payload["response_url"] = sink + path
    for action in payload.get("actions") or []:
        action["action_ts"] = f"{time.time():.6f}"  # pressed now, by Slack's clock (an old press is not acted on)
    return {**event, "body": urlencode({"payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", help="an API Gateway v2 event file under events/")
    parser.add_argument("--raw", action="store_true", help="send the stored headers unchanged")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    args = parser.parse_args(argv)

    event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    raw = args.raw or kept_as_stored(args.event)
    stack = running_or_told(args.port)
    if stack is None:
        return 2
    urls = stack["urls"]
    if not raw:
        event = signed_afresh(links_to_the_stack(event, urls))
    body, path, headers = event_body(event), event["rawPath"], dict(event["headers"])
    headers.pop("content-length", None)
    headers.pop("host", None)
    url = urls["api"] + path
    method = event["requestContext"]["http"]["method"]
    response = requests.request(method, url, data=body or None, headers=headers, timeout=10)
    content_type = response.headers.get("content-type", "")
    shown = response.text if "json" in content_type else f"{len(response.content)} bytes of {content_type}"
    print(f"{method} {path[:60]} ({'as stored' if raw else 'signed now'}) -> {response.status_code} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
