"""The local stack: the same handlers as on AWS, on one laptop, with no Docker and no AWS account.

It starts moto's server (DynamoDB, SQS, SSM) on loopback, creates the tables and queues that template.yaml
declares, seeds the local secrets, loads a config directory, serves the template's HTTP API routes on
127.0.0.1:$PORT with API Gateway v2 events, drains the work queue into the worker like Lambda's SQS event
source, and runs fake chat channels that verify signatures and limits and print every message (DingTalk, Feishu,
WeCom and Slack on one port, and SES on moto behind a small front), a fake Drone, and a fake GitLab whose config
repo holds the loaded config directory.

    python -m local.stack [--port 3000] [--config config/example]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from local.loopback import LoopbackHandler, serve
from local.ports import INFO_PATH, OFFSETS, VARIABLES, Ports, peers_variable

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The local stack's own secrets, stored in moto's SSM under the names the template gives these variables
# (/opsbot/local/...). Local only.
LOCAL_SECRETS = {
    "DRONE_WEBHOOK_SECRET_PARAM": "local-drone-webhook-secret",
    "GITLAB_WEBHOOK_TOKEN_PARAM": "local-gitlab-webhook-token",
    "DINGTALK_APP_SECRET_PARAM": "local-dingtalk-app-secret",
    "ACTION_SIGNING_KEY_PARAM": "local-release-link-signing-key-0123456789abcdef",
    "FEISHU_APP_SECRET_PARAM": "local-feishu-app-secret",
    "FEISHU_VERIFICATION_TOKEN_PARAM": "local-feishu-verification-token",
    "ARGOCD_TOKEN_PARAM": "local-argocd-token",
    "SLACK_SIGNING_SECRET_PARAM": "local-slack-signing-secret",
    "SLACK_BOT_TOKEN_PARAM": "xoxb-local-opsbot-bot-token",
}
LOCAL_APP_KEY = "dinglocalappkey"  # the DingTalk app's AppKey (Client ID), which the fake login knows
LOCAL_SLACK_APP_ID = "A0LOCALOPSBOT"  # the Slack app whose interactivity the fake Slack's presses name
LOCAL_FEISHU_APP_ID = "cli_local0psb0t"  # the Feishu app whose bot takes chat, which the fake Feishu knows
# The grant that the release-link samples in events/actions name (local/make_events.py): the stack holds it, so
# `make send EVENT=events/actions/show.json` shows a page. Build 128 of shop-api, valid until 2034.
SAMPLE_RELEASE_GRANT = {
    "project": "shop-api",
    "build": 128,
    "target": "staging",
    "commit": "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
    "branch": "main",
    "title": "feat(order): add refund endpoint",
    "event": "push",
    "expires": 2047881960,
    "nonce": "5a3c0d9e7b1f2468",
}


class LambdaContext:
    def __init__(self, name: str, timeout_seconds: int = 15):
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self.ends_at = time.monotonic() + timeout_seconds  # as Lambda counts: from the invocation's start

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))


class LocalFunction:
    """One Lambda: its handler, loaded from its CodeUri, run one event at a time like a single container."""

    def __init__(self, logical_id: str, code_uri: str, handler: str, timeout_seconds: int = 15):
        module_name, self.attr = handler.rsplit(".", 1)
        path = ROOT / code_uri / f"{module_name}.py"
        spec = importlib.util.spec_from_file_location(f"opsbot_fn_{logical_id}", path)
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.name = logical_id
        self.timeout_seconds = timeout_seconds
        self.lock = threading.Lock()

    def invoke(self, event: dict) -> dict:
        from local.stack_log import RUNNING

        with self.lock:
            RUNNING.function = self.name  # the terminal's one-line events name it
            try:
                return getattr(self.module, self.attr)(event, LambdaContext(self.name, self.timeout_seconds))
            finally:
                RUNNING.function = ""


def request_time(now: float) -> dict:
    """The requestContext fields that say when API Gateway took a request."""
    return {"time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000)}


def http_api_event(
    method: str,
    raw_path: str,
    query: str,
    headers: dict,
    body: bytes,
    route_key: str,
    source_ip: str,
    path_parameters: dict | None = None,
) -> dict:
    """An API Gateway HTTP API payload-format-2.0 event, as API Gateway builds it."""
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "stage": "$default",
            "routeKey": route_key,
            "requestId": uuid.uuid4().hex,
            **request_time(time.time()),
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query).items()}
    return event


def serve_api(
    template, functions: dict[str, LocalFunction], host: str, port: int, info: dict | None = None
) -> ThreadingHTTPServer:
    """The template's HTTP API routes on host:port; `GET /_local/stack` answers `info` (where everything runs), which
    the local commands read (local/ports.py)."""
    about = json.dumps(info or {}, ensure_ascii=False).encode()

    class Handler(LoopbackHandler):
        protocol_version = "HTTP/1.1"

        def _respond(self, status: int, headers: dict, body: bytes):
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self):
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if url.path == "/_local/health":
                return self._respond(200, {"Content-Type": "application/json"}, b'{"ok":true}')
            if url.path == INFO_PATH and self.command == "GET":
                return self._respond(200, {"Content-Type": "application/json"}, about)
            found = template.route_for(self.command, url.path)
            if found is None:
                return self._respond(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
            route, path_parameters = found
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            event = http_api_event(
                self.command,
                url.path,
                url.query,
                headers,
                body,
                f"{route.method} {route.path}",
                self.client_address[0],
                path_parameters,
            )
            try:
                result = functions[route.function].invoke(event)
            except Exception as exc:  # what API Gateway does when a Lambda crashes
                print(f"[local api] {route.function} crashed: {exc!r}", file=sys.stderr, flush=True)
                return self._respond(500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self._respond(int(result.get("statusCode", 200)), dict(result.get("headers") or {}), data)

    return serve(Handler, host, port)


def drain_queue(worker: LocalFunction, queue_url: str, queue_arn: str, stop: threading.Event) -> None:
    """Lambda's SQS event source: poll, invoke with a batch, delete what did not fail."""
    import boto3

    sqs = boto3.client("sqs")
    while not stop.is_set():
        try:
            received = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:  # moto shutting down
            if not stop.is_set():
                print(f"[local worker] receive failed: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(0.5)
            continue
        messages = received.get("Messages", [])
        if not messages:
            continue
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
            }
            for m in messages
        ]
        try:
            result = worker.invoke({"Records": records}) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception as exc:  # the whole batch failed: every message returns to the queue
            print(f"[local worker] batch failed: {exc!r}", file=sys.stderr, flush=True)
            failed = {r["messageId"] for r in records}
        done = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records)
            if r["messageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)


def _resolve(value, physical: dict, template, overrides: dict):
    def ref(name: str) -> str:
        return overrides.get(name) or physical.get(name) or template.parameter_default(name)

    if isinstance(value, dict) and "Ref" in value:
        return ref(value["Ref"])
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([\w:]+)\}", lambda m: ref(m.group(1)), value["Fn::Sub"])
    return str(value)


