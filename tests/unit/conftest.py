"""Unit tests: the real handlers and layer code against moto's in-process AWS (no network, no server).

Every test starts from an empty stack: its tables without items, its queues without messages, its SSM parameters
as first written and no resource of any other AWS service (moto's `mock_aws`); dummy AWS credentials and no
endpoint override, the stack's environment variables, and no process-level cache left over from another test.
The stack is made once per process (each pytest-xdist worker has its own) and emptied in place between tests,
which costs a fraction of making it again; a test that changed the stack itself (a table's or queue's settings,
an SSM parameter, another region) gets it made afresh for the next test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "opsbot"
# tests/ too: fuzz_support.py serves the unit and the integration tests alike
for _path in (str(ROOT), str(LAYER), str(Path(__file__).resolve().parent), str(ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# The service name the template gives every function; read when opsbot.log is first imported.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "opsbot")

import boto3  # noqa: E402
import pytest  # noqa: E402
import unit_support  # noqa: E402
from moto import mock_aws  # noqa: E402
from unit_support import SECRETS, STACK_ENV  # noqa: E402

_FUZZ_HEADER: list[str] = []


def pytest_configure(config):
    """One fuzz seed for the run, set before pytest-xdist starts its workers (see fuzz_support.share_seed)."""
    import fuzz_support

    _FUZZ_HEADER[:] = [fuzz_support.share_seed()]


def pytest_report_header(config):
    return _FUZZ_HEADER


_CLIENTS: dict = {}
_SSM_PROVIDER: list = []  # Powertools' SSM provider on our client, made once (see _reset_process_caches)


def _client(service: str):
    """Clients for the tests' own look-ups, made once: moto intercepts them whenever a mock is active."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name="us-east-1")
    return _CLIENTS[service]


def _reset_process_caches() -> None:
    from aws_lambda_powertools.utilities.parameters import SSMProvider
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    import opsbot.aws
    import opsbot.channels.feishu_app
    import opsbot.channels.http
    import opsbot.config.store
    import opsbot.dingtalk.login
    import opsbot.secrets
    import opsbot.settings

    opsbot.settings.settings.cache_clear()
    opsbot.aws.client.cache_clear()
    opsbot.config.store.invalidate()
    DEFAULT_PROVIDERS.clear()
    # One provider on a client made once, its parameter cache emptied: Powertools would otherwise build a new
    # boto3 session per test, which re-reads botocore's service models (~0.1 s each time), and each provider
    # made on the one client adds an event handler to it that every later SSM call runs (so the suite slowed
    # down as it went).
    if not _SSM_PROVIDER:
        _SSM_PROVIDER.append(SSMProvider(boto3_client=_client("ssm")))
    _SSM_PROVIDER[0].clear_cache()
    DEFAULT_PROVIDERS["ssm"] = _SSM_PROVIDER[0]
    if hasattr(opsbot.secrets, "clear_cache"):  # a provider of opsbot's own, when secrets.py keeps one
        opsbot.secrets.clear_cache()
    opsbot.dingtalk.login.forget_app_token()  # the fake DingTalk forgets its app tokens between tests too
    opsbot.channels.http.close()
    opsbot.channels.feishu_app.forget_token()


