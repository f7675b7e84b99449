"""`make event` (local/sam_event.py): a sample signed now passes the real checks, and env.json gives every function
of the template its variables as the local stack sets them, for `sam local invoke`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from local import sam_event
from local import template as local_template
from local.ports import NotRunning, Ports
from local.signing import AUTH_HEADERS, event_body, kept_as_stored
from local.stack import LOCAL_SECRETS, local_names
from opsbot.dingtalk.signature import verify_callback
from opsbot.drone.signature import verify as verify_drone
from opsbot.gitlab.webhook import verify_token
from opsbot.ingress.errors import Unauthorized

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = local_template.load(ROOT / "template.yaml")
SAMPLES = sorted((ROOT / "events").rglob("*.json"))
SIGNED = [s for s in SAMPLES if not kept_as_stored(s) and s.parent.name in ("drone", "gitlab", "dingtalk", "slack")]
MOTO = "http://127.0.0.1:5005"


@pytest.fixture
def env_json() -> dict:
    return sam_event.env_vars(TEMPLATE, Ports.derive(3000))


@pytest.fixture
def stored_gitlab_token(aws, env, env_json):
    """The GitLab token where env.json says the function reads it (moto's SSM), as the local stack stores it."""
    name = env_json["GitlabWebhookFunction"]["GITLAB_WEBHOOK_TOKEN_PARAM"]
    aws.ssm.put_parameter(Name=name, Value=LOCAL_SECRETS["GITLAB_WEBHOOK_TOKEN_PARAM"], Type="SecureString")
    env("GITLAB_WEBHOOK_TOKEN_PARAM", name)


def test_the_samples_are_all_there():
    assert {s.parent.name for s in SIGNED} == {"drone", "gitlab", "dingtalk", "slack"} and len(SIGNED) >= 13


@pytest.mark.parametrize("sample", SIGNED, ids=lambda s: f"{s.parent.name}/{s.stem}")
def test_a_signed_copy_passes_the_real_check_when_written_and_the_stored_sample_is_stale(sample, stored_gitlab_token):
    written_at = time.time()
    stored = json.loads(sample.read_text(encoding="utf-8"))
    copy, how = sam_event.copy_for_invoke(sample, written_at)
    assert how.startswith("signed at ")
    body, headers = event_body(copy), copy["headers"]
    assert body == event_body(stored) and copy["rawPath"] == stored["rawPath"]
    assert all(name == name.lower() for name in headers)  # as API Gateway passes them
    assert copy["requestContext"]["timeEpoch"] == int(written_at * 1000)
    if sample.parent.name == "drone":
        secret = LOCAL_SECRETS["DRONE_WEBHOOK_SECRET_PARAM"]
        verify_drone(headers, body, secret, now=written_at)
        with pytest.raises(Unauthorized, match="stale Date"):
            verify_drone(stored["headers"], body, secret, now=written_at)
        form = "authorization" if "authorization" in stored["headers"] else "signature"  # as stored
        assert [h for h in ("authorization", "signature") if h in headers] == [form]
    elif sample.parent.name == "dingtalk":
        secret = LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"]
        verify_callback(headers, secret, now_ms=int(written_at * 1000))
        with pytest.raises(Unauthorized, match="stale DingTalk timestamp"):
            verify_callback(stored["headers"], secret, now_ms=int(written_at * 1000))
    elif sample.parent.name == "slack":
        from opsbot.chat.inbound import slack

        secret = LOCAL_SECRETS["SLACK_SIGNING_SECRET_PARAM"]
        assert headers["x-slack-signature"] == slack.signature(secret, headers["x-slack-request-timestamp"], body)
        assert abs(int(headers["x-slack-request-timestamp"]) - written_at) < 5
        assert int(stored["headers"]["x-slack-request-timestamp"]) < written_at - slack.MAX_SKEW_SECONDS  # stale
    else:
        verify_token(headers, body)
    untouched = {k: v for k, v in stored["headers"].items() if k not in AUTH_HEADERS}
    assert {k: headers[k] for k in untouched} == untouched


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s not in SIGNED], ids=lambda s: f"{s.parent.name}/{s.stem}")
def test_samples_meant_to_fail_and_release_links_are_copied_as_they_are(sample):
    copy, how = sam_event.copy_for_invoke(sample, time.time())
    assert copy == json.loads(sample.read_text(encoding="utf-8")) and how.startswith("as stored")