def local_names(template, endpoint: str) -> dict[str, str]:
    """What the local stack calls the template's tables (their names) and queues (their URLs on moto at
    `endpoint`), by logical id."""
    names = {lid: f"opsbot-local-{lid}" for lid in template.resources_of("AWS::DynamoDB::Table")}
    names.update({lid: f"{endpoint}/{ACCOUNT}/opsbot-local-{lid}" for lid in template.resources_of("AWS::SQS::Queue")})
    names.update({lid: f"opsbot-local-{lid.lower()}" for lid in template.resources_of("AWS::S3::Bucket")})
    return names


def local_environment(template, ports: Ports, host: str, function_id: str | None = None) -> dict[str, str]:
    """The variables the template gives every function (and `function_id`'s own), as the local stack on `ports`
    sets them: the stage `local`, its tables, queues and /opsbot/local/... parameter names on its moto, the local
    stack's own API, DingTalk (the sink and its web login) and app key instead of the real ones, where the config's
    `local://<role>` peers run, and the hosts pinned for each token: the same fakes (local/ports.py)."""
    from opsbot.settings import PEER_HOSTS

    endpoint = ports.url("moto", host)
    declared = template.function_environment(function_id) if function_id else template.global_environment()
    names = local_names(template, endpoint)
    environment = {name: _resolve(value, names, template, {"Stage": "local"}) for name, value in declared.items()}
    sink = ports.url("sink", host)
    environment.update(
        {
            "OPSBOT_STAGE": "local",
            "AWS_ENDPOINT_URL": endpoint,  # every AWS call goes to moto
            "PUBLIC_BASE_URL": ports.url("api", host),  # release links point at this stack's API
            "DINGTALK_SESSION_WEBHOOK_PREFIX": f"{sink}/robot/sendBySession?",  # replies go to the sink
            # E-mail robots' SES goes through the sink's front (throttling, faults) to moto (local/fake_ses.py).
            "AWS_ENDPOINT_URL_SES": f"{sink}/ses",
            # Release links sign the clicker in through the sink's fake DingTalk login, with this app key and the local
            # app secret (LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"]).
            "DINGTALK_APP_KEY": LOCAL_APP_KEY,
            "DINGTALK_LOGIN_URL": sink,
            "DINGTALK_API_URL": sink,
            "DINGTALK_OAPI_URL": sink,
            # Feishu chat: the app's events come from `make chat CHANNEL=feishu`; its API is the sink's fake Feishu.
            "FEISHU_APP_ID": LOCAL_FEISHU_APP_ID,
            "FEISHU_API_URL": sink,
            "FEISHU_LOGIN_URL": sink,  # release links' Feishu sign-in: the sink's fake Feishu OAuth
            # Slack's button presses (`make press`) come signed with the local signing secret; the message is updated
            # through the sink's fake Slack response_urls.
            "SLACK_APP_ID": LOCAL_SLACK_APP_ID,
            "SLACK_RESPONSE_URL_PREFIX": f"{sink}/actions/",
            # Typed Slack messages (`make chat CHANNEL=slack`) are answered through the sink's fake Web API.
            "SLACK_API_URL": f"{sink}/api",
            # The config names its peers by role (local://drone); these are the fakes of this stack (local/ports.py).
            "LOCAL_PEERS": peers_variable(ports.peers(host)),
        }
    )
    # Pinned peers: each token goes only to this stack's own fake, on the port it runs it on. A config naming another
    # host (or port) is refused, as the template's lists refuse it on AWS.
    environment.update({PEER_HOSTS[peer]: pinned for peer, pinned in ports.pinned_hosts(host).items()})
    return environment


