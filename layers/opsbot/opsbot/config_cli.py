"""`make config ARGS='validate|load|export|diff DIR [--stack NAME]'` (python -m opsbot.config_cli): bootstrap, check
and restore the config store.

    validate DIR   check a config directory (file:line errors); no AWS needed
    load DIR       validate it and make it the stored config (version: --version, else the directory's git sha)
    export DIR     write the stored config into a new directory, as YAML
    diff DIR       what loading DIR would change: a unified diff from the store to DIR (exit 1 when they differ)

`--stack NAME` reads the config table and the stage from a deployed stack (its `ConfigTableName` output and its
`Stage` parameter); otherwise CONFIG_TABLE and OPSBOT_STAGE say them. An AWS error is printed as one line with
what to do about it, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from opsbot import wiring
from opsbot.config import names
from opsbot.config.model import ConfigError, validate
from opsbot.config.yaml_source import read_directory
from opsbot.settings import settings

# What to do about the AWS errors a person running this meets, by botocore's error code.
REMEDIES = {
    "ResourceNotFoundException": "the config table does not exist here: pass --stack NAME, or set CONFIG_TABLE to "
    "the stack's ConfigTableName output (and AWS_REGION to its region)",
    "AccessDeniedException": "your AWS identity may not do this: use a profile that may read and write the "
    "stack's ConfigTable (AWS_PROFILE=…)",
    "AccessDenied": "your AWS identity may not do this: use a profile that may describe the stack (AWS_PROFILE=…)",
    "UnrecognizedClientException": "the AWS credentials are not valid: check AWS_PROFILE or the access keys",
    "ExpiredTokenException": "the AWS session has expired: sign in again (aws sso login, or fresh keys)",
    "ValidationError": "no such stack in this region: check --stack and AWS_REGION",
}


# The stack parameters that pin peers' hosts (template.yaml), and the variables they set on the functions.
STACK_HOST_PARAMETERS = {
    "GitlabHosts": "GITLAB_HOSTS",
    "DroneHosts": "DRONE_HOSTS",
    "KubernetesHosts": "KUBERNETES_HOSTS",
    "DingtalkRobotHosts": "DINGTALK_ROBOT_HOSTS",
    "FeishuRobotHosts": "FEISHU_ROBOT_HOSTS",
    "WecomRobotHosts": "WECOM_ROBOT_HOSTS",
    "SlackRobotHosts": "SLACK_ROBOT_HOSTS",
}


class CliError(Exception):
    """Something the person can fix; printed as one line."""


def _git_version(directory: str) -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", directory, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return sha or time.strftime("local-%Y%m%dT%H%M%S")


def use_stack(stack: str) -> None:
    """Point this process at a deployed stack's config table and stage."""
    import boto3

    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
    if "ConfigTableName" not in outputs:
        raise CliError(f"stack {stack} has no ConfigTableName output: is it an opsbot stack?")
    os.environ["CONFIG_TABLE"] = outputs["ConfigTableName"]
    os.environ["OPSBOT_STAGE"] = parameters.get("Stage") or os.environ.get("OPSBOT_STAGE", "dev")
    # The peers' hosts the stack pins (its parameters), which validate and load check the config against.
    for parameter, variable in STACK_HOST_PARAMETERS.items():
        if parameter in parameters:
            os.environ[variable] = parameters[parameter]
    settings.cache_clear()


def _export(directory: str) -> int:
    from opsbot.config import export, store

    version, documents = store.current_documents()
    try:
        written = export.write_directory(documents, Path(directory), version)
    except FileExistsError as exc:
        raise CliError(str(exc)) from None
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
    parser = argparse.ArgumentParser(
        prog="python -m opsbot.config_cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["validate", "load", "export", "diff"])
    parser.add_argument("directory")
    parser.add_argument("--version", help="version to record on load (default: the directory's git sha)")
    parser.add_argument("--stack", help="a deployed opsbot stack: its ConfigTableName output and Stage parameter")
    args = parser.parse_args(argv)
    names.declare(wiring.known_names)  # a config is checked against the commands that exist
    try:
        if args.stack:
            use_stack(args.stack)
        return _run(args)
    except LookupError as exc:  # export or diff with nothing stored yet
        print(exc, file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # botocore's errors, without importing botocore on the validate path
        return _aws_error(exc)


def _aws_error(exc: Exception) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        print(
            "error: no AWS credentials: set AWS_PROFILE (or the access keys) for the stack's account", file=sys.stderr
        )
    elif isinstance(exc, NoRegionError):
        print("error: no AWS region: set AWS_REGION to the stack's region", file=sys.stderr)
    elif isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        remedy = REMEDIES.get(code, "see the AWS message")
        print(f"error: AWS said {code}: {message[:200]} — {remedy}", file=sys.stderr)
    elif isinstance(exc, BotoCoreError):
        print(
            f"error: AWS could not be reached: {exc} — check the network, AWS_REGION and AWS_ENDPOINT_URL",
            file=sys.stderr,
        )
    else:
        raise exc
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
            given = settings().peer_hosts_given
            config = validate(documents, settings().allows_literal_secrets, stage=settings().stage, check_hosts=given)
            if not given:
                print("note: peers' hosts not checked (no --stack, and no *_HOSTS variable set)", file=sys.stderr)
        else:
            from opsbot.config import store

            config = store.save(documents, args.version or _git_version(args.directory), source="cli load")
    except ConfigError as exc:
        print(f"config in {args.directory} is invalid:", file=sys.stderr)
        for line in exc.lines():
            print(f"  {line}", file=sys.stderr)
        return 2 if args.command == "diff" else 1
    verb = (
        "valid" if args.command == "validate" else f"loaded as version {config.version} into {settings().config_table}"
    )
    print(f"config {verb}: {len(config.projects)} projects, {len(config.robots)} robots, {len(config.people)} people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
