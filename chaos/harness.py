"""The crash harness's machinery: one world (moto in-process, the fakes of DingTalk, Feishu, Drone, GitLab and a
Kubernetes API on loopback, the real Lambda handlers), a queue that redelivers as SQS does, a virtual clock, and
the one place every external call passes, where a crash is injected.

Every boto3 call goes through botocore's `BaseClient._make_api_call`, every HTTP call to a peer (requests, and
python-gitlab, which uses it) through `HTTPAdapter.send`, and every Kubernetes API call through the client's
`RESTClientObject.request`; the three are wrapped here. A crash point is (the n-th such
call of a run, before it or after it returned, exception or kill):

- an exception: before the call, the call never happens (boto3: EndpointConnectionError; HTTP: ConnectTimeout);
  after it, the call happened and its answer is lost (boto3: ReadTimeoutError; HTTP: ReadTimeout; Kubernetes:
  urllib3's NewConnectionError before, ReadTimeoutError after). The code under test handles it as it would on
  AWS.
- a kill: the process stops there. `Killed` is a BaseException, which no `except Exception` catches, and every
  external call after it raises it again, so nothing after the kill point reaches DynamoDB, SQS or a peer. The
  message the dead worker held becomes visible again after the queue's visibility timeout (template.yaml); the
  next delivery runs in a fresh "container" (the process caches dropped).

The queue model is SQS's with Lambda's event source: a message is handed to the worker with its receive count; a
failed record comes back after the visibility its worker asked for (ChangeMessageVisibility) or else after the
queue's visibility timeout; after maxReceiveCount receives it moves to the DLQ without a reason; DelaySeconds is
kept. Time is virtual: `time.time()` is moved to the next thing due, so leases and retries take no wall time.

A flow is one function registered with `@flow(name)`: it sets up, triggers, and returns a counter of its effects
(the package's docstring, chaos/__init__.py, has an example and what a World offers).
"""

from __future__ import annotations