def robot_keys(config, kind: str) -> dict[str, tuple[str, str]]:
    """The config's robots of one kind, by the key their fake knows them by (in the webhook URL): DingTalk's
    access_token, Feishu's hook token, WeCom's key, Slack's path after /services/."""
    found = {}
    for robot in config.robots.values():
        if robot.kind != kind:
            continue
        url = urlparse(robot.webhook)
        key = {
            "dingtalk": parse_qs(url.query).get("access_token", [""])[0],
            "feishu": url.path.rsplit("/hook/", 1)[-1],
            "wecom": parse_qs(url.query).get("key", [""])[0],
            "slack": url.path.split("/services/", 1)[-1],
        }[kind]
        found[key] = (robot.name, robot.secret)
    return found


def channel_fakes(config, moto_endpoint: str, echo: bool) -> tuple:
    """The fakes of the chat channels beside DingTalk, knowing the config's robots (local/fake_*.py)."""
    from local.fake_feishu import FakeFeishu
    from local.fake_ses import FakeSes
    from local.fake_slack import FakeSlack
    from local.fake_wecom import FakeWeCom

    return (
        FakeFeishu(
            robot_keys(config, "feishu"),
            echo,
            app=(LOCAL_FEISHU_APP_ID, LOCAL_SECRETS["FEISHU_APP_SECRET_PARAM"]),
            open_ids={p.feishu_open_id: p.name for p in config.people if p.feishu_open_id},
        ),
        FakeWeCom(robot_keys(config, "wecom"), echo),
        FakeSlack(
            robot_keys(config, "slack"),
            echo,
            bot_token=LOCAL_SECRETS["SLACK_BOT_TOKEN_PARAM"],
            app_id=LOCAL_SLACK_APP_ID,
        ),
        FakeSes(moto_endpoint, {r.sender: (r.name, "") for r in config.robots.values() if r.kind == "email"}, echo),
    )


