"""Ops from chat, below the local stack: the `ops:` config and its errors with file:line, typed runbook parameters,
the EKS token, previews that only their requester may confirm in time, DNS rules, long logs within DingTalk's
limit, the fake SSM's batch schedule, and the heavy clients kept off every cold start."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlparse

import pytest
from unit_support import EXAMPLE_CONFIG, FUNCTIONS, LAYER_PATH, ROOT

from opsbot.config.model import ConfigError, Document, validate
from opsbot.config.yaml_source import read_directory


def _documents(change, tmp_path) -> list[Document]:
    """The example config with `change` made to its ops section, read back from YAML (so with line numbers)."""
    import shutil

    import yaml

    directory = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, directory)
    data = yaml.safe_load((directory / "opsbot.yaml").read_text(encoding="utf-8"))
    change(data["ops"])
    (directory / "opsbot.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    documents, problems = read_directory(directory)
    assert problems == []
    return documents


def test_the_example_config_names_a_cluster_groups_runbooks_a_zone_and_two_services():
    ops = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True).ops
    assert ops.clusters["shop-eks"].eks_name == "shop" and ops.clusters["shop-eks"].namespaces == ("shop",)
    assert ops.vm_groups["shop-web-vms"].tags == {"app": "shop-web"}
    assert ops.runbooks["tail-log"].parameters["lines"].maximum == 500
    assert ops.dns_zones["shop"].protects("shop.example") and ops.dns_zones["shop"].protects("mail.shop.example")
    assert ops.services["shop-api"]["production"].on_kubernetes
    assert not ops.services["shop-web"]["production"].on_kubernetes
    assert ops.approvals == {"production": 1}


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda o: o["clusters"]["shop-eks"].pop("eks"), "give either eks (name, region) or api_server"),
        (lambda o: o["clusters"]["shop-eks"].update(namespaces=["Bad_NS"]), "'Bad_NS' is not a namespace name"),
        (lambda o: o["vm_groups"]["shop-web-vms"].update(max_errors="150%"), "max_errors must be a number"),
        (lambda o: o["runbooks"]["tail-log"].update(commands=["tail {{nope}}"]), "{{nope}} is not a parameter"),
        (lambda o: o["runbooks"]["tail-log"]["parameters"]["file"].update(type="string"), "no free text"),
        (lambda o: o["dns_zones"]["shop"].update(protected=["x.other.example"]), "'x.other.example' is not in shop"),
        (lambda o: o["services"]["shop-api"].update(staging=o["services"]["shop-api"]["production"]), "is production"),
    ],
)
def test_ops_config_problems_name_the_file_and_line(change, problem, tmp_path):
    with pytest.raises(ConfigError) as raised:
        validate(_documents(change, tmp_path), allow_literal_secrets=True)
    lines = raised.value.lines()
    assert any(problem in line and line.startswith("opsbot.yaml:") and line.split(":")[1].isdigit() for line in lines)


def test_a_cluster_token_outside_the_local_stack_lives_under_clusters(tmp_path):
    def api_server(ops):
        ops["clusters"]["shop-eks"] = {
            "environment": "production",
            "api_server": "https://k8s.example.com:6443",
            "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "token": "ssm:/opsbot/prod/robots/k8s",
            "namespaces": ["shop"],
        }

    with pytest.raises(ConfigError) as raised:
        validate(_documents(api_server, tmp_path), allow_literal_secrets=False, stage="prod")
    assert any("must be a parameter under /opsbot/prod/clusters/" in line for line in raised.value.lines())


def test_runbook_parameters_are_typed_and_shell_quoted():
    from opsbot.ops import vm

    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    runbook = config.ops.runbooks["tail-log"]
    assert vm.values(runbook, {}) == {"lines": "50", "file": "error.log"}
    for bad, why in (
        ({"lines": "1; rm -rf /"}, "whole number"),
        ({"lines": "501"}, "from 1 to 500"),
        ({"file": "../../etc/passwd"}, "must be one of"),
        ({"user": "root"}, "no parameter user"),
    ):
        with pytest.raises(vm.ParameterError, match=why):
            vm.values(runbook, bad)
    parameters = vm.document_parameters(runbook, {"lines": "20", "file": "access.log"})
    assert parameters == {"commands": ["tail -n 20 /var/log/nginx/access.log"], "executionTimeout": ["600"]}
    group = config.ops.vm_groups["shop-web-vms"]
    assert {"Key": "tag:opsbot-ops", "Values": ["enabled"]} in vm.targets(group)
    assert len(vm.comment("3f9a2c1b", "王小明" * 40, "restart-nginx")) == 100


def test_the_eks_token_is_a_presigned_get_caller_identity_that_signs_the_cluster():
    from local.fake_kubernetes import eks_token_ok
    from opsbot.ops.kubernetes import eks_token

    token = eks_token("shop", "us-east-1")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token[len("k8s-aws-v1.") :]
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    query = parse_qs(urlparse(url).query)
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert eks_token_ok(token, "shop")


def test_a_preview_is_confirmed_only_by_its_requester_and_only_in_time(aws):
    from opsbot.authz.actors import Actor
    from opsbot.ops import requests as ops_requests
    from opsbot.ops.verbs import K8S_RESTART

    alice = Actor("dingtalk", "alice.wang", "Alice Wang")
    made = ops_requests.new(
        "ab12cd34", K8S_RESTART, alice, "production", "cluster x", "restart", {"kind": "k"}, "en", 10
    )
    assert ops_requests.new("ab12cd34", K8S_RESTART, alice, "production", "x", "y", {}, "en", 10).plan == made.plan
    assert ops_requests.for_confirmation("ab12cd34", alice.id, "en").id == "ab12cd34"
    with pytest.raises(ops_requests.OpsRefused, match="only they may confirm"):
        ops_requests.for_confirmation("ab12cd34", "dingtalk:bob", "en")
    with pytest.raises(ops_requests.OpsRefused, match="not confirmed in time"):
        ops_requests.for_confirmation("ab12cd34", alice.id, "en", now=made.expires + 1)
    assert ops_requests.move(made, "confirmed", ("previewed",)) is True
    assert ops_requests.move(made, "confirmed", ("previewed",)) is False  # once
    assert made.fingerprint != ops_requests.fingerprint(made.verb, {"kind": "k", "more": 1})


@pytest.fixture
def zone(aws):
    import boto3

    from local import ops_seed

    route53 = boto3.client("route53", region_name="us-east-1")
    from moto.route53.models import HostedZoneIdentifier
    from moto.utilities.id_generator import moto_id_manager

    moto_id_manager.set_custom_id(HostedZoneIdentifier(ops_seed.ACCOUNT, "shop.example.", None), "Z0SHOPEXAMPLE")
    zone_id = route53.create_hosted_zone(Name="shop.example", CallerReference="unit")["HostedZone"]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": n,
                        "Type": t,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": v} for v in vs],
                    },
                }
                for n, t, vs in ops_seed.RECORDS
            ]
        },
    )
    return validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True).ops.dns_zones["shop"]


def test_a_dns_plan_keeps_to_the_zones_rules_and_snapshots_the_old_record(zone):
    from opsbot.ops import dns

    plan = dns.plan_set(zone, "api.shop.example", "A", "192.0.2.77", 120)
    assert dns.values_of(plan["before"]) == ["192.0.2.10"] and dns.values_of(plan["after"]) == ["192.0.2.77"]
    assert dns.plan_set(zone, "new.shop.example", "TXT", "hello", None)["before"] is None
    for args, why in (
        (("mail.shop.example", "A", "192.0.2.1", None), "protected"),
        (("shop.example", "A", "192.0.2.1", None), "protected"),
        (("api.shop.example", "MX", "10 x.example", None), "allows only"),
        (("api.shop.example", "A", "192.0.2.1", 5), "from 60 to 3600"),
        (("api.shop.example", "A", "not-an-ip", None), "not an IPv4 address"),
        (("api.shop.example", "CNAME", "lb.example.net", None), "cannot stand beside"),
        (("www.shop.example", "A", "192.0.2.1", None), "is a CNAME"),
        (("x.other.example", "A", "192.0.2.1", None), "not in the zone"),
        (("api.shop.example", "TXT", 'a"b', None), "without quotes"),
    ):
        with pytest.raises(dns.RecordError, match=why):
            dns.plan_set(zone, *args)


def test_a_dns_change_refuses_a_record_that_moved_since_the_preview(zone):
    from opsbot.ops import dns
    from opsbot.ops.peers import Route53Refused

    plan = dns.plan_set(zone, "api.shop.example", "A", "192.0.2.77", 120)
    other = dns.plan_set(zone, "api.shop.example", "A", "192.0.2.88", 120)
    assert dns.change(zone, plan, "opsbot ab12cd34 by Alice Wang")
    # A retry of the same change (its answer lost) finds the record as planned: done, not refused, not sent again.
    assert dns.change(zone, plan, "again") == ""
    with pytest.raises(Route53Refused, match="changed since the preview"):
        dns.change(zone, other, "other")  # the record is no longer what that preview showed
    undo = dns.plan_undo(zone, plan)
    dns.change(zone, undo, "undo")
    assert dns.values_of(dns.current(zone, "api.shop.example", "A")) == ["192.0.2.10"]


@pytest.fixture
def kube():
    from local.fake_kubernetes import FakeKubernetes, make_server

    fake = FakeKubernetes(token="unit-k8s-token")
    server = make_server(fake, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def test_long_logs_are_cut_to_fit_dingtalk_with_the_rest_behind_a_link(aws, kube, env, monkeypatch):
    import boto3

    from opsbot.authz.actors import Actor
    from opsbot.chat.commands import all_commands
    from opsbot.chat.context import ChatRequest
    from opsbot.config.ops import Cluster
    from opsbot.ops import kubernetes as k8s

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="unit-ops-output")
    env("OPS_OUTPUT_BUCKET", "unit-ops-output")
    kube.logs[("shop", "shop-api-1x0")] = [
        f"ERROR <b>[click](http://evil.example)</b> @all {'x' * 900} {i}" for i in range(2000)
    ]
    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    cluster = Cluster("shop-eks", "production", api_server=kube.url, token="unit-k8s-token", namespaces=("shop",))
    config.ops.clusters["shop-eks"] = cluster
    k8s.forget_clients()
    person = config.person("alice")
    from opsbot.audit import AuditRecord
    from opsbot.channels import dingtalk

    command = all_commands().commands["k8s logs"]
    request = ChatRequest(
        config,
        {},
        Actor("dingtalk", "alice.wang", person.name, person),
        command,
        {"cluster": "shop-eks", "namespace": "shop", "pod|deployment/name": "shop-api-1x0", "lines": 2000},
        "en",
        "job0123456789",
        in_worker=True,
        record=AuditRecord(
            id="j", at_ms=0, who="alice", who_name="Alice", where="", where_title="", command="k8s logs"
        ),
    )
    reply = command.run(request)
    body = json.dumps(dingtalk.render(reply.as_message("en"), config.person), ensure_ascii=False).encode()
    assert len(body) < 20_000
    assert "the whole log" in reply.text and "error lines" in reply.text
    assert "<b>" not in reply.text and "](http://evil" not in reply.text and "@all" not in reply.text
    call = [c for c in kube.calls if c["path"].endswith("/log")][-1]
    assert call["query"] == {"tailLines": "2000", "limitBytes": "1000000"}


def test_the_fake_ssm_stops_a_batch_after_max_errors():
    from local.fake_ssm import schedule

    instances = [{"id": f"i-{n}", "outcome": "Failed", "seconds": 1} for n in range(3)]
    assert list(schedule(instances, 1, 0)) == ["i-0"]  # the first error stops the rest
    assert len(schedule(instances, 1, 1)) == 2
    mixed = [{"id": f"i-{n}", "outcome": "Success" if n != 1 else "Failed", "seconds": 1} for n in range(4)]
    plan = schedule(mixed, 2, 1)
    assert len(plan) == 4 and plan["i-2"]["start"] == 1.0  # two at a time


def test_kubernetes_and_dnspython_stay_off_every_cold_start():
    """The Kubernetes client (~0.25 s, ~42 MB) and dnspython load only in the worker's ops jobs, never at a cold start
    (nor when the chat registry, which names the ops commands, loads)."""
    code = (
        "import importlib.util, sys\n"
        "for name in ('drone_webhook', 'gitlab_webhook', 'dingtalk_bot', 'feishu_bot', 'slack_bot', 'actions',\n"
        "             'worker'):\n"
        f"    spec = importlib.util.spec_from_file_location('fn_' + name, r'{FUNCTIONS}/' + name + '/app.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "import opsbot.ops.jobs, opsbot.chat.commands, opsbot.chat.jobs\n"
        "opsbot.chat.commands.all_commands()\n"
        "print(sorted(m for m in ('kubernetes', 'dns') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{LAYER_PATH}{os.pathsep}{ROOT}", "POWERTOOLS_SERVICE_NAME": "opsbot"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_retried_restart_or_scale_finds_its_own_change_instead_of_making_a_second(kube, env):
    """An attempt whose answer was lost (or that stopped before its record) already changed the Deployment: the
    retry reads this request's own note on it and reports that change."""
    from opsbot.config.ops import Cluster
    from opsbot.ops import kubernetes as k8s

    cluster = Cluster("shop-eks", "production", api_server=kube.url, token="unit-k8s-token", namespaces=("shop",))
    k8s.forget_clients()
    by = "Alice Wang (ab12cd34)"
    first = k8s.rollout_restart(cluster, "shop", "shop-api", by)
    again = k8s.rollout_restart(cluster, "shop", "shop-api", by)
    assert again["restarted_at"] == first["restarted_at"]
    assert kube.deployments[("shop", "shop-api")]["revision"] == 2  # one restart
    k8s.rollout_restart(cluster, "shop", "shop-api", "Bob Li (cd34ef56)")  # another request restarts again
    assert kube.deployments[("shop", "shop-api")]["revision"] == 3

    assert k8s.scale(cluster, "shop", "shop-api", 5, by)["from"] == 3
    assert k8s.scale(cluster, "shop", "shop-api", 5, by) == {"from": 3, "to": 5, "generation": 4}
    assert kube.deployments[("shop", "shop-api")]["replicas"] == 5


