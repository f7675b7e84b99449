"""`make event` against the running local stack, as `sam local invoke` would use its output, without Docker: each
function runs in a fresh process whose environment is only what SAM gives a container (its AWS_* variables) plus
env.json's variables for that function, with the signed copy as its event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What SAM CLI sets in every container before env.json's overrides (samcli/local/lambdafn/env_vars.py), with no
# AWS credentials configured; plus no AWS files of this machine.
SAM_CONTAINER_ENV = {
    "AWS_SAM_LOCAL": "true",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "defaultkey",
    "AWS_SECRET_ACCESS_KEY": "defaultsecret",
    "AWS_ACCOUNT_ID": "123456789012",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
RUNNER = """
import json, sys
sys.path[:0] = [sys.argv[3], sys.argv[4]]  # the function's code (/var/task) and the layer (/opt/python)


class Context:
    function_name, function_version, memory_limit_in_mb, aws_request_id = sys.argv[1], "$LATEST", 256, "sam-local"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + sys.argv[1]

    def get_remaining_time_in_millis(self):
        return 15000


import app

with open(sys.argv[2], encoding="utf-8") as event:
    print("RESULT " + json.dumps(app.lambda_handler(json.load(event), Context())))
"""


def invoke_as_sam_would(function: str, event_file: Path, env_file: Path) -> dict:
    code_uri = {
        "DroneWebhookFunction": "drone_webhook",
        "GitlabWebhookFunction": "gitlab_webhook",
        "DingtalkBotFunction": "dingtalk_bot",
        "ActionsFunction": "actions",
    }[function]
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **SAM_CONTAINER_ENV,
        **json.loads(env_file.read_text(encoding="utf-8"))[function],
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            function,
            str(event_file),
            str(ROOT / "functions" / code_uri),
            str(ROOT / "layers" / "opsbot"),
        ],
        env=environment,
        cwd=event_file.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(results[-1][len("RESULT ") :])


@pytest.fixture
def make_event(stack, tmp_path):
    def run(sample: str) -> tuple[str, Path, Path]:
        ports = [
            str(urlsplit(url).port)
            for url in (stack.api, stack.sink, stack.moto, stack.drone, stack.gitlab, stack.kube)
        ]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "local.sam_event",
                str(ROOT / sample),
                "--port",
                ports[0],
                "--sink-port",
                ports[1],
                "--moto-port",
                ports[2],
                "--drone-port",
                ports[3],
                "--gitlab-port",
                ports[4],
                "--kube-port",
                ports[5],
                "--out",
                str(tmp_path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        function = done.stdout.split(" local invoke ", 1)[1].split()[0]
        return function, tmp_path / "events" / Path(sample).relative_to("events"), tmp_path / "env.json"

    return run


def test_a_drone_sample_signed_now_is_queued_and_reaches_the_group(stack, make_event):
    function, event_file, env_file = make_event("events/drone/build_success.json")
    assert function == "DroneWebhookFunction"
    answer = invoke_as_sam_would(function, event_file, env_file)
    assert answer["statusCode"] in (200, 202) and json.loads(answer["body"])["status"] in ("queued", "duplicate")
    stale = invoke_as_sam_would(function, ROOT / "events" / "drone" / "build_success.json", env_file)
    assert (stale["statusCode"], json.loads(stale["body"])) == (
        401,
        {"error": "stale Date: outside the 5 minute window"},
    )


def test_a_dingtalk_sample_signed_now_is_answered_from_the_local_stack(stack, make_event):
    stack.drone_reset()  # the seeded builds, whatever other tests added
    function, event_file, env_file = make_event("events/dingtalk/status.json")
    answer = invoke_as_sam_would(function, event_file, env_file)
    assert answer["statusCode"] == 200
    reply = json.loads(answer["body"])
    assert reply["msgtype"] == "markdown" and "#128" in reply["markdown"]["text"]  # the fake Drone's builds


def test_a_gitlab_sample_and_a_release_link_work_with_env_json(stack, make_event):
    function, event_file, env_file = make_event("events/gitlab/tag_push.json")
    answer = invoke_as_sam_would(function, event_file, env_file)
    assert answer["statusCode"] in (200, 202) and "error" not in json.loads(answer["body"])
    function, event_file, env_file = make_event("events/actions/show.json")
    page = invoke_as_sam_would(function, event_file, env_file)  # the grant the local stack holds, read from moto
    assert function == "ActionsFunction" and page["statusCode"] == 200 and "shop-api" in page["body"]