def verify_email_senders(config, moto_endpoint: str) -> None:
    """SES sends only from a verified identity: the stack verifies each e-mail robot's sender on moto, as an admin
    does once per account (README, "Wire up e-mail")."""
    import boto3

    for robot in config.robots.values():
        if robot.kind == "email":
            ses = boto3.client("ses", region_name=robot.region, endpoint_url=moto_endpoint)
            ses.verify_email_identity(EmailAddress=robot.sender)


def gitops_targets(config, kube, apply: str) -> dict:
    """What the local stack's stand-in controllers reconcile, from the config's GitOps environments of one `apply`:
    Flux objects (created in the fake cluster, keyed by kind, namespace and name), or watched Deployments."""
    from local.fake_reconciler import Target

    found = {}
    for project in config.projects.values():
        for env in project.environments.values():
            target = env.deploy
            if target is None or target.apply != apply or target.workload is None:
                continue
            workload = target.workload
            watched = Target(
                repo=target.repo,
                branch=target.branch,
                path=target.file,
                format=target.format,
                image=target.image,
                namespace=workload.namespace,
                deployment=workload.deployment,
                key=target.key,
                container=workload.container or target.container,
            )
            if apply == "flux":
                flux = target.flux
                source = f"{project.name}-{env.name}"
                kube.add_flux(
                    "GitRepository", flux.namespace, source, {"url": target.repo, "ref": {"branch": target.branch}}
                )
                kube.add_flux(
                    flux.kind,
                    flux.namespace,
                    flux.name,
                    {"sourceRef": {"kind": "GitRepository", "name": source}, "path": target.file.rsplit("/", 1)[0]},
                )
                found[(flux.kind, flux.namespace, flux.name)] = watched
            else:
                found[(workload.namespace, workload.deployment)] = watched
    return found


def send_drone_webhook(api: str, delivery: dict) -> None:
    """What Drone does when a build finishes: its webhook, signed (HTTP Signature), to opsbot's /webhooks/drone."""
    import requests

    from opsbot.drone import signature  # signed as local/signing.py signs a sample (which imports this module)

    body = json.dumps(delivery, ensure_ascii=False).encode()
    signed = signature.sign(body, LOCAL_SECRETS["DRONE_WEBHOOK_SECRET_PARAM"], None)
    headers = {"Content-Type": "application/json", "X-Drone-Event": "build", **signed}
    try:
        requests.post(f"{api}/webhooks/drone", data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:  # Drone logs it and never retries
        print(f"[drone] webhook failed: {exc!r}", file=sys.stderr, flush=True)


def schedule_drift_checks(template, names: dict, every: float, stop: threading.Event) -> None:
    """EventBridge's schedules (template.yaml's DriftCheckSchedule and GovernanceSchedule), locally: the same jobs
    on the work queue."""
    import boto3

    sqs = boto3.client("sqs")
    while not stop.wait(every):
        sqs.send_message(QueueUrl=names["WorkQueue"], MessageBody=drift_check_job(template))
        sqs.send_message(QueueUrl=names["WorkQueue"], MessageBody=scheduled_job(template, "GovernanceSchedule"))


def scheduled_job(template, rule_id: str, now: float | None = None) -> str:
    """The message a schedule of the template puts on the work queue: its InputTemplate with the event's time."""
    rule = template.resources_of("AWS::Events::Rule")[rule_id]
    transformer = rule["Properties"]["Targets"][0]["InputTransformer"]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time()))
    return transformer["InputTemplate"].replace("<time>", at)


