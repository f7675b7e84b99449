"""Image scan results for build notifications: whether the build's scan step passed, which step it is, and the
counts by severity from the summary Trivy writes to the step's log (Drone's logs API).

The counts are a bonus: when Drone cannot give the log, the notification goes out without them rather than
waiting. Trivy writes one `Total: N (SEVERITY: n, …)` line per scanned target (the OS packages, each
language's packages); the counts are their sum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opsbot.config.model import Config
from opsbot.drone.api import DroneNotConfigured, DroneRefused, DroneUnavailable, client_for
from opsbot.log import logger
from opsbot.secrets import SecretError

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
LOG_TIMEOUT_SECONDS = 3.0  # a notification does not wait long for a bonus
_TOTAL = re.compile(r"\bTotal:\s*\d+\s*\(([^)]*)\)")
_COUNT = re.compile(r"\b([A-Z]+):\s*(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RAN = ("success", "failure", "error", "killed")


@dataclass(frozen=True)
class ScanResult:
    stage: str
    step: str
    failed: bool
    counts: dict[str, int] = field(default_factory=dict)  # severity -> findings; {} when the log had no summary

    @property
    def where(self) -> str:
        return f"{self.stage} › {self.step}"

    def counts_text(self) -> str:
        return " · ".join(f"{s} {self.counts[s]}" for s in SEVERITIES if s in self.counts)


def scan_step(build: dict) -> tuple[dict, dict] | None:
    """(stage, step) of the first scan step that ran: named or made of "scan" or "trivy"."""
    for stage in build.get("stages") or []:
        for step in stage.get("steps") or []:
            words = f"{step.get('name', '')} {step.get('image', '')}".lower()
            if ("scan" in words or "trivy" in words) and step.get("status") in _RAN:
                return stage, step
    return None


def parse_summary(lines: list[str]) -> dict[str, int]:
    """Findings by severity, summed over every `Total:` line of a Trivy log."""
    counts: dict[str, int] = {}
    for line in lines:
        for total in _TOTAL.finditer(_ANSI.sub("", line)):
            for severity, number in _COUNT.findall(total.group(1)):
                counts[severity] = counts.get(severity, 0) + int(number)
    return counts


def scan_result(config: Config, slug: str, build: dict) -> ScanResult | None:
    """The build's scan, or None when it has no scan step that ran."""
    found = scan_step(build)
    if found is None:
        return None
    stage, step = found
    counts: dict[str, int] = {}
    try:
        log = client_for(config, LOG_TIMEOUT_SECONDS).logs(slug, build["number"], stage["number"], step["number"])
        counts = parse_summary([str(line.get("out", "")) for line in log if isinstance(line, dict)])
    except (DroneNotConfigured, DroneRefused, DroneUnavailable, SecretError, KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "scan log not read; the notification goes without counts",
            extra={"repo": slug, "build": build.get("number"), "reason": type(exc).__name__},
        )
    return ScanResult(str(stage.get("name")), str(step.get("name")), step.get("status") != "success", counts)
