"""Ops from chat through the local stack: Kubernetes (the fake API server behind moto's EKS cluster), VM batches (the
fake SSM Run Command on moto's EC2 instances), DNS (moto's Route 53 and a real DNS server on loopback). Each
command: allowed, denied, needing approval, previewed then confirmed, its peer failing, and its follow-up report."""

from __future__ import annotations

import json
import re

import boto3
import pytest
import requests

WAIT = 30
ANSWERS: dict[str, str] = {}  # a conversation's session URL -> the callback's own answer (a denial at ingress)


def say(stack, text: str, who: str | None) -> str:
    """Send `text` as `who`; the conversation's session URL, whose messages the bot's answers land in."""
    response, body = stack.chat(text, as_person=who)
    assert response.status_code == 200, response.text
    ANSWERS[body["sessionWebhook"]] = (response.json().get("markdown") or {}).get("text", "")
    return body["sessionWebhook"]


def texts(stack, session: str) -> list[str]:
    """What the bot said in the conversation: its answer to the callback, then what it posted."""
    posted = [m["markdown"]["text"] for m in stack.session_messages(session) if m.get("msgtype") == "markdown"]
    return [ANSWERS.get(session, ""), *posted]


def wait_for_text(stack, session: str, pattern: str, timeout: float = WAIT) -> str:
    def found():
        return next((t for t in texts(stack, session) if re.search(pattern, t)), None)

    text = stack.wait_for(found, timeout=timeout, interval=0.3)
    assert text, f"no message matching {pattern!r} in {texts(stack, session)}"
    return text


def preview(stack, text: str, who: str) -> str:
    """The request id of the preview `text` gets."""
    session = say(stack, text, who)
    found = wait_for_text(stack, session, r"confirm ([0-9a-f]{8})")
    return re.search(r"confirm ([0-9a-f]{8})", found).group(1)


def kube_calls(stack, method: str = "") -> list[dict]:
    calls = stack.http.get(stack.kube + "/_control/calls", timeout=5).json()["calls"]
    return [c for c in calls if method in ("", c["method"])]


