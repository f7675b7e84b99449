"""opsbot.channels.dingtalk.send against a real HTTP server on 127.0.0.1: DingTalk's answers sorted into success,
"deliver later" and "retrying cannot help", the signed URL, and no access token in the logs."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from opsbot import secrets
from opsbot.channels import dingtalk as robot_api
from opsbot.config.model import Robot
from opsbot.dingtalk.signature import sign
from opsbot.jobs.model import PermanentFailure, RetryLater

ACCESS_TOKEN = "tok3n-must-never-be-logged-5c1e9a"
ROBOT_SECRET = "SECrobot0signing0secret0for0unit0tests"
MESSAGE = {"msgtype": "markdown", "markdown": {"title": "t", "text": "### hello"}}


class FakeDingTalk:
    """A tiny DingTalk robot endpoint: records requests and answers as told."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.body: bytes = b'{"errcode":0,"errmsg":"ok"}'
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(self.rfile.read(length) or b"null"),
                    }
                )
                if fake.delay:
                    time.sleep(fake.delay)
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(fake.body)))
                    self.end_headers()
                    self.wfile.write(fake.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, status: int = 200, body: dict | bytes | None = None, delay: float = 0.0) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body or {"errcode": 0, "errmsg": "ok"}).encode()
        self.delay = delay

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send?access_token={ACCESS_TOKEN}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dingtalk_server():
    server = FakeDingTalk()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def robot(dingtalk_server) -> Robot:
    return Robot(name="shop-backend", webhook=dingtalk_server.url(), secret=ROBOT_SECRET)


def test_errcode_0_is_delivered(dingtalk_server, robot):
    robot_api.send(robot, MESSAGE)
    assert len(dingtalk_server.requests) == 1
    request = dingtalk_server.requests[0]
    assert request["body"] == MESSAGE
    assert request["headers"]["Content-Type"].split(";")[0] == "application/json"


def test_signed_url_carries_token_timestamp_and_sign(dingtalk_server, robot):
    before = int(time.time() * 1000)
    robot_api.send(robot, MESSAGE)
    after = int(time.time() * 1000)
    url = urlsplit(dingtalk_server.requests[0]["path"])
    query = parse_qs(url.query)
    assert url.path == "/robot/send"
    assert query["access_token"] == [ACCESS_TOKEN]
    timestamp = query["timestamp"][0]
    assert before <= int(timestamp) <= after
    assert query["sign"] == [sign(timestamp, ROBOT_SECRET)]
    # The base64 sign is URL-encoded: '+', '/' and '=' never appear raw in the query.
    raw_sign = url.query.split("sign=")[1]
    assert not set(raw_sign) & set("+/=")


@pytest.mark.parametrize("errcode", [130101, 410100])
def test_rate_limited_is_retried_after_ten_minutes(dingtalk_server, robot, errcode):
    dingtalk_server.answer(200, {"errcode": errcode, "errmsg": "send too fast"})
    with pytest.raises(RetryLater) as caught:
        robot_api.send(robot, MESSAGE)
    assert caught.value.delay == 600
    assert "shop-backend" in caught.value.reason and str(errcode) in caught.value.reason


@pytest.mark.parametrize(
    "errcode, errmsg",
    [
        (310000, "keywords not in content"),
        (400101, "access_token not exist"),
        (400102, "robot is disabled"),
        (300001, "token is not exist"),
        (400106, "robot does not exist"),
    ],
)
def test_refusals_are_permanent_and_name_the_robot(dingtalk_server, robot, errcode, errmsg):
    dingtalk_server.answer(200, {"errcode": errcode, "errmsg": errmsg})
    with pytest.raises(PermanentFailure) as caught:
        robot_api.send(robot, MESSAGE)
    assert caught.value.reason == f"robot shop-backend: errcode {errcode} {errmsg}"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_429_are_retried(dingtalk_server, robot, status):
    dingtalk_server.answer(status, {"errcode": -1, "errmsg": "busy"})
    with pytest.raises(RetryLater) as caught:
        robot_api.send(robot, MESSAGE)
    assert caught.value.delay is None  # the worker's exponential backoff
    assert caught.value.reason == f"robot shop-backend: HTTP {status}"