class Aws:
    """The moto resources of one test, and shortcuts to look inside them."""

    def __init__(self, work_queue_url: str, dead_letter_queue_url: str):
        self.ddb = _client("dynamodb")
        self.sqs = _client("sqs")
        self.ssm = _client("ssm")
        self.work_queue_url = work_queue_url
        self.dead_letter_queue_url = dead_letter_queue_url

    def receive(self, queue_url: str | None = None, visibility: int = 0) -> list[dict]:
        """Every visible message of a queue (the work queue by default), left visible unless told otherwise."""
        found: dict[str, dict] = {}
        for _ in range(5):
            batch = self.sqs.receive_message(
                QueueUrl=queue_url or self.work_queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            new = [m for m in batch if m["MessageId"] not in found]
            if not new:
                break
            found.update((m["MessageId"], m) for m in new)
        return list(found.values())

    def dead_letters(self) -> list[dict]:
        return self.receive(self.dead_letter_queue_url)

    def queue_attribute(self, name: str, queue_url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url or self.work_queue_url, AttributeNames=[name])[
            "Attributes"
        ]
        return int(attributes[name])

    def state_items(self, prefix: str = "") -> list[dict]:
        items = self.ddb.scan(TableName=STACK_ENV["STATE_TABLE"])["Items"]
        return [item for item in items if item["pk"]["S"].startswith(prefix)]

    def state_item(self, pk: str) -> dict | None:
        return self.ddb.get_item(TableName=STACK_ENV["STATE_TABLE"], Key={"pk": {"S": pk}}, ConsistentRead=True).get(
            "Item"
        )


def _create_stack() -> Aws:
    ddb = _client("dynamodb")
    for table, has_sort_key in (
        (STACK_ENV["CONFIG_TABLE"], True),
        (STACK_ENV["STATE_TABLE"], False),
        (STACK_ENV["AUDIT_TABLE"], True),
        (STACK_ENV["RELEASES_TABLE"], True),
    ):
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
        if has_sort_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": "S"})
        ddb.create_table(
            TableName=table, KeySchema=keys, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"
        )
    ddb.update_time_to_live(
        TableName=STACK_ENV["STATE_TABLE"], TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )

    sqs = _client("sqs")
    dlq_url = sqs.create_queue(
        QueueName="opsbot-test-DeadLetterQueue", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    work_url = sqs.create_queue(
        QueueName="opsbot-test-WorkQueue",
        Attributes={
            "VisibilityTimeout": "180",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"6"}}',
        },
    )["QueueUrl"]

    ssm = _client("ssm")
    for env_name, value in SECRETS.items():
        ssm.put_parameter(Name=STACK_ENV[env_name], Value=value, Type="SecureString")
    return Aws(work_url, dlq_url)


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# The local stack's AWS_ENDPOINT_URL would send boto3 past moto's in-process mock; a profile or session token
# from the developer's shell has no business in a unit test.
AWS_UNSET_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@pytest.fixture(scope="session", autouse=True)
def _command_names():
    """Configs are validated with the command names that exist, as the worker and the CLI declare them."""
    from opsbot import wiring
    from opsbot.config import names

    names.declare(wiring.known_names)
    yield
    names.declare(None)


@pytest.fixture(scope="session")
def _moto():
    """moto's in-process AWS, patched in once for the session; each test starts from empty backends."""
    from opsbot.log import logger

    logger.setLevel("DEBUG")  # every log call runs, debug ones included
    # Keeping boto3's default session saves re-reading botocore's service models for every client.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture(scope="session")
def _shared_stack(_moto):
    """The stack made once for this process (each xdist worker has its own), then emptied in place per test:
    "aws", the Aws made, and "models", its MadeStack (local/moto_stack.py). Made again when a test changed more than
    the stack's content."""
    return {}


def _empty_stack(shared: dict) -> Aws:
    """An empty stack for the next test: the shared one emptied in place, or, when it cannot be, a new one."""
    from moto.core.base_backend import BackendDict

    from local.moto_stack import MadeStack

    if shared and not shared["models"].empty():
        return Aws(shared["aws"].work_queue_url, shared["aws"].dead_letter_queue_url)
    BackendDict.reset()  # no table, queue or parameter survives from another test
    _reset_process_caches()
    shared.update(aws=_create_stack(), models=MadeStack())
    return shared["aws"]


@pytest.fixture(autouse=True)
def aws(_shared_stack, monkeypatch):
    """moto's AWS with the stack's tables, queues and secrets, and the stack's environment pointing at them; every
    test starts with empty tables and queues and the secrets as first written."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in AWS_UNSET_ENV:
            monkeypatch.delenv(name)
    for name, value in {**AWS_TEST_ENV, **STACK_ENV}.items():
        monkeypatch.setenv(name, value)
    stack = _empty_stack(_shared_stack)
    monkeypatch.setenv("WORK_QUEUE_URL", stack.work_queue_url)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", stack.dead_letter_queue_url)
    _reset_process_caches()
    try:
        yield stack
    finally:
        _reset_process_caches()


@pytest.fixture
def env(monkeypatch):
    """Change a stack setting for one test: env("MAX_BODY_BYTES", "64") also drops the cached settings."""
    import opsbot.settings

    def set_env(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        opsbot.settings.settings.cache_clear()

    return set_env


@pytest.fixture(scope="session")
def handlers():
    """The four Lambda handler modules, each loaded once under its own module name."""
    return unit_support.Handlers()


@pytest.fixture
def lambda_context():
    return unit_support.FakeLambdaContext()


@pytest.fixture
def example_config(aws, _dingtalk_server):
    """The example config (config/example) saved in the config table, as the worker reads it, its robots' webhooks
    on the session's chat sink (a test replaces what it watches: `opsbot.channels.dingtalk.send`)."""
    from opsbot.config import store

    return store.save(unit_support.example_documents(dingtalk=_dingtalk_server.url), "test-version")


