"""VM batches through SSM Run Command: a runbook (an SSM document, with the config's own commands for
AWS-RunShellScript and typed parameters) on a VM group (SSM Targets by tag or resource group), `max_concurrency` at
a time, stopping after `max_errors`. Never free text into a shell: a parameter is an integer in its range or one of
its allowed values, and is shell-quoted where it is substituted.

Only instances that carry the opt-in tag OPT_IN_TAG are ever targeted: the Targets say so, and the worker's IAM
policy allows ssm:SendCommand on no other instance.
"""

from __future__ import annotations

import shlex
import time

from opsbot.aws import client
from opsbot.config.ops import SHELL_DOCUMENT, Runbook, VmGroup, parameter_problem, substitute
from opsbot.ops import output
from opsbot.ops.peers import RUN_COMMAND, aws_call
from opsbot.settings import settings

OPT_IN_TAG = ("opsbot-ops", "enabled")  # template.yaml's condition names the same tag
COMMENT_CHARS = 100  # SendCommand's Comment limit
DONE = ("Success", "Failed", "Cancelled", "TimedOut", "Cancelling")
FAILED = ("Failed", "Cancelled", "TimedOut", "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated")
FIRST_LINES = 3


class ParameterError(ValueError):
    """A runbook parameter that does not fit its type; the message says which and why."""


def targets(group: VmGroup) -> list[dict]:
    found = [{"Key": f"tag:{key}", "Values": [value]} for key, value in sorted(group.tags.items())]
    if group.resource_group:
        found.append({"Key": "resource-groups:Name", "Values": [group.resource_group]})
    found.append({"Key": f"tag:{OPT_IN_TAG[0]}", "Values": [OPT_IN_TAG[1]]})
    return found


