"""Integration tests: start the local stack in a subprocess and drive it over real HTTP on loopback.

The stack runs the real handlers against moto's server, with the fake DingTalk (signatures, error codes,
rate limits) from local/fake_dingtalk.py and, on the same port, the fake Feishu, WeCom and Slack webhooks and the
SES front (local/fake_feishu.py, fake_wecom.py, fake_slack.py, fake_ses.py), the fake Drone API from
local/fake_drone.py and the fake GitLab API from local/fake_gitlab.py, each on its own free port. Each test talks
to its own robot or uses fresh build numbers, so tests do not see each other's messages or budgets. The fake
Drone's builds and recorded calls are shared by the session: a test that counts Drone calls resets it first
(`stack.drone_reset()`). Chat tests reply through session webhooks, which the fake DingTalk does not rate limit,
to keep off the shop-backend robot's 20/min budget.
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
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # fuzz_support.py, shared with the unit tests

import fuzz_support  # noqa: E402

from local.chat import callback  # noqa: E402
from local.signing import sign_for  # noqa: E402

_FUZZ_HEADER: list[str] = []


def pytest_configure(config):
    """One fuzz seed for the run, set before pytest-xdist starts its workers (see fuzz_support.share_seed)."""
    _FUZZ_HEADER[:] = [fuzz_support.share_seed()]


def pytest_report_header(config):
    return _FUZZ_HEADER


# Robots the tests add to the example config, each with its own group (access token) and project. The fuzz
# tests send their few well-formed builds and releases to fuzz-api, and the real build after them to canary-api.
TEST_ROBOTS = {
    "burst": "burst-api",
    "flaky": "flaky-api",
    "bad": "bad-api",
    "ops": "ops-api",
    "fuzz": "fuzz-api",
    "canary": "canary-api",
    "pages": "pages-api",
    "gov": "gov-api",
}
# Environments of the test projects: fuzz-api's release links (tests/integration/test_webhook_fuzz.py), pages-api's
# (tests/integration/test_pages_in_a_browser.py); gov-api's locks and freezes (tests/integration/test_governance.py).
TEST_ENVIRONMENTS = {
    "fuzz-api": {"staging": {"branch": "main"}},
    "pages-api": {"staging": {"branch": "main"}, "production": {"branch": "main", "approvals": 1}},  # browser tests
    "gov-api": {"staging": {"branch": "main"}, "production": {"branch": "main", "approvals": 1}},
}


def governance_windows(now: float) -> list[dict]:
    """gov-api's freeze windows, written when its stack starts: production frozen from two hours ago for two days,
    and a window on staging that opens in 30 minutes (announced within the hour), in Shanghai time."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo("Asia/Shanghai"))

    def clock(delta_minutes: int) -> str:
        return (local + timedelta(minutes=delta_minutes)).strftime("%Y-%m-%d %H:%M")

    return [
        {
            "name": "gov-freeze",
            "reason": "大促封网 big sale freeze",
            "start": clock(-120),
            "end": clock(2 * 24 * 60),
            "environments": ["production"],
        },  # fmt: skip
        {
            "name": "gov-soon",
            "reason": "机房切换 data centre move",
            "start": clock(31),
            "end": clock(90),
            "environments": ["staging"],
        },  # fmt: skip
    ]


# The other channels' robots the tests add: `<kind>-<role>`, each but `ops` with its project `<kind>-<role>-api`.
CHANNELS = ("feishu", "wecom", "slack", "email")
CHANNEL_ROLES = ("burst", "flaky", "bad", "ops")


def channel_robot(kind: str, role: str) -> tuple[str, dict]:
    """The robot `<kind>-<role>` and its config, and the key its fake knows it by (`robot_key`)."""
    name = f"{kind}-{role}"
    return name, {
        "feishu": {
            "kind": "feishu",
            "webhook": f"local://feishu/open-apis/bot/v2/hook/local-{name}",
            "secret": f"{name}-secret",
        },
        "wecom": {"kind": "wecom", "webhook": f"local://wecom/cgi-bin/webhook/send?key=local-{name}"},
        "slack": {"kind": "slack", "webhook": f"local://slack/services/TLOCAL/B{role}/local-{name}"},
        "email": {
            "kind": "email",
            "from": f"{name}@opsbot.example",
            "to": [f"{role}-team@example.com"],
            "region": "us-east-1",
        },
    }[kind]


