"""`python -m opsbot.config validate|load DIR`: check a config directory, or load it into DynamoDB."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from opsbot.config.model import ConfigError, validate
from opsbot.config.yaml_source import read_directory
from opsbot.settings import settings


def _git_version(directory: str) -> str:
    try:
        sha = subprocess.run(["git", "-C", directory, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return sha or time.strftime("local-%Y%m%dT%H%M%S")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsbot.config", description=__doc__)
    parser.add_argument("command", choices=["validate", "load"])
    parser.add_argument("directory")
    parser.add_argument("--version", help="version to record (default: the directory's git sha)")
    args = parser.parse_args(argv)

    documents, problems = read_directory(args.directory)
    try:
        if problems:
            raise ConfigError(problems)
        if args.command == "validate":
            config = validate(documents, settings().allows_literal_secrets)
        else:
            from opsbot.config import store

            config = store.save(documents, args.version or _git_version(args.directory))
    except ConfigError as exc:
        print(f"config in {args.directory} is invalid:", file=sys.stderr)
        for line in exc.lines():
            print(f"  {line}", file=sys.stderr)
        return 1
    verb = "valid" if args.command == "validate" else f"loaded as version {config.version} into {settings().config_table}"
    print(f"config {verb}: {len(config.projects)} projects, {len(config.robots)} robots, {len(config.people)} people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