@pytest.fixture
def opsbot_log():
    """Everything the opsbot Powertools logger writes during the test, as one string (call it to read)."""
    import io

    from opsbot.log import logger

    buffer = io.StringIO()
    handler = logger.logger_handler
    previous = handler.setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        handler.setStream(previous)


# --- fakes of the bot's peers, on loopback: Drone's API and DingTalk's robot API ------------------------------


def _serve(server) -> str:
    import threading

    threading.Thread(target=server.serve_forever, daemon=True, name=f"fake-{server.server_address[1]}").start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _running(fake, make_server):
    """Serve `fake` on a free loopback port for a session fixture; shut it down afterwards."""
    server = make_server(fake, "127.0.0.1", 0)
    fake.url = _serve(server)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def _drone_server():
    from local.fake_drone import FakeDrone, default_seed, make_server

    fake = FakeDrone(unit_support.DRONE_API_TOKEN, echo=False, login="opsbot")
    for slug, builds in default_seed().items():
        fake.seed(slug, builds)
    yield from _running(fake, make_server)


@pytest.fixture
def fake_drone(_drone_server):
    """The fake Drone (local/fake_drone.py) with the default seed, reset for this test: `.calls`, `.url`."""
    _drone_server.reset()
    return _drone_server


@pytest.fixture(scope="session")
def _dingtalk_server():
    from local.fake_dingtalk import FakeDingTalk, make_server
    from local.fake_feishu import FakeFeishu
    from local.fake_slack import FakeSlack

    fake = FakeDingTalk(
        unit_support.example_robots(),
        echo=False,
        app_key=unit_support.DINGTALK_APP_KEY,
        app_secret=unit_support.DINGTALK_APP_SECRET,
        staff=unit_support.example_staff(),
    )
    # The example's Feishu group (shop-api posts to DingTalk and Feishu), on the same sink as in the local stack.
    fake.feishu = FakeFeishu(
        unit_support.example_robots("feishu"),
        echo=False,
        app=(unit_support.FEISHU_APP_ID, unit_support.FEISHU_APP_SECRET),
    )
    # Slack's response_urls (button presses update the message through them), on the same sink.
    # And Slack's Web API, which answers typed messages (chat.postMessage) as the app's bot.
    fake.slack = FakeSlack({}, echo=False, bot_token=unit_support.SLACK_BOT_TOKEN, app_id=unit_support.SLACK_APP_ID)
    channels = (fake.feishu, fake.slack)
    yield from _running(fake, lambda fake, host, port: make_server(fake, host, port, channels=channels))


@pytest.fixture
def fake_dingtalk(_dingtalk_server, env):
    """The fake DingTalk (local/fake_dingtalk.py), reset for this test: its robot API, whose sendBySession URLs
    are the ones opsbot accepts as session webhooks (`.accepted` lists what arrived), and its web login and user
    API (`.login`), which opsbot's DingTalk app (DINGTALK_APP_KEY) signs release-link clickers in through."""
    with _dingtalk_server.lock:
        _dingtalk_server.reset()
    with _dingtalk_server.feishu.lock:
        _dingtalk_server.feishu.reset()
    with _dingtalk_server.slack.lock:
        _dingtalk_server.slack.reset()
    env("DINGTALK_SESSION_WEBHOOK_PREFIX", f"{_dingtalk_server.url}/robot/sendBySession?")
    env("DINGTALK_APP_KEY", unit_support.DINGTALK_APP_KEY)
    for variable in ("DINGTALK_LOGIN_URL", "DINGTALK_API_URL", "DINGTALK_OAPI_URL"):
        env(variable, _dingtalk_server.url)
    return _dingtalk_server


