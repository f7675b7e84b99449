"""The fake Drone API (local/fake_drone.py) over real HTTP on loopback: auth, listing, promote and friends, faults."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

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
    assert [b["number"] for b in main] == [128, 127, 126, 125, 123, 120]  # 125, 126: promotes of #120, #123
    page2 = drone("GET", "shop/shop-api/builds", params={"page": 2, "per_page": 3}).json()
    assert [b["number"] for b in page2] == [126, 125, 124]
    assert drone("GET", "shop/nope/builds").json() == {"message": "Not Found"}


def test_latest_and_one_build_with_stages(drone):
    latest = drone("GET", "shop/shop-api/builds/latest", params={"branch": "main"}).json()
    assert (latest["number"], latest["after"]) == (128, "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d")
    # As in Drone, latest is by ref: #126 (promote of #123 to staging) shares main's ref, but main's newest is #128.
    refund = drone("GET", "shop/shop-api/builds/latest", params={"branch": "feature/refund"}).json()
    assert (refund["number"], refund["event"]) == (124, "push")
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
    assert {
        k: new[k]
        for k in (
            "number",
            "event",
            "deploy_to",
            "parent",
            "status",
            "trigger",
            "params",
            "after",
            "target",
            "started",
            "finished",
        )
    } == {
        "number": 130,
        "event": "promote",
        "deploy_to": "staging",
        "parent": 128,
        "status": "pending",
        "trigger": "opsbot",
        "params": {"VERSION": "1.4"},
        "after": "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        "target": "main",
        "started": 0,
        "finished": 0,
    }
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
        130,
        "rollback",
        "staging",
        123,
    )
    restart = drone("POST", "shop/shop-api/builds/127").json()
    assert (restart["number"], restart["event"], restart["parent"], restart["status"], restart["trigger"]) == (
        131,
        "push",
        127,
        "pending",
        "opsbot",
    )
    killed = drone("DELETE", "shop/shop-api/builds/129").json()
    assert killed["status"] == "killed" and killed["finished"] > 0
    assert [s["status"] for s in killed["stages"][0]["steps"]] == ["success", "killed", "skipped", "skipped"]
    assert drone("DELETE", "shop/shop-api/builds/128").json()["status"] == "success"  # done builds stay as they are


def test_logs(drone):
    assert drone("GET", "shop/shop-api/builds/127/logs/1/2").json() == []
    requests.post(
        f"{drone.base}/_control/logs",
        timeout=5,
        json={
            "slug": "shop/shop-api",
            "number": 127,
            "stage": 1,
            "step": 2,
            "lines": ["mvn test\n", "BUILD FAILURE\n"],
        },
    )
    assert drone("GET", "shop/shop-api/builds/127/logs/1/2").json() == [
        {"pos": 0, "out": "mvn test\n", "time": 0},
        {"pos": 1, "out": "BUILD FAILURE\n", "time": 1},
    ]
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
    requests.post(
        f"{drone.base}/_control/builds",
        timeout=5,
        json={"slug": "shop/flaky-api", "builds": [{"number": 7, "status": "failure", "target": "main"}]},
    )
    assert drone("GET", "shop/flaky-api/builds/7").json()["stages"][0]["status"] == "failure"
    drone("POST", "shop/shop-api/builds/128/promote", params={"target": "staging"})
    requests.post(f"{drone.base}/_control/faults", json={"statuses": [500]}, timeout=5)
    requests.post(f"{drone.base}/_control/reset", timeout=5)
    assert requests.get(f"{drone.base}/_control/calls", timeout=5).json() == {"calls": []}
    assert [b["number"] for b in drone("GET", "shop/shop-api/builds").json()][:1] == [129]
    assert drone("GET", "shop/flaky-api/builds").status_code == 404


def test_default_seed_has_two_staging_deploys_of_main_and_matches_the_fixture_build():
    api = {b["number"]: b for b in default_seed()["shop/shop-api"]}
    staging = [n for n, b in api.items() if b["deploy_to"] == "staging" and b["status"] == "success"]
    # so `rollback shop-api staging`, help's own example, has a build of main to go back to
    assert staging == [125, 126] and (api[125]["parent"], api[126]["parent"]) == (120, 123)
    assert api[125]["after"] == api[120]["after"] and api[126]["after"] == api[123]["after"]
    fixture = json.loads((ROOT / "tests" / "fixtures" / "drone" / "build_success.json").read_text())["build"]
    assert (api[128]["id"], api[128]["author_login"], api[128]["after"]) == (1042, "alice", fixture["after"])
    times = ("timestamp", "created", "started", "finished", "updated")
    assert [api[128][k] - api[128]["created"] for k in times] == [fixture[k] - fixture["created"] for k in times]
    assert {b["author_login"] for b in api.values()} == {"alice", "bob", "xiaoming"}
    assert any(b["status"] == "running" for b in api.values())


# What each seeded build is: tests across the suite rely on these exactly.
SEEDED = {
    "shop/shop-api": [
        (120, "main", "push", "bob", "success"),
        (121, "develop", "push", "xiaoming", "success"),
        (122, "feature/refund", "push", "alice", "failure"),
        (123, "main", "push", "bob", "success"),
        (124, "feature/refund", "push", "alice", "success"),
        (125, "main", "promote", "bob", "success"),
        (126, "main", "promote", "bob", "success"),
        (127, "main", "push", "xiaoming", "failure"),
        (128, "main", "push", "alice", "success"),
        (129, "develop", "push", "xiaoming", "running"),
    ],
    "shop/shop-web": [
        (40, "main", "push", "bob", "success"),
        (41, "develop", "push", "xiaoming", "success"),
        (42, "develop", "push", "xiaoming", "failure"),
        (43, "develop", "push", "alice", "success"),
    ],
    "shop/shop-recommend": [(6, "main", "push", "bob", "success"), (7, "main", "push", "alice", "success")],
    "shop/shop-search": [(3, "main", "push", "carol", "success"), (4, "main", "push", "bob", "success")],
}
# Hours before shop-api #128 was created; #129 started 12 minutes after it.
HOURS_BEFORE_128 = {
    "shop/shop-api": {120: 30, 121: 26, 122: 24, 123: 22, 124: 20, 125: 19, 126: 6, 127: 2, 128: 0, 129: -0.2},
    "shop/shop-web": {40: 8, 41: 7, 42: 6, 43: 5},
    "shop/shop-recommend": {6: 30, 7: 5},
    "shop/shop-search": {3: 28, 4: 4},
}


def test_default_seed_is_dated_relative_to_now_the_newest_finished_minutes_ago():
    before = time.time()
    seed = default_seed()
    done = [b for builds in seed.values() for b in builds if b["finished"]]
    newest = max(done, key=lambda b: b["finished"])
    assert newest["number"] == 128 and before - 3600 < newest["finished"] <= before  # not "736 d ago"
    everything = [b for builds in seed.values() for b in builds]
    assert all(b[k] <= time.time() for b in everything for k in ("created", "started", "finished", "updated"))
    assert {
        slug: [(b["number"], b["target"], b["event"], b["author_login"], b["status"]) for b in builds]
        for slug, builds in seed.items()
    } == SEEDED


def test_default_seed_keeps_its_order_and_spacing_whatever_the_time():
    now = 1_900_000_000
    seed = default_seed(now=now)
    created_128 = next(b["created"] for b in seed["shop/shop-api"] if b["number"] == 128)
    assert now - created_128 == 14 * 60
    for slug, builds in seed.items():
        assert {b["number"]: (created_128 - b["created"]) / 3600 for b in builds} == HOURS_BEFORE_128[slug]
        assert [b["created"] for b in builds] == sorted(b["created"] for b in builds)  # numbered in time order

    # Another moment moves every time of every build (and of its stages and steps) by as much, and nothing else.
    def shifted(value, key, by):
        if isinstance(value, dict):
            return {k: shifted(v, k, by) for k, v in value.items()}
        if isinstance(value, list):
            return [shifted(v, key, by) for v in value]
        return (
            value + by
            if key in ("timestamp", "created", "started", "finished", "stopped", "updated") and value
            else value
        )

    assert default_seed(now=now + 86_400) == shifted(seed, "", 86_400)
