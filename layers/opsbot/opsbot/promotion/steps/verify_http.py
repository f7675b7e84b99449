"""verify-http: after the rollout, an HTTPS health URL (from the config, never chat) must answer 2xx for `minutes`:
FAILURES_IN_A_ROW looks that are not 2xx (or get no answer) fail the release, as a Kubernetes probe's
failureThreshold does; a single lost look (a connection cut on opsbot's side) is looked at again, not taken for
the service being down."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.settings import settings

FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class HealthUrl:
    url: str
    minutes: float = 2.0
    interval_seconds: int = 15


@step("verify-http", HealthUrl, "a health URL must answer 2xx at every look for N minutes")
def verify_http(run: StepRun, check: HealthUrl) -> StepResult:
    import requests  # only the release jobs that verify pay for it

    state = dict(run.state) if run.poll else {"since": time.time(), "looks": 0, "failing": 0}
    try:
        response = requests.get(check.url, timeout=settings().http_timeout_seconds, allow_redirects=False)
        status, said = response.status_code, f"HTTP {response.status_code}"
    except requests.RequestException as exc:
        status, said = 0, type(exc).__name__
    healthy = 200 <= status < 300
    failing = 0 if healthy else state.get("failing", 0) + 1
    state.update(looks=state["looks"] + 1, last=said, failing=failing, delay_seconds=check.interval_seconds)
    if failing >= FAILURES_IN_A_ROW:
        return StepResult(
            FAILED,
            {**state, "verification": "failed"},
            run.t(
                f"健康检查 {md(check.url, 200)} 连续 {failing} 次回答 {said}",
                f"the health check {md(check.url, 200)} answered {said} ({failing} looks in a row)",
            ),
        )
    if healthy and time.time() - state["since"] >= check.minutes * 60:
        return StepResult(
            SUCCEEDED,
            {**state, "verification": "passed"},
            run.t(
                f"健康检查 {md(check.url, 200)} 在 {check.minutes:g} 分钟内保持 2xx（看了 {state['looks']} 次）",
                f"the health check {md(check.url, 200)} answered 2xx over {check.minutes:g} min "
                f"({state['looks']} looks)",
            ),
        )
    return StepResult(RUNNING, {**state, "verification": "running"})
