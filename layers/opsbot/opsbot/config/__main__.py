"""`python -m opsbot.config validate|load|export|diff DIR`: bootstrap and restore the config store.

    validate DIR   check a config directory (file:line errors)
    load DIR       validate it and make it the stored config (version: --version, else the directory's git sha)
    export DIR     write the stored config into a new directory, as YAML
    diff DIR       what loading DIR would change: a unified diff from the store to DIR (exit 1 when they differ)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

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


def _export(directory: str) -> int:
    from opsbot.config import export, store

    version, documents = store.current_documents()
    try:
        written = export.write_directory(documents, Path(directory), version)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"exported version {version} from {settings().config_table}: {len(written)} files into {directory}")
    return 0


def _diff(documents) -> int:
    from opsbot.config import export, store

    version, stored = store.current_documents()
    lines = export.diff(documents, stored, version)
    sys.stdout.writelines(lines)
    if not lines:
        print(f"no differences: the store (version {version}) holds the same config")
    return 1 if lines else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsbot.config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["validate", "load", "export", "diff"])
    parser.add_argument("directory")
    parser.add_argument("--version", help="version to record on load (default: the directory's git sha)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except LookupError as exc:  # export or diff with nothing stored yet
        print(exc, file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "export":
        return _export(args.directory)

    documents, problems = read_directory(args.directory)
    try:
        if problems:
            raise ConfigError(problems)
        if args.command == "diff":
            return _diff(documents)
        if args.command == "validate":
            config = validate(documents, settings().allows_literal_secrets, stage=settings().stage)
        else:
            from opsbot.config import store

            config = store.save(documents, args.version or _git_version(args.directory), source="cli load")
    except ConfigError as exc:
        print(f"config in {args.directory} is invalid:", file=sys.stderr)
        for line in exc.lines():
            print(f"  {line}", file=sys.stderr)
        return 2 if args.command == "diff" else 1
    verb = "valid" if args.command == "validate" else f"loaded as version {config.version} into {settings().config_table}"
    print(f"config {verb}: {len(config.projects)} projects, {len(config.robots)} robots, {len(config.people)} people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
