"""A fake GitLab REST API (v4) that behaves like the real one where opsbot cares.

- Every `/api/v4/…` call needs `PRIVATE-TOKEN: <token>` (401 `{"message": "401 Unauthorized"}` otherwise). A
  project id is its number or its URL-encoded path (`shop%2Fshop-api`); errors carry GitLab's `{"message": …}`.
- Repositories are small real histories: every commit has a parent and a whole tree of files, and branches
  point at commits. Reads: `GET /projects/:id`, `…/repository/tree` (ref, path, recursive; paginated with
  `X-Next-Page` and `Link` as GitLab does), `…/repository/files/:path` (base64) and `…/files/:path/raw`,
  `…/repository/compare` (from, to: the commits oldest first and a diff per file),
  `…/repository/branches/:branch`, `…/merge_requests` (state, source_branch, target_branch).
- Writes, checked as GitLab checks them: `POST …/repository/branches` (400 "Branch already exists"),
  `POST …/repository/commits` with `actions[]` (create/update/delete/move; 400 when a file is there or
  missing; `start_branch` opens a new branch; an action's `last_commit_id` older than the file's last commit is
  refused with 400 "You are attempting to update a file that has changed since you started editing it."),
  `POST …/repository/commits/:sha/revert` (`branch`; 400 when it cannot be reverted cleanly),
  `POST …/merge_requests` (409 while one is open for the source branch).
- History: `GET …/repository/commits` (`ref_name`, `path`: the commits that changed it, newest first, paginated)
  and `GET …/repository/commits/:sha`; `files/:path` gives the file's `last_commit_id`. A merge of a merge request
  fast-forwards, or makes a merge commit (a second parent), or answers 406 when both sides changed a file.
- `GET …/repository/commits/:sha/refs?type=branch`: the branches a commit is on (reachable from their heads).
- Tokens: the API token sees every project; a project access token (`project_tokens`: token -> its projects, the
  deploy repo's) sees only its own, and any other project is a 404, as GitLab hides it.
- Webhooks: a project with a hook (`add_hook`, as in its Settings → Webhooks) gets the Push Hook of every commit
  made through the API on it, POSTed to the hook's URL with its secret token a moment later, as GitLab sends it;
  `api_pushes` keeps those bodies whether or not a hook is set.
- Merge requests (get, update, notes, diffs, versions, merge) and users: local/fake_gitlab_mr.py.
- `/_control/…` (no auth) lets tests and the local stack push commits (answering with the Push Hook body
  GitLab would send), read files, branches and merge requests, list the calls, reset to the seed, and inject
  faults.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import responses
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlparse

from local import loopback
from local.fake_gitlab_mr import MergeRequestFake

BOT = {"id": 2, "username": "opsbot", "name": "opsbot", "state": "active"}  # the user the token belongs to
PUSHER = {"id": 7, "name": "Alice Wang", "username": "alice", "email": "alice@example.com"}  # pushes by default
MAX_PER_PAGE = 100
HOOK_COMMITS = 20  # a Push Hook lists at most this many commits (the newest), and counts them all


class ApiError(Exception):
    def __init__(self, status: int, message):
        super().__init__(str(message))
        self.status, self.message = status, message


@dataclass
class Commit:
    id: str
    parent: str | None
    files: dict[str, str]  # the whole tree at this commit: path -> text
    message: str
    author_name: str
    author_email: str
    created_at: str
    merged: str | None = None  # a merge commit's second parent
    order: int = 0  # when it was made, for newest-first listings within one second


@dataclass
class Repo:
    id: int
    path: str
    default_branch: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    merge_requests: list[dict] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _blob_id(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's own blob id


class FakeGitLab(loopback.FaultyFake, MergeRequestFake):
    ApiError = ApiError

    def __init__(self, token: str, echo: bool = True, project_tokens: dict[str, tuple[str, ...]] | None = None):
        self.token, self.echo = token, echo
        self.project_tokens = dict(project_tokens or {})  # a project access token -> the projects it may see
        self.base_url = "http://127.0.0.1"  # make_server sets the real one
        # Commits that builds of the fake Drone name (sha -> message, author): their links show a page too.
        self.known_commits: dict[str, dict] = {}
        self.lock = threading.RLock()
        self.baseline: dict[str, Repo] = {}
        self._shas = itertools.count(1)
        self.hooks: dict[str, tuple[str, str]] = {}  # project path -> (URL, secret token): its webhook
        self.reset()

    def add_hook(self, path: str, url: str, token: str) -> None:
        """A project webhook for push events, as set in GitLab's Settings → Webhooks."""
        self.hooks[path] = (url, token)

    def _send_hook(self, repo: Repo, body: dict) -> None:
        """GitLab's webhook delivery of a push made through the API: a moment later, from its own worker."""
        self.api_pushes.append(body)
        if repo.path not in self.hooks:
            return
        url, token = self.hooks[repo.path]
        data = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Token": token,
            "Idempotency-Key": str(uuid.uuid4()),
            "User-Agent": "GitLab/17.0.0",
        }

        def deliver() -> None:
            time.sleep(0.2)
            try:
                urllib.request.urlopen(urllib.request.Request(url, data, headers, method="POST"), timeout=10).read()
            except OSError as exc:  # GitLab logs a failed delivery in the hook's Recent events
                self._say(f"push hook to {url} failed: {exc!r}")

        threading.Thread(target=deliver, daemon=True, name="fake-gitlab-hook").start()

    def reset(self) -> None:
        with self.lock:
            self.repos = copy.deepcopy(self.baseline)
            self.calls: list[dict] = []
            self.api_pushes: list[dict] = []  # the Push Hook body of each commit made through the API
            self.clear_faults()
            self.reset_merge_requests()
            self.races: list[dict] = []  # commits another writer lands just before the next commit to their file

    # --- repositories ---------------------------------------------------------------------------------
    def seed(self, path: str, files: dict[str, str], branch: str = "main", message: str = "Initial commit") -> str:
        """A repository with one commit holding `files`, kept by reset(); returns the commit sha."""
        with self.lock:
            repo = Repo(id=100 + len(self.baseline), path=path, default_branch=branch)
            sha = self._commit(repo, branch, None, dict(files), message, "Platform Team", "platform@example.com")
            self.baseline[path] = copy.deepcopy(repo)
            self.repos[path] = repo
            return sha

    def _commit(
        self,
        repo: Repo,
        branch: str,
        parent: str | None,
        files: dict[str, str],
        message: str,
        name: str,
        email: str,
        merged: str | None = None,
        sha: str = "",
    ) -> str:
        order = next(self._shas)
        digest = sha or hashlib.sha1(json.dumps([parent, message, files, order], sort_keys=True).encode()).hexdigest()
        commit = Commit(digest, parent, files, message, name, email, _now(), merged, order)
        repo.commits[commit.id] = commit
        repo.branches[branch] = commit.id
        self.branch_moved(repo, branch)  # open merge requests from it get a new version, as GitLab's refresh does
        return commit.id

    def seed_commits(self, path: str, commits: list[dict]) -> None:
        """Commits with the ids given (the ones the fake Drone built), each on its `branch` (made from the default
        branch when new), adding a line to CHANGELOG.md; kept by reset()."""
        with self.lock:
            repo = self.repos[path]
            for spec in commits:
                branch = spec.get("branch") or repo.default_branch
                parent = repo.branches.get(branch) or repo.branches[repo.default_branch]
                files = dict(repo.commits[parent].files)
                title = spec["message"].splitlines()[0]
                files["CHANGELOG.md"] = files.get("CHANGELOG.md", "# Changes\n") + f"- {title}\n"
                self._commit(
                    repo,
                    branch,
                    parent,
                    files,
                    spec["message"],
                    spec["author_name"],
                    spec["author_email"],
                    sha=spec["id"],
                )
            self.baseline[path] = copy.deepcopy(repo)

    def push(self, path: str, branch: str, commits: list[dict], user: dict | None = None) -> dict:
        """Commit on `branch` as `git push` by `user` would, and answer with the body of the Push Hook GitLab
        sends for it: the newest 20 commits with added/modified/removed, and total_commits_count."""
        user = {**PUSHER, **(user or {})}
        with self.lock:
            repo = self._repo(path)
            before = repo.branches.get(branch, "0" * 40)
            pushed = []
            for spec in commits:
                parent = repo.branches.get(branch)
                files = dict(repo.commits[parent].files) if parent else {}
                for name, text in spec.get("files", {}).items():
                    if text is None:
                        files.pop(name, None)
                    else:
                        files[name] = text
                sha = self._commit(
                    repo, branch, parent, files, spec.get("message", "update"), user["name"], user["email"]
                )
                pushed.append(self._hook_commit(repo, sha))
            after = repo.branches[branch]
            self._say(f"push {path} {branch}: {len(pushed)} commit(s), now {after[:8]}")
            return self._push_hook(repo, branch, before, pushed, user)

    def _push_hook(self, repo: Repo, branch: str, before: str, pushed: list[dict], user: dict) -> dict:
        after = repo.branches[branch]
        project = self._hook_project(repo)
        return {
            "object_kind": "push",
            "event_name": "push",
            "before": before,
            "after": after,
            "ref": f"refs/heads/{branch}",
            "ref_protected": branch == repo.default_branch,
            "checkout_sha": after,
            "message": None,
            "user_id": user["id"],
            "user_name": user["name"],
            "user_username": user["username"],
            "user_email": user["email"],
            "user_avatar": None,
            "project_id": repo.id,
            "project": project,
            "commits": pushed[-HOOK_COMMITS:],
            "total_commits_count": len(pushed),
            "push_options": {},
            "repository": {
                k: project[k]
                for k in (
                    "name",
                    "url",
                    "description",
                    "homepage",
                    "git_http_url",
                    "git_ssh_url",
                    "visibility_level",
                )
            },
        }

    def _hook_commit(self, repo: Repo, sha: str) -> dict:
        commit = repo.commits[sha]
        old = repo.commits[commit.parent].files if commit.parent else {}
        return {
            "id": sha,
            "message": commit.message,
            "title": commit.message.splitlines()[0],
            "timestamp": commit.created_at,
            "url": f"{self._web(repo)}/-/commit/{sha}",
            "author": {"name": commit.author_name, "email": commit.author_email},
            "added": sorted(set(commit.files) - set(old)),
            "modified": sorted(p for p in commit.files if p in old and old[p] != commit.files[p]),
            "removed": sorted(set(old) - set(commit.files)),
        }

    def _hook_project(self, repo: Repo) -> dict:
        web = self._web(repo)
        namespace, name = repo.path.rsplit("/", 1)
        return {
            "id": repo.id,
            "name": name,
            "description": "",
            "web_url": web,
            "avatar_url": None,
            "git_ssh_url": f"git@{urlparse(web).netloc}:{repo.path}.git",
            "git_http_url": f"{web}.git",
            "namespace": namespace,
            "visibility_level": 0,
            "path_with_namespace": repo.path,
            "default_branch": repo.default_branch,
            "ci_config_path": None,
            "homepage": web,
            "url": f"{web}.git",
            "ssh_url": f"git@{urlparse(web).netloc}:{repo.path}.git",
            "http_url": f"{web}.git",
        }

    def _web(self, repo: Repo) -> str:
        return f"{self.base_url}/{repo.path}"

    def page(self, path: str) -> tuple | None:
        """What GitLab's web UI shows at a link the fake hands out (`web_url`s: a project, a commit, a compare, a
        branch, a merge request), as a small page; a page saying why for a link it cannot show."""
        with self.lock:
            repo = next((r for r in self.repos.values() if path.rstrip("/") == f"/{r.path}"), None)
            if repo is not None:
                return self._project_page(repo)
            repo = next((r for r in self.repos.values() if path.startswith(f"/{r.path}/-/")), None)
            if repo is None:
                known = ", ".join(sorted(self.repos))
                return loopback.html_page(
                    "GitLab", "404", [("没有这个页面 Not here", path), ("项目 Projects", known)], status=404
                )
            kind, _, rest = path[len(repo.path) + 4 :].partition("/")
            if kind == "commit" and rest in repo.commits:
                return self._commit_page(repo, repo.commits[rest])
            if kind == "commit" and (known := self.known_commits.get(rest)):
                return loopback.html_page(
                    "GitLab",
                    known["message"].splitlines()[0],
                    [("项目 Project", repo.path), ("提交 Commit", rest), ("作者 Author", known["author"])],
                    known["message"] + "\n\n(the fake Drone's build of this commit; the fake GitLab's history of "
                    f"{repo.path} is its seed, local/gitlab_seed.py)",
                )
            if kind == "tree" and (commit := self._resolve(repo, rest)) is not None:
                return self._commit_page(repo, commit, f"{repo.path} · {rest}")
            if kind == "compare" and "..." in rest:
                old, new = (self._resolve(repo, ref) for ref in rest.split("...", 1))
                if new is not None:
                    return self._commit_page(repo, new, f"{repo.path} · {rest}", old)
            if kind == "merge_requests" and (
                mr := next((m for m in repo.merge_requests if str(m["iid"]) == rest), None)
            ):
                facts = [
                    ("项目 Project", repo.path),
                    ("状态 State", mr["state"]),
                    ("分支 Branches", f"{mr['source_branch']} → {mr['target_branch']}"),
                    ("作者 Author", (mr.get("author") or {}).get("username", "")),
                    ("标签 Labels", ", ".join(mr.get("labels") or []) or "-"),
                ]
                return loopback.html_page("GitLab", f"!{mr['iid']} {mr['title']}", facts, mr.get("description") or "")
            return loopback.html_page(
                "GitLab",
                "404",
                [
                    ("没有这个页面 Not here", path),
                    (
                        "为什么 Why",
                        f"the fake GitLab's {repo.path} holds the seed of local/gitlab_seed.py and what was "
                        "pushed since, not the history of the Drone samples' commits",
                    ),
                ],
                status=404,
            )

    def _project_page(self, repo: Repo) -> tuple:
        facts = [("默认分支 Default branch", repo.default_branch)] + [
            (f"分支 {name}", f"{sha[:8]} {repo.commits[sha].message.splitlines()[0]}")
            for name, sha in repo.branches.items()
        ]
        return loopback.html_page("GitLab", repo.path, facts, "\n".join(sorted(self._resolve(repo, None).files)))

    def _commit_page(self, repo: Repo, commit: Commit, title: str = "", before: Commit | None = None) -> tuple:
        base = before or (repo.commits.get(commit.parent) if commit.parent else None)
        old = base.files if base else {}
        changed = sorted(p for p in set(old) | set(commit.files) if old.get(p) != commit.files.get(p))
        facts = [
            ("项目 Project", repo.path),
            ("提交 Commit", commit.id),
            ("作者 Author", f"{commit.author_name} <{commit.author_email}>"),
            ("时间 Date", commit.created_at),
            ("改动的文件 Changed files", ", ".join(changed) or "-"),
        ]
        return loopback.html_page("GitLab", title or commit.message.splitlines()[0], facts, commit.message)

    def _repo(self, ident: str) -> Repo:
        ident = unquote(ident)
        for repo in self.repos.values():
            if ident == repo.path or ident == str(repo.id):
                return repo
        raise ApiError(404, "404 Project Not Found")

    def _resolve(self, repo: Repo, ref: str | None) -> Commit | None:
        ref = ref or repo.default_branch
        if ref in repo.branches:
            return repo.commits[repo.branches[ref]]
        found = [c for sha, c in repo.commits.items() if len(ref) >= 7 and sha.startswith(ref)]
        return found[0] if len(found) == 1 else None

    # --- JSON shapes ----------------------------------------------------------------------------------
    def _commit_json(self, repo: Repo, commit: Commit) -> dict:
        return {
            "id": commit.id,
            "short_id": commit.id[:8],
            "created_at": commit.created_at,
            "parent_ids": [p for p in (commit.parent, commit.merged) if p],
            "title": commit.message.splitlines()[0],
            "message": commit.message,
            "author_name": commit.author_name,
            "author_email": commit.author_email,
            "authored_date": commit.created_at,
            "committer_name": commit.author_name,
            "committer_email": commit.author_email,
            "committed_date": commit.created_at,
            "trailers": {},
            "extended_trailers": {},
            "web_url": f"{self._web(repo)}/-/commit/{commit.id}",
        }

    def _branch_json(self, repo: Repo, name: str) -> dict:
        return {
            "name": name,
            "commit": self._commit_json(repo, repo.commits[repo.branches[name]]),
            "merged": False,
            "protected": name == repo.default_branch,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "default": name == repo.default_branch,
            "web_url": f"{self._web(repo)}/-/tree/{quote(name)}",
        }

    def _project_json(self, repo: Repo) -> dict:
        web = self._web(repo)
        namespace, name = repo.path.rsplit("/", 1)
        return {
            "id": repo.id,
            "name": name,
            "path": name,
            "path_with_namespace": repo.path,
            "name_with_namespace": f"{namespace} / {name}",
            "default_branch": repo.default_branch,
            "web_url": web,
            "http_url_to_repo": f"{web}.git",
            "visibility": "private",
            "namespace": {"id": 10, "name": namespace, "path": namespace, "kind": "group", "full_path": namespace},
            "empty_repo": not repo.branches,
            "archived": False,
        }

    # --- the API --------------------------------------------------------------------------------------
    def api(self, method: str, path: str, query: dict, body: bytes, token: str, host: str) -> tuple[int, object, dict]:
        """(status, JSON or text body, extra headers) for one call."""
        with self.lock:
            scope = next(
                (p for t, p in self.project_tokens.items() if hmac.compare_digest(token.encode(), t.encode())), None
            )
            authorized = hmac.compare_digest(token.encode(), self.token.encode()) or scope is not None
            try:
                payload = json.loads(body) if body else {}
            except ValueError:
                payload = None
            self.calls.append(
                {
                    "method": method,
                    "path": path,
                    "query": {k: v[0] for k, v in query.items()},
                    "body": payload,
                    "at": time.time(),
                    "authorized": authorized,
                }
            )
            if status := self.injected_fault(method):
                return (
                    status,
                    {"message": f"{status} {responses.get(status, 'Injected fault')}"},
                    ({"Retry-After": "1"} if status == 429 else {}),
                )
            if not authorized:
                return 401, {"message": "401 Unauthorized"}, {}
            if payload is None or not isinstance(payload, dict):
                return 400, {"error": "body is not a JSON object"}, {}
            args = {k: v[0] for k, v in query.items()}
            args.update(payload)
            try:
                if scope is not None:  # a project access token: its own projects only, the rest hidden
                    parts = path.split("/")
                    if len(parts) < 5 or parts[3] != "projects" or self._repo(parts[4]).path not in scope:
                        raise ApiError(404, "404 Project Not Found")
                return self._route(method, path, args, host)
            except ApiError as exc:
                return exc.status, {"message": exc.message}, {}

    def _route(self, method: str, path: str, args: dict, host: str) -> tuple[int, object, dict]:
        parts = path.split("/")  # still URL-encoded, so a file path or project path is one part
        if parts == ["", "api", "v4", "users"] and method == "GET":
            return self._paged(self._users(args), args, host, path)
        if parts[:4] != ["", "api", "v4", "projects"] or len(parts) < 5:
            raise ApiError(404, "404 Not Found")
        repo = self._repo(parts[4])
        rest = [unquote(p) for p in parts[5:]]
        if method == "GET" and not rest:
            return 200, self._project_json(repo), {}
        if rest[:2] == ["repository", "tree"] and method == "GET":
            return self._tree(repo, args, host, path)
        if rest[:2] == ["repository", "files"] and len(rest) in (3, 4) and method == "GET":
            return self._file(repo, rest[2], args, raw=rest[3:] == ["raw"])
        if rest == ["repository", "compare"] and method == "GET":
            return 200, self._compare(repo, args), {}
        if rest[:2] == ["repository", "branches"]:
            if method == "GET" and len(rest) == 3:
                if rest[2] not in repo.branches:
                    raise ApiError(404, "404 Branch Not Found")
                return 200, self._branch_json(repo, rest[2]), {}
            if method == "POST" and len(rest) == 2:
                return 201, self._create_branch(repo, args), {}
        if rest == ["repository", "commits"] and method == "POST":
            return 201, self._create_commit(repo, args), {}
        if rest[:2] == ["repository", "commits"] and rest[3:] == ["refs"] and len(rest) == 4 and method == "GET":
            return self._paged(self._refs(repo, rest[2], args), args, host, path)
        if rest == ["repository", "commits"] and method == "GET":
            return self._paged(self._history(repo, args), args, host, path)
        if rest[:2] == ["repository", "commits"] and len(rest) == 3 and method == "GET":
            found = self._resolve(repo, rest[2])
            if found is None or rest[2] in repo.branches:
                raise ApiError(404, "404 Commit Not Found")
            return 200, self._commit_json(repo, found), {}
        if rest[:2] == ["repository", "commits"] and rest[3:] == ["revert"] and method == "POST":
            return 201, self._revert(repo, rest[2], args), {}
        if rest[:1] == ["merge_requests"] and len(rest) >= 2:
            return self._mr_route(repo, method, rest[1:], args, host, path)
        if rest == ["merge_requests"]:
            if method == "GET":
                return self._paged(self._merge_requests(repo, args), args, host, path)
            if method == "POST":
                return 201, self._create_merge_request(repo, args), {}
        raise ApiError(404, "404 Not Found")

    def _paged(self, items: list, args: dict, host: str, path: str) -> tuple[int, list, dict]:
        per_page = min(max(int(args.get("per_page") or 20), 1), MAX_PER_PAGE)
        page = max(int(args.get("page") or 1), 1)
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if page < pages:
            query = urlencode(
                {**{k: v for k, v in args.items() if isinstance(v, str)}, "page": page + 1, "per_page": per_page}
            )
            headers["Link"] = f'<http://{host}{path}?{query}>; rel="next"'
        return 200, items[(page - 1) * per_page : page * per_page], headers

    def _tree(self, repo: Repo, args: dict, host: str, path: str) -> tuple[int, list, dict]:
        commit = self._resolve(repo, args.get("ref"))
        folder = str(args.get("path") or "").strip("/")
        if commit is None or (folder and not any(p.startswith(folder + "/") for p in commit.files)):
            raise ApiError(404, "404 Tree Not Found")
        recursive = str(args.get("recursive")).lower() == "true"
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, str] = {}
        for file in commit.files:
            if not file.startswith(prefix):
                continue
            parts = file[len(prefix) :].split("/")
            for depth in range(1, len(parts) + 1 if recursive else 2):
                entries[prefix + "/".join(parts[:depth])] = "blob" if depth == len(parts) else "tree"
        listed = sorted(entries.items(), key=lambda e: (e[1] != "tree", e[0]))  # trees first, as GitLab lists
        return self._paged(
            [
                {
                    "id": _blob_id(commit.files.get(p, p)),
                    "name": p.rsplit("/", 1)[-1],
                    "type": kind,
                    "path": p,
                    "mode": "040000" if kind == "tree" else "100644",
                }
                for p, kind in listed
            ],
            args,
            host,
            path,
        )

    def _file(self, repo: Repo, file_path: str, args: dict, raw: bool) -> tuple[int, object, dict]:
        if not raw and not args.get("ref"):
            return 400, {"error": "ref is missing"}, {}
        commit = self._resolve(repo, args.get("ref"))
        if commit is None or file_path not in commit.files:
            raise ApiError(404, "404 File Not Found")
        text = commit.files[file_path]
        if raw:
            return 200, text, {"Content-Type": "text/plain; charset=utf-8"}
        data = text.encode()
        return (
            200,
            {
                "file_name": file_path.rsplit("/", 1)[-1],
                "file_path": file_path,
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
                "content_sha256": hashlib.sha256(data).hexdigest(),
                "ref": args["ref"],
                "blob_id": _blob_id(text),
                "commit_id": commit.id,
                "last_commit_id": self._last_commit(repo, commit, file_path),
            },
            {},
        )

    def _compare(self, repo: Repo, args: dict) -> dict:
        old, new = self._resolve(repo, args.get("from")), self._resolve(repo, args.get("to"))
        if old is None or new is None:
            raise ApiError(404, "404 Ref Not Found")
        between, cursor = [], new
        while cursor is not None and cursor.id != old.id:
            between.append(cursor)
            cursor = repo.commits.get(cursor.parent) if cursor.parent else None
        diffs = []
        for name in sorted(set(old.files) | set(new.files)):
            before, after = old.files.get(name), new.files.get(name)
            if before == after:
                continue
            lines = difflib.unified_diff(
                (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True)
            )
            diffs.append(
                {
                    "old_path": name,
                    "new_path": name,
                    "a_mode": "100644" if before is not None else "0",
                    "b_mode": "100644" if after is not None else "0",
                    "diff": "".join(list(lines)[2:]),
                    "new_file": before is None,
                    "renamed_file": False,
                    "deleted_file": after is None,
                    "generated_file": False,
                }
            )
        return {
            "commit": self._commit_json(repo, new),
            "commits": [self._commit_json(repo, c) for c in reversed(between)],
            "diffs": diffs,
            "compare_timeout": False,
            "compare_same_ref": old.id == new.id,
            "web_url": f"{self._web(repo)}/-/compare/{old.id}...{new.id}",
        }

    def _refs(self, repo: Repo, sha: str, args: dict) -> list[dict]:
        """The branches (type=branch; tags are none here) whose history holds the commit `sha`."""
        commit = self._resolve(repo, sha) if len(sha) >= 7 and sha not in repo.branches else None
        if commit is None:
            raise ApiError(404, "404 Commit Not Found")
        found = []
        for name, head in sorted(repo.branches.items()):
            cursor: str | None = head
            while cursor is not None and cursor != commit.id:
                cursor = repo.commits[cursor].parent
            if cursor == commit.id and args.get("type", "all") in ("branch", "all"):
                found.append({"type": "branch", "name": name})
        return found

    def _create_branch(self, repo: Repo, args: dict) -> dict:
        name, ref = str(args.get("branch") or ""), str(args.get("ref") or "")
        if not name or not ref:
            raise ApiError(400, "branch and ref are required")
        if name in repo.branches:
            raise ApiError(400, "Branch already exists")
        start = self._resolve(repo, ref)
        if start is None:
            raise ApiError(400, f"Invalid reference name: {ref}")
        repo.branches[name] = start.id
        self._say(f"branch {repo.path} {name} from {ref}")
        return self._branch_json(repo, name)

    def _create_commit(self, repo: Repo, args: dict) -> dict:
        branch, actions = str(args.get("branch") or ""), args.get("actions")
        if not branch or not args.get("commit_message") or not isinstance(actions, list) or not actions:
            raise ApiError(400, "branch, commit_message, actions are missing")
        existed = branch in repo.branches  # a new branch's Push Hook has no `before`
        start = args.get("start_branch") or args.get("start_sha")
        if branch in repo.branches and start and start != branch:
            raise ApiError(
                400, f"A branch called '{branch}' already exists. Switch to that branch in order to make changes"
            )
        parent = (
            self._resolve(repo, branch if branch in repo.branches else start)
            if (branch in repo.branches or start)
            else None
        )
        if parent is None:
            raise ApiError(400, "You can only create or edit files when you are on a branch")
        self._race(repo, branch, actions)
        parent = self._resolve(repo, branch) if branch in repo.branches else parent
        files = dict(parent.files)
        for action in actions:
            kind, name = action.get("action"), action.get("file_path") or ""
            content = action.get("content") or ""
            if action.get("encoding") == "base64":
                content = base64.b64decode(content).decode()
            if kind == "create" and name in files:
                raise ApiError(400, "A file with this name already exists")
            if kind in ("update", "delete") and name not in files:
                raise ApiError(400, "A file with this name doesn't exist")
            if action.get("last_commit_id") and kind in ("update", "delete", "move"):
                if self._last_commit(repo, parent, name) != action["last_commit_id"]:
                    raise ApiError(
                        400, "You are attempting to update a file that has changed since you started editing it."
                    )
            if kind == "move":
                files[name] = files.pop(action.get("previous_path") or "", content)
            elif kind == "delete":
                files.pop(name)
            elif kind in ("create", "update"):
                files[name] = content
            else:
                raise ApiError(400, "actions[0][action] does not have a valid value")
        sha = self._commit(
            repo,
            branch,
            parent.id,
            files,
            str(args["commit_message"]),
            str(args.get("author_name") or BOT["name"]),
            str(args.get("author_email") or "opsbot@example.com"),
        )
        self._say(f"commit {repo.path} {branch} {sha[:8]}: {str(args['commit_message']).splitlines()[0]}")
        before = parent.id if existed else "0" * 40
        author = {**BOT, "email": str(args.get("author_email") or "opsbot@example.com")}
        self._send_hook(repo, self._push_hook(repo, branch, before, [self._hook_commit(repo, sha)], author))
        return {
            **self._commit_json(repo, repo.commits[sha]),
            "stats": {"additions": 0, "deletions": 0, "total": 0},
            "status": None,
            "project_id": repo.id,
            "last_pipeline": None,
        }

    def _race(self, repo: Repo, branch: str, actions: list) -> None:
        """Another writer's commit that lands first (a scripted race): the caller's precondition is then stale."""
        paths = {a.get("file_path") for a in actions if isinstance(a, dict)}
        for race in list(self.races):
            if race["project"] == repo.path and race["path"] in paths and branch in repo.branches:
                self.races.remove(race)
                head = repo.commits[repo.branches[branch]]
                files = {**head.files, race["path"]: race["content"]}
                self._commit(repo, branch, head.id, files, race["message"], race["author_name"], race["author_email"])

    # --- history ------------------------------------------------------------------------------------------------
    def _ancestors(self, repo: Repo, start: Commit | None) -> list[Commit]:
        """Every commit reachable from `start` (both parents of a merge), newest first."""
        seen, stack = {}, [start] if start else []
        while stack:
            commit = stack.pop()
            if commit is None or commit.id in seen:
                continue
            seen[commit.id] = commit
            stack += [repo.commits.get(p) for p in (commit.parent, commit.merged) if p]
        return sorted(seen.values(), key=lambda c: c.order, reverse=True)

    def _changed(self, repo: Repo, commit: Commit, path: str) -> bool:
        """Whether `commit` changed `path`, as `git log -- <path>` shows it (a merge only when it differs from every
        parent: the side's own commit is what changed it)."""
        parents = [repo.commits[p] for p in (commit.parent, commit.merged) if p]
        if not parents:
            return path in commit.files
        return all(p.files.get(path) != commit.files.get(path) for p in parents)

    def _last_commit(self, repo: Repo, head: Commit, path: str) -> str:
        return next((c.id for c in self._ancestors(repo, head) if self._changed(repo, c, path)), head.id)

    def _history(self, repo: Repo, args: dict) -> list[dict]:
        head = self._resolve(repo, args.get("ref_name"))
        if head is None:
            return []
        path = args.get("path")
        return [
            self._commit_json(repo, c) for c in self._ancestors(repo, head) if not path or self._changed(repo, c, path)
        ]

    def _revert(self, repo: Repo, sha: str, args: dict) -> dict:
        branch = str(args.get("branch") or "")
        commit, head = self._resolve(repo, sha), self._resolve(repo, branch) if branch in repo.branches else None
        if commit is None or sha in repo.branches:
            raise ApiError(404, "404 Commit Not Found")
        if head is None:
            raise ApiError(404, "404 Branch Not Found")
        before = repo.commits[commit.parent].files if commit.parent else {}
        files = dict(head.files)
        for name in set(before) | set(commit.files):
            if before.get(name) == commit.files.get(name):
                continue
            if files.get(name) != commit.files.get(name):  # changed again since: no clean revert
                raise ApiError(
                    400,
                    "Sorry, we cannot revert this commit automatically. This commit may already have been reverted, "
                    "or a more recent commit may have updated some of its content.",
                )
            if name in before:
                files[name] = before[name]
            else:
                files.pop(name, None)
        title = commit.message.splitlines()[0]
        made = self._commit(
            repo,
            branch,
            head.id,
            files,
            f'Revert "{title}"\n\nThis reverts commit {commit.id}',
            BOT["name"],
            "opsbot@example.com",
        )
        self._say(f"revert {repo.path} {branch} {made[:8]}: reverts {commit.id[:8]}")
        return self._commit_json(repo, repo.commits[made])

    def _merge_requests(self, repo: Repo, args: dict) -> list[dict]:
        state = args.get("state") or "all"
        return [
            self.mr_json(repo, mr)
            for mr in reversed(repo.merge_requests)
            if state in ("all", mr["state"])
            and args.get("source_branch") in (None, mr["source_branch"])
            and args.get("target_branch") in (None, mr["target_branch"])
            and args.get("reviewer_username") in (None, *(u["username"] for u in mr["reviewers"]))
        ]

    def _create_merge_request(self, repo: Repo, args: dict) -> dict:
        source, target, title = args.get("source_branch"), args.get("target_branch"), args.get("title")
        if not source or not target or not title:
            raise ApiError(400, "source_branch, target_branch, title are missing")
        if source not in repo.branches or target not in repo.branches:
            raise ApiError(404, "404 Branch Not Found")
        open_one = next(
            (
                mr
                for mr in repo.merge_requests
                if mr["source_branch"] == source and mr["state"] == "opened" and mr["target_branch"] == target
            ),
            None,
        )
        if open_one:
            raise ApiError(
                409, [f"Another open merge request already exists for this source branch: !{open_one['iid']}"]
            )
        iid, now = len(repo.merge_requests) + 1, _now()
        mr = {
            "id": repo.id * 1000 + iid,
            "iid": iid,
            "project_id": repo.id,
            "title": title,
            "description": args.get("description") or "",
            "state": "opened",
            "created_at": now,
            "updated_at": now,
            "target_branch": target,
            "source_branch": source,
            "author": BOT,
            "assignees": [],
            "reviewers": [],
            "source_project_id": repo.id,
            "target_project_id": repo.id,
            "labels": [],
            "draft": False,
            "work_in_progress": False,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": repo.branches[source],
            "force_remove_source_branch": bool(args.get("remove_source_branch")),
            "has_conflicts": False,
            "references": {"short": f"!{iid}", "full": f"{repo.path}!{iid}"},
            "web_url": f"{self._web(repo)}/-/merge_requests/{iid}",
        }
        repo.merge_requests.append(mr)
        self.add_version(repo, mr)
        self._say(f"merge request {repo.path}!{iid} {source} -> {target}: {title}")
        return copy.deepcopy(mr)

    def _say(self, line: str) -> None:
        if self.echo:
            print(f"[gitlab] {line}", flush=True)

    # --- control --------------------------------------------------------------------------------------
    def control(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, dict]:
        try:  # a malformed request gets a 400 rather than a dropped connection
            return self._control(method, path, {k: v[0] for k, v in query.items()}, json.loads(body or b"{}"))
        except ApiError as exc:
            return exc.status, {"error": exc.message}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return 400, {"error": f"bad control request: {exc!r}"}

    def _control(self, method: str, path: str, args: dict, spec: dict) -> tuple[int, dict]:
        with self.lock:
            if common := self.common_control(method, path, spec):
                return common
            if method == "POST" and path == "/_control/push":
                return 200, self.push(spec["project"], spec.get("branch", "main"), spec["commits"], spec.get("user"))
            if method == "GET" and path == "/_control/file":
                commit = self._resolve(self._repo(args["project"]), args.get("ref"))
                text = commit.files.get(args["path"]) if commit else None
                return (200, {"content": text}) if text is not None else (404, {"error": "no such file"})
            if method == "GET" and path == "/_control/merge_requests":
                return 200, {"merge_requests": self._merge_requests(self._repo(args["project"]), {"state": "all"})}
            if found := self.merge_request_control(method, path, args, spec):
                return found
            if method == "GET" and path == "/_control/branches":
                return 200, {"branches": dict(self._repo(args["project"]).branches)}
            if method == "POST" and path == "/_control/race":
                self.races.append(
                    {
                        "project": spec["project"],
                        "path": spec["path"],
                        "content": spec["content"],
                        "message": spec.get("message", "another change"),
                        "author_name": spec.get("author_name", "Carol Zhang"),
                        "author_email": spec.get("author_email", "carol@example.com"),
                    }
                )
                return 200, {"ok": True}
            if method == "GET" and path == "/_control/commits":
                repo = self._repo(args["project"])
                return 200, {"commits": self._history(repo, {"ref_name": args.get("ref"), "path": args.get("path")})}
        return 404, {"error": "unknown control path"}