@pytest.fixture
def chat_config(aws, fake_drone, fake_dingtalk):
    """The example config saved in the config table, with Drone and the robots pointing at the fakes."""
    from opsbot.config import store

    return store.save(unit_support.example_documents(drone=fake_drone.url, dingtalk=fake_dingtalk.url), "chat-test")


# --- the fake GitLab, for GitOps ------------------------------------------------------------------------------


class GitLabFake:
    """The fake GitLab (local/fake_gitlab.py) on a loopback port, seeded like the local stack's, with the
    example config in its config repo pointing at it."""

    CONFIG_REPO = "platform/opsbot-config"

    def __init__(self):
        from local.fake_gitlab import FakeGitLab, make_server
        from local.gitlab_seed import PROJECTS, config_repo_files

        self.fake = FakeGitLab(unit_support.GITLAB_API_TOKEN, echo=False)
        self.server = make_server(self.fake, "127.0.0.1", 0)
        self.url = self.fake.base_url
        for path, files in PROJECTS.items():
            self.fake.seed(path, files)
        files = config_repo_files(unit_support.EXAMPLE_CONFIG)
        files["opsbot.yaml"] = self.point_at_me(files["opsbot.yaml"])
        self.config_sha = self.fake.seed(self.CONFIG_REPO, files)
        _serve(self.server)

    def point_at_me(self, text: str) -> str:
        return text.replace("local://gitlab", self.url)

    def calls(self, method: str | None = None, suffix: str = "") -> list[dict]:
        return [c for c in self.fake.calls if (method is None or c["method"] == method) and c["path"].endswith(suffix)]

    def file(self, project: str, path: str, ref: str = "main") -> str | None:
        commit = self.fake._resolve(self.fake._repo(project), ref)
        return commit.files.get(path) if commit else None


@pytest.fixture(scope="session")
def _gitlab_server():
    fake = GitLabFake()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def fake_gitlab(_gitlab_server):
    """The fake GitLab, reset to its seed for this test."""
    _gitlab_server.fake.reset()
    return _gitlab_server


@pytest.fixture
def gitops_config(aws, fake_gitlab):
    """The example config (its gitlab: pointing at the fake GitLab) saved as the config repo's first commit."""
    from local.gitlab_seed import config_repo_files
    from opsbot.config import store
    from opsbot.config.yaml_source import parse_files

    files = config_repo_files(unit_support.EXAMPLE_CONFIG)
    files["opsbot.yaml"] = fake_gitlab.point_at_me(files["opsbot.yaml"])
    documents, problems = parse_files(files)
    assert problems == []
    return store.save(documents, fake_gitlab.config_sha, source="seed")


@pytest.fixture
def call(handlers, lambda_context, chat_config, fake_dingtalk):
    """A request to the actions Lambda, as API Gateway would hand it over from DingTalk's in-app browser (the
    release-link tests: test_release_links.py, test_feishu_login.py)."""

    import base64
    from urllib.parse import urlencode

    from unit_support import http_event

    def request(
        method: str,
        path: str,
        query: dict | None = None,
        form: dict | str | None = None,
        content_type: str | None = None,
        headers: dict | None = None,
        base64_encoded: bool = False,
        domain: str | None = None,
    ) -> dict:
        body = form if isinstance(form, str) or form is None else urlencode(form)
        if base64_encoded and body is not None:
            body = base64.b64encode(body.encode()).decode()
        if method == "POST" and content_type is None:
            content_type = "application/x-www-form-urlencoded"
        event = http_event(
            path,
            body,
            method=method,
            content_type=content_type,
            base64_encoded=base64_encoded,
            headers={"user-agent": "DingTalk/7.6.0 (iPhone)", "x-forwarded-proto": "https", **(headers or {})},
        )
        if domain is not None:
            event["requestContext"]["domainName"] = event["headers"]["host"] = domain
        if query:
            event["rawQueryString"] = urlencode(query)
            event["queryStringParameters"] = dict(query)
        return handlers.actions.lambda_handler(event, lambda_context)

    return request
