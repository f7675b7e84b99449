"""Pinned peers (issue 17, finding 4): whoever may push to the config repo cannot send the stack's tokens anywhere.
The hosts that may receive each token are the stack's (settings.PEER_HOSTS, from template parameters); a config
naming another host is refused at validation with file:line, and each client refuses again before it sends."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from chat_support import ask, text_of
from unit_support import EXAMPLE_CONFIG, ROOT, example_documents

from opsbot.config.model import ConfigError, Document, validate


def _documents(edit) -> list[Document]:
    """The example config's documents with opsbot.yaml edited by `edit(config)`; line numbers from a YAML dump."""
    from opsbot.config.yaml_source import parse_files

    config = yaml.safe_load((EXAMPLE_CONFIG / "opsbot.yaml").read_text(encoding="utf-8"))
    edit(config)
    files = {"opsbot.yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False)}
    for path in (EXAMPLE_CONFIG / "projects").glob("*.yaml"):
        files[f"projects/{path.name}"] = path.read_text(encoding="utf-8")
    documents, problems = parse_files(files)
    assert problems == []
    return documents


def _problems(documents) -> list[str]:
    try:
        validate(documents, allow_literal_secrets=True, stage="local", check_hosts=True)
    except ConfigError as exc:
        return exc.lines()
    return []


class Listener:
    """An HTTP server that records every request it gets: where a stolen token would have gone."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                owner.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    found = Listener()
    yield found
    found.close()


def test_a_config_naming_an_unpinned_host_is_refused_with_file_and_line(env):
    env("GITLAB_HOSTS", "127.0.0.1:3003")
    env("DRONE_HOSTS", "127.0.0.1:3002")
    env("KUBERNETES_HOSTS", "k8s.example.com:6443")
    env("DINGTALK_ROBOT_HOSTS", "127.0.0.1:3001")

    def point_elsewhere(config):
        config["gitlab"]["url"] = "http://gitlab.evil.example"
        config["drone"]["server"] = "http://127.0.0.1:4444"  # the right host, the wrong port
        config["robots"]["shop-backend"]["webhook"] = "http://hooks.evil.example/robot/send?access_token=x"
        config["ops"]["clusters"]["onprem"] = {
            "environment": "staging",
            "api_server": "https://k8s.evil.example:6443",
            "token": "t",
            "namespaces": ["shop"],
        }

    problems = _problems(_documents(point_elsewhere))
    assert any(
        p.startswith("opsbot.yaml:")
        and "gitlab.url: gitlab.evil.example is not a GitLab host" in p
        and "GITLAB_HOSTS" in p
        for p in problems
    ), problems
    assert any("drone.server: 127.0.0.1:4444 is not a Drone host" in p and "127.0.0.1:3002" in p for p in problems)
    assert any("robots.shop-backend.webhook: hooks.evil.example is not a DingTalk robot host" in p for p in problems)
    assert any("ops.clusters.onprem.api_server: k8s.evil.example:6443 is not a Kubernetes" in p for p in problems)
    # each problem names its line, not just the file
    assert all(p.split(":")[1].isdigit() and int(p.split(":")[1]) > 1 for p in problems), problems
    # the example itself, on the hosts the stack pins, is valid
    env("FEISHU_ROBOT_HOSTS", "127.0.0.1:3001")
    env("KUBERNETES_HOSTS", "127.0.0.1:3004")
    assert _problems(_documents(lambda config: None)) == []


def test_every_save_checks_the_hosts_and_a_push_naming_another_host_changes_nothing(aws, env):
    from opsbot.config import store

    env("GITLAB_HOSTS", "gitlab.example.com")
    documents = example_documents()
    with pytest.raises(ConfigError) as refused:
        store.save(documents, "evil")
    assert any("gitlab.url: 127.0.0.1:3003 is not a GitLab host" in line for line in refused.value.lines())
    with pytest.raises(LookupError):
        store.current_documents()  # nothing was stored


def test_host_rules_a_host_alone_takes_any_port_and_host_port_only_that_port(env):
    from opsbot.peers import not_pinned

    env("GITLAB_HOSTS", "gitlab.example.com, git.example.com:8443")
    env("OPSBOT_STAGE", "prod")
    assert not_pinned("https://gitlab.example.com", "gitlab") == ""
    assert not_pinned("https://GitLab.Example.com:8080/api", "gitlab") == ""
    assert not_pinned("https://git.example.com:8443", "gitlab") == ""
    assert "git.example.com" in not_pinned("https://git.example.com", "gitlab")  # 443 is not 8443
    assert not_pinned("http://gitlab.example.com", "gitlab") == "the GitLab URL must be https://"
    # what a URL's own parser would send elsewhere is refused outright
    assert not_pinned("https://gitlab.example.com@evil.example", "gitlab") == "the GitLab URL names no plain host"
    assert not_pinned("https://evil.example\\@gitlab.example.com", "gitlab") == "the GitLab URL names no plain host"
    assert "evil.example" in not_pinned("https://gitlab.example.com.evil.example", "gitlab")
    # an EKS endpoint (eks:DescribeCluster's answer) is taken unlisted; a config's api_server there is not
    env("KUBERNETES_HOSTS", "")
    eks = "https://0A1B2C.gr7.us-east-1.eks.amazonaws.com"
    assert not_pinned(eks, "kubernetes", eks_endpoint=True) == ""
    assert "not a Kubernetes API server host" in not_pinned(eks, "kubernetes")
    # the robots' vendor hosts are the defaults
    from opsbot.settings import ENVIRONMENT, PEER_HOSTS

    for kind, url in (
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t"),
        ("feishu", "https://open.larksuite.com/open-apis/bot/v2/hook/t"),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
        ("slack", "https://hooks.slack.com/services/T/B/x"),
    ):
        env(PEER_HOSTS[kind], ENVIRONMENT[PEER_HOSTS[kind]][1])
        assert not_pinned(url, kind) == "", kind
        assert "not a" in not_pinned(url.replace("https://", "https://x."), kind)


def test_the_drone_client_refuses_to_send_its_token_to_an_unpinned_host(chat_config, fake_drone, env, listener):
    """A config stored when Drone's host was listed, and the list narrowed since: nothing goes out."""
    from opsbot.drone.api import DroneClient
    from opsbot.peers import PeerNotPinned

    env("DRONE_HOSTS", "drone.example.com")
    with pytest.raises(PeerNotPinned, match="is not a Drone host"):
        DroneClient(listener.url, "the-drone-token")
    reply = text_of(ask("status shop-api", "alice"))  # a read the DingTalk function answers with Drone
    assert "will not send its Drone token" in reply and "DRONE_HOSTS" in reply
    assert fake_drone.calls == [] and listener.requests == []


def test_the_gitlab_client_refuses_to_send_its_token_to_an_unpinned_host(aws, env, listener):
    from opsbot.gitlab.api import GitLabClient
    from opsbot.peers import PeerNotPinned

    env("GITLAB_HOSTS", "gitlab.example.com")
    with pytest.raises(PeerNotPinned, match="is not a GitLab host"):
        GitLabClient(listener.url, "the-gitlab-token").project("platform/opsbot-config")
    assert listener.requests == []


def test_a_cluster_token_goes_only_to_a_pinned_api_server(aws, env, listener):
    from opsbot.config.ops import Cluster
    from opsbot.ops import kubernetes
    from opsbot.peers import PeerNotPinned

    env("KUBERNETES_HOSTS", "k8s.example.com:6443")
    cluster = Cluster("onprem", "staging", api_server=listener.url, token="the-cluster-token", namespaces=("shop",))
    with pytest.raises(PeerNotPinned, match="is not a Kubernetes API server host"):
        kubernetes._connection(cluster)
    assert listener.requests == []


def test_a_robot_webhook_in_ssm_pointing_elsewhere_parks_the_job_naming_the_robot(aws, env, listener):
    """The config names only `ssm:` parameters outside the local stack, so a robot's host is checked when sent."""
    from opsbot.channels import dingtalk
    from opsbot.config.model import Robot
    from opsbot.jobs.model import PermanentFailure

    aws.ssm.put_parameter(
        Name="/opsbot/dev/robots/team/webhook", Value=f"{listener.url}/robot/send?access_token=t", Type="SecureString"
    )
    aws.ssm.put_parameter(Name="/opsbot/dev/robots/team/secret", Value="SECsecret", Type="SecureString")
    env("DINGTALK_ROBOT_HOSTS", "oapi.dingtalk.com")
    robot = Robot("team", "ssm:/opsbot/dev/robots/team/webhook", "ssm:/opsbot/dev/robots/team/secret")
    with pytest.raises(PermanentFailure, match="robot team: .* is not a DingTalk robot host"):
        dingtalk.send(robot, {"msgtype": "markdown", "markdown": {"title": "t", "text": "t"}})
    assert listener.requests == []


def test_the_stack_pins_each_peer_from_a_template_parameter_and_the_local_stack_from_its_ports():
    from local import template as template_module
    from local.stack import local_peer_hosts
    from opsbot.settings import PEER_HOSTS

    template = template_module.load(str(ROOT / "template.yaml"))
    environment = template.global_environment()
    for variable in PEER_HOSTS.values():
        assert isinstance(environment[variable], dict) and "Ref" in environment[variable], variable
        assert template.parameter_default(environment[variable]["Ref"]) is not None
    local = local_peer_hosts("127.0.0.1", 4001, 4002, 4003, 4004)
    assert set(local) == set(PEER_HOSTS.values())
    assert local["GITLAB_HOSTS"] == "127.0.0.1:4003" and local["DRONE_HOSTS"] == "127.0.0.1:4002"
    assert local["KUBERNETES_HOSTS"] == "127.0.0.1:4004" and local["SLACK_ROBOT_HOSTS"] == "127.0.0.1:4001"
