"""Try a change freeze on the running local stack without waiting for one: push the project's config file with a
freeze window that starts now (for --minutes, in Asia/Shanghai time), through the config repo and its Push Hook as
any config change goes; `--off` pushes the file back as it is in the directory. Then `make chat MSG='freeze'`
lists it, a release is refused with its reason, and `override` asks for the way through.

    python -m local.freeze_try [--project shop-api] [--env production] [--minutes 30] [--off]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from local import config_push
from local.chat import ROOT  # noqa: F401  (sys.path set up for the layer)
from local.ports import running_or_told


def with_freeze(text: str, env: str, minutes: int, now: datetime) -> str:
    """The project file with one more dated window, from now for `minutes`, holding `env`."""
    data = yaml.safe_load(text) or {}
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    window = {
        "name": "try-it-now",
        "reason": f"make freeze-try: a {minutes}-minute freeze to see how one works",
        "start": local.strftime("%Y-%m-%d %H:%M"),
        "end": (local + timedelta(minutes=minutes + 1)).strftime("%Y-%m-%d %H:%M"),
        "environments": [env],
    }
    data["freezes"] = [f for f in data.get("freezes") or [] if f.get("name") != "try-it-now"] + [window]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.freeze_try", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", default="shop-api")
    parser.add_argument("--env", default="production")
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--off", action="store_true", help="push the project's file back as the directory has it")
    parser.add_argument("--config", default="", help="the config directory (default: the one the stack loaded)")
    parser.add_argument("--as", dest="person", default="xiaoming")
    parser.add_argument("--port", type=int, default=None, help="the local stack's API port (PORT; default 3000)")
    args = parser.parse_args(argv)
    if not args.config:
        stack = running_or_told(args.port)
        if stack is None:
            return 2
        args.config = stack["config"]
    name = f"projects/{args.project}.yaml"
    source = Path(args.config)
    if not (source / name).is_file():
        print(f"{source}/{name} does not exist", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "config"
        shutil.copytree(source, directory)
        if not args.off:
            text = (directory / name).read_text(encoding="utf-8")
            (directory / name).write_text(
                with_freeze(text, args.env, args.minutes, datetime.now(UTC)), encoding="utf-8"
            )
        forwarded = ["--config", str(directory), "--as", args.person]
        forwarded += ["--port", str(args.port)] if args.port else []
        return config_push.main([name, *forwarded])


if __name__ == "__main__":
    sys.exit(main())