def robot_key(kind: str, role: str) -> str:
    """How the channel's fake (and its /_control/<kind>/… endpoints) names the robot `<kind>-<role>` (DingTalk's
    test robots are TEST_ROBOTS', named by their role)."""
    name = f"{kind}-{role}"
    return {
        "dingtalk": f"local-{role}",
        "feishu": f"local-{name}",
        "wecom": f"local-{name}",
        "slack": f"TLOCAL/B{role}/local-{name}",
        "email": f"{name}@opsbot.example",
    }[kind]


# A project the tests add with a GitLab webhook token of its own (a literal: the local stack allows one).
OWN_TOKEN_REPO, OWN_WEBHOOK_TOKEN = "shop/tokened-api", "local-tokened-api-webhook-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_example_freezes(directory: Path) -> None:
    """The example's freeze windows taken out: a test must not fail because it runs on a Friday night or during the
    Spring Festival. The governance tests add the windows they need (test_governance.py)."""
    for path in [directory / "opsbot.yaml", *(directory / "projects").glob("*.yaml")]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found = [data.get("governance") or {}, data, *(data.get("environments") or {}).values()]
        if any(isinstance(part, dict) and "freezes" in part for part in found):
            for part in found:
                if isinstance(part, dict):
                    part.pop("freezes", None)
            path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _write_config(directory: Path) -> None:
    """The example config, the tests' robots and projects, and every environment deploying through Drone's promote
    (deploy_seed.drone_way): the tests of the Drone way run on shop-api's seeded builds as before GitOps releases;
    those run on their own stack (`gitops_stack`, test_releases.py). It names no port of the example's: the stack
    resolves its `local://` peers to its own fakes, on whatever ports it runs them."""
    from local.deploy_seed import drone_way

    shutil.copytree(ROOT / "config" / "example", directory)
    without_example_freezes(directory)
    projects = {f"projects/{p.name}": p.read_text(encoding="utf-8") for p in (directory / "projects").glob("*.yaml")}
    for name, text in drone_way(projects).items():
        (directory / name).write_text(text, encoding="utf-8")
    global_file = directory / "opsbot.yaml"
    config = yaml.safe_load(global_file.read_text(encoding="utf-8"))
    # A zone Route 53 does not have shows Route 53 refusing.
    config["ops"]["dns_zones"]["gone"] = {
        "zone_id": "Z0GONEZONE",
        "name": "gone.example",
        "environment": "staging",
        "nameservers": ["local://dns"],
    }
    template = next(iter(config["robots"].values()))
    for robot, project in TEST_ROBOTS.items():
        config["robots"][robot] = {
            **template,
            "webhook": template["webhook"].split("access_token=")[0] + f"access_token=local-{robot}",
            "secret": f"SEC-local-{robot}-secret",
        }
        (directory / "projects" / f"{project}.yaml").write_text(
            yaml.safe_dump(
                {
                    "repo": f"shop/{project}",
                    "robot": robot,
                    "notify": {"on_failure": True, "on_fixed": True, "on_success": ["main"]},
                    **({"environments": TEST_ENVIRONMENTS[project]} if project in TEST_ENVIRONMENTS else {}),
                    **({"freezes": governance_windows(time.time())} if project == "gov-api" else {}),
                }
            ),
            encoding="utf-8",
        )
    for kind in CHANNELS:
        for role in CHANNEL_ROLES:
            name, spec = channel_robot(kind, role)
            config["robots"][name] = spec
            if role != "ops":
                (directory / "projects" / f"{name}-api.yaml").write_text(
                    yaml.safe_dump({"repo": f"shop/{name}-api", "robot": name, "notify": {"on_failure": True}}),
                    encoding="utf-8",
                )
    alice = next(p for p in config["people"] if p["id"] == "alice")
    alice.update(wecom_user_id="alice.wang", slack_user_id="U0ALICE")
    (directory / "projects" / "tokened-api.yaml").write_text(
        yaml.safe_dump({"repo": OWN_TOKEN_REPO, "robot": "burst", "webhook_token": OWN_WEBHOOK_TOKEN}), encoding="utf-8"
    )
    global_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


