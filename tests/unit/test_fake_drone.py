"""The fake Drone API (local/fake_drone.py) over real HTTP on loopback: auth, listing, promote and friends, faults."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.fake_drone import FakeDrone, default_seed, make_server  # noqa: E402

TOKEN = "drone-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server():
    fake = FakeDrone(TOKEN, echo=False, login="opsbot")
    for slug, builds in default_seed().items():
        fake.seed(slug, builds)
    httpd = make_server(fake, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def drone(server):
    fake, base = server
    requests.post(f"{base}/_control/reset", timeout=5).raise_for_status()

    def call(method: str, path: str, auth: bool = True, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", AUTH if auth else {})
        return requests.request(method, f"{base}/api/repos/{path}", headers=headers, timeout=5, **kwargs)

    call.base, call.fake = base, fake
    return call


def test_refuses_a_missing_or_wrong_token(drone):
    assert drone("GET", "shop/shop-api/builds", auth=False).status_code == 401
    wrong = drone("GET", "shop/shop-api/builds", auth=False, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Unauthorized"})
    calls = requests.get(f"{drone.base}/_control/calls", timeout=5).json()["calls"]
    assert [c["authorized"] for c in calls] == [False, False]


def test_lists_newest_first_without_stages_and_filters_by_branch(drone):
    listed = drone("GET", "shop/shop-api/builds").json()
    assert [b["number"] for b in listed] == list(range(129, 119, -1))
    assert all("stages" not in b for b in listed)
    main = drone("GET", "shop/shop-api/builds", params={"branch": "main"}).json()
    assert [b["number"] for b in main] == [128, 127, 126, 123, 120]  # 126: a promote of main's #123
    page2 = drone("GET", "shop/shop-api/builds", params={"page": 2, "per_page": 3}).json()
    assert [b["number"] for b in page2] == [126, 125, 124]
    assert drone("GET", "shop/nope/builds").json() == {"message": "Not Found"}


def test_latest_and_one_build_with_stages(drone):
    latest = drone("GET", "shop/shop-api/builds/latest", params={"branch": "main"}).json()
    assert (latest["number"], latest["after"]) == (128, "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d")
    # As in Drone, latest is by ref: #125 (promote of #124 to staging) shares feature/refund's ref.
    refund = drone("GET", "shop/shop-api/builds/latest", params={"branch": "feature/refund"}).json()
    assert (refund["number"], refund["event"], refund["parent"]) == (125, "promote", 124)
    assert drone("GET", "shop/shop-api/builds/latest", params={"ref": "refs/heads/develop"}).json()["number"] == 129
    assert drone("GET", "shop/shop-api/builds/latest", params={"branch": "gone"}).status_code == 404
    failed = drone("GET", "shop/shop-api/builds/127").json()
    steps = {s["name"]: s["status"] for s in failed["stages"][0]["steps"]}
    assert steps == {"clone": "success", "test": "failure", "publish": "skipped", "scan": "skipped"}
    missing = drone("GET", "shop/shop-api/builds/999")
    assert (missing.status_code, missing.json()) == (404, {"message": "sql: no rows in result set"})


def test_promote_creates_a_pending_promote_build(drone):
    answer = drone("POST", "shop/shop-api/builds/128/promote", params={"target": "staging", "VERSION": "1.4"})
    assert answer.status_code == 200
    new = answer.json()
    assert {k: new[k] for k in ("number", "event", "deploy_to", "parent", "status", "trigger", "params", "after",
                                "target", "started", "finished")} == {
        "number": 130, "event": "promote", "deploy_to": "staging", "parent": 128, "status": "pending",
        "trigger": "opsbot", "params": {"VERSION": "1.4"}, "after": "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        "target": "main", "started": 0, "finished": 0}
    assert new["id"] == 1044
    assert drone("GET", "shop/shop-api/builds/130").json()["event"] == "promote"
    calls = requests.get(f"{drone.base}/_control/calls", timeout=5).json()["calls"]
    assert calls[0]["method"] == "POST" and calls[0]["path"] == "/api/repos/shop/shop-api/builds/128/promote"
    assert calls[0]["query"] == {"target": ["staging"], "VERSION": ["1.4"]} and calls[0]["authorized"]


def test_promote_without_target_or_build(drone):
    no_target = drone("POST", "shop/shop-api/builds/128/promote")
    assert (no_target.status_code, no_target.json()) == (400, {"message": "Missing target environment"})
    assert drone("POST", "shop/shop-api/builds/999/promote", params={"target": "staging"}).status_code == 404
    assert drone("GET", "shop/shop-api/builds").json()[0]["number"] == 129  # nothing was created


def test_rollback_restart_and_cancel(drone):
    rollback = drone("POST", "shop/shop-api/builds/123/rollback", params={"target": "staging"}).json()
    assert (rollback["number"], rollback["event"], rollback["deploy_to"], rollback["parent"]) == (
        130, "rollback", "staging", 123)
    restart = drone("POST", "shop/shop-api/builds/127").json()
    assert (restart["number"], restart["event"], restart["parent"], restart["status"], restart["trigger"]) == (
        131, "push", 127, "pending", "opsbot")
    killed = drone("DELETE", "shop/shop-api/builds/129").json()
    assert killed["status"] == "killed" and killed["finished"] > 0
    assert [s["status"] for s in killed["stages"][0]["steps"]] == ["success", "killed", "skipped", "skipped"]
    assert drone("DELETE", "shop/shop-api/builds/128").json()["status"] == "success"  # done builds stay as they are


def test_logs(drone):
    assert drone("GET", "shop/shop-api/builds/127/logs/1/2").json() == []
    requests.post(f"{drone.base}/_control/logs", timeout=5, json={
        "slug": "shop/shop-api", "number": 127, "stage": 1, "step": 2, "lines": ["mvn test\n", "BUILD FAILURE\n"]})
    assert drone("GET", "shop/shop-api/builds/127/logs/1/2").json() == [
        {"pos": 0, "out": "mvn test\n", "time": 0}, {"pos": 1, "out": "BUILD FAILURE\n", "time": 1}]
    assert drone("GET", "shop/shop-api/builds/999/logs/1/2").status_code == 404


def test_faults_then_recovery(drone):
    requests.post(f"{drone.base}/_control/faults", json={"statuses": [503, 500]}, timeout=5)
    assert [drone("GET", "shop/shop-api/builds/128").status_code for _ in range(3)] == [503, 500, 200]
    requests.post(f"{drone.base}/_control/faults", json={"down": True}, timeout=5)
    down = drone("GET", "shop/shop-api/builds/128")
    assert (down.status_code, down.json()) == (503, {"message": "Service Unavailable"})
    requests.post(f"{drone.base}/_control/faults", json={"down": False}, timeout=5)
    assert drone("GET", "shop/shop-api/builds/128").status_code == 200


def test_reset_drops_calls_faults_and_new_builds_but_keeps_the_seed(drone):
    requests.post(f"{drone.base}/_control/builds", timeout=5, json={
        "slug": "shop/flaky-api", "builds": [{"number": 7, "status": "failure", "target": "main"}]})
    assert drone("GET", "shop/flaky-api/builds/7").json()["stages"][0]["status"] == "failure"
    drone("POST", "shop/shop-api/builds/128/promote", params={"target": "staging"})
    requests.post(f"{drone.base}/_control/faults", json={"statuses": [500]}, timeout=5)
    requests.post(f"{drone.base}/_control/reset", timeout=5)
    assert requests.get(f"{drone.base}/_control/calls", timeout=5).json() == {"calls": []}
    assert [b["number"] for b in drone("GET", "shop/shop-api/builds").json()][:1] == [129]
    assert drone("GET", "shop/flaky-api/builds").status_code == 404


def test_default_seed_has_two_staging_deploys_and_matches_the_fixture_build():
    api = {b["number"]: b for b in default_seed()["shop/shop-api"]}
    staging = [n for n, b in api.items() if b["deploy_to"] == "staging" and b["status"] == "success"]
    assert staging == [125, 126] and (api[125]["parent"], api[126]["parent"]) == (124, 123)
    assert api[125]["after"] == api[124]["after"] and api[126]["after"] == api[123]["after"]
    assert (api[128]["id"], api[128]["author_login"], api[128]["started"], api[128]["finished"]) == (
        1042, "alice", 1732521600, 1732521901)
    assert {b["author_login"] for b in api.values()} == {"alice", "bob", "xiaoming"}
    assert any(b["status"] == "running" for b in api.values())
