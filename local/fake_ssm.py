"""A fake SSM Run Command in front of moto, for the local stack and the tests.

moto runs every command at once, empty and successful, and has no ListCommandInvocations (DESIGN §8), so failures,
partial batches and progress could not be shown. This server takes SSM's JSON API: SendCommand, ListCommands,
ListCommandInvocations and GetCommandInvocation are answered here; everything else (Parameter Store: the stack's
secrets) is passed on to moto unchanged. Point `AWS_ENDPOINT_URL_SSM` at it.

A command runs in time, on the running EC2 instances (moto's) its Targets select (`tag:<key>` keys; all must
match): `MaxConcurrency` at a time, each taking its `fake-ssm:seconds` tag (default 2), failing when tagged
`fake-ssm:outcome=Failed`; once more than `MaxErrors` have failed, no further instance is started (they get no
invocation, as with SSM). Each invocation's output is written to S3 (moto) when `OutputS3BucketName` is given, under
SSM's own key layout. `/_control/…`: the commands received, faults (`send`: error codes SendCommand answers in
turn; `down`: 503 to every Run Command call), reset.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from datetime import UTC, datetime

import requests

from local import loopback

RUN_COMMAND_ACTIONS = ("SendCommand", "ListCommands", "ListCommandInvocations", "GetCommandInvocation")
PLUGIN = "aws:runShellScript"
FAIL_TEXT = (
    "nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)\n"
    "Job for nginx.service failed because the control process exited with error code.\n"
    'See "systemctl status nginx.service" and "journalctl -xeu nginx.service" for details.\n'
)


def _limit(value: str, total: int, minimum: int) -> int:
    text = str(value or "").strip()
    if text.endswith("%"):
        return max(minimum, math.floor(total * int(text[:-1]) / 100))
    return int(text or minimum)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def schedule(instances: list[dict], concurrency: int, max_errors: int) -> dict[str, dict]:
    """When each instance starts and ends, and how, given the batch's limits; instances never started are absent."""
    plan: dict[str, dict] = {}
    queue = sorted(instances, key=lambda i: i["id"])
    running: list[tuple[float, str]] = []
    errors, clock = 0, 0.0
    while queue or running:
        while queue and len(running) < concurrency and errors <= max_errors:
            instance = queue.pop(0)
            end = clock + instance["seconds"]
            plan[instance["id"]] = {"start": clock, "end": end, "outcome": instance["outcome"]}
            running.append((end, instance["id"]))
        if not running:
            break
        running.sort()
        clock, finished = running.pop(0)
        if plan[finished]["outcome"] != "Success":
            errors += 1
        if errors > max_errors:
            queue.clear()  # SSM stops sending; the ones running finish
    return plan


