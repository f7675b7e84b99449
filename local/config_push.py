"""Push a file of a config directory to the local stack's config repo (in its fake GitLab), as `git push` would,
and deliver GitLab's Push Hook for it; then show what opsbot posts. The way to watch GitOps sync locally:

    edit config/example/projects/shop-web.yaml, then
    python -m local.config_push projects/shop-web.yaml [--config <the stack's config>] [--as alice] [--port 3000]

A file that is not in the directory is deleted from the repo (its project is removed).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

import requests
import yaml

from local.chat import find_person, watch
from local.ports import running_or_told
from local.signing import sign_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.config_push", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", help="a path inside the config directory, e.g. projects/shop-web.yaml")
    parser.add_argument("--config", default="", help="the config directory (default: the one the stack loaded)")
    parser.add_argument("--as", dest="person", default="alice", help="who pushes: a person id from the config")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    parser.add_argument("--wait", type=float, default=20.0, help="at most this many seconds for what opsbot posts")
    args = parser.parse_args(argv)

    stack = running_or_told(args.port)
    if stack is None:
        return 2
    args.config = args.config or stack["config"]
    config_dir = Path(args.config)
    gitlab = (yaml.safe_load((config_dir / "opsbot.yaml").read_text(encoding="utf-8")) or {}).get("gitlab") or {}
    if not gitlab.get("config_repo"):
        print(f"{config_dir}/opsbot.yaml has no gitlab.config_repo: nothing to push to", file=sys.stderr)
        return 2
    local = config_dir / args.file
    text = local.read_text(encoding="utf-8") if local.is_file() else None
    path = f"{gitlab['config_path'].strip('/')}/{args.file}" if gitlab.get("config_path") else args.file
    person = find_person(config_dir, args.person) or {"id": args.person, "name": args.person}
    git = [g for g in person.get("git", []) if "@" not in g]
    user = {
        "name": person.get("name", args.person),
        "username": git[0] if git else args.person,
        "email": next((g for g in person.get("git", []) if "@" in g), f"{args.person}@example.com"),
    }
    sink, urls = stack["urls"]["sink"], stack["urls"]
    pushed = requests.get(
        f"{urls['gitlab']}/_control/file",
        params={"project": gitlab["config_repo"], "path": path, "ref": gitlab.get("config_branch", "main")},
        timeout=5,
    )
    if (pushed.json().get("content") if pushed.ok else None) == text:
        print(f"{config_dir / args.file} is the same as in {gitlab['config_repo']}: edit it first (nothing pushed)")
        return 1
    hook = requests.post(
        f"{urls['gitlab']}/_control/push",
        timeout=10,
        json={
            "project": gitlab["config_repo"],
            "branch": gitlab.get("config_branch", "main"),
            "user": user,
            "commits": [
                {
                    "message": f"config: {'update' if text is not None else 'remove'} {args.file}",
                    "files": {path: text},
                }
            ],
        },
    ).json()
    seen = len(requests.get(f"{sink}/_control/messages", timeout=5).json()["messages"])
    body = json.dumps(hook, ensure_ascii=False).encode()
    response = requests.post(
        f"{urls['api']}/webhooks/gitlab",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Gitlab-Event": "Push Hook",
            "Idempotency-Key": str(uuid.uuid4()),
            **sign_for("/webhooks/gitlab", body),
        },
    )
    print(
        f"pushed {path} to {gitlab['config_repo']} as {hook['after'][:8]}; "
        f"POST /webhooks/gitlab -> {response.status_code} {response.text}"
    )
    if not watch(sink, seen, args.wait):
        print(f"(nothing posted within {args.wait:g} s: it will show in the `make run` terminal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
