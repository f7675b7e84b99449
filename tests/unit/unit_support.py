"""Helpers shared by the unit tests: the stack's test environment, request builders, handler loading."""

from __future__ import annotations

import base64
import functools
import importlib.util
import itertools
import json
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLE_CONFIG = ROOT / "config" / "example"
FUNCTIONS = ROOT / "functions"
LAYER_PATH = ROOT / "layers" / "opsbot"

SIGNATURE_VECTORS = json.loads((FIXTURES / "signatures.json").read_text(encoding="utf-8"))

# Every variable of opsbot.settings.ENVIRONMENT is set for the tests: its default unless named here (the queue
# URLs are replaced by moto's).
STACK_OVERRIDES = {
    "OPSBOT_STAGE": "local",
    "CONFIG_TABLE": "opsbot-test-config",
    "STATE_TABLE": "opsbot-test-state",
    "AUDIT_TABLE": "opsbot-test-audit",
    "RELEASES_TABLE": "opsbot-test-releases",
    "WORK_QUEUE_URL": "",
    "DEAD_LETTER_QUEUE_URL": "",
    "DRONE_WEBHOOK_SECRET_PARAM": "/opsbot/test/drone/webhook-secret",
    "GITLAB_WEBHOOK_TOKEN_PARAM": "/opsbot/test/gitlab/webhook-token",
    "DINGTALK_APP_SECRET_PARAM": "/opsbot/test/dingtalk/app-secret",
    "ACTION_SIGNING_KEY_PARAM": "/opsbot/test/actions/signing-key",
    "FEISHU_APP_SECRET_PARAM": "/opsbot/test/feishu/app-secret",
    "FEISHU_VERIFICATION_TOKEN_PARAM": "/opsbot/test/feishu/verification-token",
    "SLACK_SIGNING_SECRET_PARAM": "/opsbot/test/slack/signing-secret",
    "SLACK_BOT_TOKEN_PARAM": "/opsbot/test/slack/bot-token",
    "IDEMPOTENCY_TTL_SECONDS": "172800",
    "HTTP_TIMEOUT_SECONDS": "2",
    "RETRY_BASE_SECONDS": "30",
    "RETRY_MAX_SECONDS": "900",
    "CONFIG_CACHE_SECONDS": "60",
    "SECRET_CACHE_SECONDS": "300",
    # Pinned peers: the fakes run on loopback, on ports of their own (a host alone allows any port of it).
    "GITLAB_HOSTS": "127.0.0.1",
    "DRONE_HOSTS": "127.0.0.1",
    "KUBERNETES_HOSTS": "127.0.0.1",
    "DINGTALK_ROBOT_HOSTS": "oapi.dingtalk.com,127.0.0.1",
    "FEISHU_ROBOT_HOSTS": "open.feishu.cn,open.larksuite.com,127.0.0.1",
    "WECOM_ROBOT_HOSTS": "qyapi.weixin.qq.com,127.0.0.1",
    "SLACK_ROBOT_HOSTS": "hooks.slack.com,127.0.0.1",
}


def closed_peers() -> dict[str, str]:
    """Where the tests' `local://` roles resolve (LOCAL_PEERS). The example names its peers by role (local://drone),
    as the local stack resolves them; here each role is a closed loopback port (9, discard), pinned like the fakes:
    a test that talks to a peer points the config at its fake (example_documents, GitLabFake.point_at_me) or
    watches the send, and one that forgets gets a refused connection, never another process's stack on the
    default ports."""
    from opsbot.config.model import LOCAL_PEER_ROLES

    return {role: "127.0.0.1:9" if role == "dns" else "http://127.0.0.1:9" for role in LOCAL_PEER_ROLES}


def _stack_env() -> dict[str, str]:
    from local.ports import peers_variable
    from opsbot.settings import ENVIRONMENT

    overrides = {**STACK_OVERRIDES, "LOCAL_PEERS": peers_variable(closed_peers())}
    return {name: overrides.get(name, default) for name, (_description, default) in ENVIRONMENT.items()}


STACK_ENV = _stack_env()