import heapq
import importlib.util
import itertools
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "opsbot"
for _path in (str(LAYER), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from opsbot.settings import PEER_HOSTS  # noqa: E402

REGION = "us-east-1"
PHASES = ("before", "after")
MODES = ("exception", "kill")
HORIZON_SECONDS = 6 * 3600  # a run whose work is not done within this much virtual time is stuck
SENDER_RETRY_SECONDS = 60  # GitLab's resend of a delivery that failed or timed out
SENDER_TRIES = 3
SECRETS = {
    "DRONE_WEBHOOK_SECRET_PARAM": "chaos-drone-webhook-secret",
    "GITLAB_WEBHOOK_TOKEN_PARAM": "chaos-gitlab-webhook-token",
    "DINGTALK_APP_SECRET_PARAM": "chaos-dingtalk-app-secret",
    "ACTION_SIGNING_KEY_PARAM": "chaos-action-signing-key",
    "FEISHU_APP_SECRET_PARAM": "chaos-feishu-app-secret",
    "FEISHU_VERIFICATION_TOKEN_PARAM": "chaos-feishu-verification-token",
    "SLACK_SIGNING_SECRET_PARAM": "chaos-slack-signing-secret",
}
FEISHU_APP_ID = "cli_chaos0psb0t"
SLACK_APP_ID = "A0CHAOS"
STACK = {
    "OPSBOT_STAGE": "local",  # the example config's literal secrets
    "CONFIG_TABLE": "chaos-config",
    "STATE_TABLE": "chaos-state",
    "AUDIT_TABLE": "chaos-audit",
    "RELEASES_TABLE": "chaos-releases",
    "HTTP_TIMEOUT_SECONDS": "2",
    "DRONE_WEBHOOK_SECRET_PARAM": "/opsbot/chaos/webhooks/drone",
    "GITLAB_WEBHOOK_TOKEN_PARAM": "/opsbot/chaos/webhooks/gitlab",
    "DINGTALK_APP_SECRET_PARAM": "/opsbot/chaos/dingtalk/app-secret",
    "ACTION_SIGNING_KEY_PARAM": "/opsbot/chaos/actions/signing-key",
    "FEISHU_APP_ID": FEISHU_APP_ID,
    "FEISHU_APP_SECRET_PARAM": "/opsbot/chaos/feishu/app-secret",
    "FEISHU_VERIFICATION_TOKEN_PARAM": "/opsbot/chaos/feishu/verification-token",
    "SLACK_APP_ID": SLACK_APP_ID,
    "SLACK_SIGNING_SECRET_PARAM": "/opsbot/chaos/slack/signing-secret",
    "AWS_ACCESS_KEY_ID": "chaos",
    "AWS_SECRET_ACCESS_KEY": "chaos",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "opsbot",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # Pinned peers: the fakes run on loopback, each on a port of its own.
    **{variable: "127.0.0.1" for variable in PEER_HOSTS.values()},
}


class Killed(BaseException):
    """The process stopped here: nothing after it runs (no `except Exception`, no external call)."""


@dataclass(frozen=True)
class Point:
    index: int  # the n-th external call of the run, from 1
    phase: str  # "before" or "after" the call
    mode: str  # "exception" or "kill"


@dataclass
class Verdict:
    point: Point | None
    label: str  # the call at the point
    counts: dict[str, int]
    parked: list[str]  # reasons of jobs the worker parked in the DLQ
    dead_without_reason: int  # jobs SQS moved to the DLQ after maxReceiveCount
    unfinished: str = ""  # what was still pending when the run gave up

    @property
    def doubled(self) -> bool:
        return any(n > 1 for n in self.counts.values())

    @property
    def lost(self) -> bool:
        """An effect missing with no parked job to say why, or work that never ended."""
        missing = any(n == 0 for n in self.counts.values())
        return bool(self.unfinished) or self.dead_without_reason > 0 or (missing and not self.parked)


# --- the one place every external call passes ------------------------------------------------------------------


class Faults:
    def __init__(self):
        self.armed = False  # only the code under test is counted; the harness's own look-ups are not
        self.killed = False
        self.plan: Point | None = None
        self.calls = 0
        self.trace: list[str] = []
        self.fired = ""
        self.delays: dict[str, int] = {}  # message id -> DelaySeconds asked for (moto gets 0)
        self.visibility: dict[str, int] = {}  # receipt handle -> VisibilityTimeout asked for
        self.work_queue_url = ""

    def reset(self, plan: Point | None) -> None:
        self.armed, self.killed, self.plan, self.calls, self.fired = False, False, plan, 0, ""
        self.trace, self.delays, self.visibility = [], {}, {}

    def call(self, label: str, make_call: Callable, before: Callable[[], Exception], after: Callable[[], Exception]):
        if not self.armed:
            return make_call()
        if self.killed:
            raise Killed(f"dead since {self.fired}")
        self.calls += 1
        self.trace.append(label)
        due = self.plan is not None and self.plan.index == self.calls
        if due and self.plan.phase == "before":
            self._fire(label, before)
        result = make_call()
        if due and self.plan.phase == "after":
            self._fire(label, after)
        return result

    def _fire(self, label: str, exception: Callable[[], Exception]) -> None:
        self.fired = f"{self.plan.phase} {label}"
        if self.plan.mode == "kill":
            self.killed = True
            raise Killed(self.fired)
        raise exception()


FAULTS = Faults()


def _install() -> Callable[[], None]:
    """Wrap botocore's and requests' call paths; returns what puts them back."""
    import requests
    from botocore.client import BaseClient
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
    from requests.adapters import HTTPAdapter

    real_api_call, real_send = BaseClient._make_api_call, HTTPAdapter.send

    def api_call(client, operation: str, params: dict):
        service = client.meta.service_model.service_name
        if operation == "SendMessage" and params.get("QueueUrl") == FAULTS.work_queue_url:
            delay = int(params.get("DelaySeconds") or 0)
            params = {**params, "DelaySeconds": 0}  # the harness keeps the delay on its virtual clock

            def send():
                answer = real_api_call(client, operation, params)
                FAULTS.delays[answer["MessageId"]] = delay
                return answer

            make_call = send
        elif operation == "ChangeMessageVisibility":

            def change():
                answer = real_api_call(client, operation, params)
                FAULTS.visibility[params["ReceiptHandle"]] = int(params["VisibilityTimeout"])
                return answer

            make_call = change
        else:

            def make_call():
                return real_api_call(client, operation, params)

        return FAULTS.call(
            f"{service}.{operation}",
            make_call,
            lambda: EndpointConnectionError(endpoint_url=f"chaos://{service}"),
            lambda: ReadTimeoutError(endpoint_url=f"chaos://{service}"),
        )

    def send(adapter, request, **kwargs):
        return FAULTS.call(
            f"{WORLD_PEERS.get(request.url.split('/')[2], 'http')} {request.method} {_path(request.url)}",
            lambda: real_send(adapter, request, **kwargs),
            lambda: requests.ConnectTimeout("chaos: the connection was never made"),
            lambda: requests.ReadTimeout("chaos: the answer was lost"),
        )

    BaseClient._make_api_call, HTTPAdapter.send = api_call, send

    # The Kubernetes client calls urllib3 itself, through its one REST call: wrapped like the others.
    from kubernetes.client import rest
    from urllib3 import exceptions as urllib3_errors

    real_request = rest.RESTClientObject.request

    def kubernetes_request(client, method, url, *args, **kwargs):
        return FAULTS.call(
            f"{WORLD_PEERS.get(url.split('/')[2], 'kubernetes')} {method} {_path(url)}",
            lambda: real_request(client, method, url, *args, **kwargs),
            lambda: urllib3_errors.NewConnectionError(None, "chaos: the connection was never made"),
            lambda: urllib3_errors.ReadTimeoutError(None, url, "chaos: the answer was lost"),
        )

    rest.RESTClientObject.request = kubernetes_request

    def uninstall() -> None:
        BaseClient._make_api_call, HTTPAdapter.send = real_api_call, real_send
        rest.RESTClientObject.request = real_request

    return uninstall


WORLD_PEERS: dict[str, str] = {}  # host:port -> peer name, for the labels


def _path(url: str) -> str:
    """The path of a URL without its query (robot tokens and signs) and without ids that differ per run."""
    path = "/" + url.split("/", 3)[3].split("?")[0] if url.count("/") >= 3 else "/"
    return path if len(path) <= 60 else path[:57] + "…"


# --- the virtual clock -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.offset = 0.0
        self._real = time.time

    def install(self) -> None:
        time.time = lambda: self._real() + self.offset

    def uninstall(self) -> None:
        time.time = self._real

    def now(self) -> float:
        return self._real() + self.offset

    def move_to(self, moment: float) -> None:
        if moment > self.now():
            self.offset += moment - self.now()


# --- the world --------------------------------------------------------------------------------------------------


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    kind: str = field(compare=False)  # "message" or "sender"
    ref: object = field(compare=False)


@dataclass
class _Message:
    message_id: str
    body: str
    receipt: str
    receives: int = 0


class LambdaContext:
    function_name = "chaos"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:chaos"
    log_group_name = "/aws/lambda/chaos"
    log_stream_name = "chaos"

    def __init__(self, timeout_seconds: int):
        self.aws_request_id = uuid.uuid4().hex
        self.timeout_ms = timeout_seconds * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms  # virtual time: a run takes none of the Lambda's


class World:
    """Everything a flow runs in. `start()` once, then `reset()` before each run."""

    def __init__(self):
        from local import template as template_module

        self.template = template_module.load(ROOT / "template.yaml")
        queue = self.template.resources_of("AWS::SQS::Queue")["WorkQueue"]["Properties"]
        self.visibility_timeout = int(queue["VisibilityTimeout"])
        self.max_receives = int(queue["RedrivePolicy"]["maxReceiveCount"])
        self.clock = Clock()
        self._saved_environ: dict[str, str] | None = None
        self._mock = None
        self._servers: list = []
        self._handlers: dict = {}
        self._uninstall: Callable[[], None] = lambda: None
        self._made = None  # the stack as made (local/moto_stack.MadeStack), emptied before each run
        self._clients: tuple | None = None
        self._log_level = "INFO"

    # --- once ---
    def start(self) -> World:
        self._saved_environ = dict(os.environ)
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
                del os.environ[name]
        os.environ.update(STACK)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        from moto import mock_aws

        self._mock = mock_aws(config={"core": {"reset_boto3_session": False}})
        self._mock.start()
        self._start_fakes()
        self._uninstall = _install()
        FAULTS.reset(None)
        self.clock.install()
        from opsbot import wiring
        from opsbot.config import names
        from opsbot.log import logger

        names.declare(wiring.known_names)
        self._log_level = logger.log_level
        logger.setLevel("CRITICAL")  # thousands of runs: their log lines would only slow them down
        return self

    def stop(self) -> None:
        from opsbot.log import logger

        logger.setLevel(self._log_level)
        self._uninstall()
        FAULTS.work_queue_url = ""
        self.clock.uninstall()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self._mock is not None:
            self._mock.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        from opsbot.settings import settings

        settings.cache_clear()
        self.restart_process()

    def _serve(self, fake, make_server, peer: str = "") -> str:
        server = make_server(fake, "127.0.0.1", 0)
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"chaos-{type(fake).__name__}",
        ).start()
        self._servers.append(server)
        host = f"127.0.0.1:{server.server_address[1]}"
        WORLD_PEERS[host] = peer or type(fake).__name__.removeprefix("Fake").lower()
        return f"http://{host}"

    def _start_fakes(self) -> None:
        from local import deploy_seed, fake_dingtalk, fake_drone, fake_gitlab, fake_kubernetes
        from local.fake_feishu import FakeFeishu
        from local.fake_health import FakeHealth
        from local.gitlab_seed import PROJECTS, config_repo_files
        from local.ports import peers_variable
        from opsbot.config.yaml_source import parse_files

        self.dingtalk = fake_dingtalk.FakeDingTalk({}, echo=False)
        # The sink also serves the GitOps environments' health URLs (local/fake_health.py), as the local stack's does.
        self.dingtalk_url = self._serve(
            self.dingtalk,
            lambda fake, host, port: fake_dingtalk.make_server(fake, host, port, channels=(FakeHealth(),)),
        )
        # Feishu on a port of its own, so that its calls are named as Feishu's at the crash points.
        self.feishu = FakeFeishu({}, echo=False, app=(FEISHU_APP_ID, SECRETS["FEISHU_APP_SECRET_PARAM"]))
        self.feishu_url = self._serve(
            fake_dingtalk.FakeDingTalk({}, echo=False),
            lambda fake, host, port: fake_dingtalk.make_server(fake, host, port, channels=(self.feishu,)),
            peer="feishu",
        )
        # Slack's response_urls on a port of their own too (a button press's answers are Slack's crash points).
        from local.fake_slack import FakeSlack

        self.slack = FakeSlack({}, echo=False)
        self.slack_url = self._serve(
            fake_dingtalk.FakeDingTalk({}, echo=False),
            lambda fake, host, port: fake_dingtalk.make_server(fake, host, port, channels=(self.slack,)),
            peer="slack",
        )
        os.environ["SLACK_RESPONSE_URL_PREFIX"] = f"{self.slack_url}/actions/"
        self.kubernetes = fake_kubernetes.FakeKubernetes(
            eks_cluster="shop", echo=False, seed=deploy_seed.cluster_seed()
        )
        self.kubernetes_url = self._serve(self.kubernetes, fake_kubernetes.make_server)
        self.drone = fake_drone.FakeDrone("local-drone-token", echo=False, login="opsbot")
        for slug, builds in fake_drone.default_seed().items():
            self.drone.seed(slug, builds)
        self.drone_url = self._serve(self.drone, fake_drone.make_server)
        self.gitlab = fake_gitlab.FakeGitLab(
            "local-gitlab-token", echo=False, project_tokens={deploy_seed.DEPLOY_TOKEN: (deploy_seed.DEPLOY_REPO,)}
        )
        self.gitlab_url = self._serve(self.gitlab, fake_gitlab.make_server)
        self.gitlab.base_url = self.gitlab_url
        for path, files in PROJECTS.items():
            self.gitlab.seed(path, files)
        for path, commits in deploy_seed.app_histories().items():
            self.gitlab.seed_commits(path, commits)
        self.gitlab.seed(deploy_seed.DEPLOY_REPO, deploy_seed.deploy_repo_files())
        # The example config names its peers by role (local://drone): these fakes are where they run, so the
        # config (and a synced one) points at them as it does at a local stack's. The flows from before GitOps
        # releases deploy through Drone (deploy_seed.drone_way); the release flows save the example as it is.
        os.environ["LOCAL_PEERS"] = peers_variable(
            {
                "dingtalk": self.dingtalk_url,
                "feishu": self.feishu_url,
                "drone": self.drone_url,
                "gitlab": self.gitlab_url,
                "health": self.dingtalk_url,  # the sink's health pages (local/fake_health.py)
            }
        )
        self.gitops_files = config_repo_files(ROOT / "config" / "example")
        self.config_files = deploy_seed.drone_way(self.gitops_files)
        self.config_sha = self.gitlab.seed("platform/opsbot-config", self.config_files)
        self.documents, problems = parse_files(self.config_files)
        assert problems == [], problems
        root = next(d for d in self.documents if d.name == "opsbot.yaml").data
        from urllib.parse import parse_qs, urlsplit

        robots = root["robots"].items()
        self.dingtalk.robots = {
            parse_qs(urlsplit(spec["webhook"]).query)["access_token"][0]: (name, spec["secret"])
            for name, spec in robots
            if spec.get("kind", "dingtalk") == "dingtalk"
        }
        self.feishu.robots = {
            urlsplit(spec["webhook"]).path.rsplit("/hook/", 1)[-1]: (name, spec["secret"])
            for name, spec in robots
            if spec.get("kind") == "feishu"
        }
        os.environ["DINGTALK_SESSION_WEBHOOK_PREFIX"] = f"{self.dingtalk_url}/robot/sendBySession?"
        os.environ["FEISHU_API_URL"] = self.feishu_url  # the app bot's API: its calls are Feishu's crash points

    def handler(self, name: str):
        """functions/<name>/app.py's lambda_handler, loaded once."""
        if name not in self._handlers:
            spec = importlib.util.spec_from_file_location(
                f"chaos_function_{name}", ROOT / "functions" / name / "app.py"
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._handlers[name] = module.lambda_handler
        return self._handlers[name]

    # --- before each run ---
    def reset(self, plan: Point | None) -> None:
        FAULTS.reset(None)
        self.clock.offset = 0.0
        # The last run's stack emptied in place (local/moto_stack.py), or made afresh when the run changed more
        # than its content
        if self._made is None or self._made.empty():
            self._make_stack()
        for fake in (self.drone, self.gitlab):
            fake.reset()
        for fake in (self.dingtalk, self.feishu, self.slack, self.kubernetes):
            with fake.lock:
                fake.reset()
        self.restart_process()
        from opsbot.config import store

        store.save(self.documents, self.config_sha, source="chaos")
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._messages: dict[str, _Message] = {}
        self.unfinished = ""
        FAULTS.reset(plan)

    def _make_stack(self) -> None:
        from moto.core.base_backend import BackendDict

        from local.moto_stack import MadeStack

        BackendDict.reset()
        self.restart_process()
        if self._clients is None:  # the harness's own, made once: moto answers them whatever it was reset to
            import boto3

            self._clients = tuple(boto3.client(s, region_name=REGION) for s in ("dynamodb", "sqs", "ssm"))
        ddb, sqs, ssm = self._clients
        for logical_id, resource in self.template.resources_of("AWS::DynamoDB::Table").items():
            props = resource["Properties"]
            name = {
                "ConfigTable": "CONFIG_TABLE",
                "StateTable": "STATE_TABLE",
                "AuditTable": "AUDIT_TABLE",
                "ReleasesTable": "RELEASES_TABLE",
            }[logical_id]
            ddb.create_table(
                TableName=STACK[name],
                BillingMode="PAY_PER_REQUEST",
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
            )
        dlq = sqs.create_queue(QueueName="chaos-DeadLetterQueue")["QueueUrl"]
        # The redrive policy is the harness's own (maxReceiveCount, below): it holds the messages it hands out.
        work = sqs.create_queue(QueueName="chaos-WorkQueue")["QueueUrl"]
        os.environ.update(WORK_QUEUE_URL=work, DEAD_LETTER_QUEUE_URL=dlq)
        self.work_queue_url, self.dead_letter_queue_url = work, dlq
        FAULTS.work_queue_url = work
        for variable, value in SECRETS.items():
            ssm.put_parameter(Name=STACK[variable], Value=value, Type="SecureString")
        self._sqs = sqs
        self._made = MadeStack()

    def restart_process(self) -> None:
        """A new Lambda container: nothing kept in memory from the one before (a killed one, say)."""
        import boto3
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
        DEFAULT_PROVIDERS["ssm"] = SSMProvider(boto3_client=boto3.client("ssm", region_name=REGION))
        if hasattr(opsbot.secrets, "clear_cache"):
            opsbot.secrets.clear_cache()
        opsbot.dingtalk.login.forget_app_token()
        opsbot.channels.http.close()
        opsbot.channels.feishu_app.forget_token()
        if "opsbot.ops.kubernetes" in sys.modules:  # loaded by the first Kubernetes job, as in a worker
            sys.modules["opsbot.ops.kubernetes"].forget_clients()

    # --- what flows use to set up and trigger ---
    def config(self):
        from opsbot.config import store

        return store.load()

    def enqueue(self, kind: str, payload: dict, job_id: str | None = None) -> str:
        """Put a job on the work queue, as ingress would have (not a crash point)."""
        from opsbot.jobs.model import Job
        from opsbot.jobs.queue import enqueue

        job = Job(kind=kind, payload=payload, **({"id": job_id} if job_id else {}))
        enqueue(job)
        return job.id

    def gitlab_hook(self, event_name: str, hook: dict) -> None:
        """GitLab delivers `hook` to the GitLab webhook function (its calls are crash points) and sends it again,
        with the same delivery ids, while the answer is not a 2xx."""
        headers = {
            "content-type": "application/json",
            "x-gitlab-event": event_name,
            "x-gitlab-token": SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"],
            "x-gitlab-event-uuid": uuid.uuid4().hex,
            "x-gitlab-webhook-uuid": "chaos-hook",
            "host": "opsbot.example.com",
        }
        self._schedule(self.clock.now(), "sender", {"headers": headers, "body": json.dumps(hook), "tries": 0})

    def state_items(self, prefix: str) -> list[dict]:
        import boto3

        ddb = boto3.client("dynamodb", region_name=REGION)
        items = ddb.scan(TableName=STACK["STATE_TABLE"])["Items"]
        return [i for i in items if i["pk"]["S"].startswith(prefix)]

    def messages(self, containing: str) -> int:
        """DingTalk messages (robot or conversation) whose text has `containing`."""
        found = 0
        for sent in list(self.dingtalk.accepted):
            message = sent["message"]
            part = message.get(message.get("msgtype")) or {}
            if containing in str(part.get("text") or part.get("content") or ""):
                found += 1
        return found

    def feishu_messages(self, containing: str) -> int:
        """Feishu messages (a card, or text) whose JSON has `containing`."""
        return sum(
            1 for sent in list(self.feishu.accepted) if containing in json.dumps(sent["message"], ensure_ascii=False)
        )

    def feishu_replies(self, containing: str) -> int:
        """Replies of the Feishu app bot (to a message someone wrote to it) whose card has `containing`."""
        return sum(
            1 for sent in list(self.feishu.replies) if containing in json.dumps(sent["content"], ensure_ascii=False)
        )

    def slack_shown(self, containing: str, in_place: bool) -> int:
        """What Slack showed through a press's response_url: in place of the message, or to the presser alone."""
        shown = self.slack.replaced if in_place else self.slack.ephemeral
        return sum(1 for message in list(shown) if containing in json.dumps(message, ensure_ascii=False))

    # --- running ---
    def run(self) -> None:
        start = self.clock.now()
        while True:
            self._collect()
            if not self._due:
                return
            due = heapq.heappop(self._due)
            if due.at > start + HORIZON_SECONDS:
                self.unfinished = f"{due.kind} still due after {HORIZON_SECONDS} s"
                return
            self.clock.move_to(due.at)
            if due.kind == "message":
                self._deliver(due.ref)
            else:
                self._send(due.ref)

    def _schedule(self, at: float, kind: str, ref) -> None:
        heapq.heappush(self._due, _Due(at, next(self._seq), kind, ref))

    def _collect(self) -> None:
        """New messages on the work queue, due when their delay ends."""
        while True:
            got = self._sqs.receive_message(
                QueueUrl=self.work_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=43_200, WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return
            for message in got:
                known = self._messages.get(message["MessageId"])
                if known is not None:  # made visible again by the worker: the same message, a new handle
                    known.receipt = message["ReceiptHandle"]
                    continue
                entry = _Message(message["MessageId"], message["Body"], message["ReceiptHandle"])
                self._messages[entry.message_id] = entry
                self._schedule(self.clock.now() + FAULTS.delays.get(entry.message_id, 0), "message", entry)

    def _deliver(self, message: _Message) -> None:
        message.receives += 1
        if message.receives > self.max_receives:  # SQS's redrive policy: to the DLQ, with no reason
            self._sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=message.body)
            self._done(message)
            return
        event = {"Records": [_record(message)]}
        FAULTS.armed = True
        try:
            response = self.handler("worker")(event, LambdaContext(self.template.timeout_seconds("WorkerFunction")))
        except Killed:
            FAULTS.armed = False
            self._after_kill()
            self._schedule(self.clock.now() + self.visibility_timeout, "message", message)
            return
        finally:
            FAULTS.armed = False
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        if message.message_id in failed:
            delay = FAULTS.visibility.pop(message.receipt, self.visibility_timeout)
            self._schedule(self.clock.now() + delay, "message", message)
        else:
            self._done(message)

    def _done(self, message: _Message) -> None:
        self._sqs.delete_message(QueueUrl=self.work_queue_url, ReceiptHandle=message.receipt)

    def _send(self, delivery: dict) -> None:
        from local.stack import http_api_event

        delivery["tries"] += 1
        event = http_api_event(
            "POST",
            "/webhooks/gitlab",
            "",
            delivery["headers"],
            delivery["body"].encode(),
            "POST /webhooks/gitlab",
            "10.0.0.1",
        )
        FAULTS.armed = True
        try:
            status = self.handler("gitlab_webhook")(event, LambdaContext(15))["statusCode"]
        except Killed:
            FAULTS.armed = False
            self._after_kill()
            status = 504  # API Gateway's answer when the function dies
        finally:
            FAULTS.armed = False
        if status >= 300 and delivery["tries"] < SENDER_TRIES:
            self._schedule(self.clock.now() + SENDER_RETRY_SECONDS, "sender", delivery)
        elif status >= 300:
            self.unfinished = f"GitLab gave up after {SENDER_TRIES} tries (HTTP {status})"

    def _after_kill(self) -> None:
        FAULTS.killed = False  # the next delivery runs in a new process
        self.restart_process()

    def dead_letters(self) -> tuple[list[str], int]:
        """(reasons of the jobs the worker parked, how many SQS moved there without one)."""
        reasons, without = [], 0
        while True:
            got = self._sqs.receive_message(
                QueueUrl=self.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=43_200,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return reasons, without
            for message in got:
                reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
                if reason:
                    reasons.append(reason)
                else:
                    without += 1


def _record(message: _Message) -> dict:
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receives),
            "SentTimestamp": "0",
            "SenderId": "chaos",
            "ApproximateFirstReceiveTimestamp": "0",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:chaos-WorkQueue",
        "awsRegion": REGION,
    }