def drift_check_job(template, now: float | None = None) -> str:
    return scheduled_job(template, "DriftCheckSchedule", now)


def governance_tick_job(template, now: float | None = None) -> str:
    return scheduled_job(template, "GovernanceSchedule", now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 3000),
        help="the HTTP API's port (PORT); every other port follows from it unless given (local/ports.py)",
    )
    for name, what in (
        ("sink", "the chat sink: fake DingTalk (robots, login, API), Feishu, WeCom, Slack and the SES front"),
        ("drone", "the fake Drone API, seeded with sample builds"),
        ("gitlab", "the fake GitLab API, seeded with the config repo and the example projects"),
        ("kube", "the fake Kubernetes API server (the EKS cluster's endpoint)"),
        ("ssm", "the fake SSM Run Command in front of moto (AWS_ENDPOINT_URL_SSM)"),
        ("argocd", "the fake Argo CD API (ARGOCD_URL), whose Application syncs staging's shop-recommend"),
        ("dns", "the UDP port of the authoritative DNS server that serves moto's Route 53 zones"),
        ("moto", "moto's server (DynamoDB, SQS, SSM, S3, SES, EC2, EKS, Route 53)"),
    ):
        variable = VARIABLES[name]
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=int(os.environ[variable]) if os.environ.get(variable) else None,
            help=f"{what} ({variable}; default: from --port, local/ports.py)",
        )
    parser.add_argument(
        "--config",
        default=os.environ.get("CONFIG") or str(ROOT / "config" / "example"),
        help="the config directory to load (CONFIG; default: config/example)",
    )
    parser.add_argument(
        "--workdir",
        default="",
        help="where the stack keeps its files: the JSON log, stack.log (default: .local/stack-<port>)",
    )
    parser.add_argument(
        "--deploy-seconds",
        type=float,
        default=3.0,
        help="how long the fake Drone's promote and rollback builds run before they finish and send their webhook "
        "(0: only when /_control/finish says so)",
    )
    parser.add_argument(
        "--drift-seconds",
        type=float,
        default=0,
        help="queue the drift check and release governance's tick this often, as the template's schedules do on AWS "
        "(0: never; tests queue them, `make drift-check` and `make governance-tick` too)",
    )
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument(
        "--retry-base-seconds", type=int, default=2, help="first retry delay of a failed job (AWS default: 30)"
    )
    parser.add_argument(
        "--max-receive-count",
        type=int,
        default=0,
        help="attempts before a job goes to the DLQ (default: the template's)",
    )
    parser.add_argument("--no-worker", action="store_true", help="do not drain the queue (for benchmarks)")
    parser.add_argument("--quiet", action="store_true", help="do not print chat messages or INFO logs")
    parser.add_argument(
        "--verbose", action="store_true", help="print the functions' JSON log lines, not one line per event"
    )
    parser.add_argument("--metrics", action="store_true", help="print the functions' metric lines (EMF), as on AWS")
    args = parser.parse_args(argv)
    ports = Ports.derive(args.port, **{name: getattr(args, f"{name}_port") for name in OFFSETS})
    workdir = Path(args.workdir or ROOT / ".local" / f"stack-{ports.api}")
    if taken := ports.taken(args.host):
        print(
            f"cannot start the local stack: {'ports' if len(taken) > 1 else 'port'} {', '.join(taken)} "
            f"{'are' if len(taken) > 1 else 'is'} in use. Stop what holds it, or choose "
            "another PORT (make run PORT=3100: every port follows it)",
            file=sys.stderr,
        )
        return 1

    sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
    sys.path.insert(0, str(ROOT))
    from local import template as template_module

    template = template_module.load(args.template)
    endpoint = ports.url("moto", args.host)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "RETRY_BASE_SECONDS": str(args.retry_base_seconds),
        }
    )
    if args.quiet:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # CloudWatch's metric lines (EMF) mean nothing on a laptop and drown the chat messages; --metrics shows them.
    if not args.metrics:
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from local import stack_log
    from opsbot.log import logger

    # The functions' JSON log lines: all of them to a file, one short line each on the terminal (--verbose: the JSON).
    log_path = workdir / "stack.log"
    logger.logger_handler.setStream(stack_log.Tee(log_path, verbose=args.verbose))

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    moto = ThreadedMotoServer(ip_address=args.host, port=ports.moto, verbose=False)
    moto.start()

    import boto3

    ddb, sqs, ssm = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("ssm")
    names = local_names(template, endpoint)
    for logical_id, resource in template.resources_of("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        ddb.create_table(
            TableName=names[logical_id],
            BillingMode="PAY_PER_REQUEST",
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
        )
        if ttl := props.get("TimeToLiveSpecification"):
            ddb.update_time_to_live(TableName=names[logical_id], TimeToLiveSpecification=ttl)
    queues = template.resources_of("AWS::SQS::Queue")
    arns: dict[str, str] = {}
    # Dead-letter queues first, so redrive policies can point at them.
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
        props = queues[logical_id].get("Properties", {})
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if redrive := props.get("RedrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arns[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]],
                    "maxReceiveCount": args.max_receive_count or int(redrive["maxReceiveCount"]),
                }
            )
        url = sqs.create_queue(QueueName=names[logical_id].rsplit("/", 1)[1], Attributes=attributes)["QueueUrl"]
        if url != names[logical_id]:  # `make event`'s env.json derives the URLs as local_names() does
            print(
                f"[local stack] moto named queue {logical_id} {url}, not {names[logical_id]}: env.json for "
                "sam local invoke will be wrong",
                file=sys.stderr,
                flush=True,
            )
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = boto3.client("s3")
    for logical_id in template.resources_of("AWS::S3::Bucket"):
        s3.create_bucket(Bucket=names[logical_id])
    # The functions' environment: what the template's Globals declare, as the local stack sets it. They share this
    # process, so each also sees what the template gives only another (PUBLIC_BASE_URL, DINGTALK_APP_KEY).
    os.environ.update(local_environment(template, ports, args.host))
    # Ops: the worker's output bucket, quick follow-ups, and SSM's Run Command calls through the fake in front of moto.
    worker_environment = local_environment(template, ports, args.host, "WorkerFunction")
    os.environ.update(
        {
            **{name: worker_environment.get(name, "") for name in ("OPS_OUTPUT_BUCKET", "RELEASES_TABLE")},
            "ARGOCD_TOKEN_PARAM": worker_environment["ARGOCD_TOKEN_PARAM"],
            "OPS_POLL_SECONDS": "1",
            "OPS_PROGRESS_SECONDS": "2",
            "RELEASE_POLL_SECONDS": "1",  # a release's rollout and verification are looked at every second
            "ARGOCD_URL": ports.url("argocd", args.host),  # the fake Argo CD, started below
        }
    )
    for variable, secret in LOCAL_SECRETS.items():
        ssm.put_parameter(Name=os.environ[variable], Value=secret, Type="SecureString", Overwrite=True)
    if args.quiet:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"

    from opsbot import wiring
    from opsbot.config import names as config_names
    from opsbot.config import store
    from opsbot.config.model import ConfigError, validate
    from opsbot.config.yaml_source import read_directory

    config_names.declare(wiring.known_names)  # as the worker does: the loaded config's command names are checked

    from local import fake_gitlab

    documents, problems = read_directory(args.config)
    try:
        if problems:
            raise ConfigError(problems)
        # the config repo's webhook is this stack's GitLab route: a commit made through the API comes back as a push
        hook = (f"{ports.url('api', args.host)}/webhooks/gitlab", LOCAL_SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"])
        gitlab, version = fake_gitlab.for_config(
            validate(documents, allow_literal_secrets=True), args.config, echo=not args.quiet, hook=hook
        )
        config = store.save(documents, version, source="local stack")  # the config repo's first commit
    except ConfigError as exc:
        print(f"config in {args.config} is invalid:\n  " + "\n  ".join(exc.lines()), file=sys.stderr)
        moto.stop()
        return 1

    from local import deploy_seed, fake_argocd, fake_dns, fake_kubernetes, fake_reconciler, fake_ssm, ops_seed

    kube = fake_kubernetes.FakeKubernetes(
        eks_cluster=ops_seed.EKS_CLUSTER, echo=not args.quiet, seed=deploy_seed.cluster_seed()
    )
    kube_server = fake_kubernetes.make_server(kube, args.host, ports.kube)
    threading.Thread(target=kube_server.serve_forever, daemon=True, name="fake-kubernetes").start()
    ops_seed.seed(boto3.client, kube.url)
    # GitOps: what reconciles the clusters from the deploy repo besides opsbot (Argo CD, Flux, a team's watcher).
    reconciler = fake_reconciler.Reconciler(gitlab, kube, gitops_targets(config, kube, "flux"))
    kube.on_reconcile = reconciler.flux
    reconciler.watch(list(gitops_targets(config, kube, "watch").values()))
    argocd = fake_argocd.FakeArgoCd(
        LOCAL_SECRETS["ARGOCD_TOKEN_PARAM"], deploy_seed.ARGOCD_APPLICATIONS, reconciler, echo=not args.quiet
    )
    argocd_server = fake_argocd.make_server(argocd, args.host, ports.argocd)
    threading.Thread(target=argocd_server.serve_forever, daemon=True, name="fake-argocd").start()
    ssm_fake = fake_ssm.FakeSsm(endpoint, echo=not args.quiet)
    ssm_server = fake_ssm.make_server(ssm_fake, args.host, ports.ssm)
    threading.Thread(target=ssm_server.serve_forever, daemon=True, name="fake-ssm").start()
    os.environ["AWS_ENDPOINT_URL_SSM"] = ssm_fake.url  # Parameter Store calls pass through it to moto
    dns_server = fake_dns.make_server(endpoint, args.host, ports.dns)
    threading.Thread(target=dns_server.serve_forever, daemon=True, name="fake-dns").start()

    from opsbot.release import links as tokens

    tokens.store(tokens.ReleaseGrant(**SAMPLE_RELEASE_GRANT))

    from local.fake_dingtalk import FakeDingTalk, make_server
    from local.fake_dingtalk_login import staff_from_config
    from local.fake_health import FakeHealth

    verify_email_senders(config, endpoint)
    sink = make_server(
        FakeDingTalk(
            robot_keys(config, "dingtalk"),
            echo=not args.quiet,
            app_key=LOCAL_APP_KEY,
            app_secret=LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"],
            staff=staff_from_config(config.people),
        ),
        args.host,
        ports.sink,
        channels=(*channel_fakes(config, endpoint, echo=not args.quiet), FakeHealth()),
    )
    threading.Thread(target=sink.serve_forever, daemon=True, name="dingtalk-sink").start()

    from local import fake_drone

    drone_server_url = ports.url("drone", args.host)
    drone = fake_drone.FakeDrone(
        config.drone.token if config.drone else "local-drone-token",
        echo=not args.quiet,
        deploy_seconds=args.deploy_seconds,
        webhook=lambda delivery: send_drone_webhook(ports.url("api", args.host), delivery),
        server=drone_server_url,
    )
    for slug, builds in fake_drone.default_seed().items():
        drone.seed(slug, builds)
    drone_server = fake_drone.make_server(drone, args.host, ports.drone)
    threading.Thread(target=drone_server.serve_forever, daemon=True, name="fake-drone").start()
    gitlab.known_commits = {  # a card's commit link opens a page for the fake Drone's builds too
        build["after"]: {"message": build["message"], "author": f"{build['author_name']} <{build['author_email']}>"}
        for builds in drone.builds.values()
        for build in builds
    }
    gitlab_server = fake_gitlab.make_server(gitlab, args.host, ports.gitlab)
    threading.Thread(target=gitlab_server.serve_forever, daemon=True, name="fake-gitlab").start()

    functions = {
        fid: LocalFunction(fid, f.code_uri, f.handler, template.timeout_seconds(fid))
        for fid, f in template.functions.items()
    }
    about = {
        "ports": ports.as_dict(),
        "urls": {
            "api": ports.url("api", args.host),
            "sink": ports.url("sink", args.host),
            "drone": ports.url("drone", args.host),
            "gitlab": ports.url("gitlab", args.host),
            "kube": kube.url,
            "ssm": ssm_fake.url,
            "argocd": argocd.url,
            "dns": f"udp://{args.host}:{ports.dns}",
            "moto": endpoint,
        },
        "config": str(Path(args.config).resolve()),
        "workdir": str(workdir.resolve()),
        "log": str(log_path.resolve()),
    }
    api = serve_api(template, functions, args.host, ports.api, about)
    threading.Thread(target=api.serve_forever, daemon=True, name="http-api").start()

    stop = threading.Event()
    if not args.no_worker:
        for fid, function in template.functions.items():
            if function.sqs_queue:
                threading.Thread(
                    target=drain_queue,
                    daemon=True,
                    name=f"sqs-{fid}",
                    args=(functions[fid], names[function.sqs_queue], arns[function.sqs_queue], stop),
                ).start()
    if args.drift_seconds:
        threading.Thread(
            target=schedule_drift_checks, args=(template, names, args.drift_seconds, stop), daemon=True, name="drift"
        ).start()

    urls = about["urls"]
    print(
        f"opsbot local stack ready on port {ports.api} (PORT; the other ports follow from it):\n"
        f"  API {urls['api']}   chat sink (DingTalk, Feishu, WeCom, Slack, SES) {urls['sink']}\n"
        f"  Drone {urls['drone']}   GitLab {urls['gitlab']}   Kubernetes {urls['kube']}   "
        f"SSM Run Command {urls['ssm']}   Argo CD {urls['argocd']}   DNS {urls['dns']}   moto {urls['moto']}\n"
        f"  config {args.config}   JSON log {log_path}",
        flush=True,
    )
    for route in template.routes:
        print(f"  {route.method:5} {route.path} -> {route.function}", flush=True)
    port = "" if ports.api == 3000 else f" PORT={ports.api}"
    for what, example in (
        ("send a sample", f"make send EVENT=events/drone/build_failure.json{port}"),
        ("talk to the bot", f"make chat MSG='status shop-api' WHO=alice{port}"),
        ("follow a release link from a card", f"make click LINK=<the button's URL> WHO=alice{port}"),
        ("push to the config repo", f"make config-push FILE=projects/shop-web.yaml{port}"),
        ("ops", f"make chat MSG='k8s pods shop-eks shop'{port}"),
        ("GitOps", f"make chat MSG='deploy shop-api 128 staging'{port}, then MSG='status shop-api'"),
    ):
        print(f"  {what}: {example}", flush=True)

    finished = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: finished.set())
    try:
        finished.wait()
    except KeyboardInterrupt:
        pass
    stop.set()
    # All at once: each server takes up to its poll interval (half a second) to notice.
    reconciler.stop.set()
    servers = (api, sink, drone_server, gitlab_server, kube_server, ssm_server, dns_server, argocd_server)
    stopping = [threading.Thread(target=server.shutdown) for server in servers]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
