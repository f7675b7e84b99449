"""Integration tests: start the local stack in a subprocess and drive it over real HTTP on loopback.

The stack runs the real handlers against moto's server, with the fake DingTalk (signatures, error codes,
rate limits) from local/fake_dingtalk.py, and the fake Drone and fake GitLab APIs, each on a free port. Each test talks to its own robot or uses fresh build numbers, so
tests do not see each other's messages or budgets.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

from local.signing import sign_for  # noqa: E402

# Robots the tests add to the example config, each with its own group (access token) and project.
TEST_ROBOTS = {"burst": "burst-api", "flaky": "flaky-api"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(directory: Path, sink_port: int, drone_port: int, gitlab_port: int) -> None:
    shutil.copytree(ROOT / "config" / "example", directory)
    global_file = directory / "opsbot.yaml"
    config = yaml.safe_load(global_file.read_text(encoding="utf-8"))
    for robot in config["robots"].values():
        robot["webhook"] = robot["webhook"].replace("127.0.0.1:3001", f"127.0.0.1:{sink_port}")
    config["drone"]["server"] = config["drone"]["server"].replace("127.0.0.1:3002", f"127.0.0.1:{drone_port}")
    config["gitlab"]["url"] = config["gitlab"]["url"].replace("127.0.0.1:3003", f"127.0.0.1:{gitlab_port}")
    template = next(iter(config["robots"].values()))
    for robot, project in TEST_ROBOTS.items():
        config["robots"][robot] = {**template, "webhook": template["webhook"].split("access_token=")[0]
                                   + f"access_token=local-{robot}", "secret": f"SEC-local-{robot}-secret"}
        (directory / "projects" / f"{project}.yaml").write_text(yaml.safe_dump({
            "repo": f"shop/{project}", "robot": robot,
            "notify": {"on_failure": True, "on_fixed": True, "on_success": ["main"]},
        }), encoding="utf-8")
    global_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


class Stack:
    def __init__(self, api: str, sink: str, moto: str, drone: str, gitlab: str, config_repo: str):
        self.api, self.sink, self.moto, self.drone, self.gitlab = api, sink, moto, drone, gitlab
        self.config_repo = config_repo
        self.http = requests.Session()
        self._numbers = itertools.count(1000 + os.getpid() % 1000 * 100)
        aws = dict(endpoint_url=moto, region_name="us-east-1", aws_access_key_id="local",
                   aws_secret_access_key="local")
        self.sqs = boto3.client("sqs", **aws)
        self.dlq_url = self.sqs.get_queue_url(QueueName="opsbot-local-DeadLetterQueue")["QueueUrl"]
        self.ddb = boto3.client("dynamodb", **aws)

    # --- senders -------------------------------------------------------------------------------------
    def next_number(self) -> int:
        return next(self._numbers)

    @staticmethod
    def drone_body(fixture: str = "build_failure", number: int | None = None, repo: str | None = None,
                   **build_fields) -> bytes:
        delivery = json.loads((FIXTURES / "drone" / f"{fixture}.json").read_text(encoding="utf-8"))
        delivery = copy.deepcopy(delivery)
        if number is not None:
            delivery["build"]["number"] = number
        if repo is not None:
            delivery["repo"]["slug"] = f"shop/{repo}"
            delivery["repo"]["name"] = repo
        delivery["build"].update(build_fields)
        return json.dumps(delivery, ensure_ascii=False).encode()

    def post(self, path: str, body: bytes, headers: dict | None = None, sign: bool = True,
             content_type: str = "application/json") -> requests.Response:
        all_headers = {"Content-Type": content_type, **(sign_for(path, body) if sign else {}), **(headers or {})}
        return self.http.post(self.api + path, data=body, headers=all_headers, timeout=10)

    def post_drone(self, body: bytes, **kwargs) -> requests.Response:
        return self.post("/webhooks/drone", body, headers={"X-Drone-Event": "build", **kwargs.pop("headers", {})},
                         **kwargs)

    # --- the fake DingTalk ---------------------------------------------------------------------------
    def messages(self, access_token: str | None = None) -> list[dict]:
        found = self.http.get(self.sink + "/_control/messages", timeout=5).json()["messages"]
        return [m for m in found if access_token is None or m["access_token"] == access_token]

    def rejections(self) -> list[dict]:
        return self.http.get(self.sink + "/_control/rejections", timeout=5).json()["rejections"]

    def fault(self, access_token: str, statuses: list[int] | None = None, down: bool = False) -> None:
        self.http.post(self.sink + "/_control/faults", json={"access_token": access_token,
                                                            "statuses": statuses or [], "down": down}, timeout=5)

    def messages_mentioning(self, text: str, access_token: str | None = None) -> list[dict]:
        return [m for m in self.messages(access_token) if text in json.dumps(m["message"], ensure_ascii=False)]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            time.sleep(interval)
        return predicate()

    # --- GitLab, the config store, chat ---------------------------------------------------------------
    def push(self, files: dict, *more: dict, project: str | None = None, message: str = "config: change") -> dict:
        """Commit to the fake GitLab (the config repo unless told), one commit per dict of path -> text (None
        deletes); the Push Hook GitLab sends for it, laid over the fixture so every field GitLab sends is there."""
        commits = [{"message": f"{message} ({i + 1})" if more else message, "files": f} for i, f in
                   enumerate((files, *more))]
        pushed = self.http.post(self.gitlab + "/_control/push", timeout=10, json={
            "project": project or self.config_repo, "branch": "main", "commits": commits}).json()
        return {**json.loads((FIXTURES / "gitlab" / "push.json").read_text(encoding="utf-8")), **pushed}

    def post_gitlab(self, hook: dict, delivery: str | None = None) -> requests.Response:
        headers = {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": delivery or f"delivery-{self.next_number()}"}
        return self.post("/webhooks/gitlab", json.dumps(hook, ensure_ascii=False).encode(), headers=headers)

    def gitlab_calls(self, method: str = "", suffix: str = "") -> list[dict]:
        calls = self.http.get(self.gitlab + "/_control/calls", timeout=5).json()["calls"]
        return [c for c in calls if method in ("", c["method"]) and c["path"].endswith(suffix)]

    def gitlab_merge_requests(self, project: str) -> list[dict]:
        return self.http.get(self.gitlab + "/_control/merge_requests", params={"project": project},
                             timeout=5).json()["merge_requests"]

    def gitlab_file(self, project: str, path: str, ref: str = "main") -> str | None:
        found = self.http.get(self.gitlab + "/_control/file", params={"project": project, "path": path, "ref": ref},
                              timeout=5)
        return found.json()["content"] if found.ok else None

    def config_versions(self) -> list[str]:
        """The versions the config store holds, current first, then every save oldest first."""
        items = self.ddb.query(TableName="opsbot-local-ConfigTable", KeyConditionExpression="pk = :pk",
                               ExpressionAttributeValues={":pk": {"S": "config"}}, ConsistentRead=True)["Items"]
        current = [i["version"]["S"] for i in items if i["sk"]["S"] == "current"]
        return current + [i["version"]["S"] for i in items if i["sk"]["S"].startswith("version#")]

    def chat(self, text: str, staff_id: str = "alice.wang") -> tuple[dict, str]:
        """@opsbot `text` from the person with this staff id; (the callback's answer, the session's token)."""
        from local.chat import callback

        message = callback(text, {"id": staff_id, "dingtalk_user_id": staff_id}, self.sink)
        answer = self.post("/webhooks/dingtalk", json.dumps(message, ensure_ascii=False).encode())
        session = message["sessionWebhook"].split("session=")[1]
        return answer.json(), f"session:{session}"

    def drone_log(self, slug: str, number: int, stage: int, step: int, lines: list[str]) -> None:
        self.http.post(self.drone + "/_control/logs", timeout=5, json={
            "slug": slug, "number": number, "stage": stage, "step": step, "lines": lines}).raise_for_status()

    def dead_letters(self) -> list[str]:
        received = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                            WaitTimeSeconds=0)
        return [m["Body"] for m in received.get("Messages", [])]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    api_port, sink_port, moto_port, drone_port, gitlab_port = (free_port() for _ in range(5))
    config_dir = tmp_path_factory.mktemp("config") / "config"
    _write_config(config_dir, sink_port, drone_port, gitlab_port)
    log_path = tmp_path_factory.mktemp("logs") / "stack.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", "--port", str(api_port), "--sink-port", str(sink_port),
         "--moto-port", str(moto_port), "--drone-port", str(drone_port), "--gitlab-port", str(gitlab_port),
         "--config", str(config_dir), "--retry-base-seconds", "1",
         "--max-receive-count", "3", "--quiet"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(api + "/_local/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("local stack did not start:\n" + log_path.read_text())
            time.sleep(0.3)
        config_repo = yaml.safe_load((config_dir / "opsbot.yaml").read_text(encoding="utf-8"))["gitlab"]["config_repo"]
        yield Stack(api, f"http://127.0.0.1:{sink_port}", f"http://127.0.0.1:{moto_port}",
                    f"http://127.0.0.1:{drone_port}", f"http://127.0.0.1:{gitlab_port}", config_repo)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