def test_a_cname_cannot_point_at_its_own_name(zone):
    from opsbot.ops import dns

    with pytest.raises(dns.RecordError, match="cannot point at its own name"):
        dns.plan_set(zone, "loop.shop.example", "CNAME", "loop.shop.example.", None)
    assert dns.plan_set(zone, "loop.shop.example", "CNAME", "lb.shop.example", None)["after"]["Type"] == "CNAME"


def test_a_plan_is_checked_again_against_todays_config_before_it_runs(zone):
    """An approval may come a day after the preview: a name protected since, a zone moved to another environment,
    a cluster's limits narrowed or a runbook changed are refused then, not run as previewed."""
    from dataclasses import replace

    from opsbot.authz.actors import Actor
    from opsbot.ops import changes, dns
    from opsbot.ops import requests as ops_requests
    from opsbot.ops.verbs import DNS_SET, K8S_SCALE

    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    alice = Actor("dingtalk", "alice.wang", "Alice Wang")
    plan = {"kind": "dns-change", **dns.plan_set(zone, "api.shop.example", "A", "192.0.2.77", 120)}
    request = ops_requests.new("dn5set01", DNS_SET, alice, "production", "zone shop", "dns set", plan, "en", 10)
    assert changes.no_longer_allowed(config, request) == ""
    protected = replace(zone, protected=(*zone.protected, "api.shop.example"))
    later = replace(config, ops=replace(config.ops, dns_zones={"shop": protected}))
    assert "api.shop.example is protected" in changes.no_longer_allowed(later, request)
    moved = replace(config, ops=replace(config.ops, dns_zones={"shop": replace(zone, environment="staging")}))
    assert "now in staging" in changes.no_longer_allowed(moved, request)
    narrower = replace(zone, ttl_max=100)
    assert "TTL must be from 60 to 100" in changes.no_longer_allowed(
        replace(config, ops=replace(config.ops, dns_zones={"shop": narrower})), request
    )

    scale = {
        "kind": "k8s-scale",
        "cluster": "shop-eks",
        "namespace": "shop",
        "deployment": "shop-api",
        "from": 3,
        "to": 6,
    }
    scaling = ops_requests.new("sc4le001", K8S_SCALE, alice, "production", "cluster", "scale", scale, "en", 10)
    assert changes.no_longer_allowed(config, scaling) == ""
    cluster = replace(config.ops.clusters["shop-eks"], max_replicas=4)
    smaller = replace(config, ops=replace(config.ops, clusters={"shop-eks": cluster}))
    assert "outside shop-eks's limits now (1–4)" in changes.no_longer_allowed(smaller, scaling)
    gone = replace(config, ops=replace(config.ops, clusters={}))
    assert "no longer one opsbot may touch" in changes.no_longer_allowed(gone, scaling)