class Stack:
    def __init__(
        self,
        api: str,
        sink: str,
        moto: str,
        drone: str = "",
        config_dir: Path | None = None,
        log_path: Path | None = None,
        gitlab: str = "",
        kube: str = "",
        ssm: str = "",
    ):
        self.api, self.sink, self.moto, self.drone, self.gitlab = api, sink, moto, drone, gitlab
        self.kube, self.ssm = kube, ssm
        self.config_dir, self.log_path = config_dir, log_path
        self.http = requests.Session()
        self._numbers = itertools.count(1000 + os.getpid() % 1000 * 100)
        aws = dict(endpoint_url=moto, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
        self.sqs = boto3.client("sqs", **aws)
        self.ddb = boto3.client("dynamodb", **aws)
        self.dlq_url = self.sqs.get_queue_url(QueueName="opsbot-local-DeadLetterQueue")["QueueUrl"]
        self.work_url = self.sqs.get_queue_url(QueueName="opsbot-local-WorkQueue")["QueueUrl"]

    # --- senders -------------------------------------------------------------------------------------
    def next_number(self) -> int:
        return next(self._numbers)

    @staticmethod
    def drone_body(
        fixture: str = "build_failure", number: int | None = None, repo: str | None = None, **build_fields
    ) -> bytes:
        delivery = json.loads((FIXTURES / "drone" / f"{fixture}.json").read_text(encoding="utf-8"))
        delivery = copy.deepcopy(delivery)
        if number is not None:
            delivery["build"]["number"] = number
        if repo is not None:
            delivery["repo"]["slug"] = f"shop/{repo}"
            delivery["repo"]["name"] = repo
        delivery["build"].update(build_fields)
        return json.dumps(delivery, ensure_ascii=False).encode()

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict | None = None,
        sign: bool = True,
        content_type: str = "application/json",
    ) -> requests.Response:
        all_headers = {"Content-Type": content_type, **(sign_for(path, body) if sign else {}), **(headers or {})}
        return self.http.post(self.api + path, data=body, headers=all_headers, timeout=10)

    def post_drone(self, body: bytes, **kwargs) -> requests.Response:
        return self.post(
            "/webhooks/drone", body, headers={"X-Drone-Event": "build", **kwargs.pop("headers", {})}, **kwargs
        )

    # --- the fake DingTalk ---------------------------------------------------------------------------
    def messages(self, access_token: str | None = None) -> list[dict]:
        found = self.http.get(self.sink + "/_control/messages", timeout=5).json()["messages"]
        return [m for m in found if access_token is None or m["access_token"] == access_token]

    def rejections(self) -> list[dict]:
        return self.http.get(self.sink + "/_control/rejections", timeout=5).json()["rejections"]

    def fault(self, access_token: str, statuses: list[int] | None = None, down: bool = False) -> None:
        self.http.post(
            self.sink + "/_control/faults",
            json={"access_token": access_token, "statuses": statuses or [], "down": down},
            timeout=5,
        )

    # --- the other channels' fakes (on the sink's port) and SES on moto --------------------------------------------
    def channel_messages(self, kind: str, key: str | None = None) -> list[dict]:
        found = self.http.get(f"{self.sink}/_control/{kind}/messages", timeout=5).json()["messages"]
        return [m for m in found if key is None or m["robot"] == key]

    def channel_rejections(self, kind: str, key: str | None = None) -> list[dict]:
        found = self.http.get(f"{self.sink}/_control/{kind}/rejections", timeout=5).json()["rejections"]
        return [r for r in found if key is None or r["robot"] == key]

    def channel_fault(self, kind: str, key: str, statuses: list[int] | None = None, down: bool = False) -> None:
        spec = {"robot": key, "statuses": statuses or [], "down": down}
        self.http.post(f"{self.sink}/_control/{kind}/faults", json=spec, timeout=5).raise_for_status()

    def channel_rotate(self, kind: str, key: str, **spec) -> None:
        """The group's admin resets the robot's secret (`secret=`) or its webhook (`to=` a new key)."""
        self.http.post(f"{self.sink}/_control/{kind}/rotate", json={"robot": key, **spec}, timeout=5).raise_for_status()

    def ses_messages(self) -> list[dict]:
        """What moto's SES keeps of every e-mail sent (its API: /moto-api/data.json)."""
        return self.http.get(f"{self.moto}/moto-api/data.json", timeout=10).json()["ses"]["Message"]

    def messages_mentioning(self, text: str, access_token: str | None = None) -> list[dict]:
        return [m for m in self.messages(access_token) if text in json.dumps(m["message"], ensure_ascii=False)]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            time.sleep(interval)
        return predicate()

    # --- chat: DingTalk callbacks to /webhooks/dingtalk ----------------------------------------------
    def person(self, person_id: str) -> dict:
        """A person from this stack's config, as local.chat.callback takes it."""
        people = yaml.safe_load((self.config_dir / "opsbot.yaml").read_text(encoding="utf-8"))["people"]
        found = next((p for p in people if p["id"] == person_id), None)
        if found is None:
            raise KeyError(f"no person {person_id} in the test config")
        return found

    def chat(
        self,
        text: str,
        as_person: str | None = "alice",
        session: bool = True,
        msg_id: str | None = None,
        body_override: dict | None = None,
    ) -> tuple[requests.Response, dict]:
        """Say `text` to the bot as a configured person (None: a stranger), as DingTalk's signed callback.

        With `session=False` the callback carries no sessionWebhook, so results go to the project's robot.
        `body_override` replaces top-level fields of the callback. Returns the response and the body sent."""
        body = callback(text, None if as_person is None else self.person(as_person), self.sink)
        if not session:
            body.pop("sessionWebhook")
            body.pop("sessionWebhookExpiredTime")
        if msg_id is not None:
            body["msgId"] = msg_id
        body.update(body_override or {})
        return self.post_chat(body), body

    def post_chat(self, body: dict | bytes) -> requests.Response:
        """POST an already built callback body (dict or raw bytes) with valid signature headers."""
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return self.post("/webhooks/dingtalk", raw)

    def session_messages(self, session_url: str) -> list[dict]:
        """What the bot posted into the conversation of a callback's sessionWebhook."""
        session = parse_qs(urlsplit(session_url).query)["session"][0]
        return [m["message"] for m in self.messages(f"session:{session}")]

    # --- the fake Drone ------------------------------------------------------------------------------
    def drone_calls(self, method: str | None = None, path_contains: str | None = None) -> list[dict]:
        found = self.http.get(self.drone + "/_control/calls", timeout=5).json()["calls"]
        return [
            c
            for c in found
            if (method is None or c["method"] == method) and (path_contains is None or path_contains in c["path"])
        ]

    def drone_reset(self) -> None:
        """Back to the seeded builds, with no calls recorded and no faults."""
        self.http.post(self.drone + "/_control/reset", json={}, timeout=5).raise_for_status()

    def drone_fault(self, statuses: list[int] | None = None, down: bool = False) -> None:
        """The next API calls answer `statuses` in turn; `down` answers 503 to everything until cleared."""
        self.http.post(
            self.drone + "/_control/faults", json={"statuses": statuses or [], "down": down}, timeout=5
        ).raise_for_status()

    def drone_add_builds(self, slug: str, builds: list[dict]) -> list[int]:
        """Builds (partial: the fake derives the rest) that exist until the next drone_reset()."""
        response = self.http.post(self.drone + "/_control/builds", json={"slug": slug, "builds": builds}, timeout=5)
        response.raise_for_status()
        return response.json()["numbers"]

    def drone_log(self, slug: str, number: int, stage: int, step: int, lines: list[str]) -> None:
        """A step's log, as the logs API will give it."""
        self.http.post(
            self.drone + "/_control/logs",
            timeout=5,
            json={"slug": slug, "number": number, "stage": stage, "step": step, "lines": lines},
        ).raise_for_status()

    # --- the fake GitLab and the config store --------------------------------------------------------
    @property
    def config_repo(self) -> str:
        return yaml.safe_load((self.config_dir / "opsbot.yaml").read_text(encoding="utf-8"))["gitlab"]["config_repo"]

    def push(self, files: dict, *more: dict, project: str | None = None, message: str = "config: change") -> dict:
        """Commit to the fake GitLab (the config repo unless told), one commit per dict of path -> text (None
        deletes); the Push Hook GitLab sends for it, laid over the fixture so every field GitLab sends is there."""
        commits = [
            {"message": f"{message} ({i + 1})" if more else message, "files": f} for i, f in enumerate((files, *more))
        ]
        pushed = self.http.post(
            self.gitlab + "/_control/push",
            timeout=10,
            json={"project": project or self.config_repo, "branch": "main", "commits": commits},
        ).json()
        return {**json.loads((FIXTURES / "gitlab" / "push.json").read_text(encoding="utf-8")), **pushed}

    def post_gitlab(self, hook: dict, delivery: str | None = None, event: str = "Push Hook") -> requests.Response:
        headers = {"X-Gitlab-Event": event, "Idempotency-Key": delivery or f"delivery-{self.next_number()}"}
        return self.post("/webhooks/gitlab", json.dumps(hook, ensure_ascii=False).encode(), headers=headers)

    def gitlab_calls(self, method: str = "", suffix: str = "") -> list[dict]:
        calls = self.http.get(self.gitlab + "/_control/calls", timeout=5).json()["calls"]
        return [c for c in calls if method in ("", c["method"]) and c["path"].endswith(suffix)]

    def gitlab_merge_requests(self, project: str) -> list[dict]:
        return self.http.get(self.gitlab + "/_control/merge_requests", params={"project": project}, timeout=5).json()[
            "merge_requests"
        ]

    def gitlab_file(self, project: str, path: str, ref: str = "main") -> str | None:
        found = self.http.get(
            self.gitlab + "/_control/file", params={"project": project, "path": path, "ref": ref}, timeout=5
        )
        return found.json()["content"] if found.ok else None

    def config_versions(self) -> list[str]:
        """The versions the config store holds: the current one first, then every save, oldest first."""
        items = self.ddb.query(
            TableName="opsbot-local-ConfigTable",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "config"}},
            ConsistentRead=True,
        )["Items"]
        current = [i["version"]["S"] for i in items if i["sk"]["S"] == "current"]
        return current + [i["version"]["S"] for i in items if i["sk"]["S"].startswith("version#")]

    def expire(self, *needles: str) -> list[str]:
        """DynamoDB's TTL, brought forward: every state-table item whose key holds one of `needles` gets its
        `expires_at` put in the past (its time has come), then every item whose `expires_at` is past is deleted, as
        the TTL sweep deletes it. An item without `expires_at` (a permanent marker) stays. The keys that went."""
        now = int(time.time())
        gone, start = [], None
        while True:
            page = self.ddb.scan(TableName="opsbot-local-StateTable", **({"ExclusiveStartKey": start} if start else {}))
            for item in page.get("Items", []):
                key = item["pk"]["S"]
                if "expires_at" not in item or not any(needle in key for needle in needles):
                    continue
                self.ddb.update_item(
                    TableName="opsbot-local-StateTable",
                    Key={"pk": item["pk"]},
                    UpdateExpression="SET expires_at = :past",
                    ExpressionAttributeValues={":past": {"N": str(now - 1)}},
                )
                self.ddb.delete_item(
                    TableName="opsbot-local-StateTable",
                    Key={"pk": item["pk"]},
                    ConditionExpression="expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                gone.append(key)
            start = page.get("LastEvaluatedKey")
            if not start:
                return gone

    # --- the audit log and the queues ----------------------------------------------------------------
    def audit_records(self, project: str | None = None) -> list[dict]:
        """Audit records, newest first, from `all` or from one project's partition."""
        pk = f"project#{project}" if project else "all"
        records, start = [], None
        while True:
            page = self.ddb.query(
                TableName="opsbot-local-AuditTable",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ScanIndexForward=False,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            records += [json.loads(item["record"]["S"]) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return records

    def queue_depth(self) -> int:
        """Jobs waiting or in flight on the work queue (moto's counts are exact)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.work_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def take_dead_letters(self, predicate) -> list[dict]:
        """Remove the parked jobs for which predicate(job dict) is true and return them; others stay parked.

        Pages through the whole DLQ (dead_letters() sees only the first 10): each message is hidden while it is
        looked at, and the ones that are not taken are made visible again at once."""
        taken, others = [], []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                try:
                    job = json.loads(message["Body"])
                except ValueError:
                    job = None
                if isinstance(job, dict) and predicate(job):
                    self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                    taken.append(job)
                else:
                    others.append(message["ReceiptHandle"])
        for handle in others:
            self.sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return taken

    def take_parked(self, predicate) -> list[tuple[dict, str]]:
        """Like take_dead_letters, with the reason the worker parked each job for (its `reason` attribute)."""
        taken, others = [], []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                try:
                    job = json.loads(message["Body"])
                except ValueError:
                    job = None
                if isinstance(job, dict) and predicate(job):
                    self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                    reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue", "")
                    taken.append((job, reason))
                else:
                    others.append(message["ReceiptHandle"])
        for handle in others:
            self.sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return taken

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""

    def dead_letters(self) -> list[str]:
        received = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return [m["Body"] for m in received.get("Messages", [])]


def _start_stack(
    tmp_path_factory, write_config=None, name: str = "stack"
) -> tuple[subprocess.Popen, list[int], Path, Path]:
    """The local stack on free ports, up and healthy, with the config `write_config` writes (default: the Drone
    stack's): its process, ports, config directory and log. Ports are chosen free but bound only by the stack, so
    another process (another xdist worker's stack) may take one in between: a stack that exits at start is started
    again on other ports, twice at most."""
    write_config = write_config or _write_config
    for attempt in range(3):
        ports = [free_port() for _ in range(9)]
        api_port, sink_port, moto_port, drone_port, gitlab_port, kube_port, ssm_port, dns_port, argocd_port = ports
        config_dir = tmp_path_factory.mktemp(f"{name}-config") / "config"
        write_config(config_dir)
        log_path = tmp_path_factory.mktemp(f"{name}-logs") / "stack.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.stack",
                    "--port",
                    str(api_port),
                    "--sink-port",
                    str(sink_port),
                    "--moto-port",
                    str(moto_port),
                    "--drone-port",
                    str(drone_port),
                    "--gitlab-port",
                    str(gitlab_port),
                    "--kube-port",
                    str(kube_port),
                    "--ssm-port",
                    str(ssm_port),
                    "--dns-port",
                    str(dns_port),
                    "--argocd-port",
                    str(argocd_port),
                    "--config",
                    str(config_dir),
                    "--retry-base-seconds",
                    "1",
                    "--max-receive-count",
                    "3",
                    "--deploy-seconds",
                    "0",  # a test finishes a Drone deployment itself (/_control/finish): none adds news of its own
                    "--quiet",
                    "--verbose",  # the JSON log lines (warnings and worse, with --quiet) in the output the tests read
                    "--workdir",
                    str(log_path.parent / "workdir"),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{api_port}/_local/health", timeout=1).ok:
                    return process, ports, config_dir, log_path
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        exited = process.poll() is not None  # as when a port was taken: not when it hangs
        _stop(process)
        if attempt == 2 or not exited:
            raise RuntimeError("local stack did not start:\n" + log_path.read_text())
    raise AssertionError("unreachable")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _running(tmp_path_factory, write_config=None, name: str = "stack"):
    process, ports, config_dir, log_path = _start_stack(tmp_path_factory, write_config, name)
    api_port, sink_port, moto_port, drone_port, gitlab_port, kube_port, ssm_port, _dns_port, argocd_port = ports
    api = f"http://127.0.0.1:{api_port}"
    try:
        found = Stack(
            api,
            f"http://127.0.0.1:{sink_port}",
            f"http://127.0.0.1:{moto_port}",
            f"http://127.0.0.1:{drone_port}",
            config_dir,
            log_path,
            f"http://127.0.0.1:{gitlab_port}",
            f"http://127.0.0.1:{kube_port}",
            f"http://127.0.0.1:{ssm_port}",
        )
        found.argocd = f"http://127.0.0.1:{argocd_port}"
        yield found
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The local stack, started once per test process (each pytest-xdist worker starts its own)."""
    yield from _running(tmp_path_factory)


# The GitOps stack's robots: one group per example project, so each release's card is told apart and no test's
# burst reaches another's budget.
GITOPS_ROBOTS = {"shop-api": "g-api", "shop-recommend": "g-recommend", "shop-web": "g-web", "shop-search": "g-search"}
# A project the tests add, released through Flux (the example has none): its file, its cluster objects, its builds.
FLUX_PROJECT = "shop-cart"


def _write_gitops_config(directory: Path) -> None:
    """The example as it is (its GitOps environments; its `local://` peers are this stack's fakes), each project
    telling its own robot, and a Flux-released project beside them."""
    shutil.copytree(ROOT / "config" / "example", directory)
    without_example_freezes(directory)
    global_file = directory / "opsbot.yaml"
    config = yaml.safe_load(global_file.read_text(encoding="utf-8"))
    template = config["robots"]["shop-backend"]
    for project, robot in GITOPS_ROBOTS.items():
        config["robots"][robot] = {
            **template,
            "webhook": template["webhook"].split("access_token=")[0] + f"access_token=local-{robot}",
            "secret": f"SEC-local-{robot}-secret",
        }
        path = directory / "projects" / f"{project}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("robots", None)
        data["robot"] = robot
        for env in (data.get("environments") or {}).values():
            if (env.get("deploy") or {}).get("verify"):  # a verification of seconds, not minutes, in tests
                env["deploy"]["verify"].update(minutes=0.1, interval_seconds=2)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config["ops"]["clusters"]["shop-eks-staging"]["namespaces"].append("flux-system")
    config["robots"]["g-cart"] = {
        **template,
        "webhook": template["webhook"].split("access_token=")[0] + "access_token=local-g-cart",
        "secret": "SEC-local-g-cart-secret",
    }
    global_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (directory / "projects" / f"{FLUX_PROJECT}.yaml").write_text(
        yaml.safe_dump(
            {
                "repo": f"shop/{FLUX_PROJECT}",
                "robot": "g-cart",
                "language": "en",
                "environments": {
                    "staging": {
                        "branch": "main",
                        "deploy": {
                            "file": f"{FLUX_PROJECT}/staging/kustomization.yaml",
                            "image": f"registry.example.com/shop/{FLUX_PROJECT}",
                            "apply": "flux",
                            "flux": {
                                "cluster": "shop-eks-staging",
                                "kind": "Kustomization",
                                "namespace": "flux-system",
                                "name": FLUX_PROJECT,
                            },
                            "workload": {
                                "cluster": "shop-eks-staging",
                                "namespace": "shop-staging",
                                "deployment": FLUX_PROJECT,
                            },
                            "deadline_minutes": 2,
                        },
                    }
                },
            }
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="session")
def gitops_stack(tmp_path_factory):
    """A stack of its own with the example's GitOps environments (shop-api: kustomize + opsbot, production by merge
    request; shop-recommend: Helm values + Argo CD; shop-web: a versions file + a runbook on VMs; shop-search: a
    manifest, watched) and a Flux-released project (shop-cart)."""
    yield from _running(tmp_path_factory, _write_gitops_config, "gitops")