def instances(group: VmGroup) -> int | None:
    """How many running instances the group's tags select (None for a resource group: SSM resolves it)."""
    if group.resource_group:
        return None
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(group.tags.items())]
    filters += [
        {"Name": f"tag:{OPT_IN_TAG[0]}", "Values": [OPT_IN_TAG[1]]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    ec2 = client("ec2")
    count, token = 0, None
    while True:
        page = aws_call(
            RUN_COMMAND,
            ec2.describe_instances,
            Filters=filters,
            MaxResults=1000,
            **({"NextToken": token} if token else {}),
        )
        count += sum(len(r.get("Instances", [])) for r in page.get("Reservations", []))
        token = page.get("NextToken")
        if not token:
            return count


def values(runbook: Runbook, given: dict[str, str]) -> dict[str, str]:
    """The runbook's parameter values: the given ones checked against their types, defaults for the rest."""
    unknown = sorted(set(given) - set(runbook.parameters))
    if unknown:
        known = ", ".join(runbook.parameters) or "none"
        raise ParameterError(f"{runbook.name} has no parameter {', '.join(unknown)} (parameters: {known})")
    found = {}
    for name, parameter in runbook.parameters.items():
        value = given.get(name, parameter.default)
        if value == "":
            raise ParameterError(f"{runbook.name} needs {name}")
        if problem := parameter_problem(parameter, value):
            raise ParameterError(problem)
        found[name] = value
    return found


def document_parameters(runbook: Runbook, chosen: dict[str, str]) -> dict[str, list[str]]:
    """SendCommand's Parameters: the config's commands with quoted values, or the team document's own parameters."""
    timeout = [str(runbook.timeout_seconds)]
    if runbook.document == SHELL_DOCUMENT:
        return {"commands": [substitute(c, chosen, shlex.quote) for c in runbook.commands], "executionTimeout": timeout}
    return {name: [value] for name, value in chosen.items()}


def comment(request_id: str, who: str, runbook: str) -> str:
    return f"opsbot {request_id} by {who}: {runbook}"[:COMMENT_CHARS]


def output_prefix(request_id: str) -> str:
    return f"ops/{request_id}/ssm"


def send(plan: dict, request_id: str, who: str, since: int) -> str:
    """SendCommand once: a retry after a timeout first looks for the command this request already sent (its
    Comment names the request), so a batch never runs twice."""
    ssm = client("ssm")
    if existing := find_sent(request_id, plan["document"], since):
        return existing
    bucket = settings().ops_output_bucket
    sent = aws_call(
        RUN_COMMAND,
        ssm.send_command,
        Targets=plan["targets"],
        DocumentName=plan["document"],
        Parameters=plan["parameters"],
        MaxConcurrency=plan["max_concurrency"],
        MaxErrors=plan["max_errors"],
        TimeoutSeconds=600,
        Comment=comment(request_id, who, plan["runbook"]),
        **({"OutputS3BucketName": bucket, "OutputS3KeyPrefix": output_prefix(request_id)} if bucket else {}),
    )
    return sent["Command"]["CommandId"]


def find_sent(request_id: str, document: str, since: int) -> str:
    ssm = client("ssm")
    found = aws_call(
        RUN_COMMAND,
        ssm.list_commands,
        Filters=[
            {"key": "InvokedAfter", "value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 60))},
            {"key": "DocumentName", "value": document},
        ],
        MaxResults=50,
    )
    mark = f"opsbot {request_id} "
    return next((c["CommandId"] for c in found.get("Commands", []) if c.get("Comment", "").startswith(mark)), "")


def progress(command_id: str) -> dict:
    """The command's status and its invocations' counts by status."""
    ssm = client("ssm")
    command = aws_call(RUN_COMMAND, ssm.list_commands, CommandId=command_id)["Commands"]
    if not command:
        raise RUN_COMMAND[1](404, f"command {command_id} is gone")
    invocations, token = [], None
    while True:
        page = aws_call(
            RUN_COMMAND,
            ssm.list_command_invocations,
            CommandId=command_id,
            MaxResults=50,
            **({"NextToken": token} if token else {}),
        )
        invocations += page.get("CommandInvocations", [])
        token = page.get("NextToken")
        if not token:
            break
    counts: dict[str, int] = {}
    for invocation in invocations:
        counts[invocation["Status"]] = counts.get(invocation["Status"], 0) + 1
    facts = command[0]
    return {
        "status": facts["Status"],
        "targets": int(facts.get("TargetCount") or 0),
        "completed": int(facts.get("CompletedCount") or 0),
        "errors": int(facts.get("ErrorCount") or 0),
        "counts": counts,
        "instances": [(i["InstanceId"], i["Status"]) for i in invocations],
        "done": facts["Status"] in DONE,
    }


def failures(command_id: str, instances: list[tuple[str, str]], limit: int = 10) -> list[tuple[str, list[str]]]:
    """The first lines of what each failed instance printed (stderr first), for the summary."""
    ssm = client("ssm")
    found = []
    for instance_id, status in instances:
        if status not in FAILED or len(found) >= limit:
            continue
        invocation = aws_call(RUN_COMMAND, ssm.get_command_invocation, CommandId=command_id, InstanceId=instance_id)
        text = invocation.get("StandardErrorContent") or invocation.get("StandardOutputContent") or status
        lines, _ = output.plain_lines(text, 600, from_end=False)
        found.append((instance_id, lines[:FIRST_LINES]))
    return found


def full_output(request_id: str, command_id: str, instances: list[tuple[str, str]]) -> str:
    """Every instance's whole output: what SSM wrote to the output bucket, else what GetCommandInvocation keeps
    (its first 24,000 characters of stdout and 8,000 of stderr)."""
    keys = output.listing(f"{output_prefix(request_id)}/{command_id}/")
    parts = []
    ssm = client("ssm")
    for instance_id, status in instances:
        mine = sorted(k for k in keys if f"/{instance_id}/" in k)
        if mine:
            body = "\n".join(f"--- {k.rsplit('/', 1)[-1]}\n{output.read(k) or ''}" for k in mine)
        else:
            invocation = aws_call(RUN_COMMAND, ssm.get_command_invocation, CommandId=command_id, InstanceId=instance_id)
            body = f"--- stdout\n{invocation.get('StandardOutputContent', '')}\n--- stderr\n"
            body += invocation.get("StandardErrorContent", "")
        parts.append(f"=== {instance_id}: {status}\n{body}")
    return "\n\n".join(parts)


def plan(runbook: Runbook, group: VmGroup, chosen: dict[str, str]) -> dict:
    """What a `vm run` (or a service's restart on VMs) will send, fixed at its preview."""
    return {
        "kind": "vm-run",
        "runbook": runbook.name,
        "group": group.name,
        "document": runbook.document,
        "values": chosen,
        "parameters": document_parameters(runbook, chosen),
        "targets": targets(group),
        "max_concurrency": group.max_concurrency,
        "max_errors": group.max_errors,
        "instances": instances(group),
    }