def test_non_json_answer_is_retried(dingtalk_server, robot):
    dingtalk_server.answer(200, b"<html>gateway</html>")
    with pytest.raises(RetryLater, match="non-JSON"):
        robot_api.send(robot, MESSAGE)


def test_non_object_json_answer_is_permanent(dingtalk_server, robot):
    dingtalk_server.answer(200, b"[1, 2]")
    with pytest.raises(PermanentFailure, match="shop-backend"):
        robot_api.send(robot, MESSAGE)


def test_http_4xx_with_errcode_0_is_not_success(dingtalk_server, robot):
    dingtalk_server.answer(404, {"errcode": 0})
    with pytest.raises(PermanentFailure, match="shop-backend"):
        robot_api.send(robot, MESSAGE)


def test_timeout_is_retried(dingtalk_server, robot, env):
    env("HTTP_TIMEOUT_SECONDS", "0.2")
    dingtalk_server.answer(200, {"errcode": 0}, delay=0.8)
    started = time.monotonic()
    with pytest.raises(RetryLater) as caught:
        robot_api.send(robot, MESSAGE)
    assert time.monotonic() - started < 0.7
    assert caught.value.reason == "robot shop-backend: ReadTimeout"


def test_connection_refused_is_retried(dingtalk_server, robot):
    dingtalk_server.close()
    with pytest.raises(RetryLater, match="robot shop-backend: ConnectionError"):
        robot_api.send(robot, MESSAGE)


def test_secrets_can_come_from_ssm(aws, dingtalk_server):
    aws.ssm.put_parameter(Name="/opsbot/test/robot/webhook", Value=dingtalk_server.url(), Type="SecureString")
    aws.ssm.put_parameter(Name="/opsbot/test/robot/secret", Value=ROBOT_SECRET, Type="SecureString")
    robot = Robot(name="shop-backend", webhook="ssm:/opsbot/test/robot/webhook", secret="ssm:/opsbot/test/robot/secret")
    robot_api.send(robot, MESSAGE)
    query = parse_qs(urlsplit(dingtalk_server.requests[0]["path"]).query)
    assert query["access_token"] == [ACCESS_TOKEN]
    assert query["sign"] == [sign(query["timestamp"][0], ROBOT_SECRET)]


def test_literal_secrets_are_refused_outside_the_local_stack(dingtalk_server, robot, env):
    env("OPSBOT_STAGE", "prod")
    with pytest.raises(secrets.SecretError, match="ssm:"):
        robot_api.send(robot, MESSAGE)
    assert dingtalk_server.requests == []


def test_missing_ssm_secret_is_a_secret_error(aws):
    with pytest.raises(secrets.SecretError, match="/opsbot/test/nothing"):
        secrets.resolve("ssm:/opsbot/test/nothing")


def test_the_access_token_never_reaches_the_logs(dingtalk_server, robot, env, opsbot_log, caplog, capsys):
    caplog.set_level(logging.INFO)
    env("HTTP_TIMEOUT_SECONDS", "0.2")
    outcomes = []
    for status, body, delay in [
        (200, {"errcode": 0}, 0),
        (200, {"errcode": 130101, "errmsg": "too fast"}, 0),
        (200, {"errcode": 310000, "errmsg": "keywords not in content"}, 0),
        (500, {"errcode": -1}, 0),
        (200, {"errcode": 0}, 0.8),
    ]:
        dingtalk_server.answer(status, body, delay)
        try:
            robot_api.send(robot, MESSAGE)
            outcomes.append("sent")
        except (RetryLater, PermanentFailure) as exc:
            outcomes.append(f"{type(exc).__name__}: {exc.reason}")
    dingtalk_server.close()
    try:
        robot_api.send(robot, MESSAGE)
    except RetryLater as exc:
        outcomes.append(f"RetryLater: {exc.reason}")

    assert len(outcomes) == 6 and outcomes[0] == "sent"
    log = opsbot_log()
    assert "rate limited" in log and "refused the message" in log  # the logger was really captured
    captured = capsys.readouterr()
    everything = "\n".join([log, caplog.text, captured.out, captured.err, *outcomes])
    assert ACCESS_TOKEN not in everything
    assert ROBOT_SECRET not in everything