# The values stored in SSM under the *_PARAM names above.
SECRETS = {
    "DRONE_WEBHOOK_SECRET_PARAM": SIGNATURE_VECTORS["drone_webhook"]["secret"],
    "GITLAB_WEBHOOK_TOKEN_PARAM": "gitlab-webhook-token-for-unit-tests",
    "DINGTALK_APP_SECRET_PARAM": SIGNATURE_VECTORS["dingtalk_outgoing_callback"]["app_secret"],
    "ACTION_SIGNING_KEY_PARAM": "release-link-signing-key-for-unit-tests",
    "FEISHU_APP_SECRET_PARAM": "feishu-app-secret-for-unit-tests",
    "FEISHU_VERIFICATION_TOKEN_PARAM": "feishu-verification-token-for-unit-tests",
    "SLACK_SIGNING_SECRET_PARAM": "slack-signing-secret-for-unit-tests",
    "SLACK_BOT_TOKEN_PARAM": "xoxb-unit-test-bot-token",
}
DRONE_SECRET = SECRETS["DRONE_WEBHOOK_SECRET_PARAM"]
GITLAB_TOKEN = SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"]
DINGTALK_APP_SECRET = SECRETS["DINGTALK_APP_SECRET_PARAM"]
DINGTALK_APP_KEY = "dingunittestappkey"  # the app's AppKey (Client ID) for DingTalk's login; its secret is the above
GITLAB_API_TOKEN = "local-gitlab-token"  # the example config's gitlab.token, which the fake GitLab checks
ACTION_SIGNING_KEY = SECRETS["ACTION_SIGNING_KEY_PARAM"]
FEISHU_APP_ID = "cli_unittest0psb0t"  # the Feishu app whose bot takes chat; its secret and token are the above
FEISHU_APP_SECRET = SECRETS["FEISHU_APP_SECRET_PARAM"]
FEISHU_VERIFICATION_TOKEN = SECRETS["FEISHU_VERIFICATION_TOKEN_PARAM"]
SLACK_APP_ID = "AUNITTEST01"  # the Slack app whose interactivity presses buttons; its signing secret is the above
SLACK_SIGNING_SECRET = SECRETS["SLACK_SIGNING_SECRET_PARAM"]
SLACK_BOT_TOKEN = SECRETS["SLACK_BOT_TOKEN_PARAM"]

_request_ids = itertools.count(1)


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> dict:
    return json.loads(fixture_bytes(relative).decode("utf-8"))


def to_body(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def http_event(
    path: str,
    body: bytes | str | None,
    headers: dict | None = None,
    method: str = "POST",
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> dict:
    """An API Gateway HTTP API (payload 2.0) event, headers lowercased as API Gateway delivers them."""
    all_headers = {"host": "opsbot.example.com", "user-agent": "unit-test"}
    if content_type is not None:
        all_headers["content-type"] = content_type
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8")
    request_id = f"req-{next(_request_ids)}-{uuid.uuid4().hex[:8]}"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "body": body,
        "isBase64Encoded": base64_encoded,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234",
            "domainName": "opsbot.example.com",
            "domainPrefix": "opsbot",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "unit-test",
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "25/Nov/2024:08:05:01 +0000",
            "timeEpoch": 1732521901000,
        },
    }


def drone_event(
    body: bytes,
    event: str | None = "build",
    secret: str = DRONE_SECRET,
    now: float | None = None,
    headers: dict | None = None,
    **kwargs,
) -> dict:
    from opsbot.drone.signature import sign

    all_headers = sign(body, secret, now)
    if event is not None:
        all_headers["X-Drone-Event"] = event
    all_headers.update(headers or {})
    return http_event("/webhooks/drone", body, all_headers, **kwargs)


def gitlab_event(
    body: bytes,
    event: str | None = "Push Hook",
    token: str | None = GITLAB_TOKEN,
    headers: dict | None = None,
    **kwargs,
) -> dict:
    all_headers = {}
    if event is not None:
        all_headers["X-Gitlab-Event"] = event
    if token is not None:
        all_headers["X-Gitlab-Token"] = token
    all_headers.update(headers or {})
    return http_event("/webhooks/gitlab", body, all_headers, **kwargs)


def dingtalk_event(
    body: bytes, secret: str = DINGTALK_APP_SECRET, now_ms: int | None = None, headers: dict | None = None, **kwargs
) -> dict:
    from opsbot.dingtalk.signature import callback_headers

    all_headers = callback_headers(secret, now_ms)
    all_headers.update(headers or {})
    return http_event("/webhooks/dingtalk", body, all_headers, **kwargs)


def json_body(response: dict) -> dict:
    """The JSON body of a handler's response, after checking it is JSON and carries no stack trace."""
    assert "Traceback" not in (response.get("body") or "")
    assert response["headers"]["Content-Type"].startswith("application/json")
    return json.loads(response["body"])


class FakeLambdaContext:
    function_name = "opsbot-unit-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:opsbot-unit-test"
    log_group_name = "/aws/lambda/opsbot-unit-test"
    log_stream_name = "2024/11/25/[$LATEST]unit"

    def __init__(self, timeout_seconds: float = 60.0):
        self.aws_request_id = uuid.uuid4().hex
        self.ends_at = time.monotonic() + timeout_seconds  # the worker's timeout, counted from the fixture's start

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))