# --- flows and points -------------------------------------------------------------------------------------------

Counter = Callable[[], dict[str, int]]
FLOWS: dict[str, Callable[[World], Counter]] = {}


def flow(name: str):
    """Register a flow: a function that sets up and triggers it in a fresh world, and returns how to count its
    effects (each must come to exactly 1)."""

    def register(fn: Callable[[World], Counter]) -> Callable[[World], Counter]:
        if name in FLOWS:
            raise ValueError(f"two flows named {name}")
        FLOWS[name] = fn
        return fn

    return register


def run_once(world: World, name: str, plan: Point | None) -> tuple[Verdict, list[str]]:
    """One run of a flow with a crash at `plan` (None: none); its verdict and the calls it made."""
    world.reset(None)
    count = FLOWS[name](world)  # set up and trigger: not crash points, except what runs through world.run()
    FAULTS.reset(plan)
    world.run()
    trace, fired = list(FAULTS.trace), FAULTS.fired
    FAULTS.reset(None)
    counts = count()
    parked, without = world.dead_letters()
    label = fired or (trace[plan.index - 1] if plan and plan.index <= len(trace) else "")
    return Verdict(plan, label, counts, parked, without, world.unfinished), trace


def points(calls: int, every: int = 1, offset: int = 0) -> list[Point]:
    """Every crash point of a run that makes `calls` calls, or every `every`-th of them."""
    found = [Point(i, phase, mode) for i in range(1, calls + 1) for phase in PHASES for mode in MODES]
    return found[offset::every]