def for_config(config, config_dir, echo: bool = True, hook: tuple[str, str] | None = None) -> tuple[FakeGitLab, str]:
    """The local stack's fake: the token of `config.gitlab`, the example projects' repositories (with the commits
    the fake Drone built), the deploy repo with its own token (local/deploy_seed.py), and the config repo holding
    `config_dir`, whose webhook (`hook`: URL and secret token) gets the pushes made through the API (a `config
    rollback`'s commit); returns it and the config repo's commit."""
    from local import deploy_seed
    from local.gitlab_seed import PROJECTS, config_repo_files

    gitlab = config.gitlab
    deploy_repo = (gitlab.deploy_repo if gitlab else "") or deploy_seed.DEPLOY_REPO
    tokens = {gitlab.deploy_token: (deploy_repo,)} if gitlab and gitlab.deploy_token else {}
    fake = FakeGitLab(gitlab.token if gitlab else "local-gitlab-token", echo=echo, project_tokens=tokens)
    for path, files in PROJECTS.items():
        fake.seed(path, files)
    for path, commits in deploy_seed.app_histories().items():
        if path in fake.repos:
            fake.seed_commits(path, commits)
    fake.seed(deploy_repo, deploy_seed.deploy_repo_files(), message="deploy: what runs where")
    prefix = f"{gitlab.config_path}/" if gitlab and gitlab.config_path else ""
    files = {f"{prefix}{name}": text for name, text in config_repo_files(config_dir).items()}
    repo = gitlab.config_repo if gitlab and gitlab.config_repo else "platform/opsbot-config"
    sha = fake.seed(repo, files, branch=gitlab.config_branch if gitlab else "main", message="opsbot config")
    if hook:
        fake.add_hook(repo, *hook)
    return fake, sha


def make_server(fake: FakeGitLab, host: str, port: int) -> ThreadingHTTPServer:
    def handle(method, url, headers, body):
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/_control/"):
            return fake.control(method, url.path, query, body)
        if method == "GET" and not url.path.startswith("/api/") and (page := fake.page(unquote(url.path))):
            return page
        return fake.api(
            method, url.path, query, body, headers.get("PRIVATE-TOKEN") or "", headers.get("Host") or f"{host}:{port}"
        )

    server = loopback.json_server(handle, host, port)
    fake.base_url = f"http://{host}:{server.server_address[1]}"
    return server
