"""Image scan results in build notifications: the scan step found and named, Trivy's summary read from the step's
log through the (fake) Drone logs API, and both shown in the card and the digest line."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace

import pytest
from unit_support import EXAMPLE_CONFIG, DingTalkCard, closed_peers, fixture_json

from local.fake_drone import FakeDrone, make_server
from opsbot.config.model import Drone, validate
from opsbot.config.yaml_source import read_directory
from opsbot.notify import render, scan

EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True, local_peers=closed_peers())
SLUG = "shop/shop-api"
TRIVY_LOG = [
    "2024-11-25T08:07:12Z\tINFO\t[vuln] Vulnerability scanning is enabled\n",
    '2024-11-25T08:07:15Z\tINFO\tDetected OS\tfamily="debian" version="12.7"\n',
    "\n",
    "registry.example.com/shop/shop-api:9c8d7e6f (debian 12.7)\n",
    "==========================================================\n",
    "Total: 12 (UNKNOWN: 0, LOW: 5, MEDIUM: 4, HIGH: 2, CRITICAL: 1)\n",
    "\n",
    "┌──────────┬────────────────┬──────────┬────────┬───────────────────┐\n",
    "│ Library  │ Vulnerability  │ Severity │ Status │ Installed Version │\n",
    "├──────────┼────────────────┼──────────┼────────┼───────────────────┤\n",
    "│ libssl3  │ CVE-2024-5535  │ CRITICAL │ fixed  │ 3.0.13-1~deb12u1  │\n",
    "\n",
    "Java (jar)\n",
    "==========\n",
    "\x1b[1mTotal: 3 (UNKNOWN: 0, LOW: 0, MEDIUM: 1, HIGH: 1, CRITICAL: 1)\x1b[0m\n",
]


def build_with_scan(status: str = "failure") -> dict:
    """The fixture's failed build, failing at its scan step (step 4) instead of its tests."""
    build = copy.deepcopy(fixture_json("drone/build_failure.json")["build"])
    steps = build["stages"][0]["steps"]
    steps[1].update(status="success", exit_code=0)
    steps[2].update(status="success", started=1732521700, stopped=1732521720)
    steps[3].update(status=status, exit_code=1 if status == "failure" else 0, started=1732521720, stopped=1732521750)
    build["status"] = status
    return build


@pytest.fixture(scope="module")
def drone_api():
    fake = FakeDrone("scan-token", echo=False)
    fake.seed(SLUG, [{"number": 128, "status": "failure"}])
    server = make_server(fake, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake, replace(EXAMPLE, drone=Drone(server=f"http://127.0.0.1:{server.server_address[1]}", token="scan-token"))
    server.shutdown()
    server.server_close()


def test_trivy_summaries_are_summed_over_targets():
    assert scan.parse_summary(TRIVY_LOG) == {"UNKNOWN": 0, "LOW": 5, "MEDIUM": 5, "HIGH": 3, "CRITICAL": 2}


def test_a_summary_of_the_severities_asked_for():
    assert scan.parse_summary(["Total: 3 (HIGH: 2, CRITICAL: 1)\n"]) == {"HIGH": 2, "CRITICAL": 1}


def test_a_log_without_a_summary_has_no_counts():
    assert scan.parse_summary(["2024-11-25T08:07:12Z\tFATAL\timage not found\n", "Total time: 3s\n"]) == {}


def test_the_scan_step_is_found_by_name_or_image_once_it_ran():
    assert scan.scan_step(fixture_json("drone/build_failure.json")["build"]) is None  # skipped after the tests
    stage, step = scan.scan_step(build_with_scan())
    assert (stage["name"], step["name"], step["number"]) == ("default", "scan", 4)
    renamed = build_with_scan()
    renamed["stages"][0]["steps"][3]["name"] = "security"
    assert scan.scan_step(renamed)[1]["image"] == "aquasec/trivy"


def test_the_result_reads_the_steps_log_through_drone(drone_api):
    fake, config = drone_api
    fake.set_log(SLUG, 128, 1, 4, TRIVY_LOG)
    result = scan.scan_result(config, SLUG, build_with_scan())
    assert (result.where, result.failed) == ("default › scan", True)
    assert result.counts_text() == "CRITICAL 2 · HIGH 3 · MEDIUM 5 · LOW 5 · UNKNOWN 0"
    assert fake.calls[-1]["path"] == f"/api/repos/{SLUG}/builds/128/logs/1/4"


def test_drone_down_gives_the_verdict_without_counts(drone_api):
    fake, config = drone_api
    fake.down = True
    try:
        result = scan.scan_result(config, SLUG, build_with_scan())
    finally:
        fake.down = False
    assert result.failed and result.counts == {}


def test_no_drone_section_gives_the_verdict_without_counts():
    result = scan.scan_result(replace(EXAMPLE, drone=None), SLUG, build_with_scan("success"))
    assert result.failed is False and result.counts == {}


def test_the_card_says_the_scan_failed_names_the_step_and_counts():
    delivery = fixture_json("drone/build_failure.json")
    result = scan.ScanResult("default", "scan", True, {"UNKNOWN": 0, "LOW": 5, "MEDIUM": 4, "HIGH": 2, "CRITICAL": 1})
    rendered = DingTalkCard(
        render.build_message(
            EXAMPLE.projects["shop-api"],
            delivery["repo"],
            build_with_scan(),
            delivery["system"],
            "failure",
            None,
            scan=result,
        ),
        EXAMPLE,
    )
    text = rendered.message["markdown"]["text"]
    assert "**失败步骤**: default › scan" in text
    assert "**镜像扫描**: ❌ 未通过（default › scan） · CRITICAL 1 · HIGH 2 · MEDIUM 4 · LOW 5 · UNKNOWN 0" in text
    assert "镜像扫描: ❌ 未通过（default › scan） · CRITICAL 1" in rendered.digest_line


def test_a_passed_scan_in_english():
    delivery = fixture_json("drone/build_success.json")
    result = scan.ScanResult("default", "scan", False, {"HIGH": 0, "CRITICAL": 0})
    rendered = DingTalkCard(
        render.build_message(
            EXAMPLE.projects["shop-web"],
            delivery["repo"],
            delivery["build"],
            delivery["system"],
            "success",
            None,
            scan=result,
        ),
        EXAMPLE,
    )
    assert "**Image scan**: ✅ passed · CRITICAL 0 · HIGH 0" in rendered.message["markdown"]["text"]


def test_the_notification_job_carries_the_scan(drone_api, aws, monkeypatch):
    from opsbot.config import store
    from opsbot.jobs.model import Job
    from opsbot.notify import jobs

    fake, config = drone_api
    fake.set_log(SLUG, 128, 1, 4, TRIVY_LOG)
    sent = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: sent.append(message))
    monkeypatch.setattr(store, "load", lambda: config)
    delivery = fixture_json("drone/build_failure.json")
    jobs.notify_build_finished(
        Job(
            kind="drone.build_finished",
            payload={"repo": delivery["repo"], "build": build_with_scan(), "system": delivery["system"]},
        )
    )
    [message] = sent
    assert "**镜像扫描**: ❌ 未通过（default › scan） · CRITICAL 2 · HIGH 3" in message["markdown"]["text"]