@pytest.fixture
def act(aws, handlers, lambda_context, monkeypatch):
    """Say an acting command to the bot as a person and run its job: what the bot posted."""
    from chat_support import ask
    from unit_support import sqs_event

    posted: list[str] = []
    monkeypatch.setattr(
        "opsbot.channels.dingtalk.send", lambda robot, message: posted.append(json.dumps(message, ensure_ascii=False))
    )

    def say(text: str, who: str) -> list[str]:
        before = len(posted)
        assert ask(text, who)["markdown"]["title"].startswith(("Got it: ", "收到：")), text  # queued as an act
        handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
        return posted[before:]

    return say


def test_a_dns_undo_is_held_to_the_zones_rules_as_they_are_now(zone, act):
    """`dns undo` used to put the old record back with no check: a name protected since could still be restored."""
    from opsbot.authz.actors import Actor
    from opsbot.config import store
    from opsbot.ops import dns
    from opsbot.ops import requests as ops_requests
    from opsbot.ops.verbs import DNS_SET

    plan = {"kind": "dns-change", **dns.plan_set(zone, "api.shop.example", "A", "192.0.2.77", 120)}
    xiaoming = Actor("dingtalk", "manager4321", "王小明")
    done = ops_requests.new("d0ne0001", DNS_SET, xiaoming, "production", "zone shop", "dns set", plan, "en", 10)
    ops_requests.record_result(done, {"change_id": dns.change(zone, plan, "set"), "plan": plan})
    documents = read_directory(EXAMPLE_CONFIG)[0]
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["ops"]["dns_zones"]["shop"]["protected"].append("api.shop.example")
    store.save(documents, "api-protected")
    [reply] = act("dns undo d0ne0001", "xiaoming")
    assert "api.shop.example is protected in the zone shop" in reply
    assert dns.values_of(dns.current(zone, "api.shop.example", "A")) == ["192.0.2.77"]  # not put back


