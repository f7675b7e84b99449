"""A fake Drone CI REST API that behaves like the real one (Drone 2.x) where opsbot cares.

- Every `/api/…` call needs `Authorization: Bearer <token>` (401 `{"message":"Unauthorized"}` otherwise); errors
  carry Drone's `{"message": …}` shape: an unknown repo is 404 "Not Found", an unknown build 404 "sql: no rows in
  result set", promote/rollback without `target` 400 "Missing target environment" (checked after the build).
- `GET …/builds` lists newest first without `stages`; `branch` filters on `ref == refs/heads/<branch>` as Drone
  does, so promotes of a branch's build are listed under it; `per_page` outside 1..100 falls back to 25.
  `GET …/builds/latest` takes `branch` or `ref` (default: main) and, like `GET …/builds/{n}`, has `stages`.
- `POST …/builds/{n}` (restart), `…/promote`, `…/rollback` trigger a new pending build on n's commit, with the
  repo's next number, `parent: n` and `trigger` = the token's user; params are merged the way Drone merges them.
  `DELETE …/builds/{n}` kills a pending/running build (its unfinished stages and steps too) and returns it.
- A promote or rollback build runs and finishes after `deploy_seconds` when the fake is given them (the local stack:
  a few seconds), or when `/_control/finish` says so, `success` unless `/_control/deploy_outcome` (or the finish's
  `status`) scripted another, and then Drone's webhook is delivered (`webhook`: the local stack signs it and posts
  it to /webhooks/drone), so the group hears how a `deploy: drone` release ended.
- `/_control/…` (no auth) lets tests read the calls, seed builds and logs, reset, and inject faults.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import threading
import time
from http.client import responses
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

from local import loopback

DEFAULT_PER_PAGE, MAX_PER_PAGE = 25, 100
NO_ROWS = "sql: no rows in result set"
DONE = {"success", "failure", "error", "killed", "skipped", "declined"}
ROUTE = re.compile(
    r"^/api/repos/(?P<slug>[^/]+/[^/]+)/builds(?:/(?P<number>latest|\d+)"
    r"(?:/(?P<action>promote|rollback|logs/(?P<stage>\d+)/(?P<step>\d+)))?)?/?$"
)
# Fields a restart, promote or rollback copies from the build it starts from (Drone's core.Hook).
COPIED = (
    "action",
    "link",
    "timestamp",
    "message",
    "before",
    "after",
    "ref",
    "source_repo",
    "source",
    "target",
    "author_login",
    "author_name",
    "author_email",
    "author_avatar",
    "sender",
)
PEOPLE = {"alice": ("Alice Wang", 7), "bob": ("Bob Li", 12), "xiaoming": ("王小明", 15)}  # login -> name, avatar id


def _stages(build: dict) -> list[dict]:
    """One `default` stage whose steps tell the build's story: a failure fails at step 2, later steps skip."""
    deploy = build["event"] in ("promote", "rollback")
    names = ["clone", "deploy"] if deploy else ["clone", "test", "publish", "scan"]
    images = {
        "clone": "drone/git",
        "deploy": "appleboy/drone-ssh",
        "publish": "plugins/docker",
        "scan": "aquasec/trivy",
        "test": "node:20-alpine" if "web" in build.get("link", "") else "maven:3-eclipse-temurin-17",
    }
    status, started, finished = build["status"], build["started"], build["finished"]
    span = max(1, ((finished or started + 60 * len(names)) - started) // len(names)) if started else 0
    stage_id, steps = 5000 + build["id"] - 1042, []  # 1042 -> stage 5000, steps 9001.., as in the fixtures
    for i, name in enumerate(names):
        if status == "pending" or not started:
            step_status = "pending"
        elif status == "success" or i < 1:
            step_status = "success"
        elif i == 1:
            step_status = status
        else:
            step_status = "pending" if status == "running" else "skipped"
        ran = step_status not in ("pending", "skipped")
        begin = started + i * span if ran else 0
        end = (finished if i == len(names) - 1 or step_status != "success" else begin + span) if ran else 0
        steps.append(
            {
                "id": 9000 + (build["id"] - 1042) * 10 + i + 1,
                "step_id": stage_id,
                "number": i + 1,
                "name": name,
                "status": step_status,
                "exit_code": {"failure": 1, "killed": 130}.get(step_status, 0),
                "started": begin,
                "stopped": end if step_status in DONE else 0,
                "version": 4,
                "image": images[name],
            }
        )
    return [
        {
            "id": stage_id,
            "repo_id": build["repo_id"],
            "build_id": build["id"],
            "number": 1,
            "name": "default",
            "kind": "pipeline",
            "type": "docker",
            "status": status,
            "errignore": False,
            "exit_code": 1 if status == "failure" else 0,
            "machine": "runner-7f9c" if started else "",
            "os": "linux",
            "arch": "amd64",
            "started": started,
            "stopped": finished,
            "created": build["created"],
            "updated": build["updated"],
            "version": 7,
            "on_success": True,
            "on_failure": False,
            "steps": steps,
        }
    ]


def complete_build(slug: str, repo_id: int, build_id: int, fields: dict) -> dict:
    """A build in Drone's JSON shape: `fields` win, the rest (branch, people, times, stages) derives from them."""
    number, target = fields["number"], fields.get("target", "main")
    login = fields.get("author_login", "alice")
    name, avatar = PEOPLE.get(login, (login.title(), 1))
    sha = lambda n: hashlib.sha1(f"{slug}#{n}".encode()).hexdigest()  # noqa: E731  (made-up, stable commits)
    before, after = fields.get("before", sha(number - 1)), fields.get("after", sha(number))
    status, created = fields.get("status", "success"), fields.get("created", int(time.time()))
    started = created + 3 if status != "pending" else 0
    finished = started + (60 if fields.get("event") in ("promote", "rollback") else 300) if status in DONE else 0
    build = {
        "id": build_id,
        "repo_id": repo_id,
        "trigger": "@hook",
        "number": number,
        "parent": 0,
        "status": status,
        "event": "push",
        "action": "",
        "link": f"https://gitlab.example.com/{slug}/-/compare/{before[:7]}...{after[:7]}",
        "timestamp": created - 2,
        "message": f"build {number}",
        "before": before,
        "after": after,
        "ref": f"refs/heads/{target}",
        "source_repo": "",
        "source": target,
        "target": target,
        "author_login": login,
        "author_name": name,
        "author_email": f"{login}@example.com",
        "author_avatar": f"https://gitlab.example.com/uploads/-/system/user/avatar/{avatar}/avatar.png",
        "sender": login,
        "started": started,
        "finished": finished,
        "created": created,
        "updated": finished or started or created,
        "version": 9 if status in DONE else 3,
        "deploy_to": "",
        "params": {},
    }
    build.update({k: v for k, v in fields.items() if k != "stages"})
    build["stages"] = copy.deepcopy(fields["stages"]) if fields.get("stages") else _stages(build)
    return build


# shop-api #128 is the build in tests/fixtures/drone/build_success.json: created, started 3 s later, finished
# 304 s after it was created. Its seeded copy runs as long, and is dated relative to now.
SEED_128_RUN_SECONDS = 304
SEED_128_AGE_SECONDS = 14 * 60  # #128 was created 14 minutes ago: finished 9 minutes ago; develop's #129 is running


def default_seed(now: float | None = None) -> dict[str, list[dict]]:
    """shop/shop-api #120..#129 and shop/shop-web #40..#43, as the local stack shows them, dated relative to `now`
    (default: the time of the call): shop-api #128 finished a few minutes ago, the rest hours before it."""
    base, hour = int(time.time() if now is None else now) - SEED_128_AGE_SECONDS, 3600
    c = {
        "120": "a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e",
        "121": "b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3",
        "122": "6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b",
        "123": "3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f",
        "124": "d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1",
        "127": "0f3a1b2c3d4e5f60718293a4b5c6d7e8f9012345",
        "128": "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        "129": "e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
    }
    root, dev_root = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", "7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e"
    api = [  # number, hours before #128, branch, status, author, message, before, after
        (120, 30, "main", "success", "bob", "chore(deps): bump spring-boot to 3.3.5", root, c["120"]),
        (121, 26, "develop", "success", "xiaoming", "feat(cart): coupon stacking", dev_root, c["121"]),
        (122, 24, "feature/refund", "failure", "alice", "wip(order): refund model", c["120"], c["122"]),
        (123, 22, "main", "success", "bob", "fix(payment): round refunds to cents", c["120"], c["123"]),
        (124, 20, "feature/refund", "success", "alice", "feat(order): refund model and migration", c["122"], c["124"]),
        (127, 2, "main", "failure", "xiaoming", "refactor(order): split OrderService", c["123"], c["127"]),
        (128, 0, "main", "success", "alice", "feat(order): add refund endpoint\n\nCloses #88", c["127"], c["128"]),
        (129, -0.2, "develop", "running", "xiaoming", "feat(cart): free-shipping threshold", c["121"], c["129"]),
    ]
    builds = {
        n: complete_build(
            "shop/shop-api",
            42,
            914 + n,
            {
                "number": n,
                "created": int(base - h * hour),
                "target": branch,
                "status": status,
                "author_login": who,
                "message": message,
                "before": before,
                "after": after,  # and #128 ends when the fixture's build does
                **(
                    {"finished": base + SEED_128_RUN_SECONDS, "updated": base + SEED_128_RUN_SECONDS}
                    if n == 128
                    else {}
                ),
            },
        )
        for n, h, branch, status, who, message, before, after in api
    }
    # Staging ran main's #120, then main's #123: two successful promotes, so `rollback shop-api staging` has a
    # build of main to go back to (#120).
    for n, parent, h, who in ((125, 120, 19, "bob"), (126, 123, 6, "bob")):
        fields = {k: builds[parent][k] for k in COPIED}
        builds[n] = complete_build(
            "shop/shop-api",
            42,
            914 + n,
            {
                **fields,
                "number": n,
                "parent": parent,
                "event": "promote",
                "deploy_to": "staging",
                "trigger": who,
                "created": int(base - h * hour),
                "timestamp": int(base - h * hour) - 2,
            },
        )
    web = [
        (40, "main", "success", "bob", "fix(checkout): disable pay button while submitting"),
        (41, "develop", "success", "xiaoming", "feat(cart): show coupon savings"),
        (42, "develop", "failure", "xiaoming", "feat(cart): free-shipping banner"),
        (43, "develop", "success", "alice", "fix(cart): banner copy and e2e selectors"),
    ]
    services = {  # GitOps projects of the example: a few builds of main each
        "shop/shop-recommend": [
            (6, 30, "bob", "feat(model): warm up the embeddings"),
            (7, 5, "alice", "fix(api): empty carts"),
        ],
        "shop/shop-search": [(3, 28, "carol", "feat(search): synonyms"), (4, 4, "bob", "perf(search): cache facets")],
    }
    more = {
        slug: [
            complete_build(
                slug,
                44 + index,
                900 + index * 10 + n,
                {
                    "number": n,
                    "created": int(base - h * hour),
                    "target": "main",
                    "author_login": who,
                    "message": message,
                    "after": hashlib.sha1(f"{slug}#{n}".encode()).hexdigest(),
                },
            )
            for n, h, who, message in found
        ]
        for index, (slug, found) in enumerate(services.items())
    }
    return {
        **more,
        "shop/shop-api": [builds[n] for n in sorted(builds)],
        "shop/shop-web": [
            complete_build(
                "shop/shop-web",
                43,
                990 + n,
                {
                    "number": n,
                    "created": base - (48 - n) * hour,
                    "target": branch,
                    "status": status,
                    "author_login": who,
                    "message": message,
                },
            )
            for n, branch, status, who, message in web
        ],
    }


class FakeDrone(loopback.FaultyFake):
    def __init__(
        self,
        token: str,
        echo: bool = True,
        login: str = "opsbot",
        deploy_seconds: float | None = None,
        webhook=None,
        server: str = "http://127.0.0.1",
    ):
        self.token, self.echo, self.login = token, echo, login  # login: the user the token belongs to
        self.deploy_seconds, self.webhook, self.server = deploy_seconds, webhook, server
        self.deploy_outcomes: list[str] = []  # scripted: how the next deployments end (default success)
        self.lock = threading.RLock()
        self.baseline: dict[str, list[dict]] = {}  # what seed() added; reset() goes back to it
        self.repo_ids: dict[str, int] = {
            "shop/shop-api": 42,
            "shop/shop-web": 43,
            "shop/shop-recommend": 44,
            "shop/shop-search": 45,
        }
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.builds = copy.deepcopy(self.baseline)
            self.logs: dict[tuple, list[dict]] = {}
            self.calls: list[dict] = []
            self.clear_faults()

    def seed(self, slug: str, builds: list[dict]) -> list[int]:
        """Adds builds (full or partial: the rest is derived) to the data reset() restores; returns numbers."""
        with self.lock:
            added = self._add(slug, builds)
            numbers = {b["number"] for b in added}
            kept = [b for b in self.baseline.get(slug, []) if b["number"] not in numbers]
            self.baseline[slug] = sorted(kept + copy.deepcopy(added), key=lambda b: b["number"])
            return [b["number"] for b in added]

    def add_builds(self, slug: str, builds: list[dict]) -> list[int]:
        """Adds builds until the next reset()."""
        with self.lock:
            return [b["number"] for b in self._add(slug, builds)]

    def set_log(self, slug: str, number: int, stage: int, step: int, lines: list) -> None:
        with self.lock:  # plain strings become Drone's log lines
            self.logs[(slug, number, stage, step)] = [
                line if isinstance(line, dict) else {"pos": i, "out": line, "time": i} for i, line in enumerate(lines)
            ]

    def _add(self, slug: str, builds: list[dict]) -> list[dict]:
        repo = self.builds.setdefault(slug, [])
        repo_id = self.repo_ids.setdefault(slug, max(self.repo_ids.values(), default=41) + 1)
        added = []
        for fields in builds:
            fields = {"number": self._counter(slug) + 1, **fields}
            built = complete_build(slug, fields.get("repo_id", repo_id), fields.get("id") or self._next_id(), fields)
            repo[:] = [b for b in repo if b["number"] != built["number"]] + [built]
            added.append(built)
        repo.sort(key=lambda b: b["number"])
        return added

    def _counter(self, slug: str) -> int:
        return max((b["number"] for b in self.builds.get(slug, [])), default=0)

    def _next_id(self) -> int:
        return (
            max((b["id"] for repo in (*self.builds.values(), *self.baseline.values()) for b in repo), default=1000) + 1
        )

    def _find(self, slug: str, number: int) -> dict | None:
        return next((b for b in self.builds[slug] if b["number"] == number), None)

    def _trigger(self, slug: str, prev: dict, event: str, deploy_to: str, params: dict) -> dict:
        now = int(time.time())
        started = self._add(
            slug,
            [
                {
                    **{k: prev[k] for k in COPIED},
                    "parent": prev["number"],
                    "event": event,
                    "deploy_to": deploy_to,
                    "params": params,
                    "trigger": self.login,
                    "status": "pending",
                    "created": now,
                    "updated": now,
                }
            ],
        )[0]
        if event in ("promote", "rollback") and self.deploy_seconds:
            timer = threading.Timer(self.deploy_seconds, self._finish, (slug, started["number"]))
            timer.daemon = True
            timer.start()
        return started

    def _finish(self, slug: str, number: int) -> None:
        """A deployment's pipeline ends (as scripted), and Drone sends its webhook."""
        with self.lock:
            build = self._find(slug, number)
            if build is None or build["status"] != "pending":
                return
            status = self.deploy_outcomes.pop(0) if self.deploy_outcomes else "success"
            now = int(time.time())
            build.update(status=status, started=build["created"] + 1, finished=now, updated=now, version=9)
            build["stages"] = _stages(build)
            delivery = {
                "event": "build",
                "action": "updated",
                "repo": {"id": build["repo_id"], "slug": slug, "name": slug.split("/")[-1], "link": ""},
                "build": copy.deepcopy(build),
                "system": {"proto": "http", "host": self.server.split("://")[-1], "link": self.server},
            }
            self._say(f"{build['event']} {slug} #{number} -> {build['deploy_to']}: {status}")
        if self.webhook is not None:
            self.webhook(delivery)

    def page(self, slug: str, number: str) -> tuple | None:
        """A build as Drone's web UI shows it (the link in cards and replies), or None when there is no such build."""
        with self.lock:
            build = next((b for b in self.builds.get(slug, []) if str(b["number"]) == number), None)
        if build is None:
            return None
        event = build["event"] + (f" → {build['deploy_to']}" if build.get("deploy_to") else "")
        facts = [
            ("仓库 Repo", slug),
            ("状态 Status", build["status"]),
            ("事件 Event", event + (f" (#{build['parent']})" if build.get("parent") else "")),
            ("分支 Branch", build["target"]),
            ("提交 Commit", f"{build['after'][:8]} {build['message'].splitlines()[0] if build['message'] else ''}"),
            ("作者 Author", f"{build['author_name']} ({build['author_login']})"),
        ]
        steps = [
            f"{stage['name']} › {step['name']}: {step['status']}"
            for stage in build.get("stages") or []
            for step in stage.get("steps") or []
        ]
        return loopback.html_page("Drone", f"{slug} #{number}", facts, "\n".join(steps))

    def api(self, method: str, path: str, query: dict, authorization: str) -> tuple[int, object]:
        with self.lock:
            authorized = hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode())
            self.calls.append(
                {"method": method, "path": path, "query": query, "at": time.time(), "authorized": authorized}
            )
            if status := self.injected_fault(method):
                return status, {"message": responses.get(status, "Injected fault")}
            answer = self._answer(method, path, query, authorized)
            if status := self.injected_fault(method, after=True):  # done, but the answer is lost
                return status, {"message": responses.get(status, "Injected fault")}
            return answer

    def _answer(self, method: str, path: str, query: dict, authorized: bool) -> tuple[int, object]:
        # Called with the lock held (api()).
        if not authorized:
            return 401, {"message": "Unauthorized"}
        route = ROUTE.match(path)
        if not route:
            return 404, {"message": "Not Found"}
        slug, number, action = route["slug"], route["number"], route["action"] or ""
        if slug not in self.builds:
            return 404, {"message": "Not Found"}
        arg = lambda name: query.get(name, [""])[0]  # noqa: E731  (Drone's r.FormValue)
        if number is None:
            if method != "GET":
                return 405, {"message": "Method Not Allowed"}
            page = int(arg("page")) if arg("page").isdigit() else 1
            limit = int(arg("per_page")) if arg("per_page").isdigit() else 0
            limit = limit if 1 <= limit <= MAX_PER_PAGE else DEFAULT_PER_PAGE
            found = [
                b for b in reversed(self.builds[slug]) if not arg("branch") or b["ref"] == f"refs/heads/{arg('branch')}"
            ]
            page_of = found[(max(page, 1) - 1) * limit : max(page, 1) * limit]
            return 200, [{k: v for k, v in copy.deepcopy(b).items() if k != "stages"} for b in page_of]
        if number == "latest":
            if method != "GET" or action:
                return 405, {"message": "Method Not Allowed"}
            ref = f"refs/heads/{arg('branch')}" if arg("branch") else arg("ref") or "refs/heads/main"
            build = next((b for b in reversed(self.builds[slug]) if b["ref"] == ref), None)
            return (200, copy.deepcopy(build)) if build else (404, {"message": NO_ROWS})
        build = self._find(slug, int(number))
        if build is None:
            return 404, {"message": NO_ROWS}
        extra = {k: v[0] for k, v in query.items() if v and k not in ("access_token", "target")}
        if (method, action) == ("GET", ""):
            return 200, copy.deepcopy(build)
        if (method, action) == ("GET", f"logs/{route['stage']}/{route['step']}"):
            return 200, copy.deepcopy(self.logs.get((slug, int(number), int(route["stage"]), int(route["step"])), []))
        if method == "POST" and action in ("promote", "rollback"):
            if not arg("target"):
                return 400, {"message": "Missing target environment"}
            new = self._trigger(slug, build, action, arg("target"), {**build["params"], **extra})
            self._say(f"{action} {slug} #{number} -> {arg('target')} (new build #{new['number']})")
            return 200, copy.deepcopy(new)
        if (method, action) == ("POST", ""):
            if build["status"] in ("blocked", "declined"):
                return 400, {"message": f"cannot start a {build['status']} build"}
            new = self._trigger(slug, build, build["event"], build["deploy_to"], {**extra, **build["params"]})
            self._say(f"restart {slug} #{number} (new build #{new['number']})")
            return 200, copy.deepcopy(new)
        if (method, action) == ("DELETE", ""):
            self._cancel(slug, build)
            return 200, copy.deepcopy(build)
        return 405, {"message": "Method Not Allowed"}

    def _cancel(self, slug: str, build: dict) -> None:
        if build["status"] not in ("pending", "running"):
            return  # Drone leaves a finished build alone and still answers 200 with it
        now, was = int(time.time()), build["status"]
        build.update(status="killed", finished=now, updated=now, started=build["started"] or now)
        for part in [s for stage in build["stages"] for s in (stage, *stage["steps"])]:
            if part["status"] not in DONE:
                part.update(
                    status="killed" if part["started"] else "skipped", started=part["started"] or now, stopped=now
                )
                if "exit_code" in part and "steps" not in part:
                    part["exit_code"] = 130
        self._say(f"cancel {slug} #{build['number']} ({was} -> killed)")

    def _say(self, line: str) -> None:
        if self.echo:
            print(f"[drone] {line}", flush=True)

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        try:  # a malformed request gets a 400 rather than a dropped connection
            return self._control(method, path, json.loads(body or b"{}"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return 400, {"error": f"bad control request: {exc!r}"}

    def _control(self, method: str, path: str, spec: dict) -> tuple[int, dict]:
        if method == "POST" and path == "/_control/finish":  # a deployment's pipeline ends now (its webhook is sent)
            if spec.get("status"):
                self.deploy_outcomes.insert(0, str(spec["status"]))
            self._finish(spec["slug"], int(spec["number"]))
            return 200, {"ok": True}
        with self.lock:
            if common := self.common_control(method, path, spec):
                return common
            if method == "POST" and path == "/_control/deploy_outcome":
                self.deploy_outcomes = [str(s) for s in spec.get("statuses", [])]
                return 200, {"ok": True}
            if method == "POST" and path == "/_control/builds":
                return 200, {"ok": True, "numbers": self.add_builds(spec["slug"], spec.get("builds", []))}
            if method == "POST" and path == "/_control/logs":
                self.set_log(
                    spec["slug"], int(spec["number"]), int(spec["stage"]), int(spec["step"]), spec.get("lines", [])
                )
                return 200, {"ok": True}
        return 404, {"error": "unknown control path"}


UI_BUILD = re.compile(r"^/(?P<slug>[^/]+/[^/]+)/(?P<number>[0-9]+)/?$")  # Drone's web UI: {server}/{slug}/{n}


def make_server(fake: FakeDrone, host: str, port: int) -> ThreadingHTTPServer:
    def handle(method, url, headers, body):
        if url.path.startswith("/_control/"):
            return fake.control(method, url.path, body)
        if method == "GET" and (ui := UI_BUILD.match(url.path)) and (page := fake.page(ui["slug"], ui["number"])):
            return page
        return fake.api(
            method, url.path, parse_qs(url.query, keep_blank_values=True), headers.get("Authorization") or ""
        )

    return loopback.json_server(handle, host, port, json_type="application/json; charset=utf-8")