def describe(name: str, verdict: Verdict) -> str:
    where = (
        "no crash" if verdict.point is None else f"#{verdict.point.index} {verdict.point.phase} {verdict.point.mode}"
    )
    counts = " ".join(f"{k}={v}" for k, v in verdict.counts.items())
    if verdict.doubled:
        outcome = f"DOUBLED ({counts})"
    elif verdict.lost:
        why = verdict.unfinished or (
            f"{verdict.dead_without_reason} in the DLQ without a reason" if verdict.dead_without_reason else "no trace"
        )
        outcome = f"LOST ({counts}; {why})"
    else:
        outcome = f"ok ({counts})" + (f"; parked: {verdict.parked[0][:90]}" if verdict.parked else "")
    return f"{name:<18} {where:<24} {verdict.label:<44} {outcome}"


def run_flows(names: list[str], every: int = 1, out=print) -> tuple[int, int, int]:
    """Every crash point (or every `every`-th) of each flow; prints a line each; (points, lost, doubled)."""
    world = World().start()
    total = lost = doubled = 0
    try:
        for name in names:
            clean, trace = run_once(world, name, None)
            out(describe(name, clean))
            if clean.lost or clean.doubled or clean.parked:
                lost, doubled = lost + clean.lost, doubled + clean.doubled
                continue
            for point in points(len(trace), every):
                verdict, _ = run_once(world, name, point)
                out(describe(name, verdict))
                total, lost, doubled = total + 1, lost + verdict.lost, doubled + verdict.doubled
    finally:
        world.stop()
    return total, lost, doubled