class Handlers:
    """functions/<name>/app.py, each imported under a unique module name (they are all called app.py)."""

    def __init__(self):
        self._modules: dict = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._modules:
            path = FUNCTIONS / name / "app.py"
            if not path.is_file():
                raise AttributeError(name)
            spec = importlib.util.spec_from_file_location(f"opsbot_function_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[name] = module
        return self._modules[name]


def sqs_event(
    messages: list[dict], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:opsbot-test-WorkQueue"
) -> dict:
    """The Lambda SQS event for messages received from moto (so their receipt handles are real)."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", "1732521901000"),
                    "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", "1732521901000"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


# --- the example config pointed at the fakes of Drone and DingTalk (see conftest's chat_config) ---------------

DRONE_API_TOKEN = "local-drone-token"  # the example config's drone.token, a literal allowed on the local stage


@functools.cache
def _example_documents() -> list:
    from opsbot.config.yaml_source import read_directory

    documents, problems = read_directory(EXAMPLE_CONFIG)
    assert problems == []
    return documents


def example_documents(
    drone: str | None = None, dingtalk: str | None = None, gitops: bool = False, freezes: bool = False
) -> list:
    """config/example's documents; with `drone` / `dingtalk` base URLs, Drone's server and the robots' webhooks
    point there instead of the local stack's ports. Every environment deploys through Drone's promote (its `deploy:`
    left out), as the example did before GitOps releases, unless `gitops`: the tests of the Drone way run on
    shop-api's seeded builds; GitOps releases have their own tests (test_release_steps.py)."""
    import copy
    from urllib.parse import urlsplit

    documents = copy.deepcopy(_example_documents())  # each caller may change its copy (line numbers kept)
    # The example's freeze windows only where a test asks for them: no test fails for running on a Friday night.
    for document in documents if not freezes else ():
        data = document.data or {}
        for part in [data.get("governance") or {}, data, *(data.get("environments") or {}).values()]:
            if isinstance(part, dict):
                part.pop("freezes", None)
    for document in documents if not gitops else ():
        for env in ((document.data or {}).get("environments") or {}).values():
            env.pop("deploy", None)
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    assert root["drone"]["token"] == DRONE_API_TOKEN
    if drone:
        root["drone"]["server"] = drone
    if dingtalk:
        for robot in root["robots"].values():
            parts = urlsplit(robot["webhook"])
            robot["webhook"] = f"{dingtalk}{parts.path}?{parts.query}"
    return documents


def example_robots(kind: str = "dingtalk") -> dict[str, tuple[str, str]]:
    """The example's robots of one kind as its fake takes them: key in the URL -> (robot name, signing secret)."""
    from local.stack import robot_keys
    from opsbot.config.model import validate

    return robot_keys(validate(example_documents(), allow_literal_secrets=True), kind)


def example_staff() -> list[dict]:
    """The example's people as the fake DingTalk login knows its organisation's staff."""
    root = next(d for d in example_documents() if d.name == "opsbot.yaml").data
    return [
        {"userid": p["dingtalk_user_id"], "name": p["name"], "mobile": p.get("mobile", "")}
        for p in root["people"]
        if p.get("dingtalk_user_id")
    ]


def deliver_once(config, robot, message, key: str) -> str:
    """delivery.robot.deliver as its callers run it: inside a run-once effect (state.effects), each call its own."""
    from opsbot.delivery import robot as delivery
    from opsbot.state import effects

    once = f"test-deliver#{uuid.uuid4().hex}"
    return effects.once(once, lambda: {"outcome": delivery.deliver(config, robot, message, key)})["outcome"]


class DingTalkCard:
    """A message (opsbot.message.Message) as DingTalk's robot receives it: the body, its digest line, and whom it
    @-mentions, with people resolved against `config`."""

    def __init__(self, message, config):
        from types import SimpleNamespace

        from opsbot.channels import dingtalk, markdown

        self.built = message
        self.message = dingtalk.render(message, config.person)
        self.digest_line = markdown.dingtalk(message.one_line(), config.person, dingtalk.handle)
        at = self.message.get("at") or {}
        self.mentions = SimpleNamespace(user_ids=at.get("atUserIds", []), people=message.mentions.people)


def sweep_expired(aws, *needles: str) -> list[str]:
    """DynamoDB's TTL, brought forward: the state table's items whose key holds one of `needles` (every item, with
    none) get their `expires_at` put in the past, then every item whose `expires_at` is past is deleted, as the
    TTL sweep deletes it; an item without `expires_at` (a permanent marker) stays. The keys that went."""
    now = int(time.time())
    gone = []
    for item in aws.ddb.scan(TableName=STACK_ENV["STATE_TABLE"])["Items"]:
        if "expires_at" not in item:
            continue
        key = item["pk"]["S"]
        if int(item["expires_at"]["N"]) < now or not needles or any(n in key for n in needles):
            aws.ddb.delete_item(TableName=STACK_ENV["STATE_TABLE"], Key={"pk": item["pk"]})
            gone.append(key)
    return gone