def test_a_huge_ttl_is_refused_with_the_zones_range_not_as_not_a_number(zone, act):
    from opsbot.config import store

    store.save(read_directory(EXAMPLE_CONFIG)[0], "ttl-test")
    [reply] = act("dns set api.shop.example A 192.0.2.77 1000000000", "xiaoming")
    assert "the TTL must be from 60 to 3600 in the zone shop" in reply and "number" not in reply
    [reply] = act("dns set api.shop.example A 192.0.2.77 1e9", "xiaoming")
    assert "the TTL is a whole number of seconds" in reply


def test_an_approval_that_comes_after_the_config_protected_the_name_runs_nothing(zone, act):
    import re

    from opsbot.config import store
    from opsbot.ops import dns

    store.save(read_directory(EXAMPLE_CONFIG)[0], "before")
    [preview] = act("dns set api.shop.example A 192.0.2.77", "xiaoming")
    request_id = re.search(r"Preview `(\w+)`", preview).group(1)
    [opened] = act(f"confirm {request_id}", "xiaoming")
    assert "Approval request" in opened
    documents = read_directory(EXAMPLE_CONFIG)[0]
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["ops"]["dns_zones"]["shop"]["protected"].append("api.shop.example")
    store.save(documents, "api-protected")
    [refused] = act(f"approve {request_id}", "dave")
    assert "The config changed since" in refused and "api.shop.example is protected" in refused
    assert dns.values_of(dns.current(zone, "api.shop.example", "A")) == ["192.0.2.10"]  # unchanged
