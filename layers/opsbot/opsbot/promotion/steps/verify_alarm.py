"""verify-alarm: after the rollout, a CloudWatch alarm must stay OK for `minutes` (cloudwatch:DescribeAlarms, only on
the alarms the stack names: template.yaml's ReleaseAlarms); ALARM at any look fails the release, and it must be OK at
the end."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.aws import client
from opsbot.markup import dingtalk as md
from opsbot.ops.peers import aws_call
from opsbot.peers import errors
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun

CLOUDWATCH = errors("CloudWatch", "verify.alarm", __name__)


@dataclass(frozen=True)
class Alarm:
    alarm: str
    region: str = ""
    minutes: float = 2.0
    interval_seconds: int = 15


@step("verify-alarm", Alarm, "a CloudWatch alarm must stay OK for N minutes")
def verify_alarm(run: StepRun, check: Alarm) -> StepResult:
    state = dict(run.state) if run.poll else {"since": time.time(), "looks": 0}
    cloudwatch = client("cloudwatch", check.region or None)
    found = aws_call(CLOUDWATCH, cloudwatch.describe_alarms, AlarmNames=[check.alarm]).get("MetricAlarms") or []
    if not found:
        raise StepFailed(
            run.t(
                f"没有 CloudWatch 告警 {md(check.alarm, 100)}", f"there is no CloudWatch alarm {md(check.alarm, 100)}"
            )
        )
    alarm_state = found[0].get("StateValue", "")
    state.update(looks=state["looks"] + 1, last=alarm_state, delay_seconds=check.interval_seconds)
    name = md(check.alarm, 100)
    if alarm_state == "ALARM":
        reason = md(found[0].get("StateReason", ""), 200)
        return StepResult(
            FAILED,
            {**state, "verification": "failed"},
            run.t(f"告警 {name} 触发：{reason}", f"alarm {name} fired: {reason}"),
        )
    if time.time() - state["since"] >= check.minutes * 60:
        if alarm_state != "OK":
            return StepResult(
                FAILED,
                {**state, "verification": "failed"},
                run.t(f"告警 {name} 最后是 {alarm_state}", f"alarm {name} ended {alarm_state}, not OK"),
            )
        return StepResult(
            SUCCEEDED,
            {**state, "verification": "passed"},
            run.t(
                f"告警 {name} 在 {check.minutes:g} 分钟内保持 OK", f"alarm {name} stayed OK for {check.minutes:g} min"
            ),
        )
    return StepResult(RUNNING, {**state, "verification": "running"})
