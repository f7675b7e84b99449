"""verify-http: after the rollout, an HTTPS health URL (from the config, never chat) must answer 2xx at every look
for `minutes`; the first answer that is not (or no answer) fails the release."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.settings import settings


@dataclass(frozen=True)
class HealthUrl:
    url: str
    minutes: float = 2.0
    interval_seconds: int = 15


@step("verify-http", HealthUrl, "a health URL must answer 2xx at every look for N minutes")
def verify_http(run: StepRun, check: HealthUrl) -> StepResult:
    import requests  # only the release jobs that verify pay for it

    state = dict(run.state) if run.poll else {"since": time.time(), "looks": 0}
    try:
        response = requests.get(check.url, timeout=settings().http_timeout_seconds, allow_redirects=False)
        status, said = response.status_code, f"HTTP {response.status_code}"
    except requests.RequestException as exc:
        status, said = 0, type(exc).__name__
    state.update(looks=state["looks"] + 1, last=said, delay_seconds=check.interval_seconds)
    if not 200 <= status < 300:
        return StepResult(
            FAILED,
            {**state, "verification": "failed"},
            run.t(
                f"健康检查 {md(check.url, 200)} 回答 {said}", f"the health check {md(check.url, 200)} answered {said}"
            ),
        )
    if time.time() - state["since"] >= check.minutes * 60:
        return StepResult(
            SUCCEEDED,
            {**state, "verification": "passed"},
            run.t(
                f"健康检查 {md(check.url, 200)} 在 {check.minutes:g} 分钟内 {state['looks']} 次都是 2xx",
                f"the health check {md(check.url, 200)} answered 2xx {state['looks']} time(s) "
                f"over {check.minutes:g} min",
            ),
        )
    return StepResult(RUNNING, {**state, "verification": "running"})