class FakeSsm:
    def __init__(self, moto_url: str, echo: bool = False):
        self.moto_url, self.echo = moto_url.rstrip("/"), echo
        self.lock = threading.Lock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.commands: dict[str, dict] = {}
        self.faults: list[str] = []
        self.down = False

    def _aws(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _instances(self, targets: list[dict]) -> list[dict]:
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        for target in targets:
            key = target.get("Key", "")
            if not key.startswith("tag:"):
                raise ValueError(f"this fake takes tag targets only, not {key}")
            filters.append({"Name": key, "Values": target.get("Values", [])})
        found = []
        for reservation in self._aws("ec2").describe_instances(Filters=filters)["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found.append(
                    {
                        "id": instance["InstanceId"],
                        "outcome": "Failed" if tags.get("fake-ssm:outcome") == "Failed" else "Success",
                        "seconds": float(tags.get("fake-ssm:seconds", "2")),
                    }
                )
        return found

    # --- the API -------------------------------------------------------------------------------------------------
    def handle(self, method: str, url, headers, body: bytes) -> tuple:
        if url.path.startswith("/_control/"):
            return self.control(method, url.path, json.loads(body or b"{}"))
        target = headers.get("X-Amz-Target", "")
        action = target.split(".")[-1] if target.startswith("AmazonSSM.") else ""
        if action not in RUN_COMMAND_ACTIONS:
            return self.forward(method, url, headers, body)
        with self.lock:
            if self.down:
                return 503, {"__type": "ServiceUnavailable", "message": "SSM is unavailable"}
            spec = json.loads(body or b"{}")
            try:
                return 200, getattr(self, action)(spec)
            except LookupError as exc:
                return 400, {"__type": "InvalidCommandId", "message": str(exc)}
            except ValueError as exc:
                return 400, {"__type": "InvalidParameters", "message": str(exc)}
            except _Refused as exc:
                return exc.status, {"__type": exc.code, "message": exc.message}

    def forward(self, method: str, url, headers, body: bytes) -> tuple:
        passed = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")}
        answer = requests.request(
            method,
            self.moto_url + url.path + (f"?{url.query}" if url.query else ""),
            headers=passed,
            data=body,
            timeout=10,
        )
        return answer.status_code, answer.text, {"Content-Type": answer.headers.get("Content-Type", "application/json")}

    def SendCommand(self, spec: dict) -> dict:  # noqa: N802 (SSM's own action names)
        if self.faults:
            code = self.faults.pop(0)
            raise _Refused(500 if code == "InternalServerError" else 400, code, f"{code} (injected)")
        document = spec.get("DocumentName", "")
        if document not in ("AWS-RunShellScript",) and not document.startswith("Shop-"):
            raise _Refused(400, "InvalidDocument", f"Document {document} does not exist in your account")
        instances = self._instances(spec.get("Targets", []))
        total = len(instances)
        concurrency = _limit(spec.get("MaxConcurrency", "50"), total, 1)
        max_errors = _limit(spec.get("MaxErrors", "0"), total, 0)
        command_id = str(uuid.uuid4())
        now = time.time()
        plan = schedule(instances, concurrency, max_errors)
        command = {
            "CommandId": command_id,
            "DocumentName": document,
            "Comment": spec.get("Comment", ""),
            "Parameters": spec.get("Parameters", {}),
            "Targets": spec.get("Targets", []),
            "MaxConcurrency": spec.get("MaxConcurrency", "50"),
            "MaxErrors": spec.get("MaxErrors", "0"),
            "OutputS3BucketName": spec.get("OutputS3BucketName", ""),
            "OutputS3KeyPrefix": spec.get("OutputS3KeyPrefix", ""),
            "RequestedDateTime": now,
            "TargetCount": total,
            "plan": {iid: {**p, "start": now + p["start"], "end": now + p["end"]} for iid, p in plan.items()},
        }
        self.commands[command_id] = command
        for instance_id, run in command["plan"].items():
            self._write_output(command, instance_id, run["outcome"])
        if self.echo:
            print(f"[fake ssm] {document} on {total} instance(s): {command['Comment']}", flush=True)
        return {"Command": self._command(command)}

    def _output(self, command: dict, outcome: str) -> tuple[str, str]:
        commands = command["Parameters"].get("commands", [])
        out = "".join(f"$ {c}\n" + ("active\n" if "is-active" in c else "") for c in commands)
        return (out, FAIL_TEXT) if outcome == "Failed" else (out + "done\n", "")

    def _write_output(self, command: dict, instance_id: str, outcome: str) -> None:
        if not command["OutputS3BucketName"]:
            return
        stdout, stderr = self._output(command, outcome)
        prefix = "/".join(
            p for p in (command["OutputS3KeyPrefix"], command["CommandId"], instance_id, "awsrunShellScript") if p
        )
        s3 = self._aws("s3")
        for name, text in (("stdout", stdout), ("stderr", stderr)):
            if text:
                s3.put_object(
                    Bucket=command["OutputS3BucketName"], Key=f"{prefix}/0.awsrunShellScript/{name}", Body=text
                )

    def _state(self, run: dict, now: float) -> str:
        if now < run["start"]:
            return "Pending"
        if now < run["end"]:
            return "InProgress"
        return run["outcome"]

    def _command(self, command: dict) -> dict:
        now = time.time()
        states = [self._state(run, now) for run in command["plan"].values()]
        finished = [s for s in states if s in ("Success", "Failed")]
        status = "InProgress" if len(finished) < len(states) else ("Failed" if "Failed" in states else "Success")
        if not states:
            status = "Success"
        return {
            "CommandId": command["CommandId"],
            "DocumentName": command["DocumentName"],
            "Comment": command["Comment"],
            "Parameters": command["Parameters"],
            "Targets": command["Targets"],
            "MaxConcurrency": command["MaxConcurrency"],
            "MaxErrors": command["MaxErrors"],
            "RequestedDateTime": command["RequestedDateTime"],
            "Status": status,
            "StatusDetails": status,
            "TargetCount": command["TargetCount"],
            "CompletedCount": len(finished),
            "ErrorCount": states.count("Failed"),
            "OutputS3BucketName": command["OutputS3BucketName"],
            "OutputS3KeyPrefix": command["OutputS3KeyPrefix"],
        }

    def ListCommands(self, spec: dict) -> dict:  # noqa: N802
        if command_id := spec.get("CommandId"):
            if command_id not in self.commands:
                raise LookupError(f"no command {command_id}")
            return {"Commands": [self._command(self.commands[command_id])]}
        wanted = {f["key"]: f["value"] for f in spec.get("Filters", [])}
        after = wanted.get("InvokedAfter")
        since = datetime.fromisoformat(after.replace("Z", "+00:00")).timestamp() if after else 0
        found = [
            self._command(c)
            for c in self.commands.values()
            if c["RequestedDateTime"] >= since and wanted.get("DocumentName", c["DocumentName"]) == c["DocumentName"]
        ]
        return {"Commands": found}

    def ListCommandInvocations(self, spec: dict) -> dict:  # noqa: N802
        command = self.commands.get(spec.get("CommandId", ""))
        if command is None:
            raise LookupError(f"no command {spec.get('CommandId')}")
        now = time.time()
        return {
            "CommandInvocations": [
                {
                    "CommandId": command["CommandId"],
                    "InstanceId": instance_id,
                    "DocumentName": command["DocumentName"],
                    "Comment": command["Comment"],
                    "Status": self._state(run, now),
                    "StatusDetails": self._state(run, now),
                    "RequestedDateTime": command["RequestedDateTime"],
                }
                for instance_id, run in command["plan"].items()
            ]
        }

    def GetCommandInvocation(self, spec: dict) -> dict:  # noqa: N802
        command = self.commands.get(spec.get("CommandId", ""))
        run = command["plan"].get(spec.get("InstanceId", "")) if command else None
        if run is None:
            raise _Refused(400, "InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)")
        state = self._state(run, time.time())
        stdout, stderr = self._output(command, run["outcome"]) if state in ("Success", "Failed") else ("", "")
        return {
            "CommandId": command["CommandId"],
            "InstanceId": spec["InstanceId"],
            "DocumentName": command["DocumentName"],
            "PluginName": PLUGIN,
            "Status": state,
            "StatusDetails": state,
            "ResponseCode": 1 if state == "Failed" else 0 if state == "Success" else -1,
            "StandardOutputContent": stdout[:24000],
            "StandardErrorContent": stderr[:8000],
        }

    def control(self, method: str, path: str, spec: dict) -> tuple:
        with self.lock:
            if method == "GET" and path == "/_control/commands":
                return 200, {"commands": [self._command(c) for c in self.commands.values()]}
            if method == "POST" and path == "/_control/faults":
                self.faults, self.down = list(spec.get("send", [])), bool(spec.get("down"))
                return 200, {"ok": True}
            if method == "POST" and path == "/_control/reset":
                self.reset()
                return 200, {"ok": True}
        return 404, {"error": f"no control {path}"}


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def make_server(fake: FakeSsm, host: str, port: int):
    server = loopback.json_server(fake.handle, host, port, json_type="application/x-amz-json-1.1")
    fake.url = f"http://{host}:{server.server_address[1]}"
    return server