def test_env_json_names_every_function_with_the_variables_the_template_declares(env_json):
    assert (
        set(env_json)
        == set(TEMPLATE.functions)
        == {
            "DroneWebhookFunction",
            "GitlabWebhookFunction",
            "DingtalkBotFunction",
            "FeishuBotFunction",
            "SlackBotFunction",
            "ActionsFunction",
            "WorkerFunction",
        }
    )
    names = local_names(TEMPLATE, MOTO)
    for function, variables in env_json.items():
        # SAM overrides only what the template declares for the function, so that is exactly what env.json holds.
        assert set(variables) == set(TEMPLATE.function_environment(function)), function
        assert all(isinstance(v, str) for v in variables.values()), function  # no unresolved !Ref or !Sub
        assert variables["AWS_ENDPOINT_URL"] == MOTO and variables["OPSBOT_STAGE"] == "local"
        assert (variables["CONFIG_TABLE"], variables["STATE_TABLE"], variables["AUDIT_TABLE"]) == (
            "opsbot-local-ConfigTable",
            "opsbot-local-StateTable",
            "opsbot-local-AuditTable",
        )
        assert variables["WORK_QUEUE_URL"] == names["WorkQueue"] == f"{MOTO}/123456789012/opsbot-local-WorkQueue"
        assert variables["DEAD_LETTER_QUEUE_URL"] == names["DeadLetterQueue"]
        assert {v: variables[v] for v in LOCAL_SECRETS if v != "ARGOCD_TOKEN_PARAM"} == {
            "DRONE_WEBHOOK_SECRET_PARAM": "/opsbot/local/webhooks/drone",
            "GITLAB_WEBHOOK_TOKEN_PARAM": "/opsbot/local/webhooks/gitlab",
            "DINGTALK_APP_SECRET_PARAM": "/opsbot/local/dingtalk/app-secret",
            "ACTION_SIGNING_KEY_PARAM": "/opsbot/local/actions/signing-key",
            "FEISHU_APP_SECRET_PARAM": "/opsbot/local/feishu/app-secret",
            "FEISHU_VERIFICATION_TOKEN_PARAM": "/opsbot/local/feishu/verification-token",
            "SLACK_SIGNING_SECRET_PARAM": "/opsbot/local/slack/signing-secret",
            "SLACK_BOT_TOKEN_PARAM": "/opsbot/local/slack/bot-token",
        }
    assert env_json["ActionsFunction"]["DINGTALK_APP_KEY"] == "dinglocalappkey"
    assert env_json["WorkerFunction"]["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    # Argo CD's token is the worker's alone, like the releases table.
    assert env_json["WorkerFunction"]["ARGOCD_TOKEN_PARAM"] == "/opsbot/local/argocd/token"
    assert env_json["WorkerFunction"]["RELEASES_TABLE"] == "opsbot-local-ReleasesTable"
    assert "ARGOCD_TOKEN_PARAM" not in env_json["DingtalkBotFunction"]


def test_the_template_declares_an_empty_endpoint_so_sam_can_override_it():
    assert TEMPLATE.global_environment()["AWS_ENDPOINT_URL"] == ""  # empty on AWS: boto3's own endpoints
    assert TEMPLATE.global_environment()["LOCAL_PEERS"] == ""  # no local:// peer resolves on AWS


def not_running(port=None, timeout=3.0):
    raise NotRunning(f"nothing on {port}")


def test_make_event_writes_both_files_and_prints_the_invoke_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sam_event, "running", not_running)  # no stack: the ports follow from PORT
    sample = ROOT / "events" / "dingtalk" / "status.json"
    assert sam_event.main([str(sample), "--port", "3100", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "events" / "dingtalk" / "status.json").read_text(encoding="utf-8"))
    verify_callback(written["headers"], LOCAL_SECRETS["DINGTALK_APP_SECRET_PARAM"])
    env_json = json.loads((tmp_path / "env.json").read_text(encoding="utf-8"))
    assert env_json["DingtalkBotFunction"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5105"  # PORT + 2005
    assert env_json["WorkerFunction"]["PUBLIC_BASE_URL"] == "http://127.0.0.1:3100"
    peers = dict(pair.split("=", 1) for pair in env_json["WorkerFunction"]["LOCAL_PEERS"].split())
    assert peers["drone"] == "http://127.0.0.1:3102" and peers["dingtalk"] == "http://127.0.0.1:3101"
    # the same fakes are the only hosts its tokens may go to (pinned peers), on the ports PORT gives
    worker = env_json["WorkerFunction"]
    assert (worker["DRONE_HOSTS"], worker["GITLAB_HOSTS"], worker["KUBERNETES_HOSTS"]) == (
        "127.0.0.1:3102",
        "127.0.0.1:3103",
        "127.0.0.1:3104",
    )
    assert worker["DINGTALK_ROBOT_HOSTS"] == worker["FEISHU_ROBOT_HOSTS"] == "127.0.0.1:3101"
    printed = capsys.readouterr().out
    assert "SAM_CLI_TELEMETRY=0 " in printed  # the command as printed sends nothing home
    assert f"local invoke DingtalkBotFunction -e {tmp_path}/events/dingtalk/status.json" in printed
    assert f"--env-vars {tmp_path}/env.json --region us-east-1" in printed


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.parent.name}/{s.stem}")
def test_every_sample_has_a_function_to_invoke(sample, tmp_path, monkeypatch):
    monkeypatch.setattr(sam_event, "running", not_running)
    assert sam_event.main([str(sample), "--out", str(tmp_path)]) == 0