def route53(stack):
    return boto3.client(
        "route53",
        endpoint_url=stack.moto,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def record_values(stack, name: str, kind: str) -> list[str]:
    found = route53(stack).list_resource_record_sets(HostedZoneId="Z0SHOPEXAMPLE")["ResourceRecordSets"]
    return [v["Value"] for r in found if r["Name"] == name + "." and r["Type"] == kind for v in r["ResourceRecords"]]


# --- Kubernetes --------------------------------------------------------------------------------------------------


def test_pods_and_logs_are_read_in_the_worker_in_both_languages(stack):
    session = say(stack, "k8s pods shop-eks shop", "alice")
    text = wait_for_text(stack, session, r"deployment/shop-api")
    assert "3/3 ready" in text and "restart(s)" in text
    session = say(stack, "集群 日志 shop-eks shop deployment/shop-api 400", "bob")
    text = wait_for_text(stack, session, r"最后 400 行")
    message = next(m for m in stack.session_messages(session) if "最后 400 行" in json.dumps(m, ensure_ascii=False))
    assert len(json.dumps(message, ensure_ascii=False).encode()) < 20_000
    link = re.search(r"\[全部日志\]\((http[^)]+)\)", text).group(1)
    whole = requests.get(link, timeout=5)
    assert whole.status_code == 200 and len(whole.text.splitlines()) == 400  # the rest of the log, behind the link


def test_a_stranger_may_not_read_pods(stack):
    response, _ = stack.chat("k8s pods shop-eks shop", as_person=None)
    assert "needs the role developer" in response.json()["markdown"]["text"]


def test_a_developer_may_not_restart_a_deployment_and_nothing_is_patched(stack):
    before = len(kube_calls(stack, "PATCH"))
    session = say(stack, "k8s restart shop-eks shop shop-api", "bob")
    assert "needs the role ops" in wait_for_text(stack, session, "⛔")
    assert len(kube_calls(stack, "PATCH")) == before
    assert any(r["command"] == "k8s restart" and r["result"] == "denied" for r in stack.audit_records()[:10])


def test_restart_service_previews_needs_the_requester_then_an_approval_and_reports_the_rollout(stack):
    request = preview(stack, "重启 服务 shop-api production", "alice")
    before = len(kube_calls(stack, "PATCH"))
    session = say(stack, f"confirm {request}", "carol")  # only the requester may confirm
    assert "only they may confirm" in wait_for_text(stack, session, "⛔")
    session = say(stack, f"confirm {request}", "alice")
    assert "approve" in wait_for_text(stack, session, "Approval request")
    assert len(kube_calls(stack, "PATCH")) == before  # nothing ran yet
    session = say(stack, f"approve {request}", "alice")
    assert "someone else" in wait_for_text(stack, session, "⛔")
    session = say(stack, f"approve {request}", "dave")
    wait_for_text(stack, session, "已开始滚动重启")
    done = wait_for_text(stack, session, "rollout 完成")
    assert "3/3 updated" in done
    patch = kube_calls(stack, "PATCH")[before]
    assert patch["content_type"] == "application/merge-patch+json"
    annotations = patch["body"]["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", annotations["kubectl.kubernetes.io/restartedAt"])
    assert annotations["opsbot.io/restarted-by"] == f"Alice Wang ({request})"
    assert "annotations" not in patch["body"].get("metadata", {})  # the template's, never the Deployment's own
    # the outcome is audited right after the rollout's end is posted: wait for it
    records = stack.wait_for(
        lambda: (found := [r for r in stack.audit_records()[:30] if request in json.dumps(r)])
        and any(r["id"] == f"{request}-result" for r in found)
        and found
    )
    assert {r["command"] for r in records} >= {"confirm", "approve", "restart service"}
    assert any(r["id"] == f"{request}-result" and r["result"] == "succeeded" for r in records)


def test_a_stuck_and_a_crashing_rollout_are_reported_with_the_reason(stack):
    stuck = preview(stack, "k8s restart shop-eks shop shop-search", "xiaoming")
    say(stack, f"confirm {stuck}", "xiaoming")
    session = say(stack, f"approve {stuck}", "dave")
    assert "timed out progressing" in wait_for_text(stack, session, "rollout is stuck|卡住了")
    crash = preview(stack, "k8s restart shop-eks shop shop-cart", "xiaoming")
    say(stack, f"confirm {crash}", "xiaoming")
    session = say(stack, f"approve {crash}", "dave")
    assert "CrashLoopBackOff" in wait_for_text(stack, session, "rollout failed|rollout 失败")


def test_scale_stays_within_the_clusters_limits(stack):
    session = say(stack, "k8s scale shop-eks shop shop-api 50", "xiaoming")
    assert "from 1 to 6" in wait_for_text(stack, session, "replicas on shop-eks")
    request = preview(stack, "k8s scale shop-eks shop shop-api 4", "xiaoming")
    assert request


def test_the_api_server_down_is_retried_then_reported(stack):
    stack.http.post(stack.kube + "/_control/faults", json={"down": True}, timeout=5)
    try:
        session = say(stack, "k8s pods shop-eks shop", "alice")
        text = wait_for_text(stack, session, "did not complete", timeout=45)
        assert "API server answered 503" in text
    finally:
        stack.http.post(stack.kube + "/_control/faults", json={}, timeout=5)
    # the worker tells the group before it parks the job, so the dead letter may land a moment after the message
    assert stack.wait_for(
        lambda: stack.take_dead_letters(lambda job: job.get("payload", {}).get("command") == "k8s pods"), timeout=10
    )


# --- VM batches ---------------------------------------------------------------------------------------------------


def ssm_commands(stack) -> list[dict]:
    return stack.http.get(stack.ssm + "/_control/commands", timeout=5).json()["commands"]


def test_a_vm_batch_previews_runs_with_progress_and_sums_up_with_the_whole_output(stack):
    session = say(stack, "vm run restart-nginx shop-web-vms", "xiaoming")
    text = wait_for_text(stack, session, "confirm [0-9a-f]{8}")
    assert "on 4 instance(s) of group **shop-web-vms**, 2 at a time, stop after more than 1 error(s)" in text
    request = re.search(r"confirm ([0-9a-f]{8})", text).group(1)
    say(stack, f"confirm {request}", "xiaoming")
    session = say(stack, f"approve {request}", "dave")
    wait_for_text(stack, session, "Sent runbook|已发送 runbook")
    command = next(c for c in ssm_commands(stack) if request in c["Comment"])
    assert command["Comment"].startswith(f"opsbot {request} by 王小明") and len(command["Comment"]) <= 100
    assert {"Key": "tag:opsbot-ops", "Values": ["enabled"]} in command["Targets"]
    assert command["MaxConcurrency"] == "2" and command["MaxErrors"] == "1"
    assert command["TargetCount"] == 4  # the legacy instance without the opt-in tag is never targeted
    assert wait_for_text(stack, session, r"⏳")  # progress while instances finish
    summary = wait_for_text(stack, session, r"finished: Failed|结束：Failed", timeout=45)
    assert "Success 3" in summary and "Failed 1" in summary and "Address already in use" in summary
    link = re.search(r"\((http[^)]+output\.txt[^)]*)\)", summary).group(1)
    whole = requests.get(link, timeout=5).text
    assert whole.count("=== i-") == 4 and "systemctl is-active nginx" in whole


def test_a_batch_stops_after_max_errors_and_says_what_did_not_run(stack):
    # shop-batch-vms is staging: no approval, the requester's confirm runs it; max_errors 0, one at a time
    request = preview(stack, "主机 执行 restart-nginx shop-batch-vms", "xiaoming")
    session = say(stack, f"confirm {request}", "xiaoming")
    summary = wait_for_text(stack, session, r"结束：Failed|finished: Failed", timeout=45)
    assert "Failed 1" in summary and ("not run: 2" in summary or "未执行：2" in summary)


def test_a_vm_run_is_refused_for_a_developer_and_for_bad_parameters(stack):
    session = say(stack, "vm run tail-log shop-web-vms lines=100", "bob")
    assert "needs the role ops" in wait_for_text(stack, session, "⛔")
    session = say(stack, "vm run tail-log shop-web-vms file=/etc/passwd", "xiaoming")
    assert "file must be one of access.log, error.log" in wait_for_text(stack, session, "must be one of")
    session = say(stack, "vm run tail-log shop-web-vms lines=ten", "xiaoming")
    assert "whole number" in wait_for_text(stack, session, "whole number")


def test_ssm_refusing_the_command_is_reported(stack):
    request = preview(stack, "vm run restart-nginx shop-batch-vms", "xiaoming")
    stack.http.post(stack.ssm + "/_control/faults", json={"send": ["AccessDeniedException"]}, timeout=5)
    session = say(stack, f"confirm {request}", "xiaoming")
    assert "AccessDeniedException" in wait_for_text(stack, session, "SSM Run Command refused")


# --- DNS ----------------------------------------------------------------------------------------------------------


def test_dns_set_previews_old_to_new_waits_for_insync_checks_by_real_dns_and_undoes(stack):
    session = say(stack, "dns show api.shop.example", "alice")
    assert "A 192.0.2.10 (TTL 300)" in wait_for_text(stack, session, "api.shop.example")
    session = say(stack, "dns set api.shop.example A 192.0.2.77 120", "xiaoming")
    text = wait_for_text(stack, session, "confirm [0-9a-f]{8}")
    assert "192.0.2.10 (TTL 300) → **192.0.2.77 (TTL 120)**" in text
    request = re.search(r"confirm ([0-9a-f]{8})", text).group(1)
    say(stack, f"confirm {request}", "xiaoming")
    assert record_values(stack, "api.shop.example", "A") == ["192.0.2.10"]  # not before the approval
    session = say(stack, f"approve {request}", "dave")
    live = wait_for_text(stack, session, "is live|已生效")
    assert "192.0.2.77" in live and "127.0.0.1:" in live
    assert record_values(stack, "api.shop.example", "A") == ["192.0.2.77"]

    undo = preview(stack, f"dns undo {request}", "xiaoming")
    say(stack, f"confirm {undo}", "xiaoming")
    session = say(stack, f"approve {undo}", "dave")
    assert "192.0.2.10" in wait_for_text(stack, session, "is live|已生效")
    assert record_values(stack, "api.shop.example", "A") == ["192.0.2.10"]


def test_dns_refuses_protected_names_other_types_and_ttls_out_of_range(stack):
    session = say(stack, "dns set mail.shop.example A 192.0.2.1", "xiaoming")
    assert "protected" in wait_for_text(stack, session, "protected")
    session = say(stack, "dns set shop.example MX 10.mail.example", "xiaoming")
    assert "protected" in wait_for_text(stack, session, "protected")
    session = say(stack, "dns set x.shop.example A 192.0.2.1 5", "xiaoming")
    assert "from 60 to 3600" in wait_for_text(stack, session, "TTL")
    session = say(stack, "dns set api.shop.example A 192.0.2.1", "bob")
    assert "needs the role ops" in wait_for_text(stack, session, "⛔")


def test_route53_refusing_is_reported(stack):
    session = say(stack, "dns set www.gone.example A 192.0.2.1", "xiaoming")
    assert "NoSuchHostedZone" in wait_for_text(stack, session, "Route 53 refused")


def test_an_undo_after_someone_else_changed_the_record_changes_nothing(stack):
    request = preview(stack, "dns set new.shop.example A 192.0.2.5", "xiaoming")
    say(stack, f"confirm {request}", "xiaoming")
    session = say(stack, f"approve {request}", "dave")
    wait_for_text(stack, session, "is live|已生效")
    route53(stack).change_resource_record_sets(
        HostedZoneId="Z0SHOPEXAMPLE",
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "new.shop.example.",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.6"}],
                    },
                }
            ]
        },
    )
    undo = preview(stack, f"dns undo {request}", "xiaoming")
    say(stack, f"confirm {undo}", "xiaoming")
    session = say(stack, f"approve {undo}", "dave")
    assert "changed since the preview" in wait_for_text(stack, session, "Route 53 refused")
    assert record_values(stack, "new.shop.example", "A") == ["192.0.2.6"]


@pytest.mark.parametrize("text", ["k8s", "vm", "dns", "help k8s restart"])
def test_the_ops_help_lists_what_there_is(stack, text):
    response, _ = stack.chat(text, as_person="alice")
    assert response.status_code == 200 and response.json()["msgtype"] == "markdown"
