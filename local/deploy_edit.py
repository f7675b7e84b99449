"""Change the local stack's deploy repo by hand, as someone outside opsbot would (a commit pushed to GitLab, no
opsbot trailers), and ask for the drift check now instead of at the schedule's next tick.

    python -m local.deploy_edit [FILE] [--find TEXT --replace TEXT] [--as bob] [--port 3000]
    python -m local.deploy_edit --check [--port 3000]

Without --find, it moves the file's pinned image to a tag nobody built (kustomize `newTag`, a Helm `tag:`, a manifest
`image:`), which `status` and the drift check then report. --check puts the drift check's job on the work queue,
exactly what template.yaml's schedule puts there on AWS.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from local.ports import NotRunning, running  # noqa: E402

DEPLOY_REPO = "platform/deploy"
MADE_UP = "0badc0de"
PEOPLE = {"bob": ("Bob Li", "bob", "bob@example.com"), "carol": ("Carol Zhang", "carol", "carol@example.com")}


def edit(gitlab: str, file: str, find: str, replace: str, who: str) -> str:
    found = requests.get(f"{gitlab}/_control/file", params={"project": DEPLOY_REPO, "path": file}, timeout=5)
    if not found.ok:
        raise SystemExit(f"{DEPLOY_REPO} has no {file}")
    text = found.json()["content"]
    if find:
        changed = text.replace(find, replace)
    else:
        changed = re.sub(r'(newTag: "?|tag: "?|version: "?|image: \S+:)[\w.+-]+', rf"\g<1>{MADE_UP}", text, count=1)
    if changed == text:
        raise SystemExit(f"nothing to change in {file}")
    name, username, email = PEOPLE.get(who, (who, who, f"{who}@example.com"))
    pushed = requests.post(
        f"{gitlab}/_control/push",
        json={
            "project": DEPLOY_REPO,
            "branch": "main",
            "commits": [{"message": f"hotfix {file} by hand", "files": {file: changed}}],
            "user": {"name": name, "username": username, "email": email},
        },
        timeout=5,
    )
    pushed.raise_for_status()
    return pushed.json()["after"]


def check(moto: str, tick: str = "") -> None:
    """Queue the drift check, or (`tick`: an ISO time or `now`) release governance's scheduled tick for that moment."""
    import boto3

    from local import template
    from local.stack import drift_check_job, governance_tick_job

    sqs = boto3.client(
        "sqs",
        endpoint_url=moto,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queue = sqs.get_queue_url(QueueName="opsbot-local-WorkQueue")["QueueUrl"]
    loaded = template.load(ROOT / "template.yaml")
    if tick:
        at = None if tick == "now" else datetime.fromisoformat(tick.replace("Z", "+00:00")).timestamp()
        sqs.send_message(QueueUrl=queue, MessageBody=governance_tick_job(loaded, at))
        return
    sqs.send_message(QueueUrl=queue, MessageBody=drift_check_job(loaded))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.deploy_edit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", default="shop-api/overlays/staging/kustomization.yaml")
    parser.add_argument("--find", default="")
    parser.add_argument("--replace", default="")
    parser.add_argument("--as", dest="who", default="bob")
    parser.add_argument("--check", action="store_true", help="queue the drift check instead of editing")
    parser.add_argument("--tick", default="", help="queue release governance's tick for this moment (ISO, or now)")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    args = parser.parse_args(argv)
    try:
        urls = running(args.port)["urls"]  # the stack says where its fakes run (local/ports.py)
        if args.tick:
            check(urls["moto"], args.tick)
            print("governance tick queued: freezes opening within the hour are announced, due reports sent")
            return 0
        if args.check:
            check(urls["moto"])
            print("drift check queued: the project's group hears of each drift once")
            return 0
        sha = edit(urls["gitlab"], args.file, args.find, args.replace, args.who)
    except NotRunning as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.who} pushed {sha[:8]} to {DEPLOY_REPO}: {args.file} changed by hand (`make drift-check` to be told)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
